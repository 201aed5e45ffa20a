/**
 * Failover drills on an HA pair of the testbed (see `keepalived.ts`), shared by `test/e2e/ha-pair.e2e.ts`
 * (which asserts the behaviour) and `bench/failover.ts` (which repeats and times it):
 *
 * - **Clients** that behave like the issue's: each runs one request at a time (HTTPS through curl, or a
 *   DICOM C-ECHO through echoscu, each limited to 2 s) and starts the next 0.2 s after the last one ended,
 *   success or not. Every request is kept with its start, end and outcome, so failures are counted per client.
 * - **Events**: the HAProxy of a node killed (SIGKILL to its master; the workers follow), a node powered off
 *   (its links go down first, then every process of it is killed: no RST, no priority-0 advert), and VRRP
 *   cut between the nodes (every VRRP packet dropped as it leaves either node) and healed.
 * - **A watcher** that notes, every 25 ms, which node holds the VIPs on its interface and where the router's
 *   neighbour entries (the SIMULATED EC2, moved by the takeover script) send them.
 */
import type { ResolvedEnvironment } from "../../../lib/config/model";
import { vipInterface } from "../../../lib/node/ha-pair";
import { requireTool } from "../../helpers/tools";
import { curl } from "./curl";
import { echoscu } from "./dicom";
import { interfaceAddresses, interfaceMac, neighbourMac, type ProductPairNode } from "./keepalived";
import type { Topology } from "./netns";
import { delay } from "./wait";

/** One request of a client. */
export interface RequestOutcome {
  readonly started: number;
  readonly ended: number;
  readonly ok: boolean;
  /** The answer's detail on success (e.g. which server answered), the error on failure. */
  readonly detail: string;
}

/** What a client asks for. */
export type ClientKind = "https" | "dicom";

/** A client running requests one after another. */
export interface ClientLoop {
  readonly client: string;
  readonly kind: ClientKind;
  readonly outcomes: RequestOutcome[];
  /** Stops after the request under way; resolves when it has ended. */
  stop(): Promise<void>;
}

/** Options of {@link startClientLoop}. */
export interface ClientLoopOptions {
  /** The pause between the end of one request and the start of the next. @default 200 */
  readonly gapMs?: number;
  /** Each request's limit (curl `--max-time`, echoscu's timeouts). @default 2000 */
  readonly timeoutMs?: number;
}

/** The request timeout and retry pause of the drill's clients. */
export const CLIENT_MODEL = { timeoutMs: 2000, gapMs: 200 } as const;

/**
 * Starts a client loop from `client`: `https` GETs `https://<web VIP>/system` (Orthanc's JSON, whose `Name`
 * says which server answered), `dicom` sends a C-ECHO to the core VIP on port 104 (called AE `EI_CORE`).
 */
