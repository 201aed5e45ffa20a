/**
 * Issue 11, on the real network: the product's rendered haproxy.cfg (examples/agfa-ei-two-arm.yaml mapped to
 * the test ranges) in front of real Orthancs (DICOM + HTTP) and MLLP receivers, driven through the VIPs:
 * - defect 1: a server going into maintenance (or DOWN) keeps the sessions it is serving — a long DICOM
 *   association and a live HL7 link both finish;
 * - defect 2: a client sent to the sorry server while every server was down goes back to a real server as
 *   soon as one is usable (the fallback is never stored in the stick table);
 * - defect 3: forwarded-address headers sent by a client are removed on entry (kept from a trusted proxy);
 * - defect 6: HL7 active-backup keeps every sender on one server, stays on the backup after the primary
 *   recovers, and moves back only when told (`clear table`).
 * Speed-ups (check intervals) go through the environment file's own fields.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  buildHl7Message,
  curl,
  delay,
  dicomSession,
  listNamespaces,
  parseAck,
  RUN_PREFIX,
  sendHl7,
  startMllpReceiver,
  startTestbed,
  sweepStaleNamespaces,
  type MllpReceiver,
  type OrthancServer,
  type Testbed,
} from "./harness";

const CHECK = { interval: "1s", fall: 2, rise: 2 };

/** The trimmed lines of one haproxy.cfg section (`backend be_hl7`), without its header. */
function sectionLines(config: string, header: string): string[] {
  const lines = config.split("\n");
  const start = lines.indexOf(header);
  assert.notEqual(start, -1, `no section "${header}"`);
  const end = lines.findIndex((line, i) => i > start && line !== "" && !/^\s/.test(line));
  return lines.slice(start + 1, end === -1 ? undefined : end).map((line) => line.trim()).filter((line) => line !== "");
}
const HL7_PORTS = [2310, 2311];

