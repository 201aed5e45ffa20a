/**
 * haproxy.cfg for clinical sessions (issue 11): exact text of each directive that fixes a defect or adds a
 * feature. The behaviour is proven on the real network by test/e2e/clinical-sessions.e2e.ts,
 * single-node-reload.e2e.ts and pair-source-checks.e2e.ts; every configuration here also passes
 * `haproxy -dW -c` (test/haproxy-validate.test.ts, test/haproxy-trixie.test.ts, test/haproxy-forky.test.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultMaxConnections, haproxyFileDescriptors } from "../lib/config/model";
import { renderHaproxy } from "../lib/haproxy/build";
import { environment, resolve } from "./helpers/env";
import { section } from "./helpers/haproxy";

const render = (patch: Record<string, unknown>) => renderHaproxy(resolve(environment(patch)));
const defaultServer = (cfg: string, backend: string) => section(cfg, `backend ${backend}`).find((l) => l.startsWith("default-server "));

describe("haproxy.cfg for clinical sessions", () => {
  it("defect 1: a DOWN or maintenance server keeps its sessions; the hard cut is an explicit per-service option", () => {
    const cfg = render({});
    assert.ok(!cfg.includes("shutdown-sessions"));
    assert.deepEqual(section(cfg, "defaults").filter((l) => l.startsWith("default-server")), []);
    const hard = render({ services: { app: { shutdownSessionsOnDown: true } } });
    assert.equal(defaultServer(hard, "be_app"), "default-server check inter 5s fall 3 rise 2 port 2000 maxconn 1000 slowstart 30s on-marked-down shutdown-sessions");
  });

  it("defect 3: forwarded-address headers are removed on entry, except from the trusted proxies", () => {
    const cfg = render({ services: { app: { mode: "http", trustedProxies: ["10.5.0.0/16", "10.6.0.1/32"] } } });
    const fe = section(cfg, "frontend fe_app");
    assert.ok(fe.includes("acl trusted_proxies src 10.5.0.0/16 10.6.0.1/32"));
    assert.deepEqual(fe.filter((l) => l.includes("del-header")), [
      "http-request del-header Forwarded unless trusted_proxies",
      "http-request del-header X-Forwarded-For unless trusted_proxies",
      "http-request del-header X-Forwarded-Host unless trusted_proxies",
      "http-request del-header X-Real-IP unless trusted_proxies",
    ]);
  });

  it("defect 5: keep-alive probes start after 120 s idle by default (below firewall idle timers), configurable", () => {
    const cfg = render({ services: { app: { tcpKeepaliveTimers: { idle: "5m", interval: "20s", count: 3 } } } });
    const fe = section(cfg, "frontend fe_app");
    const be = section(cfg, "backend be_app");
    assert.deepEqual(fe.filter((l) => l.includes("clitcpka")), ["option clitcpka", "clitcpka-idle 5m", "clitcpka-intvl 20s", "clitcpka-cnt 3"]);
    assert.deepEqual(be.slice(be.indexOf("option srvtcpka"), be.indexOf("option srvtcpka") + 4), ["option srvtcpka", "srvtcpka-idle 5m", "srvtcpka-intvl 20s", "srvtcpka-cnt 3"]);
    const http = render({ services: { app: { mode: "http" } } });
    assert.ok(!http.includes("tcpka"), "http services keep no idle TCP connections open by default");
  });

  it("defect 6: active-backup shares one never-expiring entry for every sender, synced with the peers", () => {
    const cfg = render({ services: { app: { balance: "active-backup", persistence: { type: "source-ip" } } } });
    const be = section(cfg, "backend be_app");
    assert.ok(be.includes("stick-table type integer size 2 nopurge peers imaging_lb"));
    assert.ok(be.includes("stick on int(1)"));
    assert.ok(!be.includes("stick on src"), "active-backup is its own persistence");
  });

  it("defect 10: HAProxy refuses to start when the stats password is unset or empty", () => {
    const cfg = render({});
    assert.ok(
      cfg.includes(
        [
          ".if !defined(IMAGING_LB_STATS_PASSWORD)",
          '    .alert "IMAGING_LB_STATS_PASSWORD is not set: refusing to start without a stats password (see /etc/imaging-lb/haproxy.env)"',
          '.elif streq("${IMAGING_LB_STATS_PASSWORD}","")',
          '    .alert "IMAGING_LB_STATS_PASSWORD is empty: refusing to start with an empty stats password (see /etc/imaging-lb/haproxy.env)"',
          ".endif",
          "",
          "userlist admins",
        ].join("\n"),
      ),
    );
  });

  it("defect 11: with a fixed source address, the servers are checked from the node's own address and tracked", () => {
    const cfg = render({ services: { app: { clientAddress: "source", sourceAddress: "vip", healthCheck: { type: "tcp" } } } });
    const be = section(cfg, "backend be_app");
    assert.ok(be.includes("source 10.20.2.100"));
    assert.equal(defaultServer(cfg, "be_app"), "default-server maxconn 1000 slowstart 30s");
    assert.ok(!be.includes("timeout check 3s"));
    assert.deepEqual(be.slice(-2), ["server s1 10.20.1.21 track chk_be_app/s1", "server s2 10.20.1.22 track chk_be_app/s2"]);
    assert.deepEqual(section(cfg, "backend chk_be_app"), [
      "description health checks of be_app from the node address (traffic leaves from 10.20.2.100)",
      "mode tcp",
      "balance roundrobin",
      "timeout check 3s",
      "default-server check inter 5s fall 3 rise 2 port 2000",
      "server s1 10.20.1.21",
      "server s2 10.20.1.22",
    ]);
  });

  it("defect 13: every frontend has a share of the global maxconn, stats and health a reserve of their own", () => {
    const cfg = render({ services: { other: { frontendPorts: [3000] } } });
    assert.ok(section(cfg, "global").includes("maxconn 20000"), "c6i.large");
    assert.ok(section(cfg, "frontend fe_app").includes("maxconn 9950"));
    assert.ok(section(cfg, "frontend fe_other").includes("maxconn 9950"));
    assert.ok(section(cfg, "frontend fe_stats").includes("maxconn 50"));
    assert.ok(section(cfg, "frontend fe_health").includes("maxconn 50"));
    const explicit = render({ loadBalancer: { haproxy: { maxConnections: 5000 } }, services: { app: { maxConnections: 1200 } } });
    assert.ok(section(explicit, "global").includes("maxconn 5000"));
    assert.ok(section(explicit, "frontend fe_app").includes("maxconn 1200"));
  });

  it("defect 13: the global maxconn is sized to the instance; the file descriptors it needs are known", () => {
    assert.deepEqual(
      ["t3.small", "c6i.medium", "c6i.large", "m6i.xlarge", "c6i.2xlarge", "c7i.16xlarge"].map(defaultMaxConnections),
      [2000, 10000, 20000, 40000, 80000, 80000],
    );
    assert.equal(haproxyFileDescriptors(20000), 41000);
    assert.ok(section(render({ loadBalancer: { instanceType: "c6i.xlarge" } }), "global").includes("maxconn 40000"));
  });

  it("defect 13: per-server maxconn (the queue applies), slowstart, fin timeouts, consistent source hashing, 308", () => {
    const cfg = render({ services: { app: { balance: "source", serverMaxConnections: 200, slowstart: "1m" } } });
    const be = section(cfg, "backend be_app");
    assert.deepEqual(be.slice(0, 3), ["mode tcp", "balance source", "hash-type consistent"]);
    assert.equal(defaultServer(cfg, "be_app"), "default-server check inter 5s fall 3 rise 2 port 2000 maxconn 200 slowstart 1m");
    const noSlowstart = render({ services: { app: { slowstart: false } } });
    assert.equal(defaultServer(noSlowstart, "be_app"), "default-server check inter 5s fall 3 rise 2 port 2000 maxconn 1000");
    const defaults = section(cfg, "defaults");
    assert.ok(defaults.includes("timeout client-fin 30s") && defaults.includes("timeout server-fin 30s"));
  });

  it("defect 13: servers on the client's port are checked on every front-end port (core: six; DICOM: 104 and 110)", () => {
    const env = resolve(environment({ preset: "agfa-ei", services: { app: null }, vips: { web: { address: "10.20.2.101" }, core: { address: "10.20.2.102" }, main: null } }));
    const cfg = renderHaproxy(env);
    const core = section(cfg, "backend be_core");
    assert.deepEqual(core.filter((l) => l.startsWith("option tcp-check") || l.startsWith("tcp-check")), [
      "option tcp-check",
      ...[80, 443, 4447, 7443, 9080, 10124].map((p) => `tcp-check connect port ${p}`),
    ]);
    assert.ok(!defaultServer(cfg, "be_core")?.includes(" port "));
    const dicom = section(cfg, "backend be_dicom");
    assert.deepEqual(dicom.filter((l) => l.startsWith("tcp-check connect")).map((l) => l.replace(/ comment .*/, "")), [
      "tcp-check connect port 104 linger",
      "tcp-check connect port 110 linger",
    ]);
  });

  it("defect 9: DICOM logs carry the AE titles of the A-ASSOCIATE-RQ, both byte counts and every address:port; HL7 may log at open", () => {
    const cfg = render({ services: { app: { frontendPorts: [104], healthCheck: { type: "dicom-echo" } }, hl7: { frontendPorts: [2310], logAtOpen: true } } });
    const fe = section(cfg, "frontend fe_app");
    assert.ok(fe.includes(`log-format "%ci:%cp %fi:%fp [%t] %ft %b/%s %bi:%bp->%si:%sp %Tw/%Tc/%Tt %U/%B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq calling=%{+Q}[capture.req.hdr(0),rtrim(' ')] called=%{+Q}[capture.req.hdr(1),rtrim(' ')]"`));
    assert.deepEqual(fe.filter((l) => l.startsWith("tcp-request inspect-delay") || l.startsWith("tcp-request content")), [
      "tcp-request inspect-delay 5s",
      "tcp-request content capture req.payload(26,16) len 16 if { req.payload(0,1) -m bin 01 }",
      "tcp-request content capture req.payload(10,16) len 16 if { req.payload(0,1) -m bin 01 }",
    ]);
    assert.ok(!fe.includes("option tcplog"), "log-format replaces tcplog");
    const hl7 = section(cfg, "frontend fe_hl7");
    assert.ok(hl7.includes("option logasap"));
    assert.ok(!hl7.some((l) => l.includes("capture")));
    assert.ok(!section(cfg, "frontend fe_app").includes("option logasap"), "DICOM logs at close, with the byte counts");
  });

  it("defect 8: re-encryption trusts a private CA by reference, verifies the servers' name and sends SNI on checks", () => {
    const cfg = render({
      tls: { certificates: { "hospital-ca": { secretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:test/ca-AbCdEf" } } },
      services: {
        app: { mode: "http", frontendPorts: [443], backendPort: 443, tls: { mode: "reencrypt", certificate: "web", serverName: "ei-core.hospital.local", caCertificate: "hospital-ca" } },
      },
    });
    assert.equal(
      defaultServer(cfg, "be_app"),
      "default-server check inter 5s fall 3 rise 2 port 443 check-ssl check-sni ei-core.hospital.local ssl verify required ca-file /etc/haproxy/certs/hospital-ca.pem sni str(ei-core.hospital.local) verifyhost ei-core.hospital.local maxconn 1000 slowstart 30s",
    );
    assert.throws(
      () => resolve(environment({ services: { app: { mode: "http", frontendPorts: [443], tls: { mode: "reencrypt", certificate: "web" } } } })),
      /services\.app\.tls: missing serverName: re-encryption verifies the name in the servers' certificates/,
    );
    assert.throws(
      () => resolve(environment({ services: { app: { mode: "http", frontendPorts: [443], tls: { mode: "reencrypt", certificate: "web", serverName: "x", caCertificate: "nope" } } } })),
      /services\.app\.tls\.caCertificate: certificate 'nope' is not defined in tls\.certificates \(defined: web\)/,
    );
  });

  it("adds a per-service TLS profile: legacy (TLS 1.0+, CBC) for old DICOM TLS modalities on 2762, terminated in tcp mode", () => {
    const cfg = render({ services: { app: { frontendPorts: [2762], backendPort: 104, tls: { mode: "terminate", certificate: "web", profile: "legacy" } } } });
    const bind = section(cfg, "frontend fe_app").find((l) => l.startsWith("bind "));
    assert.match(bind ?? "", /^bind 10\.20\.2\.100:2762 ssl crt web\.pem ssl-min-ver TLSv1\.0 ciphers ECDHE-ECDSA-AES128-GCM-SHA256:.*:AES128-SHA:AES256-SHA:@SECLEVEL=0$/);
    const modern = render({ services: { app: { frontendPorts: [2762], backendPort: 104, tls: { mode: "terminate", certificate: "web" } } } });
    assert.equal(section(modern, "frontend fe_app").find((l) => l.startsWith("bind ")), "bind 10.20.2.100:2762 ssl crt web.pem");
  });

  it("adds application-cookie persistence: the server's own session cookie, prefixed with the server's name", () => {
    const cfg = render({ services: { app: { mode: "http", persistence: { type: "app-cookie" } } } });
    const be = section(cfg, "backend be_app");
    assert.ok(be.includes("cookie JSESSIONID prefix nocache"));
    assert.deepEqual(be.slice(-2), ["server s1 10.20.1.21 cookie s1", "server s2 10.20.1.22 cookie s2"]);
  });

  it("adds the PROXY protocol towards servers that accept it (traffic and checks) and a per-service connection rate limit", () => {
    const cfg = render({ services: { app: { proxyProtocol: "v2", connectionRateLimit: 50 } } });
    assert.equal(defaultServer(cfg, "be_app"), "default-server check inter 5s fall 3 rise 2 port 2000 check-send-proxy send-proxy-v2 maxconn 1000 slowstart 30s");
    assert.ok(section(cfg, "frontend fe_app").includes("rate-limit sessions 50"));
  });

  it("rejects trusted proxies and application cookies on a tcp service", () => {
    assert.throws(() => resolve(environment({ services: { app: { trustedProxies: ["10.0.0.0/8"] } } })), /trustedProxies.*need mode http/s);
    assert.throws(() => resolve(environment({ services: { app: { persistence: { type: "app-cookie" } } } })), /cookie persistence needs mode http/);
  });
});
