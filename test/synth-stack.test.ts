/**
 * The environment stack: provider, backend, outputs, and every bundled example synthesizing with
 * validations on.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Testing } from "cdktf";
import { loadEnvironment, parseEnvironment } from "../lib/load/load";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const EXAMPLES = join(__dirname, "..", "..", "examples");
const synthFile = (file: string): Json => {
  const env = loadEnvironment(join(EXAMPLES, file));
  return JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), env.name, { environment: env }), true)) as Json;
};

describe("environment stack", () => {
  const onearm = synthFile("agfa-ei-one-arm.yaml");
  const twoarm = synthFile("agfa-ei-two-arm.yaml");
  const pair = synthFile("agfa-ei-ha-pair.yaml");

  it("every bundled example synthesizes with validations, one node per loadBalancer.nodes entry", () => {
    assert.equal(Object.keys(onearm.resource.aws_instance).length, 1);
    assert.equal(Object.keys(twoarm.resource.aws_instance).length, 1);
    assert.equal(Object.keys(pair.resource.aws_instance).length, 2);
  });

  it("AWS provider: the environment's region and default tags with imaging-lb:environment", () => {
    assert.deepEqual(pair.provider.aws, [{ region: "eu-west-1", default_tags: [{ tags: { "imaging-lb:environment": "ei-ha-pair" } }] }]);
    const env = loadEnvironment(join(EXAMPLES, "agfa-ei-two-arm.yaml"));
    const tagged = { ...env, tags: { CostCenter: "radiology", Owner: "pacs-team" } };
    const json = JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), "tagged", { environment: tagged }), true)) as Json;
    assert.deepEqual(json.provider.aws[0].default_tags, [{ tags: { CostCenter: "radiology", Owner: "pacs-team", "imaging-lb:environment": "ei-two-arm" } }]);
  });

  it("S3 backend: encrypted, S3-native lock file, key from the environment", () => {
    assert.deepEqual(pair.terraform.backend, {
      s3: { bucket: "example-hospital-terraform-state", key: "imaging-lb/ei-ha-pair.tfstate", region: "eu-west-1", encrypt: true, use_lockfile: true },
    });
    assert.equal(twoarm.terraform.backend, undefined, "no stateBackend: local state");
  });

  it("outputs: VIP addresses, instance ids, ENI ids, stats URL per node", () => {
    assert.deepEqual(pair.output.vip_addresses.value, { core: "10.40.2.101", web: "10.40.2.100" });
    assert.deepEqual(Object.keys(pair.output.instance_ids.value), ["lb-a", "lb-b"]);
    assert.match(pair.output.instance_ids.value["lb-a"], /^\$\{aws_instance\.node-lb-a_instance_[0-9A-F]{8}\.id\}$/);
    assert.deepEqual(Object.keys(pair.output.eni_ids.value["lb-b"]), ["eth0", "eth1"]);
    assert.deepEqual(Object.keys(onearm.output.eni_ids.value["lb-1"]), ["eth0"]);
    assert.deepEqual(pair.output.stats_urls.value, { "lb-a": "http://10.40.1.10:8404/", "lb-b": "http://10.40.1.11:8404/" });
    assert.equal(pair.output.elastic_ips, undefined);
  });

  it("outputs: the NAT gateway's public IP of a created VPC (allow-lists), none for an adopted VPC", () => {
    for (const json of [onearm, twoarm, pair]) {
      const eip = Object.keys(json.resource.aws_eip).find((id) => id.startsWith("network_nat-eip_"));
      assert.equal(json.output.nat_public_ip.value, `\${aws_eip.${eip}.public_ip}`);
    }
    const env = loadEnvironment(join(EXAMPLES, "agfa-ei-two-arm.yaml"));
    const adopted = {
      ...env,
      network: { ...env.network, vpcId: "vpc-0a1b2c3d4e5f60718", natSubnet: undefined },
      subnets: env.subnets.map((s, i) => ({ ...s, subnetId: `subnet-0a1b2c3d4e5f6071${i}` })),
    };
    const json = JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), "adopted", { environment: adopted }), true)) as Json;
    assert.equal(json.output.nat_public_ip, undefined);
  });

  it("outputs: the Elastic IPs when a VIP has one", () => {
    const text = JSON.stringify({
      name: "eip",
      region: "eu-west-1",
      network: {
        layout: "two-arm",
        vpcCidr: "10.30.0.0/16",
        internal: { cidr: "10.30.1.0/24", availabilityZone: "eu-west-1a" },
        external: { cidr: "10.30.2.0/24", availabilityZone: "eu-west-1a" },
        natSubnet: { cidr: "10.30.0.0/24", availabilityZone: "eu-west-1a" },
      },
      loadBalancer: { nodes: { "lb-1": { internalAddress: "10.30.1.10", externalAddress: "10.30.2.10" } } },
      vips: { web: { address: "10.30.2.100", elasticIp: true } },
      services: { web: { frontendPorts: [443], mode: "tcp" } },
      servers: { s1: { address: "10.30.1.21" } },
      access: { clientCidrs: ["0.0.0.0/0"], adminCidrs: ["10.99.0.0/24"] },
      admin: { statsPasswordSecretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:eip/stats-AbCdEf" },
    });
    const env = parseEnvironment(text, "eip.yaml");
    const json = JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), env.name, { environment: env }), true)) as Json;
    assert.deepEqual(json.output.elastic_ips.value, { web: "${aws_eip.eip-web.public_ip}" });
    assert.equal(json.resource.aws_eip["eip-web"].lifecycle, undefined, "single node: Terraform keeps the association");
    assert.match(json.output.nat_public_ip.value, /^\$\{aws_eip\.network_nat-eip_[0-9A-F]{8}\.public_ip\}$/, "the NAT gateway's address is its own output");
  });

  it("user data reaches Terraform base64-encoded, never as interpolatable text", () => {
    for (const json of [onearm, twoarm, pair]) {
      for (const instance of Object.values(json.resource.aws_instance) as Json[]) {
        assert.equal(instance.user_data, undefined);
        assert.match(instance.user_data_base64, /^[A-Za-z0-9+/]+=*$/);
      }
    }
  });
});
