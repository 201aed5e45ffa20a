/**
 * The `haproxy -dW -c` validation suite of rendered configurations (warnings are errors): the bundled
 * examples on each node and a matrix of option combinations. Run against Debian 12's HAProxy 2.6
 * (test/haproxy-validate.test.ts), Debian 13's 3.0 in a trixie root (test/haproxy-trixie.test.ts) and Debian
 * forky's 3.2 in a forky root (test/haproxy-forky.test.ts).
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError } from "../../lib/config/errors";
import { parse, stringify } from "yaml";
import { loadEnvironment, parseEnvironment } from "../../lib/load/load";
import { ResolvedEnvironment } from "../../lib/config/model";
import { renderHaproxy } from "../../lib/haproxy/build";
import { errorPageFiles } from "../../lib/haproxy/error-pages";
import { ERROR_PAGE_MAX_BYTES } from "../../lib/config/page-responses";
import { environment, resolve } from "./env";
import { addThirdZone } from "./nlb-three";
import type { HaproxyCheckOptions, HaproxyCheckResult } from "./haproxy";

const EXAMPLES = join(__dirname, "..", "..", "..", "examples");
const STATS_ENV = { IMAGING_LB_STATS_PASSWORD: "test-password" };

/** An HAProxy to validate with: where to put the files it reads, and how to run `-dW -c` on a config. */
export interface HaproxyValidator {
  /** Creates the folder the configuration and PEMs go into; returns it with its cleanup. */
  setUp(): { path: string; cleanup: () => void };
  /** The `crt-base` HAProxy sees for files written into `dir` (differs under chroot). */
  certBase(dir: string): string;
  /** Writes the PEM `name` into `dir`. */
  writePem(dir: string, name: string): void;
  check(dir: string, config: string, options: HaproxyCheckOptions): HaproxyCheckResult;
}

