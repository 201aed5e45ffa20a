/**
 * Error pages and maintenance mode of http services (issue 11, "Add"): the exact haproxy.cfg lines, the exact
 * files the configuration bundle carries, and the loader's located errors. Every configuration here also
 * passes `haproxy -dW -c` (the matrix in test/helpers/haproxy-matrix.ts, on 2.6 and 3.0); the behaviour is
 * proven with real traffic by test/e2e/maintenance-pages.e2e.ts.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { stringify } from "yaml";
import { isAgentFile, nodeBundle } from "../lib/node/bundle";
import { ConfigError } from "../lib/config/errors";
import { expandEnvironment, loadEnvironment } from "../lib/load/load";
import { renderHaproxy } from "../lib/haproxy/build";
import { errorPageFiles } from "../lib/haproxy/error-pages";
import { DEFAULT_MAINTENANCE_HTML, ERROR_PAGE_MAX_BYTES, errorResponse } from "../lib/config/page-responses";
import { environment, resolve } from "./helpers/env";
import { section } from "./helpers/haproxy";
import { tempDir } from "./helpers/tools";

const httpApp = (extra: Record<string, unknown>) => environment({ services: { app: { mode: "http", ...extra } } });

/** The problems of an environment the loader refuses (fails when it is accepted). */
function problems(fixture: Record<string, unknown>, file = "site.yaml"): string[] {
  try {
    resolve(fixture, file);
  } catch (e) {
    if (e instanceof ConfigError) return e.message.split("\n").slice(1).map((l) => l.trim());
    throw e;
  }
  assert.fail("the loader accepted the environment");
}

