/**
 * The product's rendered haproxy.cfg for examples/agfa-ei-one-arm.yaml (VIPs and servers in one subnet,
 * HL7 active-backup) mapped to the test ranges: HL7 over MLLP through the VIP (ACK AA, idle timeout
 * scaled down to 4 s through the environment file), active-backup order and failover, plus DICOM and
 * HTTPS through the one-arm VIPs with the servers seeing the LB's own address.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  buildHl7Message,
  curl,
  echoscu,
  listNamespaces,
  parseAck,
  RUN_PREFIX,
  sendHl7,
  startTestbed,
  sweepStaleNamespaces,
  type MllpReceiver,
  type Testbed,
} from "./harness";

const IDLE_TIMEOUT_MS = 4000;

describe("product config, one-arm: HL7 MLLP, DICOM and HTTPS", { timeout: 120_000 }, () => {
  let bed: Testbed;
  let core: string;
  let receivers: readonly MllpReceiver[];

  before(async () => {
    sweepStaleNamespaces();
    bed = await startTestbed({
      example: "agfa-ei-one-arm",
      mllpPorts: [2310, 2311],
      patch: {
        services: {
          hl7: { timeouts: { client: "4s", server: "4s", check: "1s" }, healthCheck: { interval: "1s", fall: 2, rise: 2 } },
          xero: { healthCheck: { path: "/system" } },
        },
      },
      waitUp: ["be_hl7"],
    });
    core = bed.vip("core");
    receivers = bed.receivers.get(2310) ?? [];
  });

  after(() => {
    bed?.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  const messagesOn = (i: number) => receivers[i].messages().map((m) => m.controlId);

  it("the one-arm VIPs sit in the servers' subnet; DICOM and HTTPS work and servers see the LB's own address", async () => {
    assert.equal(core, "198.51.100.101");
    const topo = bed.lb.topology;
    const echo = await echoscu(topo, "client1", { address: core, calledAet: "EI_CORE" });
    assert.equal(echo.code, 0, echo.output);
    const web = await curl(topo, "client1", `https://${bed.vip("web")}/tools/now`, { insecure: true });
    assert.equal(web.status, 200);
    const requests = (bed.orthancs.get(104) ?? []).flatMap((o) => o.httpRequests()).filter((r) => r.uri === "/tools/now");
    assert.equal(requests.length, 1);
    assert.equal(requests[0].peer, "198.51.100.10", "SNAT from the LB's eth0 address, not the VIP");
    assert.equal(requests[0].headers["x-forwarded-for"], "192.0.2.10");
  });

  it("an HL7 message through the VIP is acknowledged AA, on the active server only (active-backup)", async () => {
    const ids = ["ORDER1", "ORDER2", "ORDER3"];
    const result = await sendHl7(bed.lb.topology, "client1", { host: core, port: 2310, messages: ids.map((controlId) => buildHl7Message({ controlId })) });
    assert.equal(result.error, undefined);
    assert.deepEqual(result.acks.map((a) => parseAck(a)), ids.map((controlId) => ({ code: "AA", controlId })));
    const again = await sendHl7(bed.lb.topology, "client1", { host: core, port: 2310, messages: [buildHl7Message({ controlId: "ORDER4" })] });
    assert.equal(parseAck(again.acks[0] ?? "").code, "AA");
    assert.deepEqual(messagesOn(0), [...ids, "ORDER4"], "in order, on the active server");
    assert.deepEqual(messagesOn(1), [], "the backup got nothing");
  });

  it("an idle connection survives 2 s (below the 4 s idle timeout) and is cut after 4 s", async (t) => {
    const survives = await sendHl7(bed.lb.topology, "client1", {
      host: core,
      port: 2310,
      idleBeforeSendMs: 2000,
      messages: [buildHl7Message({ controlId: "IDLE2S" })],
    });
    assert.equal(survives.error, undefined);
    assert.equal(parseAck(survives.acks[0] ?? "").code, "AA");
    const cut = await sendHl7(bed.lb.topology, "client1", {
      host: core,
      port: 2310,
      idleBeforeSendMs: IDLE_TIMEOUT_MS + 3000,
      messages: [buildHl7Message({ controlId: "IDLE7S" })],
    });
    t.diagnostic(`idle beyond the timeout: ${String(cut.error)}`);
    const closedAfter = Number(/after (\d+) ms \(idle\)/.exec(cut.error ?? "")?.[1]);
    assert.ok(closedAfter >= IDLE_TIMEOUT_MS - 200 && closedAfter <= IDLE_TIMEOUT_MS + 1500, `closed after ${closedAfter} ms`);
    assert.ok(!receivers.some((r) => r.messages().some((m) => m.controlId === "IDLE7S")));
  });

  it("when the active HL7 server stops, new connections go to the backup after detection", async (t) => {
    const stoppedAt = Date.now();
    await receivers[0].stop();
    const downMs = await bed.product.waitForStatus("be_hl7", bed.serverNames[0], "DOWN", 10_000);
    t.diagnostic(`active HL7 server DOWN ${Date.now() - stoppedAt} ms after stop (poll ${downMs} ms)`);
    const result = await sendHl7(bed.lb.topology, "client1", { host: core, port: 2310, messages: [buildHl7Message({ controlId: "FAILOVER1" })] });
    assert.equal(parseAck(result.acks[0] ?? "").code, "AA", result.error);
    assert.deepEqual(messagesOn(1), ["FAILOVER1"]);
  });
});
