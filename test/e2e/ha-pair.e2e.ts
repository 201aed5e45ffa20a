/**
 * The HA pair end to end (issue 5): examples/agfa-ei-ha-pair.yaml mapped to the test ranges, two LB nodes
 * (`lb` = lb-a, primary, 198.51.100.10 / 203.0.113.10; `lb2` = lb-b, secondary, .11 / .11) each running the
 * product's rendered haproxy.cfg (`-L <node>`, so the `peers` section syncs the stick tables over eth0:10000)
 * and the product's rendered keepalived.conf (`pairFiles`) verbatim: unicast VRRP on eth0, VIPs added to the
 * MASTER's eth1, checks `pidof haproxy` and `curl http://127.0.0.1:8405/healthz`. Each node runs in its own
 * PID + mount namespace (`harness/keepalived.ts`), so `pidof haproxy` sees only its own HAProxy, the
 * `keepalived_script` user exists, and the notify_master path holds a SIMULATED takeover script (the real one
 * calls the EC2 API; here keepalived's own `virtual_ipaddress` moves the VIPs and its gratuitous ARPs teach the
 * router the new owner).
 *
 * Proves: lb-a is elected MASTER and lb-b stays BACKUP; stick-table entries made through lb-a are on lb-b
 * before any failover, with the same server; when lb-a's HAProxy dies (SIGKILL) lb-a goes FAULT, lb-b takes
 * the VIPs, the router follows (GARP), clients are served again within the bound the rendered timers allow,
 * and a client keeps its server across the failover.
 */
import assert from "node:assert/strict";
import { readFileSync, realpathSync } from "node:fs";
import { basename } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  buildTwoArm,
  curl,
  delay,
  echoscu,
  interfaceAddresses,
  interfaceMac,
  listNamespaces,
  neighbourMac,
  parseStickTable,
  pollUntil,
  productEnvironment,
  productKeepalivedConf,
  RUN_PREFIX,
  startOrthanc,
  startProductPairNode,
  sweepStaleNamespaces,
  takeoverRecords,
  type ExampleName,
  type LbTopology,
  type ProductPairNode,
  type StickEntry,
} from "./harness";
import type { ResolvedEnvironment } from "../../lib/config/model";
import { requireTool } from "../helpers/tools";

/** The HA-pair example (not yet in product.ts's `ExampleName` union; the mapping reads any example file). */
const HA_EXAMPLE = "agfa-ei-ha-pair" as string as ExampleName;
/** The failover target with a 1 s advertisement interval (the brief's goal). */
const TARGET_FAILOVER_MS = 3000;
/** Slack on top of the timers for the gratuitous ARP, script scheduling and one client request. */
const CLIENT_SLACK_MS = 500;
/** Request cadence of the client loops during the failover. */
const LOOP_EVERY_MS = 100;
/** The web service's stick table (source-IP persistence, synced through `peers`). */
const STICKY_BACKEND = "be_xero-xtend";

interface Outcome {
  readonly started: number;
  readonly durationMs: number;
  readonly ok: boolean;
  readonly detail: string;
}

/** The timers of a rendered keepalived.conf that bound a failover. */
function keepalivedTimers(conf: string): { scripts: { name: string; interval: number; fall: number }[]; advertInt: number; priority: number } {
  const scripts = [...conf.matchAll(/^vrrp_script (\S+) \{\n([\s\S]*?)^\}/gm)].map((m) => ({
    name: m[1],
    interval: Number(/^\s+interval (\d+)$/m.exec(m[2])?.[1]),
    fall: Number(/^\s+fall (\d+)$/m.exec(m[2])?.[1]),
  }));
  return {
    scripts,
    advertInt: Number(/^\s+advert_int (\d+)$/m.exec(conf)?.[1]),
    priority: Number(/^\s+priority (\d+)$/m.exec(conf)?.[1]),
  };
}