describe("clinical sessions (issue 11): no aborted transfers, no sticky sorry server, no forged client address", { timeout: 240_000 }, () => {
  let bed: Testbed;
  let core: string;
  let web: string;
  /** HL7 receivers on srv1/srv2 (port 2310), replaced when restarted. */
  const hl7: MllpReceiver[] = [];
  let web80: readonly OrthancServer[];
  let sorry: OrthancServer;

  before(async () => {
    sweepStaleNamespaces();
    bed = await startTestbed({
      example: "agfa-ei-two-arm",
      topology: { clients: 2 },
      dicomPorts: [104, 110],
      mllpPorts: HL7_PORTS,
      extraHttpPorts: [8088],
      patch: {
        services: {
          core: { enabled: false },
          dicom: { healthCheck: CHECK, timeouts: { check: "1s" } },
          hl7: { balance: "active-backup", healthCheck: CHECK, timeouts: { check: "1s" } },
          xero: {
            healthCheck: { ...CHECK, path: "/system" },
            timeouts: { check: "1s" },
            // The sorry page: an Orthanc on srv2:8088 (outside the service's servers' port 80).
            sorryServer: { address: "198.51.100.22", port: 8088 },
            trustedProxies: ["192.0.2.11/32"],
          },
        },
      },
      waitUp: ["be_dicom", "be_hl7", "be_xero"],
    });
    core = bed.vip("core");
    web = bed.vip("web");
    hl7.push(...(bed.receivers.get(2310) ?? []));
    web80 = bed.orthancs.get(104) ?? [];
    sorry = (bed.httpOrthancs.get(8088) ?? [])[1];
  });

  after(() => {
    bed?.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  const runtime = (command: string) => bed.product.runtime(command);
  const servers = () => bed.serverNames;
  /** Index of the web Orthanc (0, 1) or "sorry" that served `uri`, or undefined. */
  const servedBy = (uri: string): number | "sorry" | undefined => {
    if (sorry.httpRequests().some((r) => r.uri === uri)) return "sorry";
    const i = web80.findIndex((o) => o.httpRequests().some((r) => r.uri === uri));
    return i < 0 ? undefined : i;
  };

  it("renders no shutdown-sessions, the sorry server as its own backend, header removal and a sticky active-backup table", () => {
    const config = bed.product.config;
    assert.doesNotMatch(config, /shutdown-sessions/);
    assert.match(config, /^\s+use_backend sorry_xero if \{ nbsrv\(be_xero\) eq 0 \}$/m);
    assert.match(config, /^\s+http-request del-header X-Forwarded-For unless trusted_proxies$/m);
    // Line by line, not one multi-line regex: `(?:\s+.*\n)*?` (whose `\s+` also matches newlines) backtracks
    // exponentially when the table line changes, and hung this file's first test at 100 % CPU.
    const hl7 = sectionLines(config, "backend be_hl7");
    const table = hl7.findIndex((line) => line.startsWith("stick-table "));
    assert.match(hl7[table] ?? "", /^stick-table type integer size 2 nopurge peers \S+$/, "one row: the active server, kept across reloads by the local peer");
    assert.equal(hl7[table + 1], "stick on int(1)");
  });

  it("defect 1: a long DICOM association and a live HL7 link survive `state maint` of their server", async (t) => {
    const session = dicomSession(bed.lb.topology, "client1", { host: core, port: 104, calledAet: "EI_CORE", echoes: 5, pauseMs: 800 });
    const link = sendHl7(bed.lb.topology, "client1", {
      host: core,
      port: 2310,
      pauseBetweenMs: 800,
      messages: ["LIVE1", "LIVE2", "LIVE3", "LIVE4"].map((controlId) => buildHl7Message({ controlId })),
    });
    await delay(1200);
    // Every server of both services into maintenance while the sessions are in flight.
    for (const name of servers()) {
      assert.equal((await runtime(`set server be_dicom/${name} state maint`)).trim(), "");
      assert.equal((await runtime(`set server be_hl7/${name} state maint`)).trim(), "");
    }
    const [dicom, hl7Result] = await Promise.all([session, link]);
    t.diagnostic(`DICOM: ${dicom.echoesOk} C-ECHOs, released ${dicom.released}, ${dicom.error ?? "no error"}; HL7: ${hl7Result.acks.length} ACKs, ${hl7Result.error ?? "no error"}`);
    assert.equal(dicom.error, undefined, "the association was not cut");
    assert.equal(dicom.echoesOk, 5);
    assert.equal(dicom.released, true);
    assert.equal(hl7Result.error, undefined, "the HL7 link was not cut");
    assert.deepEqual(hl7Result.acks.map((a) => parseAck(a).code), ["AA", "AA", "AA", "AA"]);
    // New sessions are refused while every server is in maintenance: maintenance still stops new work.
    const refused = await sendHl7(bed.lb.topology, "client1", { host: core, port: 2310, timeoutMs: 3000, messages: [buildHl7Message({ controlId: "NEW" })] });
    assert.notEqual(refused.error, undefined, "no server takes a new HL7 link in maintenance");
    for (const name of servers()) {
      await runtime(`set server be_dicom/${name} state ready`);
      await runtime(`set server be_hl7/${name} state ready`);
    }
    await runtime("clear table be_hl7");
    for (const name of servers()) await bed.product.waitForStatus("be_dicom", name, "UP", 10_000);
    await bed.product.waitForStatus("be_hl7", servers()[0], "UP", 10_000);
  });

  it("defect 2: a client sent to the sorry server while all servers were down returns to a real server once one is back", async () => {
    const before = await curl(bed.lb.topology, "client1", `https://${web}/e2e/before-outage`, { insecure: true });
    assert.equal(before.status, 404, "Orthanc answers an unknown path");
    assert.equal(typeof servedBy("/e2e/before-outage"), "number", "a real server served it");
    for (const name of servers()) await runtime(`set server be_xero/${name} state maint`);
    const during = await curl(bed.lb.topology, "client1", `https://${web}/e2e/during-outage`, { insecure: true });
    assert.equal(during.status, 404);
    assert.equal(servedBy("/e2e/during-outage"), "sorry", "the sorry server answers while no server is usable");
    for (const name of servers()) await runtime(`set server be_xero/${name} state ready`);
    // Same client, no cookie: only the source-IP stick table could pin it.
    const afterOutage = await curl(bed.lb.topology, "client1", `https://${web}/e2e/after-outage`, { insecure: true });
    assert.equal(afterOutage.status, 404);
    assert.equal(typeof servedBy("/e2e/after-outage"), "number", `back on a real server, not ${String(servedBy("/e2e/after-outage"))}`);
    const table = await runtime("show table be_xero");
    assert.doesNotMatch(table, /server_id=3\b/, "no stick entry points at a third (sorry) server");
  });

  it("defect 3: X-Forwarded-For, Forwarded, X-Real-IP and X-Forwarded-Host from a client are removed; a trusted proxy's are kept", async () => {
    const forged = ["X-Forwarded-For: 10.66.66.66", "Forwarded: for=10.66.66.66", "X-Real-IP: 10.66.66.66", "X-Forwarded-Host: evil.example"];
    await curl(bed.lb.topology, "client1", `https://${web}/e2e/forged`, { insecure: true, headers: forged });
    await curl(bed.lb.topology, "client2", `https://${web}/e2e/trusted`, { insecure: true, headers: ["X-Forwarded-For: 10.1.2.3"] });
    const seen = (uri: string) => [...web80, sorry].flatMap((o) => o.httpRequests()).find((r) => r.uri === uri);
    const fromClient = seen("/e2e/forged");
    assert.ok(fromClient, "the request reached a server");
    assert.equal(fromClient.headers["x-forwarded-for"], "192.0.2.10", "only the address HAProxy saw");
    for (const name of ["forwarded", "x-real-ip", "x-forwarded-host"]) assert.equal(fromClient.headers[name], undefined, `${name} removed`);
    const fromProxy = seen("/e2e/trusted");
    assert.ok(fromProxy);
    // HAProxy appends its own X-Forwarded-For line after the proxy's; Orthanc's header map shows the first.
    assert.equal(fromProxy.headers["x-forwarded-for"], "10.1.2.3", "a trusted proxy's header is kept");
  });

  it("defect 6: active-backup sends every HL7 sender to one server, stays on the backup after recovery, moves back on `clear table`", async () => {
    const topo = bed.lb.topology;
    const send = async (client: string, controlId: string) => {
      const result = await sendHl7(topo, client, { host: core, port: 2310, messages: [buildHl7Message({ controlId })] });
      assert.equal(parseAck(result.acks[0] ?? "").code, "AA", `${controlId}: ${String(result.error)}`);
    };
    const on = (controlId: string) => hl7.findIndex((r) => r.messages().some((m) => m.controlId === controlId));
    await send("client1", "AB-1");
    assert.equal(on("AB-1"), 0, "the primary takes the first sender");
    // The primary fails: both of its HL7 ports stop.
    const stopped = (bed.receivers.get(2311) ?? [])[0];
    await Promise.all([hl7[0].stop(), stopped.stop()]);
    await bed.product.waitForStatus("be_hl7", servers()[0], "DOWN", 10_000);
    await send("client1", "AB-2");
    assert.equal(on("AB-2"), 1, "failover to the backup");
    // The primary recovers.
    const [back] = await Promise.all(HL7_PORTS.map((port) => startMllpReceiver(topo, { host: bed.lb.servers[0], port, name: `srv1-${port}-back` })));
    hl7[0] = back;
    await bed.product.waitForStatus("be_hl7", servers()[0], "UP", 10_000);
    await send("client1", "AB-3");
    await send("client2", "AB-4");
    assert.equal(on("AB-3"), 1, "the sender that failed over stays on the backup");
    assert.equal(on("AB-4"), 1, "a new sender joins it: one active server for all senders");
    // Told otherwise: the operator moves HL7 back to the primary.
    await runtime("clear table be_hl7");
    await send("client2", "AB-5");
    await send("client1", "AB-6");
    assert.equal(on("AB-5"), 0);
    assert.equal(on("AB-6"), 0);
  });
});
