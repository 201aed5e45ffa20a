/**
 * ha.vipMode nlb with three nodes (issue 24's "three allowed"): examples/agfa-ei-nlb.yaml with lb-c in a
 * third zone, on the multi-AZ bed (`harness/nlb-bed.ts`, `zones: ["a", "b", "c"]`) — three active nodes in
 * three simulated availability zones, each running the haproxy.cfg the product renders for it, behind a
 * SIMULATED NLB (L4, client address preserved, the product's health-check settings), real Orthanc, curl and
 * MLLP peers. Proves that the stick tables are shared by all three peers: a client's server is the same
 * whichever node serves it, and HL7 active-backup sends every sender to one server through any node.
 * The AZ-loss and replacement drills run on the two-node bed (nlb-multi-az.e2e.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { buildHl7Message, parseAck, sendHl7 } from "./harness/hl7";
import { curl } from "./harness/curl";
import { listNamespaces, RUN_PREFIX, sweepStaleNamespaces } from "./harness/netns";
import { buildNlbBed, ZONES, type NlbBed } from "./harness/nlb-bed";

const NODES = ["lb-a", "lb-b", "lb-c"];

describe("ha.vipMode nlb: three active nodes in three zones behind a SIMULATED NLB share their stick tables", { timeout: 300_000 }, () => {
  let bed: NlbBed;
  const started = Date.now();

  before(async () => {
    sweepStaleNamespaces();
    bed = await buildNlbBed({ drainTime: "15s", zones: ["a", "b", "c"] });
  });

  after(async () => {
    await bed?.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
    process.stdout.write(`# nlb-three-zones.e2e wall time: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  });

  it("every node's peers section lists all three; each listens on its own VIP addresses only", () => {
    for (const node of NODES) {
      const cfg = bed.nodes[node].haproxy.config;
      for (const zone of ["a", "b", "c"] as const) assert.match(cfg, new RegExp(`peer ${ZONES[zone].node} ${ZONES[zone].eth0.replace(/\./g, "\\.")}:10000`), `${node} peers with ${ZONES[zone].node}`);
    }
    assert.match(bed.nodes["lb-c"].haproxy.config, new RegExp(`bind ${ZONES.c.web.target.replace(/\./g, "\\.")}:443 `));
    assert.doesNotMatch(bed.nodes["lb-c"].haproxy.config, new RegExp(ZONES.a.web.target.replace(/\./g, "\\.")));
  });

  it("a client keeps its server whichever of the three nodes the NLB picks, and all three tables agree", async (t) => {
    const names: string[] = [];
    // Cross-zone off: each zone's address reaches its own zone's node only.
    for (const zone of ["a", "b", "c", "c", "b", "a"] as const) {
      const r = await curl(bed.topology, "client1", `https://${ZONES[zone].web.nlb}/system`, { insecure: true, timeoutMs: 5000 });
      assert.equal(r.status, 200, `via zone ${zone}: ${r.body}`);
      names.push((JSON.parse(r.body) as { Name: string }).Name);
    }
    t.diagnostic(`client1 via zones a, b, c, c, b, a: ${names.join(", ")}`);
    assert.equal(new Set(names).size, 1, `one server for client1 through all three nodes: ${names.join(", ")}`);
    // The first request (through lb-a) created the entry; lb-b and lb-c served from the entry the peers pushed.
    const tables = await Promise.all(NODES.map((n) => bed.nodes[n].haproxy.runtime("show table be_xero-xtend")));
    const entry = (text: string) => /key=192\.0\.2\.10 .*server_id=(\d+)/.exec(text)?.[1];
    const ids = tables.map(entry);
    assert.ok(ids[0] !== undefined && ids.every((id) => id === ids[0]), `all three nodes' stick tables hold client1 on one server (${ids.join(", ")}):\n${tables.join("\n")}`);
  });

  it("a client first served by lb-c keeps its server through lb-a and lb-b", async (t) => {
    const names: string[] = [];
    for (const zone of ["c", "a", "b"] as const) {
      const r = await curl(bed.topology, "client2", `https://${ZONES[zone].web.nlb}/system`, { insecure: true, timeoutMs: 5000 });
      assert.equal(r.status, 200);
      names.push((JSON.parse(r.body) as { Name: string }).Name);
    }
    t.diagnostic(`client2 via zones c, a, b: ${names.join(", ")}`);
    assert.equal(new Set(names).size, 1, names.join(", "));
  });

  it("HL7 active-backup: every sender on one server through any of the three nodes", async () => {
    for (const [client, zone] of [["client1", "c"], ["client2", "a"], ["client3", "b"], ["client1", "a"], ["client3", "c"]] as const) {
      const r = await sendHl7(bed.topology, client, { host: ZONES[zone].core.nlb, port: 2310, messages: [buildHl7Message({ controlId: `three-${client}-${zone}` })], timeoutMs: 5000 });
      assert.equal(r.error, undefined, `${client} via zone ${zone}: ${String(r.error)}`);
      assert.equal(parseAck(r.acks[0] ?? "").code, "AA");
    }
    const receivedBy = bed.receivers.map((r) => r.messages().filter((m) => m.controlId?.startsWith("three-")).length);
    assert.deepEqual(receivedBy, [5, 0, 0], `all five messages (three nodes) on ei-core-1: ${receivedBy.join(", ")}`);
    const peersOf = new Set(bed.receivers[0].events().filter((e) => e.event === "connect").map((e) => e.peer));
    for (const zone of ["a", "b", "c"] as const) assert.ok(peersOf.has(ZONES[zone].eth0), `ei-core-1 got a link from ${ZONES[zone].node}: ${[...peersOf].join(", ")}`);
  });
});
