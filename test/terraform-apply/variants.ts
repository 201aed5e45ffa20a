/* eslint-disable @typescript-eslint/no-explicit-any -- synthesized Terraform JSON, YAML documents and AWS CLI output are untyped here */
/**
 * The apply suite's matrix: every bundled example as it ships, plus variants of them covering each layout
 * and HA mode, adopted networks, Elastic IPs, KMS keys, CloudWatch Logs, Amazon Linux 2023 and TProxy.
 * What a variant adopts (VPC, subnets, route tables, Elastic IPs, KMS keys) is created in moto first by
 * {@link SEED_SCRIPT} and its ids written into the variant's environment file.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { addThirdZone } from "../helpers/nlb-three";

/** What to create in moto before a variant is planned. */
export interface SeedRequest {
  /** An adopted VPC with these subnets (keys are the variant's names for them). */
  readonly vpc?: { readonly cidr: string; readonly subnets: Readonly<Record<string, { cidr: string; az: string }>> };
  /** Route tables in that VPC (route-table VIP mode: the clients' route tables). */
  readonly routeTables?: number;
  /** Elastic IP allocations to adopt. */
  readonly elasticIps?: number;
  /** Customer managed KMS keys. */
  readonly kmsKeys?: number;
  /** SNS topics (an adopted alarm topic). */
  readonly snsTopics?: number;
}

/** Ids of what was created. */
export interface Seeded {
  readonly vpcId?: string;
  readonly subnetIds: Readonly<Record<string, string>>;
  readonly routeTableIds: readonly string[];
  readonly allocationIds: readonly string[];
  readonly kmsKeyArns: readonly string[];
  readonly snsTopicArns?: readonly string[];
}

/** boto3 script (stdin: {region, request}; stdout: {@link Seeded}) creating a {@link SeedRequest} in moto. */
export const SEED_SCRIPT = String.raw`
import json, sys, boto3
args = json.load(sys.stdin)
request = args["request"]
ec2 = boto3.client("ec2")
out = {"subnetIds": {}, "routeTableIds": [], "allocationIds": [], "kmsKeyArns": [], "snsTopicArns": []}
vpc = request.get("vpc")
if vpc:
    vpc_id = ec2.create_vpc(CidrBlock=vpc["cidr"])["Vpc"]["VpcId"]
    out["vpcId"] = vpc_id
    for key, subnet in vpc["subnets"].items():
        out["subnetIds"][key] = ec2.create_subnet(VpcId=vpc_id, CidrBlock=subnet["cidr"], AvailabilityZone=subnet["az"])["Subnet"]["SubnetId"]
    for _ in range(request.get("routeTables", 0)):
        out["routeTableIds"].append(ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"])
for _ in range(request.get("elasticIps", 0)):
    out["allocationIds"].append(ec2.allocate_address(Domain="vpc")["AllocationId"])
if request.get("kmsKeys", 0):
    kms = boto3.client("kms")
    for _ in range(request["kmsKeys"]):
        out["kmsKeyArns"].append(kms.create_key(Description="imaging-lb apply suite")["KeyMetadata"]["Arn"])
for i in range(request.get("snsTopics", 0)):
    out["snsTopicArns"].append(boto3.client("sns").create_topic(Name=f"pacs-alerts-{i}")["TopicArn"])
print(json.dumps(out))
`;

/** boto3 script seeding the stand-in for the Ubuntu AMI parameter (stdin: {name}); prints the AMI id. */
export const SEED_UBUNTU_AMI_SCRIPT = String.raw`
import json, sys, boto3
args = json.load(sys.stdin)
ec2 = boto3.client("ec2")
images = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ubuntu/images/*"]}])["Images"]
if not images:
    raise SystemExit("moto knows no Ubuntu AMI")
image = sorted(images, key=lambda i: i["Name"])[-1]["ImageId"]
boto3.client("ssm").put_parameter(Name=args["name"], Type="String", Value=image, Overwrite=True)
print(json.dumps(image))
`;

/** One entry of the matrix. */
export interface Variant {
  /** The environment name (unique in the emulated account: IAM role names derive from it). */
  readonly name: string;
  /** What it covers, for the test name. */
  readonly covers: string;
  /** The example it starts from (file name in examples/). */
  readonly example: string;
  /** Created in moto before planning. */
  readonly seed?: SeedRequest;
  /** Changes to the parsed example (receives the seeded ids). */
  readonly change?: (doc: Record<string, any>, seeded: Seeded) => void;
}

const EXAMPLES = join(__dirname, "..", "..", "..", "examples");