/** Declares the validation suite `title` for `validator`. */
export function describeHaproxyValidation(title: string, validator: () => HaproxyValidator): void {
  describe(title, () => {
    let dir: { path: string; cleanup: () => void };
    let v: HaproxyValidator;
    before(() => {
      v = validator();
      dir = v.setUp();
      v.writePem(dir.path, "web");
      v.writePem(dir.path, "hospital-ca");
    });
    after(() => dir?.cleanup());

    const check = (env: ResolvedEnvironment) => {
      // The error pages and maintenance map the bundle installs, written where this HAProxy reads them.
      for (const f of errorPageFiles(env)) {
        mkdirSync(dirname(join(dir.path, "errors", f.name)), { recursive: true });
        writeFileSync(join(dir.path, "errors", f.name), f.content);
      }
      for (const node of env.nodes) {
        // ha.vipMode nlb: each node has its own haproxy.cfg (its VIP addresses); otherwise one for all.
        const nlb = env.ha?.vipMode === "nlb" ? { node: node.name } : {};
        const cfg = renderHaproxy(env, { certBase: v.certBase(dir.path), errorDir: join(v.certBase(dir.path), "errors"), ...nlb });
        const result = v.check(dir.path, cfg, { localPeer: env.nodes.length >= 2 ? node.name : undefined, env: STATS_ENV });
        assert.ok(result.ok, `haproxy rejected the config of ${env.name} on ${node.name}:\n${result.output}\n---\n${cfg}`);
      }
    };
    const examples = readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"));
    it("has the five bundled examples", () => {
      assert.deepEqual(examples.sort(), ["agfa-ei-baked.yaml", "agfa-ei-ha-pair.yaml", "agfa-ei-nlb.yaml", "agfa-ei-one-arm.yaml", "agfa-ei-two-arm.yaml"]);
    });
    for (const file of examples) {
      it(`accepts examples/${file} on every node`, () => check(loadEnvironment(join(EXAMPLES, file))));
    }

    it("accepts three nodes behind NLBs (examples/agfa-ei-nlb.yaml with lb-c in a third zone) on each of the three", () => {
      const doc = parse(readFileSync(join(EXAMPLES, "agfa-ei-nlb.yaml"), "utf8")) as Record<string, unknown>;
      addThirdZone(doc);
      const env = parseEnvironment(stringify(doc), "agfa-ei-nlb-3.yaml");
      assert.equal(env.nodes.length, 3);
      check(env);
    });

    it("accepts the AGFA preset with XERO Xtend routing enabled", () => {
      check(resolve(environment({ preset: "agfa-ei", services: { app: null, "xero-xtend": { enabled: true }, xero: { enabled: false } }, vips: { web: { address: "10.20.2.101" }, core: { address: "10.20.2.102" }, main: null } })));
    });

    it("rejects a broken configuration (the check can fail)", () => {
      const env = resolve(environment({ services: { app: { extraDirectives: { backend: ["balance no-such-algorithm"] } } } }));
      const result = v.check(dir.path, renderHaproxy(env, { certBase: v.certBase(dir.path) }), { env: STATS_ENV });
      assert.equal(result.ok, false);
      assert.match(result.output, /balance only supports/);
    });

    // The option matrix: each combination the schema accepts, rendered and checked.
    const modes = [
      { mode: "tcp", tls: { mode: "none" } },
      { mode: "tcp", tls: { mode: "passthrough" } },
      { mode: "tcp", tls: { mode: "terminate", certificate: "web" } },
      { mode: "http", tls: { mode: "none" } },
      { mode: "http", tls: { mode: "terminate", certificate: "web", redirectHttpPort: 2080, hsts: true } },
      { mode: "http", tls: { mode: "reencrypt", certificate: "web", serverName: "ei.internal" } },
      { mode: "http", tls: { mode: "reencrypt", certificate: "web", verifyServer: "none" } },
    ];
    const persistences = ["none", "source-ip", "cookie", "cookie-source"];
    const balances = ["leastconn", "roundrobin", "source", "active-backup"];
    const checks = [{ type: "tcp" }, { type: "tls" }, { type: "http", path: "/health", expectStatus: "200" }, { type: "dicom-echo", calledAeTitle: "PACS" }, { type: "dicom-echo", variant: "associate" }, { type: "none" }];
    const clientAddresses = ["snat", "forwarded-for", "tproxy", "source"];

    it("accepts every valid combination of mode, TLS, persistence, balance, check and client address", () => {
      let checked = 0;
      let rejectedBySchema = 0;
      for (const m of modes) {
        for (const persistence of persistences) {
          for (const [i, healthCheck] of checks.entries()) {
            const balance = balances[(i + persistences.indexOf(persistence)) % balances.length];
            const clientAddress = clientAddresses[(i + modes.indexOf(m)) % clientAddresses.length];
            const service: Record<string, unknown> = {
              frontendPorts: [2000, 2001],
              backendPort: 3000,
              mode: m.mode,
              tls: m.tls,
              balance,
              persistence: { type: persistence },
              healthCheck,
              clientAddress,
              ...(clientAddress === "source" ? { sourceAddress: "vip" } : {}),
              ...(m.mode === "http"
                ? {
                    requestHeaders: { set: { "X-Site": "test" }, delete: ["X-Internal"] },
                    responseHeaders: { delete: ["Server"] },
                    routes: { api: { pathPrefixes: ["/api/"], stripPrefix: true } },
                    rewrites: [{ match: "^/old/(.*)", replace: "/new/\\1" }],
                  }
                : {}),
            };
            let env: ResolvedEnvironment;
            try {
              env = resolve(environment({ services: { app: service } }));
            } catch (e) {
              assert.ok(e instanceof ConfigError, `unexpected ${String(e)}`);
              rejectedBySchema++;
              continue;
            }
            check(env);
            checked++;
          }
        }
      }
      // The schema rejects the impossible ones (cookies in tcp, forwarded-for in tcp, DICOM checks in http, ...).
      assert.ok(checked >= 60, `only ${checked} combinations were valid (${rejectedBySchema} rejected)`);
      assert.ok(rejectedBySchema > 0);
    });

    it("accepts error pages (every status, the largest allowed) and maintenance mode (on with allowed sources, off, own page), with routes, a sorry server and a pair", () => {
      // The largest page the loader accepts: the whole 503 response is exactly ERROR_PAGE_MAX_BYTES.
      const headers = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 14841\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
      const largest = `<p>${"x".repeat(ERROR_PAGE_MAX_BYTES - headers.length - 7)}</p>`;
      assert.equal(headers.length + largest.length, ERROR_PAGE_MAX_BYTES);
      const pages = Object.fromEntries(["400", "403", "408", "429", "500", "502", "504"].map((code) => [code, { html: `<h1>${code}</h1>` }]));
      const env = resolve(
        environment({
          loadBalancer: { nodes: { "lb-b": { internalAddress: "10.20.1.11", externalAddress: "10.20.2.11" } } },
          services: {
            app: { mode: "http", errorPages: { ...pages, 503: { html: largest } }, maintenance: { enabled: true, allowedSources: ["10.9.0.0/24", "10.8.0.1/32"], retryAfterSeconds: 120 } },
            web: {
              frontendPorts: [443],
              mode: "http",
              tls: { mode: "terminate", certificate: "web", redirectHttpPort: 80 },
              persistence: { type: "cookie-source" },
              sorryServer: { address: "10.20.1.99", port: 8080 },
              routes: { x: { pathPrefixes: ["/x/"] } },
              errorPages: { 503: { html: "<h1>Back soon</h1>" } },
              maintenance: { enabled: false, page: { html: "<h1>Maintenance \u00e9t\u00e9</h1>" } },
            },
          },
        }),
      );
      assert.equal(errorPageFiles(env).find((f) => f.name === "app/503.http")?.content.length, ERROR_PAGE_MAX_BYTES);
      check(env);
    });

    it("accepts an HA pair on both nodes with every persistence type synced", () => {
      check(
        resolve(
          environment({
            loadBalancer: { nodes: { "lb-b": { internalAddress: "10.20.1.11", externalAddress: "10.20.2.11" } } },
            services: {
              app: { persistence: { type: "source-ip" } },
              web: { frontendPorts: [443], mode: "http", tls: { mode: "terminate", certificate: "web" }, persistence: { type: "cookie-source" } },
            },
          }),
        ),
      );
    });

    it("accepts the issue-11 options: hard cut, trusted proxies, keep-alive timers, app cookie, PROXY protocol, rate limit, sorry server, source-address checks, DICOM/HL7 over TLS, legacy profile, private CA", () => {
      check(
        resolve(
          environment({
            loadBalancer: { haproxy: { maxConnections: 4000 } },
            services: {
              app: {
                shutdownSessionsOnDown: true,
                tcpKeepaliveTimers: { idle: "60s", interval: "10s", count: 5 },
                proxyProtocol: "v1",
                connectionRateLimit: 100,
                serverMaxConnections: 50,
                slowstart: false,
                sorryServer: { address: "10.20.1.99", port: 2999 },
                clientAddress: "source",
                sourceAddress: "vip",
                balance: "source",
              },
              web: {
                frontendPorts: [443],
                mode: "http",
                tls: { mode: "terminate", certificate: "web" },
                persistence: { type: "app-cookie" },
                trustedProxies: ["10.9.0.0/16"],
                proxyProtocol: "v2",
                sorryServer: { address: "10.20.1.99", port: 8080 },
                routes: { x: { pathPrefixes: ["/x/"] } },
              },
              dicom: { frontendPorts: [104, 110], healthCheck: { type: "dicom-echo" }, balance: "active-backup" },
              "dicom-tls": { frontendPorts: [2762], backendPort: 104, tls: { mode: "terminate", certificate: "web", profile: "legacy" }, healthCheck: { type: "dicom-echo" } },
              "hl7-tls": { frontendPorts: [2575], backendPort: 2310, tls: { mode: "terminate", certificate: "web" }, logAtOpen: true },
              viewer: {
                frontendPorts: [8443],
                backendPort: 443,
                mode: "http",
                tls: { mode: "reencrypt", certificate: "web", serverName: "ei-core.hospital.local", caCertificate: "hospital-ca" },
              },
            },
            tls: { certificates: { "hospital-ca": { secretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:test/ca-AbCdEf" } } },
          }),
        ),
      );
    });
  });
}
