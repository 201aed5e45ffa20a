/**
 * `npm run bench:failover`: how long an HA pair's VIPs take to move, and how many requests each client loses,
 * when a node's HAProxy dies, when a node dies, and when VRRP is cut between the nodes; whether a busy pair
 * flaps; and what the figures predict on EC2.
 *
 * The pair is the e2e testbed's (test/e2e/harness/keepalived.ts, failover.ts): examples/agfa-ei-ha-pair.yaml
 * on two nodes in network namespaces, the product's haproxy.cfg (master-worker) and keepalived.conf with real
 * keepalived, HAProxy, Orthanc and dcmtk; three clients (HTTPS, C-ECHO, HTTPS) each sending one request at a
 * time, limited to 2 s, the next 0.2 s after the last ended. SIMULATED: EC2 (the takeover script moves the
 * VIPs in the router's neighbour table, which ignores gratuitous ARP as the VPC does).
 *
 * 1. Takeover on EC2, measured here: the product's takeover script of each VIP mode run for real (bash, curl,
 *    Debian's AWS CLI v2, niced as on the nodes) against moto's EC2 and a simulated IMDSv2 on this machine.
 * 2. Rounds (FAILOVER_ROUNDS, default 3), each on a fresh pair with lb-a MASTER: VRRP cut for 3 s and healed;
 *    lb-a's HAProxy killed; lb-a's HAProxy restarted (lb-a BACKUP: the example has preempt false); lb-b (now
 *    MASTER) powered off.
 * 3. Soak (FAILOVER_SOAK_MINUTES, default 10; 0 skips it): a fresh pair under load — every core kept busy,
 *    a master-worker reload of an HAProxy every second (alternating: each node's every 2 s), the AWS CLI
 *    started back to back at nice 10 (the takeover's and the agent's), a `haproxy -c` of each node's
 *    configuration under its tracked process name every 5 s (the agent's validation) — while the clients run.
 *    Target: no state change of either node, no takeover and no failed request.
 *
 * EC2 prediction of a failover: the testbed's time from the event to the new MASTER holding the VIPs, plus the
 * takeover script's run here, plus per EC2 call FAILOVER_EC2_API_MS (default 300: the API's round trip from
 * the instance, an assumption) and once FAILOVER_EC2_APPLY_MS (default 1000: until the VPC delivers to the new
 * ENI, an assumption: AWS publishes no figure). The failed requests a client would see follow from that time
 * with the same client model and TCP's SYN retransmissions (1 s, then 2 s later, ...).
 *
 * FAILOVER_CONFIG=0.2.0 runs the rounds with the keepalived.conf imaging-lb 0.2.0 rendered instead (VRRPv2
 * every 1 s, `pgrep` and `curl` forked every 1 s, 2 failures) for a before/after comparison.
 */
import { execFile } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { ResolvedEnvironment } from "../lib/config/model";
import { renderNotifyScript, type VipFailover } from "../lib/keepalived";
import {
  buildTwoArm,
  CLIENT_MODEL,
  cutVrrp,
  delay,
  keepalivedConf020,
  manualTakeover,
  pollUntil,
  powerOff,
  productEnvironment,
  routerSendsTo,
  startClientLoop,
  startOrthanc,
  startProductPairNode,
  summarizeClient,
  sweepStaleNamespaces,
  takeoverTimes,
  watchPair,
  type ClientLoop,
  type ExampleName,
  type LbTopology,
  type NsProcess,
  type PairEvents,
  type ProductPairNode,
} from "../test/e2e/harness";
import { installAgentPackage } from "../test/helpers/agent-package";
import { SimulatedImds } from "../test/helpers/fake-ec2";
import { FAKE_IP_SCRIPT } from "../test/helpers/fake-ip";
import { requireTool, tempDir, writeTree } from "../test/helpers/tools";
import { boto3, motoClientEnv, startMoto } from "../test/terraform-apply/moto";

const execFileAsync = promisify(execFile);
const ROUNDS = Number(process.env.FAILOVER_ROUNDS ?? "3");
const SOAK_MINUTES = Number(process.env.FAILOVER_SOAK_MINUTES ?? "10");
const TAKEOVER_RUNS = Number(process.env.FAILOVER_TAKEOVER_RUNS ?? "5");
const EC2_API_MS = Number(process.env.FAILOVER_EC2_API_MS ?? "300");
const EC2_APPLY_MS = Number(process.env.FAILOVER_EC2_APPLY_MS ?? "1000");
const CONFIG = process.env.FAILOVER_CONFIG ?? "product";
const HA_EXAMPLE = "agfa-ei-ha-pair" as string as ExampleName;
const REGION = "eu-west-1";
/** The targets of issue 28. */
const TARGETS = { haproxyDeathAfterDetectionMs: 1000, nodeDeathMs: 2000, failedPerClient: 1, soakStateChanges: 0 } as const;

