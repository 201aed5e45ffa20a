/* eslint-disable @typescript-eslint/no-explicit-any -- synthesized Terraform JSON is untyped here */
/**
 * The example pipelines' plan and deploy scripts (examples/pipelines/plan-sites.sh, apply-sites.sh) run
 * as the pipelines run them, with the real Terraform CLI and the real AWS provider, against moto:
 *   - plan-sites.sh saves a plan per site (terraform plan -out) with the review text and SHA256SUMS;
 *   - the saved plans travel to the deploy as an artifact does (only the plans folder is copied);
 *   - apply-sites.sh applies exactly that saved plan: Terraform is never asked to plan in the deploy
 *     (every terraform invocation is recorded by a wrapper on PATH), the resources created are the ones
 *     the plan listed, and `imaging-lb status --wait` ends the site;
 *   - a saved plan made before that apply is refused as stale by Terraform: the deploy fails, the state
 *     is unchanged;
 *   - a plan takes the state lock (use_lockfile): with the lock object present it cannot run, so the plan
 *     role needs to write (and delete) `<key>.tflock`.
 *
 * Real: Terraform 1.11, the AWS provider (filesystem mirror, 5.100), the S3 backend with use_lockfile
 * (state and lock file in moto's S3), the scripts, the imaging-lb CLI (status over the AWS SDK).
 * SIMULATED / deviations (also printed as diagnostics):
 *   - the AWS API is moto's; the stack copy carries the emulator changes emulatorCopy() lists;
 *   - SETUP the S3 backend is pointed at moto (endpoint, path-style, static test credentials, no
 *     credential/region/account checks); bucket, key, encrypt and use_lockfile are the stack's own;
 *   - SIMULATED node agents: no instance boots in moto, so the test writes each node's status object
 *     (applied = the version the environment file renders) once the stack's configuration bucket exists,
 *     as a node's agent does after it applied its bundle; `imaging-lb status --wait` reads it for real.
 *
 * Run: `npm run test:apply` (part of `npm test`).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { App } from "cdktf";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { nodeBundle, storeKeys, configBucketName } from "../../lib/node/bundle";
import { loadEnvironment } from "../../lib/load/load";
import { ImagingLbStack } from "../../lib/constructs/imaging-lb-stack";
import { AMI_SSM_PARAMETERS } from "../../lib/constructs/load-balancer-node";
import { requireTool } from "../helpers/tools";
import { Moto, boto3, motoClientEnv, startMoto } from "./moto";
import { EMULATOR_SSM_RENAMES, UBUNTU_AMI_STAND_IN } from "../../scripts/emulator-copy";
import { ProviderSource, emulatorCopy, providerSource, terraform } from "./terraform";
import { SEED_UBUNTU_AMI_SCRIPT, example } from "./variants";

const execFileAsync = promisify(execFile);
const ROOT = join(__dirname, "..", "..", "..");
const PIPELINES = join(ROOT, "examples", "pipelines");
const REGION = "eu-west-1";
const STATE_BUCKET = "pipeline-test-terraform-state";
const STACK = "pipeline-one-arm";
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
/** moto's account id (its STS answers this). */
const MOTO_ACCOUNT = "123456789012";

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe("example pipelines: plan-sites.sh saves the plan, apply-sites.sh applies exactly it (real Terraform + AWS provider, moto)", { timeout: 15 * 60_000 }, () => {
  let root: string;
  let moto: Moto;
  let source: ProviderSource;
  let envFile: string;
  let shimLog: string;
  let scriptEnv: NodeJS.ProcessEnv;
  const notes: string[] = [];

  /** Runs an example pipeline script from the project root, as a pipeline does. */
  async function script(name: string, args: readonly string[], extra: NodeJS.ProcessEnv = {}): Promise<Run> {
    try {
      const { stdout, stderr } = await execFileAsync(join(PIPELINES, name), [...args], { cwd: ROOT, env: { ...scriptEnv, ...extra }, maxBuffer: 64 * 1024 * 1024 });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string; message: string };
      return { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: err.stderr ?? err.message };
    }
  }
  /** The serial and managed resource instances of a stack's state, from its backend (`terraform state pull`). */
  async function stateOf(dir: string): Promise<{ serial: number; resources: number }> {
    const pulled = await terraform(dir, ["state", "pull"], source, scriptEnv);
    assert.equal(pulled.code, 0, pulled.stderr);
    const state = JSON.parse(pulled.stdout) as { serial: number; resources: Array<{ mode: string; instances: unknown[] }> };
    const managed = state.resources.filter((r) => r.mode === "managed").reduce((n, r) => n + r.instances.length, 0);
    return { serial: state.serial, resources: managed };
  }
  /** The terraform commands recorded since `from` (subcommand and arguments, one per line). */
  const terraformCalls = (from: number) => readFileSync(shimLog, "utf8").slice(from).split("\n").filter(Boolean);
  const shimMark = () => (existsSync(shimLog) ? readFileSync(shimLog, "utf8").length : 0);

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "imaging-lb-pipeline-"));
    moto = await startMoto();
    source = providerSource(root);
    notes.push(source.mirror ? `AWS provider ${source.version} from the filesystem mirror ${source.mirror}` : "AWS provider from the registry (no filesystem mirror found)");
    const image = await boto3(moto, REGION, SEED_UBUNTU_AMI_SCRIPT, { name: UBUNTU_AMI_STAND_IN });
    notes.push(`EMULATOR ${UBUNTU_AMI_STAND_IN} seeded with ${String(image)} (stand-in for ${AMI_SSM_PARAMETERS["ubuntu-24.04"]})`);
    // The state bucket exists before any pipeline runs (as it must on AWS), created with the real AWS CLI.
    requireTool("aws", "awscli");
    await execFileAsync("aws", ["s3api", "create-bucket", "--bucket", STATE_BUCKET, "--create-bucket-configuration", `LocationConstraint=${REGION}`], { env: motoClientEnv(moto, REGION) });

    // The site: the one-arm example with remote state, in a sites/ folder of its own.
    const doc = example("agfa-ei-one-arm.yaml");
    doc.name = STACK;
    doc.stateBackend = { bucket: STATE_BUCKET };
    mkdirSync(join(root, "sites"));
    envFile = join(root, "sites", `${STACK}.yaml`);
    writeFileSync(envFile, stringify(doc));

    // `npm run synth`'s output for that file (the app's own stack), then the emulator copy in its place.
    const outdir = join(root, "cdktf.out");
    const app = new App({ outdir });
    new ImagingLbStack(app, STACK, { environment: loadEnvironment(envFile) });
    app.synth();
    const stackFile = join(outdir, "stacks", STACK, "cdk.tf.json");
    const synthesized = JSON.parse(readFileSync(stackFile, "utf8")) as Record<string, any>;
    const backend = synthesized.terraform.backend.s3;
    assert.equal(backend.use_lockfile, true, "the stack locks its state with a lock file");
    const copy = emulatorCopy(synthesized, {
      endpoint: moto.endpoint,
      providerVersion: source.version,
      ssmParameterRenames: EMULATOR_SSM_RENAMES,
    });
    copy.json.terraform.backend = {
      s3: {
        ...backend,
        endpoints: { s3: moto.endpoint },
        use_path_style: true,
        access_key: "testing",
        secret_key: "testing",
        skip_credentials_validation: true,
        skip_requesting_account_id: true,
        skip_metadata_api_check: true,
        skip_region_validation: true,
      },
    };
    notes.push(...copy.deviations.filter((d) => !d.startsWith("SETUP backend")));
    notes.push(`SETUP backend: the stack's S3 backend (bucket ${backend.bucket}, key ${backend.key}, encrypt, use_lockfile) pointed at moto's S3 with path-style requests and static test credentials`);
    writeFileSync(stackFile, JSON.stringify(copy.json, null, 1));

    // Every terraform the scripts start goes through this wrapper, which records its arguments.
    const shim = join(root, "shim");
    mkdirSync(shim);
    shimLog = join(root, "terraform-calls.log");
    const real = requireTool("terraform", "terraform");
    writeFileSync(join(shim, "terraform"), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${shimLog}'\nexec '${real}' "$@"\n`);
    chmodSync(join(shim, "terraform"), 0o755);
    scriptEnv = {
      ...motoClientEnv(moto, REGION),
      PATH: `${shim}:${process.env.PATH}`,
      TF_CLI_CONFIG_FILE: source.cliConfigFile,
      TF_IN_AUTOMATION: "1",
      CHECKPOINT_DISABLE: "1",
      CDKTF_OUT: outdir,
      IMAGING_LB_SITES: join(root, "sites", "*.yaml"),
      IMAGING_LB: `${process.execPath} ${join(ROOT, "dist", "lib", "cli", "main.js")}`,
      COMMIT_SHA: COMMIT,
      STATUS_TIMEOUT: "180",
    };
  });
  after(async () => {
    await moto?.stop();
    if (root && process.env.IMAGING_LB_KEEP_APPLY_DIR !== "1") rmSync(root, { recursive: true, force: true });
  });

  it("plan, carry the saved plan to the deploy, apply it without planning, status --wait; an older saved plan is then refused as stale", async (t) => {
    for (const line of notes) t.diagnostic(line);
    const begun = Date.now();

    // The plan job, twice from the same state: two merged commits planned before either deploys.
    const plans = join(root, "plan-job", "plans");
    const older = join(root, "plan-job", "plans-older");
    for (const out of [older, plans]) {
      const planned = await script("plan-sites.sh", ["--out", out]);
      assert.equal(planned.code, 0, `plan-sites.sh failed:\n${planned.stderr}\n${planned.stdout}\n${moto.report()}`);
    }
    assert.equal(readFileSync(join(plans, "commit"), "utf8"), `${COMMIT}\n`);
    assert.equal(readFileSync(join(plans, "sites.tsv"), "utf8"), `${STACK}\t${envFile}\n`);
    const review = readFileSync(join(plans, "plan.txt"), "utf8");
    const toAdd = Number(/Plan: (\d+) to add, 0 to change, 0 to destroy\./.exec(review)?.[1]);
    assert.ok(toAdd > 10, `the review text is the plan of a new site:\n${review.slice(-2000)}`);
    const sums = readFileSync(join(plans, "SHA256SUMS"), "utf8");
    for (const file of ["commit", "sites.tsv", "plan.txt", `${STACK}/tfplan`, `${STACK}/cdk.tf.json`, `${STACK}/terraform.lock.hcl`]) {
      assert.match(sums, new RegExp(`^[0-9a-f]{64}  ${file.replace(".", "\\.")}$`, "m"), `SHA256SUMS lists ${file}`);
    }
    t.diagnostic(`plan job (two plans): ${((Date.now() - begun) / 1000).toFixed(0)} s; ${toAdd} resources to add`);

    // The artifact: only the plans folder reaches the deploy job (a fresh runner: no .terraform, no synth).
    const deployDir = join(root, "deploy-job");
    cpSync(plans, join(deployDir, "plans"), { recursive: true });
    cpSync(older, join(deployDir, "plans-older"), { recursive: true });

    // SIMULATED node agent: once the stack's configuration bucket exists, write what the node's agent
    // writes after applying its bundle (the version this environment file renders).
    const env = loadEnvironment(envFile);
    const bucket = env.configStore.bucket ?? configBucketName(env.name, MOTO_ACCOUNT);
    const s3 = new S3Client({ endpoint: moto.endpoint, region: REGION, forcePathStyle: true, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
    let applying = true;
    const agents = (async () => {
      const pending = new Set(env.nodes.map((n) => n.name));
      while (applying && pending.size > 0) {
        for (const node of [...pending]) {
          const version = nodeBundle(env, node).version;
          const body = { node, result: "applied", desiredVersion: version, appliedVersion: version, updatedAt: new Date().toISOString(), appliedAt: new Date().toISOString() };
          try {
            await s3.send(new PutObjectCommand({ Bucket: bucket, Key: storeKeys.status(env.configStore.prefix, node), Body: JSON.stringify(body) }));
            pending.delete(node);
          } catch {
            // the bucket is not created yet
          }
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();

    const mark = shimMark();
    const applied = await script("apply-sites.sh", ["--expect-commit", COMMIT, "--plans", join(deployDir, "plans")], { OUTPUTS: join(deployDir, "outputs.json") });
    applying = false;
    await agents;
    assert.equal(applied.code, 0, `apply-sites.sh failed:\n${applied.stderr}\n${applied.stdout.slice(-4000)}\n${moto.report()}`);
    assert.match(applied.stdout, new RegExp(`Apply complete! Resources: ${toAdd} added, 0 changed, 0 destroyed\\.`), "exactly the resources the saved plan listed");
    const calls = terraformCalls(mark);
    assert.deepEqual(
      calls.map((c) => c.replace(/^-chdir=\S+ /, "").split(" ")[0]),
      ["init", "apply", "output"],
      `the deploy only initialises, applies the saved plan and reads outputs:\n${calls.join("\n")}`,
    );
    assert.match(calls[1], / tfplan$/, "apply is given the saved plan file");
    assert.ok(!calls.some((c) => /(^| )plan( |$)/.test(c.replace(/ tfplan$/, ""))), `no terraform plan in the deploy:\n${calls.join("\n")}`);
    assert.match(applied.stdout, new RegExp(`^${STACK}: release [0-9a-f]{16} in s3://${bucket}$`, "m"), "imaging-lb status ran");
    assert.match(applied.stdout, /converged/);
    const outputs = JSON.parse(readFileSync(join(deployDir, "outputs.json"), "utf8")) as Record<string, Record<string, any>>;
    assert.deepEqual(Object.keys(outputs), [STACK]);
    for (const id of Object.values(outputs[STACK].instance_ids as Record<string, string>)) assert.match(id, /^i-[0-9a-f]+$/);

    // The state in moto's S3 (the backend's) now holds what the plan created.
    const state = await stateOf(join(deployDir, "plans", STACK));
    assert.equal(state.resources, toAdd, "the state holds the resources the saved plan listed");

    // The older saved plan (made before this apply) is refused by Terraform, and nothing is changed.
    const staleMark = shimMark();
    const stale = await script("apply-sites.sh", ["--expect-commit", COMMIT, "--plans", join(deployDir, "plans-older")], { OUTPUTS: join(deployDir, "outputs-older.json") });
    assert.notEqual(stale.code, 0, "a stale saved plan fails the deploy");
    assert.match(stale.stderr, /Saved plan is stale/, stale.stderr);
    assert.match(stale.stderr, /re-run the pipeline to plan again/);
    assert.doesNotMatch(stale.stdout, /Apply complete!/);
    assert.ok(!terraformCalls(staleMark).some((c) => /(^| )plan( |$)/.test(c.replace(/ tfplan$/, ""))), "no re-plan on a stale plan");
    assert.deepEqual(await stateOf(join(deployDir, "plans", STACK)), state, "the refused plan changed nothing: same serial, same resources");
    t.diagnostic(`plan + deploy + stale refusal: ${((Date.now() - begun) / 1000).toFixed(0)} s`);
  });

  it("the example IAM documents are accepted by IAM (moto, through the AWS CLI): OIDC providers, both roles per system, the plan permissions attached", async (t) => {
    // EMULATOR: moto validates permission policies (MalformedPolicyDocument, shown by the control below) but
    // accepts any trust policy text and never evaluates its conditions: the trust conditions are proven by
    // test/pipelines.test.ts's matcher, not here.
    const aws = (...args: string[]) => execFileAsync("aws", [...args, "--output", "json"], { env: motoClientEnv(moto, REGION) });
    const file = (name: string) => {
      const text = readFileSync(join(PIPELINES, name), "utf8").replaceAll("ACCOUNT_ID", MOTO_ACCOUNT).replaceAll("STATE_BUCKET", STATE_BUCKET);
      const path = join(root, name);
      writeFileSync(path, text);
      return `file://${path}`;
    };
    for (const url of ["https://token.actions.githubusercontent.com", "https://gitlab.com"]) {
      await aws("iam", "create-open-id-connect-provider", "--url", url, "--client-id-list", "sts.amazonaws.com", "--thumbprint-list", "0".repeat(40));
    }
    const policy = JSON.parse((await aws("iam", "create-policy", "--policy-name", "imaging-lb-plan", "--policy-document", file("iam-plan-permissions.json"))).stdout) as { Policy: { Arn: string } };
    for (const system of ["github", "gitlab"]) {
      for (const role of ["plan", "deploy"]) {
        const created = JSON.parse((await aws("iam", "create-role", "--role-name", `imaging-lb-${system}-${role}`, "--assume-role-policy-document", file(`iam-trust-${system}-${role}.json`))).stdout) as { Role: { Arn: string } };
        assert.equal(created.Role.Arn, `arn:aws:iam::${MOTO_ACCOUNT}:role/imaging-lb-${system}-${role}`);
      }
      await aws("iam", "attach-role-policy", "--role-name", `imaging-lb-${system}-plan`, "--policy-arn", policy.Policy.Arn);
    }
    const control = join(root, "malformed.json");
    writeFileSync(control, readFileSync(join(PIPELINES, "iam-plan-permissions.json"), "utf8").replace('"ec2:Describe*"', '"ec2Describe"'));
    await assert.rejects(aws("iam", "create-policy", "--policy-name", "malformed", "--policy-document", `file://${control}`), /MalformedPolicyDocument/, "moto does validate permission policies");
    t.diagnostic("EMULATOR moto accepts trust policies without validating or evaluating their conditions; the permissions policy is validated (a malformed control is refused)");
  });

  it("a plan takes the state lock (use_lockfile): with the lock object held it cannot plan, so the plan role writes <key>.tflock", async () => {
    const dir = join(root, "deploy-job", "plans", STACK);
    const key = `imaging-lb/${STACK}.tfstate`;
    // A lock held by another run: the object Terraform writes with If-None-Match while it holds the lock.
    const lockInfo = join(root, "held.tflock");
    writeFileSync(lockInfo, JSON.stringify({ ID: "00000000-0000-0000-0000-000000000000", Operation: "OperationTypeApply", Who: "another-run", Version: "1.11.4", Created: new Date().toISOString(), Path: `${STATE_BUCKET}/${key}` }));
    await execFileAsync("aws", ["s3api", "put-object", "--bucket", STATE_BUCKET, "--key", `${key}.tflock`, "--body", lockInfo], { env: motoClientEnv(moto, REGION) });
    try {
      const held = await terraform(dir, ["plan", "-input=false", "-no-color", "-lock-timeout=0s"], source, scriptEnv);
      assert.notEqual(held.code, 0);
      assert.match(held.stderr, /Error acquiring the state lock/, held.stderr);
      const unlocked = await terraform(dir, ["plan", "-input=false", "-no-color", "-lock=false", "-refresh=false"], source, scriptEnv);
      assert.equal(unlocked.code, 0, `only the lock stops it:\n${unlocked.stderr}`);
    } finally {
      await execFileAsync("aws", ["s3api", "delete-object", "--bucket", STATE_BUCKET, "--key", `${key}.tflock`], { env: motoClientEnv(moto, REGION) });
    }
  });
});
