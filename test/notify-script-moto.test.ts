/* eslint-disable @typescript-eslint/no-explicit-any -- synthesized Terraform JSON, YAML documents and AWS CLI output are untyped here */
/**
 * The rendered VIP takeover script run for real (bash, curl, and each of its two EC2 clients: the agent's own
 * `python3 -m imaging_lb_agent.takeover`, which a node with the agent uses, and Debian's AWS CLI v2, the fallback)
 * against moto's EC2 (the AWS API emulator, started on a loopback port by this test), for all three VIP modes:
 * the resulting EC2 state is then read back with the AWS CLI's describe calls, so what is asserted is what EC2
 * (as emulated) holds, not which requests were sent. The hand-written simulated EC2 test (notify-script.test.ts) stays
 * beside this one for retries, IMDS token handling and failure paths.
 *
 * SIMULATED here: IMDSv2 (moto has none; test/helpers/fake-ec2.ts's SimulatedImds maps this node's MAC to
 * its moto ENI id) and the local `ip addr replace` step (a recorder). EMULATED: EC2 (moto 5). Unproven on
 * real AWS: IAM authorisation of the calls (moto does not enforce the instance role's policy) and EC2's
 * eventual consistency after a reassignment.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { NotifyScriptSpec, VipFailover, renderNotifyScript } from "../lib/keepalived";
import { installAgentPackage } from "./helpers/agent-package";
import { SimulatedImds } from "./helpers/fake-ec2";
import { FAKE_IP_SCRIPT, readFakeIpLog } from "./helpers/fake-ip";
import { HUNG_AFTER_MS, requireTool, tempDir, writeTree } from "./helpers/tools";
import { Moto, boto3, motoClientEnv, startMoto } from "./terraform-apply/moto";

const execFileAsync = promisify(execFile);
const REGION = "eu-west-1";
const MAC_A = "02:1a:2b:3c:4d:01";
const MAC_B = "02:1a:2b:3c:4d:02";

/** Debian's AWS CLI v2 (the version the nodes' scripts are tested with). */
function debianAwsCli(): string {
  requireTool("aws", "awscli");
  const cli = "/usr/bin/aws";
  if (!existsSync(cli)) throw new Error("required tool '/usr/bin/aws' is not installed: install the Debian package 'awscli'");
  assert.match(execFileSync(cli, ["--version"], { encoding: "utf8" }), /^aws-cli\/2\./, `expected AWS CLI v2 at ${cli}`);
  return cli;
}

/** A pair's EC2 world in moto: a VPC, one subnet, both nodes' client ENIs, Elastic IPs, client route tables. */
interface World {
  readonly eniA: string;
  readonly eniB: string;
  readonly allocationIds: readonly string[];
  readonly routeTableIds: readonly string[];
}

const WORLD_SCRIPT = String.raw`
import json, sys, boto3
ec2 = boto3.client("ec2")
vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.50.2.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
eni_a = ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress="10.50.2.10")["NetworkInterface"]["NetworkInterfaceId"]
eni_b = ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress="10.50.2.11")["NetworkInterface"]["NetworkInterfaceId"]
# The state Terraform leaves: the VIPs on the primary (A), Elastic IPs on A, overlay routes to A.
ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_a, PrivateIpAddresses=["10.50.2.100", "10.50.2.101", "10.50.2.102"])
allocations = [ec2.allocate_address(Domain="vpc")["AllocationId"] for _ in range(2)]
ec2.associate_address(AllocationId=allocations[0], NetworkInterfaceId=eni_a)
ec2.associate_address(AllocationId=allocations[1], NetworkInterfaceId=eni_a, PrivateIpAddress="10.50.2.102")
tables = [ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"] for _ in range(2)]
for table in tables:
    for vip in ("10.240.0.100/32", "10.240.0.101/32"):
        ec2.create_route(RouteTableId=table, DestinationCidrBlock=vip, NetworkInterfaceId=eni_a)
print(json.dumps({"eniA": eni_a, "eniB": eni_b, "allocationIds": allocations, "routeTableIds": tables}))
`;

let moto: Moto;
let world: World;
let aws: string;
let dir: ReturnType<typeof tempDir>;
let imds: SimulatedImds;
/** Which EC2 client the script uses in the suite that runs. */
let client: EC2Client;
type EC2Client = "agent" | "aws-cli";

