/**
 * The multi-AZ testbed of ha.vipMode nlb (issue 24): the bundled example `examples/agfa-ei-nlb.yaml`,
 * its addresses mapped to the test ranges, run as two active nodes in two simulated availability zones
 * behind a SIMULATED NLB (`simulated-nlb.ts`), in front of real Orthanc (DICOM + HTTP) and MLLP receivers,
 * with real DCMTK, curl and MLLP clients. Each node runs the haproxy.cfg the product renders for it
 * (`renderHaproxy(env, { node })`, `-L <node>` so the peers section syncs the stick tables both ways).
 * The drills (`replacementDrill`, `azLossDrill`) are shared by the e2e test (which asserts) and
 * `npm run bench:nlb` (which prints the figures).
 *
 *     clients 192.0.2.10-13 ──[cli]── nlb 192.0.2.1 (SIMULATED NLB + the clients' router)
 *        zone a: [exta 203.0.113.0/26]  nlb .1, NLB addresses web .50 core .51; lb-a eth1 .10, targets .20 .21
 *        zone b: [extb 203.0.113.64/26] nlb .65, NLB addresses web .114 core .115; lb-b eth1 .74, targets .84 .85
 *        zone a: [inta 198.51.100.0/26]  vpc .1,  lb-a eth0 .10
 *        zone b: [intb 198.51.100.64/26] vpc .65, lb-b eth0 .74
 *                [srv 198.51.100.128/26] vpc .129, ei-core-1..3 .149-.151 (Orthanc :104/:80, MLLP :2310)
 *     a three-node bed adds
 *        zone c: [extc 203.0.113.128/26] nlb .129, NLB addresses web .178 core .179; lb-c eth1 .138, targets .148 .149
 *        zone c: [intc 198.51.100.192/26] vpc .193, lb-c eth0 .202
 *
 * The example's services are narrowed through the file's own fields to what the drills use, to keep the
 * bed small: xero-xtend (HTTPS 443, 80) checked on Orthanc's /system every second, dicom on 104 checked by
 * C-ECHO every second, hl7 on 2310 in active-backup (one server for all senders), core disabled; the drain
 * time is the drill's (`drainTime`).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { parseEnvironment } from "../../../lib/load/load";
import type { ResolvedEnvironment } from "../../../lib/config/model";
import { nlbDetectionSeconds } from "../../../lib/plan/nlb";
import { NLB_HEALTH_CHECK } from "../../../lib/config/nlb-limits";
import { requireTool } from "../../helpers/tools";
import { curl } from "./curl";
import { echoscu } from "./dicom";
import { dicomSession, type DicomSessionResult } from "./dicom-session";
import { buildHl7Message, parseAck, sendHl7, startMllpReceiver, type MllpReceiver } from "./hl7";
import type { MllpResult } from "./mllp-client";
import { buildTopology, type HostSpec, type Topology } from "./netns";
import { startOrthanc, type OrthancServer } from "./orthanc";
import { mergePatch, repoRoot, startProductHaproxy, type ProductHaproxy } from "./product";
import { SimulatedNlb } from "./simulated-nlb";
import { delay, pollUntil } from "./wait";

/** The zones, their nodes and addresses. */
export const ZONES = {
  a: { node: "lb-a", host: "lb", az: "eu-west-1a", eth0: "198.51.100.10", eth1: "203.0.113.10", ext: "203.0.113.0/26", int: "198.51.100.0/26", router: "198.51.100.1", gateway: "203.0.113.1", web: { nlb: "203.0.113.50", target: "203.0.113.20" }, core: { nlb: "203.0.113.51", target: "203.0.113.21" } },
  b: { node: "lb-b", host: "lb2", az: "eu-west-1b", eth0: "198.51.100.74", eth1: "203.0.113.74", ext: "203.0.113.64/26", int: "198.51.100.64/26", router: "198.51.100.65", gateway: "203.0.113.65", web: { nlb: "203.0.113.114", target: "203.0.113.84" }, core: { nlb: "203.0.113.115", target: "203.0.113.85" } },
  // The third zone, only on a three-node bed (`buildNlbBed({ zones: ["a", "b", "c"] })`).
  c: { node: "lb-c", host: "lb3", az: "eu-west-1c", eth0: "198.51.100.202", eth1: "203.0.113.138", ext: "203.0.113.128/26", int: "198.51.100.192/26", router: "198.51.100.193", gateway: "203.0.113.129", web: { nlb: "203.0.113.178", target: "203.0.113.148" }, core: { nlb: "203.0.113.179", target: "203.0.113.149" } },
} as const;
export type ZoneName = keyof typeof ZONES;
const SERVERS = ["198.51.100.149", "198.51.100.150", "198.51.100.151"];
const SERVER_NET = "198.51.100.128/26";
const CLIENTS = ["client1", "client2", "client3", "client4"];
/** The AE title of the example's servers. */
export const AE = "EI_CORE";

