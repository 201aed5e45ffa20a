/**
 * Smoke test of the e2e harness: real namespaces, a real HAProxy with a small hand-written configuration,
 * real Orthancs, DCMTK clients and MLLP peers. Proves the harness before the product's rendered
 * configurations are run through it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { join } from "node:path";
import {
  buildHl7Message,
  buildOneArm,
  buildTwoArm,
  echoscu,
  generateDicomInstances,
  haproxyRuntime,
  listNamespaces,
  parseAck,
  RUN_PREFIX,
  sendHl7,
  startHaproxy,
  startMllpReceiver,
  startOrthanc,
  storescu,
  sweepStaleNamespaces,
  type HaproxyInstance,
  type LbTopology,
  type MllpReceiver,
  type OrthancServer,
} from "./harness";

const AET = "EIPACS";

/** A minimal hand-written SNAT configuration: VIP:104 → DICOM, VIP:80 → Orthanc HTTP 8042, VIP:2310 → MLLP. */
function smokeConfig(lb: LbTopology, socketPath: string): string {
  const vip = lb.vips[0];
  const servers = (port: number): string =>
    lb.servers.map((name, i) => `    server ${name} ${lb.serverAddresses[i]}:${port}`).join("\n");
  const service = (name: string, frontendPort: number, serverPort: number): string => `
frontend fe_${name}
    bind ${vip}:${frontendPort}
    default_backend be_${name}

backend be_${name}
    balance leastconn
    source ${lb.lbInternalAddress}
${servers(serverPort)}
`;
  return `global
    log stdout format raw local0 info
    maxconn 1000
    stats socket ${socketPath} mode 600 level admin

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 60s
    timeout server 60s
${service("dicom", 104, 104)}${service("http", 80, 8042)}${service("hl7", 2310, 2310)}`;
}

/** Everything running on one layout. */
interface Testbed {
  readonly lb: LbTopology;
  readonly orthancs: OrthancServer[];
  readonly receivers: MllpReceiver[];
  readonly haproxy: HaproxyInstance;
  readonly socketPath: string;
  readonly timings: Record<string, number>;
}

async function startTestbed(build: () => LbTopology): Promise<Testbed> {
  const timings: Record<string, number> = {};
  let mark = Date.now();
  const lap = (name: string): void => {
    timings[name] = Date.now() - mark;
    mark = Date.now();
  };
  const lb = build();
  lap("topologyMs");
  try {
    const topo = lb.topology;
    const orthancs = await Promise.all(lb.servers.map((host) => startOrthanc(topo, { host, aet: AET, checkCalledAet: true })));
    lap("orthancStartMs");
    const receivers = await Promise.all(lb.servers.map((host) => startMllpReceiver(topo, { host, port: 2310 })));
    lap("mllpStartMs");
    const socketPath = join(topo.workDir, "haproxy.sock");
    const vip = lb.vips[0];
    const haproxy = await startHaproxy(topo, {
      host: "lb",
      config: smokeConfig(lb, socketPath),
      waitFor: [104, 80, 2310].map((port) => ({ address: vip, port })),
    });
    lap("haproxyStartMs");
    return { lb, orthancs, receivers, haproxy, socketPath, timings };
  } catch (error) {
    lb.topology.destroy();
    throw error;
  }
}

