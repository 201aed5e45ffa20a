/**
 * The product's rendered haproxy.cfg (examples/agfa-ei-two-arm.yaml mapped to the test ranges): the XERO web
 * service with TLS termination on the VIP, HTTP → HTTPS redirect, cookie persistence, X-Forwarded-For /
 * X-Forwarded-Proto at the server, a path route to its own backend port, and the stats / Prometheus
 * frontend on LB eth0 for the admin network only. Servers: real Orthancs (HTTP on 80; a second Orthanc on
 * 8080 per server as the route's backend), whose Lua filter records every request's peer and headers.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { curl, curlRefused, listNamespaces, RUN_PREFIX, startTestbed, sweepStaleNamespaces, TEST_STATS_PASSWORD, type Testbed } from "./harness";

const ROUTE_PORT = 8080;

describe("product config, two-arm: web (XERO) and admin endpoints", { timeout: 120_000 }, () => {
  let bed: Testbed;
  let vip: string;

  before(async () => {
    sweepStaleNamespaces();
    bed = await startTestbed({
      example: "agfa-ei-two-arm",
      topology: { adminHost: true, clients: 2 },
      extraHttpPorts: [ROUTE_PORT],
      patch: {
        services: {
          xero: {
            // Orthanc answers 404 on "/" (its explorer is off): check a path it serves, as a site sets XERO's.
            healthCheck: { interval: "1s", path: "/system" },
            timeouts: { check: "1s" },
            // A path route as the xero-xtend preset variant has it, stripped so Orthanc's /system answers.
            routes: { xtend: { pathPrefixes: ["/xtend/"], backendPort: ROUTE_PORT, stripPrefix: true } },
          },
        },
      },
      waitUp: ["be_xero"],
    });
    vip = bed.vip("web");
  });

  after(() => {
    bed?.destroy();
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  /** Requests logged by Orthancs, without the LB's health checks. */
  const served = (port: "main" | "route") =>
    (port === "main" ? (bed.orthancs.get(104) ?? []) : (bed.httpOrthancs.get(ROUTE_PORT) ?? []))
      .flatMap((o) => o.httpRequests())
      .filter((r) => r.peer !== "127.0.0.1" && r.headers["user-agent"] !== "imaging-lb-check");

  /** Orthanc's `Name` (the topology host) from `/system` through the VIP. */
  const systemName = (body: string): string => (JSON.parse(body) as { Name: string }).Name;

  it("terminates TLS on the VIP (h2 via ALPN) and forwards to the servers' plain HTTP port", async () => {
    const response = await curl(bed.lb.topology, "client1", `https://${vip}/system`, { insecure: true });
    assert.equal(response.status, 200, response.body);
    assert.equal(response.protocol, "HTTP/2");
    assert.ok(bed.lb.servers.includes(systemName(response.body)));
    assert.equal(response.headers["strict-transport-security"], "max-age=31536000");
    const cert = await bed.lb.topology.exec("client1", "bash", ["-c", `openssl s_client -connect ${vip}:443 </dev/null 2>/dev/null | openssl x509 -noout -subject`]);
    assert.match(cert.stdout, /CN\s*=\s*web/, "the certificate named in the environment is served");
  });

  it("redirects HTTP on port 80 to HTTPS (308: the method is kept)", async () => {
    const response = await curl(bed.lb.topology, "client1", `http://${vip}/zfp?PatientID=1`);
    assert.equal(response.status, 308);
    assert.equal(response.headers.location, `https://${vip}/zfp?PatientID=1`);
    const peers = served("main").filter((r) => r.uri === "/zfp");
    assert.equal(peers.length, 0, "the redirect is answered by the LB");
  });

  it("inserts a persistence cookie and keeps each cookie's requests on its server", async (t) => {
    const topo = bed.lb.topology;
    const first = await curl(topo, "client1", `https://${vip}/system`, { insecure: true });
    const setCookie = first.headers["set-cookie"] ?? "";
    // maxidle appends the cookie's date: SERVERID=<server>|<date>.
    const match = /^(SERVERID=(ei-core-[12])\|[^;]+); path=\/; HttpOnly; Secure$/i.exec(setCookie);
    assert.ok(match, setCookie);
    const [, cookie, cookieServer] = match;
    const expectedHost = bed.lb.servers[bed.serverNames.indexOf(cookieServer)];
    assert.equal(systemName(first.body), expectedHost);
    t.diagnostic(`first response: ${setCookie}`);
    // The cookie decides, not the source: client2 (no stick-table entry) carrying client1's cookie.
    // With maxidle HAProxy may answer a valid cookie with a refreshed one (same server, newer date); what
    // it promises is that the cookie keeps naming the same server, so that is what is asserted.
    for (const client of ["client1", "client2"]) {
      for (let n = 0; n < 5; n += 1) {
        const response = await curl(topo, client, `https://${vip}/system`, { insecure: true, cookie });
        assert.equal(systemName(response.body), expectedHost, `${client} with ${cookie}`);
        const refreshed = response.headers["set-cookie"];
        if (refreshed !== undefined) {
          const again = /^SERVERID=([^|;]+)\|[^;]+; path=\/; HttpOnly; Secure$/i.exec(refreshed);
          assert.ok(again, `a refreshed cookie has the inserted cookie's form: ${refreshed}`);
          assert.equal(again[1], cookieServer, `a valid cookie for ${cookieServer} is only ever refreshed for the same server: ${refreshed}`);
        }
      }
    }
    // A cookie naming the other server overrides client1's source-IP stickiness.
    const other = bed.serverNames.find((name) => name !== cookieServer) ?? "";
    for (let n = 0; n < 5; n += 1) {
      const response = await curl(topo, "client1", `https://${vip}/system`, { insecure: true, cookie: `SERVERID=${other}` });
      assert.equal(systemName(response.body), bed.lb.servers[bed.serverNames.indexOf(other)], `cookie SERVERID=${other}`);
    }
  });

  it("the server sees X-Forwarded-For (client), X-Forwarded-Proto https and the LB's eth0 address as peer", async () => {
    const response = await curl(bed.lb.topology, "client1", `https://${vip}/tools/now`, { insecure: true });
    assert.equal(response.status, 200);
    const requests = served("main").filter((r) => r.uri === "/tools/now");
    const last = requests[requests.length - 1];
    assert.ok(last, "Orthanc logged the request");
    assert.equal(last.peer, bed.lb.lbInternalAddress, "SNAT: the TCP peer is LB eth0");
    assert.equal(last.headers["x-forwarded-for"], "192.0.2.10");
    assert.equal(last.headers["x-forwarded-proto"], "https");
    assert.equal(last.headers["x-forwarded-port"], "443");
  });

  it("a path route sends its prefix to the route's backend port (prefix stripped), other paths to the main one", async () => {
    const routed = await curl(bed.lb.topology, "client1", `https://${vip}/xtend/system`, { insecure: true });
    assert.equal(routed.status, 200, routed.body);
    assert.match(systemName(routed.body), new RegExp(`^srv[12]-${ROUTE_PORT}$`));
    const main = await curl(bed.lb.topology, "client1", `https://${vip}/system`, { insecure: true });
    assert.match(systemName(main.body), /^srv[12]$/);
    const routeRequests = served("route");
    assert.ok(routeRequests.some((r) => r.uri === "/system" && r.headers["x-forwarded-for"] === "192.0.2.10"), JSON.stringify(routeRequests));
  });

  it("/metrics on LB eth0: 401 without and 200 with credentials from the admin network; other addresses refused", async () => {
    const admin = bed.lb.admin;
    assert.ok(admin);
    const url = `http://${bed.lb.lbInternalAddress}:8404/metrics`;
    const anonymous = await curl(bed.lb.topology, admin.host, url);
    assert.equal(anonymous.status, 401);
    const wrong = await curl(bed.lb.topology, admin.host, url, { headers: [`Authorization: Basic ${Buffer.from("admin:wrong").toString("base64")}`] });
    assert.equal(wrong.status, 401);
    const authorised = await curl(bed.lb.topology, admin.host, url, {
      headers: [`Authorization: Basic ${Buffer.from(`admin:${TEST_STATS_PASSWORD}`).toString("base64")}`],
    });
    assert.equal(authorised.status, 200);
    assert.match(authorised.body, /^haproxy_backend_status\{proxy="be_dicom"/m);
    // A non-admin address is refused by the LB (tcp-request connection reject): no HTTP answer at all,
    // however the client's curl reports the closed connection (empty reply, reset, send failure).
    const refusal = await curlRefused(bed.lb.topology, bed.lb.servers[0], url);
    assert.ok(refusal.message.length > 0, "curl says why the connection failed");
  });
});