/** The example mapped to the bed (YAML text, as a user's file would be). */
export function nlbBedEnvironment(drainTime: string, zones: readonly ZoneName[] = ["a", "b"]): ResolvedEnvironment {
  const doc = parse(readFileSync(join(repoRoot(), "examples", "agfa-ei-nlb.yaml"), "utf8")) as Record<string, unknown>;
  const subnet = (cidr: string, az: string, id: number) => ({ cidr, availabilityZone: az, subnetId: `subnet-0e2e0e2e0e2e0000${id}` });
  const { a, b, c } = ZONES;
  const third = zones.includes("c");
  const mapped = mergePatch(doc, {
    network: { vpcCidr: null, natSubnet: null, vpcId: "vpc-0e2e0e2e0e2e0e2e0", internal: subnet(a.int, a.az, 1), external: subnet(a.ext, a.az, 2) },
    loadBalancer: {
      nodes: {
        "lb-a": { internalAddress: a.eth0, externalAddress: a.eth1 },
        "lb-b": { internalAddress: b.eth0, externalAddress: b.eth1, internalSubnet: subnet(b.int, b.az, 3), externalSubnet: subnet(b.ext, b.az, 4) },
        ...(third ? { "lb-c": { internalAddress: c.eth0, externalAddress: c.eth1, internalSubnet: subnet(c.int, c.az, 5), externalSubnet: subnet(c.ext, c.az, 6) } } : {}),
      },
      ha: { nlb: { drainTime } },
    },
    vips: {
      web: { nlb: { "lb-a": { address: a.web.nlb, target: a.web.target }, "lb-b": { address: b.web.nlb, target: b.web.target }, ...(third ? { "lb-c": { address: c.web.nlb, target: c.web.target } } : {}) } },
      core: { nlb: { "lb-a": { address: a.core.nlb, target: a.core.target }, "lb-b": { address: b.core.nlb, target: b.core.target }, ...(third ? { "lb-c": { address: c.core.nlb, target: c.core.target } } : {}) } },
    },
    servers: Object.fromEntries(SERVERS.map((address, i) => [`ei-core-${i + 1}`, { address, aeTitle: AE, ...(i === 2 ? { weight: 2 } : {}) }])),
    services: {
      core: { enabled: false },
      // Orthanc answers 404 on "/": the web check asks its /system, through the file's own field.
      "xero-xtend": { healthCheck: { path: "/system", interval: "1s", fall: 2, rise: 2 }, timeouts: { check: "1s" } },
      dicom: { frontendPorts: [104], healthCheck: { interval: "1s", fall: 2, rise: 2 }, timeouts: { check: "1s" } },
      hl7: { frontendPorts: [2310], balance: "active-backup", healthCheck: { interval: "1s", fall: 2, rise: 2 }, timeouts: { check: "1s" } },
    },
    access: { clientCidrs: ["192.0.2.0/24"], adminCidrs: ["198.51.100.5/32"] },
    stateBackend: null,
  });
  return parseEnvironment(stringify(mapped), "agfa-ei-nlb.e2e.yaml");
}

