/**
 * The network: a created VPC with the layout's subnets, the endpoint set and its NAT egress (public NAT
 * subnet, internet gateway, NAT gateway, public and private route tables), or an adopted VPC (nothing of
 * the network created); Elastic IP VIPs make their client subnet public.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Testing } from "cdktf";
import { parseEnvironment } from "../lib/load/load";
import { ImagingLbStack, ImagingLbStackProps } from "../lib/constructs/imaging-lb-stack";
import { environment } from "./helpers/env";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const BASE = environment({
  name: "net",
  vips: { main: null, web: { address: "10.20.2.100" } },
  services: { app: null, web: { frontendPorts: [443], mode: "tcp" } },
  servers: { s2: null },
  tls: null,
  admin: { statsPasswordSecretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:net/stats-AbCdEf" },
});
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
const bare = (id: string) => id.replace(/_[0-9A-F]{8}$/, "");
/** The id of the one resource of `type` whose id (without its hash) is `name`. */
function idOf(json: Json, type: string, name: string): string {
  const ids = Object.keys(json.resource[type] ?? {}).filter((id) => bare(id) === name);
  assert.equal(ids.length, 1, `exactly one ${type} ${name}: ${Object.keys(json.resource[type] ?? {}).join(", ")}`);
  return ids[0];
}
const one = (json: Json, type: string, name: string): Json => json.resource[type][idOf(json, type, name)] as Json;
const ref = (json: Json, type: string, name: string, attribute: string) => `\${${type}.${idOf(json, type, name)}.${attribute}}`;
/** Each associated subnet (by construct id) → the target of its route table's 0.0.0.0/0 route. */
function defaultRoutes(json: Json): Record<string, Record<string, string>> {
  const tables = new Map<string, Record<string, string>>();
  for (const route of Object.values(json.resource.aws_route ?? {}) as Json[]) {
    assert.equal(route.destination_cidr_block, "0.0.0.0/0");
    const target = Object.fromEntries(["gateway_id", "nat_gateway_id", "network_interface_id"].filter((k) => route[k] !== undefined).map((k) => [k, route[k] as string]));
    tables.set(route.route_table_id, target);
  }
  const out: Record<string, Record<string, string>> = {};
  for (const association of Object.values(json.resource.aws_route_table_association ?? {}) as Json[]) {
    const subnet = /^\$\{aws_subnet\.(.*)_[0-9A-F]{8}\.id\}$/.exec(association.subnet_id)?.[1] ?? association.subnet_id;
    out[subnet] = tables.get(association.route_table_id) ?? {};
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}
/** Interface endpoints' services (the S3 gateway endpoint is asserted on its own). */
const endpointServices = (json: Json) =>
  (Object.values(json.resource.aws_vpc_endpoint ?? {}) as Json[]).filter((e) => e.vpc_endpoint_type === "Interface").map((e) => e.service_name).sort();

describe("network", () => {
  const created = synth(BASE);

  it("created VPC: the VPC, the layout's subnets and the NAT subnet, none giving public IPs", () => {
    const vpc = Object.values(created.resource.aws_vpc) as Json[];
    assert.equal(vpc.length, 1);
    assert.equal(vpc[0].cidr_block, "10.20.0.0/16");
    const subnets = Object.entries(created.resource.aws_subnet).map(([id, s]) => [bare(id), (s as Json).cidr_block, (s as Json).availability_zone, (s as Json).map_public_ip_on_launch, (s as Json).tags.Name]);
    assert.deepEqual(subnets.sort(), [
      ["network_nat-subnet", "10.20.0.0/24", "eu-west-1a", false, "net-nat"],
      ["network_subnet-external", "10.20.2.0/24", "eu-west-1a", false, "net-external"],
      ["network_subnet-internal", "10.20.1.0/24", "eu-west-1a", false, "net-internal"],
    ]);
  });

  it("created VPC: an internet gateway, and a NAT gateway with its own Elastic IP in the NAT subnet", () => {
    const igw = one(created, "aws_internet_gateway", "network_internet-gateway");
    assert.equal(igw.vpc_id, ref(created, "aws_vpc", "network_vpc", "id"));
    const eip = one(created, "aws_eip", "network_nat-eip");
    assert.equal(eip.domain, "vpc");
    assert.equal(eip.network_interface, undefined, "the NAT gateway's address, associated by the NAT gateway");
    assert.deepEqual(eip.depends_on, [`aws_internet_gateway.${idOf(created, "aws_internet_gateway", "network_internet-gateway")}`]);
    const nat = one(created, "aws_nat_gateway", "network_nat-gateway");
    assert.equal(nat.connectivity_type, "public");
    assert.equal(nat.allocation_id, ref(created, "aws_eip", "network_nat-eip", "allocation_id"));
    assert.equal(nat.subnet_id, ref(created, "aws_subnet", "network_nat-subnet", "id"));
    assert.deepEqual(nat.depends_on, eip.depends_on);
    assert.equal(Object.keys(created.resource.aws_eip).length, 1, "no other Elastic IP without an Elastic IP VIP");
  });

  it("created VPC: the NAT subnet routes 0.0.0.0/0 to the internet gateway, the layout's subnets to the NAT gateway", () => {
    assert.deepEqual(defaultRoutes(created), {
      "network_nat-subnet": { gateway_id: ref(created, "aws_internet_gateway", "network_internet-gateway", "id") },
      "network_subnet-external": { nat_gateway_id: ref(created, "aws_nat_gateway", "network_nat-gateway", "id") },
      "network_subnet-internal": { nat_gateway_id: ref(created, "aws_nat_gateway", "network_nat-gateway", "id") },
    });
    assert.deepEqual(Object.keys(created.resource.aws_route_table).map(bare).sort(), ["network_private-route-table", "network_public-route-table"]);
    assert.deepEqual(Object.keys(created.resource.aws_route_table_association).map(bare).sort(), [
      "network_private-external",
      "network_private-internal",
      "network_public-nat-subnet",
    ]);
  });

  it("outputs: the NAT gateway's public IP (the nodes' source address, for allow-lists)", () => {
    assert.equal(created.output.nat_public_ip.value, ref(created, "aws_eip", "network_nat-eip", "public_ip"));
    assert.match(created.output.nat_public_ip.description, /allow-list/);
  });

  it("created VPC: the default interface endpoints in the internal subnet with private DNS, and an S3 gateway endpoint", () => {
    assert.deepEqual(endpointServices(created), ["ec2", "ec2messages", "kms", "monitoring", "secretsmanager", "ssm", "ssmmessages"].map((s) => `com.amazonaws.eu-west-1.${s}`));
    const s3 = one(created, "aws_vpc_endpoint", "network_endpoint-s3");
    assert.equal(s3.vpc_endpoint_type, "Gateway");
    assert.equal(s3.route_table_ids.length, 2, "the private and the public route table");
    for (const e of (Object.values(created.resource.aws_vpc_endpoint) as Json[]).filter((x) => x.vpc_endpoint_type !== "Gateway")) {
      assert.equal(e.vpc_endpoint_type, "Interface");
      assert.equal(e.private_dns_enabled, true);
      assert.equal(e.subnet_ids.length, 1);
      assert.match(e.subnet_ids[0], /network_subnet-internal_/);
    }
  });

  it("CloudWatch Logs adds the logs endpoint; interfaceEndpoints overrides the set", () => {
    const logs = synth({ ...BASE, admin: { ...BASE.admin, cloudWatchLogGroup: "/lb" } });
    assert.ok(!endpointServices(synth({ ...BASE, monitoring: { enabled: false } })).includes("com.amazonaws.eu-west-1.monitoring"), "no metrics: no CloudWatch endpoint");
    assert.ok(endpointServices(logs).includes("com.amazonaws.eu-west-1.logs"));
    assert.deepEqual(endpointServices(synth(BASE, { interfaceEndpoints: [] })), []);
    assert.deepEqual(endpointServices(synth(BASE, { interfaceEndpoints: ["ec2"] })), ["com.amazonaws.eu-west-1.ec2"]);
  });

  it("adopting an existing VPC creates no VPC, subnets, gateways, routes or endpoints: data sources by id", () => {
    const json = synth(ADOPTED);
    const absent = ["aws_vpc", "aws_subnet", "aws_internet_gateway", "aws_nat_gateway", "aws_eip", "aws_route_table", "aws_route", "aws_route_table_association", "aws_vpc_endpoint"];
    for (const type of absent) assert.equal(json.resource[type], undefined, type);
    assert.equal(json.output.nat_public_ip, undefined);
    assert.deepEqual((Object.values(json.data.aws_vpc) as Json[]).map((v) => v.id), ["vpc-0a1b2c3d4e5f60718"]);
    assert.deepEqual((Object.values(json.data.aws_subnet) as Json[]).map((s) => s.id).sort(), ["subnet-0a1b2c3d4e5f60711", "subnet-0a1b2c3d4e5f60722"]);
    const eth1 = Object.entries(json.resource.aws_network_interface).find(([id]) => id.startsWith("node-lb-a_eth1_"))![1] as Json;
    assert.match(eth1.subnet_id, /data\.aws_subnet\.network_subnet-external_/);
    for (const group of Object.values(json.resource.aws_security_group) as Json[]) assert.match(group.vpc_id, /data\.aws_vpc\.network_vpc_/);
  });

  it("adopted VPC with an Elastic IP VIP: still no gateway or route (the VPC's owner routes it)", () => {
    const json = synth({ ...ADOPTED, vips: { web: { address: "10.20.2.100", elasticIp: true } } });
    for (const type of ["aws_internet_gateway", "aws_nat_gateway", "aws_route_table", "aws_route"]) assert.equal(json.resource[type], undefined, type);
    assert.deepEqual(Object.keys(json.resource.aws_eip).map(bare), ["eip-web"]);
  });

  it("two-arm, a VIP with an Elastic IP: the external subnet routes to the internet gateway, eth0's subnet stays behind the NAT", () => {
    const json = synth({ ...BASE, vips: { web: { address: "10.20.2.100", elasticIp: true } } });
    const igw = ref(json, "aws_internet_gateway", "network_internet-gateway", "id");
    const nat = ref(json, "aws_nat_gateway", "network_nat-gateway", "id");
    assert.deepEqual(defaultRoutes(json), {
      "network_nat-subnet": { gateway_id: igw },
      "network_subnet-external": { gateway_id: igw },
      "network_subnet-internal": { nat_gateway_id: nat },
    });
    assert.equal(Object.keys(json.resource.aws_internet_gateway).length, 1);
    assert.ok(Object.keys(json.resource.aws_route_table_association).some((id) => id.startsWith("network_public-external_")));
    assert.deepEqual(Object.keys(json.resource.aws_eip).map(bare).sort(), ["eip-web", "network_nat-eip"]);
  });

  it("one-arm, a VIP with an Elastic IP, created VPC: refused by the loader at the field (the stack check is a backstop)", () => {
    const text = JSON.stringify({
      ...BASE,
      network: { layout: "one-arm", vpcCidr: "10.20.0.0/16", subnet: { cidr: "10.20.1.0/24", availabilityZone: "eu-west-1a" }, natSubnet: { cidr: "10.20.0.0/24", availabilityZone: "eu-west-1a" } },
      loadBalancer: { nodes: { "lb-a": { internalAddress: "10.20.1.10" } } },
      vips: { web: { address: "10.20.1.100", elasticIp: true } },
    });
    assert.throws(() => parseEnvironment(text, "one.yaml"), /one\.yaml:1:\d+ vips\.web\.elasticIp: an Elastic IP in a one-arm created VPC would make the only subnet public/);
  });

  it("one-arm, a VIP with an Elastic IP, adopted VPC: synthesizes (the VPC's owner provides the egress)", () => {
    const json = synth({
      ...ADOPTED,
      network: { layout: "one-arm", vpcId: "vpc-0a1b2c3d4e5f60718", vpcCidr: "10.20.0.0/16", subnet: { cidr: "10.20.1.0/24", availabilityZone: "eu-west-1a", subnetId: "subnet-0a1b2c3d4e5f60711" } },
      loadBalancer: { nodes: { "lb-a": { internalAddress: "10.20.1.10" } } },
      vips: { web: { address: "10.20.1.100", elasticIp: true } },
    });
    assert.deepEqual(Object.keys(json.resource.aws_eip).map(bare), ["eip-web"]);
  });
});
