/**
 * A SIMULATED Network Load Balancer for the namespace testbed (the kernel here has no IPVS, and AWS's NLB
 * cannot run in a namespace). It models what the product relies on, no more:
 *
 * - **L4, client address preserved**: one namespace (`host`) routes between the clients and each zone's
 *   client-side segment; a new TCP connection to a zone's NLB address is DNAT'ed (iptables `nat`) to one
 *   eligible target, chosen per connection and listener (`statistic --mode nth`: an even spread, standing
 *   in for NLB's flow hash). The source address is untouched, so HAProxy sees the client. The nodes route their replies
 *   back through this namespace (their default gateway), where conntrack undoes the DNAT.
 * - **Zonal addresses and cross-zone**: each VIP has an address per zone; with cross-zone off a zone's
 *   address sends connections only to its own zone's target, with cross-zone on to every zone's.
 * - **Health checks** with the product's own settings (`NLB_HEALTH_CHECK`: HTTP GET, interval, timeout,
 *   thresholds), run from this namespace against each target; only healthy, registered targets get new
 *   connections (if no target of the group is healthy, all registered ones do: NLB fails open).
 * - **Deregistration draining**: a deregistered target gets no new connection; its established ones go on
 *   (their conntrack entries keep the mapping) until the test ends them.
 * - **DNS**: {@link dnsAnswer} returns the zones with an eligible target, like the NLB's DNS name (a dark
 *   zone leaves it when the health checks find its node unhealthy; no TTL or caching: on AWS a client that
 *   caches the name keeps a dead zone's address for up to the record's 60 s unless it tries the next one).
 * - **A zone's loss**: {@link zoneDown} drops everything sent to that zone's NLB addresses.
 *
 * Connections to an address with no eligible target are dropped (the client times out), as are packets of a
 * zone that is down. Not modelled: NLB's own capacity and latency, its TCP idle timeout, its DNS TTL.
 */
import { NLB_HEALTH_CHECK } from "../../../lib/config/nlb-limits";
import type { Topology } from "./netns";
import { delay } from "./wait";

/** A VIP in one zone. */
export interface SimulatedNlbZone {
  /** The zone's name (`a`, `b`). */
  readonly zone: string;
  /** The NLB's address in the zone (configured on this namespace's interface into the zone). */
  readonly address: string;
  /** The VIP's address on the zone's node: the target. */
  readonly target: string;
  /** The node (topology host) holding the target. */
  readonly node: string;
}

/** One VIP's NLB. */
export interface SimulatedNlbVip {
  readonly name: string;
  readonly ports: readonly number[];
  readonly zones: readonly SimulatedNlbZone[];
}

/** Options of {@link SimulatedNlb}. */
export interface SimulatedNlbOptions {
  /** The topology host the NLB runs in (it routes between the clients and the zones). */
  readonly host: string;
  readonly vips: readonly SimulatedNlbVip[];
  /** @default false */
  readonly crossZone?: boolean;
  /** @default NLB_HEALTH_CHECK (the product's) */
  readonly healthCheck?: typeof NLB_HEALTH_CHECK;
}

type Health = "initial" | "healthy" | "unhealthy";

interface TargetState {
  readonly vip: string;
  readonly zone: SimulatedNlbZone;
  registered: boolean;
  health: Health;
  passes: number;
  failures: number;
}

/** One health transition or registration change, for the drills' timelines. */
export interface NlbEvent {
  readonly time: number;
  readonly vip: string;
  readonly node: string;
  readonly event: "healthy" | "unhealthy" | "deregistered" | "registered" | "zone-down" | "zone-up";
}

/** The SIMULATED NLB (see the file's header). Call {@link start}, and {@link stop} at the end. */
export class SimulatedNlb {
  readonly events: NlbEvent[] = [];
  private readonly targets: TargetState[];
  private readonly downZones = new Set<string>();
  private crossZone: boolean;
  private running = false;
  private loop: Promise<void> | undefined;
  private applied = "";
  private readonly check: typeof NLB_HEALTH_CHECK;

  constructor(
    private readonly topology: Topology,
    private readonly options: SimulatedNlbOptions,
  ) {
    this.crossZone = options.crossZone ?? false;
    this.check = options.healthCheck ?? NLB_HEALTH_CHECK;
    this.targets = options.vips.flatMap((v) => v.zones.map((zone): TargetState => ({ vip: v.name, zone, registered: true, health: "initial", passes: 0, failures: 0 })));
  }

