/**
 * The `imaging-lb` command: output and exit codes, run as a user runs it (the compiled bin).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { environmentJsonSchema } from "../lib/config/schema";
import { tempDir } from "./helpers/tools";

const ROOT = join(__dirname, "..", "..");
const BIN = join(ROOT, "dist", "lib", "cli", "main.js");

function cli(...args: string[]) {
  const run = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: "utf8" });
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
    assert.match(r.stderr, /bad\.yaml:21:42 loadBalancer\.nodes\.lb-1\.adress: unknown field; allowed here: internalAddress, externalAddress, internalSubnet, externalSubnet\n/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
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

  it("render user-data: the node's cloud-config with its hostname and haproxy.cfg, no secrets", () => {
    const r = cli("render", "user-data", "examples/agfa-ei-ha-pair.yaml", "--node", "lb-b");
    assert.equal(r.code, 0, r.stderr);
    const doc = parse(r.stdout);
    assert.equal(doc.hostname, "lb-b");
    const files = doc.write_files.map((f: { path: string }) => f.path);
    assert.ok(files.includes("/etc/imaging-lb/haproxy.cfg"));
    assert.ok(files.some((f: string) => f.includes("keepalived.conf")));
    assert.doesNotMatch(r.stdout, /PRIVATE KEY/);
    assert.match(r.stdout, /arn:aws:secretsmanager:eu-west-1:123456789012:secret:ei-ha-pair\/stats-AbCdEf/);
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
    assert.match(sub.stdout, /^usage: imaging-lb render haproxy\|keepalived\|user-data <env\.yaml>/);
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
