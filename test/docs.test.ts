/**
 * The documentation stays true: the committed environment reference equals what the generator makes
 * from the schema today, every `imaging-lb <command>`, `npm run <script>` and `cdktf <command>` in
 * README.md, docs/ and the pipelines README exists, and every relative link points at a file (and
 * heading) that exists.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { diagramCommand } from "../lib/cli/commands/diagram";
import { initCommand } from "../lib/cli/commands/init";
import { environmentJsonSchema } from "../lib/config/schema";
import { REFERENCE_FILE, referenceRows, renderEnvironmentReference } from "../scripts/env-reference";

const ROOT = join(__dirname, "..", "..");
const DOCS = readdirSync(join(ROOT, "docs"))
  .filter((f) => f.endsWith(".md"))
  .sort()
  .map((f) => join("docs", f));
const PAGES = ["README.md", ...DOCS, join("examples", "pipelines", "README.md")];
const SCRIPTS = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
const CDKTF_SUBCOMMANDS = new Set(["synth", "diff", "deploy", "destroy", "list", "output"]);

/** The CLI's commands as `imaging-lb --help` lists them (live), plus the diagram and init modules'. */
function cliCommands(): Set<string> {
  const run = spawnSync(process.execPath, [join(ROOT, "dist", "lib", "cli", "main.js"), "--help"], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  const listed = run.stdout.split("commands:\n")[1]?.split("\n\n")[0] ?? "";
  const names = listed.split("\n").map((l) => /^ {2}(\S+)/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  assert.ok(names.length > 0, run.stdout);
  return new Set([...names, ...[diagramCommand, initCommand].map((c) => c.usage.split(" ")[1])]);
}

/** The code of a Markdown page: fenced blocks and inline code spans (prose mentions are not commands). */
function codeOf(markdown: string): string[] {
  const code: string[] = [];
  const prose = markdown.replace(/^```[^\n]*\n([\s\S]*?)^```$/gm, (_, block: string) => {
    code.push(block);
    return "";
  });
  for (const m of prose.matchAll(/`([^`\n]+)`/g)) code.push(m[1]);
  return code;
}

const read = (page: string) => readFileSync(join(ROOT, page), "utf8");

describe("docs/environment-reference.md", () => {
  it("is the generator's output for the current schema (regenerate: npm run build && node dist/scripts/env-reference.js --write)", () => {
    assert.equal(read(REFERENCE_FILE), renderEnvironmentReference());
  });

  it("has a row for every field of the schema, with the defaults the schema declares", () => {
    const rows = new Map(referenceRows().map((r) => [r.path, r]));
    const schema = environmentJsonSchema() as { properties: Record<string, unknown>; required: string[] };
    for (const key of Object.keys(schema.properties)) assert.ok(rows.has(key), key);
    for (const key of schema.required) assert.equal(rows.get(key)?.required, true, `${key} is required`);
    for (const path of ["network.subnet.cidr", "network.external.cidr", "loadBalancer.nodes.<name>.internalAddress", "services.<name>.healthCheck.calledAeTitle", "services.<name>.rewrites[].match", "servers.<name>.services.<name>.weight"]) {
      assert.ok(rows.has(path), path);
    }
    assert.equal(rows.get("loadBalancer.instanceType")?.defaultValue, "`c6i.large`");
    assert.equal(rows.get("admin.statsPort")?.defaultValue, "`8404`");
    assert.equal(rows.get("stateBackend.key")?.defaultValue, "imaging-lb/<name>.tfstate");
    assert.match(rows.get("network.layout")?.type ?? "", /one of `one-arm`, `two-arm`/);
  });
});

describe("commands named in the documentation exist", () => {
  const commands = cliCommands();
  for (const page of PAGES) {
    it(page, () => {
      const code = codeOf(read(page)).join("\n");
      const used = {
        imagingLb: [...code.matchAll(/(?:^|[\s(;&|])imaging-lb\s+([a-z][a-z-]*)/gm)].map((m) => m[1]),
        npmRun: [...code.matchAll(/npm run ([A-Za-z0-9:_-]+)/g)].map((m) => m[1]),
        cdktf: [...code.matchAll(/npx cdktf ([a-z-]+)/g)].map((m) => m[1]),
      };
      for (const c of used.imagingLb) assert.ok(commands.has(c), `${page}: imaging-lb ${c}: not a command (have ${[...commands].join(", ")})`);
      for (const s of used.npmRun) assert.ok(s in SCRIPTS, `${page}: npm run ${s}: no such script in package.json`);
      for (const c of used.cdktf) assert.ok(CDKTF_SUBCOMMANDS.has(c), `${page}: cdktf ${c}: not a cdktf-cli command`);
    });
  }

  it("the recipes cover the commands they are about", () => {
    const all = DOCS.map((d) => codeOf(read(d)).join("\n")).join("\n");
    for (const needle of ["imaging-lb validate", "npx cdktf diff", "npx cdktf deploy", "set server", "state drain", "show servers state", "imaging-lb-refresh-certs", "systemctl stop haproxy", "ip proto 112"]) {
      assert.ok(all.includes(needle), needle);
    }
  });
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as '-'. */
const anchor = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");

describe("relative links in the documentation resolve", () => {
  for (const page of PAGES) {
    it(page, () => {
      const text = read(page);
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/.test(target)) continue;
        const [file, hash] = target.split("#");
        const path = file === "" ? join(ROOT, page) : join(ROOT, dirname(page), file);
        assert.ok(existsSync(path), `${page}: link ${target}: no such file`);
        if (hash && path.endsWith(".md")) {
          const anchors = [...readFileSync(path, "utf8").matchAll(/^#+ (.*)$/gm)].map((h) => anchor(h[1]));
          assert.ok(anchors.includes(hash), `${page}: link ${target}: no heading #${hash} (have ${anchors.join(", ")})`);
        }
      }
    });
  }
});
