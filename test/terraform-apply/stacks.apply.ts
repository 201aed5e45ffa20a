/* eslint-disable @typescript-eslint/no-explicit-any -- synthesized Terraform JSON, YAML documents and AWS CLI output are untyped here */
/**
 * CI applies what it synthesizes: every example and every variant of the matrix (variants.ts) is
 * synthesized, checked by the real `terraform validate` with the real AWS provider, applied by
 * `terraform apply` to moto, and planned again: the second plan must say "No changes" (exit 0 of
 * `plan -detailed-exitcode`), so the provider reads back exactly what the stack declares.
 *
 * Simulated: the AWS API is moto's, not AWS's. Every change made to the synthesized JSON for the
 * emulator is listed by emulatorCopy() (SETUP / PROVIDER / EMULATOR lines) and printed per variant as a
 * test diagnostic, each with what it leaves unproven on AWS.
 *
 * Run: `npm run test:apply` (part of `npm test`). Needs terraform on PATH, moto + boto3 in `python3`;
 * uses the AWS provider from a filesystem mirror when one is present, else the registry.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, test } from "node:test";
import { stringify } from "yaml";
import { App } from "cdktf";
import { loadEnvironment } from "../../lib/load/load";
import { ImagingLbStack } from "../../lib/constructs/imaging-lb-stack";
import { AMI_SSM_PARAMETERS } from "../../lib/constructs/load-balancer-node";
import { Moto, boto3, startMoto } from "./moto";
import { EMULATOR_SSM_RENAMES, UBUNTU_AMI_STAND_IN } from "../../scripts/emulator-copy";
import { ProviderSource, emulatorCopy, providerSource, terraform } from "./terraform";
import { EXAMPLE_FILES, SEED_SCRIPT, SEED_UBUNTU_AMI_SCRIPT, Seeded, VARIANTS, Variant, example } from "./variants";

const REGION = "eu-west-1";
/** Setup notes printed with every variant's result. */
const diagnostics: string[] = [];
/**
 * Variants applied at the same time, each against its own moto. An apply spends most of its time in the
 * AWS provider's own waits (a VPC, a NAT gateway, an instance each wait for their state with fixed delays),
 * not on the CPU. IMAGING_LB_APPLY_CONCURRENCY overrides it.
 */
const CONCURRENCY = Number(process.env.IMAGING_LB_APPLY_CONCURRENCY ?? 2);

/** The synthesized stack of `envFile` (the app's own path: loader, stack, synth with validations). */
function synthesize(envFile: string, outdir: string): Record<string, any> {
  const env = loadEnvironment(envFile);
  const app = new App({ outdir });
  new ImagingLbStack(app, env.name, { environment: env });
  app.synth();
  return JSON.parse(readFileSync(join(outdir, "stacks", env.name, "cdk.tf.json"), "utf8"));
}

/**
 * boto3 (stdin: {topics, dashboards}): what moto holds of the monitoring an apply made — each alarm with its
 * actions, each topic's KMS key and subscriptions, each dashboard's body.
 */
const MONITORING_SCRIPT = String.raw`
import json, sys, boto3
args = json.load(sys.stdin)
cw, sns = boto3.client("cloudwatch"), boto3.client("sns")
alarms = [a for page in cw.get_paginator("describe_alarms").paginate() for a in page["MetricAlarms"]]
out = {"alarms": {a["AlarmName"]: {"alarm": a["AlarmActions"], "ok": a["OKActions"]} for a in alarms}, "topics": {}, "dashboards": {}}
for arn in args["topics"]:
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    out["topics"][arn] = {"kms": attrs.get("KmsMasterKeyId"), "subscriptions": sorted(s["Protocol"] + " " + s["Endpoint"] for s in subs)}
for name in args["dashboards"]:
    out["dashboards"][name] = json.loads(cw.get_dashboard(DashboardName=name)["DashboardBody"])
print(json.dumps(out))
`;

