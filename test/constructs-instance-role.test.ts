/**
 * The instance role: exact actions and resources per HA mode, the environment's secrets only, logs only
 * when configured, Session Manager through the managed policy.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Testing } from "cdktf";
import { parseEnvironment } from "../lib/load/load";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";
import { environment } from "./helpers/env";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const STATS = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:iam/stats-AbCdEf";
const TLS = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:iam/web-AbCdEf";
const BASE = environment({
  name: "iam",
  vips: { main: null, web: { address: "10.20.2.100" } },
  services: { app: null, web: { frontendPorts: [443], mode: "http", tls: { mode: "terminate", certificate: "web" } } },
  servers: { s2: null },
  tls: { certificates: { web: { secretArn: TLS } } },
  admin: { statsPasswordSecretArn: STATS },
});
const PAIR_NODES = {
  "lb-a": { internalAddress: "10.20.1.10", externalAddress: "10.20.2.10" },
  "lb-b": { internalAddress: "10.20.1.11", externalAddress: "10.20.2.11" },
};

function synth(raw: object): Json {
  const env = parseEnvironment(JSON.stringify(raw), "test.yaml");
  const stack = new ImagingLbStack(Testing.app(), env.name, { environment: env });
  return JSON.parse(Testing.synth(stack, true)) as Json;
}
/** The statements of the inline policy whose id starts with `instance-role_<name>`. */
function statements(json: Json, name: string): Json[] | undefined {
  const entry = Object.entries(json.resource.aws_iam_role_policy ?? {}).find(([id]) => id.startsWith(`instance-role_${name}_`));
  return entry ? (JSON.parse((entry[1] as Json).policy) as Json).Statement : undefined;
}
const eniArn = (json: Json, node: string, eth: string) => {
  const id = Object.keys(json.resource.aws_network_interface).find((k) => k.startsWith(`node-${node}_${eth}_`));
  return `\${aws_network_interface.${id}.arn}`;
};

