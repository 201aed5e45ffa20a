/**
 * The HA pair end to end (issues 5 and 28): examples/agfa-ei-ha-pair.yaml mapped to the test ranges, two LB
 * nodes (`lb` = lb-a, primary, 198.51.100.10 / 203.0.113.10; `lb2` = lb-b, secondary, .11 / .11) each running
 * the product's rendered haproxy.cfg (master-worker, `-L <node>`, so the `peers` section syncs the stick tables
 * over eth0:10000) and the product's rendered keepalived.conf (`pairFiles`): unicast VRRPv3 every 0.5 s on
 * eth0, VIPs added to the MASTER's eth1, HAProxy's processes tracked from the kernel's process events, the
 * loopback `/healthz` probed every 3 s. See `harness/keepalived.ts` for what the testbed adapts (keepalived
 * runs from the root namespaces; each node's HAProxy has a process name of its own) and what it simulates
 * (the takeover script moves the VIPs in the router's neighbour table, which like EC2 ignores gratuitous ARP).
 * The clients behave as in `harness/failover.ts`: one request at a time, limited to 2 s, the next 0.2 s later.
 *
 * Proves, in order: keepalived hears this node's HAProxy from the kernel; lb-a is elected MASTER and lb-b
 * stays BACKUP (with imaging-lb 0.2.0's keepalived.conf); stick-table entries made through lb-a are on lb-b
 * before any failover; this version's keepalived.conf rolled out as the agent does (BACKUP first) leaves one
 * MASTER that the router follows, each move costing a client at most one request; VRRP cut between the
 * nodes makes lb-b MASTER too and its takeover moves the VIPs, and when VRRP returns lb-b yields and lb-a's
 * `notify_master_rx_lower_pri` takes them back, each move costing a client at most the request it had under way; lb-a's HAProxy killed moves the VIPs
 * to lb-b at once, with at most one failed request per client and persistence kept; lb-a's HAProxy back makes
 * lb-a BACKUP (preempt: false); lb-b powered off moves the VIPs to lb-a within the master-down time, with at
 * most one failed request per client. Timings are printed; the benchmark (`npm run bench:failover`) repeats
 * and measures them.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  buildTwoArm,
  curl,
  cutVrrp,
  delay,
  echoscu,
  interfaceAddresses,
  keepalivedConf020,
  listNamespaces,
  nodeHaproxyName,
  parseStickTable,
  pollUntil,
  powerOff,
  productEnvironment,
  productKeepalivedConf,
  routerSendsTo as routerSendsTo_,
  RUN_PREFIX,
  since,
  startClientLoop,
  startOrthanc,
  startProductPairNode,
  summarizeClient,
  sweepStaleNamespaces,
  takeoverTimes,
  watchPair,
  type ClientLoop,
  type ClientSummary,
  type ExampleName,
  type LbTopology,
  type ProductPairNode,
  type StickEntry,
} from "./harness";
import type { ResolvedEnvironment } from "../../lib/config/model";
import { requireTool } from "../helpers/tools";

/** The HA-pair example (not yet in product.ts's `ExampleName` union; the mapping reads any example file). */
const HA_EXAMPLE = "agfa-ei-ha-pair" as string as ExampleName;
/** Slack on top of the timers for the takeover script, the router update and one client request. */
const CLIENT_SLACK_MS = 1500;
/** The web service's stick table (source-IP persistence, synced through `peers`). */
const STICKY_BACKEND = "be_xero-xtend";

/** The timers of a rendered keepalived.conf that bound a failover. */
function keepalivedTimers(conf: string): { advertMs: number; priority: number; preemptDelayMs: number | undefined } {
  const seconds = (re: RegExp): number | undefined => {
    const m = re.exec(conf)?.[1];
    return m === undefined ? undefined : Number(m) * 1000;
  };
  return {
    advertMs: seconds(/^ {4}advert_int ([\d.]+)$/m) ?? NaN,
    priority: Number(/^ {4}priority (\d+)$/m.exec(conf)?.[1]),
    preemptDelayMs: seconds(/^ {4}preempt_delay ([\d.]+)$/m),
  };
}

