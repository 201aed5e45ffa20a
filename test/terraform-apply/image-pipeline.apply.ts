/* eslint-disable @typescript-eslint/no-explicit-any -- synthesized Terraform JSON is untyped here */
/**
 * loadBalancer.imageBuild (issue 25): the EC2 Image Builder pipeline of the baked example, checked by the
 * real `terraform validate` and planned by the real AWS provider against moto (SIMULATED AWS). NOT
 * applied: moto has no Image Builder API, so what AWS itself would refuse at create time (a component
 * document, an `ssm:` parent image) is not proven here; the plan proves the provider accepts every
 * argument and that the build subnet's data source resolves.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { App } from "cdktf";
import { stringify } from "yaml";
import { loadEnvironment } from "../../lib/load/load";
import { componentDocument } from "../../lib/constructs/image-builder";
import { ImagingLbStack } from "../../lib/constructs/imaging-lb-stack";
import { EMULATOR_SSM_RENAMES } from "../../scripts/emulator-copy";
import { Moto, boto3, startMoto } from "./moto";
import { ProviderSource, emulatorCopy, providerSource, terraform } from "./terraform";
import { SEED_SCRIPT, Seeded, example } from "./variants";

const REGION = "eu-west-1";

describe("imageBuild: the Image Builder pipeline validates and plans with the real provider (moto; not applied: no Image Builder there)", { timeout: 15 * 60_000 }, () => {
  let root: string;
  let moto: Moto;
  let source: ProviderSource;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "imaging-lb-image-pipeline-"));
    moto = await startMoto();
    source = providerSource(root);
  });
  after(async () => {
    await moto?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("terraform validate, then a plan that creates the pipeline, its recipe, component, infrastructure and distribution", async () => {
    const seeded = (await boto3(moto, REGION, SEED_SCRIPT, { request: { vpc: { cidr: "10.250.0.0/16", subnets: { build: { cidr: "10.250.1.0/24", az: "eu-west-1a" } } } } })) as Seeded;
    const doc = example("agfa-ei-baked.yaml");
    doc.name = "t-image-build";
    doc.loadBalancer.imageBuild = { subnetId: seeded.subnetIds.build, schedule: "cron(0 4 ? * SUN *)" };
    const envFile = join(root, "t-image-build.yaml");
    writeFileSync(envFile, stringify(doc));
    const env = loadEnvironment(envFile);
    const app = new App({ outdir: join(root, "synth") });
    new ImagingLbStack(app, env.name, { environment: env });
    app.synth();
    const json = JSON.parse(readFileSync(join(root, "synth", "stacks", env.name, "cdk.tf.json"), "utf8")) as Record<string, any>;
    const copy = emulatorCopy(json, { endpoint: moto.endpoint, providerVersion: source.version, ssmParameterRenames: EMULATOR_SSM_RENAMES });
    const tf = join(root, "tf");
    mkdirSync(tf);
    writeFileSync(join(tf, "main.tf.json"), JSON.stringify(copy.json, null, 1));

    const init = await terraform(tf, ["init", "-input=false", "-no-color"], source);
    assert.equal(init.code, 0, `terraform init failed:\n${init.stdout}\n${init.stderr}`);
    const validate = await terraform(tf, ["validate", "-no-color"], source);
    assert.equal(validate.code, 0, `terraform validate failed:\n${validate.stdout}\n${validate.stderr}`);
    const plan = await terraform(tf, ["plan", "-input=false", "-no-color", "-out=plan.bin"], source);
    assert.equal(plan.code, 0, `terraform plan failed:\n${plan.stderr}\n${plan.stdout.slice(-4000)}`);
    const planned = plan.stdout.split("\n").filter((l) => /^\s*# \S+ will be created/.test(l)).map((l) => l.trim().split(" ")[1].split(".")[0]);
    for (const type of [
      "aws_imagebuilder_image_pipeline",
      "aws_imagebuilder_image_recipe",
      "aws_imagebuilder_component",
      "aws_imagebuilder_infrastructure_configuration",
      "aws_imagebuilder_distribution_configuration",
      "aws_iam_instance_profile",
      "aws_security_group",
    ]) {
      assert.ok(planned.includes(type), `the plan creates ${type}: ${planned.join(", ")}`);
    }
    assert.match(plan.stdout, /schedule_expression\s+= "cron\(0 4 \? \* SUN \*\)"/);
    assert.match(plan.stdout, /parent_image\s+= "ssm:\/aws\/service\/debian\/release\/13\/latest\/amd64"/);
    // What AWS would receive: the component document byte for byte, the script's ${...} and %{...} intact.
    const shown = await terraform(tf, ["show", "-json", "plan.bin"], source);
    assert.equal(shown.code, 0, shown.stderr);
    const changes = (JSON.parse(shown.stdout) as { resource_changes: Array<{ type: string; change: { after: Record<string, any> } }> }).resource_changes;
    const component = changes.find((c) => c.type === "aws_imagebuilder_component");
    assert.equal(component?.change.after.data, componentDocument(env));
    assert.match(component?.change.after.data, /"\$\{PACKAGES\[@\]\}"/);
  });
});
