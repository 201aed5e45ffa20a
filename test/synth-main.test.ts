/**
 * The CDKTF app as `cdktf.json` and `npm run synth` start it (`node dist/lib/app-launcher.js`, the
 * bundle): which files it reads, the summary, and clean failure without a partial cdktf.out.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

const LAUNCHER = join(__dirname, "..", "lib", "app-launcher.js");
const EXAMPLES = join(__dirname, "..", "..", "examples");
const root = mkdtempSync(join(tmpdir(), "imaging-lb-main-"));
after(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** A fresh working folder with the examples copied into ./envs. */
function workdir(): string {
  const dir = join(root, `w${counter++}`);
  mkdirSync(dir);
  cpSync(EXAMPLES, join(dir, "envs"), { recursive: true });
  return dir;
}
function run(cwd: string, environments?: string, outdir?: string, extra: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.CDKTF_CONTINUE_SYNTH_ON_ERROR_ANNOTATIONS;
  Object.assign(env, extra);
  delete env.CDKTF_OUTDIR;
  if (outdir !== undefined) env.CDKTF_OUTDIR = outdir;
  delete env.CDKTF_CONTEXT_JSON;
  if (environments === undefined) delete env.IMAGING_LB_ENVIRONMENTS;
  else env.IMAGING_LB_ENVIRONMENTS = environments;
  const r = spawnSync(process.execPath, [LAUNCHER], { cwd, env, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const stacksOf = (cwd: string) => Object.keys((JSON.parse(readFileSync(join(cwd, "cdktf.out", "manifest.json"), "utf8")) as { stacks: object }).stacks).sort();

/** The one-arm example with its node moved out of its subnet, and the line of the mistake. */
const ONE_ARM = readFileSync(join(EXAMPLES, "agfa-ei-one-arm.yaml"), "utf8");
const BAD = ONE_ARM.replace("name: ei-one-arm", "name: broken").replace("lb-1: { internalAddress: 10.30.1.10 }", "lb-1: { internalAddress: 10.99.1.10 }");
const BAD_LINE = BAD.split("\n").findIndex((l) => l.includes("10.99.1.10")) + 1;

describe("cdktf app (app-launcher.js)", () => {
  it("a bad file: exit 1, the problems with file:line:col on stderr, no stack trace, no cdktf.out", () => {
    const cwd = workdir();
    writeFileSync(join(cwd, "bad.yaml"), BAD);
    const r = run(cwd, "envs/agfa-ei-one-arm.yaml, bad.yaml");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^imaging-lb: nothing synthesized\.\n/);
    assert.match(r.stderr, new RegExp(`bad\\.yaml:${BAD_LINE}:\\d+ `));
    assert.match(r.stderr, /bad\.yaml:\d+:\d+ loadBalancer\.nodes\.lb-1\.internalAddress: expected an address in the load balancer subnet 10\.30\.1\.0\/24, got "10\.99\.1\.10"/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.equal(r.stdout, "");
    assert.deepEqual(readdirSync(cwd).sort(), ["bad.yaml", "envs"], "no cdktf.out, no staging folder left");
  });

  it("the stats port open to the internet: refused at the field before any synth (the guardrails stay as a second line), no cdktf.out", () => {
    // The stack's guardrails would refuse it too (admin-port-open-to-internet); the loader says it first, with file:line:col.
    const cwd = workdir();
    const open = ONE_ARM.replace("name: ei-one-arm", "name: open").replace(/adminCidrs: \[[^\]]*\]/, "adminCidrs: [0.0.0.0/0]");
    writeFileSync(join(cwd, "open.yaml"), open);
    const r = run(cwd, "envs/agfa-ei-two-arm.yaml, open.yaml");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^imaging-lb: nothing synthesized\.\n/);
    const line = open.split("\n").findIndex((l) => l.includes("0.0.0.0/0")) + 1;
    assert.match(r.stderr, new RegExp(`open\\.yaml:${line}:\\d+ access\\.adminCidrs\\.0: "0\\.0\\.0\\.0/0" would open the stats page and metrics \\(port 8404\\) to the internet, which the guardrails reject`));
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.equal(r.stdout, "");
    assert.deepEqual(readdirSync(cwd).sort(), ["envs", "open.yaml"], "no cdktf.out, no staging folder left");
  });

  it("the loader's network rules reach the app as a clean exit 1 with file:line:col (HA pair Elastic IP, route-table without vpcId)", () => {
    const cwd = workdir();
    const pair = readFileSync(join(EXAMPLES, "agfa-ei-ha-pair.yaml"), "utf8");
    writeFileSync(join(cwd, "eip.yaml"), pair.replace("name: ei-ha-pair", "name: eip").replace("web: { address: 10.40.2.100 }", "web: { address: 10.40.2.100, elasticIp: true }"));
    writeFileSync(join(cwd, "rtb.yaml"), pair.replace("name: ei-ha-pair", "name: rtb").replace("vipMode: secondary-ip", "vipMode: route-table\n    routeTableIds: [rtb-0a1b2c3d4e5f60711]"));
    const r = run(cwd, "eip.yaml rtb.yaml");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^imaging-lb: nothing synthesized\.\n/);
    assert.match(r.stderr, /eip\.yaml:\d+:\d+ vips\.web\.elasticIp: in an HA pair an Elastic IP moves only with ha\.vipMode elastic-ip/);
    assert.match(r.stderr, /rtb\.yaml:\d+:\d+ loadBalancer\.ha\.vipMode: route-table needs an adopted VPC \(network\.vpcId\)/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.equal(r.stdout, "");
    assert.deepEqual(readdirSync(cwd).sort(), ["eip.yaml", "envs", "rtb.yaml"], "no cdktf.out, no staging folder left");
  });

  it("missing files, patterns matching nothing and duplicate environment names are all reported at once", () => {
    const cwd = workdir();
    cpSync(join(cwd, "envs", "agfa-ei-two-arm.yaml"), join(cwd, "copy.yaml"));
    const r = run(cwd, "nope.yaml envs/*.json,envs/agfa-ei-two-arm.yaml copy.yaml");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /nope\.yaml: no such file or folder \(from IMAGING_LB_ENVIRONMENTS\)/);
    assert.match(r.stderr, /envs\/\*\.json: no environment file matches this pattern/);
    assert.match(r.stderr, /copy\.yaml: name 'ei-two-arm' is already used by envs\/agfa-ei-two-arm\.yaml/);
    assert.equal(existsSync(join(cwd, "cdktf.out")), false);
  });

  const success = workdir();
  it("default: the bundled examples, one stack each, and a summary with resource counts and VIPs", () => {
    const r = run(success);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(stacksOf(success), ["ei-baked", "ei-ha-pair", "ei-nlb", "ei-one-arm", "ei-two-arm"]);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0], /^imaging-lb: 5 stacks synthesized to .*cdktf\.out$/);
    assert.match(lines[1], /^ {2}ei-baked \(.*agfa-ei-baked\.yaml\): two-arm, HA pair \(secondary-ip\); \d+ resources, 3 data sources; VIPs core=10\.60\.2\.101, web=10\.60\.2\.100$/);
    assert.match(lines[2], /^ {2}ei-ha-pair \(.*agfa-ei-ha-pair\.yaml\): two-arm, HA pair \(secondary-ip\); \d+ resources, 3 data sources; VIPs core=10\.40\.2\.101, web=10\.40\.2\.100$/);
    assert.match(lines[3], /^ {2}ei-nlb \(.*agfa-ei-nlb\.yaml\): two-arm, HA pair \(nlb\); \d+ resources, 3 data sources; VIPs core=10\.50\.2\.101\/10\.50\.12\.101, web=10\.50\.2\.100\/10\.50\.12\.100$/);
    assert.match(lines[4], /^ {2}ei-one-arm \(.*agfa-ei-one-arm\.yaml\): one-arm, single node; \d+ resources, 3 data sources; VIPs core=10\.30\.1\.101, web=10\.30\.1\.100$/);
    const count = Number(/(\d+) resources/.exec(lines[5])?.[1]);
    const json = JSON.parse(readFileSync(join(success, "cdktf.out", "stacks", "ei-two-arm", "cdk.tf.json"), "utf8")) as { resource: Record<string, object> };
    assert.equal(count, Object.values(json.resource).reduce((n, byId) => n + Object.keys(byId).length, 0));
    assert.equal(r.stderr, "");
  });

  it("a failed run leaves the previous cdktf.out untouched", () => {
    writeFileSync(join(success, "bad.yaml"), BAD);
    assert.equal(run(success, "bad.yaml").status, 1);
    assert.deepEqual(stacksOf(success), ["ei-baked", "ei-ha-pair", "ei-nlb", "ei-one-arm", "ei-two-arm"]);
  });

  it("globs (IMAGING_LB_ENVIRONMENTS) and cdktf.json context.environments select the files", () => {
    const cwd = workdir();
    const glob = run(cwd, "envs/*two-arm.y?ml");
    assert.equal(glob.status, 0, glob.stderr);
    assert.deepEqual(stacksOf(cwd), ["ei-two-arm"]);
    assert.match(glob.stdout, /^imaging-lb: 1 stack synthesized .*\n {2}ei-two-arm \(envs\/agfa-ei-two-arm\.yaml\)/);

    writeFileSync(join(cwd, "cdktf.json"), JSON.stringify({ app: "node dist/lib/app-launcher.js", context: { environments: ["envs/agfa-ei-one-arm.yaml"] } }));
    const context = run(cwd);
    assert.equal(context.status, 0, context.stderr);
    assert.match(context.stdout, /^imaging-lb: 1 stack synthesized .*\n {2}ei-one-arm \(envs\/agfa-ei-one-arm\.yaml\)[^\n]*\n {2}kept as an earlier synth left them \(not in this run\): ei-two-arm\n$/);
    assert.deepEqual(stacksOf(cwd), ["ei-one-arm", "ei-two-arm"], "the manifest keeps naming the earlier run's stack");
  });

  it("a second synth updates cdktf.out in place: Terraform's .terraform, lock file and local state and other stacks' folders stay", () => {
    const cwd = workdir();
    assert.equal(run(cwd).status, 0);
    const stack = join(cwd, "cdktf.out", "stacks", "ei-one-arm");
    // What `terraform init` and a local-backend apply leave in a stack's folder.
    mkdirSync(join(stack, ".terraform", "providers"), { recursive: true });
    writeFileSync(join(stack, ".terraform", "providers", "marker"), "provider");
    writeFileSync(join(stack, ".terraform.lock.hcl"), "# lock\n");
    writeFileSync(join(stack, "terraform.ei-one-arm.tfstate"), "{}\n");
    writeFileSync(join(stack, "cdk.tf.json"), "stale");
    const pair = readFileSync(join(cwd, "cdktf.out", "stacks", "ei-ha-pair", "cdk.tf.json"), "utf8");

    const r = run(cwd, "envs/agfa-ei-one-arm.yaml");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(stack, ".terraform", "providers", "marker"), "utf8"), "provider");
    assert.equal(readFileSync(join(stack, ".terraform.lock.hcl"), "utf8"), "# lock\n");
    assert.equal(readFileSync(join(stack, "terraform.ei-one-arm.tfstate"), "utf8"), "{}\n");
    assert.notEqual(readFileSync(join(stack, "cdk.tf.json"), "utf8"), "stale", "the synthesized file is replaced");
    assert.ok(JSON.parse(readFileSync(join(stack, "cdk.tf.json"), "utf8")).resource);
    // The cdktf CLI deletes the stack folders a new manifest does not name: the manifest keeps naming the
    // stacks of the earlier run, as they were (their files untouched).
    assert.deepEqual(stacksOf(cwd), ["ei-baked", "ei-ha-pair", "ei-nlb", "ei-one-arm", "ei-two-arm"]);
    assert.deepEqual(pair, readFileSync(join(cwd, "cdktf.out", "stacks", "ei-ha-pair", "cdk.tf.json"), "utf8"));
    assert.match(r.stdout, /\n {2}kept as an earlier synth left them \(not in this run\): ei-baked, ei-ha-pair, ei-nlb, ei-two-arm\n$/);
    assert.deepEqual(readdirSync(join(cwd, "cdktf.out", "stacks")).sort(), ["ei-baked", "ei-ha-pair", "ei-nlb", "ei-one-arm", "ei-two-arm"]);
    assert.deepEqual(readdirSync(cwd).filter((f) => f.includes("staging")), [], "no staging folder left");
  });

  it("CDKTF_OUTDIR in a folder that does not exist yet: created", () => {
    const cwd = workdir();
    const outdir = join(cwd, "build", "deeper", "out");
    const r = run(cwd, "envs/agfa-ei-two-arm.yaml", outdir);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(outdir, "stacks", "ei-two-arm", "cdk.tf.json")));
    assert.deepEqual(readdirSync(join(cwd, "build", "deeper")), ["out"], "no staging folder left");
  });

  describe("under the cdktf CLI (the variable it sets for every synth: CDKTF_CONTINUE_SYNTH_ON_ERROR_ANNOTATIONS)", () => {
    const CLI = { CDKTF_CONTINUE_SYNTH_ON_ERROR_ANNOTATIONS: "true" };
    type Manifest = { stacks: Record<string, { annotations: Array<{ constructPath: string; level: string; message: string }>; synthesizedStackPath: string }> };
    const manifestOf = (cwd: string) => JSON.parse(readFileSync(join(cwd, "cdktf.out", "manifest.json"), "utf8")) as Manifest;

    it("a bad file: the problems once on stdout, nothing on stderr, exit 0, and a manifest whose one error annotation stops the CLI; the stack folders untouched", () => {
      const cwd = workdir();
      assert.equal(run(cwd, "envs/agfa-ei-one-arm.yaml envs/agfa-ei-two-arm.yaml").status, 0);
      const before = readFileSync(join(cwd, "cdktf.out", "stacks", "ei-one-arm", "cdk.tf.json"), "utf8");
      writeFileSync(join(cwd, "bad.yaml"), BAD);
      const r = run(cwd, "bad.yaml", undefined, CLI);
      const direct = run(cwd, "bad.yaml");
      assert.equal(r.stdout, direct.stderr, "the same lines as without the CLI, on stdout");
      assert.equal(r.stdout.split("\n").filter((l) => l.includes("10.99.1.10")).length, 1, "each problem once");
      assert.equal(r.stderr, "");
      assert.equal(r.status, 0);
      const manifest = manifestOf(cwd);
      assert.deepEqual(Object.keys(manifest.stacks).sort(), ["ei-one-arm", "ei-two-arm", "imaging-lb:problems"]);
      assert.deepEqual(manifest.stacks["imaging-lb:problems"].annotations, [
        { constructPath: "imaging-lb", level: "@cdktf/error", message: "nothing synthesized: the environment files have problems (listed above); the stack folders in cdktf.out are as they were" },
      ]);
      assert.deepEqual(manifest.stacks["ei-one-arm"].annotations, []);
      assert.equal(readFileSync(join(cwd, "cdktf.out", "stacks", "ei-one-arm", "cdk.tf.json"), "utf8"), before);
      assert.ok(existsSync(join(cwd, "cdktf.out", ".imaging-lb-problems.tf.json")), "the stand-in stack's file (the CLI reads every stack's file)");

      const fixed = run(cwd, "envs/agfa-ei-one-arm.yaml", undefined, CLI);
      assert.equal(fixed.status, 0, fixed.stderr);
      assert.deepEqual(Object.keys(manifestOf(cwd).stacks).sort(), ["ei-one-arm", "ei-two-arm"]);
      assert.equal(existsSync(join(cwd, "cdktf.out", ".imaging-lb-problems.tf.json")), false, "a successful synth removes the stand-in");
    });

    it("a bad file on a first synth: the manifest and the stand-in are the only files in a new cdktf.out", () => {
      const cwd = workdir();
      writeFileSync(join(cwd, "bad.yaml"), BAD);
      const r = run(cwd, "bad.yaml", undefined, CLI);
      assert.equal(r.status, 0);
      assert.deepEqual(readdirSync(join(cwd, "cdktf.out")).sort(), [".imaging-lb-problems.tf.json", "manifest.json"]);
      assert.deepEqual(Object.keys(manifestOf(cwd).stacks), ["imaging-lb:problems"]);
    });

    it("a stack kept from an earlier synth that the cdktf command asks for: refused by an error annotation, its folder kept", () => {
      const cwd = workdir();
      assert.equal(run(cwd, "envs/agfa-ei-one-arm.yaml envs/agfa-ei-two-arm.yaml").status, 0);
      // A stand-in for the cdktf CLI: a script named `cdktf` that runs the app as cdktf.json's "app" command would.
      const standIn = join(cwd, "cdktf");
      writeFileSync(standIn, `const r = require("node:child_process").spawnSync(process.execPath, [${JSON.stringify(LAUNCHER)}], { stdio: "inherit" }); process.exit(r.status ?? 1);\n`);
      const env: NodeJS.ProcessEnv = { ...process.env, ...CLI, IMAGING_LB_ENVIRONMENTS: "envs/agfa-ei-one-arm.yaml" };
      delete env.CDKTF_OUTDIR;
      delete env.CDKTF_CONTEXT_JSON;
      const r = spawnSync(process.execPath, [standIn, "deploy", "ei-two-arm"], { cwd, env, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /cdktf asks for stack/, "said once, by the annotation cdktf prints");
      const manifest = manifestOf(cwd);
      assert.deepEqual(manifest.stacks["ei-two-arm"].annotations, [
        {
          constructPath: "imaging-lb",
          level: "@cdktf/error",
          message:
            'cdktf asks for stack \'ei-two-arm\', which this run did not synthesize (IMAGING_LB_ENVIRONMENTS="envs/agfa-ei-one-arm.yaml": stacks ei-one-arm); its folder in cdktf.out stays as an earlier synth left it, and is not planned or deployed from here: add its environment file to IMAGING_LB_ENVIRONMENTS, or ask only for this run\'s stacks',
        },
      ]);
      assert.ok(existsSync(join(cwd, "cdktf.out", "stacks", "ei-two-arm", "cdk.tf.json")));
      // Asked for the stack of this run only: the kept one carries no annotation.
      const ok = spawnSync(process.execPath, [standIn, "deploy", "ei-one-arm"], { cwd, env, encoding: "utf8" });
      assert.equal(ok.status, 0, ok.stderr);
      assert.deepEqual(manifestOf(cwd).stacks["ei-two-arm"].annotations, []);
    });
  });
});
