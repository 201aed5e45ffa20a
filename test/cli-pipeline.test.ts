/**
 * The command line as a pipeline uses it: --version, --json, wrong usage answered in imaging-lb's own
 * words (with a did-you-mean), extra arguments and unknown nodes refused, and write errors as one line
 * without a stack trace. Run as a user runs it (the compiled bin), plus the parser on its own.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { didYouMean, parseCommandArgs, UsageError } from "../lib/cli/args";
import { COMMANDS, run } from "../lib/cli/main";
import { tempDir } from "./helpers/tools";

const ROOT = join(__dirname, "..", "..");
const BIN = join(ROOT, "dist", "lib", "cli", "main.js");
const ONE_ARM = "examples/agfa-ei-one-arm.yaml";
const PAIR = "examples/agfa-ei-ha-pair.yaml";

function cli(...args: string[]) {
  const run = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: "utf8" });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}
/** No Node internals in what the user sees. */
function assertOwnWords(stderr: string): void {
  assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
  assert.doesNotMatch(stderr, /ERR_PARSE_ARGS|To specify a positional argument|Unknown option '/, "not Node's parseArgs text");
}

describe("imaging-lb CLI for pipelines", () => {
  let dir: { path: string; cleanup: () => void };
  let bad: string;
  before(() => {
    dir = tempDir("cli-pipeline");
    bad = join(dir.path, "bad.yaml");
    writeFileSync(bad, readFileSync(join(ROOT, ONE_ARM), "utf8").replace("name: ei-one-arm", "name: Bad_Name"));
  });
  after(() => dir.cleanup());

  it("--version (and -V) prints the package's version, exit 0", () => {
    const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
    for (const flag of ["--version", "-V"]) {
      const r = cli(flag);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, `imaging-lb ${version}\n`);
      assert.equal(r.stderr, "");
    }
    assert.equal(cli("--version", "extra").code, 2);
  });

  it("validate a.yaml bad.yaml b.yaml: the ok lines of the valid files on stdout, the problems on stderr, exit 1", () => {
    const r = cli("validate", ONE_ARM, bad, PAIR);
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout,
      "ok examples/agfa-ei-one-arm.yaml: ei-one-arm, one-arm, single load balancer, 4 services, 2 VIPs\n" +
        "ok examples/agfa-ei-ha-pair.yaml: ei-ha-pair, two-arm, HA pair, 4 services, 2 VIPs\n",
    );
    assert.match(r.stderr, /bad\.yaml:\d+:\d+ name: /);
    assert.doesNotMatch(r.stderr, /agfa-ei-one-arm|agfa-ei-ha-pair/);
  });

  it("validate --json: one JSON document with every file, valid or with its problems (file, line, column, path); exit code as without", () => {
    const r = cli("validate", "--json", ONE_ARM, bad);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "");
    const doc = JSON.parse(r.stdout) as { valid: boolean; files: Array<Record<string, unknown>> };
    assert.equal(doc.valid, false);
    assert.deepEqual(doc.files[0], { file: ONE_ARM, valid: true, environment: "ei-one-arm", layout: "one-arm", nodes: 1, services: 4, vips: 2, needs: [] });
    assert.equal(doc.files[1].file, bad);
    assert.equal(doc.files[1].valid, false);
    const problems = doc.files[1].problems as Array<{ file: string; line: number; column: number; path: string; message: string }>;
    const name = problems.find((p) => p.path === "name");
    assert.ok(name, JSON.stringify(problems));
    assert.equal(name.file, bad);
    const nameLine = readFileSync(bad, "utf8").split("\n").findIndex((l) => l.startsWith("name: ")) + 1;
    assert.equal(name.line, nameLine, "the line of `name:` in the file");
    assert.equal(typeof name.column, "number");
    assert.match(name.message, /Bad_Name/);

    const ok = cli("validate", ONE_ARM, PAIR, "--json");
    assert.equal(ok.code, 0, ok.stderr);
    const all = JSON.parse(ok.stdout) as { valid: boolean; files: unknown[] };
    assert.equal(all.valid, true);
    assert.equal(all.files.length, 2);
  });

  it("expand --json: the expanded environment as JSON, the same document as the YAML", () => {
    const json = cli("expand", ONE_ARM, "--json");
    const yaml = cli("expand", ONE_ARM);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), parse(yaml.stdout));
    assert.equal((JSON.parse(json.stdout) as { name: string }).name, "ei-one-arm");
  });

  it("unknown commands and options: the tool's own message with a did-you-mean, exit 2", () => {
    const command = cli("valdate", ONE_ARM);
    assert.equal(command.code, 2);
    assert.match(command.stderr, /^imaging-lb: unknown command 'valdate'; did you mean 'validate'\?\n/);
    assert.equal(command.stdout, "");

    const option = cli("render", "user-data", ONE_ARM, "--nod", "lb-1");
    assert.equal(option.code, 2);
    assert.match(option.stderr, /^imaging-lb render: unknown option --nod; did you mean --node\? \(its options: --node, --takeover-script\)\nusage: imaging-lb render /);
    assertOwnWords(option.stderr);

    const global = cli("--verison");
    assert.equal(global.code, 2);
    assert.match(global.stderr, /^imaging-lb: unknown option --verison; did you mean --version\?/);

    const far = cli("validate", "--frobnicate", ONE_ARM);
    assert.equal(far.code, 2);
    assert.match(far.stderr, /^imaging-lb validate: unknown option --frobnicate \(its options: --json, --strict\)\n/, "no guess when nothing is close");

    const value = cli("render", "user-data", ONE_ARM, "--node");
    assert.equal(value.code, 2);
    assert.match(value.stderr, /^imaging-lb render: option --node needs a value\n/);
    const flag = cli("validate", "--json=yes", ONE_ARM);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /option --json takes no value, got "yes"/);
    for (const r of [command, option, global, far, value, flag]) assertOwnWords(r.stderr);
  });

  it("extra arguments are refused: schema extra, expand a b, render haproxy a b", () => {
    const cases: Array<[string[], RegExp]> = [
      [["schema", "extra"], /^imaging-lb schema: unexpected argument 'extra': it takes no arguments\n/],
      [["expand", ONE_ARM, PAIR], /^imaging-lb expand: unexpected argument 'examples\/agfa-ei-ha-pair\.yaml': it takes one environment file\n/],
      [["render", "haproxy", ONE_ARM, PAIR], /^imaging-lb render: unexpected argument 'examples\/agfa-ei-ha-pair\.yaml': it takes one environment file\n/],
      [["render", "keepalved", PAIR], /^imaging-lb render: expected an artifact: haproxy, keepalived, user-data, image-recipe, got 'keepalved'; did you mean 'keepalived'\?\n/],
    ];
    for (const [args, message] of cases) {
      const r = cli(...args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, message);
      assert.equal(r.stdout, "", "nothing printed on stdout");
    }
  });

  it("an unknown --node is refused for every artifact, a single node's too (haproxy.cfg included)", () => {
    for (const what of ["haproxy", "user-data", "keepalived"]) {
      const r = cli("render", what, ONE_ARM, "--node", "lb-9");
      assert.equal(r.code, 2, what);
      assert.match(r.stderr, /^imaging-lb render: --node: no node 'lb-9' in ei-one-arm; did you mean 'lb-1'\?; its nodes: lb-1 \(primary\)\n/);
      assert.equal(r.stdout, "");
    }
    const known = cli("render", "haproxy", PAIR, "--node", "secondary");
    assert.equal(known.code, 0, known.stderr);
    assert.equal(known.stdout, cli("render", "haproxy", PAIR).stdout, "haproxy.cfg is the same on both nodes");
    const takeover = cli("render", "haproxy", PAIR, "--takeover-script");
    assert.equal(takeover.code, 2);
    assert.match(takeover.stderr, /--takeover-script goes with render keepalived only/);
  });

  it("write errors: one line naming the file and the reason, exit 1, no stack trace (a full stdout, a folder that is a file)", () => {
    const full = spawnSync("sh", ["-c", `"${process.execPath}" "${BIN}" schema > /dev/full`], { cwd: ROOT, encoding: "utf8" });
    assert.equal(full.status, 1);
    assert.equal(full.stderr, "imaging-lb: cannot write to standard output: no space left on device (ENOSPC)\n");

    const file = join(dir.path, "a-file");
    writeFileSync(file, "");
    const diagram = cli("diagram", ONE_ARM, "--out", join(file, "drawing.svg"));
    assert.equal(diagram.code, 1);
    assert.match(diagram.stderr, new RegExp(`^imaging-lb diagram: cannot (create the folder|write) ${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}.*\\((EEXIST|ENOTDIR)\\)\\n$`));
    assertOwnWords(diagram.stderr);

    const init = cli("init", "--layout", "one-arm", "--out", join(file, "site.yaml"));
    assert.equal(init.code, 1);
    assert.match(init.stderr, /^imaging-lb init: cannot (create the folder|write) .*\((EEXIST|ENOTDIR)\)\n$/);

    // A reader that stops early (`| head -1`): no error message at all.
    const head = spawnSync("sh", ["-c", `"${process.execPath}" "${BIN}" schema | head -c 10 > /dev/null`], { cwd: ROOT, encoding: "utf8" });
    assert.equal(head.stderr, "");
  });

  it("every command answers --help with its usage, and a new command needs only an entry in COMMANDS", () => {
    for (const [name, command] of Object.entries(COMMANDS)) {
      const r = cli(name, "--help");
      assert.equal(r.code, 0, name);
      assert.equal(r.stdout, `usage: ${command.usage}\n\n${command.help}\n`);
    }
  });
});