describe("instance role", () => {
  const single = synth(BASE);

  it("trusts EC2 only and carries AmazonSSMManagedInstanceCore", () => {
    const role = Object.values(single.resource.aws_iam_role)[0] as Json;
    assert.deepEqual(JSON.parse(role.assume_role_policy).Statement, [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }]);
    const attachments = Object.values(single.resource.aws_iam_role_policy_attachment) as Json[];
    assert.deepEqual(attachments.map((a) => a.policy_arn), ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]);
    const profile = Object.values(single.resource.aws_iam_instance_profile)[0] as Json;
    assert.match(profile.role, /aws_iam_role\.instance-role_/);
    for (const instance of Object.values(single.resource.aws_instance) as Json[]) assert.match(instance.iam_instance_profile, /aws_iam_instance_profile\.instance-role_profile_/);
  });

  it("GetSecretValue on exactly the certificate and stats password ARNs", () => {
    assert.deepEqual(statements(single, "secrets"), [{ Sid: "ReadBootSecrets", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [STATS, TLS] }]);
  });

  it("customer managed keys: kms:Decrypt on exactly those keys, only through Secrets Manager of the region", () => {
    const key1 = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const key2 = "arn:aws:kms:eu-west-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef";
    const json = synth({
      ...BASE,
      tls: { certificates: { web: { secretArn: TLS, kmsKeyArn: key2 } } },
      admin: { ...BASE.admin, statsPasswordKmsKeyArn: key1 },
    });
    assert.deepEqual(statements(json, "secrets"), [
      { Sid: "ReadBootSecrets", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [STATS, TLS] },
      {
        Sid: "DecryptBootSecrets",
        Effect: "Allow",
        Action: ["kms:Decrypt"],
        Resource: [key1, key2],
        Condition: { StringEquals: { "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com" } },
      },
    ]);
    const shared = synth({ ...BASE, tls: { certificates: { web: { secretArn: TLS, kmsKeyArn: key1 } } }, admin: { ...BASE.admin, statsPasswordKmsKeyArn: key1 } });
    assert.deepEqual(statements(shared, "secrets")?.[1].Resource, [key1], "a key shared by both secrets is granted once");
  });

  it("single node: no logs and no failover permission", () => {
    assert.equal(statements(single, "logs"), undefined);
    assert.equal(statements(single, "vip-failover"), undefined);
    assert.deepEqual(Object.keys(single.resource.aws_iam_role_policy).map((id) => id.replace(/_[0-9A-F]{8}$/, "")), ["instance-role_config-store", "instance-role_metrics", "instance-role_secrets"]);
  });

  it("metrics: PutMetricData into the imaging-lb namespace only (the condition is the scope: the action has no resource); none with monitoring off", () => {
    assert.deepEqual(statements(single, "metrics"), [
      { Sid: "SendNodeMetrics", Effect: "Allow", Action: ["cloudwatch:PutMetricData"], Resource: ["*"], Condition: { StringEquals: { "cloudwatch:namespace": "imaging-lb" } } },
    ]);
    assert.equal(statements(synth({ ...BASE, monitoring: { enabled: false } }), "metrics"), undefined);
    const store = Object.entries(single.resource.aws_s3_object as Json).find(([, o]) => /manifest\.json$/.test((o as Json).key))![1] as Json;
    const metricsPolicy = Object.keys(single.resource.aws_iam_role_policy).find((id) => id.startsWith("instance-role_metrics"));
    assert.ok(store.depends_on.includes(`aws_iam_role_policy.${metricsPolicy}`), "a bundle whose agent sends metrics is published once the role may send them");
  });

  it("CloudWatch Logs: put on the one configured log group only", () => {
    const json = synth({ ...BASE, admin: { ...BASE.admin, cloudWatchLogGroup: "/imaging-lb/iam" } });
    const account = `\${data.aws_caller_identity.${Object.keys(json.data.aws_caller_identity).find((k) => k.startsWith("instance-role"))}.account_id}`;
    const group = `arn:aws:logs:eu-west-1:${account}:log-group:/imaging-lb/iam`;
    assert.deepEqual(statements(json, "logs"), [
      { Sid: "ShipHaproxyLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"], Resource: [group, `${group}:*`] },
    ]);
  });

  it("secondary-ip pair: Assign/UnassignPrivateIpAddresses on the two client-side ENIs only", () => {
    const json = synth({ ...BASE, loadBalancer: { nodes: PAIR_NODES, ha: { vipMode: "secondary-ip" } } });
    assert.deepEqual(statements(json, "vip-failover"), [
      {
        Sid: "MoveVipPrivateAddresses",
        Effect: "Allow",
        Action: ["ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
        Resource: [eniArn(json, "lb-a", "eth1"), eniArn(json, "lb-b", "eth1")],
      },
    ]);
  });

  it("secondary-ip one-arm pair: the client-side ENI is eth0", () => {
    const json = synth({
      ...BASE,
      network: { layout: "one-arm", vpcCidr: "10.20.0.0/16", subnet: { cidr: "10.20.1.0/24", availabilityZone: "eu-west-1a" }, natSubnet: { cidr: "10.20.0.0/24", availabilityZone: "eu-west-1a" } },
      loadBalancer: { nodes: { "lb-a": { internalAddress: "10.20.1.10" }, "lb-b": { internalAddress: "10.20.1.11" } }, ha: { vipMode: "secondary-ip" } },
      vips: { web: { address: "10.20.1.100" } },
    });
    assert.deepEqual(statements(json, "vip-failover")?.[0].Resource, [eniArn(json, "lb-a", "eth0"), eniArn(json, "lb-b", "eth0")]);
  });

  it("elastic-ip pair: Associate/DisassociateAddress on the allocations and the ENIs, plus the private VIP move", () => {
    const json = synth({
      ...BASE,
      vips: { web: { address: "10.20.2.100", elasticIp: true, elasticIpAllocationId: "eipalloc-0a1b2c3d4e5f60718" } },
      loadBalancer: { nodes: PAIR_NODES, ha: { vipMode: "elastic-ip" } },
    });
    const enis = [eniArn(json, "lb-a", "eth1"), eniArn(json, "lb-b", "eth1")];
    const account = `\${data.aws_caller_identity.${Object.keys(json.data.aws_caller_identity).find((k) => !k.startsWith("instance-role"))}.account_id}`;
    assert.deepEqual(statements(json, "vip-failover"), [
      { Sid: "MoveVipPrivateAddresses", Effect: "Allow", Action: ["ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"], Resource: enis },
      {
        Sid: "MoveElasticIps",
        Effect: "Allow",
        Action: ["ec2:AssociateAddress", "ec2:DisassociateAddress"],
        Resource: [`arn:aws:ec2:eu-west-1:${account}:elastic-ip/eipalloc-0a1b2c3d4e5f60718`, ...enis],
      },
    ]);
  });

  it("route-table pair (adopted VPC): ReplaceRoute on the listed route tables only", () => {
    const json = synth({
      ...BASE,
      network: {
        layout: "two-arm",
        vpcId: "vpc-0a1b2c3d4e5f60718",
        vpcCidr: "10.20.0.0/16",
        internal: { cidr: "10.20.1.0/24", availabilityZone: "eu-west-1a", subnetId: "subnet-0a1b2c3d4e5f60711" },
        external: { cidr: "10.20.2.0/24", availabilityZone: "eu-west-1a", subnetId: "subnet-0a1b2c3d4e5f60722" },
      },
      vips: { web: { address: "192.168.50.10" } },
      loadBalancer: { nodes: PAIR_NODES, ha: { vipMode: "route-table", routeTableIds: ["rtb-0a1b2c3d4e5f60711", "rtb-0a1b2c3d4e5f60722"] } },
    });
    const account = `\${data.aws_caller_identity.${Object.keys(json.data.aws_caller_identity).find((k) => !k.startsWith("instance-role"))}.account_id}`;
    assert.deepEqual(statements(json, "vip-failover"), [
      {
        Sid: "MoveVipRoutes",
        Effect: "Allow",
        Action: ["ec2:ReplaceRoute"],
        Resource: [`arn:aws:ec2:eu-west-1:${account}:route-table/rtb-0a1b2c3d4e5f60711`, `arn:aws:ec2:eu-west-1:${account}:route-table/rtb-0a1b2c3d4e5f60722`],
      },
    ]);
    const routes = Object.values(json.resource.aws_route) as Json[];
    assert.deepEqual(routes.map((r) => r.route_table_id).sort(), ["rtb-0a1b2c3d4e5f60711", "rtb-0a1b2c3d4e5f60722"]);
  });

  it("no policy statement allows a wildcard action", () => {
    const json = synth({ ...BASE, admin: { ...BASE.admin, cloudWatchLogGroup: "/x" }, loadBalancer: { nodes: PAIR_NODES, ha: { vipMode: "secondary-ip" } } });
    for (const policy of Object.values(json.resource.aws_iam_role_policy) as Json[]) {
      for (const s of JSON.parse(policy.policy).Statement as Json[]) {
        for (const action of s.Action as string[]) assert.doesNotMatch(action, /\*/);
      }
    }
  });
});