/** Runs `request` every `everyMs` (overlapping, so one slow request does not blind the loop) while `running()`. */
function requestLoop(running: () => boolean, request: () => Promise<{ ok: boolean; detail: string }>, everyMs: number) {
  const outcomes: Outcome[] = [];
  const pending: Promise<void>[] = [];
  const done = (async () => {
    while (running()) {
      const started = Date.now();
      pending.push(
        request()
          .catch((error: unknown) => ({ ok: false, detail: (error as Error).message.split("\n")[0] }))
          .then((r) => {
            outcomes.push({ started, durationMs: Date.now() - started, ok: r.ok, detail: r.detail });
          }),
      );
      await delay(everyMs);
    }
    await Promise.all(pending);
  })();
  return { outcomes, done };
}

/** Outcome statistics relative to the kill. */
function summarize(outcomes: readonly Outcome[], killedAt: number) {
  const end = (o: Outcome) => o.started + o.durationMs;
  const beforeKill = outcomes.filter((o) => end(o) < killedAt);
  const inFlight = outcomes.filter((o) => o.started < killedAt && end(o) >= killedAt);
  const afterKill = outcomes.filter((o) => o.started >= killedAt);
  const firstOk = afterKill.filter((o) => o.ok).sort((a, b) => end(a) - end(b))[0];
  const lastOkBefore = beforeKill.filter((o) => o.ok).map(end).sort((a, b) => b - a)[0];
  return {
    requests: outcomes.length,
    beforeKill: { requests: beforeKill.length, failed: beforeKill.filter((o) => !o.ok).length },
    inFlightAtKill: { requests: inFlight.length, failed: inFlight.filter((o) => !o.ok).length },
    afterKill: { requests: afterKill.length, failed: afterKill.filter((o) => !o.ok).length },
    /** Kill → end of the first successful request started after the kill (served by lb-b: lb-a's HAProxy is dead). */
    failoverMs: firstOk === undefined ? undefined : end(firstOk) - killedAt,
    /** End of the last success before the kill → end of the first success after it (the client-visible gap). */
    gapMs: firstOk === undefined || lastOkBefore === undefined ? undefined : end(firstOk) - lastOkBefore,
    firstOkAfterKill: firstOk,
  };
}