/** One node of the bed. */
export interface BedNode {
  readonly name: string;
  readonly host: string;
  readonly zone: ZoneName;
  haproxy: ProductHaproxy;
}

/** The built bed. */
export interface NlbBed {
  readonly topology: Topology;
  readonly env: ResolvedEnvironment;
  readonly nlb: SimulatedNlb;
  readonly nodes: Readonly<Record<string, BedNode>>;
  readonly orthancs: readonly OrthancServer[];
  readonly receivers: readonly MllpReceiver[];
  readonly clients: readonly string[];
  /** Starts (again) `node`'s HAProxy: a new machine on the same ENIs. */
  startNode(node: string): Promise<ProductHaproxy>;
  /** The zone goes dark: its node's interfaces, its subnets' router ports and its NLB addresses. */
  zoneDark(zone: ZoneName): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * Builds the bed and waits until every node serves and the NLB sees every node healthy. `zones`: two (the
 * default, lb-a and lb-b) or three (lb-c in zone c too).
 */
export async function buildNlbBed(options: { drainTime: string; zones?: readonly ZoneName[] }): Promise<NlbBed> {
  for (const [tool, pkg] of [["haproxy", "haproxy"], ["Orthanc", "orthanc"], ["echoscu", "dcmtk"], ["curl", "curl"], ["iptables-restore", "iptables"]] as const) requireTool(tool, pkg);
  const zones = options.zones ?? (["a", "b"] as const);
  const env = nlbBedEnvironment(options.drainTime, zones);
  // Zone i: the NLB's eth<i+1> into its client-side segment, the VPC router's eth<i> into its server side.
  const hosts: Record<string, HostSpec> = {
    nlb: {
      interfaces: {
        eth0: { segment: "cli", addresses: ["192.0.2.1/24"] },
        ...Object.fromEntries(zones.map((name, i) => { const z = ZONES[name]; return [`eth${i + 1}`, { segment: `ext${name}`, addresses: [`${z.gateway}/26`, `${z.web.nlb}/26`, `${z.core.nlb}/26`] }]; })),
      },
      sysctls: { "net.ipv4.ip_forward": 1 },
    },
    vpc: {
      interfaces: {
        ...Object.fromEntries(zones.map((name, i) => [`eth${i}`, { segment: `int${name}`, addresses: [`${ZONES[name].router}/26`] }])),
        [`eth${zones.length}`]: { segment: "srv", addresses: ["198.51.100.129/26"] },
      },
      sysctls: { "net.ipv4.ip_forward": 1 },
    },
  };
  for (const name of zones) {
    const z = ZONES[name];
    hosts[z.host] = {
      interfaces: {
        eth0: { segment: `int${name}`, addresses: [`${z.eth0}/26`] },
        eth1: { segment: `ext${name}`, addresses: [`${z.eth1}/26`, `${z.web.target}/26`, `${z.core.target}/26`] },
      },
      gateway: z.gateway,
      routes: [
        { to: SERVER_NET, via: z.router },
        // The other nodes' eth0 (the HAProxy peers), through the VPC's router.
        ...zones.filter((o) => o !== name).map((o) => ({ to: ZONES[o].int, via: z.router })),
      ],
      sysctls: { "net.ipv4.ip_forward": 0, "net.ipv4.ip_nonlocal_bind": 1 },
    };
  }
  SERVERS.forEach((address, i) => {
    hosts[`srv${i + 1}`] = { interfaces: { eth0: { segment: "srv", addresses: [`${address}/26`] } }, gateway: "198.51.100.129" };
  });
  CLIENTS.forEach((client, i) => {
    hosts[client] = { interfaces: { eth0: { segment: "cli", addresses: [`192.0.2.${10 + i}/24`] } }, gateway: "192.0.2.1" };
  });
  const topology = buildTopology({
    segments: {
      cli: {},
      ...Object.fromEntries(zones.flatMap((name) => [[`ext${name}`, { description: `zone ${name} client side` }], [`int${name}`, {}]])),
      srv: { description: "servers" },
    },
    hosts,
  });
  const nlb = new SimulatedNlb(topology, {
    host: "nlb",
    vips: (["web", "core"] as const).map((vip) => ({
      name: vip,
      ports: env.services.filter((s) => s.vip.name === vip).flatMap((s) => [...s.frontendPorts, ...(s.tls.redirectHttpPort ? [s.tls.redirectHttpPort] : [])]),
      zones: zones.map((zone) => ({ zone, address: ZONES[zone][vip].nlb, target: ZONES[zone][vip].target, node: ZONES[zone].node })),
    })),
    crossZone: env.ha?.nlb?.crossZone ?? false,
  });
  try {
    const servers = SERVERS.map((_, i) => `srv${i + 1}`);
    const orthancs = await Promise.all(servers.map((host) => startOrthanc(topology, { host, aet: AE, checkCalledAet: true, dicomPort: 104, httpPort: 80 })));
    const receivers = await Promise.all(servers.map((host) => startMllpReceiver(topology, { host, port: 2310 })));
    const nodes: Record<string, BedNode> = {};
    const startNode = async (name: string): Promise<ProductHaproxy> => {
      const zone = (Object.keys(ZONES) as ZoneName[]).find((z) => ZONES[z].node === name)!;
      const haproxy = await startProductHaproxy({ topology }, env, { host: ZONES[zone].host, node: name });
      nodes[name] = { name, host: ZONES[zone].host, zone, haproxy };
      return haproxy;
    };
    const nodeNames = zones.map((z) => ZONES[z].node);
    await Promise.all(nodeNames.map((n) => startNode(n)));
    const backends = ["be_xero-xtend", "be_dicom"];
    for (const node of Object.values(nodes)) {
      for (const backend of backends) for (const server of ["ei-core-1", "ei-core-2", "ei-core-3"]) await node.haproxy.waitForStatus(backend, server, "UP", 20_000);
      await node.haproxy.waitForStatus("be_hl7", "ei-core-1", "UP", 20_000);
    }
    await nlb.start();
    await pollUntil("the SIMULATED NLB to see every node healthy", () => nodeNames.every((n) => nlb.health(n).every((h) => h === "healthy")), {
      timeoutMs: (NLB_HEALTH_CHECK.healthyThreshold + 2) * NLB_HEALTH_CHECK.intervalSeconds * 1000,
      intervalMs: 200,
    });
    const switchPorts = async (zone: ZoneName): Promise<string[]> => {
      const z = ZONES[zone];
      const i = zones.indexOf(zone);
      const owners = [`${z.host}:eth0`, `${z.host}:eth1`, `nlb:eth${i + 1}`, `vpc:eth${i}`];
      const listing = execSwitch(topology, ["-o", "link", "show"]);
      return listing
        .split("\n")
        .filter((line) => owners.some((o) => new RegExp(`alias ${o}(\\s|$)`).test(line)))
        .map((line) => /^\d+:\s+([^@:]+)/.exec(line)?.[1] ?? "")
        .filter(Boolean);
    };
    return {
      topology,
      env,
      nlb,
      nodes,
      orthancs,
      receivers,
      clients: CLIENTS,
      startNode,
      async zoneDark(zone) {
        const ports = await switchPorts(zone);
        if (ports.length !== 4) throw new Error(`zone ${zone}: expected 4 switch ports, found ${ports.join(", ")}`);
        for (const port of ports) execSwitch(topology, ["link", "set", port, "down"]);
        await nlb.zoneDown(zone);
      },
      async destroy() {
        await nlb.stop();
        topology.destroy();
      },
    };
  } catch (error) {
    await nlb.stop();
    topology.destroy();
    throw error;
  }
}

/** `ip -n <switch namespace> ...` (the bridges and the hosts' veth peers live there). */
function execSwitch(topology: Topology, args: readonly string[]): string {
  const run = spawnSync("ip", ["-n", topology.switchNamespace, ...args], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`ip -n ${topology.switchNamespace} ${args.join(" ")}: ${run.stderr}`);
  return run.stdout;
}

// --- load -------------------------------------------------------------------------------------------

/** How a client finds the VIP: the NLB's DNS name (a fresh answer per connection) or one zone's fixed address. */
export type Addressing = "dns" | ZoneName;

/** One request of a load loop. */
export interface Outcome {
  readonly loop: string;
  readonly started: number;
  readonly ended: number;
  readonly ok: boolean;
  readonly address: string;
  readonly detail: string;
}

/** A loop of short requests (a new connection each) from one client, every `everyMs`, overlapping. */
export interface LoadLoop {
  readonly name: string;
  readonly outcomes: Outcome[];
  stop(): Promise<void>;
}

let dnsTurn = 0;
/** The address a client uses for `vip` now. */
function pick(bed: NlbBed, vip: "web" | "core", addressing: Addressing): string {
  if (addressing !== "dns") return ZONES[addressing][vip].nlb;
  const answer = bed.nlb.dnsAnswer(vip);
  if (answer.length === 0) return ZONES.a[vip].nlb;
  dnsTurn += 1;
  return answer[dnsTurn % answer.length];
}

/** Starts a loop of `kind` requests: C-ECHO (an association each), HTTPS GET /system, or one HL7 message. */
export function startLoad(bed: NlbBed, client: string, kind: "dicom" | "https" | "hl7", addressing: Addressing, everyMs = 400): LoadLoop {
  const name = `${kind} ${addressing === "dns" ? "via DNS" : `fixed zone ${addressing}`} (${client})`;
  const outcomes: Outcome[] = [];
  const pending: Promise<void>[] = [];
  let running = true;
  let n = 0;
  const once = async (address: string): Promise<{ ok: boolean; detail: string }> => {
    if (kind === "dicom") {
      const r = await echoscu(bed.topology, client, { address, calledAet: AE, timeoutMs: 3000 });
      return { ok: r.code === 0, detail: r.code === 0 ? "" : r.output.split("\n").filter((l) => /^[EF]:/.test(l)).join(" | ").slice(0, 160) };
    }
    if (kind === "https") {
      const r = await curl(bed.topology, client, `https://${address}/system`, { insecure: true, timeoutMs: 3000 });
      return { ok: r.status === 200, detail: r.status === 200 ? (JSON.parse(r.body) as { Name: string }).Name : `HTTP ${r.status}` };
    }
    n += 1;
    const r = await sendHl7(bed.topology, client, { host: address, port: 2310, messages: [buildHl7Message({ controlId: `${client}-${n}` })], timeoutMs: 3000 });
    return { ok: r.error === undefined && parseAck(r.acks[0] ?? "").code === "AA", detail: r.error ?? "" };
  };
  const done = (async () => {
    while (running) {
      const started = Date.now();
      const vip = kind === "https" ? "web" : "core";
      const address = pick(bed, vip, addressing);
      pending.push(
        once(address)
          .catch((error: unknown) => ({ ok: false, detail: (error as Error).message.split("\n")[0] }))
          .then((r) => {
            outcomes.push({ loop: name, started, ended: Date.now(), ok: r.ok, address, detail: r.detail });
          }),
      );
      await delay(everyMs);
    }
    await Promise.all(pending);
  })();
  return {
    name,
    outcomes,
    async stop() {
      running = false;
      await done;
    },
  };
}

/** What the requests of a loop saw around an event at `at`. */
export interface LoopFigures {
  readonly loop: string;
  readonly requests: number;
  /** Failed requests started at or after the event. */
  readonly failedAfter: number;
  /** Failed requests that started and ended before it (nothing to do with the event). */
  readonly failedBefore: number;
  /**
   * Requests in flight at the event (started before it, ended after) that failed: the sessions the event
   * cut, with the address each went to.
   */
  readonly failedInFlight: readonly Pick<Outcome, "address" | "detail">[];
  /** From the event to the start of the first request after which every request succeeded (0: none failed). */
  readonly servedAgainMs: number;
  /**
   * From the start of the first failed request to the start of the last one (0: none): how long a new
   * connection attempt failed. Not to its end, which adds the client's own timeout (3 s) to the figure.
   */
  readonly errorWindowMs: number;
}

export function loopFigures(loop: LoadLoop, at: number): LoopFigures {
  const list = [...loop.outcomes].sort((x, y) => x.started - y.started);
  const after = list.filter((o) => o.started >= at);
  const failed = after.filter((o) => !o.ok);
  const lastFailure = failed.at(-1);
  const recovered = lastFailure === undefined ? at : (after.find((o) => o.started > lastFailure.started && o.ok)?.started ?? Number.NaN);
  return {
    loop: loop.name,
    requests: list.length,
    failedAfter: failed.length,
    failedBefore: list.filter((o) => o.started < at && o.ended < at && !o.ok).length,
    failedInFlight: list.filter((o) => o.started < at && o.ended >= at && !o.ok).map((o) => ({ address: o.address, detail: o.detail })),
    servedAgainMs: recovered - at,
    errorWindowMs: lastFailure === undefined ? 0 : lastFailure.started - failed[0].started,
  };
}

// --- long sessions ----------------------------------------------------------------------------------

/** A long DICOM association or HL7 link in flight. */
export interface LongSession {
  readonly kind: "DICOM association" | "HL7 link";
  readonly address: string;
  /** The node serving it (from the nodes' HAProxy counters at its start), when known. */
  node?: string;
  readonly result: Promise<{ ok: boolean; detail: string; durationMs: number }>;
}

/** A DICOM association holding `echoes` C-ECHOs `pauseMs` apart. */
export function longAssociation(bed: NlbBed, client: string, address: string, echoes: number, pauseMs: number): LongSession {
  const result = dicomSession(bed.topology, client, { host: address, port: 104, calledAet: AE, echoes, pauseMs, timeoutMs: 5000 }).then((r: DicomSessionResult) => ({
    ok: r.error === undefined && r.released && r.echoesOk === echoes,
    detail: r.error ?? `${r.echoesOk} echoes, released`,
    durationMs: r.durationMs,
  }));
  return { kind: "DICOM association", address, result };
}

/** An HL7 link: one connection carrying `messages` messages `pauseMs` apart, each ACKed. */
export function longLink(bed: NlbBed, client: string, address: string, messages: number, pauseMs: number, tag: string): LongSession {
  const list = Array.from({ length: messages }, (_, i) => buildHl7Message({ controlId: `${tag}-${i}` }));
  const result = sendHl7(bed.topology, client, { host: address, port: 2310, messages: list, pauseBetweenMs: pauseMs, timeoutMs: 5000 }).then((r: MllpResult) => ({
    ok: r.error === undefined && r.acks.length === messages,
    detail: r.error ?? `${r.acks.length} ACKs`,
    durationMs: r.durationMs,
  }));
  return { kind: "HL7 link", address, result };
}

/** Current sessions of a frontend on a node (HAProxy `show stat` scur). */
export async function currentSessions(node: BedNode, frontend: string): Promise<number> {
  const row = (await node.haproxy.stat()).find((r) => r.pxname === frontend && r.svname === "FRONTEND");
  return Number(row?.scur ?? 0);
}

/** The theoretical detection bound of the product's NLB health check, for the figures. */
export const DETECTION = nlbDetectionSeconds();