  /** Starts the health checks (every interval) and applies the forwarding rules. */
  async start(): Promise<void> {
    await this.topology.execOk(this.options.host, "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
    await this.apply();
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const started = Date.now();
        await Promise.all(this.targets.map((t) => this.probe(t)));
        await this.apply();
        await delay(Math.max(0, this.check.intervalSeconds * 1000 - (Date.now() - started)));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Sets cross-zone load balancing (new connections only; established ones keep their target). */
  async setCrossZone(on: boolean): Promise<void> {
    this.crossZone = on;
    await this.apply();
  }

  /** Deregisters `node`'s targets: no new connection; established ones drain. */
  async deregister(node: string): Promise<void> {
    for (const t of this.targets.filter((x) => x.zone.node === node)) {
      t.registered = false;
      this.events.push({ time: Date.now(), vip: t.vip, node, event: "deregistered" });
    }
    await this.apply();
  }

  /** Registers `node`'s targets again: they take connections once healthy (`healthyThreshold` passes). */
  async register(node: string): Promise<void> {
    for (const t of this.targets.filter((x) => x.zone.node === node)) {
      t.registered = true;
      t.health = "initial";
      t.passes = 0;
      t.failures = 0;
      this.events.push({ time: Date.now(), vip: t.vip, node, event: "registered" });
    }
    await this.apply();
  }

  /** The zone's NLB addresses go dark (its share of the NLB is lost with the zone). */
  async zoneDown(zone: string): Promise<void> {
    this.downZones.add(zone);
    for (const v of this.options.vips) for (const z of v.zones.filter((x) => x.zone === zone)) this.events.push({ time: Date.now(), vip: v.name, node: z.node, event: "zone-down" });
    await this.apply();
  }

  async zoneUp(zone: string): Promise<void> {
    this.downZones.delete(zone);
    for (const v of this.options.vips) for (const z of v.zones.filter((x) => x.zone === zone)) this.events.push({ time: Date.now(), vip: v.name, node: z.node, event: "zone-up" });
    await this.apply();
  }

  /** `node`'s health in every VIP's target group. */
  health(node: string): Health[] {
    return this.targets.filter((t) => t.zone.node === node).map((t) => t.health);
  }

  /** The first time `node` turned `event` in every VIP's target group after `since` (undefined: not yet). */
  eventTime(node: string, event: NlbEvent["event"], since: number): number | undefined {
    const times = this.options.vips.map((v) => this.events.find((e) => e.vip === v.name && e.node === node && e.event === event && e.time >= since)?.time);
    return times.some((t) => t === undefined) ? undefined : Math.max(...(times as number[]));
  }

  /**
   * The VIP's zone addresses the NLB's DNS name answers with now: the zones with an eligible target. A zone
   * that went dark stays in the answer until the health checks find its node unhealthy (AWS's DNS learns
   * of a zone's loss by its own checks, not at once).
   */
  dnsAnswer(vip: string): string[] {
    const v = this.vip(vip);
    return v.zones.filter((z) => this.eligible(vip, z.zone).length > 0).map((z) => z.address);
  }

  /** The VIP's address in `zone`. */
  address(vip: string, zone: string): string {
    const z = this.vip(vip).zones.find((x) => x.zone === zone);
    if (!z) throw new Error(`VIP ${vip} has no zone ${zone}`);
    return z.address;
  }

  private vip(name: string): SimulatedNlbVip {
    const v = this.options.vips.find((x) => x.name === name);
    if (!v) throw new Error(`no VIP ${name} (${this.options.vips.map((x) => x.name).join(", ")})`);
    return v;
  }

  /** The targets a connection to the VIP's address in `zone` may go to now. */
  private eligible(vip: string, zone: string): SimulatedNlbZone[] {
    const group = this.targets.filter((t) => t.vip === vip && t.registered);
    const scope = group.filter((t) => this.crossZone || t.zone.zone === zone);
    const healthy = scope.filter((t) => t.health === "healthy");
    if (healthy.length > 0) return healthy.map((t) => t.zone);
    // Fail open: no healthy target in the whole group → every registered one in scope.
    return group.some((t) => t.health === "healthy") ? [] : scope.map((t) => t.zone);
  }

  private async probe(t: TargetState): Promise<void> {
    const h = this.check;
    const run = await this.topology.exec(
      this.options.host,
      "curl",
      ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*", "--max-time", String(h.timeoutSeconds), `http://${t.zone.target}:${h.port}${h.path}`],
      { timeoutMs: h.timeoutSeconds * 1000 + 2000 },
    );
    const ok = run.code === 0 && run.stdout.trim() === h.matcher;
    if (ok) {
      t.failures = 0;
      t.passes += 1;
      if (t.health !== "healthy" && t.passes >= h.healthyThreshold) this.transition(t, "healthy");
    } else {
      t.passes = 0;
      t.failures += 1;
      if (t.health !== "unhealthy" && t.failures >= h.unhealthyThreshold) this.transition(t, "unhealthy");
    }
  }

  private transition(t: TargetState, health: "healthy" | "unhealthy"): void {
    t.health = health;
    this.events.push({ time: Date.now(), vip: t.vip, node: t.zone.node, event: health });
  }

  /** Rewrites the nat, raw and filter rules in one `iptables-restore` (established flows keep their mapping). */
  private async apply(): Promise<void> {
    const nat: string[] = [];
    const raw: string[] = [];
    const filter: string[] = [];
    for (const v of this.options.vips) {
      for (const z of v.zones) {
        if (this.downZones.has(z.zone)) raw.push(`-A PREROUTING -d ${z.address}/32 -j DROP`);
        // Not DNAT'ed (no eligible target, or not a listener port): dropped, the client times out.
        filter.push(`-A INPUT -d ${z.address}/32 -p tcp -j DROP`);
        const targets = this.eligible(v.name, z.zone);
        // One chain of rules per listener (port), each spreading its own new connections over the targets.
        for (const port of v.ports) {
          targets.forEach((target, i) => {
            const left = targets.length - i;
            const spread = left > 1 ? ` -m statistic --mode nth --every ${left} --packet 0` : "";
            nat.push(`-A PREROUTING -d ${z.address}/32 -p tcp --dport ${port}${spread} -j DNAT --to-destination ${target.target}`);
          });
        }
      }
    }
    const text = [
      "*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ...raw, "COMMIT",
      "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", ...nat, "COMMIT",
      "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ...filter, "COMMIT",
      "",
    ].join("\n");
    if (text === this.applied) return;
    await this.topology.execOk(this.options.host, "iptables-restore", [], { input: text });
    this.applied = text;
  }
}
