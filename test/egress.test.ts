/**
 * A node's way out (issue 25): a stock image installs packages at first boot and needs an internet path; a
 * baked image (loadBalancer.image baked) needs none. The loader's errors, the egress plan, the created
 * VPC without a NAT or internet gateway, security groups with no 0.0.0.0/0 rule, what `validate` prints,
 * and the diagram.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { stringify } from "yaml";
import { Testing } from "cdktf";
import { parseEnvironment, loadEnvironment } from "../lib/load/load";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";
import { renderMermaid } from "../lib/diagram";
import { egressPlan, egressSummary } from "../lib/plan/egress";
import { environment } from "./helpers/env";
import { tempDir } from "./helpers/tools";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ROOT = join(__dirname, "..", "..");
const BAKED_EXAMPLE = join(ROOT, "examples", "agfa-ei-baked.yaml");
const AMI = "ami-0a1b2c3d4e5f60718";

/** The two-arm single node of the fixtures on a baked image, without natSubnet. */
const BAKED = environment({ network: { natSubnet: null }, loadBalancer: { image: "baked", amiId: AMI } });

function synth(raw: object): Json {
  const env = parseEnvironment(JSON.stringify(raw), "test.yaml");
  return JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), env.name, { environment: env }), true)) as Json;
}
const bare = (id: string) => id.replace(/_[0-9A-F]{8}$/, "");
/** Every problem message of loading `raw` (the loader reports them all at once). */
function problems(raw: object): string {
  try {
    parseEnvironment(JSON.stringify(raw), "site.yaml");
  } catch (e) {
    return (e as Error).message;
  }
  return "";
}
const egressRules = (json: Json) => (Object.values(json.resource.aws_vpc_security_group_egress_rule ?? {}) as Json[]);