// ---------------------------------------------------------------------------------------------- helpers

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const max = (values: readonly number[]): number => (values.length === 0 ? NaN : Math.max(...values));
const ms = (value: number | undefined): string => (value === undefined || Number.isNaN(value) ? "—" : `${Math.round(value)} ms`);
const met = (ok: boolean): string => (ok ? "met" : "MISSED");

/**
 * The most **new** requests a client of the drill's model (one request at a time, limited to `timeoutMs`, the
 * next `gapMs` after the last ended) sees fail when the VIPs become reachable again `windowMs` after an event,
 * worst case over when its first request after the event starts: a request succeeds if one of its SYNs (sent
 * at its start and retransmitted 1 s, 3 s, 7 s later: Linux's initial RTO, doubling) leaves at or after
 * `windowMs` and the answer (`answerMs`) comes within its limit. (A request under way at the event is lost on
 * top when its connection was with the failed node.)
 */
export function predictedNewFailures(windowMs: number, model: { timeoutMs: number; gapMs: number } = CLIENT_MODEL, answerMs = 100): number {
  const synOffsets = [0, 1000, 3000, 7000];
  let worst = 0;
  for (let first = 0; first < model.timeoutMs + model.gapMs; first += 10) {
    let failures = 0;
    let start = first;
    for (let attempt = 0; attempt < 50; attempt += 1) {
      const ok = synOffsets.some((offset) => start + offset >= windowMs && offset + answerMs <= model.timeoutMs);
      if (ok) break;
      failures += 1;
      start += model.timeoutMs + model.gapMs;
    }
    worst = Math.max(worst, failures);
  }
  return worst;
}

// ------------------------------------------------------------------------------ 1. the takeover on EC2

interface TakeoverFigure {
  readonly mode: VipFailover["mode"];
  /** The script's EC2 client: the agent's (what a node with the agent runs) or the AWS CLI (the fallback). */
  readonly client: "agent" | "aws-cli";
  readonly ec2Calls: number;
  /** Wall-clock time of each run on this (shared) machine. */
  readonly runsMs: number[];
  /** CPU time (user + system, the script and its children) of each run: its wall time on an idle node. */
  readonly cpuMs: number[];
}

const WORLD = String.raw`
import json, boto3
ec2 = boto3.client("ec2")
vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.50.2.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
eni_a = ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress="10.50.2.10")["NetworkInterface"]["NetworkInterfaceId"]
eni_b = ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress="10.50.2.11")["NetworkInterface"]["NetworkInterfaceId"]
ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_a, PrivateIpAddresses=["10.50.2.100", "10.50.2.101"])
allocations = [ec2.allocate_address(Domain="vpc")["AllocationId"] for _ in range(2)]
for allocation, ip in zip(allocations, ["10.50.2.100", "10.50.2.101"]):
    ec2.associate_address(AllocationId=allocation, NetworkInterfaceId=eni_a, PrivateIpAddress=ip)
table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
for vip in ("10.240.0.100/32", "10.240.0.101/32"):
    ec2.create_route(RouteTableId=table, DestinationCidrBlock=vip, NetworkInterfaceId=eni_a)
print(json.dumps({"eniA": eni_a, "eniB": eni_b, "allocations": allocations, "table": table}))
`;

