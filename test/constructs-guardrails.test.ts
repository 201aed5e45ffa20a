/**
 * Guardrails: each rule fires on a deliberately bad resource in a test stack (including one made bad by
 * an escape-hatch override), and the real stacks pass.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { EbsVolume } from "@cdktf/provider-aws/lib/ebs-volume";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy";
import { Instance, InstanceConfig } from "@cdktf/provider-aws/lib/instance";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { SecurityGroupRule } from "@cdktf/provider-aws/lib/security-group-rule";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { App, Aspects, TerraformStack, Testing } from "cdktf";
import { loadEnvironment } from "../lib/load/load";
import { ImagingLbGuardrails, checkResource } from "../lib/constructs/guardrails";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";

const EXAMPLES = join(__dirname, "..", "..", "examples");

function testStack(build: (stack: TerraformStack) => void): TerraformStack {
  const stack = new TerraformStack(Testing.app(), "bad");
  new AwsProvider(stack, "aws", { region: "eu-west-1" });
  Aspects.of(stack).add(new ImagingLbGuardrails({ adminPorts: [8404, 10000] }));
  build(stack);
  return stack;
}

const GOOD_INSTANCE: InstanceConfig = {
  ami: "ami-0123456789abcdef0",
  instanceType: "t3.micro",
  metadataOptions: { httpTokens: "required", httpPutResponseHopLimit: 1 },
  rootBlockDevice: { encrypted: true, volumeType: "gp3" },
  userDataBase64: Buffer.from("#cloud-config\n").toString("base64"),
};

/** Asserts that synthesis with validations fails naming the rule and the resource path. */
function assertRejected(stack: TerraformStack, rule: string, path: string): void {
  assert.throws(() => Testing.synth(stack, true), (e: Error) => {
    assert.match(e.message, new RegExp(`\\[bad/${path}\\] \\[guardrail ${rule}\\]`), e.message);
    return true;
  });
  const node = stack.node.findAll().find((c) => c.node.path === `bad/${path}`);
  assert.ok(node, `construct bad/${path}`);
  assert.ok(
    node.node.metadata.some((m) => m.type === "@cdktf/error" && String(m.data).includes(`[guardrail ${rule}]`)),
    `error annotation on bad/${path}: ${JSON.stringify(node.node.metadata.map((m) => m.type))}`,
  );
}

const PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----\n";

