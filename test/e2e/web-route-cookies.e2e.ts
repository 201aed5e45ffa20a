/**
 * Issue 11, defect 7, on the real network: the viewer session keeps its server when the user opens a routed
 * page. The product's rendered haproxy.cfg (examples/agfa-ei-two-arm.yaml with the preset's `xero-xtend`:
 * XERO with /xtend/ routed to port 8080, served here by ei-core-2 only) in front of real Orthancs, driven by a
 * cookie-jar client (every Set-Cookie kept and sent back, as a browser does).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { curl, listNamespaces, RUN_PREFIX, startTestbed, sweepStaleNamespaces, type OrthancServer, type Testbed } from "./harness";

describe("cookie persistence across path routes (defect 7)", { timeout: 120_000 }, () => {
  let bed: Testbed;
  let viewer: readonly OrthancServer[];
  let xtend: readonly OrthancServer[];

  before(async () => {
    sweepStaleNamespaces();
    bed = await startTestbed({
      example: "agfa-ei-two-arm",
      extraHttpPorts: [8080],
      patch: {
        services: {
          core: { enabled: false },
          dicom: { enabled: false },
          hl7: { enabled: false },
          xero: { enabled: false },
          "xero-xtend": {
            enabled: true,
            healthCheck: { path: "/system", interval: "1s" },
            timeouts: { check: "1s" },
            routes: { xtend: { servers: ["ei-core-2"] } },
          },
        },
      },
      waitUp: ["be_xero-xtend"],
    });
    viewer = bed.orthancs.get(104) ?? [];
    xtend = bed.httpOrthancs.get(8080) ?? [];
  });

  after(() => {
    bed?.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  it("a session on ei-core-1 stays there after a page under /xtend/ (served by ei-core-2)", async (t) => {
    const jar = new Map<string, string>();
    const get = async (path: string) => {
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
      const response = await curl(bed.lb.topology, "client1", `https://${bed.vip("web")}${path}`, { insecure: true, ...(cookie ? { cookie } : {}) });
      for (const line of (response.headers["set-cookie"] ?? "").split("\n").filter(Boolean)) {
        const [pair] = line.split(";");
        const eq = pair.indexOf("=");
        jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
      }
      return response;
    };
    const served = (servers: readonly OrthancServer[], uri: string) => servers.findIndex((o) => o.httpRequests().some((r) => r.uri === uri));
    // Start the session on ei-core-1: ei-core-2 drains (no new sessions) for the first request only.
    await bed.product.runtime("set server be_xero-xtend/ei-core-2 state drain");
    await get("/e2e/viewer-1");
    await bed.product.runtime("set server be_xero-xtend/ei-core-2 state ready");
    assert.equal(served(viewer, "/e2e/viewer-1"), 0);
    await get("/xtend/e2e/page");
    assert.equal(served(xtend, "/xtend/e2e/page"), 1, "the route's only server");
    await get("/e2e/viewer-2");
    t.diagnostic(`cookie jar after the route: ${JSON.stringify(Object.fromEntries(jar))}`);
    assert.equal(served(viewer, "/e2e/viewer-2"), 0, "the viewer session did not move to the route's server");
  });
});