/** Runs the product's takeover script of each mode (the example's two VIPs) against moto, `runs` times each. */
async function measureTakeover(runs: number): Promise<TakeoverFigure[]> {
  const aws = "/usr/bin/aws";
  requireTool("aws", "awscli");
  const time = "/usr/bin/time";
  if (!existsSync(time)) throw new Error(`required tool '${time}' is not installed: install the Debian package 'time'`);
  const version = (await execFileAsync(aws, ["--version"])).stdout.trim();
  if (!/^aws-cli\/2\./.test(version)) throw new Error(`expected Debian's AWS CLI v2 at ${aws}, got ${version}`);
  const moto = await startMoto();
  const dir = tempDir("bench-failover-takeover");
  const macB = "02:1a:2b:3c:4d:02";
  try {
    const world = (await boto3(moto, REGION, WORLD, {})) as { eniA: string; eniB: string; allocations: string[]; table: string };
    writeTree(dir.path, { "sys/class/net/eth1/address": `${macB}\n`, "bin/ip": FAKE_IP_SCRIPT });
    // The agent's package exactly as a bundle installs it.
    installAgentPackage(join(dir.path, "agent-lib"));
    chmodSync(join(dir.path, "bin/ip"), 0o755);
    const imds = await SimulatedImds.start({ [macB]: world.eniB });
    const modes: { failover: VipFailover; ec2Calls: number }[] = [
      { failover: { mode: "secondary-ip", privateIps: ["10.50.2.100", "10.50.2.101"] }, ec2Calls: 1 },
      {
        failover: { mode: "elastic-ip", associations: world.allocations.map((allocationId, i) => ({ allocationId, privateIpAddress: `10.50.2.10${i}` })) },
        ec2Calls: 3,
      },
      { failover: { mode: "route-table", vips: ["10.240.0.100", "10.240.0.101"], routeTableIds: [world.table] }, ec2Calls: 2 },
    ];
    const figures: TakeoverFigure[] = [];
    try {
      for (const client of ["agent", "aws-cli"] as const) for (const { failover, ec2Calls } of modes) {
        const script = join(dir.path, `takeover-${failover.mode}.sh`);
        writeFileSync(script, renderNotifyScript({ envName: "bench", region: REGION, interfaceName: "eth1", failover }), { mode: 0o755 });
        const env: NodeJS.ProcessEnv = {
          ...motoClientEnv(moto, REGION),
          HOME: dir.path,
          AWS_ENDPOINT_URL_EC2: moto.endpoint,
          IMAGING_LB_IMDS_URL: imds.url,
          ...(client === "aws-cli" ? { IMAGING_LB_AWS_CLI: aws } : { IMAGING_LB_AGENT_LIB: join(dir.path, "agent-lib") }),
          IMAGING_LB_IP_CMD: join(dir.path, "bin/ip"),
          IMAGING_LB_TEST_IP_LOG: join(dir.path, "ip.log"),
          IMAGING_LB_TEST_IP_HELD: "10.50.2.100 10.50.2.101 10.240.0.100 10.240.0.101",
          IMAGING_LB_SYSFS_NET: join(dir.path, "sys/class/net"),
          IMAGING_LB_LOCK_FILE: join(dir.path, "takeover.lock"),
        };
        delete env.AWS_ENDPOINT_URL;
        if (client === "agent") delete env.IMAGING_LB_AWS_CLI;
        const runsMs: number[] = [];
        const cpuMs: number[] = [];
        for (let i = 0; i < runs; i += 1) {
          const started = process.hrtime.bigint();
          const { stderr } = await execFileAsync(time, ["-f", "imaging-lb-cpu %U %S", "bash", script], { env, timeout: 60_000 });
          runsMs.push(Number(process.hrtime.bigint() - started) / 1e6);
          const cpu = /imaging-lb-cpu ([\d.]+) ([\d.]+)/.exec(stderr);
          if (!cpu) throw new Error(`no CPU time from ${time}: ${stderr}`);
          cpuMs.push((Number(cpu[1]) + Number(cpu[2])) * 1000);
        }
        figures.push({ mode: failover.mode, client, ec2Calls, runsMs, cpuMs });
      }
    } finally {
      await imds.close();
    }
    return figures;
  } finally {
    await moto.stop();
    dir.cleanup();
  }
}

// ------------------------------------------------------------------------------------- the testbed pair

interface Pair {
  readonly lb: LbTopology;
  readonly env: ResolvedEnvironment;
  readonly a: ProductPairNode;
  readonly b: ProductPairNode;
}

