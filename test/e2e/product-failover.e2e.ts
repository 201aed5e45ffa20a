/**
 * Failover with the product's rendered haproxy.cfg (examples/agfa-ei-two-arm.yaml mapped to the test
 * ranges, checks scaled down to 1 s through the environment file): an Orthanc is killed (SIGKILL) while a
 * client runs a C-STORE loop and an HTTPS loop through the VIPs. Requests are counted as failed before the
 * kill, between kill and detection (server DOWN on the runtime API), and after detection; after detection
 * none may fail.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { curl, delay, generateDicomInstances, listNamespaces, RUN_PREFIX, startTestbed, storescu, sweepStaleNamespaces, type Testbed } from "./harness";

interface Outcome {
  readonly started: number;
  readonly durationMs: number;
  readonly ok: boolean;
  readonly detail: string;
}

/** Counts of a loop's requests: finished before the kill, in flight at the kill, then by the phase in which they started. */
function phases(outcomes: readonly Outcome[], killedAt: number, detectedAt: number) {
  const count = (from: number, to: number) => {
    const inPhase = outcomes.filter((o) => o.started >= from && o.started < to);
    return { requests: inPhase.length, failed: inPhase.filter((o) => !o.ok).length, slowestMs: Math.max(0, ...inPhase.map((o) => o.durationMs)) };
  };
  const done = (o: Outcome) => o.started + o.durationMs;
  const summary = (list: readonly Outcome[]) => ({
    requests: list.length,
    failed: list.filter((o) => !o.ok).length,
    slowestMs: Math.max(0, ...list.map((o) => o.durationMs)),
  });
  return {
    beforeKill: summary(outcomes.filter((o) => done(o) < killedAt)),
    inFlightAtKill: summary(outcomes.filter((o) => o.started < killedAt && done(o) >= killedAt)),
    killToDetection: count(killedAt, detectedAt),
    afterDetection: count(detectedAt, Infinity),
  };
}

describe("product config, two-arm: failover under load", { timeout: 120_000 }, () => {
  let bed: Testbed;

  before(async () => {
    sweepStaleNamespaces();
    bed = await startTestbed({
      example: "agfa-ei-two-arm",
      patch: {
        services: {
          dicom: { healthCheck: { interval: "1s", fall: 2, rise: 2 }, timeouts: { check: "1s" } },
          xero: { healthCheck: { interval: "1s", fall: 2, rise: 2, path: "/system" }, timeouts: { check: "1s" } },
        },
      },
      waitUp: ["be_dicom", "be_xero"],
    });
  });

  after(() => {
    bed?.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  it("after detection no new C-STORE or HTTPS request fails", async (t) => {
    const topo = bed.lb.topology;
    const core = bed.vip("core");
    const web = bed.vip("web");
    const aet = bed.env.services.find((s) => s.name === "dicom")?.members[0]?.aeTitle ?? "";
    const pacs = bed.orthancs.get(104) ?? [];
    const files = generateDicomInstances({ dir: join(topo.workDir, "dicom-failover"), count: 400, sizeBytes: 16 * 1024 });

    // The HTTPS loop sticks to one server (source-IP + cookie persistence): kill that one.
    const probe = await curl(topo, "client1", `https://${web}/system`, { insecure: true });
    const victim = bed.lb.servers.indexOf((JSON.parse(probe.body) as { Name: string }).Name);
    assert.ok(victim >= 0);
    const victimName = bed.serverNames[victim];

    let running = true;
    const dicom: Outcome[] = [];
    const http: Outcome[] = [];
    const dicomLoop = (async () => {
      for (let i = 0; running && i < files.length; i += 1) {
        const started = Date.now();
        const run = await storescu(topo, "client1", { address: core, calledAet: aet, timeoutMs: 10_000 }, [files[i].path]);
        dicom.push({ started, durationMs: Date.now() - started, ok: run.code === 0, detail: run.code === 0 ? "" : run.output.split("\n").filter((l) => /^E:/.test(l)).join(" | ") });
      }
    })();
    const httpLoop = (async () => {
      while (running) {
        const started = Date.now();
        try {
          const response = await curl(topo, "client1", `https://${web}/system`, { insecure: true, timeoutMs: 10_000 });
          http.push({ started, durationMs: Date.now() - started, ok: response.status === 200, detail: `HTTP ${response.status}` });
        } catch (error) {
          http.push({ started, durationMs: Date.now() - started, ok: false, detail: (error as Error).message.split(": ").pop() ?? "" });
        }
      }
    })();

    try {
      await delay(3000);
      const killedAt = Date.now();
      await pacs[victim].kill();
      const [dicomDownMs, xeroDownMs] = await Promise.all([
        bed.product.waitForStatus("be_dicom", victimName, "DOWN", 10_000),
        bed.product.waitForStatus("be_xero", victimName, "DOWN", 10_000),
      ]);
      const detectedAt = Date.now();
      await delay(4000);
      running = false;
      await Promise.all([dicomLoop, httpLoop]);

      const d = phases(dicom, killedAt, detectedAt);
      const h = phases(http, killedAt, detectedAt);
      t.diagnostic(`killed ${victimName} (${bed.lb.servers[victim]}); detection: be_dicom ${dicomDownMs} ms, be_xero ${xeroDownMs} ms after the kill`);
      const line = (p: ReturnType<typeof phases>[keyof ReturnType<typeof phases>]) => `${p.requests}/${p.failed} (slowest ${p.slowestMs} ms)`;
      t.diagnostic(`C-STORE requests/failed: before kill ${line(d.beforeKill)}, in flight at kill ${line(d.inFlightAtKill)}, kill→detection ${line(d.killToDetection)}, after detection ${line(d.afterDetection)}`);
      t.diagnostic(`HTTPS requests/failed: before kill ${line(h.beforeKill)}, in flight at kill ${line(h.inFlightAtKill)}, kill→detection ${line(h.killToDetection)}, after detection ${line(h.afterDetection)}`);
      const failures = [...dicom.map((o) => ({ ...o, svc: "dicom" })), ...http.map((o) => ({ ...o, svc: "https" }))].filter((o) => !o.ok);
      for (const f of failures) t.diagnostic(`failed ${f.svc} at +${f.started - killedAt} ms: ${f.detail}`);

      assert.equal(d.beforeKill.failed + h.beforeKill.failed, 0, "nothing fails before the kill");
      assert.ok(d.inFlightAtKill.failed + h.inFlightAtKill.failed <= 2, "at most the requests in flight on the killed server fail");
      assert.ok(d.afterDetection.requests > 0 && h.afterDetection.requests > 0, "both loops ran after detection");
      assert.equal(d.afterDetection.failed, 0, "no C-STORE started after detection failed");
      assert.equal(h.afterDetection.failed, 0, "no HTTPS request started after detection failed");
      const survivor = await pacs[1 - victim].countInstances();
      assert.ok(survivor >= d.afterDetection.requests, "the survivor stored every instance sent after detection");
    } finally {
      running = false;
      await Promise.allSettled([dicomLoop, httpLoop]);
    }
  });
});