export function startClientLoop(topology: Topology, env: ResolvedEnvironment, client: string, kind: ClientKind, options: ClientLoopOptions = {}): ClientLoop {
  const timeoutMs = options.timeoutMs ?? CLIENT_MODEL.timeoutMs;
  const gapMs = options.gapMs ?? CLIENT_MODEL.gapMs;
  const vip = (name: string): string => {
    const found = env.vips.find((v) => v.name === name);
    if (!found) throw new Error(`no VIP named ${name} in ${env.name}`);
    return found.address;
  };
  const request = async (): Promise<{ ok: boolean; detail: string }> => {
    if (kind === "https") {
      const response = await curl(topology, client, `https://${vip("web")}/system`, { insecure: true, timeoutMs });
      if (response.status !== 200) return { ok: false, detail: `HTTP ${response.status}` };
      return { ok: true, detail: (JSON.parse(response.body) as { Name: string }).Name };
    }
    const echo = await echoscu(topology, client, { address: vip("core"), calledAet: "EI_CORE", timeoutMs });
    return { ok: echo.code === 0, detail: echo.code === 0 ? "" : echo.output.split("\n").filter((l) => /^[EF]:/.test(l)).join(" | ") || `exit ${String(echo.code)}` };
  };
  const outcomes: RequestOutcome[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const started = Date.now();
      const result = await request().catch((error: unknown) => ({ ok: false, detail: (error as Error).message.split("\n")[0] }));
      outcomes.push({ started, ended: Date.now(), ...result });
      await delay(gapMs);
    }
  })();
  return {
    client,
    kind,
    outcomes,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** A client's view of one event. */
export interface ClientSummary {
  readonly client: string;
  readonly kind: ClientKind;
  /** Requests that ended before the event, and how many of them failed (must be 0). */
  readonly before: { readonly requests: number; readonly failed: number };
  /** Requests that ended at or after the event (including the one under way at the event), and the failed ones. */
  readonly after: { readonly requests: number; readonly failed: number };
  /** The failed requests' details (at or after the event). */
  readonly failures: readonly string[];
  /** Event → end of the first successful request started after the event: what the client waited. */
  readonly failoverMs: number | undefined;
  /** The successful answers' details after the event (e.g. the servers that answered). */
  readonly answersAfter: readonly string[];
}

/** Summarises `loop` around an event at `eventAt` (epoch ms). */
export function summarizeClient(loop: ClientLoop, eventAt: number): ClientSummary {
  const before = loop.outcomes.filter((o) => o.ended < eventAt);
  const after = loop.outcomes.filter((o) => o.ended >= eventAt);
  const firstOk = loop.outcomes.filter((o) => o.ok && o.started >= eventAt).sort((a, b) => a.ended - b.ended)[0];
  return {
    client: loop.client,
    kind: loop.kind,
    before: { requests: before.length, failed: before.filter((o) => !o.ok).length },
    after: { requests: after.length, failed: after.filter((o) => !o.ok).length },
    failures: after.filter((o) => !o.ok).map((o) => `+${o.started - eventAt} ms: ${o.detail.replace(/\d+ ms/g, "N ms").slice(0, 200)}`),
    failoverMs: firstOk === undefined ? undefined : firstOk.ended - eventAt,
    answersAfter: after.filter((o) => o.ok && o.started >= eventAt).map((o) => o.detail),
  };
}

/** When, relative to nothing (epoch ms), the watcher first saw each thing; undefined if never. */
export interface PairEvents {
  /** Every VIP left the node the event hit (`from`). */
  vipsLeftFrom?: number;
  /** The other node (`to`) held every VIP on its interface. */
  vipsOnTo?: number;
  /** The router (SIMULATED EC2) sent every VIP to `to`. */
  routerToTo?: number;
  /** The router sent every VIP back to `from` (after a heal). */
  routerToFrom?: number;
}

/** A watcher of where the VIPs are; stop it to read the events. */
export interface PairWatcher {
  readonly events: PairEvents;
  stop(): Promise<PairEvents>;
}

/**
 * Watches, every 25 ms, whether `from` and `to` hold the VIPs and where the router sends them. `from` is the
 * node the event hits (its interface is not read once it is powered off: pass `fromAlive: () => false`).
 */
export async function watchPair(topology: Topology, env: ResolvedEnvironment, from: ProductPairNode, to: ProductPairNode): Promise<PairWatcher> {
  const vips = env.vips.map((v) => v.address);
  const iface = vipInterface(env);
  const [fromMac, toMac] = await Promise.all([interfaceMac(topology, from.host, iface), interfaceMac(topology, to.host, iface)]);
  const events: PairEvents = {};
  let watching = true;
  const holds = async (host: string): Promise<number> => {
    try {
      const on = await interfaceAddresses(topology, host, iface);
      return vips.filter((v) => on.includes(v)).length;
    } catch {
      return -1; // the namespace is gone or unreachable
    }
  };
  const done = (async () => {
    while (watching) {
      const [onFrom, onTo, macs] = await Promise.all([holds(from.host), holds(to.host), Promise.all(vips.map((v) => neighbourMac(topology, "router", v)))]);
      const now = Date.now();
      if (onFrom <= 0) events.vipsLeftFrom ??= now;
      if (onTo === vips.length) events.vipsOnTo ??= now;
      if (macs.every((m) => m === toMac)) events.routerToTo ??= now;
      if (events.routerToTo !== undefined && macs.every((m) => m === fromMac)) events.routerToFrom ??= now;
      await delay(25);
    }
  })();
  return {
    events,
    stop: async () => {
      watching = false;
      await done;
      return events;
    },
  };
}

/** Whether the router (SIMULATED EC2) sends every VIP to `node`. */
export async function routerSendsTo(topology: Topology, env: ResolvedEnvironment, node: ProductPairNode): Promise<boolean> {
  const mac = await interfaceMac(topology, node.host, vipInterface(env));
  return (await Promise.all(env.vips.map((v) => neighbourMac(topology, "router", v.address)))).every((m) => m === mac);
}

/**
 * What an operator's manual `imaging-lb-vip-takeover` run on `node` does to EC2 (SIMULATED: the router's
 * neighbour entries point at `node`), for a pair left with the VIPs on the wrong node.
 */
export async function manualTakeover(topology: Topology, env: ResolvedEnvironment, node: ProductPairNode): Promise<void> {
  const ip = requireTool("ip", "iproute2");
  const mac = await interfaceMac(topology, node.host, vipInterface(env));
  const batch = env.vips.map((v) => `neigh replace ${v.address} lladdr ${mac} dev eth1 nud permanent`).join("\n");
  await topology.execOk("router", ip, ["-batch", "-"], { input: `${batch}\n` });
}

/** Drops (or stops dropping) every VRRP packet leaving each of `hosts`: VRRP is cut between them, nothing else. */
export async function cutVrrp(topology: Topology, hosts: readonly string[], cut: boolean): Promise<void> {
  const iptables = requireTool("iptables", "iptables");
  for (const host of hosts) {
    await topology.execOk(host, iptables, [cut ? "-I" : "-D", "OUTPUT", "-p", "vrrp", "-j", "DROP"]);
  }
}

/**
 * Powers `node` off: its links go down first (from then on it neither answers nor refuses, and sends no
 * advert), then keepalived (SIGKILL: no priority-0 advert) and everything in its sandbox are killed.
 */
export async function powerOff(topology: Topology, node: ProductPairNode): Promise<void> {
  const ip = requireTool("ip", "iproute2");
  const links = Object.keys(topology.spec.hosts[node.host]?.interfaces ?? {});
  await topology.execOk(node.host, ip, ["-batch", "-"], { input: `${links.map((l) => `link set ${l} down`).join("\n")}\n` });
  await node.keepalived?.kill();
  await node.sandbox.destroy();
}

/**
 * The keepalived.conf imaging-lb 0.2.0 rendered for a pair node (VRRPv2, advert 1 s, `pgrep -x` and `curl`
 * forked every 1 s, 2 failures), rebuilt from this version's `current` one, with the testbed's process name:
 * the before of bench:failover's comparison, and the starting point of the upgrade drill. (Checked once against
 * 0.2.0's renderer, byte for byte, for the example pair.)
 */
export function keepalivedConf020(current: string, processName: string): string {
  const field = (re: RegExp): string => {
    const m = re.exec(current)?.[1];
    if (m === undefined) throw new Error(`cannot read ${String(re)} from the current keepalived.conf`);
    return m;
  };
  const header = current.slice(0, current.indexOf("global_defs {"));
  const vips = [...current.matchAll(/^ {8}(\d+\.\d+\.\d+\.\d+\/32 dev \S+)$/gm)].map((m) => `        ${m[1]}`);
  const preempt = !/^ {4}nopreempt$/m.test(current);
  const node = field(/^ {4}router_id imaging-lb-.*-(primary|secondary)$/m);
  return [
    header.trimEnd(),
    "",
    "global_defs {",
    `    router_id ${field(/^ {4}router_id (\S+)$/m)}`,
    "    enable_script_security",
    `    script_user ${field(/^ {4}script_user (\S+)$/m)}`,
    "}",
    "",
    "vrrp_script imaging_lb_haproxy_process {",
    `    script "/usr/bin/pgrep -x ${processName}"`,
    "    interval 1",
    "    fall 2",
    "    rise 2",
    "    weight 0",
    "}",
    "",
    "vrrp_script imaging_lb_haproxy_health {",
    `    script "/usr/bin/curl --fail --silent --output /dev/null --max-time 1 ${field(/--max-time \d+ (\S+)"$/m)}"`,
    "    interval 1",
    "    timeout 2",
    "    fall 2",
    "    rise 2",
    "    weight 0",
    "}",
    "",
    `vrrp_instance ${field(/^vrrp_instance (\S+) \{$/m)} {`,
    `    state ${preempt && node === "primary" ? "MASTER" : "BACKUP"}`,
    `    interface ${field(/^ {4}interface (\S+)$/m)}`,
    `    virtual_router_id ${field(/^ {4}virtual_router_id (\d+)$/m)}`,
    `    priority ${field(/^ {4}priority (\d+)$/m)}`,
    "    advert_int 1",
    ...(preempt ? [] : ["    nopreempt"]),
    `    unicast_src_ip ${field(/^ {4}unicast_src_ip (\S+)$/m)}`,
    "    unicast_peer {",
    `        ${field(/^ {4}unicast_peer \{\n {8}(\S+)$/m)}`,
    "    }",
    "    virtual_ipaddress {",
    ...vips,
    "    }",
    "    track_script {",
    "        imaging_lb_haproxy_process",
    "        imaging_lb_haproxy_health",
    "    }",
    `    notify_master "${field(/^ {4}notify_master "(\S+)" root$/m)}" root`,
    "}",
    "",
  ].join("\n");
}

/** Milliseconds of `at` after `eventAt`, or "never". */
export function since(eventAt: number, at: number | undefined): string {
  return at === undefined ? "never" : `+${at - eventAt} ms`;
}