/** The parsed example `file`. */
export function example(file: string): Record<string, any> {
  return parse(readFileSync(join(EXAMPLES, file), "utf8")) as Record<string, any>;
}

/** The example file names (every example is applied as it ships). */
export const EXAMPLE_FILES = ["agfa-ei-one-arm.yaml", "agfa-ei-two-arm.yaml", "agfa-ei-ha-pair.yaml", "agfa-ei-nlb.yaml", "agfa-ei-baked.yaml"];

const adoptedOneArm = (cidr: string, subnets: Record<string, { cidr: string; az: string }>): SeedRequest["vpc"] => ({ cidr, subnets });

/** Turns the one-arm example into an HA pair (lb-1 + lb-2). */
function oneArmPair(doc: Record<string, any>, vipMode: string): void {
  doc.loadBalancer.nodes["lb-2"] = { internalAddress: "10.30.1.11" };
  doc.loadBalancer.ha = { vipMode };
}

/** Adopts the seeded VPC: vpcId, no natSubnet, subnetId on each subnet named in `keys` (doc path → seed key). */
function adopt(doc: Record<string, any>, seeded: Seeded, subnets: Record<string, string>): void {
  doc.network.vpcId = seeded.vpcId;
  delete doc.network.natSubnet;
  for (const [field, key] of Object.entries(subnets)) doc.network[field].subnetId = seeded.subnetIds[key];
}