describe("error pages and maintenance mode", () => {
  it("renders an http-errors section per service and points the frontend at it", () => {
    const cfg = renderHaproxy(resolve(httpApp({ errorPages: { 504: { html: "<p>slow</p>" }, 502: { html: "<p>bad</p>" }, 503: { html: "<p>down</p>" } } })));
    assert.deepEqual(section(cfg, "http-errors errors_app"), [
      "errorfile 502 /etc/haproxy/errors/app/502.http",
      "errorfile 503 /etc/haproxy/errors/app/503.http",
      "errorfile 504 /etc/haproxy/errors/app/504.http",
    ]);
    const fe = section(cfg, "frontend fe_app");
    assert.equal(fe.filter((l) => l.startsWith("errorfiles")).join("|"), "errorfiles errors_app");
    // Sections come after the userlists and before the frontends.
    assert.ok(cfg.indexOf("userlist admins") < cfg.indexOf("http-errors errors_app") && cfg.indexOf("http-errors errors_app") < cfg.indexOf("frontend fe_app"));
    assert.ok(!cfg.includes("maintenance"), "no maintenance rule without a maintenance block");
  });

  it("writes each page as a complete HTTP response (CRLF, byte length, no caching, connection closed)", () => {
    const env = resolve(httpApp({ errorPages: { 503: { html: "<p>été</p>" } } }));
    assert.deepEqual(errorPageFiles(env), [
      {
        name: "app/503.http",
        content:
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 12\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n<p>été</p>",
      },
    ]);
  });

  it("maintenance: a map-switched 503 with Retry-After and the page, testers let through", () => {
    const cfg = renderHaproxy(resolve(httpApp({ maintenance: { enabled: true, allowedSources: ["10.9.0.0/24", "10.8.0.1/32"], retryAfterSeconds: 120 } })));
    const fe = section(cfg, "frontend fe_app");
    assert.ok(fe.includes("acl maintenance str(app),map(/etc/haproxy/errors/maintenance.map,off) -m str on"));
    assert.ok(fe.includes("acl maintenance_allowed src 10.9.0.0/24 10.8.0.1/32"));
    const rules = fe.filter((l) => l.startsWith("http-request "));
    assert.equal(
      rules[0],
      'http-request return status 503 content-type "text/html; charset=utf-8" hdr Retry-After 120 hdr Cache-Control no-store file /etc/haproxy/errors/app/maintenance.html if maintenance !maintenance_allowed',
      "the first http-request rule: nothing else is done for a request answered with the maintenance page",
    );
  });

  it("maintenance: without allowed sources every client gets the page; after the HTTPS redirect", () => {
    const cfg = renderHaproxy(resolve(httpApp({ frontendPorts: [443], tls: { mode: "terminate", certificate: "web", redirectHttpPort: 80 }, maintenance: { enabled: false } })));
    const rules = section(cfg, "frontend fe_app").filter((l) => l.startsWith("http-request "));
    assert.deepEqual(rules.slice(0, 2), [
      "http-request redirect scheme https code 308 unless { ssl_fc }",
      'http-request return status 503 content-type "text/html; charset=utf-8" hdr Retry-After 600 hdr Cache-Control no-store file /etc/haproxy/errors/app/maintenance.html if maintenance',
    ]);
    assert.ok(!cfg.includes("maintenance_allowed"));
  });

  it("the maintenance map holds the services switched on in the file; the built-in page when none is given", () => {
    const env = resolve(
      environment({
        vips: { web: { address: "10.20.2.101" } },
        services: {
          app: { mode: "http", vip: "main", maintenance: { enabled: true } },
          web: { mode: "http", vip: "web", frontendPorts: [80], maintenance: { enabled: false, page: { html: "<h1>Wartung</h1>" } } },
        },
      }),
    );
    const files = Object.fromEntries(errorPageFiles(env).map((f) => [f.name, f.content]));
    assert.deepEqual(Object.keys(files), ["app/maintenance.html", "maintenance.map", "web/maintenance.html"]);
    assert.equal(files["app/maintenance.html"], DEFAULT_MAINTENANCE_HTML);
    assert.equal(files["web/maintenance.html"], "<h1>Wartung</h1>");
    assert.equal(files["maintenance.map"], "# Services in maintenance (imaging-lb). At run time: add map <this file> <service> on / del map <this file> <service>.\napp on\n");
  });

  it("ships the pages in the configuration bundle; a page change changes that file (and the version) only", () => {
    const before = nodeBundle(resolve(httpApp({ errorPages: { 503: { html: "<p>v1</p>" } }, maintenance: { enabled: false } })), "lb-a");
    const after = nodeBundle(resolve(httpApp({ errorPages: { 503: { html: "<p>v2</p>" } }, maintenance: { enabled: false } })), "lb-a");
    assert.deepEqual(
      before.files.filter((f) => !isAgentFile(f.path)).map((f) => `${f.mode} ${f.path}`),
      [
        "0644 /etc/haproxy/errors/app/503.http",
        "0644 /etc/haproxy/errors/app/maintenance.html",
        "0644 /etc/haproxy/errors/maintenance.map",
        "0640 /etc/haproxy/haproxy.cfg",
        "0644 /etc/imaging-lb/bundle.env",
        "0644 /etc/imaging-lb/secrets.list",
      ],
    );
    const changed = after.files.filter((f) => before.files.find((b) => b.path === f.path)?.sha256 !== f.sha256).map((f) => f.path);
    assert.deepEqual(changed, ["/etc/haproxy/errors/app/503.http"]);
    assert.notEqual(before.version, after.version);
  });

  it("reads a page file relative to the environment file's folder", () => {
    const dir = tempDir("error-pages");
    try {
      mkdirSync(join(dir.path, "site", "pages"), { recursive: true });
      writeFileSync(join(dir.path, "site", "pages", "503.html"), "<h1>from a file</h1>\n");
      writeFileSync(join(dir.path, "site", "prod.yaml"), stringify(httpApp({ errorPages: { 503: { file: "pages/503.html" } } })));
      const env = loadEnvironment(join(dir.path, "site", "prod.yaml"));
      assert.deepEqual(env.services[0].errorPages, [{ status: 503, html: "<h1>from a file</h1>\n" }]);
    } finally {
      dir.cleanup();
    }
  });

  it("refuses, with file, line, field and what is allowed: a missing file, file and html together, tcp services, unknown statuses, oversized pages", () => {
    const big = "x".repeat(ERROR_PAGE_MAX_BYTES);
    const found = problems(
      environment({
        vips: { web: { address: "10.20.2.101" } },
        services: {
          app: { vip: "main", errorPages: { 503: { html: "<p>tcp</p>" } }, maintenance: { enabled: true } },
          web: {
            mode: "http",
            vip: "web",
            frontendPorts: [80],
            errorPages: { 502: { file: "missing.html" }, 503: { file: "a.html", html: "<p>both</p>" }, 504: { html: big } },
            maintenance: { enabled: true, page: { html: big } },
          },
        },
      }),
      "sites/prod.yaml",
    );
    const expected = [
      /^sites\/prod\.yaml:\d+:\d+ services\.app\.errorPages: error pages need mode http \(this service is mode tcp\)$/,
      /^sites\/prod\.yaml:\d+:\d+ services\.app\.maintenance: maintenance pages need mode http \(this service is mode tcp\)$/,
      /^sites\/prod\.yaml:\d+:\d+ services\.web\.errorPages\.502\.file: "missing\.html" \(sites\/missing\.html\): no such file; expected an HTML file, relative to the environment file's folder$/,
      /^sites\/prod\.yaml:\d+:\d+ services\.web\.errorPages\.503: expected exactly one of file \(an HTML file, relative to the environment file\) or html \(the page inline\), got both$/,
      /^sites\/prod\.yaml:\d+:\d+ services\.web\.errorPages\.504: the 504 response would be 15139 bytes \(page and headers\); HAProxy serves at most 15000 from a file: make the page smaller \(inline CSS, no images\)$/,
      /^sites\/prod\.yaml:\d+:\d+ services\.web\.maintenance\.page: the maintenance response would be 15161 bytes \(page and headers\); HAProxy serves at most 15000 from a file: make the page smaller \(inline CSS, no images\)$/,
    ];
    for (const re of expected) assert.ok(found.some((p) => re.test(p)), `no problem matching ${re}; got:\n${found.join("\n")}`);
    assert.equal(found.length, expected.length, found.join("\n"));

    const unknown = problems(httpApp({ errorPages: { 404: { html: "<p>x</p>" } } }));
    assert.equal(unknown.length, 1);
    assert.match(unknown[0], /^site\.yaml:\d+:\d+ services\.app\.errorPages.*404/);
  });

  it("imaging-lb expand writes out the Retry-After default and keeps the pages as written", () => {
    const expanded = expandEnvironment(stringify(httpApp({ errorPages: { 503: { html: "<p>x</p>" } }, maintenance: { enabled: false } })), "site.yaml");
    const app = (expanded.services as Record<string, Record<string, unknown>>).app;
    assert.deepEqual(app.maintenance, { enabled: false, retryAfterSeconds: 600 });
    assert.deepEqual(app.errorPages, { 503: { html: "<p>x</p>" } });
  });

  it("errorResponse gives HAProxy's reason phrases and the byte length of the page", () => {
    assert.equal(errorResponse(429, "ab").split("\r\n")[0], "HTTP/1.1 429 Too Many Requests");
    assert.match(errorResponse(504, "€"), /\r\nContent-Length: 3\r\n/);
  });
});
