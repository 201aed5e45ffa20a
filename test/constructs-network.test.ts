/**
 * The network: a created VPC with the layout's subnets and the endpoint set, or an adopted VPC (nothing
 * of the network created); internet gateway only for Elastic IPs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Testing } from "cdktf";
import { parseEnvironment } from "../lib/config/load";
import { ImagingLbStack, ImagingLbStackProps } from "../lib/constructs/imaging-lb-stack";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const BASE = {
  name: "net",
  region: "eu-west-1",
  network: {
    layout: "two-arm",
    vpcCidr: "10.20.0.0/16",
    internal: { cidr: "10.20.1.0/24", availabilityZone: "eu-west-1a" },
    external: { cidr: "10.20.2.0/24", availabilityZone: "eu-west-1a" },
  },
  loadBalancer: { nodes: { "lb-a": { internalAddress: "10.20.1.10", externalAddress: "10.20.2.10" } } },
  vips: { web: { address: "10.20.2.100" } },
  services: { web: { frontendPorts: [443], mode: "tcp" } },
  servers: { s1: { address: "10.20.1.21" } },
  access: { clientCidrs: ["10.0.0.0/8"], adminCidrs: ["10.99.0.0/24"] },
  admin: { statsPasswordSecretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:net/stats-AbCdEf" },
};
const ADOPTED = {
  ...BASE,
  network: {
    layout: "two-arm",
    vpcId: "vpc-0a1b2c3d4e5f60718",
    vpcCidr: "10.20.0.0/16",
    internal: { cidr: "10.20.1.0/24", availabilityZone: "eu-west-1a", subnetId: "subnet-0a1b2c3d4e5f60711" },
    external: { cidr: "10.20.2.0/24", availabilityZone: "eu-west-1a", subnetId: "subnet-0a1b2c3d4e5f60722" },
  },
};

function synth(raw: object, props: Partial<ImagingLbStackProps> = {}): Json {
  const env = parseEnvironment(JSON.stringify(raw), "test.yaml");
  const stack = new ImagingLbStack(Testing.app(), env.name, { environment: env, ...props });
  return JSON.parse(Testing.synth(stack, true)) as Json;
}
const endpointServices = (json: Json) => (Object.values(json.resource.aws_vpc_endpoint ?? {}) as Json[]).map((e) => e.service_name).sort();

describe("network", () => {
  const created = synth(BASE);

  it("created VPC: the VPC and the layout's subnets, private (no public IPs), no NAT, no internet gateway", () => {
    const vpc = Object.values(created.resource.aws_vpc) as Json[];
    assert.equal(vpc.length, 1);
    assert.equal(vpc[0].cidr_block, "10.20.0.0/16");
    const subnets = Object.entries(created.resource.aws_subnet).map(([id, s]) => [id.replace(/_[0-9A-F]{8}$/, ""), (s as Json).cidr_block, (s as Json).availability_zone, (s as Json).map_public_ip_on_launch]);
    assert.deepEqual(subnets.sort(), [
      ["network_subnet-external", "10.20.2.0/24", "eu-west-1a", false],
      ["network_subnet-internal", "10.20.1.0/24", "eu-west-1a", false],
    ]);
    for (const absent of ["aws_nat_gateway", "aws_internet_gateway", "aws_route_table", "aws_eip"]) assert.equal(created.resource[absent], undefined, absent);
  });

  it("created VPC: the default interface endpoints in the internal subnet with private DNS", () => {
    assert.deepEqual(endpointServices(created), ["ec2", "ec2messages", "secretsmanager", "ssm", "ssmmessages"].map((s) => `com.amazonaws.eu-west-1.${s}`));
    for (const e of Object.values(created.resource.aws_vpc_endpoint) as Json[]) {
      assert.equal(e.vpc_endpoint_type, "Interface");
      assert.equal(e.private_dns_enabled, true);
      assert.equal(e.subnet_ids.length, 1);
      assert.match(e.subnet_ids[0], /network_subnet-internal_/);
    }
  });

  it("CloudWatch Logs adds the logs endpoint; interfaceEndpoints overrides the set", () => {
    const logs = synth({ ...BASE, admin: { ...BASE.admin, cloudWatchLogGroup: "/lb" } });
    assert.ok(endpointServices(logs).includes("com.amazonaws.eu-west-1.logs"));
    assert.deepEqual(endpointServices(synth(BASE, { interfaceEndpoints: [] })), []);
    assert.deepEqual(endpointServices(synth(BASE, { interfaceEndpoints: ["ec2"] })), ["com.amazonaws.eu-west-1.ec2"]);
  });

  it("adopting an existing VPC creates no VPC, subnets, gateways or endpoints: data sources by id", () => {
    const json = synth(ADOPTED);
    for (const absent of ["aws_vpc", "aws_subnet", "aws_internet_gateway", "aws_route_table", "aws_vpc_endpoint"]) assert.equal(json.resource[absent], undefined, absent);
    assert.deepEqual((Object.values(json.data.aws_vpc) as Json[]).map((v) => v.id), ["vpc-0a1b2c3d4e5f60718"]);
    assert.deepEqual((Object.values(json.data.aws_subnet) as Json[]).map((s) => s.id).sort(), ["subnet-0a1b2c3d4e5f60711", "subnet-0a1b2c3d4e5f60722"]);
    const eth1 = Object.entries(json.resource.aws_network_interface).find(([id]) => id.startsWith("node-lb-a_eth1_"))![1] as Json;
    assert.match(eth1.subnet_id, /data\.aws_subnet\.network_subnet-external_/);
    for (const group of Object.values(json.resource.aws_security_group) as Json[]) assert.match(group.vpc_id, /data\.aws_vpc\.network_vpc_/);
  });

  it("a VIP with an Elastic IP adds an internet gateway and a route table for the external subnet only", () => {
    const json = synth({ ...BASE, vips: { web: { address: "10.20.2.100", elasticIp: true } } });
    assert.equal(Object.keys(json.resource.aws_internet_gateway).length, 1);
    const routes = Object.values(json.resource.aws_route) as Json[];
    assert.deepEqual(routes.map((r) => r.destination_cidr_block), ["0.0.0.0/0"]);
    const associations = Object.values(json.resource.aws_route_table_association) as Json[];
    assert.equal(associations.length, 1);
    assert.match(associations[0].subnet_id, /network_subnet-external_/);
    assert.equal(Object.keys(json.resource.aws_route_table_association)[0].startsWith("network_public-external_"), true);
  });
});