async function startPair(): Promise<Pair> {
  const lb = buildTwoArm({ servers: 3, clients: 3, vips: 2, haPair: true });
  const topo = lb.topology;
  for (const vip of lb.vips) await topo.execOk("lb", "ip", ["addr", "del", `${vip}/24`, "dev", "eth1"]);
  const fastCheck = { healthCheck: { interval: "1s", fall: 2, rise: 2 }, timeouts: { check: "1s" } };
  const webCheck = { ...fastCheck, healthCheck: { ...fastCheck.healthCheck, path: "/system" } };
  const env = productEnvironment({ example: HA_EXAMPLE, lb, patch: { services: { "xero-xtend": webCheck, dicom: fastCheck } } });
  await Promise.all(lb.servers.map((host) => startOrthanc(topo, { host, aet: "EI_CORE", checkCalledAet: true, dicomPort: 104, httpPort: 80 })));
  await Promise.all(lb.servers.map((host) => startOrthanc(topo, { host, name: `${host}-110`, aet: "EI_CORE", checkCalledAet: true, dicomPort: 110, httpPort: 18_110 })));
  const ec2 = { routerNamespace: topo.ns("router"), routerInterface: "eth1" };
  const a = await startProductPairNode(topo, env, "lb", { node: "lb-a", ec2 });
  const b = await startProductPairNode(topo, env, "lb2", { node: "lb-b", ec2 });
  const servers = ["be_dicom", "be_xero-xtend"].flatMap((backend) => ["ei-core-1", "ei-core-2", "ei-core-3"].map((server) => ({ backend, server })));
  await Promise.all([a, b].map((n) => n.haproxy.waitForStatus(servers, "UP", 30_000)));
  const conf = (n: ProductPairNode): string => (CONFIG === "0.2.0" ? keepalivedConf020(n.keepalivedConf, n.haproxy.processName) : n.keepalivedConf);
  const kaA = await a.startKeepalived(conf(a));
  await kaA.waitForState("MASTER", 15_000);
  const kaB = await b.startKeepalived(conf(b));
  await kaB.waitForState("BACKUP", 10_000);
  await pollUntil("lb-a's takeover", () => takeoverTimes(a.takeoverRecordFile).length > 0, { timeoutMs: 5000 });
  await delay(2500);
  if (kaA.states().at(-1) !== "MASTER" || kaB.states().at(-1) !== "BACKUP") throw new Error(`election: lb-a ${kaA.states().join(" → ")}, lb-b ${kaB.states().join(" → ")}`);
  return { lb, env, a, b };
}

const startClients = (pair: Pair): ClientLoop[] =>
  pair.lb.clients.map((client, i) => startClientLoop(pair.lb.topology, pair.env, client, i % 2 === 1 ? "dicom" : "https"));

/** A client's failed requests around a move of the VIPs. */
interface ClientLoss {
  readonly client: string;
  readonly kind: string;
  /** Failed requests that had started before the move (their connection was with the node the traffic left). */
  readonly lost: number;
  /** Failed requests started after the move began: new connections that failed. */
  readonly failedNew: number;
}

/** One measured event. */
interface Drill {
  readonly scenario: "partition" | "haproxy-death" | "node-death";
  readonly events: PairEvents;
  /** When the event happened; for a partition also when VRRP came back. */
  readonly at: number;
  readonly healedAt?: number;
  /** When the old node gave the VIPs up (keepalived's FAULT: the detection of a dead HAProxy). */
  readonly detectedAt?: number;
  /** Per client, around the event (for a partition: around the move to lb-b, while cut). */
  readonly clients: readonly ClientLoss[];
  /** Partition only: per client, around the move back after the heal. */
  readonly clientsAfterHeal?: readonly ClientLoss[];
  /** Per client: event (or heal) → end of its first successful request started after it. */
  readonly waitedMs: readonly (number | undefined)[];
}

function losses(loops: readonly ClientLoop[], from: number, to: number): ClientLoss[] {
  return loops.map((loop) => {
    const failed = loop.outcomes.filter((o) => !o.ok && o.ended >= from && o.ended < to);
    return { client: loop.client, kind: loop.kind, lost: failed.filter((o) => o.started < from).length, failedNew: failed.filter((o) => o.started >= from).length };
  });
}

async function drill(pair: Pair, scenario: Drill["scenario"], from: ProductPairNode, to: ProductPairNode, act: () => Promise<void>, heal?: () => Promise<void>): Promise<Drill> {
  const topo = pair.lb.topology;
  if (!(await routerSendsTo(topo, pair.env, from))) throw new Error(`${scenario}: the VIPs do not go to ${from.node} before the event`);
  const loops = startClients(pair);
  const watcher = await watchPair(topo, pair.env, from, to);
  let at = 0;
  let healedAt: number | undefined;
  try {
    await delay(1500);
    at = Date.now();
    await act();
    await pollUntil(`${scenario}: the router to send the VIPs to ${to.node}`, () => watcher.events.routerToTo !== undefined, { timeoutMs: 15_000 });
    if (heal) {
      await delay(3000 - (Date.now() - at));
      healedAt = Date.now();
      await heal();
      await pollUntil(`${scenario}: the router to send the VIPs back to ${from.node}`, () => watcher.events.routerToFrom !== undefined, { timeoutMs: 15_000 }).catch(() => undefined);
    }
    await pollUntil(`${scenario}: every client served again`, () => loops.every((l) => l.outcomes.some((o) => o.ok && o.started >= (healedAt ?? at))), { timeoutMs: 20_000 }).catch(() => undefined);
    await delay(1000);
  } finally {
    await watcher.stop();
    await Promise.all(loops.map((l) => l.stop()));
  }
  for (const loop of loops) {
    const early = loop.outcomes.filter((o) => !o.ok && o.ended < at);
    if (early.length > 0) throw new Error(`${scenario}: ${loop.client} failed before the event: ${early.map((o) => o.detail).join("; ")}`);
  }
  return {
    scenario,
    events: { ...watcher.events },
    at,
    healedAt,
    detectedAt: watcher.events.vipsLeftFrom,
    clients: losses(loops, at, healedAt ?? Infinity),
    clientsAfterHeal: healedAt === undefined ? undefined : losses(loops, healedAt, Infinity),
    waitedMs: loops.map((l) => summarizeClient(l, healedAt ?? at).failoverMs),
  };
}