/** Runs the rendered script as node B (its MAC → ENI B); returns exit code, stderr and the local ip calls. */
async function takeOverOnB(failover: VipFailover): Promise<{ code: number; stderr: string; ipCalls: string[] }> {
  const spec: NotifyScriptSpec = { envName: "moto", region: REGION, interfaceName: "eth1", failover };
  const script = join(dir.path, `takeover-${failover.mode}.sh`);
  const ipLog = join(dir.path, `ip-${failover.mode}.log`);
  writeFileSync(script, renderNotifyScript(spec), { mode: 0o755 });
  writeFileSync(ipLog, "");
  const env: NodeJS.ProcessEnv = {
    ...motoClientEnv(moto, REGION),
    HOME: dir.path,
    AWS_ENDPOINT_URL_EC2: moto.endpoint,
    IMAGING_LB_IMDS_URL: imds.url,
    ...(client === "aws-cli" ? { IMAGING_LB_AWS_CLI: aws } : { IMAGING_LB_AGENT_LIB: join(dir.path, "agent-lib") }),
    IMAGING_LB_IP_CMD: join(dir.path, "bin/ip-recorder"),
    IMAGING_LB_TEST_IP_LOG: ipLog,
    // keepalived on B has just entered MASTER: it holds every floating address on eth1 (SIMULATED ip)
    IMAGING_LB_TEST_IP_HELD: "10.50.2.100 10.50.2.101 10.50.2.102 10.240.0.100 10.240.0.101",
    IMAGING_LB_SYSFS_NET: join(dir.path, "sys/class/net"),
    IMAGING_LB_LOCK_FILE: join(dir.path, `takeover-${failover.mode}.lock`),
    IMAGING_LB_BACKOFF_MS: "50",
    IMAGING_LB_MAX_BACKOFF_MS: "200",
  };
  // The script reaches EC2 only through its own AWS_ENDPOINT_URL_EC2 handling (--endpoint-url).
  delete env.AWS_ENDPOINT_URL;
  if (client === "agent") {
    delete env.IMAGING_LB_AWS_CLI;
    // An `aws` first on PATH that fails: the agent's client must not fall back to the AWS CLI.
    env.PATH = `${join(dir.path, "bin-no-aws")}:${env.PATH ?? ""}`;
  }
  try {
    const { stderr } = await execFileAsync("bash", [script], { env, timeout: HUNG_AFTER_MS });
    return { code: 0, stderr, ipCalls: readFakeIpLog(ipLog).changes };
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    return { code: err.code ?? -1, stderr: err.stderr ?? String(e), ipCalls: readFakeIpLog(ipLog).changes };
  }
}

/** `aws ec2 <args> --output json` against moto, parsed. */
async function describe_(args: readonly string[]): Promise<any> {
  const { stdout } = await execFileAsync(aws, ["--endpoint-url", moto.endpoint, "ec2", ...args, "--output", "json"], { env: motoClientEnv(moto, REGION) });
  return JSON.parse(stdout);
}

const secondaryIps = async (eni: string): Promise<string[]> => {
  const out = await describe_(["describe-network-interfaces", "--network-interface-ids", eni]);
  return (out.NetworkInterfaces[0].PrivateIpAddresses as Array<{ PrivateIpAddress: string; Primary: boolean }>)
    .filter((p) => !p.Primary)
    .map((p) => p.PrivateIpAddress)
    .sort();
};