describe("product HA pair: keepalived + HAProxy peers on two nodes, failover", { timeout: 150_000 }, () => {
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
  const systemName = async (client: string, timeoutMs = 5000): Promise<string> => {
    const response = await curl(lb.topology, client, `https://${web()}/system`, { insecure: true, timeoutMs });
    if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    return (JSON.parse(response.body) as { Name: string }).Name;
  };
  const stickTable = async (node: ProductPairNode): Promise<Map<string, StickEntry>> =>
    new Map(parseStickTable(await node.haproxy.runtime(`show table ${STICKY_BACKEND}`)).map((e) => [e.key, e]));

  before(async () => {
    for (const [tool, pkg] of [["keepalived", "keepalived"], ["haproxy", "haproxy"], ["Orthanc", "orthanc"], ["echoscu", "dcmtk"],
      ["curl", "curl"], ["pidof", "sysvinit-utils"], ["nsenter", "util-linux"], ["unshare", "util-linux"]] as const) {
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
    assert.equal(env.ha?.advertIntervalSeconds, 1);
    assert.deepEqual(env.services.find((s) => s.name === "dicom")?.members.map((m) => m.name), serverNames);
    await Promise.all(lb.servers.map((host) => startOrthanc(topo, { host, aet: "EI_CORE", checkCalledAet: true, dicomPort: 104, httpPort: 80 })));
    // The product's DICOM check covers both DICOM ports of the preset (104 and 110).
    await Promise.all(lb.servers.map((host) => startOrthanc(topo, { host, name: `${host}-110`, aet: "EI_CORE", checkCalledAet: true, dicomPort: 110, httpPort: 18_110 })));
    lbA = await startProductPairNode(topo, env, "lb", { node: "lb-a" });
    lbB = await startProductPairNode(topo, env, "lb2", { node: "lb-b" });
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

  it("keepalived's process check passes while HAProxy runs (it is not pidof, which keepalived runs as killall5)", async (t) => {
    // Regression: on Debian/Ubuntu /usr/bin/pidof links to killall5; keepalived runs the resolved binary, under
    // whose name it is not pidof, so a `pidof haproxy` check failed for good and no node ever left FAULT.
    const conf = productKeepalivedConf(env, "lb-a");
    const command = /vrrp_script imaging_lb_haproxy_process \{\n\s+script "(\S+)/.exec(conf)?.[1] ?? "";
    assert.ok(command.startsWith("/"), `the rendered process check names an absolute command: ${command}`);
    assert.equal(basename(realpathSync(command)), basename(command), `${command} is what keepalived will run, not a link to another program`);
    const ka = await lbA.startKeepalived();
    const verdict = await pollUntil(
      "keepalived's first verdict on the process check",
      () => /Script `imaging_lb_haproxy_process` now returning (\d+)|VRRP_Script\(imaging_lb_haproxy_process\) (succeeded|failed)/.exec(ka.log())?.[0],
      { timeoutMs: 8000, intervalMs: 50 },
    );
    await ka.stop();
    t.diagnostic(`${command}; keepalived: ${verdict}`);
    assert.match(verdict, /succeeded|returning 0/, "the process check passes while HAProxy runs");
  });

  it("lb-a is elected MASTER (VIPs on its eth1), lb-b stays BACKUP without VIPs", async (t) => {
    const topo = lb.topology;
    const kaA = await lbA.startKeepalived();
    const masterMs = await kaA.waitForState("MASTER", 15_000);
    await pollUntil("both VIPs on lb-a's eth1", async () => (await vipsOn("lb")).length === 2, { timeoutMs: 5000 });
    const kaB = await lbB.startKeepalived();
    await kaB.waitForState("BACKUP", 10_000);
    await delay(3500); // > 3 advertisement intervals: lb-b would have declared lb-a dead by now
    t.diagnostic(`lb-a MASTER ${masterMs} ms after keepalived started; states lb-a ${kaA.states().join(" → ")}, lb-b ${kaB.states().join(" → ")}`);

    assert.deepEqual((await vipsOn("lb")).sort(), [...lb.vips].sort(), "both VIPs on lb-a's eth1");
    assert.deepEqual(await vipsOn("lb2"), [], "no VIP on lb-b's eth1");
    assert.deepEqual(await interfaceAddresses(topo, "lb", "eth0"), ["198.51.100.10"], "VIPs never on eth0");
    assert.equal(kaA.states().at(-1), "MASTER");
    assert.deepEqual(kaB.states(), ["BACKUP"], "lb-b never left BACKUP");
    assert.equal(takeoverRecords(lbA.takeoverRecordFile).length, 1, "notify_master ran the (simulated) takeover script once on lb-a");
    assert.equal(takeoverRecords(lbB.takeoverRecordFile).length, 0, "not on lb-b");

    const echo = await echoscu(topo, "client1", { address: core(), calledAet: "EI_CORE", timeoutMs: 5000 });
    assert.equal(echo.code, 0, echo.output);
    assert.equal(await neighbourMac(topo, "router", core()), await interfaceMac(topo, "lb", "eth1"), "the router sends VIP traffic to lb-a");
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
    const textA = await lbA.haproxy.runtime(`show table ${STICKY_BACKEND}`);
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
    const textB = await lbB.haproxy.runtime(`show table ${STICKY_BACKEND}`);
    for (const [node, text] of [["lb-a", textA], ["lb-b", textB]]) {
      t.diagnostic(`${node}> show table ${STICKY_BACKEND}`);
      for (const line of text.trim().split("\n")) t.diagnostic(`  ${line}`);
    }

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

  it("lb-a's HAProxy dies: lb-a FAULT, lb-b MASTER with the VIPs, clients served again, persistence kept", async (t) => {
    const topo = lb.topology;
    const kaA = lbA.keepalived;
    const kaB = lbB.keepalived;
    assert.ok(kaA && kaB, "keepalived runs on both nodes (first test)");
    const lb2Mac = await interfaceMac(topo, "lb2", "eth1");
    const clientOne = lb.clients[0];
    const stuckTo = servedBy.get(clientOne);
    assert.ok(stuckTo !== undefined, "the stick test ran first");

    let running = true;
    const echoLoop = requestLoop(
      () => running,
      async () => {
        const r = await echoscu(topo, lb.clients[1], { address: core(), calledAet: "EI_CORE", timeoutMs: 2000 });
        return { ok: r.code === 0, detail: r.code === 0 ? "" : r.output.split("\n").filter((l) => /^[EF]:/.test(l)).join(" | ") };
      },
      LOOP_EVERY_MS,
    );
    const httpsLoop = requestLoop(
      () => running,
      async () => {
        const name = await systemName(clientOne, 2000);
        return { ok: true, detail: name };
      },
      LOOP_EVERY_MS,
    );

    // Watch the VIP move: every 50 ms, who holds the VIPs and where the router sends them.
    const events: Record<string, number | undefined> = { lbAReleased: undefined, lbBHolds: undefined, routerToLbB: undefined };
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const [onA, onB, mac] = await Promise.all([vipsOn("lb"), vipsOn("lb2"), neighbourMac(topo, "router", web())]);
        const now = Date.now();
        if (onA.length === 0) events.lbAReleased ??= now;
        if (onB.length === 2) events.lbBHolds ??= now;
        if (mac === lb2Mac) events.routerToLbB ??= now;
        await delay(50);
      }
    })();

    let killedAt = 0;
    try {
      await delay(1500);
      assert.ok(echoLoop.outcomes.length > 5 && echoLoop.outcomes.every((o) => o.ok), `the echo loop succeeds before the kill: ${JSON.stringify(echoLoop.outcomes)}`);
      assert.ok(httpsLoop.outcomes.length > 5 && httpsLoop.outcomes.every((o) => o.ok), "the HTTPS loop succeeds before the kill");
      killedAt = Date.now();
      await lbA.haproxy.program.crash();
      await pollUntil(
        "both client loops to be served again after the kill",
        () => [echoLoop, httpsLoop].every((l) => l.outcomes.some((o) => o.ok && o.started >= killedAt)),
        { timeoutMs: 20_000, intervalMs: 50 },
      );
      await pollUntil("the router to send VIP traffic to lb-b", () => events.routerToLbB !== undefined, { timeoutMs: 5000 });
      await delay(1500);
    } finally {
      running = false;
      watching = false;
      await Promise.allSettled([echoLoop.done, httpsLoop.done, watcher]);
    }

    const echo = summarize(echoLoop.outcomes, killedAt);
    const https = summarize(httpsLoop.outcomes, killedAt);
    const since = (at: number | undefined) => (at === undefined ? "never" : `+${at - killedAt} ms`);
    const takeoverB = takeoverRecords(lbB.takeoverRecordFile);
    const takeoverAt = Number(takeoverB[0]?.split(" ")[0]);
    const timers = keepalivedTimers(kaB.config);
    const detectionWorstMs = Math.min(...timers.scripts.map((s) => s.interval * s.fall * 1000));
    const electionMs = Math.round(((256 - timers.priority) / 256) * timers.advertInt * 1000);
    const boundMs = detectionWorstMs + electionMs + CLIENT_SLACK_MS;

    t.diagnostic(`kill of lb-a's HAProxy at 0: lb-a released the VIPs ${since(events.lbAReleased)} (keepalived FAULT), lb-b holds them ${since(events.lbBHolds)}, ` +
      `simulated takeover script ran on lb-b ${Number.isFinite(takeoverAt) ? `+${takeoverAt - killedAt} ms` : "never"}, router ARP entry → lb-b ${since(events.routerToLbB)}`);
    for (const [name, s] of [["C-ECHO core:104", echo], ["HTTPS web:443", https]] as const) {
      t.diagnostic(`${name}: failover ${s.failoverMs ?? "∞"} ms (kill → first answer via lb-b), client-visible gap ${s.gapMs ?? "∞"} ms; ` +
        `requests/failed: before kill ${s.beforeKill.requests}/${s.beforeKill.failed}, in flight at kill ${s.inFlightAtKill.requests}/${s.inFlightAtKill.failed}, ` +
        `after kill ${s.afterKill.requests}/${s.afterKill.failed}`);
    }
    const failures = [...echoLoop.outcomes.map((o) => ({ ...o, loop: "echo" })), ...httpsLoop.outcomes.map((o) => ({ ...o, loop: "https" }))]
      .filter((o) => !o.ok)
      .sort((a, b) => a.started - b.started);
    const kinds = new Map<string, number>();
    for (const f of failures) {
      const kind = `${f.loop}: ${f.detail.replace(/\d+ ms/g, "N ms").slice(0, 160)}`;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    for (const [kind, count] of kinds) t.diagnostic(`failed ×${count}: ${kind}`);
    t.diagnostic(`timers of the rendered keepalived.conf: ${timers.scripts.map((s) => `${s.name} interval ${s.interval} s fall ${s.fall}`).join(", ")}, ` +
      `advert_int ${timers.advertInt} s, lb-b priority ${timers.priority} → detection ≤ ${detectionWorstMs} ms, lb-b takeover after lb-a's priority-0 advert ≈ ${electionMs} ms; ` +
      `bound ${boundMs} ms (target ${TARGET_FAILOVER_MS} ms ${Math.max(echo.failoverMs ?? Infinity, https.failoverMs ?? Infinity) <= TARGET_FAILOVER_MS ? "met" : "missed"} this run)`);
    t.diagnostic(`keepalived states: lb-a ${kaA.states().join(" → ")}, lb-b ${kaB.states().join(" → ")}`);
    t.diagnostic("lb-a keepalived log (tail):");
    for (const line of kaA.log().split("\n").filter((l) => /STATE|Script|priority/.test(l)).slice(-8)) t.diagnostic(`  ${line}`);

    // 1. Failover time.
    assert.equal(echo.beforeKill.failed + https.beforeKill.failed, 0, "nothing failed before the kill");
    for (const [name, s] of [["C-ECHO", echo], ["HTTPS", https]] as const) {
      assert.ok(s.failoverMs !== undefined, `${name} was served again after the kill`);
      assert.ok(s.failoverMs <= boundMs, `${name} failover ${s.failoverMs} ms exceeds the bound ${boundMs} ms the rendered timers allow`);
    }
    // 2. Where the VIPs are, who is MASTER, the takeover script, the router.
    assert.deepEqual((await vipsOn("lb2")).sort(), [...lb.vips].sort(), "both VIPs on lb-b's eth1");
    assert.deepEqual(await vipsOn("lb"), [], "no VIP left on lb-a's eth1");
    assert.equal(kaA.states().at(-1), "FAULT", "lb-a is in FAULT (its HAProxy checks fail)");
    assert.equal(kaB.states().at(-1), "MASTER", "lb-b is MASTER");
    assert.equal(takeoverB.length, 1, "notify_master ran the (simulated) takeover script once on lb-b");
    assert.ok(takeoverAt >= killedAt, "lb-b's takeover script ran after the kill");
    assert.equal(takeoverRecords(lbA.takeoverRecordFile).length, 1, "lb-a's takeover script did not run again");
    assert.equal(await neighbourMac(topo, "router", web()), lb2Mac, "the router's ARP entry for the web VIP is lb-b's eth1");
    assert.equal(await neighbourMac(topo, "router", core()), lb2Mac, "the router's ARP entry for the core VIP is lb-b's eth1");
    assert.ok(
      events.routerToLbB !== undefined && events.lbBHolds !== undefined && events.routerToLbB - events.lbBHolds <= 1000,
      "the router learned the new owner within 1 s of lb-b taking the VIPs (gratuitous ARP; its own re-probe starts only after delay_first_probe_time, 5 s)",
    );
    // 3. Persistence survived: every answer to client1 after the failover came from its server, and every client still lands on its server.
    const httpsAfter = httpsLoop.outcomes.filter((o) => o.ok && o.started >= killedAt);
    assert.ok(httpsAfter.length > 0 && httpsAfter.every((o) => o.detail === stuckTo), `client1 stayed on ${stuckTo} across the failover: ${[...new Set(httpsAfter.map((o) => o.detail))].join(", ")}`);
    for (const client of lb.clients) {
      assert.equal(await systemName(client), servedBy.get(client), `${client} lands on the same server after the failover`);
    }
    const tableB = await stickTable(lbB);
    for (const [key, entry] of stickBefore) assert.equal(tableB.get(key)?.serverId, entry.serverId, `lb-b still maps ${key} to server id ${entry.serverId}`);
  });
});
