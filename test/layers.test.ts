/**
 * The README's "How the code is laid out" table is the law of `lib/`: every TypeScript file belongs to one
 * of its layers, each imports only from its own layer and the layers above it, and only the constructs and
 * the entry points import cdktf. Read from the README itself, so the table a newcomer reads cannot drift
 * from the code.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, it } from "node:test";

const ROOT = join(__dirname, "..", "..");

interface Layer {
  readonly rank: number;
  readonly name: string;
  /** Folders (ending in /) and files, relative to the repository. */
  readonly places: readonly string[];
}

/** The layers in the README's table, in order. */
function readmeLayers(): Layer[] {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.split("\n## How the code is laid out\n")[1]?.split("\n## ")[0];
  assert.ok(section, "README.md has a 'How the code is laid out' section");
  const rows = section.split("\n").filter((line) => /^\| \d+\. /.test(line));
  return rows.map((row) => {
    const [, layer, where] = row.split("|").map((cell) => cell.trim());
    const [rank, name] = [Number.parseInt(layer, 10), layer.replace(/^\d+\.\s*/, "")];
    return { rank, name, places: [...where.matchAll(/`([^`]+)`/g)].map((m) => m[1]) };
  });
}

/** Every TypeScript file under lib/ and main.ts (generated files included: they are imported too). */
function sourceFiles(dir = "lib", into: string[] = ["main.ts"]): string[] {
  for (const entry of readdirSync(join(ROOT, dir))) {
    const path = `${dir}/${entry}`;
    if (statSync(join(ROOT, path)).isDirectory()) sourceFiles(path, into);
    else if (path.endsWith(".ts")) into.push(path);
  }
  return into;
}

/** The layer of a file: a file named in the table, else the deepest folder named there that holds it. */
function layerOf(layers: readonly Layer[], file: string): Layer | undefined {
  let best: { layer: Layer; length: number } | undefined;
  for (const layer of layers) {
    for (const place of layer.places) {
      const holds = place.endsWith("/") ? file.startsWith(place) : file === place;
      const length = place === file ? Number.MAX_SAFE_INTEGER : place.length;
      if (holds && (!best || length > best.length)) best = { layer, length };
    }
  }
  return best?.layer;
}

/** The relative imports of a file (import, export ... from, dynamic import), as repository paths. */
function relativeImports(file: string): string[] {
  const source = readFileSync(join(ROOT, file), "utf8");
  const specifiers = [...source.matchAll(/(?:from\s+|import\()"(\.{1,2}\/[^"]+)"/g)].map((m) => m[1]);
  return specifiers.map((spec) => {
    const target = normalize(join(dirname(file), spec));
    const found = [target, `${target}.ts`, `${target}/index.ts`].find((candidate) => statSync(join(ROOT, candidate), { throwIfNoEntry: false })?.isFile());
    return found ?? target;
  });
}

/** The packages a file imports (bare specifiers, type-only imports included). */
function packageImports(file: string): string[] {
  const source = readFileSync(join(ROOT, file), "utf8");
  return [...source.matchAll(/(?:from\s+|import\(|require\()"([^".][^"]*)"/g)].map((m) => m[1]);
}

describe("the layers of lib/ (README: How the code is laid out)", () => {
  const layers = readmeLayers();
  const files = sourceFiles();

  it("the README's table has its eight layers in order, and every place it names exists", () => {
    assert.deepEqual(
      layers.map((l) => l.rank),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    for (const place of layers.flatMap((l) => l.places)) assert.ok(statSync(join(ROOT, place), { throwIfNoEntry: false }), `${place} exists`);
  });

  it("every TypeScript file of lib/ (and main.ts) belongs to a layer", () => {
    assert.deepEqual(
      files.filter((f) => layerOf(layers, f) === undefined),
      [],
    );
  });

  it("imports run from a layer to itself or the layers above it", () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = layerOf(layers, file);
      for (const target of relativeImports(file)) {
        const to = layerOf(layers, target);
        if (from && to && to.rank > from.rank) upward.push(`${file} (${from.name}) -> ${target} (${to.name})`);
      }
    }
    assert.deepEqual(upward.sort(), []);
  });

  it("only the constructs and the entry points import cdktf or constructs", () => {
    const cdktfUsers = files.filter((f) => packageImports(f).some((p) => p === "cdktf" || p === "constructs" || p.startsWith("@cdktf/")));
    const constructs = layers.find((l) => l.name === "constructs");
    assert.ok(constructs, "the README's table has a constructs layer");
    const outside = cdktfUsers.filter((f) => (layerOf(layers, f)?.rank ?? 0) < constructs.rank);
    assert.deepEqual(outside, []);
    assert.ok(cdktfUsers.some((f) => f.startsWith("lib/constructs/")), "the check sees the constructs' imports");
  });
});