/** The three modes with one EC2 client, against a fresh moto world of their own. */
const takeoverSuite = (which: EC2Client, title: string) =>
  describe(title, { concurrency: 1 }, () => {
    before(async () => {
      client = which;
      requireTool("bash", "bash");
      requireTool("curl", "curl");
      requireTool("flock", "util-linux");
      requireTool("logger", "bsdutils");
      aws = debianAwsCli();
      moto = await startMoto();
      world = (await boto3(moto, REGION, WORLD_SCRIPT, {})) as World;
      dir = tempDir("notify-moto");
      writeTree(dir.path, {
        "sys/class/net/eth1/address": `${MAC_B}\n`,
        "bin/ip-recorder": FAKE_IP_SCRIPT,
      });
      chmodSync(join(dir.path, "bin/ip-recorder"), 0o755);
      writeTree(dir.path, { "bin-no-aws/aws": "#!/bin/sh\necho 'the AWS CLI was called' >&2\nexit 99\n" });
      chmodSync(join(dir.path, "bin-no-aws/aws"), 0o755);
      // The agent's package exactly as a bundle installs it.
      installAgentPackage(join(dir.path, "agent-lib"));
      imds = await SimulatedImds.start({ [MAC_A]: world.eniA, [MAC_B]: world.eniB });
    });
    after(async () => {
      await imds?.close();
      await moto?.stop();
      dir?.cleanup();
    });

    it("secondary-ip: the floating IPs move from A's ENI to B's (AssignPrivateIpAddresses --allow-reassignment)", async () => {
      assert.deepEqual(await secondaryIps(world.eniA), ["10.50.2.100", "10.50.2.101", "10.50.2.102"], "precondition: the VIPs start on A");
      const result = await takeOverOnB({ mode: "secondary-ip", privateIps: ["10.50.2.100", "10.50.2.101"] });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(await secondaryIps(world.eniB), ["10.50.2.100", "10.50.2.101"]);
      // EMULATOR moto 5.2 ignores AllowReassignment and leaves the addresses on A as well (EC2 moves them):
      // that A no longer holds them is unproven here (the simulated-EC2 test asserts the flag is sent).
      assert.deepEqual(result.ipCalls, [], "keepalived owns the local addresses");
      const again = await takeOverOnB({ mode: "secondary-ip", privateIps: ["10.50.2.100", "10.50.2.101"] });
      assert.equal(again.code, 0, `a second run is harmless: ${again.stderr}`);
      assert.deepEqual(await secondaryIps(world.eniB), ["10.50.2.100", "10.50.2.101"]);
    });

    it("elastic-ip: both Elastic IPs are re-associated with B's ENI, one with its floating private IP", async () => {
      const before_ = await describe_(["describe-addresses", "--allocation-ids", ...world.allocationIds]);
      for (const a of before_.Addresses) assert.equal(a.NetworkInterfaceId, world.eniA, "precondition: the Elastic IPs start on A");
      const result = await takeOverOnB({
        mode: "elastic-ip",
        associations: [{ allocationId: world.allocationIds[0] }, { allocationId: world.allocationIds[1], privateIpAddress: "10.50.2.102" }],
      });
      assert.equal(result.code, 0, result.stderr);
      const after_ = await describe_(["describe-addresses", "--allocation-ids", ...world.allocationIds]);
      const byAllocation = new Map((after_.Addresses as Array<Record<string, string>>).map((a) => [a.AllocationId, a]));
      assert.equal(byAllocation.get(world.allocationIds[0])?.NetworkInterfaceId, world.eniB);
      assert.equal(byAllocation.get(world.allocationIds[1])?.NetworkInterfaceId, world.eniB);
      // EMULATOR moto 5.2's AssociateAddress ignores PrivateIpAddress (it always reports the ENI's primary IP):
      // which private IP an Elastic IP maps to is unproven here (the simulated-EC2 test asserts the parameter).
      assert.ok((await secondaryIps(world.eniB)).includes("10.50.2.102"), "the floating private IP was assigned to B first");
    });

    it("route-table: every VIP route in every listed route table now targets B's ENI (ReplaceRoute)", async () => {
      const vips = ["10.240.0.100", "10.240.0.101"];
      const result = await takeOverOnB({ mode: "route-table", vips, routeTableIds: world.routeTableIds });
      assert.equal(result.code, 0, result.stderr);
      const tables = await describe_(["describe-route-tables", "--route-table-ids", ...world.routeTableIds]);
      assert.equal(tables.RouteTables.length, 2);
      for (const table of tables.RouteTables as Array<{ RouteTableId: string; Routes: Array<Record<string, string>> }>) {
        const vipRoutes = table.Routes.filter((r) => vips.map((v) => `${v}/32`).includes(r.DestinationCidrBlock));
        assert.deepEqual(
          vipRoutes.map((r) => [r.DestinationCidrBlock, r.NetworkInterfaceId]).sort(),
          vips.map((v) => [`${v}/32`, world.eniB]),
          `${table.RouteTableId}: both VIP routes point at B`,
        );
      }
    });
  });

takeoverSuite("agent", "notify script with the agent's EC2 client against moto's EC2 (what a node runs; emulated EC2, simulated IMDSv2)");
takeoverSuite("aws-cli", "notify script with the real AWS CLI against moto's EC2 (the fallback; emulated EC2, simulated IMDSv2)");