/** Rounds after which an operator had to move the VIPs back by hand (the pair left them on the BACKUP). */
const manualRepairs: number[] = [];

async function round(index: number): Promise<Drill[]> {
  const pair = await startPair();
  const topo = pair.lb.topology;
  try {
    const drills: Drill[] = [];
    drills.push(await drill(pair, "partition", pair.a, pair.b, () => cutVrrp(topo, ["lb", "lb2"], true), () => cutVrrp(topo, ["lb", "lb2"], false)));
    await pair.b.keepalived?.waitForState("BACKUP", 10_000).catch(() => undefined);
    if (pair.a.keepalived?.states().at(-1) === "MASTER" && !(await routerSendsTo(topo, pair.env, pair.a))) {
      manualRepairs.push(index);
      await manualTakeover(topo, pair.env, pair.a);
    }
    await delay(1000);
    drills.push(await drill(pair, "haproxy-death", pair.a, pair.b, () => pair.a.haproxy.program.crash()));
    await pair.a.restartHaproxy();
    await pair.a.keepalived?.waitForState("BACKUP", 15_000);
    await delay(2000);
    drills.push(await drill(pair, "node-death", pair.b, pair.a, () => powerOff(topo, pair.b)));
    console.error(`round ${index}: ${drills.map((d) => `${d.scenario} ${ms((d.events.routerToTo ?? NaN) - d.at)}`).join(", ")}`);
    return drills;
  } finally {
    topo.destroy();
  }
}

// ------------------------------------------------------------------------------------------------ soak

interface SoakFigures {
  readonly minutes: number;
  readonly stateChanges: string[];
  readonly takeovers: number;
  readonly reloads: number;
  readonly validations: number;
  readonly awsCliStarts: number;
  readonly requests: number;
  readonly failed: number;
  readonly adverts: number;
  readonly vrrpNice: string;
  readonly loadavg: string;
}

async function soak(minutes: number): Promise<SoakFigures> {
  const pair = await startPair();
  const topo = pair.lb.topology;
  const stressors: NsProcess[] = [];
  try {
    const kas = [pair.a.keepalived!, pair.b.keepalived!];
    const statesBefore = kas.map((k) => k.states().length);
    const takeoversBefore = takeoverTimes(pair.a.takeoverRecordFile).length + takeoverTimes(pair.b.takeoverRecordFile).length;
    const vrrpPid = (k: (typeof kas)[number]): number | undefined => Number(readFileSync(k.configFile.replace(/\.conf$/, "-vrrp.pid"), "utf8").trim()) || undefined;
    const vrrpNice = kas.map((k) => {
      const pid = vrrpPid(k);
      return pid === undefined ? "?" : readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[16];
    }).join("/");
    // Both cores busy for the whole soak (nice 0, like HAProxy under load).
    for (let i = 0; i < cpus().length; i += 1) stressors.push(topo.spawnRoot("lb", "sh", ["-c", "while :; do :; done"]));
    // The AWS CLI back to back at nice 10 (a takeover's or the agent's).
    stressors.push(topo.spawnRoot("lb", "sh", ["-c", "while :; do nice -n 10 /usr/bin/aws --version >/dev/null 2>&1; echo started; done"], { logFile: join(topo.workDir, "soak-aws.log") }));
    const loops = startClients(pair);
    const deadline = Date.now() + minutes * 60_000;
    let reloads = 0;
    let validations = 0;
    let tick = 0;
    while (Date.now() < deadline) {
      const node = tick % 2 === 0 ? pair.a : pair.b;
      await node.haproxy.reload();
      reloads += 1;
      if (tick % 5 === 0) {
        // The agent's validation: `haproxy -c` under the tracked process name, on both nodes.
        await Promise.all([pair.a, pair.b].map((n) => n.sandbox.exec(n.haproxy.binary, ["-dW", "-c", "-f", n.haproxy.configFile, "-L", n.node], { env: { ...process.env, IMAGING_LB_STATS_PASSWORD: "e2e-stats-password" } })));
        validations += 2;
      }
      tick += 1;
      await delay(1000);
    }
    await Promise.all(loops.map((l) => l.stop()));
    const stateChanges = kas.flatMap((k, i) => k.states().slice(statesBefore[i]).map((s) => `${i === 0 ? "lb-a" : "lb-b"} → ${s}`));
    const takeovers = takeoverTimes(pair.a.takeoverRecordFile).length + takeoverTimes(pair.b.takeoverRecordFile).length - takeoversBefore;
    const outcomes = loops.flatMap((l) => l.outcomes);
    const awsCliStarts = readFileSync(join(topo.workDir, "soak-aws.log"), "utf8").split("\n").filter((l) => l === "started").length;
    return {
      minutes,
      stateChanges,
      takeovers,
      reloads: reloads,
      validations,
      awsCliStarts,
      requests: outcomes.length,
      failed: outcomes.filter((o) => !o.ok).length,
      adverts: Math.round((minutes * 60) / pair.env.ha!.advertIntervalSeconds),
      vrrpNice,
      loadavg: loadavg().map((l) => l.toFixed(1)).join(" "),
    };
  } finally {
    for (const s of stressors) await s.kill();
    topo.destroy();
  }
}