/** The alarms, topic, subscriptions and dashboard the synthesized stack declares are in moto after the apply. */
async function checkMonitoring(variant: Variant, moto: Moto, synthesized: Record<string, any>, outputs: Record<string, { value: any }>): Promise<void> {
  const declared = Object.values(synthesized.resource.aws_cloudwatch_metric_alarm ?? {}) as any[];
  const topic: string | undefined = outputs.alarm_topic_arn?.value;
  const dashboard: string | undefined = outputs.dashboard_name?.value;
  const held = (await boto3(moto, REGION, MONITORING_SCRIPT, { topics: topic ? [topic] : [], dashboards: dashboard ? [dashboard] : [] })) as any;
  const mine = Object.keys(held.alarms).filter((n) => n.startsWith(`imaging-lb ${variant.name}`));
  assert.deepEqual(mine.sort(), declared.map((a) => a.alarm_name).sort(), `${variant.name}: every declared alarm, and no other, exists`);
  for (const name of mine) {
    assert.ok(held.alarms[name].alarm.includes(topic) && held.alarms[name].ok.includes(topic), `${variant.name}: ${name} notifies ${topic} on ALARM and OK`);
  }
  const declaredTopic = Object.values(synthesized.resource.aws_sns_topic ?? {})[0] as any;
  if (declaredTopic) {
    assert.match(String(held.topics[topic!].kms), /^arn:aws:kms:/, `${variant.name}: the topic is encrypted with its key`);
    const subs = (Object.values(synthesized.resource.aws_sns_topic_subscription ?? {}) as any[]).map((s) => `${s.protocol} ${s.endpoint}`).sort();
    assert.deepEqual(held.topics[topic!].subscriptions, subs, `${variant.name}: the subscriptions`);
  }
  if (dashboard) assert.ok(held.dashboards[dashboard].widgets.length > 3, `${variant.name}: the dashboard's widgets`);
}