describe("harness smoke: two-arm", { timeout: 90_000 }, () => {
  let bed: Testbed;
  let vip: string;
  let started = 0;

  before(async () => {
    started = Date.now();
    const swept = sweepStaleNamespaces();
    if (swept.length > 0) console.log(`# swept stale namespaces: ${swept.join(", ")}`);
    bed = await startTestbed(() => buildTwoArm({ servers: 2 }));
    vip = bed.lb.vips[0];
  });

  after(() => {
    bed?.lb.topology.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  it("builds the two-arm address plan", async () => {
    const topo = bed.lb.topology;
    assert.equal(bed.lb.lbExternalAddress, "203.0.113.10");
    assert.equal(vip, "203.0.113.100");
    const addrs = (await topo.execOk("lb", "ip", ["-4", "-o", "addr", "show"])).stdout;
    assert.match(addrs, /eth0\s+inet 198\.51\.100\.10\/24/);
    assert.match(addrs, /eth1\s+inet 203\.0\.113\.10\/24/);
    assert.match(addrs, /eth1\s+inet 203\.0\.113\.100\/24/);
  });

  it("C-ECHO through VIP:104 succeeds", async () => {
    const echo = await echoscu(bed.lb.topology, "client1", { address: vip, calledAet: AET, timeoutMs: 10_000 });
    assert.equal(echo.code, 0, echo.output);
  });

  it("a wrong called AE title is rejected by the real Orthanc behind the VIP", async () => {
    const echo = await echoscu(bed.lb.topology, "client1", { address: vip, calledAet: "NOTPACS", timeoutMs: 10_000 });
    assert.notEqual(echo.code, 0);
    assert.match(echo.output, /Called AE Title Not Recognized/i);
  });

  it("stores 10 instances through the VIP across both Orthancs, none lost or duplicated", async () => {
    const files = generateDicomInstances({ dir: join(bed.lb.topology.workDir, "dicom"), count: 10 });
    // One association per file so leastconn spreads them; each must succeed.
    for (const file of files) {
      const store = await storescu(bed.lb.topology, "client1", { address: vip, calledAet: AET, timeoutMs: 15_000 }, [file.path]);
      assert.equal(store.code, 0, store.output);
    }
    const stored = (await Promise.all(bed.orthancs.map((o) => o.storedInstances()))).map((list) => list.map((i) => i.sopInstanceUid));
    const all = stored.flat();
    assert.equal(all.length, 10, `stored per server: ${stored.map((s) => s.length).join("+")}`);
    assert.deepEqual(new Set(all), new Set(files.map((f) => f.sopInstanceUid)));
    for (const [i, list] of stored.entries()) assert.ok(list.length > 0, `srv${i + 1} received none: leastconn did not spread`);
    assert.equal((await bed.orthancs[0].statistics()).CountInstances + (await bed.orthancs[1].statistics()).CountInstances, 10);
  });

  it("an HTTP GET through VIP:80 reaches Orthanc's REST API on :8042", async () => {
    const response = await bed.lb.topology.http("client1", `http://${vip}/system`);
    assert.equal(response.status, 200);
    const system = JSON.parse(response.body) as { DicomAet: string; Name: string };
    assert.equal(system.DicomAet, AET);
    assert.ok(["srv1", "srv2"].includes(system.Name));
  });

  it("an HL7 message through VIP:2310 gets an AA ACK with the sender's control id", async () => {
    const result = await sendHl7(bed.lb.topology, "client1", {
      host: vip,
      port: 2310,
      messages: [buildHl7Message({ controlId: "SMOKE0001" }), buildHl7Message({ controlId: "SMOKE0002" })],
      idleBeforeSendMs: 300,
    });
    assert.equal(result.error, undefined);
    assert.deepEqual(result.acks.map(parseAck), [
      { code: "AA", controlId: "SMOKE0001" },
      { code: "AA", controlId: "SMOKE0002" },
    ]);
    assert.equal(result.localAddress, "192.0.2.10");
    const received = bed.receivers.flatMap((r) => r.messages());
    assert.deepEqual(received.map((m) => m.controlId).sort(), ["SMOKE0001", "SMOKE0002"]);
    // One conversation = one server-side connection (readiness checks must not have connected through).
    assert.equal(bed.receivers.flatMap((r) => r.events()).filter((e) => e.event === "connect").length, 1);
  });

  it("servers see the LB's eth0 address as the peer (SNAT) on DICOM, HTTP and HL7", async () => {
    const lbAddress = bed.lb.lbInternalAddress;
    const instances = (await Promise.all(bed.orthancs.map((o) => o.storedInstances()))).flat();
    assert.ok(instances.length > 0);
    for (const instance of instances) assert.equal(instance.remoteIp, lbAddress, `instance ${instance.sopInstanceUid}`);
    const httpPeers = bed.orthancs.flatMap((o) => o.httpPeers()).filter((p) => p.peer !== "127.0.0.1");
    assert.ok(httpPeers.length > 0, "the GET through the VIP was logged");
    for (const peer of httpPeers) assert.equal(peer.peer, lbAddress);
    const hl7Peers = bed.receivers.flatMap((r) => r.events()).filter((e) => e.event === "connect").map((e) => e.peer);
    assert.ok(hl7Peers.length > 0);
    for (const peer of hl7Peers) assert.equal(peer, lbAddress);
  });

  it("clients cannot reach the servers directly (the LB is a proxy, not a router)", async () => {
    const direct = await bed.lb.topology.exec("client1", "curl", ["-sS", "--noproxy", "*", "--max-time", "2", `http://${bed.lb.serverAddresses[0]}:8042/system`]);
    assert.notEqual(direct.code, 0);
  });

  it("the runtime API answers over the stats socket", async () => {
    const stat = await haproxyRuntime(bed.socketPath, "show servers state be_dicom");
    assert.match(stat, /be_dicom \d+ srv1 198\.51\.100\.21 2 /, stat); // srv_op_state 2 = running
  });

  it("reports timings", (t) => {
    const orthancRss = bed.orthancs.map((o) => o.memoryKb());
    t.diagnostic(`two-arm timings ms: ${JSON.stringify(bed.timings)}; orthanc RSS kB: ${JSON.stringify(orthancRss)}; elapsed: ${Date.now() - started}`);
  });
});

describe("harness smoke: one-arm", { timeout: 60_000 }, () => {
  let bed: Testbed;
  let vip: string;
  let started = 0;

  before(async () => {
    started = Date.now();
    bed = await startTestbed(() => buildOneArm({ servers: 2 }));
    vip = bed.lb.vips[0];
  });

  after(() => {
    bed?.lb.topology.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  it("puts the VIP on the single interface, in the servers' subnet", async () => {
    assert.equal(vip, "198.51.100.100");
    const links = (await bed.lb.topology.execOk("lb", "ip", ["-o", "link", "show"])).stdout;
    assert.doesNotMatch(links, /eth1/);
  });

  it("C-ECHO, HTTP and HL7 through the VIP work and servers see the LB's address", async () => {
    const topo = bed.lb.topology;
    const echo = await echoscu(topo, "client1", { address: vip, calledAet: AET, timeoutMs: 10_000 });
    assert.equal(echo.code, 0, echo.output);
    const response = await topo.http("client1", `http://${vip}/system`);
    assert.equal(response.status, 200);
    const result = await sendHl7(topo, "client1", { host: vip, port: 2310, messages: [buildHl7Message({ controlId: "ONEARM1" })] });
    assert.equal(result.error, undefined);
    assert.deepEqual(parseAck(result.acks[0] ?? ""), { code: "AA", controlId: "ONEARM1" });
    const peers = [
      ...bed.receivers.flatMap((r) => r.messages()).map((m) => m.peer),
      ...bed.orthancs.flatMap((o) => o.httpPeers()).filter((p) => p.peer !== "127.0.0.1").map((p) => p.peer),
    ];
    assert.equal(peers.length, 2);
    for (const peer of peers) assert.equal(peer, bed.lb.lbInternalAddress);
  });

  it("reports timings", (t) => {
    t.diagnostic(`one-arm timings ms: ${JSON.stringify(bed.timings)}; elapsed: ${Date.now() - started}`);
  });
});

describe("harness cleanup", () => {
  it("leaves no ilb-<pid>-* namespace behind", () => {
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), []);
  });
});