describe("product HA pair: keepalived + HAProxy peers on two nodes, failover", { timeout: 300_000 }, () => {
  let lb: LbTopology;
  let env: ResolvedEnvironment;
  let lbA: ProductPairNode;
  let lbB: ProductPairNode;
  const serverNames = ["ei-core-1", "ei-core-2", "ei-core-3"];
  /** client host → Orthanc name (srvN) it was served by before the failover. */
  const servedBy = new Map<string, string>();
  /** client address → stick entry on lb-a before the failover. */
  let stickBefore = new Map<string, StickEntry>();

  const web = (): string => env.vips.find((v) => v.name === "web")?.address ?? "";
  const core = (): string => env.vips.find((v) => v.name === "core")?.address ?? "";
  const vipsOn = async (host: string): Promise<string[]> => (await interfaceAddresses(lb.topology, host, "eth1")).filter((a) => env.vips.some((v) => v.address === a));
  const routerSendsTo = (node: ProductPairNode): Promise<boolean> => routerSendsTo_(lb.topology, env, node);
  const systemName = async (client: string, timeoutMs = 5000): Promise<string> => {
    const response = await curl(lb.topology, client, `https://${web()}/system`, { insecure: true, timeoutMs });
    if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    return (JSON.parse(response.body) as { Name: string }).Name;
  };
  const stickTable = async (node: ProductPairNode): Promise<Map<string, StickEntry>> =>
    new Map(parseStickTable(await node.haproxy.runtime(`show table ${STICKY_BACKEND}`)).map((e) => [e.key, e]));
  /** One client loop per client: HTTPS, C-ECHO, HTTPS. */
  const startClients = (): ClientLoop[] =>
    lb.clients.map((client, i) => startClientLoop(lb.topology, env, client, i % 2 === 1 ? "dicom" : "https"));
  const report = (t: { diagnostic(message: string): void }, summaries: readonly ClientSummary[]): void => {
    for (const s of summaries) {
      t.diagnostic(`${s.client} (${s.kind}): served again after ${s.failoverMs ?? "∞"} ms; requests before/after ${s.before.requests}/${s.after.requests}, failed ${s.before.failed}/${s.after.failed}` +
        `${s.failures.length > 0 ? `: ${s.failures.join("; ")}` : ""}`);
    }
  };
  const atMostOneFailure = (summaries: readonly ClientSummary[]): void => {
    for (const s of summaries) {
      assert.equal(s.before.failed, 0, `${s.client}: nothing failed before the event`);
      assert.ok(s.after.failed <= 1, `${s.client} (${s.kind}): ${s.after.failed} failed requests (at most 1 allowed): ${s.failures.join("; ")}`);
      assert.ok(s.failoverMs !== undefined, `${s.client} was served again`);
    }
  };

  before(async () => {
    for (const [tool, pkg] of [["keepalived", "keepalived"], ["haproxy", "haproxy"], ["Orthanc", "orthanc"], ["echoscu", "dcmtk"],
      ["curl", "curl"], ["iptables", "iptables"], ["nsenter", "util-linux"], ["unshare", "util-linux"]] as const) {
      requireTool(tool, pkg);
    }
    sweepStaleNamespaces();
    lb = buildTwoArm({ servers: 3, clients: 3, vips: 2, haPair: true });
    const topo = lb.topology;
    // buildTwoArm puts the VIPs on lb's eth1 by hand; here keepalived owns them.
    for (const vip of lb.vips) await topo.execOk("lb", "ip", ["addr", "del", `${vip}/24`, "dev", "eth1"]);
    const fastCheck = { healthCheck: { interval: "1s", fall: 2, rise: 2 }, timeouts: { check: "1s" } };
    // Orthanc answers 404 on "/" (the example's check path): check its /system instead, through the file's own field.
    const webCheck = { ...fastCheck, healthCheck: { ...fastCheck.healthCheck, path: "/system" } };
    env = productEnvironment({ example: HA_EXAMPLE, lb, patch: { services: { "xero-xtend": webCheck, dicom: fastCheck } } });
    assert.deepEqual(env.nodes.map((n) => `${n.name} ${n.role} ${n.internalAddress} ${n.externalAddress ?? ""}`), [
      "lb-a primary 198.51.100.10 203.0.113.10",
      "lb-b secondary 198.51.100.11 203.0.113.11",
    ]);
    assert.equal(env.ha?.advertIntervalSeconds, 0.5);
    assert.equal(env.ha?.preempt, false, "the example keeps the VIPs where they are when the primary recovers");
    assert.deepEqual(env.services.find((s) => s.name === "dicom")?.members.map((m) => m.name), serverNames);
    await Promise.all(lb.servers.map((host) => startOrthanc(topo, { host, aet: "EI_CORE", checkCalledAet: true, dicomPort: 104, httpPort: 80 })));
    // The product's DICOM check covers both DICOM ports of the preset (104 and 110).
    await Promise.all(lb.servers.map((host) => startOrthanc(topo, { host, name: `${host}-110`, aet: "EI_CORE", checkCalledAet: true, dicomPort: 110, httpPort: 18_110 })));
    const ec2 = { routerNamespace: topo.ns("router"), routerInterface: "eth1" };
    lbA = await startProductPairNode(topo, env, "lb", { node: "lb-a", ec2 });
    lbB = await startProductPairNode(topo, env, "lb2", { node: "lb-b", ec2 });
    const servers = ["be_dicom", STICKY_BACKEND].flatMap((backend) => serverNames.map((server) => ({ backend, server })));
    await Promise.all([lbA, lbB].map((node) => node.haproxy.waitForStatus(servers, "UP", 20_000)));
  });

  after(async () => {
    const inits = [lbA, lbB].filter((n) => n !== undefined).map((n) => n.sandbox.initPid);
    lb?.topology.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
    // The sandbox inits (and with them their PID + mount namespaces) are gone: no such pid, or a zombie awaiting its reaper.
    const alive = (pid: number): boolean => {
      try {
        return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
      } catch {
        return false;
      }
    };
    await pollUntil("the node sandboxes to be gone", () => inits.every((pid) => !alive(pid)), { timeoutMs: 5000 });
  });

  it("keepalived hears this node's HAProxy from the kernel's process events (no command forked)", async (t) => {
    const product = productKeepalivedConf(env, "lb-a");
    assert.match(product, /^vrrp_track_process imaging_lb_haproxy_process \{\n {4}process haproxy\n/m, "the product tracks the processes named haproxy");
    assert.doesNotMatch(product, /pgrep|pidof/, "no process-lookup command is forked");
    assert.match(lbA.keepalivedConf, new RegExp(`^ {4}process ${nodeHaproxyName("lb-a")}$`, "m"), "the testbed's lb-a tracks its own HAProxy");
    const ka = await lbA.startKeepalived();
    const verdict = await pollUntil(
      "keepalived's proc_events confirmation",
      () => /proc_events has confirmed it is configured/.exec(ka.log())?.[0],
      { timeoutMs: 8000, intervalMs: 50 },
    );
    await delay(300);
    await ka.stop();
    t.diagnostic(`keepalived: ${verdict}; ${nodeHaproxyName("lb-a")} processes: ${lbA.haproxy.processName}`);
    assert.doesNotMatch(ka.log(), /Quorum lost|quorum not achieved|FAULT/, "the tracked HAProxy counts as running");
  });

  it("lb-a is elected MASTER (VIPs on its eth1, the router sends them there), lb-b stays BACKUP without VIPs (imaging-lb 0.2.0's keepalived.conf)", async (t) => {
    const topo = lb.topology;
    const takeoversA = takeoverTimes(lbA.takeoverRecordFile).length;
    // The pair starts as 0.2.0 deployed it; the upgrade test below rolls this version's keepalived.conf out.
    const kaA = await lbA.startKeepalived(keepalivedConf020(lbA.keepalivedConf, lbA.haproxy.processName));
    const masterMs = await kaA.waitForState("MASTER", 15_000);
    await pollUntil("both VIPs on lb-a's eth1", async () => (await vipsOn("lb")).length === 2, { timeoutMs: 5000 });
    const kaB = await lbB.startKeepalived(keepalivedConf020(lbB.keepalivedConf, lbB.haproxy.processName));
    await kaB.waitForState("BACKUP", 10_000);
    await delay(2500); // > 3 advertisement intervals plus skew: lb-b would have declared lb-a dead by now
    t.diagnostic(`lb-a MASTER ${masterMs} ms after keepalived started; states lb-a ${kaA.states().join(" → ")}, lb-b ${kaB.states().join(" → ")}`);

    assert.deepEqual((await vipsOn("lb")).sort(), [...lb.vips].sort(), "both VIPs on lb-a's eth1");
    assert.deepEqual(await vipsOn("lb2"), [], "no VIP on lb-b's eth1");
    assert.deepEqual(await interfaceAddresses(topo, "lb", "eth0"), ["198.51.100.10"], "VIPs never on eth0");
    assert.equal(kaA.states().at(-1), "MASTER");
    assert.deepEqual(kaB.states(), ["BACKUP"], "lb-b never left BACKUP");
    assert.equal(takeoverTimes(lbA.takeoverRecordFile).length, takeoversA + 1, "notify_master ran the (simulated) takeover script once on lb-a");
    assert.equal(takeoverTimes(lbB.takeoverRecordFile).length, 0, "not on lb-b");
    assert.ok(await routerSendsTo(lbA), "the router (SIMULATED EC2) sends both VIPs to lb-a");

    const echo = await echoscu(topo, "client1", { address: core(), calledAet: "EI_CORE", timeoutMs: 5000 });
    assert.equal(echo.code, 0, echo.output);
  });

  it("stick-table entries made through lb-a are on lb-b before any failover, with the same server", async (t) => {
    for (const client of lb.clients) {
      const names = [];
      for (let i = 0; i < 3; i += 1) names.push(await systemName(client));
      assert.equal(new Set(names).size, 1, `${client} stuck to one server: ${names.join(", ")}`);
      servedBy.set(client, names[0]);
    }
    t.diagnostic(`served by: ${[...servedBy].map(([c, s]) => `${c}→${s}`).join(", ")}`);

    // HAProxy numbers servers in declaration order: ei-core-N has id N (checked, not assumed).
    const state = await lbA.haproxy.runtime(`show servers state ${STICKY_BACKEND}`);
    for (const [i, name] of serverNames.entries()) {
      assert.match(state, new RegExp(`^\\d+ ${STICKY_BACKEND} ${i + 1} ${name} `, "m"));
    }

    const clientAddress = (client: string): string => lb.topology.address(client, "eth0");
    const tableA = await stickTable(lbA);
    const tableB = await pollUntil(
      "lb-b's stick table to hold every client's entry (peers sync)",
      async () => {
        const table = await stickTable(lbB);
        const missing = lb.clients.filter((c) => table.get(clientAddress(c))?.serverId !== tableA.get(clientAddress(c))?.serverId);
        if (missing.length > 0) throw new Error(`missing or different on lb-b: ${missing.join(", ")}`);
        return table;
      },
      { timeoutMs: 5000, intervalMs: 100 },
    );
    for (const client of lb.clients) {
      const a = tableA.get(clientAddress(client));
      const b = tableB.get(clientAddress(client));
      assert.ok(a && b, `${client} has an entry on both nodes`);
      const expectedId = lb.servers.indexOf(servedBy.get(client) ?? "") + 1;
      assert.equal(a.serverId, expectedId, `lb-a's entry for ${client} names the server that answered`);
      assert.equal(b.serverId, a.serverId, `lb-b's entry for ${client} names the same server as lb-a's`);
    }
    assert.equal(parseStickTable(await lbB.haproxy.runtime("show table be_dicom")).length, 0, "be_dicom has no stick table entries (leastconn, no persistence)");
    stickBefore = tableA;
  });

  it("upgrade from 0.2.0's keepalived.conf (VRRPv2) as the agent rolls it, BACKUP first: both MASTER until lb-a has it too, then one MASTER that the router follows", async (t) => {
    const topo = lb.topology;
    const kaA = lbA.keepalived;
    const kaB = lbB.keepalived;
    assert.ok(kaA && kaB, "keepalived runs on both nodes");
    const loops = startClients();
    const watcher = await watchPair(topo, env, lbA, lbB);
    const stateCount = [kaA.states().length, kaB.states().length];
    let backupAt = 0;
    let masterAt = 0;
    let final: ProductPairNode | undefined;
    try {
      await delay(1500);
      backupAt = Date.now();
      await kaB.reload(lbB.keepalivedConf);
      // VRRPv3 and VRRPv2 do not hear each other: lb-b declares lb-a dead and takes the VIPs.
      await pollUntil("lb-b's takeover while the versions differ", () => watcher.events.routerToTo !== undefined, { timeoutMs: 10_000 });
      await delay(3000); // the agent applies the MASTER's bundle only after the BACKUP reported success
      masterAt = Date.now();
      await kaA.reload(lbA.keepalivedConf);
      final = await pollUntil(
        "one MASTER that holds the VIPs and that the router follows",
        async () => {
          const masters = [lbA, lbB].filter((n) => n.keepalived?.states().at(-1) === "MASTER");
          if (masters.length !== 1) throw new Error(`MASTER: ${masters.map((n) => n.node).join(", ") || "none"}`);
          return (await routerSendsTo(masters[0])) && (await vipsOn(masters[0].host)).length === 2 ? masters[0] : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 100 },
      );
      await delay(2000);
    } finally {
      await watcher.stop();
      await Promise.all(loops.map((l) => l.stop()));
    }
    const ev = watcher.events;
    t.diagnostic(`lb-b reloaded at 0: router → lb-b ${since(backupAt, ev.routerToTo)}; lb-a reloaded at +${masterAt - backupAt} ms: ` +
      `router → lb-a ${since(masterAt, ev.routerToFrom)} after it; ${final?.node} MASTER in the end`);
    t.diagnostic(`states since: lb-a ${kaA.states().slice(stateCount[0]).join(" → ") || "unchanged"}; lb-b ${kaB.states().slice(stateCount[1]).join(" → ")}`);
    const summaries = loops.map((l) => summarizeClient(l, backupAt));
    report(t, summaries);
    assert.ok(final, "the pair settled");
    assert.equal(await routerSendsTo(final), true, `the router sends the VIPs to the MASTER, ${final.node}`);
    assert.deepEqual(await vipsOn(final === lbA ? "lb2" : "lb"), [], "the other node holds no VIP");
    for (const loop of loops) {
      const moves = [backupAt, masterAt, Infinity];
      for (let i = 0; i < 2; i += 1) {
        const failed = loop.outcomes.filter((o) => !o.ok && o.ended >= moves[i] && o.ended < moves[i + 1]).length;
        assert.ok(failed <= 1, `${loop.client}: at most one failed request per move (${failed})`);
      }
    }
    // keepalived subscribes to the kernel's process events only when it starts with a vrrp_track_process, not
    // when a reload adds one (2.2.7 to 2.4: the reload path re-reads /proc but never subscribes). The upgrade
    // therefore ends with a restart of keepalived on each node (CHANGELOG); until then a dead HAProxy is seen
    // only by the HTTP probe.
    for (const ka of [kaA, kaB]) assert.doesNotMatch(ka.log(), /proc_events has confirmed/, "no process events after the reload (keepalived's reload path)");
    // The restart, here from scratch in the order the drills below start from: lb-a MASTER, lb-b BACKUP.
    await kaB.stop();
    await kaA.stop();
    const restartedA = await lbA.startKeepalived();
    await restartedA.waitForState("MASTER", 15_000);
    const restartedB = await lbB.startKeepalived();
    await restartedB.waitForState("BACKUP", 10_000);
    for (const ka of [restartedA, restartedB]) {
      await pollUntil("keepalived's proc_events confirmation after the restart", () => /proc_events has confirmed it is configured/.test(ka.log()), { timeoutMs: 5000 });
    }
    await pollUntil("the router to send the VIPs to lb-a", () => routerSendsTo(lbA), { timeoutMs: 10_000 });
  });

  it("VRRP cut between the nodes: lb-b becomes MASTER too and moves the VIPs; VRRP back: lb-b yields and lb-a takes them back; at most one failed request per client and move", async (t) => {
    const topo = lb.topology;
    const kaA = lbA.keepalived;
    const kaB = lbB.keepalived;
    assert.ok(kaA && kaB, "keepalived runs on both nodes");
    const takeoversA = takeoverTimes(lbA.takeoverRecordFile).length;
    const loops = startClients();
    const watcher = await watchPair(topo, env, lbA, lbB);
    let cutAt = 0;
    let healedAt = 0;
    try {
      await delay(1500);
      cutAt = Date.now();
      await cutVrrp(topo, ["lb", "lb2"], true);
      await pollUntil("lb-b's takeover to move the VIPs to it", () => watcher.events.routerToTo !== undefined, { timeoutMs: 10_000 });
      assert.equal(kaA.states().at(-1), "MASTER", "lb-a is still MASTER: both are (split brain while cut off, as designed)");
      await delay(1000);
      healedAt = Date.now();
      await cutVrrp(topo, ["lb", "lb2"], false);
      await kaB.waitForState("BACKUP", 10_000);
      await pollUntil("lb-a's takeover to move the VIPs back", () => watcher.events.routerToFrom !== undefined, { timeoutMs: 10_000 }).catch((error: Error) => {
        // What keepalived did after the heal is what tells why (both nodes' logs since the cut, and their takeovers).
        const tail = (text: string) => text.split("\n").slice(-40).join("\n");
        throw new Error(`${error.message}\nlb-a takeovers: ${takeoverTimes(lbA.takeoverRecordFile).map((at) => at - cutAt).join(", ")} ms after the cut\n` +
          `lb-b takeovers: ${takeoverTimes(lbB.takeoverRecordFile).map((at) => at - cutAt).join(", ")} ms after the cut\n` +
          `--- lb-a keepalived\n${tail(kaA.log())}\n--- lb-b keepalived\n${tail(kaB.log())}`);
      });
      await delay(1500);
    } finally {
      await watcher.stop();
      await Promise.all(loops.map((l) => l.stop()));
    }
    const ev = watcher.events;
    t.diagnostic(`cut at 0: lb-b holds the VIPs ${since(cutAt, ev.vipsOnTo)}, router → lb-b ${since(cutAt, ev.routerToTo)}; ` +
      `healed at +${healedAt - cutAt} ms: router → lb-a ${since(healedAt, ev.routerToFrom)} after the heal`);
    t.diagnostic(`states: lb-a ${kaA.states().join(" → ")}; lb-b ${kaB.states().join(" → ")}`);
    const summaries = loops.map((l) => summarizeClient(l, cutAt));
    report(t, summaries);

    assert.ok(ev.routerToTo !== undefined && ev.routerToTo - cutAt <= keepalivedTimers(lbB.keepalivedConf).advertMs * 4 + CLIENT_SLACK_MS, "lb-b took over within its master-down time");
    assert.deepEqual((await vipsOn("lb")).sort(), [...lb.vips].sort(), "lb-a holds both VIPs");
    assert.deepEqual(await vipsOn("lb2"), [], "lb-b gave them up");
    assert.ok(await routerSendsTo(lbA), "the router (SIMULATED EC2) sends the VIPs to lb-a again");
    assert.match(kaA.log(), /Received advert from 198\.51\.100\.11 with lower priority 100, ours 150/, "lb-a heard lb-b's last advert");
    assert.ok(takeoverTimes(lbA.takeoverRecordFile).filter((at) => at >= healedAt).length >= 1, "lb-a reran its takeover after the heal (notify_master_rx_lower_pri)");
    assert.equal(takeoverTimes(lbA.takeoverRecordFile).filter((at) => at < healedAt).length, takeoversA, "lb-a ran no takeover while cut off");
    // Both nodes serve throughout; each move of the VIPs can cost a client only the request it had under way on
    // the node the traffic left (its connection then ends there).
    for (const loop of loops) {
      const failed = (from: number, to: number): number => loop.outcomes.filter((o) => !o.ok && o.ended >= from && o.ended < to).length;
      assert.equal(failed(0, cutAt), 0, `${loop.client}: nothing failed before the cut`);
      assert.ok(failed(cutAt, healedAt) <= 1, `${loop.client}: at most one failed request when the VIPs moved to lb-b`);
      assert.ok(failed(healedAt, Infinity) <= 1, `${loop.client}: at most one failed request when they moved back`);
    }
  });

  it("lb-a's HAProxy dies: lb-a FAULT at once, lb-b MASTER with the VIPs, at most one failed request per client, persistence kept", async (t) => {
    const topo = lb.topology;
    const kaA = lbA.keepalived;
    const kaB = lbB.keepalived;
    assert.ok(kaA && kaB, "keepalived runs on both nodes");
    assert.equal(kaA.states().at(-1), "MASTER");
    const clientOne = lb.clients[0];
    const stuckTo = servedBy.get(clientOne);
    assert.ok(stuckTo !== undefined, "the stick test ran first");
    const loops = startClients();
    const watcher = await watchPair(topo, env, lbA, lbB);
    let killedAt = 0;
    try {
      await delay(1500);
      killedAt = Date.now();
      await lbA.haproxy.program.crash();
      await pollUntil("the router to send the VIPs to lb-b", () => watcher.events.routerToTo !== undefined, { timeoutMs: 10_000 });
      await pollUntil("every client to be served again", () => loops.every((l) => l.outcomes.some((o) => o.ok && o.started >= killedAt)), { timeoutMs: 20_000 });
      await delay(1000);
    } finally {
      await watcher.stop();
      await Promise.all(loops.map((l) => l.stop()));
    }
    const ev = watcher.events;
    const timers = keepalivedTimers(lbB.keepalivedConf);
    // Detection is immediate (process events); lb-b waits its skew time after lb-a's priority-0 advert.
    const skewMs = Math.round(((256 - timers.priority) / 256) * timers.advertMs);
    const boundMs = skewMs + CLIENT_SLACK_MS;
    const summaries = loops.map((l) => summarizeClient(l, killedAt));
    t.diagnostic(`kill of lb-a's HAProxy at 0: lb-a released the VIPs ${since(killedAt, ev.vipsLeftFrom)} (FAULT), lb-b holds them ${since(killedAt, ev.vipsOnTo)}, ` +
      `router (SIMULATED EC2) → lb-b ${since(killedAt, ev.routerToTo)}; lb-b's skew ${skewMs} ms, bound for the router ${boundMs} ms`);
    report(t, summaries);
    t.diagnostic(`states: lb-a ${kaA.states().join(" → ")}; lb-b ${kaB.states().join(" → ")}`);
    for (const line of kaA.log().split("\n").filter((l) => /STATE|Quorum|quorum/.test(l)).slice(-4)) t.diagnostic(`  lb-a: ${line}`);

    assert.ok(ev.vipsLeftFrom !== undefined && ev.vipsLeftFrom - killedAt <= 1000, `lb-a gave the VIPs up within 1 s of the kill (${since(killedAt, ev.vipsLeftFrom)})`);
    assert.ok(ev.routerToTo !== undefined && ev.routerToTo - killedAt <= boundMs, `the VIPs reached lb-b ${since(killedAt, ev.routerToTo)}, bound ${boundMs} ms`);
    atMostOneFailure(summaries);
    assert.deepEqual((await vipsOn("lb2")).sort(), [...lb.vips].sort(), "both VIPs on lb-b's eth1");
    assert.deepEqual(await vipsOn("lb"), [], "no VIP left on lb-a's eth1");
    assert.equal(kaA.states().at(-1), "FAULT", "lb-a is in FAULT (its HAProxy is gone)");
    assert.equal(kaB.states().at(-1), "MASTER", "lb-b is MASTER");
    // Persistence survived: every answer to client1 after the kill came from its server, and every client still lands on its server.
    const answers = summaries[0].answersAfter;
    assert.ok(answers.length > 0 && answers.every((name) => name === stuckTo), `client1 stayed on ${stuckTo} across the failover: ${[...new Set(answers)].join(", ")}`);
    for (const client of lb.clients) {
      assert.equal(await systemName(client), servedBy.get(client), `${client} lands on the same server after the failover`);
    }
    const tableB = await stickTable(lbB);
    for (const [key, entry] of stickBefore) assert.equal(tableB.get(key)?.serverId, entry.serverId, `lb-b still maps ${key} to server id ${entry.serverId}`);
  });

  it("lb-a's HAProxy returns: lb-a BACKUP, the VIPs stay on lb-b (preempt: false)", async (t) => {
    const kaA = lbA.keepalived;
    const kaB = lbB.keepalived;
    assert.ok(kaA && kaB);
    const takeoversA = takeoverTimes(lbA.takeoverRecordFile).length;
    await lbA.restartHaproxy();
    const backupMs = await kaA.waitForState("BACKUP", 10_000);
    await delay(3000);
    t.diagnostic(`lb-a BACKUP ${backupMs} ms after its HAProxy listened again; states lb-a ${kaA.states().join(" → ")}`);
    assert.equal(kaA.states().at(-1), "BACKUP");
    assert.equal(kaB.states().at(-1), "MASTER");
    assert.equal(takeoverTimes(lbA.takeoverRecordFile).length, takeoversA, "lb-a ran no takeover");
    assert.ok(await routerSendsTo(lbB), "the VIPs stay on lb-b");
  });

  it("lb-b is powered off: lb-a takes the VIPs within the master-down time, at most one failed request per client", async (t) => {
    const topo = lb.topology;
    const kaA = lbA.keepalived;
    assert.ok(kaA);
    const loops = startClients();
    const watcher = await watchPair(topo, env, lbB, lbA);
    let offAt = 0;
    try {
      await delay(1500);
      offAt = Date.now();
      await powerOff(topo, lbB);
      await pollUntil("the router to send the VIPs to lb-a", () => watcher.events.routerToTo !== undefined, { timeoutMs: 10_000 });
      await pollUntil("every client to be served again", () => loops.every((l) => l.outcomes.some((o) => o.ok && o.started >= offAt)), { timeoutMs: 20_000 });
      await delay(1000);
    } finally {
      await watcher.stop();
      await Promise.all(loops.map((l) => l.stop()));
    }
    const ev = watcher.events;
    const timers = keepalivedTimers(lbA.keepalivedConf);
    const masterDownMs = Math.round((3 + (256 - timers.priority) / 256) * timers.advertMs);
    const summaries = loops.map((l) => summarizeClient(l, offAt));
    t.diagnostic(`lb-b off at 0: lb-a holds the VIPs ${since(offAt, ev.vipsOnTo)}, router (SIMULATED EC2) → lb-a ${since(offAt, ev.routerToTo)}; lb-a's master-down time ${masterDownMs} ms`);
    report(t, summaries);
    assert.ok(ev.routerToTo !== undefined && ev.routerToTo - offAt <= masterDownMs + CLIENT_SLACK_MS, `the VIPs reached lb-a ${since(offAt, ev.routerToTo)}`);
    atMostOneFailure(summaries);
    assert.equal(kaA.states().at(-1), "MASTER");
    assert.deepEqual((await vipsOn("lb")).sort(), [...lb.vips].sort(), "both VIPs on lb-a's eth1");
  });
});