/** Resource addresses a plan would change, from its human output. */
function plannedChanges(planOutput: string): string[] {
  return planOutput.split("\n").filter((line) => /^\s*# \S+ (will be|must be)/.test(line)).map((line) => line.trim());
}

/** The first changes of a plan, in full (the first resources' diffs say most), and its summary line. */
function planExcerpt(planOutput: string): string {
  const start = Math.max(0, planOutput.search(/^\s*# \S+ (will be|must be)/m));
  const summary = /^Plan: .*$/m.exec(planOutput)?.[0] ?? "";
  return `${planOutput.slice(start, start + 8000)}\n...\n${summary}`;
}

/**
 * A moto of the variant's own, seeded with the Ubuntu AMI stand-in; `standInImage` is what the emulator
 * copies run in place of a pinned image (loadBalancer.amiId). One moto per variant, not one for the suite:
 * the two variants applied at once then run on both cores instead of sharing one Python process, and no
 * variant sees another's resources.
 */
async function seededMoto(): Promise<{ moto: Moto; standInImage: string }> {
  const moto = await startMoto();
  try {
    return { moto, standInImage: String(await boto3(moto, REGION, SEED_UBUNTU_AMI_SCRIPT, { name: UBUNTU_AMI_STAND_IN })) };
  } catch (error) {
    await moto.stop();
    throw error;
  }
}

async function applyVariant(variant: Variant, moto: Moto, standInImage: string, source: ProviderSource, root: string, note: (line: string) => void): Promise<void> {
  const dir = join(root, variant.name);
  mkdirSync(dir, { recursive: true });
  const seeded: Seeded = variant.seed
    ? ((await boto3(moto, REGION, SEED_SCRIPT, { request: variant.seed })) as Seeded)
    : { subnetIds: {}, routeTableIds: [], allocationIds: [], kmsKeyArns: [] };
  const doc = example(variant.example);
  doc.name = variant.name;
  variant.change?.(doc, seeded);
  const envFile = join(dir, `${variant.name}.yaml`);
  writeFileSync(envFile, stringify(doc));

  const synthesized = synthesize(envFile, join(dir, "synth"));
  const copy = emulatorCopy(synthesized, {
    endpoint: moto.endpoint,
    providerVersion: source.version,
    ssmParameterRenames: EMULATOR_SSM_RENAMES,
    pinnedAmiStandIn: standInImage,
  });
  for (const line of copy.deviations) note(`${variant.name}: ${line}`);
  const tf = join(dir, "tf");
  mkdirSync(tf);
  writeFileSync(join(tf, "main.tf.json"), JSON.stringify(copy.json, null, 1));

  const init = await terraform(tf, ["init", "-input=false", "-no-color"], source);
  assert.equal(init.code, 0, `${variant.name}: terraform init failed:\n${init.stdout}\n${init.stderr}`);
  const validate = await terraform(tf, ["validate", "-no-color"], source);
  assert.equal(validate.code, 0, `${variant.name}: terraform validate failed:\n${validate.stdout}\n${validate.stderr}`);
  assert.match(validate.stdout, /Success! The configuration is valid/);

  const apply = await terraform(tf, ["apply", "-auto-approve", "-input=false", "-no-color", "-parallelism=4"], source);
  assert.equal(apply.code, 0, `${variant.name}: terraform apply against moto failed:\n${apply.stderr}\n${apply.stdout.split("\n").slice(-40).join("\n")}\n${moto.report()}`);
  assert.match(apply.stdout, /Apply complete! Resources: \d+ added, 0 changed, 0 destroyed/);

  const plan = await terraform(tf, ["plan", "-detailed-exitcode", "-input=false", "-no-color", "-parallelism=4"], source);
  assert.equal(
    plan.code,
    0,
    `${variant.name}: the plan after apply is not empty (exit ${plan.code}); the provider reads back something else than the stack declares:\n${plannedChanges(plan.stdout).join("\n")}\n${plan.stderr}\n${planExcerpt(plan.stdout)}`,
  );
  assert.match(plan.stdout, /No changes\. Your infrastructure matches the configuration/);

  const outputs = await terraform(tf, ["output", "-json"], source);
  const outputValues = JSON.parse(outputs.stdout) as Record<string, { value: any }>;
  const instanceIds = outputValues.instance_ids.value as Record<string, string>;
  assert.deepEqual(Object.keys(instanceIds).sort(), Object.keys(doc.loadBalancer.nodes).sort(), `${variant.name}: one instance per node`);
  for (const id of Object.values(instanceIds)) assert.match(id, /^i-[0-9a-f]+$/);
  await checkMonitoring(variant, moto, synthesized, outputValues);
}

test("the matrix covers the monitoring choices: a created topic with subscriptions, an adopted topic, monitoring off", () => {
  const docs = VARIANTS.map((v) => {
    const doc = example(v.example);
    v.change?.(doc, { vpcId: "vpc-0", subnetIds: new Proxy({}, { get: () => "subnet-0" }), routeTableIds: ["rtb-0"], allocationIds: ["eipalloc-0", "eipalloc-1"], kmsKeyArns: ["k0", "k1"], snsTopicArns: ["t0"] });
    return doc.monitoring ?? {};
  });
  assert.ok(docs.some((m) => m.notifications?.email?.length && m.notifications?.https?.length), "e-mail and HTTPS subscriptions");
  assert.ok(docs.some((m) => m.notifications?.topicArn), "an adopted topic");
  assert.ok(docs.some((m) => m.enabled === false), "monitoring off");
});

test("the matrix covers every example", () => {
  for (const file of EXAMPLE_FILES) assert.ok(VARIANTS.some((v) => v.example === file && !v.change), `${file} is applied as it ships`);
});

describe("every example and variant: terraform validate, apply to moto, then a plan with No changes", { concurrency: CONCURRENCY }, () => {
  let root: string;
  let source: ProviderSource;
  let started: number;
  before(() => {
    started = Date.now();
    root = mkdtempSync(join(tmpdir(), "imaging-lb-apply-"));
    source = providerSource(root);
    diagnostics.push(
      source.mirror ? `AWS provider ${source.version} from the filesystem mirror ${source.mirror}` : "AWS provider from the registry (no filesystem mirror found)",
      `EMULATOR ${UBUNTU_AMI_STAND_IN} seeded in each variant's own moto with an Ubuntu AMI moto knows (stand-in for ${AMI_SSM_PARAMETERS["ubuntu-24.04"]})`,
    );
  });
  after(() => {
    if (root && process.env.IMAGING_LB_KEEP_APPLY_DIR !== "1") rmSync(root, { recursive: true, force: true });
    process.stdout.write(`# apply suite wall time: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  });

  for (const variant of VARIANTS) {
    it(`${variant.name}: ${variant.covers}`, { timeout: 20 * 60_000 }, async (t) => {
      for (const line of diagnostics) t.diagnostic(line);
      const begun = Date.now();
      const { moto, standInImage } = await seededMoto();
      try {
        await applyVariant(variant, moto, standInImage, source, root, (line) => t.diagnostic(line));
      } finally {
        await moto.stop();
      }
      t.diagnostic(`${variant.name}: ${((Date.now() - begun) / 1000).toFixed(0)} s`);
    });
  }
});
