/**
 * Synthesis needs no Terraform binary and starts no process (issue 22). Each way of synthesizing runs in
 * a child whose PATH holds `node` alone and whose node:child_process is trapped
 * (test/helpers/no-child-process.ts: every spawn/exec/fork is recorded, then throws): the app as
 * `npm run synth` and cdktf.json start it (the launcher and its bundle), the unbundled `node dist/main.js`,
 * the library in an app of its own, and the cdktf CLI's `cdktf synth` (the CLI itself starts the app, so
 * only the app's process is trapped there). A control shows that this set-up catches what cdktf's own
 * DataResource does: it runs `terraform version` at every synth.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

const DIST = join(__dirname, "..");
const ROOT = join(DIST, "..");
const LAUNCHER = join(DIST, "lib", "app-launcher.js");
const MAIN = join(DIST, "main.js");
const LIBRARY = join(DIST, "lib", "index.js");
const TRAP = join(__dirname, "helpers", "no-child-process.js");
const EXAMPLES = join(ROOT, "examples");
const CDKTF = require.resolve("cdktf");
const CDKTF_CLI = join(ROOT, "node_modules", "cdktf-cli", "bundle", "bin", "cdktf");
/** Whether the cdktf CLI can start on this Node: its node-pty ships builds for Node ABIs up to 127 (Node 22). */
const CDKTF_CLI_STARTS = existsSync(
  join(ROOT, "node_modules", "@cdktf", "node-pty-prebuilt-multiarch", "prebuilds", `${process.platform}-${process.arch}`, `node.abi${process.versions.modules}.node`),
);