/** The matrix (examples first). */
export const VARIANTS: readonly Variant[] = [
  { name: "ei-one-arm", covers: "example one-arm single node, created VPC", example: "agfa-ei-one-arm.yaml" },
  { name: "ei-two-arm", covers: "example two-arm single node, created VPC", example: "agfa-ei-two-arm.yaml" },
  { name: "ei-ha-pair", covers: "example two-arm pair, secondary-ip, created VPC", example: "agfa-ei-ha-pair.yaml" },
  { name: "ei-nlb", covers: "example two-arm pair across two AZs behind an NLB per VIP (nlb), created VPC", example: "agfa-ei-nlb.yaml" },
  { name: "ei-baked", covers: "example two-arm pair on a baked image: created VPC with no NAT or internet gateway, VPC endpoints, S3 by prefix list", example: "agfa-ei-baked.yaml" },
  {
    name: "t-nlb-3az",
    covers: "two-arm, three nodes in three AZs (eu-west-1a/b/c) behind an NLB per VIP (nlb): 3 subnet mappings per NLB, 3 targets per target group, peers between all three, created VPC",
    example: "agfa-ei-nlb.yaml",
    change: (doc) => addThirdZone(doc),
  },
  {
    name: "t-nlb-1arm-adopt-xz",
    covers: "one-arm pair across two AZs behind an NLB per VIP (nlb), cross-zone on, a short drain, adopted VPC and subnets",
    example: "agfa-ei-one-arm.yaml",
    seed: { vpc: { cidr: "10.30.0.0/16", subnets: { subnet: { cidr: "10.30.1.0/24", az: "eu-west-1a" }, b: { cidr: "10.30.11.0/24", az: "eu-west-1b" } } } },
    change: (doc, seeded) => {
      adopt(doc, seeded, { subnet: "subnet" });
      doc.loadBalancer.nodes["lb-2"] = {
        internalAddress: "10.30.11.10",
        internalSubnet: { cidr: "10.30.11.0/24", availabilityZone: "eu-west-1b", subnetId: seeded.subnetIds.b },
      };
      doc.loadBalancer.ha = { vipMode: "nlb", nlb: { crossZone: true, drainTime: "30s" } };
      doc.vips = {
        web: { nlb: { "lb-1": { address: "10.30.1.100", target: "10.30.1.30" }, "lb-2": { address: "10.30.11.100", target: "10.30.11.30" } } },
        core: { nlb: { "lb-1": { address: "10.30.1.101", target: "10.30.1.31" }, "lb-2": { address: "10.30.11.101", target: "10.30.11.31" } } },
      };
    },
  },
  {
    name: "t-nlb-2arm-adopt-tproxy",
    covers: "two-arm pair across two AZs behind an NLB per VIP (nlb), TProxy, adopted VPC and subnets, 7 client blocks: the core NLB's 63 inbound rules in two security groups",
    example: "agfa-ei-nlb.yaml",
    seed: {
      vpc: {
        cidr: "10.50.0.0/16",
        subnets: {
          internal: { cidr: "10.50.1.0/24", az: "eu-west-1a" },
          external: { cidr: "10.50.2.0/24", az: "eu-west-1a" },
          "b-internal": { cidr: "10.50.11.0/24", az: "eu-west-1b" },
          "b-external": { cidr: "10.50.12.0/24", az: "eu-west-1b" },
        },
      },
    },
    change: (doc, seeded) => {
      adopt(doc, seeded, { internal: "internal", external: "external" });
      doc.loadBalancer.nodes["lb-b"].internalSubnet.subnetId = seeded.subnetIds["b-internal"];
      doc.loadBalancer.nodes["lb-b"].externalSubnet.subnetId = seeded.subnetIds["b-external"];
      doc.services = { ...doc.services, dicom: { ...(doc.services?.dicom ?? {}), clientAddress: "tproxy" } };
      doc.access.clientCidrs = Array.from({ length: 7 }, (_, i) => `10.${100 + i}.0.0/16`);
    },
  },
  {
    name: "t-pair-1arm-secip",
    covers: "one-arm pair, secondary-ip, created VPC",
    example: "agfa-ei-one-arm.yaml",
    change: (doc) => oneArmPair(doc, "secondary-ip"),
  },
  {
    name: "t-pair-1arm-eip",
    covers: "one-arm pair, elastic-ip (adopted Elastic IPs), adopted VPC and subnet; alarms to an adopted SNS topic, tuned, no dashboard",
    example: "agfa-ei-one-arm.yaml",
    seed: { vpc: adoptedOneArm("10.30.0.0/16", { subnet: { cidr: "10.30.1.0/24", az: "eu-west-1a" } }), elasticIps: 2, snsTopics: 1 },
    change: (doc, seeded) => {
      oneArmPair(doc, "elastic-ip");
      // Alarms notify a topic the site already has; no dashboard; two alarms tuned, one switched off.
      doc.monitoring = {
        dashboard: false,
        notifications: { topicArn: seeded.snsTopicArns![0] },
        alarms: { serverDown: { periodSeconds: 120, evaluationPeriods: 5 }, certificateExpiry: { days: 45 }, failover: { enabled: false }, systemStatusCheck: { recover: false } },
      };
      adopt(doc, seeded, { subnet: "subnet" });
      doc.vips.web = { ...doc.vips.web, elasticIp: true, elasticIpAllocationId: seeded.allocationIds[0] };
      doc.vips.core = { ...doc.vips.core, elasticIp: true, elasticIpAllocationId: seeded.allocationIds[1] };
    },
  },
  {
    name: "t-pair-2arm-eip",
    covers: "two-arm pair, elastic-ip (adopted Elastic IPs), adopted VPC and subnets",
    example: "agfa-ei-ha-pair.yaml",
    seed: {
      vpc: { cidr: "10.40.0.0/16", subnets: { internal: { cidr: "10.40.1.0/24", az: "eu-west-1a" }, external: { cidr: "10.40.2.0/24", az: "eu-west-1a" } } },
      elasticIps: 2,
    },
    change: (doc, seeded) => {
      adopt(doc, seeded, { internal: "internal", external: "external" });
      doc.loadBalancer.ha.vipMode = "elastic-ip";
      doc.vips.web = { ...doc.vips.web, elasticIp: true, elasticIpAllocationId: seeded.allocationIds[0] };
      doc.vips.core = { ...doc.vips.core, elasticIp: true, elasticIpAllocationId: seeded.allocationIds[1] };
    },
  },
  {
    name: "t-pair-2arm-rtb-az",
    covers: "two-arm pair across two AZs, route-table VIPs, adopted VPC, subnets and route tables",
    example: "agfa-ei-ha-pair.yaml",
    seed: {
      vpc: {
        cidr: "10.40.0.0/16",
        subnets: {
          internal: { cidr: "10.40.1.0/24", az: "eu-west-1a" },
          external: { cidr: "10.40.2.0/24", az: "eu-west-1a" },
          "b-internal": { cidr: "10.40.11.0/24", az: "eu-west-1b" },
          "b-external": { cidr: "10.40.12.0/24", az: "eu-west-1b" },
        },
      },
      routeTables: 2,
    },
    change: (doc, seeded) => {
      adopt(doc, seeded, { internal: "internal", external: "external" });
      doc.loadBalancer.nodes["lb-b"] = {
        internalAddress: "10.40.11.11",
        externalAddress: "10.40.12.11",
        internalSubnet: { cidr: "10.40.11.0/24", availabilityZone: "eu-west-1b", subnetId: seeded.subnetIds["b-internal"] },
        externalSubnet: { cidr: "10.40.12.0/24", availabilityZone: "eu-west-1b", subnetId: seeded.subnetIds["b-external"] },
      };
      doc.loadBalancer.ha = { ...doc.loadBalancer.ha, vipMode: "route-table", routeTableIds: seeded.routeTableIds };
      doc.vips = { web: { address: "10.240.0.100" }, core: { address: "10.240.0.101" } };
    },
  },
  {
    name: "t-pair-1arm-rtb-az",
    covers: "one-arm pair across two AZs, route-table VIPs, adopted VPC, subnets and route tables",
    example: "agfa-ei-one-arm.yaml",
    seed: {
      vpc: { cidr: "10.30.0.0/16", subnets: { subnet: { cidr: "10.30.1.0/24", az: "eu-west-1a" }, b: { cidr: "10.30.11.0/24", az: "eu-west-1b" } } },
      routeTables: 1,
    },
    change: (doc, seeded) => {
      adopt(doc, seeded, { subnet: "subnet" });
      doc.loadBalancer.nodes["lb-2"] = {
        internalAddress: "10.30.11.11",
        internalSubnet: { cidr: "10.30.11.0/24", availabilityZone: "eu-west-1b", subnetId: seeded.subnetIds.b },
      };
      doc.loadBalancer.ha = { vipMode: "route-table", routeTableIds: seeded.routeTableIds };
      doc.vips = { web: { address: "10.230.0.100" }, core: { address: "10.230.0.101" } };
    },
  },
  {
    name: "t-single-2arm-eip",
    covers: "two-arm single node, Elastic IP allocated by the stack (public external subnet); nine servers: eth0's 83 outbound rules in two security groups",
    example: "agfa-ei-two-arm.yaml",
    change: (doc) => {
      doc.vips.web = { ...doc.vips.web, elasticIp: true };
      for (let i = 1; i <= 9; i++) doc.servers[`ei-core-${i}`] = { address: `10.20.1.${20 + i}`, aeTitle: "EI_CORE" };
    },
  },
  {
    name: "t-single-1arm-adopt-eip",
    covers: "one-arm single node, adopted VPC and subnet, adopted Elastic IP; monitoring off",
    example: "agfa-ei-one-arm.yaml",
    seed: { vpc: adoptedOneArm("10.30.0.0/16", { subnet: { cidr: "10.30.1.0/24", az: "eu-west-1a" } }), elasticIps: 1 },
    change: (doc, seeded) => {
      adopt(doc, seeded, { subnet: "subnet" });
      doc.monitoring = { enabled: false };
      doc.vips.web = { ...doc.vips.web, elasticIp: true, elasticIpAllocationId: seeded.allocationIds[0] };
    },
  },
  {
    name: "t-single-2arm-al2023",
    covers: "two-arm single node, Amazon Linux 2023, TProxy, KMS keys, CloudWatch Logs",
    example: "agfa-ei-two-arm.yaml",
    seed: { kmsKeys: 2 },
    change: (doc, seeded) => {
      doc.loadBalancer.os = "al2023";
      doc.services = { ...doc.services, dicom: { ...(doc.services?.dicom ?? {}), clientAddress: "tproxy" } };
      for (const cert of Object.values(doc.tls.certificates) as Array<Record<string, string>>) cert.kmsKeyArn = seeded.kmsKeyArns[0];
      doc.admin.statsPasswordKmsKeyArn = seeded.kmsKeyArns[1];
      doc.admin.cloudWatchLogGroup = "/imaging-lb/t-single-2arm-al2023/haproxy";
    },
  },
  {
    name: "t-pair-2arm-tproxy",
    covers: "two-arm pair, secondary-ip, TProxy, KMS key, CloudWatch Logs, Amazon Linux 2023; alarms mailed and posted (e-mail and HTTPS subscriptions)",
    example: "agfa-ei-ha-pair.yaml",
    seed: { kmsKeys: 1 },
    change: (doc, seeded) => {
      doc.monitoring = { notifications: { email: ["pacs-oncall@hospital.example", "radiology-it@hospital.example"], https: ["https://alerts.hospital.example/sns"] } };
      doc.loadBalancer.os = "al2023";
      doc.services = { ...doc.services, dicom: { ...(doc.services?.dicom ?? {}), clientAddress: "tproxy" } };
      doc.admin.statsPasswordKmsKeyArn = seeded.kmsKeyArns[0];
      doc.admin.cloudWatchLogGroup = "/imaging-lb/t-pair-2arm-tproxy/haproxy";
    },
  },
];
