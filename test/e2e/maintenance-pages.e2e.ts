/**
 * Maintenance mode and custom error pages (issue 11, "Add") on the real network, delivered the way a node
 * gets them: every change goes through the environment file's own fields, rendered into the node's bundle,
 * uploaded to an S3 emulator (moto: SIMULATED AWS) and applied by the product's agent (the script the user
 * data installs) to a real HAProxy in master-worker mode (systemd SIMULATED by the harness's stub), in front
 * of real Orthancs; requests are curl through the web VIP (HTTPS, the XERO service of examples/agfa-ei-two-arm.yaml).
 * - maintenance on in the file: 503 + Retry-After + the page for everyone, except an allowed tester source
 *   that still reaches the servers;
 * - the runtime switch (the maintenance map, over the runtime API): off and on again without a reload;
 * - every server down and no sorry server: the service's own 503 page;
 * - a changed 503 page (near the size limit) is applied by the agent with a reload alone, and served whole.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ERROR_PAGE_MAX_BYTES, errorResponse } from "../../lib/config/page-responses";
import { curl, haproxyRuntime, listNamespaces, RUN_PREFIX, sweepStaleNamespaces, waitForApplied, type AgentNode } from "./harness";
import { agentRuntimePaths } from "./harness/agent-node";
import { startRolloutBed, type RolloutBed } from "./harness/rollout-bed";

const MAINTENANCE_HTML = "<!DOCTYPE html><title>XERO maintenance</title><h1>XERO is being upgraded until 22:00</h1>\n";
const DOWN_V1 = "<!DOCTYPE html><title>XERO unavailable</title><h1>XERO is unavailable (v1)</h1>\n";
/** A second 503 page as large as the loader allows (the whole response is ERROR_PAGE_MAX_BYTES). */
function largestPage(): string {
  const frame = (fill: string) => `<!DOCTYPE html><title>XERO unavailable</title><h1>v2</h1><!--${fill}-->\n`;
  const overhead = errorResponse(503, frame("")).length + 3; // Content-Length grows from 2 to 5 digits
  const page = frame("x".repeat(ERROR_PAGE_MAX_BYTES - overhead));
  assert.equal(Buffer.byteLength(errorResponse(503, page)), ERROR_PAGE_MAX_BYTES);
  return page;
}

