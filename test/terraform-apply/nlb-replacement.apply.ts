/* eslint-disable @typescript-eslint/no-explicit-any -- synthesized Terraform JSON is untyped here */
/**
 * ha.vipMode nlb: what raising a node's generation does, applied by the real Terraform and AWS provider
 * against moto (SIMULATED AWS: an emulator, not AWS). The example `agfa-ei-nlb.yaml` (a 2 s drain) is
 * applied; then lb-a's generation is raised and applied again. Terraform must, in this order: deregister
 * lb-a's targets (destroy their attachments), run lb-a's drain step (its destroy-time `node` wait, the
 * drain time long), destroy and create lb-a's instance, create its drain step, register its targets; leave
 * lb-b alone; and plan No changes afterwards.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { App } from "cdktf";
import { stringify } from "yaml";
import { loadEnvironment } from "../../lib/load/load";
import { ImagingLbStack } from "../../lib/constructs/imaging-lb-stack";
import { EMULATOR_SSM_RENAMES, UBUNTU_AMI_STAND_IN } from "../../scripts/emulator-copy";
import { Moto, boto3, startMoto } from "./moto";
import { ProviderSource, emulatorCopy, providerSource, terraform } from "./terraform";
import { SEED_UBUNTU_AMI_SCRIPT, example } from "./variants";

const REGION = "eu-west-1";
const DRAIN_SECONDS = 2;

describe("nlb: a generation raise deregisters, drains, replaces and registers, in that order (real provider, moto)", { timeout: 30 * 60_000 }, () => {
  let root: string;
  let moto: Moto;
  let source: ProviderSource;
  let tf: string;
  let envFile: string;
  const doc = example("agfa-ei-nlb.yaml");

  /** Synthesizes the current `doc` into the emulator copy Terraform runs. */
  const write = (round: number) => {
    writeFileSync(envFile, stringify(doc));
    const env = loadEnvironment(envFile);
    const outdir = join(root, `synth-${round}`);
    const app = new App({ outdir });
    new ImagingLbStack(app, env.name, { environment: env });
    app.synth();
    const json = JSON.parse(readFileSync(join(outdir, "stacks", env.name, "cdk.tf.json"), "utf8")) as Record<string, any>;
    const copy = emulatorCopy(json, { endpoint: moto.endpoint, providerVersion: source.version, ssmParameterRenames: EMULATOR_SSM_RENAMES });
    writeFileSync(join(tf, "main.tf.json"), JSON.stringify(copy.json, null, 1));
    return copy.deviations;
  };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "imaging-lb-nlb-replace-"));
    moto = await startMoto();
    source = providerSource(root);
    await boto3(moto, REGION, SEED_UBUNTU_AMI_SCRIPT, { name: UBUNTU_AMI_STAND_IN });
    tf = join(root, "tf");
    mkdirSync(tf);
    envFile = join(root, "t-nlb-replace.yaml");
    doc.name = "t-nlb-replace";
    doc.loadBalancer.ha.nlb.drainTime = `${DRAIN_SECONDS}s`;
  });

  after(async () => {
    await moto?.stop();
    if (root && process.env.IMAGING_LB_KEEP_APPLY_DIR !== "1") rmSync(root, { recursive: true, force: true });
  });

  it("first apply, then lb-a's generation raised: the order, the drain's duration, lb-b untouched, then No changes", async (t) => {
    for (const line of write(1)) t.diagnostic(line);
    const init = await terraform(tf, ["init", "-input=false", "-no-color"], source);
    assert.equal(init.code, 0, `${init.stdout}\n${init.stderr}`);
    const first = await terraform(tf, ["apply", "-auto-approve", "-input=false", "-no-color", "-parallelism=4"], source);
    assert.equal(first.code, 0, `first apply:\n${first.stderr}\n${first.stdout.slice(-4000)}\n${moto.report()}`);

    doc.loadBalancer.nodes["lb-a"].generation = 2;
    write(2);
    const began = Date.now();
    const second = await terraform(tf, ["apply", "-auto-approve", "-input=false", "-no-color", "-parallelism=4"], source);
    assert.equal(second.code, 0, `second apply:\n${second.stderr}\n${second.stdout.slice(-6000)}`);
    const lines = second.stdout.split("\n");
    const at = (pattern: RegExp, what: string): number => {
      const i = lines.findIndex((l) => pattern.test(l));
      assert.ok(i >= 0, `the apply's output has ${what}:\n${second.stdout.slice(-6000)}`);
      return i;
    };
    const last = (pattern: RegExp): number => lines.reduce((found, l, i) => (pattern.test(l) ? i : found), -1);
    const attachmentsGone = last(/^aws_lb_target_group_attachment\.nlb_target-\S+-lb-a_\S+: Destruction complete/);
    const drainStart = at(/^terraform_data\.nlb_drain-lb-a_\S+: Destroying/, "lb-a's drain step destroyed");
    const drainSays = at(/^terraform_data\.nlb_drain-lb-a_\S+ \(local-exec\): imaging-lb: lb-a drains for 2 s/, "the drain's message");
    const drainDone = at(/^terraform_data\.nlb_drain-lb-a_\S+: Destruction complete after (\d+)s/, "the drain's end");
    const instanceGone = at(/^aws_instance\.node-lb-a_instance_\S+: Destruction complete/, "lb-a's instance destroyed");
    const instanceBack = at(/^aws_instance\.node-lb-a_instance_\S+: Creation complete/, "lb-a's instance created");
    const drainBack = at(/^terraform_data\.nlb_drain-lb-a_\S+: Creation complete/, "lb-a's drain step created");
    const registered = at(/^aws_lb_target_group_attachment\.nlb_target-\S+-lb-a_\S+: Creation complete/, "lb-a's targets registered");
    t.diagnostic(`second apply ${((Date.now() - began) / 1000).toFixed(0)} s; ${lines.filter((l) => /-lb-a_\S+: (Destroying|Destruction complete|Creation complete)/.test(l)).length} lb-a steps`);
    assert.ok(attachmentsGone >= 0 && attachmentsGone < drainStart, "every target of lb-a is deregistered before the drain starts");
    assert.ok(drainStart < drainSays && drainSays < drainDone, "the drain runs its wait");
    assert.ok(Number(/after (\d+)s/.exec(lines[drainDone])?.[1]) >= DRAIN_SECONDS, `the drain lasts the drain time: ${lines[drainDone]}`);
    assert.ok(drainDone < instanceGone, "the instance goes after the drain");
    assert.ok(instanceGone < instanceBack && instanceBack < drainBack && drainBack < registered, "created again, then registered");
    assert.equal(lines.filter((l) => /-lb-b_\S+: (Destroying|Creating|Modifying)/.test(l)).length, 0, "lb-b is not touched");
    // The changes in place: lb-a's generation marker itself (its input 1 -> 2), which triggers the rest, and
    // lb-a's EC2 status-check alarm, whose dimension and recover action name the instance it watches.
    assert.match(second.stdout, /Apply complete! Resources: \d+ added, 2 changed, \d+ destroyed/);
    assert.deepEqual(
      lines
        .filter((l) => /: Modifications complete/.test(l))
        .map((l) => l.split(":")[0].replace(/_[0-9A-F]{8}$/, ""))
        .sort(),
      ["aws_cloudwatch_metric_alarm.monitoring_alarm-lb-a-system-status", "terraform_data.node-lb-a_generation"],
      "the resources changed in place are lb-a's generation marker and lb-a's status-check alarm",
    );

    const plan = await terraform(tf, ["plan", "-detailed-exitcode", "-input=false", "-no-color"], source);
    assert.equal(plan.code, 0, `the plan after the replacement is not empty:\n${plan.stdout.slice(-4000)}`);
  });
});