// ------------------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  for (const [tool, pkg] of [["keepalived", "keepalived"], ["haproxy", "haproxy"], ["Orthanc", "orthanc"], ["echoscu", "dcmtk"], ["curl", "curl"], ["iptables", "iptables"]] as const) {
    requireTool(tool, pkg);
  }
  if (CONFIG !== "product" && CONFIG !== "0.2.0") throw new Error(`FAILOVER_CONFIG: expected product or 0.2.0, got ${CONFIG}`);
  sweepStaleNamespaces();
  const takeover = await measureTakeover(TAKEOVER_RUNS);
  const drills: Drill[] = [];
  for (let i = 1; i <= ROUNDS; i += 1) drills.push(...(await round(i)));
  const soakFigures = CONFIG === "product" && SOAK_MINUTES > 0 ? await soak(SOAK_MINUTES) : undefined;

  /** The takeover a node runs: through the agent's EC2 client. */
  const takeoverCpu = (mode: string): number => median(takeover.find((t) => t.mode === mode && t.client === "agent")?.cpuMs ?? []);
  /** What EC2 adds to the new MASTER holding the VIPs: its takeover (CPU time here, as on an idle node), the API, the VPC. */
  const ec2AddMs = (mode: string): number => takeoverCpu(mode) + (takeover.find((f) => f.mode === mode)?.ec2Calls ?? 0) * EC2_API_MS + EC2_APPLY_MS;
  const lines: string[] = [];
  const out = (line = ""): void => {
    lines.push(line);
  };
  out(`imaging-lb bench:failover — keepalived.conf: ${CONFIG === "product" ? "this version's" : "imaging-lb 0.2.0's"}; ${ROUNDS} round(s); ${cpus().length} CPUs; ` +
    `clients: one request at a time, ${CLIENT_MODEL.timeoutMs} ms limit, the next ${CLIENT_MODEL.gapMs} ms later`);
  out();
  out(`Takeover script (real bash, curl, at nice 10; its EC2 calls through the agent's client, as a node runs it, or the AWS CLI v2, the fallback) against moto's EC2 and a SIMULATED IMDSv2, ${TAKEOVER_RUNS} runs per mode, medians:`);
  for (const t of takeover) {
    out(`  ${t.mode.padEnd(12)} ${t.client.padEnd(7)} ${t.ec2Calls} EC2 call(s): CPU ${ms(median(t.cpuMs))} (its time on an idle node), wall ${ms(median(t.runsMs))} here (max ${ms(max(t.runsMs))}, load average ${loadavg()[0].toFixed(1)})`);
  }
  out(`  the EC2 prediction below uses the agent client's CPU`);
  out(`  EC2 on top (assumptions): ${EC2_API_MS} ms per API call (FAILOVER_EC2_API_MS), ${EC2_APPLY_MS} ms until the VPC delivers to the new ENI (FAILOVER_EC2_APPLY_MS)`);
  out();

  const by = (scenario: Drill["scenario"]): Drill[] => drills.filter((d) => d.scenario === scenario);
  const rel = (d: Drill, at: number | undefined, from = d.at): number => (at === undefined ? NaN : at - from);
  const worst = (ds: Drill[], key: "lost" | "failedNew", afterHeal = false): number =>
    max(ds.flatMap((d) => (afterHeal ? (d.clientsAfterHeal ?? []) : d.clients).map((c) => c[key])));
  const perRound = (ds: Drill[], afterHeal = false): string =>
    ds.map((d) => (afterHeal ? (d.clientsAfterHeal ?? []) : d.clients).map((c) => `${c.lost}+${c.failedNew}`).join("/")).join(", ");
  const worstWait = (ds: Drill[]): number => max(ds.flatMap((d) => d.waitedMs.map((w) => w ?? Infinity)));
  const targets: { what: string; ok: boolean }[] = [];
  const losses_ = "failed requests per client, lost under way + new";

  // HAProxy death.
  const hd = by("haproxy-death");
  const hdDetect = hd.map((d) => rel(d, d.detectedAt));
  const hdMove = hd.map((d) => rel(d, d.events.vipsOnTo));
  const hdAfterDetection = max(hd.map((d) => rel(d, d.events.routerToTo, d.detectedAt ?? d.at)));
  // On EC2: the new MASTER holds the VIPs, then its takeover runs (measured here) and EC2 applies it (assumed).
  const hdEc2 = max(hdMove) + ec2AddMs("secondary-ip");
  const hdEc2AfterDetection = max(hd.map((d) => rel(d, d.events.vipsOnTo, d.detectedAt ?? d.at))) + ec2AddMs("secondary-ip");
  out("HAProxy death (SIGKILL to lb-a's master; its worker follows), per round:");
  out(`  lb-a gives the VIPs up (detection, FAULT): ${hdDetect.map(ms).join(", ")}`);
  out(`  lb-b holds the VIPs: ${hdMove.map(ms).join(", ")}; router (SIMULATED EC2) → lb-b: ${hd.map((d) => ms(rel(d, d.events.routerToTo))).join(", ")}`);
  out(`  clients served again (kill → first answer): worst ${ms(worstWait(hd))}; ${losses_}: ${perRound(hd)}`);
  out(`  EC2 prediction (secondary-ip): VIPs answer from lb-b ${ms(hdEc2)} after the kill (${ms(hdEc2AfterDetection)} after detection); new requests failing per client ≤ ${predictedNewFailures(hdEc2)}`);
  targets.push({ what: `HAProxy death: VIPs at lb-b ≤ ${TARGETS.haproxyDeathAfterDetectionMs} ms after detection — testbed, worst ${ms(hdAfterDetection)}`, ok: hdAfterDetection <= TARGETS.haproxyDeathAfterDetectionMs });
  targets.push({ what: `HAProxy death: VIPs at lb-b ≤ ${TARGETS.haproxyDeathAfterDetectionMs} ms after detection — EC2 prediction, ${ms(hdEc2AfterDetection)}`, ok: hdEc2AfterDetection <= TARGETS.haproxyDeathAfterDetectionMs });
  targets.push({ what: `HAProxy death: ≤ ${TARGETS.failedPerClient} failed new request per client — testbed, worst ${worst(hd, "failedNew")} (+ ${worst(hd, "lost")} lost under way)`, ok: worst(hd, "failedNew") <= TARGETS.failedPerClient });
  targets.push({ what: `HAProxy death: ≤ ${TARGETS.failedPerClient} failed new request per client — EC2 prediction, ${predictedNewFailures(hdEc2)}`, ok: predictedNewFailures(hdEc2) <= TARGETS.failedPerClient });
  out();

  // Node death.
  const nd = by("node-death");
  const ndMove = nd.map((d) => rel(d, d.events.vipsOnTo));
  const ndRouter = max(nd.map((d) => rel(d, d.events.routerToTo)));
  const ndEc2 = max(ndMove) + ec2AddMs("secondary-ip");
  out("Node death (lb-b, MASTER, powered off: links down, then every process killed), per round:");
  out(`  lb-a holds the VIPs: ${ndMove.map(ms).join(", ")}; router (SIMULATED EC2) → lb-a: ${nd.map((d) => ms(rel(d, d.events.routerToTo))).join(", ")}`);
  out(`  clients served again: worst ${ms(worstWait(nd))}; ${losses_}: ${perRound(nd)}`);
  out(`  EC2 prediction (secondary-ip): VIPs answer from lb-a ${ms(ndEc2)} after the power-off; new requests failing per client ≤ ${predictedNewFailures(ndEc2)}`);
  targets.push({ what: `node death: VIPs at the peer ≤ ${TARGETS.nodeDeathMs} ms — testbed, worst ${ms(ndRouter)}`, ok: ndRouter <= TARGETS.nodeDeathMs });
  targets.push({ what: `node death: VIPs at the peer ≤ ${TARGETS.nodeDeathMs} ms — EC2 prediction, ${ms(ndEc2)}`, ok: ndEc2 <= TARGETS.nodeDeathMs });
  targets.push({ what: `node death: ≤ ${TARGETS.failedPerClient} failed new request per client — testbed, worst ${worst(nd, "failedNew")} (+ ${worst(nd, "lost")} lost under way)`, ok: worst(nd, "failedNew") <= TARGETS.failedPerClient });
  targets.push({ what: `node death: ≤ ${TARGETS.failedPerClient} failed new request per client — EC2 prediction, ${predictedNewFailures(ndEc2)}`, ok: predictedNewFailures(ndEc2) <= TARGETS.failedPerClient });
  out();

  // Partition.
  const pt = by("partition");
  const ptMove = pt.map((d) => rel(d, d.events.vipsOnTo));
  const ptBack = pt.map((d) => rel(d, d.events.routerToFrom, d.healedAt));
  out("VRRP cut between the nodes for 3 s (both MASTER), then healed, per round:");
  out(`  lb-b MASTER holding the VIPs: ${ptMove.map(ms).join(", ")}; router → lb-b: ${pt.map((d) => ms(rel(d, d.events.routerToTo))).join(", ")}`);
  out(`  after the heal, router → lb-a again (lb-a's rx-lower-priority takeover): ${ptBack.map((v) => (Number.isNaN(v) ? "never (15 s)" : ms(v))).join(", ")}`);
  out(`  ${losses_}: move to lb-b ${perRound(pt)}; move back ${perRound(pt, true)}`);
  out(`  EC2 prediction: lb-b's takeover ${ms(max(ptMove) + ec2AddMs("secondary-ip"))} after the cut, lb-a's ${ms(max(ptBack) + ec2AddMs("secondary-ip"))} after the heal; ` +
    "both nodes serve meanwhile, so each move costs a client at most the request it had under way");
  if (manualRepairs.length > 0) out(`  the VIPs stayed on the BACKUP after the heal (rounds ${manualRepairs.join(", ")}): moved back by a manual takeover before the next drill`);
  targets.push({ what: "partition: the VIPs return to the MASTER after the heal", ok: ptBack.every((v) => !Number.isNaN(v)) });
  const ptWorst = Math.max(worst(pt, "lost") + worst(pt, "failedNew"), worst(pt, "lost", true) + worst(pt, "failedNew", true));
  targets.push({ what: `partition: ≤ ${TARGETS.failedPerClient} failed request per client and move — testbed, worst ${ptWorst}`, ok: ptWorst <= TARGETS.failedPerClient });
  out();

  if (soakFigures) {
    const s = soakFigures;
    out(`Soak, ${s.minutes} min on a fresh pair: both CPUs busy, ${s.reloads} HAProxy reloads, ${s.validations} haproxy -c under the tracked name, ${s.awsCliStarts} AWS CLI starts at nice 10; ` +
      `keepalived's VRRP processes at nice ${s.vrrpNice}; load average ${s.loadavg}`);
    out(`  ${s.adverts} adverts per node (an hour at 0.5 s is 7200); state changes: ${s.stateChanges.length === 0 ? "none" : s.stateChanges.join(", ")}; takeovers: ${s.takeovers}; ` +
      `requests ${s.requests}, failed ${s.failed}`);
    targets.push({ what: `soak: ${TARGETS.soakStateChanges} spurious failovers (state changes ${s.stateChanges.length}, takeovers ${s.takeovers})`, ok: s.stateChanges.length === 0 && s.takeovers === 0 });
    targets.push({ what: `soak: 0 failed requests (${s.failed} of ${s.requests})`, ok: s.failed === 0 });
    out();
  }
  out("Targets:");
  for (const t of targets) out(`  ${met(t.ok).padEnd(6)} ${t.what}`);
  console.log(lines.join("\n"));
}

main().catch((error: Error) => {
  console.error(`bench:failover: ${error.stack ?? error.message}`);
  process.exitCode = 1;
});