describe("guardrails", () => {
  it("a compliant resource passes", () => {
    const stack = testStack((s) => new Instance(s, "ok", GOOD_INSTANCE));
    assert.doesNotThrow(() => Testing.synth(stack, true));
  });

  it("imdsv1: http_tokens not required, or metadata options missing", () => {
    assertRejected(testStack((s) => new Instance(s, "i", { ...GOOD_INSTANCE, metadataOptions: { httpTokens: "optional" } })), "imdsv1", "i");
    assertRejected(testStack((s) => new Instance(s, "i", { ...GOOD_INSTANCE, metadataOptions: undefined })), "imdsv1", "i");
  });

  it("imdsv1: also when an escape-hatch override weakens a compliant instance", () => {
    const stack = testStack((s) => new Instance(s, "i", GOOD_INSTANCE).addOverride("metadata_options.http_tokens", "optional"));
    assertRejected(stack, "imdsv1", "i");
  });

  it("unencrypted-volume: root volume, extra EBS block device, standalone EBS volume", () => {
    assertRejected(testStack((s) => new Instance(s, "i", { ...GOOD_INSTANCE, rootBlockDevice: { encrypted: false } })), "unencrypted-volume", "i");
    assertRejected(testStack((s) => new Instance(s, "i", { ...GOOD_INSTANCE, ebsBlockDevice: [{ deviceName: "/dev/sdf", volumeSize: 10 }] })), "unencrypted-volume", "i");
    assertRejected(testStack((s) => new EbsVolume(s, "v", { availabilityZone: "eu-west-1a", size: 10 })), "unencrypted-volume", "v");
  });

  it("admin-port-open-to-internet: stats port or peers port from 0.0.0.0/0 or ::/0, in every rule flavour", () => {
    assertRejected(
      testStack((s) => new VpcSecurityGroupIngressRule(s, "r", { securityGroupId: "sg-1", ipProtocol: "tcp", fromPort: 8404, toPort: 8404, cidrIpv4: "0.0.0.0/0" })),
      "admin-port-open-to-internet",
      "r",
    );
    assertRejected(
      testStack((s) => new VpcSecurityGroupIngressRule(s, "r", { securityGroupId: "sg-1", ipProtocol: "tcp", fromPort: 9000, toPort: 11000, cidrIpv6: "::/0" })),
      "admin-port-open-to-internet",
      "r",
    );
    assertRejected(
      testStack((s) => new SecurityGroupRule(s, "r", { type: "ingress", securityGroupId: "sg-1", protocol: "tcp", fromPort: 8000, toPort: 9000, cidrBlocks: ["0.0.0.0/0"] })),
      "admin-port-open-to-internet",
      "r",
    );
    assertRejected(
      testStack((s) => new SecurityGroup(s, "g", { ingress: [{ protocol: "tcp", fromPort: 8404, toPort: 8404, cidrBlocks: ["0.0.0.0/0"] }] })),
      "admin-port-open-to-internet",
      "g",
    );
  });

  it("the stats port from an admin CIDR is fine", () => {
    const stack = testStack((s) => new VpcSecurityGroupIngressRule(s, "r", { securityGroupId: "sg-1", ipProtocol: "tcp", fromPort: 8404, toPort: 8404, cidrIpv4: "10.99.0.0/24" }));
    assert.doesNotThrow(() => Testing.synth(stack, true));
  });

  it("ssh-ingress: port 22 from any source, and all-protocol rules that include it", () => {
    assertRejected(
      testStack((s) => new VpcSecurityGroupIngressRule(s, "r", { securityGroupId: "sg-1", ipProtocol: "tcp", fromPort: 22, toPort: 22, cidrIpv4: "10.99.0.0/24" })),
      "ssh-ingress",
      "r",
    );
    assertRejected(testStack((s) => new VpcSecurityGroupIngressRule(s, "r", { securityGroupId: "sg-1", ipProtocol: "-1", cidrIpv4: "10.0.0.0/8" })), "ssh-ingress", "r");
    assertRejected(
      testStack((s) => new SecurityGroup(s, "g", { ingress: [{ protocol: "tcp", fromPort: 0, toPort: 65535, cidrBlocks: ["10.0.0.0/8"] }] })),
      "ssh-ingress",
      "g",
    );
  });

  it("iam-wildcard-action: `*` and `service:*` in inline policies and policy documents; Deny statements are fine", () => {
    const policy = (action: string, effect = "Allow") => JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: effect, Action: [action], Resource: ["*"] }] });
    assertRejected(testStack((s) => new IamRolePolicy(s, "p", { role: "r", policy: policy("*") })), "iam-wildcard-action", "p");
    assertRejected(testStack((s) => new IamRolePolicy(s, "p", { role: "r", policy: policy("ec2:*") })), "iam-wildcard-action", "p");
    assertRejected(testStack((s) => new DataAwsIamPolicyDocument(s, "d", { statement: [{ actions: ["s3:*"], resources: ["*"] }] })), "iam-wildcard-action", "d");
    const deny = testStack((s) => new IamRolePolicy(s, "p", { role: "r", policy: policy("*", "Deny") }));
    assert.doesNotThrow(() => Testing.synth(deny, true));
  });

  it("private-key-in-user-data: base64, gzip+base64 and plain user data", () => {
    assertRejected(testStack((s) => new Instance(s, "i", { ...GOOD_INSTANCE, userDataBase64: Buffer.from(`#cloud-config\n${PEM}`).toString("base64") })), "private-key-in-user-data", "i");
    assertRejected(testStack((s) => new Instance(s, "i", { ...GOOD_INSTANCE, userDataBase64: gzipSync(`#cloud-config\n${PEM}`).toString("base64") })), "private-key-in-user-data", "i");
    assertRejected(testStack((s) => new Instance(s, "i", { ...GOOD_INSTANCE, userDataBase64: undefined, userData: `#!/bin/sh\necho '${PEM}' > /k` })), "private-key-in-user-data", "i");
    assert.deepEqual(checkResource("aws_instance", { ...asAttrs(GOOD_INSTANCE), user_data: "-----BEGIN CERTIFICATE-----" }).map((f) => f.rule), []);
  });

  it("the real stacks pass: every example, with validations", () => {
    for (const file of ["agfa-ei-one-arm.yaml", "agfa-ei-two-arm.yaml", "agfa-ei-ha-pair.yaml"]) {
      const env = loadEnvironment(join(EXAMPLES, file));
      const stack = new ImagingLbStack(Testing.app(), env.name, { environment: env });
      assert.doesNotThrow(() => Testing.synth(stack, true), file);
      const errors = stack.node.findAll().flatMap((c) => c.node.metadata.filter((m) => m.type === "@cdktf/error"));
      assert.deepEqual(errors, [], file);
    }
  });

  it("a real app.synth() fails too (the aspect is on the stack, not the app)", () => {
    const outdir = mkdtempSync(join(tmpdir(), "imaging-lb-guardrails-"));
    try {
      const app = new App({ outdir, stackTraces: false });
      const stack = new TerraformStack(app, "bad");
      new AwsProvider(stack, "aws", { region: "eu-west-1" });
      Aspects.of(stack).add(new ImagingLbGuardrails());
      new Instance(stack, "i", { ...GOOD_INSTANCE, metadataOptions: { httpTokens: "optional" } });
      assert.throws(() => app.synth(), /\[bad\/i\] \[guardrail imdsv1\]/);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});

function asAttrs(config: InstanceConfig): Record<string, unknown> {
  return {
    metadata_options: { http_tokens: config.metadataOptions?.httpTokens },
    root_block_device: { encrypted: config.rootBlockDevice?.encrypted },
  };
}
