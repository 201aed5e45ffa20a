/**
 * What the servers see, and which interface carries what, with the product's rendered haproxy.cfg
 * (examples/agfa-ei-two-arm.yaml mapped to the test ranges):
 * - SNAT (the example as is): servers see LB eth0; client traffic enters and leaves only by eth1, server
 *   traffic only by eth0 (per-interface packet counters in the LB namespace);
 * - TProxy (`clientAddress: tproxy` for dicom and hl7): servers see the client's address, with the servers
 *   routing back through the LB and the exact TProxy rules the product's bootstrap installs
 *   (`lib/shell/imaging-lb-tproxy.sh`) plus its sysctls.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { imagingLbTproxy } from "../../lib/shell/embedded.generated";
import { requireTool } from "../helpers/tools";
import {
  buildHl7Message,
  echoscu,
  generateDicomInstances,
  listNamespaces,
  parseAck,
  RUN_PREFIX,
  sendHl7,
  startTestbed,
  storescu,
  sweepStaleNamespaces,
  type Testbed,
  type Topology,
} from "./harness";

const CLIENTS = "192.0.2.0/24";
const SERVERS = "198.51.100.21/32,198.51.100.22/32";

/** Packet/byte counters (`iptables -m comment`, no target: count only) on the LB, by direction and interface. */
const COUNTERS: Record<string, string[]> = {
  "client-in-eth1": ["INPUT", "-i", "eth1", "-s", CLIENTS],
  "client-in-eth0": ["INPUT", "-i", "eth0", "-s", CLIENTS],
  "client-out-eth1": ["OUTPUT", "-o", "eth1", "-d", CLIENTS],
  "client-out-eth0": ["OUTPUT", "-o", "eth0", "-d", CLIENTS],
  "server-out-eth0": ["OUTPUT", "-o", "eth0", "-d", SERVERS],
  "server-out-eth1": ["OUTPUT", "-o", "eth1", "-d", SERVERS],
  "server-in-eth0": ["INPUT", "-i", "eth0", "-s", SERVERS],
  "server-in-eth1": ["INPUT", "-i", "eth1", "-s", SERVERS],
};

async function installCounters(topo: Topology): Promise<void> {
  const iptables = requireTool("iptables", "iptables");
  for (const [name, [chain, ...match]] of Object.entries(COUNTERS)) {
    await topo.execOk("lb", iptables, ["-w", "-A", chain, ...match, "-m", "comment", "--comment", name]);
  }
}

async function readCounters(topo: Topology): Promise<Record<string, { packets: number; bytes: number }>> {
  const iptables = requireTool("iptables", "iptables");
  const out: Record<string, { packets: number; bytes: number }> = {};
  for (const chain of ["INPUT", "OUTPUT"]) {
    const listing = (await topo.execOk("lb", iptables, ["-w", "-L", chain, "-v", "-x", "-n"])).stdout;
    for (const line of listing.split("\n")) {
      const name = /\/\* (\S+) \*\//.exec(line)?.[1];
      const fields = line.trim().split(/\s+/);
      // A comma-separated address list is one rule per address: sum them.
      if (name && name in COUNTERS) {
        const sum = out[name] ?? { packets: 0, bytes: 0 };
        out[name] = { packets: sum.packets + Number(fields[0]), bytes: sum.bytes + Number(fields[1]) };
      }
    }
  }
  return out;
}

