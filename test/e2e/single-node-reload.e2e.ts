/**
 * Issue 11 on the real network, single node (examples/agfa-ei-two-arm.yaml, one LB):
 * - defect 4: the stick tables survive a reload. HAProxy runs as on the node, in master-worker mode (`-W`),
 *   and is reloaded with SIGUSR2 to the master; the new worker takes the tables over from the old one
 *   through the `peers` section whose only peer is the node itself (`localpeer`).
 * - defect 10: without the stats password (variable unset or empty) HAProxy refuses to start.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { renderHaproxy } from "../../lib/haproxy/build";
import { makeSelfSignedPem, requireTool } from "../helpers/tools";
import {
  buildTwoArm,
  curl,
  haproxyRuntime,
  listNamespaces,
  maxconnOverride,
  pollUntil,
  productEnvironment,
  RUN_PREFIX,
  startOrthanc,
  STATS_PASSWORD_VARIABLE,
  sweepStaleNamespaces,
  TEST_STATS_PASSWORD,
  type LbTopology,
  type NsProcess,
} from "./harness";

describe("single node: stick tables across a reload, no start without the stats password", { timeout: 120_000 }, () => {
  let lb: LbTopology;
  let master: NsProcess;
  let socket: string;
  let configFile: string;
  let web: string;
  const haproxy = requireTool("haproxy", "haproxy");

  before(async () => {
    sweepStaleNamespaces();
    lb = buildTwoArm({ servers: 2, clients: 2, vips: 2 });
    const topo = lb.topology;
    const env = productEnvironment({
      example: "agfa-ei-two-arm",
      lb,
      patch: { services: { core: { enabled: false }, dicom: { enabled: false }, hl7: { enabled: false }, xero: { healthCheck: { path: "/system", interval: "1s" }, timeouts: { check: "1s" } } } },
    });
    web = env.vips.find((v) => v.name === "web")?.address ?? "";
    await Promise.all(lb.servers.map((host) => startOrthanc(topo, { host, aet: "EI_CORE", httpPort: 80 })));
    makeSelfSignedPem(topo.workDir, "web");
    socket = join(topo.workDir, "haproxy.sock");
    const config = renderHaproxy(env, { runtimeSocket: socket, chroot: false, certBase: topo.workDir });
    configFile = join(topo.workDir, "haproxy.cfg");
    writeFileSync(configFile, config);
    const override = maxconnOverride(config);
    master = topo.spawn("lb", haproxy, ["-W", "-db", "-f", configFile, ...(override === undefined ? [] : ["-n", String(override)])], {
      env: { ...process.env, [STATS_PASSWORD_VARIABLE]: TEST_STATS_PASSWORD },
    });
    await topo.waitForListen("lb", web, 443, { timeoutMs: 10_000, process: master });
    await pollUntil("be_xero servers UP", async () => {
      const stat = await haproxyRuntime(socket, "show stat");
      const up = stat.split("\n").filter((l) => l.startsWith("be_xero,ei-core-") && l.includes(",UP,")).length;
      if (up === 2) return true;
      throw new Error(`${up} of 2 UP`);
    }, { timeoutMs: 20_000, intervalMs: 200 });
  });

  after(() => {
    lb?.topology.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  const workerPid = async () => Number(/^Pid: (\d+)$/m.exec(await haproxyRuntime(socket, "show info"))?.[1]);
  const entries = async (table: string) => (await haproxyRuntime(socket, `show table ${table}`)).split("\n").filter((l) => /^0x[0-9a-f]+: key=/.test(l));

  it("defect 4: `show table` keeps its entries across a reload (SIGUSR2 to the master)", async (t) => {
    for (const client of lb.clients) {
      const response = await curl(lb.topology, client, `https://${web}/system`, { insecure: true });
      assert.equal(response.status, 200);
    }
    const beforeReload = await entries("be_xero");
    assert.equal(beforeReload.length, 2, `one entry per client:\n${beforeReload.join("\n")}`);
    // A fresh process first waits (about 4 s) for a teacher of its own; only a process whose resync has
    // finished (`show peers` flags 0x3 set) teaches its successor. Reloads come long after start on a node.
    await pollUntil("the peers resync of the running worker to finish", async () => {
      const flags = Number(/ flags=(0x[0-9a-f]+)/.exec(await haproxyRuntime(socket, "show peers"))?.[1] ?? "0");
      if ((flags & 0x3) === 0x3) return true;
      throw new Error(`flags 0x${flags.toString(16)}`);
    }, { timeoutMs: 10_000, intervalMs: 250 });
    const oldWorker = await workerPid();
    process.kill(master.pid, "SIGUSR2");
    await pollUntil("a new worker answers on the runtime socket", async () => {
      const pid = await workerPid();
      if (pid && pid !== oldWorker) return true;
      throw new Error(`worker still ${pid}`);
    }, { timeoutMs: 15_000, intervalMs: 200 });
    // The old worker pushes its tables to the new one over the local peer while it stops.
    let afterReload: string[] = [];
    await pollUntil("the entries in the new worker", async () => {
      afterReload = await entries("be_xero");
      if (afterReload.length >= 2) return true;
      throw new Error(`${afterReload.length} entries`);
    }, { timeoutMs: 5_000, intervalMs: 200 }).catch(() => undefined);
    t.diagnostic(`show table be_xero: ${beforeReload.length} entries before, ${afterReload.length} after the reload (worker ${oldWorker} → ${await workerPid()})`);
    assert.equal(afterReload.length, 2, "the new worker has the old worker's entries");
    const key = (line: string) => /key=(\S+)/.exec(line)?.[1];
    const server = (line: string) => /server_id=(\d+)/.exec(line)?.[1];
    assert.deepEqual(afterReload.map((l) => [key(l), server(l)]).sort(), beforeReload.map((l) => [key(l), server(l)]).sort(), "same clients on the same servers");
    master.assertRunning();
  });

  it("defect 10: with the stats password unset or empty, haproxy -c fails and HAProxy does not start", async () => {
    const withoutPassword: NodeJS.ProcessEnv = { ...process.env };
    delete withoutPassword[STATS_PASSWORD_VARIABLE];
    for (const [label, env] of [
      ["unset", withoutPassword],
      ["empty", { ...withoutPassword, [STATS_PASSWORD_VARIABLE]: "" }],
    ] as const) {
      const check = await lb.topology.exec("lb", haproxy, ["-c", "-f", configFile], { env });
      assert.equal(check.code, 1, `${label}: haproxy -c fails\n${check.stdout}${check.stderr}`);
      assert.match(check.stderr + check.stdout, new RegExp(`${STATS_PASSWORD_VARIABLE} is ${label === "unset" ? "not set" : "empty"}: refusing to start`));
      // A real start exits at once, while parsing (before it would bind the listeners the running one holds).
      const start = await lb.topology.exec("lb", haproxy, ["-db", "-f", configFile], { env, timeoutMs: 10_000 });
      assert.equal(start.timedOut, false, `${label}: HAProxy did not keep running`);
      assert.notEqual(start.code, 0, `${label}: HAProxy exits with an error`);
      assert.match(start.stderr + start.stdout, /refusing to start/);
    }
    const withPassword = await lb.topology.exec("lb", haproxy, ["-c", "-f", configFile], { env: { ...withoutPassword, [STATS_PASSWORD_VARIABLE]: TEST_STATS_PASSWORD } });
    assert.equal(withPassword.code, 0, withPassword.stdout + withPassword.stderr);
  });
});
