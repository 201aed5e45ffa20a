/**
 * Issue 11, defect 11, on the real network: an HA pair whose DICOM service connects to the servers from the
 * VIP (`clientAddress: source`, `sourceAddress: vip`). The VIP lives on the active node only, so checks sent
 * from it cannot work on the standby (the answers go to the VIP's owner). The product checks from each node's
 * own address instead (a check-only backend the traffic backend tracks): the servers are UP on both nodes
 * before any failover, while the traffic still leaves from the VIP.
 * Two HAProxys run the product's rendered haproxy.cfg (examples/agfa-ei-two-arm.yaml with a second node),
 * each with `-L <node>` as its hostname would give it; no keepalived: the VIPs stay on `lb`.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  buildTwoArm,
  delay,
  generateDicomInstances,
  listNamespaces,
  productEnvironment,
  RUN_PREFIX,
  startOrthanc,
  STATS_PASSWORD_VARIABLE,
  storescu,
  sweepStaleNamespaces,
  TEST_STATS_PASSWORD,
  haproxyRuntime,
  maxconnOverride,
  pollUntil,
  type LbTopology,
  type OrthancServer,
} from "./harness";
import { renderHaproxy } from "../../lib/haproxy/build";
import { requireTool } from "../helpers/tools";

describe("HA pair, DICOM from the VIP: servers are UP on the standby too (defect 11)", { timeout: 120_000 }, () => {
  let lb: LbTopology;
  let vip: string;
  let pacs: OrthancServer[];
  const sockets: Record<string, string> = {};
  const haproxy = requireTool("haproxy", "haproxy");

  before(async () => {
    sweepStaleNamespaces();
    lb = buildTwoArm({ servers: 2, vips: 2, haPair: true, serverDefaultRoute: "lb" });
    const topo = lb.topology;
    const env = productEnvironment({
      example: "agfa-ei-two-arm",
      lb,
      patch: {
        loadBalancer: { nodes: { "lb-b": { internalAddress: "198.51.100.11", externalAddress: "203.0.113.11" } } },
        services: {
          core: { enabled: false },
          hl7: { enabled: false },
          xero: { enabled: false },
          dicom: { clientAddress: "source", sourceAddress: "vip", healthCheck: { interval: "1s", fall: 2, rise: 2 }, timeouts: { check: "1s" } },
        },
      },
    });
    vip = env.vips.find((v) => v.name === "core")?.address ?? "";
    pacs = [];
    for (const host of lb.servers) {
      pacs.push(await startOrthanc(topo, { host, aet: "EI_CORE", dicomPort: 104, httpPort: 8042 }));
      await startOrthanc(topo, { host, name: `${host}-110`, aet: "EI_CORE", dicomPort: 110, httpPort: 8043 });
    }
    for (const [host, node] of [["lb", "lb-a"], ["lb2", "lb-b"]] as const) {
      sockets[host] = join(topo.workDir, `haproxy-${host}.sock`);
      const config = renderHaproxy(env, { runtimeSocket: sockets[host], chroot: false, certBase: topo.workDir });
      const override = maxconnOverride(config);
      const configFile = join(topo.workDir, `haproxy-${host}.cfg`);
      writeFileSync(configFile, config);
      const processEnv = { ...process.env, [STATS_PASSWORD_VARIABLE]: TEST_STATS_PASSWORD };
      const check = await topo.exec(host, haproxy, ["-dW", "-c", "-f", configFile, "-L", node], { env: processEnv });
      assert.equal(check.code, 0, `haproxy -dW -c -L ${node}:\n${check.stdout}${check.stderr}`);
      const proc = topo.spawn(host, haproxy, ["-db", "-f", configFile, "-L", node, ...(override === undefined ? [] : ["-n", String(override)])], { env: processEnv });
      await topo.waitForListen(host, vip, 104, { timeoutMs: 10_000, process: proc });
    }
  });

  after(() => {
    lb?.topology.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  const statuses = async (host: string): Promise<Record<string, string>> => {
    // be_dicom's servers, with the check result of the server they take their state from (itself, or the
    // server of the check-only backend it tracks).
    const rows = (await haproxyRuntime(sockets[host], "show stat")).split("\n").map((l) => l.split(","));
    const check = (server: string) => rows.find((f) => f[0] === "chk_be_dicom" && f[1] === server) ?? rows.find((f) => f[0] === "be_dicom" && f[1] === server);
    return Object.fromEntries(rows.filter((f) => f[0] === "be_dicom" && f[1].startsWith("ei-core-")).map((f) => [f[1], `${f[17]} ${check(f[1])?.[36] ?? ""}`.trim()]));
  };

  it("the servers are UP on the active node and on the standby (which does not hold the VIP)", async (t) => {
    // Servers start UP before their first check: wait for 3 check intervals (fall 2 × 1 s) first, then
    // require a steady UP with a passed DICOM check on both nodes.
    await delay(3500);
    for (const host of ["lb", "lb2"]) {
      let last: Record<string, string> = {};
      await pollUntil(`be_dicom servers steadily UP on ${host}`, async () => {
        last = await statuses(host);
        if (Object.keys(last).length === 2 && Object.values(last).every((s) => s === "UP L7OK")) return true;
        throw new Error(JSON.stringify(last));
      }, { timeoutMs: 5_000, intervalMs: 200 });
      t.diagnostic(`${host}: ${JSON.stringify(last)}`);
    }
    const addresses = (await lb.topology.exec("lb2", "ip", ["-4", "-o", "addr", "show"])).stdout;
    assert.doesNotMatch(addresses, new RegExp(` ${vip.replace(/\./g, "\\.")}/`), "the standby does not hold the VIP");
  });

  it("traffic through the active node still reaches the servers from the VIP", async () => {
    const files = generateDicomInstances({ dir: join(lb.topology.workDir, "dicom-src"), count: 2, sizeBytes: 8 * 1024 });
    const store = await storescu(lb.topology, "client1", { address: vip, calledAet: "EI_CORE", timeoutMs: 20_000 }, files.map((f) => f.path));
    assert.equal(store.code, 0, store.output);
    const stored = (await Promise.all(pacs.map((p) => p.storedInstances()))).flat();
    assert.equal(stored.length, 2);
    assert.deepEqual([...new Set(stored.map((s) => s.remoteIp))], [vip], "the servers see the VIP as the source");
  });
});
