/**
 * The launcher of the CDKTF app: the one-file bundle gives exactly what the compiled modules give, and
 * V8's code cache is created, used, rewritten when stale, and optional.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { after, describe, it } from "node:test";
import { BUNDLE_FILE, codeCacheFile, loadBundle } from "../lib/app-launcher";
import { tempDir } from "./helpers/tools";

const DIST = join(__dirname, "..");
const LAUNCHER = join(DIST, "lib", "app-launcher.js");
const EXAMPLES = join(DIST, "..", "examples");
const work = tempDir("launcher");
after(() => work.cleanup());

/** Runs `script` on the examples with its output in `outdir`. */
function synth(script: string, outdir: string, extra: NodeJS.ProcessEnv = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, IMAGING_LB_ENVIRONMENTS: EXAMPLES, CDKTF_OUTDIR: outdir, ...extra };
  delete env.CDKTF_CONTEXT_JSON;
  return spawnSync(process.execPath, [script], { cwd: work.path, env, encoding: "utf8" });
}

/** Every file under `dir` with its content, by relative path. */
function tree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else files.set(relative(dir, path), readFileSync(path, "utf8"));
    }
  };
  walk(dir);
  return files;
}

describe("app launcher (dist/main.bundle.js)", () => {
  it("the bundle synthesizes byte for byte what the compiled modules (node dist/main.js) synthesize", () => {
    const bundled = synth(LAUNCHER, join(work.path, "bundled"));
    const modules = synth(join(DIST, "main.js"), join(work.path, "modules"));
    assert.equal(bundled.status, 0, bundled.stderr);
    assert.equal(modules.status, 0, modules.stderr);
    assert.equal(bundled.stdout.replace(/bundled/g, "OUT"), modules.stdout.replace(/modules/g, "OUT"));
    const a = tree(join(work.path, "bundled"));
    const b = tree(join(work.path, "modules"));
    assert.deepEqual([...a.keys()], [...b.keys()]);
    assert.ok(a.size >= 4, `expected a manifest and three stacks, got ${[...a.keys()].join(", ")}`);
    for (const [file, text] of a) assert.equal(text, b.get(file), `${file} differs`);
  });

  it("the app writes byte for byte what a plain cdktf App with the same stacks writes (its shortcuts change nothing)", () => {
    // The app skips cdktf's cross-stack pass (main.ts), and its bundle records no token stack traces and has
    // no archiver (scripts/bundle.ts); a plain App through the library does none of that.
    const plain = join(work.path, "plain-app.js");
    writeFileSync(
      plain,
      [
        `const { readdirSync } = require("node:fs");`,
        `const { join } = require("node:path");`,
        `const { App } = require(${JSON.stringify(require.resolve("cdktf"))});`,
        `const { ImagingLbStack, loadEnvironment } = require(${JSON.stringify(join(DIST, "lib", "index.js"))});`,
        "const app = new App({ outdir: process.env.CDKTF_OUTDIR });",
        `const dir = ${JSON.stringify(EXAMPLES)};`,
        "for (const file of readdirSync(dir).filter((f) => f.endsWith(\".yaml\")).sort()) {",
        "  const env = loadEnvironment(join(dir, file));",
        "  new ImagingLbStack(app, env.name, { environment: env });",
        "}",
        "app.synth();",
      ].join("\n"),
    );
    const bundled = synth(LAUNCHER, join(work.path, "app"));
    const library = synth(plain, join(work.path, "plain"));
    assert.equal(bundled.status, 0, bundled.stderr);
    assert.equal(library.status, 0, library.stderr);
    const a = tree(join(work.path, "app"));
    const b = tree(join(work.path, "plain"));
    assert.deepEqual([...a.keys()], [...b.keys()]);
    assert.ok(a.size >= 4, `expected a manifest and three stacks, got ${[...a.keys()].join(", ")}`);
    for (const [file, text] of a) assert.equal(text, b.get(file), `${file} differs`);
  });

  it("the bundle is ASCII, as the launcher reads it as one-byte text", () => {
    const bytes = readFileSync(join(DIST, BUNDLE_FILE));
    const at = bytes.findIndex((b) => b > 0x7f);
    assert.equal(at, -1, `non-ASCII byte at offset ${at}`);
  });

  it("the build warmed the code cache: a run uses it", () => {
    assert.ok(existsSync(codeCacheFile(join(DIST, BUNDLE_FILE))), "npm run build writes dist/main.bundle.js.v8-cache");
    const r = synth(LAUNCHER, join(work.path, "warm"), { IMAGING_LB_CODE_CACHE_REPORT: "1" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "imaging-lb: code cache used\n");
  });

  it("bad input through the bundle: zod's and the loader's messages, exit 1, no stack trace", () => {
    const bad = join(work.path, "bad.yaml");
    writeFileSync(bad, "name: Bad_Name\nnetwork: { layout: three-arm }\n");
    const r = synth(LAUNCHER, join(work.path, "bad-out"), { IMAGING_LB_ENVIRONMENTS: bad });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^imaging-lb: nothing synthesized\.\n/);
    assert.match(r.stderr, /bad\.yaml:1:7 name: /);
    assert.match(r.stderr, /bad\.yaml:2:20 network\.layout: expected one of one-arm \| two-arm, got "three-arm"\n/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.equal(existsSync(join(work.path, "bad-out")), false);
  });

  it("a missing bundle: one line saying how to build it, exit 1", () => {
    const dir = join(work.path, "no-bundle");
    mkdirSync(join(dir, "lib"), { recursive: true });
    cpSync(LAUNCHER, join(dir, "lib", "app-launcher.js"));
    const r = spawnSync(process.execPath, [join(dir, "lib", "app-launcher.js")], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `imaging-lb: ${join(dir, BUNDLE_FILE)} is missing; build it with \`npm run build\`\n`);
  });

  it("loadBundle: CommonJS semantics, and the cache created, used, rewritten when the source changes, or off", () => {
    const file = join(work.path, "tiny.bundle.js");
    const source = (n: number) => `const { basename } = require("node:path");\nmodule.exports = { n: ${n}, file: basename(__filename), dir: __dirname, self: this === module.exports };\n`;
    writeFileSync(file, source(1));
    const first = loadBundle(file);
    assert.deepEqual(first.exports, { n: 1, file: "tiny.bundle.js", dir: work.path, self: true });
    assert.equal(first.saveCodeCache(), "created");
    assert.ok(statSync(codeCacheFile(file)).size > 0);
    assert.equal(loadBundle(file).saveCodeCache(), "used");
    writeFileSync(file, source(22));
    const changed = loadBundle(file);
    assert.equal((changed.exports as { n: number }).n, 22, "a stale cache never runs old code");
    assert.equal(changed.saveCodeCache(), "rejected and rewritten");
    assert.equal(loadBundle(file).saveCodeCache(), "used");
    assert.equal(loadBundle(file, false).saveCodeCache(), "off");
  });

  it("loadBundle: an unwritable cache location only loses the cache", () => {
    const dir = join(work.path, "readonly");
    mkdirSync(dir);
    const file = join(dir, "x.bundle.js");
    writeFileSync(file, "module.exports = 7;\n");
    mkdirSync(codeCacheFile(file)); // a folder where the cache file would go: writing it fails
    const loaded = loadBundle(file);
    assert.equal(loaded.exports, 7);
    assert.equal(loaded.saveCodeCache(), "not writable");
    assert.deepEqual(readdirSync(dir).sort(), ["x.bundle.js", "x.bundle.js.v8-cache"], "no temporary file left behind");
    assert.ok(statSync(codeCacheFile(file)).isDirectory());
  });
});