describe("product config, two-arm SNAT: servers see LB eth0; clients only on eth1, servers only on eth0", { timeout: 90_000 }, () => {
  let bed: Testbed;

  before(async () => {
    sweepStaleNamespaces();
    bed = await startTestbed({ example: "agfa-ei-two-arm", mllpPorts: [2310, 2311] });
    await installCounters(bed.lb.topology);
  });

  after(() => {
    bed?.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  it("carries client traffic on eth1 and server traffic on eth0 only, in both directions; servers see 198.51.100.10", async (t) => {
    const topo = bed.lb.topology;
    const core = bed.vip("core");
    const aet = bed.env.services.find((s) => s.name === "dicom")?.members[0]?.aeTitle ?? "";
    const size = 2 * 1024 * 1024;
    const files = generateDicomInstances({ dir: join(topo.workDir, "dicom-2m"), count: 2, sizeBytes: size });
    for (const file of files) {
      const store = await storescu(topo, "client1", { address: core, calledAet: aet, timeoutMs: 20_000 }, [file.path]);
      assert.equal(store.code, 0, store.output);
    }
    const echo = await echoscu(topo, "client1", { address: core, calledAet: aet });
    assert.equal(echo.code, 0, echo.output);
    const hl7 = await sendHl7(topo, "client1", { host: core, port: 2310, messages: [buildHl7Message({ controlId: "SNAT1" })] });
    assert.equal(parseAck(hl7.acks[0] ?? "").code, "AA", hl7.error);

    const c = await readCounters(topo);
    t.diagnostic(`LB counters (packets/bytes): ${Object.entries(c).map(([k, v]) => `${k} ${v.packets}/${v.bytes}`).join(", ")}`);
    assert.ok(c["client-in-eth1"].bytes >= 2 * size, "the stores arrived from the client on eth1");
    assert.ok(c["client-out-eth1"].packets > 0, "replies to the client left by eth1");
    assert.ok(c["server-out-eth0"].bytes >= 2 * size, "the stores went to the servers by eth0");
    assert.ok(c["server-in-eth0"].packets > 0, "the servers' replies came back by eth0");
    for (const wrong of ["client-in-eth0", "client-out-eth0", "server-out-eth1", "server-in-eth1"]) {
      assert.equal(c[wrong].packets, 0, `${wrong}: no packet on the wrong interface`);
    }

    const stored = (await Promise.all((bed.orthancs.get(104) ?? []).map((o) => o.storedInstances()))).flat();
    for (const instance of stored) assert.equal(instance.remoteIp, "198.51.100.10");
    const connects = (bed.receivers.get(2310) ?? []).flatMap((r) => r.events()).filter((e) => e.event === "connect" && e.peer !== "127.0.0.1");
    assert.deepEqual([...new Set(connects.map((e) => e.peer))], ["198.51.100.10"]);
  });

  it("a VIP is not served on the internal side: the internal subnet is no client network", async () => {
    // Even with a route to the VIP through LB eth0, the product's client ACL (access.clientCidrs) refuses it.
    const topo = bed.lb.topology;
    await topo.execOk(bed.lb.servers[0], "ip", ["route", "add", `${bed.vip("core")}/32`, "via", bed.lb.lbInternalAddress]);
    const echo = await echoscu(topo, bed.lb.servers[0], { address: bed.vip("core"), calledAet: "EI_CORE", timeoutMs: 5000 });
    assert.notEqual(echo.code, 0, echo.output);
  });
});

describe("product config, two-arm TProxy: servers see the client's address", { timeout: 90_000 }, () => {
  let bed: Testbed;

  before(async () => {
    bed = await startTestbed({
      example: "agfa-ei-two-arm",
      topology: { serverDefaultRoute: "lb" },
      mllpPorts: [2310, 2311],
      patch: { services: { dicom: { clientAddress: "tproxy" }, hl7: { clientAddress: "tproxy" } } },
    });
    const topo = bed.lb.topology;
    // The bootstrap's own TProxy script (the same on every node) and sysctls.
    const script = join(topo.workDir, "imaging-lb-tproxy");
    writeFileSync(script, imagingLbTproxy, { mode: 0o755 });
    requireTool("iptables", "iptables");
    await topo.execOk("lb", "bash", [script]);
    await topo.execOk("lb", "bash", [script]); // converges: a second run adds nothing
    await topo.execOk("lb", "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=2", "net.ipv4.conf.default.rp_filter=2"]);
  });

  after(() => {
    bed?.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  it("renders usesrc clientip and keeps HAProxy root (no user/group)", async () => {
    assert.match(bed.product.config, /^\s+source 0\.0\.0\.0 usesrc clientip$/m);
    assert.doesNotMatch(bed.product.config, /^\s+user haproxy$/m);
    const rules = (await bed.lb.topology.execOk("lb", "iptables", ["-w", "-t", "mangle", "-S"])).stdout;
    assert.equal(rules.split("\n").filter((l) => l.startsWith("-A PREROUTING -p tcp -m socket -j DIVERT")).length, 1, rules);
  });

  it("DICOM and HL7 servers see 192.0.2.10, the client, as the peer", async () => {
    const topo = bed.lb.topology;
    const core = bed.vip("core");
    const aet = bed.env.services.find((s) => s.name === "dicom")?.members[0]?.aeTitle ?? "";
    const files = generateDicomInstances({ dir: join(topo.workDir, "dicom-tproxy"), count: 4 });
    for (const file of files) {
      const store = await storescu(topo, "client1", { address: core, calledAet: aet, timeoutMs: 15_000 }, [file.path]);
      assert.equal(store.code, 0, store.output);
    }
    const stored = (await Promise.all((bed.orthancs.get(104) ?? []).map((o) => o.storedInstances()))).flat();
    assert.equal(stored.length, 4);
    for (const instance of stored) assert.equal(instance.remoteIp, "192.0.2.10", "TProxy: the server sees the client");
    const hl7 = await sendHl7(topo, "client1", { host: core, port: 2310, messages: [buildHl7Message({ controlId: "TPROXY1" })] });
    assert.equal(parseAck(hl7.acks[0] ?? "").code, "AA", hl7.error);
    const connects = (bed.receivers.get(2310) ?? []).flatMap((r) => r.events()).filter((e) => e.event === "connect" && e.peer !== "127.0.0.1");
    assert.ok(connects.length > 0);
    for (const e of connects) if (e.peer !== "198.51.100.10") assert.equal(e.peer, "192.0.2.10");
    assert.ok(connects.some((e) => e.peer === "192.0.2.10"));
  });
});
