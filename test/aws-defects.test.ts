/**
 * Smaller AWS defects (issue 12, item 6), each asserted on what would be deployed.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { parseEnvironment } from "../lib/load/load";
import { planInterfaces } from "../lib/plan/interface-plan";
import { securityRules } from "../lib/plan/security-rules";
import { Testing } from "cdktf";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const EXAMPLES = join(__dirname, "..", "..", "examples");
const example = (file: string) => parse(readFileSync(join(EXAMPLES, file), "utf8")) as Json;

describe("two-arm clientAddress source from the VIP", () => {
  const doc = example("agfa-ei-two-arm.yaml");
  doc.services = { ...doc.services, dicom: { ...doc.services.dicom, clientAddress: "source", sourceAddress: "vip" } };
  const env = parseEnvironment(stringify(doc), "two-arm-source.yaml");
  const node = env.nodes[0];
  const dicom = env.services.find((s) => s.name === "dicom");
  const eth1 = planInterfaces(env, node).find((p) => p.name === "eth1");
  assert.ok(dicom && eth1);

  it("eth1 (the VIP's interface) gets egress to every DICOM server on the DICOM ports, from the VIP", () => {
    const egress = securityRules(env, node, eth1).filter((r) => r.direction === "egress");
    for (const server of ["10.20.1.21/32", "10.20.1.22/32"]) {
      for (const port of [104, 110]) {
        assert.ok(
          egress.some((r) => r.cidr === server && r.port !== undefined && r.port <= port && port <= (r.toPort ?? r.port)),
          `egress ${server}:${port} on eth1 (rules: ${egress.map((r) => r.key).join(", ")})`,
        );
      }
    }
    assert.ok(egress.every((r) => r.description.includes(`from ${dicom.sourceAddress}`)));
  });

  it("services that keep snat get no egress on eth1", () => {
    const plain = parseEnvironment(readFileSync(join(EXAMPLES, "agfa-ei-two-arm.yaml"), "utf8"), "two-arm.yaml");
    const plainEth1 = planInterfaces(plain, plain.nodes[0]).find((p) => p.name === "eth1");
    assert.ok(plainEth1);
    assert.deepEqual(securityRules(plain, plain.nodes[0], plainEth1).filter((r) => r.direction === "egress"), []);
  });
});

describe("secret ARNs", () => {
  it("an ARN without the six-character suffix is refused at its field, with the fix", () => {
    const doc = example("agfa-ei-one-arm.yaml");
    doc.admin.statsPasswordSecretArn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ei-one-arm/stats";
    doc.tls.certificates.web.secretArn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ei-one-arm/web";
    const text = stringify(doc);
    assert.throws(
      () => parseEnvironment(text, "sites/partial.yaml"),
      (e: Error) => {
        assert.match(e.message, /2 problems/);
        assert.match(e.message, /sites\/partial\.yaml:\d+:\d+ admin\.statsPasswordSecretArn: expected the secret's full ARN, ending in Secrets Manager's six-character suffix/);
        assert.match(e.message, /tls\.certificates\.web\.secretArn: expected the secret's full ARN/);
        assert.match(e.message, /aws secretsmanager describe-secret --secret-id <name> --query ARN/);
        return true;
      },
    );
  });
});

describe("CloudWatch Logs group", () => {
  it("admin.cloudWatchLogGroup is created by the stack, and the instances boot after it", () => {
    const doc = example("agfa-ei-two-arm.yaml");
    doc.admin.cloudWatchLogGroup = "/imaging-lb/prod/haproxy";
    const env = parseEnvironment(stringify(doc), "logs.yaml");
    const json = JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), env.name, { environment: env }), true)) as Json;
    const groups = Object.entries((json.resource.aws_cloudwatch_log_group ?? {}) as Record<string, Json>);
    assert.equal(groups.length, 1);
    assert.equal(groups[0][1].name, "/imaging-lb/prod/haproxy");
    for (const instance of Object.values(json.resource.aws_instance as Record<string, Json>)) {
      assert.ok((instance.depends_on as string[]).includes(`aws_cloudwatch_log_group.${groups[0][0]}`));
    }
  });
});

describe("renaming an environment file", () => {
  it("changes nothing deployed: the synthesized stack of the same content under another file name is identical", () => {
    const text = readFileSync(join(EXAMPLES, "agfa-ei-ha-pair.yaml"), "utf8");
    const synth = (file: string) => {
      const env = parseEnvironment(text, file);
      return Testing.synth(new ImagingLbStack(Testing.app(), env.name, { environment: env }), true);
    };
    const before = synth("sites/agfa-ei-ha-pair.yaml");
    const after = synth("sites/eu-west-1/hospital-a.yaml");
    assert.ok(before.includes("user_data_base64"));
    assert.equal(after, before);
  });
});

describe("the nodes' image is an explicit input", () => {
  const synthWith = (amiId?: string) => {
    const doc = example("agfa-ei-ha-pair.yaml");
    if (amiId) doc.loadBalancer.amiId = amiId;
    const env = parseEnvironment(stringify(doc), "image.yaml");
    return JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), env.name, { environment: env }), true)) as Json;
  };

  it("loadBalancer.amiId pins every node's AMI with no SSM lookup; a new id is taken by a node when its generation is raised (one node per change)", () => {
    const json = synthWith("ami-0123456789abcdef0");
    assert.equal(json.data?.aws_ssm_parameter, undefined);
    const instances = Object.values(json.resource.aws_instance as Record<string, Json>);
    assert.equal(instances.length, 2);
    for (const instance of instances) {
      assert.equal(instance.ami, "ami-0123456789abcdef0");
      assert.ok(instance.lifecycle.ignore_changes.includes("ami"), "the image changes with the machine's generation only");
      assert.match(instance.lifecycle.replace_triggered_by[0], /^terraform_data\./);
    }
    const next = Object.values(synthWith("ami-0fedcba9876543210").resource.aws_instance as Record<string, Json>);
    for (const instance of next) assert.equal(instance.ami, "ami-0fedcba9876543210");
  });

  it("without a pin the image each node runs is an output (image_ids), the value to pin", () => {
    const json = synthWith();
    assert.ok(json.data.aws_ssm_parameter);
    assert.match(JSON.stringify(json.output.image_ids.value), /aws_instance\.node-lb-a_instance_[0-9A-F]+\.ami/);
  });
});

describe("a certificate ARN change", () => {
  it("replaces the instance only after the role's secrets policy names the new ARN (the instance depends on that policy)", () => {
    const doc = example("agfa-ei-two-arm.yaml");
    doc.tls.certificates.web.secretArn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ei-two-arm/web-tls-2027-XyZ123";
    const env = parseEnvironment(stringify(doc), "cert.yaml");
    const json = JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), env.name, { environment: env }), true)) as Json;
    const [policyId, policy] = Object.entries(json.resource.aws_iam_role_policy as Record<string, Json>).find(([id]) => id.includes("secrets")) ?? [];
    assert.ok(policyId && policy);
    assert.match(policy.policy as string, /web-tls-2027-XyZ123/);
    for (const instance of Object.values(json.resource.aws_instance as Record<string, Json>)) {
      assert.ok((instance.depends_on as string[]).includes(`aws_iam_role_policy.${policyId}`));
    }
  });
});