describe("maintenance mode and error pages, applied by the agent", { timeout: 300_000 }, () => {
  let bed: RolloutBed;
  let node: AgentNode;
  let web: string;
  let tester: string;
  let socket: string;
  let mapFile: string;

  before(async () => {
    sweepStaleNamespaces();
    bed = await startRolloutBed({ pair: false, clients: 2 });
    node = bed.nodes[0];
    web = bed.lb.vips[0];
    tester = bed.lb.topology.address(bed.lb.clients[1], "eth0");
    const paths = agentRuntimePaths(node.root);
    socket = paths.runtimeSocket;
    mapFile = join(paths.errorDir, "maintenance.map");
  });

  after(() => {
    bed?.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  /** Publishes the environment with this xero patch and runs the agent once; resolves when it is applied. */
  const apply = async (xero: Record<string, unknown>) => {
    const env = bed.environment({ services: { xero } });
    const bundles = await bed.publish(env);
    const run = await node.run();
    assert.equal(run.code, 0, run.log);
    await waitForApplied(bed.store, env.configStore.prefix, node.node, bundles[node.node].version, 5000);
    return { env, log: run.log };
  };
  const get = (client: string, path: string) => curl(bed.lb.topology, client, `https://${web}${path}`, { insecure: true });
  /** How many requests for `uri` the Orthancs behind the VIP received. */
  const seen = (uri: string) => bed.orthancs.flatMap((o) => o.httpRequests()).filter((r) => r.uri === uri).length;
  const runtime = (command: string) => haproxyRuntime(socket, command);

  it("maintenance on in the environment file: 503, Retry-After and the page; the tester's source still reaches the servers", async () => {
    await apply({ errorPages: { 503: { html: DOWN_V1 } }, maintenance: { enabled: true, page: { html: MAINTENANCE_HTML }, allowedSources: [`${tester}/32`], retryAfterSeconds: 900 } });
    const user = await get(bed.lb.clients[0], "/e2e/maintenance-user");
    assert.equal(user.status, 503);
    assert.equal(user.headers["retry-after"], "900");
    assert.equal(user.headers["cache-control"], "no-store");
    assert.match(user.headers["content-type"] ?? "", /^text\/html; charset=utf-8$/);
    assert.equal(user.body, MAINTENANCE_HTML);
    assert.equal(seen("/e2e/maintenance-user"), 0, "no server saw the request");
    const testerResponse = await get(bed.lb.clients[1], "/system");
    assert.equal(testerResponse.status, 200, "the allowed source reaches Orthanc");
    assert.match(testerResponse.body, /"DicomAet"/);
  });

  it("the runtime switch: `del map` ends maintenance and `add map` starts it again, without a reload", async () => {
    const pid = await runtime("show info").then((info) => /^Pid: (\d+)$/m.exec(info)?.[1]);
    assert.equal((await runtime(`del map ${mapFile} xero`)).trim(), "");
    const open = await get(bed.lb.clients[0], "/e2e/runtime-off");
    assert.equal(open.status, 404, "Orthanc answers an unknown path: the request reached a server");
    assert.equal(seen("/e2e/runtime-off"), 1);
    assert.equal((await runtime(`add map ${mapFile} xero on`)).trim(), "");
    const closed = await get(bed.lb.clients[0], "/e2e/runtime-on");
    assert.equal(closed.status, 503);
    assert.equal(closed.body, MAINTENANCE_HTML);
    assert.equal(seen("/e2e/runtime-on"), 0);
    assert.equal(await runtime("show info").then((info) => /^Pid: (\d+)$/m.exec(info)?.[1]), pid, "the same worker: no reload");
  });

  it("maintenance off in the file; every server down and no sorry server: the service's own 503 page", async () => {
    await apply({ errorPages: { 503: { html: DOWN_V1 } }, maintenance: { enabled: false, page: { html: MAINTENANCE_HTML }, allowedSources: [`${tester}/32`], retryAfterSeconds: 900 } });
    assert.equal((await get(bed.lb.clients[0], "/e2e/maintenance-off")).status, 404, "served by Orthanc again");
    const names = bed.environment().services.find((s) => s.name === "xero")?.members.map((m) => m.name) ?? [];
    assert.ok(names.length >= 2);
    for (const name of names) assert.equal((await runtime(`set server be_xero/${name} state maint`)).trim(), "");
    const down = await get(bed.lb.clients[0], "/e2e/all-down");
    assert.equal(down.status, 503);
    assert.equal(down.body, DOWN_V1);
    assert.equal(down.headers["cache-control"], "no-store");
    assert.equal(seen("/e2e/all-down"), 0);
  });

  it("a changed 503 page (as large as allowed) is applied with a reload alone and served whole", async () => {
    const pidBefore = /^Pid: (\d+)$/m.exec(await runtime("show info"))?.[1];
    const page = largestPage();
    const { log } = await apply({ errorPages: { 503: { html: page } }, maintenance: { enabled: false, page: { html: MAINTENANCE_HTML }, allowedSources: [`${tester}/32`], retryAfterSeconds: 900 } });
    const pidAfter = /^Pid: (\d+)$/m.exec(await runtime("show info"))?.[1];
    assert.notEqual(pidAfter, pidBefore, `a new worker (reload) for a bundle whose only change is the page; agent log:\n${log}`);
    // The servers stay in maintenance across the reload (server-state-file): the new page answers.
    const down = await get(bed.lb.clients[0], "/e2e/all-down-v2");
    assert.equal(down.status, 503);
    assert.equal(down.body.length, page.length);
    assert.equal(down.body, page);
  });
});