const root = mkdtempSync(join(tmpdir(), "imaging-lb-no-terraform-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A folder holding a link to this Node and nothing else: the whole PATH of the runs below. */
const NODE_ONLY = join(root, "bin");
mkdirSync(NODE_ONLY);
symlinkSync(process.execPath, join(NODE_ONLY, "node"));

let counter = 0;
interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The child processes the trapped process tried to start. */
  readonly attempts: string[];
  readonly outdir: string;
}

/**
 * Runs `node <args>` in a fresh folder (with `files` written into it) with PATH=node only and a minimal
 * environment; unless `trap` is false, the child-process trap is preloaded into that Node process.
 */
function run(args: readonly string[], options: { environments?: string; trap?: boolean; env?: NodeJS.ProcessEnv; files?: Record<string, string> } = {}): Run {
  const cwd = join(root, `run-${counter++}`);
  mkdirSync(cwd);
  for (const [name, content] of Object.entries(options.files ?? {})) writeFileSync(join(cwd, name), content);
  const log = join(cwd, "child-processes.log");
  writeFileSync(log, "");
  const outdir = join(cwd, "cdktf.out");
  const env: NodeJS.ProcessEnv = { PATH: NODE_ONLY, HOME: cwd, CDKTF_OUTDIR: outdir, IMAGING_LB_CHILD_PROCESS_LOG: log, ...options.env };
  if (options.environments) env.IMAGING_LB_ENVIRONMENTS = options.environments;
  const argv = options.trap === false ? [...args] : ["--require", TRAP, ...args];
  const r = spawnSync(process.execPath, argv, { cwd, env, encoding: "utf8", timeout: 120_000 });
  const attempts = readFileSync(log, "utf8").split("\n").filter(Boolean);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr + (r.error ? `\n${r.error.message}` : ""), attempts, outdir };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const stackJson = (outdir: string, stack: string): Json => JSON.parse(readFileSync(join(outdir, "stacks", stack, "cdk.tf.json"), "utf8")) as Json;

/** The examples' stacks and how many nodes (so generation markers) each has. */
const EXAMPLE_NODES: Record<string, number> = { "ei-baked": 2, "ei-ha-pair": 2, "ei-nlb": 2, "ei-one-arm": 1, "ei-two-arm": 1 };

/** Asserts a run synthesized the examples with their generation markers and started no process. */
function assertSynthesizedExamples(r: Run, what: string): void {
  assert.deepEqual(r.attempts, [], `${what} started child processes`);
  assert.equal(r.status, 0, `${what} failed:\n${r.stderr}`);
  const manifest = JSON.parse(readFileSync(join(r.outdir, "manifest.json"), "utf8")) as { stacks: object };
  assert.deepEqual(Object.keys(manifest.stacks).sort(), Object.keys(EXAMPLE_NODES));
  for (const [stack, nodes] of Object.entries(EXAMPLE_NODES)) {
    // terraform_data also holds the nlb example's drain steps (one per node): the markers are the `generation` ones.
    const markers = Object.keys((stackJson(r.outdir, stack).resource.terraform_data ?? {}) as Json).filter((id) => /generation/.test(id));
    assert.equal(markers.length, nodes, `${stack}: one generation marker per node`);
  }
}

describe("synthesis without Terraform and without child processes", () => {
  it("the README says so", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8").replace(/\s+/g, " ");
    assert.match(readme, /Synthesizing needs Node\.js only: no Terraform binary, and no other process is started \(the app, `cdktf synth` and the library alike\)/);
  });

  it("PATH holds node alone: no terraform, no shell", () => {
    const found = spawnSync("/bin/sh", ["-c", "command -v terraform || command -v sh"], { env: { PATH: NODE_ONLY }, encoding: "utf8" });
    assert.notEqual(found.status, 0, `found on the stripped PATH: ${found.stdout}`);
  });

  it("control: cdktf's own DataResource runs `terraform version` at synth, and this set-up catches it", () => {
    const script = join(root, "control.js");
    writeFileSync(
      script,
      [
        `const { App, TerraformStack, DataResource } = require(${JSON.stringify(CDKTF)});`,
        "const app = new App({ outdir: process.env.CDKTF_OUTDIR });",
        'new DataResource(new TerraformStack(app, "control"), "marker", { input: { generation: 1 } });',
        "app.synth();",
      ].join("\n"),
    );
    const r = run([script]);
    assert.deepEqual(r.attempts, ["execSync terraform version"]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /Could not determine version of terraform/);
  });

  it("the app as `npm run synth` and cdktf.json start it (launcher + bundle): the five examples", () => {
    assertSynthesizedExamples(run([LAUNCHER], { environments: EXAMPLES }), "app-launcher.js");
  });

  it("the unbundled app, `node dist/main.js`: the five examples", () => {
    assertSynthesizedExamples(run([MAIN], { environments: EXAMPLES }), "dist/main.js");
  });

  it("the library in an app of its own: ImagingLbStack next to the app's own stack", () => {
    const script = join(root, "library-app.js");
    writeFileSync(
      script,
      [
        `const { App, TerraformStack } = require(${JSON.stringify(CDKTF)});`,
        `const { ImagingLbStack, loadEnvironment } = require(${JSON.stringify(LIBRARY)});`,
        "const app = new App({ outdir: process.env.CDKTF_OUTDIR });",
        'new TerraformStack(app, "shared");',
        `const env = loadEnvironment(${JSON.stringify(join(EXAMPLES, "agfa-ei-ha-pair.yaml"))});`,
        "new ImagingLbStack(app, env.name, { environment: env });",
        "app.synth();",
      ].join("\n"),
    );
    const r = run([script]);
    assert.deepEqual(r.attempts, []);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Object.keys(stackJson(r.outdir, "ei-ha-pair").resource.terraform_data as Json).length, 2);
  });

  it("`cdktf synth` (the CLI starts the app of cdktf.json; the app's process is trapped)", () => {
    assert.ok(existsSync(CDKTF_CLI), `the cdktf CLI is a dev dependency: ${CDKTF_CLI}`);
    const project = JSON.parse(readFileSync(join(ROOT, "cdktf.json"), "utf8")) as { app: string };
    assert.equal(project.app, "node dist/lib/app-launcher.js", "the app this test starts is cdktf.json's");
    const r = run([CDKTF_CLI, "synth"], {
      trap: false,
      environments: EXAMPLES,
      env: { CHECKPOINT_DISABLE: "1", CI: "1" },
      // The project's cdktf.json, its app with the trap preloaded and its path absolute.
      files: { "cdktf.json": JSON.stringify({ ...project, app: `node --require ${TRAP} ${LAUNCHER}` }) },
    });
    if (!CDKTF_CLI_STARTS) {
      // The cdktf CLI 0.21 loads its terminal library at start, which has no build for this Node (24): the
      // CLI cannot start at all, as the README says. The app itself runs on this Node (the tests above).
      assert.notEqual(r.status, 0, "the cdktf CLI started on a Node its node-pty has no build for: update the README");
      assert.match(r.stderr, /node-pty-prebuilt-multiarch[\s\S]*Cannot find module '\.\.\/build\/Release\/pty\.node'/);
      const readme = readFileSync(join(ROOT, "README.md"), "utf8").replace(/\s+/g, " ");
      assert.match(readme, /The cdktf CLI 0\.21 \(`cdktf synth\|diff\|deploy`\) does not start on Node 24/);
      return;
    }
    assert.equal(r.status, 0, `cdktf synth failed:\n${r.stdout}\n${r.stderr}`);
    assertSynthesizedExamples(r, "cdktf synth");
  });
});