describe("command table", () => {
  it("an asynchronous command (one that waits, like a rollout status): its exit code and its errors handled as a synchronous one's", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) };
    COMMANDS["wait-test"] = {
      summary: "test only",
      usage: "imaging-lb wait-test [--fail]",
      help: "",
      async run(args, o) {
        const { values } = parseCommandArgs(args, { fail: { type: "boolean" } }, { max: 0 });
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (values.fail) throw new UsageError("asked to fail");
        o.out("waited\n");
        return 0;
      },
    };
    try {
      assert.equal(await run(["wait-test"], io), 0);
      assert.deepEqual(out, ["waited\n"]);
      assert.equal(await run(["wait-test", "--fail"], io), 2);
      assert.equal(err.join(""), "imaging-lb wait-test: asked to fail\nusage: imaging-lb wait-test [--fail]\n");
      assert.equal(await run(["wait-test", "extra"], io), 2, "argument errors before the first await too");
    } finally {
      delete COMMANDS["wait-test"];
    }
  });
});

describe("argument parser", () => {
  const spec = { out: { type: "string", short: "o" }, force: { type: "boolean" } } as const;

  it("long, inline, short and -- forms", () => {
    assert.deepEqual(parseCommandArgs(["a", "--out", "x.svg", "--force", "b"], spec), { values: { out: "x.svg", force: true }, positionals: ["a", "b"] });
    assert.deepEqual(parseCommandArgs(["--out=x=y", "-o", "x=y"], spec).values, { out: "x=y" });
    assert.deepEqual(parseCommandArgs(["-ofile"], spec).values, { out: "file" });
    assert.deepEqual(parseCommandArgs(["--", "--force", "-"], spec), { values: {}, positionals: ["--force", "-"] });
  });

  it("problems as UsageError in the tool's words", () => {
    const message = (args: string[], positional = {}) => {
      try {
        parseCommandArgs(args, spec, positional);
      } catch (e) {
        assert.ok(e instanceof UsageError);
        return e.message;
      }
      assert.fail(`${args.join(" ")} was accepted`);
    };
    assert.equal(message(["--froce"]), "unknown option --froce; did you mean --force? (its options: --out, --force)");
    assert.equal(message(["-x"]), "unknown option -x (its options: --out, --force)");
    assert.equal(message(["--out"]), "option --out needs a value");
    assert.equal(message(["--out", "--force"]), "option --out needs a value");
    assert.equal(message(["--out", "a", "--out", "b"]), 'option --out given twice ("a" and "b")');
    assert.equal(message([], { min: 1, max: 1, name: "environment file" }), "expected one environment file");
    assert.equal(message(["a", "b", "c"], { max: 1, name: "environment file" }), "unexpected arguments 'b', 'c': it takes one environment file");
  });

  it("did-you-mean: close typos and unique prefixes; nothing for far or tied words", () => {
    assert.equal(didYouMean("valdate", ["validate", "render"]), "validate");
    assert.equal(didYouMean("rendr", ["validate", "render"]), "render");
    assert.equal(didYouMean("diag", ["diagram", "diff"]), "diagram");
    assert.equal(didYouMean("zzz", ["validate", "render"]), undefined);
    assert.equal(didYouMean("lb-z", ["lb-a", "lb-b"]), undefined);
  });
});
