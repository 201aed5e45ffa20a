/**
 * Issue 11, defect 9, on the real network: the product's log lines trace a DICOM association end to end —
 * client address:port, VIP:port, the LB's source address:port towards the server, the server's address:port,
 * bytes both ways and the calling/called AE titles of the A-ASSOCIATE-RQ — and a long-lived HL7 link is
 * logged when it opens. The product's rendered haproxy.cfg (examples/agfa-ei-two-arm.yaml) with only its log
 * target moved from /dev/log to HAProxy's stdout, in front of real Orthancs and MLLP receivers.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { renderHaproxy } from "../../lib/haproxy/build";
import { makeSelfSignedPem } from "../helpers/tools";
import {
  buildHl7Message,
  buildTwoArm,
  generateDicomInstances,
  listNamespaces,
  maxconnOverride,
  parseAck,
  pollUntil,
  productEnvironment,
  RUN_PREFIX,
  sendHl7,
  startHaproxy,
  startMllpReceiver,
  startOrthanc,
  STATS_PASSWORD_VARIABLE,
  storescu,
  sweepStaleNamespaces,
  TEST_STATS_PASSWORD,
  type HaproxyInstance,
  type LbTopology,
} from "./harness";

describe("connection logs that trace DICOM associations and HL7 links (defect 9)", { timeout: 120_000 }, () => {
  let lb: LbTopology;
  let haproxy: HaproxyInstance;
  let core: string;

  before(async () => {
    sweepStaleNamespaces();
    lb = buildTwoArm({ servers: 2, vips: 2 });
    const topo = lb.topology;
    const env = productEnvironment({
      example: "agfa-ei-two-arm",
      lb,
      patch: { services: { core: { enabled: false }, xero: { enabled: false }, dicom: { healthCheck: { interval: "1s" }, timeouts: { check: "1s" } } } },
    });
    core = env.vips.find((v) => v.name === "core")?.address ?? "";
    for (const host of lb.servers) {
      await startOrthanc(topo, { host, aet: "EI_CORE", dicomPort: 104, httpPort: 8042 });
      await startOrthanc(topo, { host, name: `${host}-110`, aet: "EI_CORE", dicomPort: 110, httpPort: 8043 });
      for (const port of [2310, 2311]) await startMllpReceiver(topo, { host, port });
    }
    makeSelfSignedPem(topo.workDir, "web");
    const config = renderHaproxy(env, { runtimeSocket: join(topo.workDir, "haproxy.sock"), chroot: false, certBase: topo.workDir, log: "stdout format raw local0" });
    const override = maxconnOverride(config);
    haproxy = await startHaproxy(topo, {
      host: "lb",
      config,
      env: { [STATS_PASSWORD_VARIABLE]: TEST_STATS_PASSWORD },
      args: override === undefined ? [] : ["-n", String(override)],
      waitFor: [{ address: core, port: 104 }, { address: core, port: 2310 }],
    });
  });

  after(() => {
    lb?.topology.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  const logLines = (frontend: string) => readFileSync(haproxy.logFile, "utf8").split("\n").filter((l) => l.includes(` ${frontend} `));

  it("a C-STORE association is logged with both AE titles, both byte counts and every address:port", async (t) => {
    const files = generateDicomInstances({ dir: join(lb.topology.workDir, "dicom"), count: 2, sizeBytes: 64 * 1024 });
    const store = await storescu(lb.topology, "client1", { address: core, calledAet: "EI_CORE", callingAet: "MODALITY1", timeoutMs: 20_000 }, files.map((f) => f.path));
    assert.equal(store.code, 0, store.output);
    let line = "";
    await pollUntil("the association's log line", async () => {
      line = logLines("fe_dicom").find((l) => l.includes('calling="MODALITY1"')) ?? "";
      if (line) return true;
      throw new Error(readFileSync(haproxy.logFile, "utf8").slice(-2000));
    }, { timeoutMs: 5_000, intervalMs: 100 });
    t.diagnostic(line);
    const m = /^192\.0\.2\.10:(\d+) (\S+):104 \[[^\]]+\] fe_dicom be_dicom\/(\S+) 198\.51\.100\.10:(\d+)->(198\.51\.100\.2[12]):104 \d+\/\d+\/\d+ (\d+)\/(\d+) -- .* calling="MODALITY1" called="EI_CORE"$/.exec(line);
    assert.ok(m, `unexpected log line: ${line}`);
    assert.equal(m[2], core, "the VIP and port the client used");
    assert.ok(Number(m[4]) > 0, "the LB's source port towards the server");
    assert.ok(Number(m[6]) > 2 * 64 * 1024, `bytes uploaded by the modality: ${m[6]}`);
    assert.ok(Number(m[7]) > 0, "bytes the PACS answered");
  });

  it("an HL7 link is logged when it opens, while it is still open", async () => {
    // The client connects, stays idle 5 s, then sends. No fixed sleep before looking: on a loaded machine the
    // client itself may take seconds to start. The line must come while the link is open, and it carries
    // HAProxy's "+" marks of a line logged before the end (option logasap), the byte counts of an idle link.
    let linkOpen = true;
    const link = sendHl7(lb.topology, "client1", { host: core, port: 2310, idleBeforeSendMs: 5000, messages: [buildHl7Message({ controlId: "OPEN1" })] }).finally(() => {
      linkOpen = false;
    });
    const open = await pollUntil("the HL7 link's log line", () => (logLines("fe_hl7").length > 0 || !linkOpen ? logLines("fe_hl7") : undefined), { timeoutMs: 60_000, intervalMs: 100 });
    assert.ok(linkOpen, `logged while the link is open, before its message: ${open.join("\n")}`);
    assert.equal(open.length, 1, "logged once, at open");
    assert.match(open[0], /^192\.0\.2\.10:\d+ \S+:2310 \[[^\]]+\] fe_hl7 be_hl7\/\S+ 198\.51\.100\.10:\d+->198\.51\.100\.2[12]:2310 \d+\/\d+\/\+\d+ \d+\/\+\d+ -- /);
    const result = await link;
    assert.equal(parseAck(result.acks[0] ?? "").code, "AA", result.error);
  });
});
