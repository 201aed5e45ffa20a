/**
 * loadBalancer.imageBuild (issue 25): the EC2 Image Builder pipeline synthesized with the environment's
 * stack — the recipe's exact text as its component, the OS's current image as the parent, IMDSv2 and no
 * SSH on the build instance, a version that follows the recipe's text. The real provider plans it in
 * test/terraform-apply/image-pipeline.apply.ts (moto has no Image Builder, so nothing applies it).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Testing } from "cdktf";
import { parse, stringify } from "yaml";
import { readFileSync } from "node:fs";
import { parseEnvironment } from "../lib/load/load";
import { componentDocument, terraformLiteral } from "../lib/constructs/image-builder";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";
import { imageRecipe } from "../lib/image/recipe";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const EXAMPLE = join(__dirname, "..", "..", "examples", "agfa-ei-baked.yaml");
const SUBNET = "subnet-0a1b2c3d4e5f60799";

function withImageBuild(patch: Json = {}): Json {
  const doc = parse(readFileSync(EXAMPLE, "utf8")) as Json;
  doc.loadBalancer.imageBuild = { subnetId: SUBNET, ...patch };
  return doc;
}
function synth(doc: Json): Json {
  const env = parseEnvironment(stringify(doc), "baked.yaml");
  return JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), env.name, { environment: env }), true)) as Json;
}
const only = (json: Json, type: string): Json => {
  const all = Object.values(json.resource[type] ?? {}) as Json[];
  assert.equal(all.length, 1, type);
  return all[0];
};

describe("image builder", () => {
  const doc = withImageBuild({ schedule: "cron(0 4 ? * SUN *)" });
  const env = parseEnvironment(stringify(doc), "baked.yaml");
  const json = synth(doc);

  it("no imageBuild, no Image Builder resource", () => {
    const plain = synth(parse(readFileSync(EXAMPLE, "utf8")) as Json);
    assert.deepEqual(Object.keys(plain.resource).filter((t) => t.startsWith("aws_imagebuilder")), []);
    assert.equal(plain.output.image_pipeline_arn, undefined);
  });

  it("the component runs the rendered recipe, escaped for Terraform only; its test phase checks the manifest and the series", () => {
    const component = only(json, "aws_imagebuilder_component");
    assert.equal(component.data, terraformLiteral(componentDocument(env)));
    const document = parse(componentDocument(env)) as Json;
    assert.equal(document.phases[0].steps[0].inputs.commands[0], imageRecipe(env).script, "the recipe's text, unfolded");
    assert.match(document.phases[1].steps[0].inputs.commands[0], new RegExp(`"recipe": "${imageRecipe(env).version.replace(/\./g, "\\.")}"`));
    assert.equal(component.version, imageRecipe(env).version);
    assert.equal(component.platform, "Linux");
    assert.deepEqual(component.lifecycle, { create_before_destroy: true });
  });

  it("terraformLiteral doubles exactly the template openers", () => {
    assert.equal(terraformLiteral('a ${b} %{c} $d %e ${"${"}'), 'a $${b} %%{c} $d %e $${"$${"}');
  });

  it("the recipe starts from the OS's current image by its SSM parameter; versions follow the text", () => {
    const recipe = only(json, "aws_imagebuilder_image_recipe");
    assert.equal(recipe.parent_image, "ssm:/aws/service/debian/release/13/latest/amd64");
    assert.match(recipe.version, /^3\.0\.\d+$/);
    const other = synth(withImageBuild({ schedule: "cron(0 4 ? * SUN *)" }));
    assert.equal(only(other, "aws_imagebuilder_image_recipe").version, recipe.version, "same text, same version");
    const ubuntu = withImageBuild();
    ubuntu.loadBalancer.os = "ubuntu-24.04";
    const u = synth(ubuntu);
    assert.notEqual(only(u, "aws_imagebuilder_component").version, only(json, "aws_imagebuilder_component").version);
    assert.match(only(u, "aws_imagebuilder_image_recipe").parent_image, /^ssm:\/aws\/service\/canonical\/ubuntu\/server\/24\.04\//);
  });

  it("the build instance: IMDSv2, terminated on failure, no key pair, SSM and Image Builder's policies only, HTTP(S) out and nothing in", () => {
    const infra = only(json, "aws_imagebuilder_infrastructure_configuration");
    assert.deepEqual(infra.instance_metadata_options, { http_tokens: "required", http_put_response_hop_limit: 1 });
    assert.equal(infra.terminate_instance_on_failure, true);
    assert.equal(infra.key_pair, undefined);
    assert.equal(infra.subnet_id, SUBNET);
    assert.deepEqual(infra.instance_types, ["c6i.large"]);
    const attachments = (Object.values(json.resource.aws_iam_role_policy_attachment) as Json[]).filter((a) => String(a.role).includes("image-builder"));
    assert.deepEqual(attachments.map((a) => a.policy_arn).sort(), ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore", "arn:aws:iam::aws:policy/EC2InstanceProfileForImageBuilder"]);
    const groupId = Object.keys(json.resource.aws_security_group).find((id) => id.startsWith("image-builder_"));
    assert.ok(groupId);
    const egress = (Object.values(json.resource.aws_vpc_security_group_egress_rule) as Json[]).filter((r) => r.security_group_id.includes(groupId!));
    assert.deepEqual(egress.map((r) => [r.from_port, r.cidr_ipv4]).sort(), [[443, "0.0.0.0/0"], [80, "0.0.0.0/0"]]);
    assert.equal((Object.values(json.resource.aws_vpc_security_group_ingress_rule) as Json[]).filter((r) => r.security_group_id.includes(groupId!)).length, 0);
  });

  it("the pipeline: tests on, the schedule only on updates, and its ARN as an output; the AMI's name and tags say what it is", () => {
    const pipeline = only(json, "aws_imagebuilder_image_pipeline");
    assert.deepEqual(pipeline.schedule, { schedule_expression: "cron(0 4 ? * SUN *)", pipeline_execution_start_condition: "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE" });
    assert.equal(pipeline.image_tests_configuration.image_tests_enabled, true);
    assert.match(json.output.image_pipeline_arn.value, /aws_imagebuilder_image_pipeline\./);
    assert.equal(only(synth(withImageBuild()), "aws_imagebuilder_image_pipeline").schedule, undefined);
    const ami = only(json, "aws_imagebuilder_distribution_configuration").distribution[0].ami_distribution_configuration;
    assert.equal(ami.name, "imaging-lb-ei-baked-debian-13-{{ imagebuilder:buildDate }}");
    assert.deepEqual(ami.ami_tags, { "imaging-lb:recipe": imageRecipe(env).version, "imaging-lb:os": "debian-13", "imaging-lb:haproxy": "3.0" });
  });

  it("imageBuild's fields: located errors for a bad subnet id and schedule", () => {
    const bad = withImageBuild({ subnetId: "subnet-x", schedule: "weekly" });
    assert.throws(() => parseEnvironment(stringify(bad), "baked.yaml"), (e: Error) => {
      assert.match(e.message, /baked\.yaml:\d+:\d+ loadBalancer\.imageBuild\.subnetId: /);
      assert.match(e.message, /baked\.yaml:\d+:\d+ loadBalancer\.imageBuild\.schedule: expected an EventBridge cron expression such as cron\(0 4 \? \* SUN \*\)/);
      return true;
    });
  });
});
