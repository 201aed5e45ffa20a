/**
 * The `imaging-lb` command: output and exit codes, run as a user runs it (the compiled bin).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { keepalivedTest } from "../lib/cli/commands/validate";
import { environmentJsonSchema } from "../lib/config/schema";
import { requireTool, tempDir } from "./helpers/tools";
import { environment } from "./helpers/env";

const ROOT = join(__dirname, "..", "..");
const BIN = join(ROOT, "dist", "lib", "cli", "main.js");

function cli(...args: string[]) {
  return cliWith({}, ...args);
}

function cliWith(env: Record<string, string>, ...args: string[]) {
  const run = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...env } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe("imaging-lb CLI", () => {
  let dir: { path: string; cleanup: () => void };
  let bad: string;
  before(() => {
    dir = tempDir("cli");
    bad = join(dir.path, "bad.yaml");
    writeFileSync(
      bad,
      readFileSync(join(ROOT, "examples", "agfa-ei-one-arm.yaml"), "utf8")
        .replace("name: ei-one-arm", "name: Bad_Name")
        .replace("lb-1: { internalAddress: 10.30.1.10 }", "lb-1: { internalAddress: 10.30.1.10, adress: 1 }"),
    );
  });
  after(() => dir.cleanup());

  it("validate: prints one line per valid file and exits 0", () => {
    const r = cli("validate", "examples/agfa-ei-one-arm.yaml", "examples/agfa-ei-ha-pair.yaml");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      "ok examples/agfa-ei-one-arm.yaml: ei-one-arm, one-arm, single load balancer, 4 services, 2 VIPs\n" +
        "ok examples/agfa-ei-ha-pair.yaml: ei-ha-pair, two-arm, HA pair, 4 services, 2 VIPs\n",
    );
    assert.equal(r.stderr, "");
  });

  it("validate: invalid input exits 1, every problem on stderr with file:line:col, nothing on stdout", () => {
    const r = cli("validate", bad);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^2 problems in .*bad\.yaml:\n/);
    assert.match(r.stderr, /bad\.yaml:8:7 name: expected a name of 1-32 characters.*got "Bad_Name"/);
    assert.match(r.stderr, /bad\.yaml:21:42 loadBalancer\.nodes\.lb-1\.adress: unknown field; allowed here: internalAddress, externalAddress, internalSubnet, externalSubnet, generation\n/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  });

  describe("validate --strict (real haproxy -dW -c and keepalived -t on the rendered files)", () => {
    /** An example with the starter's placeholder account replaced, as a user's finished file. */
    const finished = (example: string, edit: (text: string) => string = (t) => t) => {
      const file = join(dir.path, `strict-${example}`);
      writeFileSync(file, edit(readFileSync(join(ROOT, "examples", example), "utf8").replaceAll("123456789012", "210987654321")));
      return file;
    };
    before(() => {
      for (const [tool, pkg] of [["haproxy", "haproxy"], ["keepalived", "keepalived"], ["openssl", "openssl"], ["unshare", "util-linux"], ["ip", "iproute2"]]) requireTool(tool, pkg);
    });

    it("flags the starter's placeholders left in a file at their line and column (exit 1)", () => {
      const r = cli("validate", "--strict", "examples/agfa-ei-one-arm.yaml");
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /^2 problems in examples\/agfa-ei-one-arm\.yaml:\n/);
      assert.match(r.stderr, /examples\/agfa-ei-one-arm\.yaml:39:57: placeholder: the starter's placeholder AWS account id 123456789012/);
      assert.match(r.stderr, /examples\/agfa-ei-one-arm\.yaml:46:61: placeholder: /);
      const marked = finished("agfa-ei-one-arm.yaml", (t) => t.replace("instanceType: c6i.large", "instanceType: c6i.large   # CHANGE ME"));
      const m = cli("validate", "--strict", marked);
      assert.equal(m.code, 1);
      assert.match(m.stderr, /:19:29: placeholder: a `# CHANGE ME` mark of the starter/);
      assert.equal(cli("validate", marked).code, 0, "without --strict placeholders are not problems");
    });

    it("passes a finished HA pair: haproxy -dW -c on both nodes and keepalived -t on each node", () => {
      const file = finished("agfa-ei-ha-pair.yaml");
      const r = cli("validate", "--strict", file);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^ok .*: ei-ha-pair, two-arm, HA pair, 4 services, 2 VIPs\n {2}internet: the NAT gateway in 10\.40\.0\.0\/24: [^\n]*\n {2}haproxy -dW -c: ok \(HAProxy \S+ on this machine\)\n/);
      assert.match(r.stdout, /\n {2}keepalived -t: ok on lb-a \(keepalived \S+ on this machine/);
      assert.match(r.stdout, /\n {2}keepalived -t: ok on lb-b \(keepalived \S+ on this machine/);
    });

    it("checks error pages and the maintenance switch with haproxy -dW -c: a page file next to the environment file; a missing one at its line", () => {
      mkdirSync(join(dir.path, "pages-site", "pages"), { recursive: true });
      const file = join(dir.path, "pages-site", "prod.yaml");
      const text = stringify(
        environment({ services: { app: { mode: "http", errorPages: { 503: { file: "pages/503.html" }, 502: { html: "<h1>502</h1>" } }, maintenance: { enabled: true, allowedSources: ["10.9.0.0/24"] } } } }),
      ).replaceAll("123456789012", "210987654321");
      writeFileSync(file, text);
      writeFileSync(join(dir.path, "pages-site", "pages", "503.html"), "<h1>503</h1>\n");
      const r = cli("validate", "--strict", file);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\n {2}haproxy -dW -c: ok/);
      rmSync(join(dir.path, "pages-site", "pages", "503.html"));
      const missing = cli("validate", file);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /prod\.yaml:\d+:\d+ services\.app\.errorPages\.503\.file: "pages\/503\.html" \(.*pages-site\/pages\/503\.html\): no such file/);
    });

    it("reports an extraDirectives line haproxy rejects at its place in the environment file (plain validate accepts it)", () => {
      const file = finished("agfa-ei-one-arm.yaml", (t) =>
        t.replace("    balance: active-backup         # keep HL7 message order: one server at a time\n", '    balance: active-backup\n    extraDirectives:\n      backend: ["balance roundrobin", "timeout sever 5s"]\n'),
      );
      assert.equal(cli("validate", file).code, 0);
      const r = cli("validate", "--strict", file);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /strict-agfa-ei-one-arm\.yaml:33:39 services\.hl7\.extraDirectives\.backend\.1: haproxy -dW -c rejects this directive: 'timeout' supports .*\(got 'sever'\)/);
    });

    it("keepalived -t in its private namespace rejects a broken keepalived.conf (the check can fail)", () => {
      const pair = cli("render", "keepalived", "examples/agfa-ei-ha-pair.yaml", "--node", "lb-a").stdout.replace(/^(\s*script_user)\s+\S+$/m, "$1 root");
      const ok = keepalivedTest(dir.path, requireTool("unshare", "util-linux"), requireTool("keepalived", "keepalived"), pair, "10.40.1.10");
      assert.equal(ok.status, 0, ok.stderr);
      const broken = keepalivedTest(dir.path, requireTool("unshare", "util-linux"), requireTool("keepalived", "keepalived"), pair.replace(/(unicast_peer \{\n\s+)10\.40\.1\.11/, "$110.40.1.1x"), "10.40.1.10");
      assert.match(broken.stderr, /malformed unicast peer address\[10\.40\.1\.1x\]/);
    });

    it("says a check was skipped, not failed, when its tool is not installed", () => {
      const file = finished("agfa-ei-ha-pair.yaml");
      const r = cliWith({ PATH: "/nonexistent" }, "validate", "--strict", file);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\n {2}haproxy -dW -c skipped: haproxy is not installed/);
      assert.match(r.stdout, /\n {2}keepalived -t skipped: keepalived is not installed/);
    });
  });

  it("render haproxy: the configuration on stdout, exit 0", () => {
    const r = cli("render", "haproxy", "examples/agfa-ei-two-arm.yaml");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^# haproxy\.cfg for environment 'ei-two-arm'/);
    assert.match(r.stdout, /\nfrontend fe_dicom\n/);
  });

  it("render haproxy: invalid input exits 1 with nothing on stdout", () => {
    const r = cli("render", "haproxy", bad);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /problems in/);
  });

  it("render keepalived: a pair node's keepalived.conf by name or role, its takeover script on request", () => {
    const byRole = cli("render", "keepalived", "examples/agfa-ei-ha-pair.yaml", "--node", "secondary");
    assert.equal(byRole.code, 0, byRole.stderr);
    assert.match(byRole.stdout, /keepalived\.conf for environment "ei-ha-pair", secondary node/);
    assert.match(byRole.stdout, /unicast_src_ip 10\.40\.1\.11\n/);
    assert.equal(cli("render", "keepalived", "examples/agfa-ei-ha-pair.yaml", "--node", "lb-b").stdout, byRole.stdout);
    const script = cli("render", "keepalived", "examples/agfa-ei-ha-pair.yaml", "--node", "lb-a", "--takeover-script");
    assert.match(script.stdout, /^#!\/usr\/bin\/env bash\n/);
    assert.match(script.stdout, /assign-private-ip-addresses/);
  });

  it("render keepalived: a single load balancer or an unknown node is a usage error naming the nodes", () => {
    const single = cli("render", "keepalived", "examples/agfa-ei-two-arm.yaml", "--node", "primary");
    assert.equal(single.code, 2);
    assert.match(single.stderr, /single load balancer: keepalived runs only in an HA pair/);
    const unknown = cli("render", "keepalived", "examples/agfa-ei-ha-pair.yaml", "--node", "lb-z");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--node: no node 'lb-z' in ei-ha-pair; its nodes: lb-a \(primary\), lb-b \(secondary\)/);
  });

  it("render user-data: the node's cloud-config with its hostname and the agent; no configuration, no secrets", () => {
    const r = cli("render", "user-data", "examples/agfa-ei-ha-pair.yaml", "--node", "lb-b");
    assert.equal(r.code, 0, r.stderr);
    const doc = parse(r.stdout);
    assert.equal(doc.hostname, "lb-b");
    const files = doc.write_files.map((f: { path: string }) => f.path);
    assert.ok(files.includes("/usr/local/sbin/imaging-lb-agent"));
    assert.ok(!files.some((f: string) => f.includes("haproxy.cfg") || f.includes("keepalived.conf")), "the configuration comes from the bundle");
    assert.doesNotMatch(r.stdout, /PRIVATE KEY|arn:aws:secretsmanager/);
  });

  it("render: an unknown artifact or a missing file argument is a usage error (exit 2)", () => {
    assert.equal(cli("render", "nginx", "examples/agfa-ei-two-arm.yaml").code, 2);
    assert.equal(cli("render", "haproxy").code, 2);
    assert.equal(cli("validate").code, 2);
  });

  it("a missing file exits 1 naming it", () => {
    const r = cli("validate", "no/such.yaml");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no\/such\.yaml: no such file/);
  });

  it("expand: prints the preset's services with the file's overrides applied", () => {
    const r = cli("expand", "examples/agfa-ei-two-arm.yaml");
    assert.equal(r.code, 0, r.stderr);
    const expanded = parse(r.stdout);
    assert.deepEqual(Object.keys(expanded.services).sort(), ["core", "dicom", "hl7", "xero", "xero-xtend"]);
    assert.deepEqual(expanded.services.core.frontendPorts, [80, 443, 4447, 7443, 9080, 10124]);
    assert.deepEqual(expanded.services.dicom.frontendPorts, [104, 110]);
    assert.deepEqual(expanded.services.hl7.frontendPorts, [2310, 2311]);
    assert.equal(expanded.services.dicom.healthCheck.calledAeTitle, "EI_CORE", "the file's override");
    assert.equal(expanded.services.dicom.healthCheck.callingAeTitle, "LBHEALTH", "the preset's value kept");
    assert.equal(expanded.services["xero-xtend"].enabled, false);
  });

  it("--help lists the commands; each command has --help; an unknown command exits 2", () => {
    const help = cli("--help");
    assert.equal(help.code, 0);
    for (const c of ["validate", "render", "init", "diagram", "expand", "schema"]) assert.match(help.stdout, new RegExp(`\\n  ${c} `));
    const sub = cli("render", "--help");
    assert.equal(sub.code, 0);
    assert.match(sub.stdout, /^usage: imaging-lb render haproxy\|keepalived\|user-data\|image-recipe <env\.yaml>/);
    const unknown = cli("frobnicate");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  });

  it("schema: the published schema/environment.schema.json is the one the code generates", () => {
    const r = cli("schema");
    assert.equal(r.code, 0);
    const published = readFileSync(join(ROOT, "schema", "environment.schema.json"), "utf8");
    assert.equal(r.stdout, published, "run `npm run schema` and commit the result");
    const schema = environmentJsonSchema() as { properties: Record<string, unknown>; required: string[] };
    assert.ok(["name", "region", "network", "loadBalancer", "vips", "servers", "access", "admin"].every((k) => schema.required.includes(k)));
    assert.ok("preset" in schema.properties);
  });

  it("every example carries the editor modeline pointing at the published schema", () => {
    for (const f of ["agfa-ei-one-arm.yaml", "agfa-ei-two-arm.yaml", "agfa-ei-ha-pair.yaml"]) {
      assert.match(readFileSync(join(ROOT, "examples", f), "utf8"), /^# yaml-language-server: \$schema=\.\.\/schema\/environment\.schema\.json\n/);
    }
  });
});