describe("egress: the loader", () => {
  it("a stock image in a created VPC without natSubnet: located, and names both ways out", () => {
    const message = problems(environment({ network: { natSubnet: null } }));
    assert.match(message, /site\.yaml:\d+:\d+ network: missing natSubnet: with loadBalancer\.image stock each node installs HAProxy from the OS's package mirror at first boot/);
    assert.match(message, /or bake an image \(loadBalancer\.image baked, docs\/baked-image\.md\)/);
  });

  it("baked without amiId, and awsApiCidrs where there is an internet path: every problem at once, at its field", () => {
    const message = problems(environment({ network: { awsApiCidrs: ["10.0.0.0/8"] }, loadBalancer: { image: "baked" } }));
    assert.match(message, /^2 problems in site\.yaml/);
    assert.match(message, /site\.yaml:\d+:\d+ loadBalancer\.image: baked needs loadBalancer\.amiId/);
    assert.match(message, /site\.yaml:\d+:\d+ network\.awsApiCidrs: only for loadBalancer\.image baked without a NAT gateway: with network\.natSubnet/);
  });

  it("an unknown image kind: the allowed values", () => {
    assert.match(problems(environment({ loadBalancer: { image: "golden" } })), /site\.yaml:\d+:\d+ loadBalancer\.image: expected one of stock \| baked, got "golden"/);
  });

  it("baked in an adopted VPC names the CIDR its endpoints are in", () => {
    const adopted = environment({
      network: {
        natSubnet: null,
        vpcCidr: null,
        vpcId: "vpc-0a1b2c3d4e5f60718",
        internal: { subnetId: "subnet-0a1b2c3d4e5f60711" },
        external: { subnetId: "subnet-0a1b2c3d4e5f60722" },
      },
      loadBalancer: { image: "baked", amiId: AMI },
    });
    assert.match(problems(adopted), /network: missing vpcCidr \(or awsApiCidrs\): a baked image's nodes send HTTPS only to the AWS APIs' interface endpoints/);
    const shared = parseEnvironment(JSON.stringify({ ...adopted, network: { ...(adopted.network as object), awsApiCidrs: ["10.250.0.0/24"] } }), "site.yaml");
    assert.deepEqual(egressPlan(shared), {
      internet: "none",
      internetCidrs: [],
      apiCidrs: ["10.250.0.0/24"],
      s3PrefixList: true,
      interfaceEndpoints: ["ec2", "ec2messages", "kms", "monitoring", "secretsmanager", "ssm", "ssmmessages"],
      createsEndpoints: false,
    });
  });
});

describe("egress: the created VPC of a baked image", () => {
  const json = synth(BAKED);

  it("no NAT gateway, no internet gateway, no Elastic IP, no route out of the VPC", () => {
    for (const type of ["aws_nat_gateway", "aws_internet_gateway", "aws_eip", "aws_route"]) assert.equal(json.resource[type], undefined, type);
    assert.equal(json.output.nat_public_ip, undefined);
    assert.deepEqual(Object.keys(json.resource.aws_subnet).map(bare).sort(), ["network_subnet-external", "network_subnet-internal"]);
    assert.deepEqual(Object.keys(json.resource.aws_route_table).map(bare), ["network_private-route-table"]);
  });

  it("the endpoints of every API the nodes call, and S3's gateway endpoint on the subnets' route table", () => {
    const endpoints = Object.values(json.resource.aws_vpc_endpoint) as Json[];
    const interfaces = endpoints.filter((e) => e.vpc_endpoint_type === "Interface").map((e) => e.service_name.replace("com.amazonaws.eu-west-1.", "")).sort();
    assert.deepEqual(interfaces, ["ec2", "ec2messages", "kms", "monitoring", "secretsmanager", "ssm", "ssmmessages"]);
    const s3 = endpoints.filter((e) => e.vpc_endpoint_type === "Gateway");
    assert.equal(s3.length, 1);
    assert.equal(s3[0].service_name, "com.amazonaws.eu-west-1.s3");
    assert.match(s3[0].route_table_ids[0], /aws_route_table\.network_private-route-table_/);
  });

  it("security groups: no 0.0.0.0/0 rule and nothing to port 80 but the servers; HTTPS to the VPC (endpoints) and to S3's prefix list", () => {
    const rules = egressRules(json);
    assert.ok(rules.length > 0);
    assert.deepEqual(rules.filter((r) => r.cidr_ipv4 === "0.0.0.0/0"), []);
    assert.deepEqual((Object.values(json.resource.aws_vpc_security_group_ingress_rule) as Json[]).filter((r) => r.cidr_ipv4 === "0.0.0.0/0"), []);
    const eth0 = (node: string) => Object.entries(json.resource.aws_vpc_security_group_egress_rule).filter(([id]) => id.startsWith(`node-${node}_security-groups_eth0_`)).map(([, r]) => r as Json);
    const api = eth0("lb-a").filter((r) => r.description === "AWS APIs (interface endpoints)");
    assert.deepEqual(api.map((r) => [r.cidr_ipv4, r.from_port, r.to_port]), [["10.20.0.0/16", 443, 443]]);
    const s3 = eth0("lb-a").filter((r) => r.prefix_list_id !== undefined);
    assert.equal(s3.length, 1);
    assert.equal(s3[0].from_port, 443);
    const list = Object.entries(json.data.aws_ec2_managed_prefix_list) as Array<[string, Json]>;
    assert.equal(list.length, 1);
    assert.equal(list[0][1].name, "com.amazonaws.eu-west-1.s3");
    assert.equal(s3[0].prefix_list_id, `\${data.aws_ec2_managed_prefix_list.${list[0][0]}.id}`);
    assert.deepEqual(eth0("lb-a").filter((r) => r.from_port === 80 && !/^10\.20\.1\.\d+\/32$/.test(r.cidr_ipv4)), [], "port 80 only to real servers");
  });

  it("the pinned image, and no SSM parameter lookup", () => {
    const instance = Object.values(json.resource.aws_instance)[0] as Json;
    assert.equal(instance.ami, AMI);
    assert.equal(json.data.aws_ssm_parameter, undefined);
  });

  it("an Elastic IP VIP still gets its internet gateway (asked for), the nodes' eth0 none", () => {
    const eip = synth(environment({ network: { natSubnet: null }, loadBalancer: { image: "baked", amiId: AMI }, vips: { main: { elasticIp: true } } }));
    assert.equal(eip.resource.aws_nat_gateway, undefined);
    assert.equal(Object.keys(eip.resource.aws_internet_gateway).length, 1);
    const routes = Object.values(eip.resource.aws_route) as Json[];
    assert.equal(routes.length, 1, "the public route table's default route only");
    assert.match(routes[0].route_table_id, /network_public-route-table_/);
    const associations = Object.keys(eip.resource.aws_route_table_association).map(bare).sort();
    assert.deepEqual(associations, ["network_private-internal", "network_public-external"]);
    assert.deepEqual(egressRules(eip).filter((r) => r.cidr_ipv4 === "0.0.0.0/0"), []);
  });

  it("a baked image with natSubnet (asked for): the NAT path as for a stock image", () => {
    const nat = synth(environment({ loadBalancer: { image: "baked", amiId: AMI } }));
    assert.equal(Object.keys(nat.resource.aws_nat_gateway).length, 1);
    assert.equal(egressRules(nat).filter((r) => r.cidr_ipv4 === "0.0.0.0/0").length, 2, "TCP 80 and 443 per eth0 group");
    assert.equal(nat.data.aws_ec2_managed_prefix_list, undefined);
  });

  it("a stock image keeps its internet path: TCP 80 and 443 to 0.0.0.0/0 from eth0, no prefix list", () => {
    const stock = synth(environment({}));
    assert.deepEqual(egressRules(stock).filter((r) => r.cidr_ipv4 === "0.0.0.0/0").map((r) => r.from_port).sort(), [443, 80]);
    assert.equal(stock.data.aws_ec2_managed_prefix_list, undefined);
  });
});

describe("egress: what a site reads", () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, "dist", "lib", "cli", "main.js"), ...args], { cwd: ROOT, encoding: "utf8" });

  it("validate: one line per file where the stack creates the way out; --strict says which way", () => {
    const r = run("validate", "examples/agfa-ei-baked.yaml", "examples/agfa-ei-ha-pair.yaml");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").length, 2, r.stdout);
    const json = JSON.parse(run("validate", "--json", "examples/agfa-ei-baked.yaml").stdout) as { files: Array<{ needs: string[] }> };
    assert.deepEqual(json.files[0].needs, []);
    assert.match(egressSummary(loadEnvironment(BAKED_EXAMPLE)), /^internet: none \(baked image ami-[0-9a-f]+\): no NAT or internet gateway for the nodes, no 0\.0\.0\.0\/0 egress; AWS APIs through this stack's endpoints \(ec2, ec2messages, kms, monitoring, s3, secretsmanager, ssm, ssmmessages\)$/);
  });

  it("validate says what an adopted VPC must give a stock image", () => {
    const dir = tempDir("egress-");
    try {
      const file = join(dir.path, "adopted.yaml");
      const adopted = environment({
        network: { natSubnet: null, vpcId: "vpc-0a1b2c3d4e5f60718", internal: { subnetId: "subnet-0a1b2c3d4e5f60711" }, external: { subnetId: "subnet-0a1b2c3d4e5f60722" } },
      });
      writeFileSync(file, stringify(adopted));
      const r = run("validate", file);
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.match(lines[0], /^ok .*adopted\.yaml: /);
      assert.match(lines[1], /^ {2}needs \(stock image\): a route from the nodes' eth0 subnet to the OS's package mirror \(NAT gateway or proxy\): each node installs HAProxy and its tools at first boot; or bake an image \(loadBalancer\.image baked\)$/);
      assert.match(lines[2], /^ {2}needs: a route to the AWS APIs, or interface endpoints with private DNS for ec2, ec2messages, kms, monitoring, secretsmanager, ssm, ssmmessages, and S3$/);
      assert.equal(lines.length, 3);
      const baked = { ...adopted, network: { ...(adopted.network as object), natSubnet: undefined }, loadBalancer: { ...(adopted.loadBalancer as object), image: "baked", amiId: AMI } };
      writeFileSync(file, stringify(baked));
      const json = JSON.parse(run("validate", "--json", file).stdout) as { files: Array<{ needs: string[] }> };
      assert.deepEqual(json.files[0].needs, [
        "needs (baked image, no internet path): interface endpoints with private DNS for ec2, ec2messages, kms, monitoring, secretsmanager, ssm, ssmmessages in 10.20.0.0/16, and an S3 gateway endpoint on the nodes' route tables",
      ]);
    } finally {
      dir.cleanup();
    }
  });

  it("the diagram draws the endpoints, not a NAT gateway", () => {
    const text = renderMermaid(loadEnvironment(BAKED_EXAMPLE));
    assert.match(text, /VPC endpoints, no internet/);
    assert.doesNotMatch(text, /NAT gateway/);
  });
});
