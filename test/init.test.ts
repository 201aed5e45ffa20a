/**
 * `imaging-lb init`: every starter (layout × pair) validates as written through the real loader; the
 * text of one is exact; the command refuses to overwrite a file without --force.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { initCommand, nameForFile } from "../lib/cli/commands/init";
import { parseEnvironment } from "../lib/load/load";
import { CHANGE_ME, renderStarter, schemaPathFor, StarterLayout } from "../lib/init";
import { tempDir } from "./helpers/tools";

const ROOT = join(__dirname, "..", "..");
const COMBINATIONS: ReadonlyArray<{ layout: StarterLayout; pair: boolean }> = [
  { layout: "one-arm", pair: false },
  { layout: "one-arm", pair: true },
  { layout: "two-arm", pair: false },
  { layout: "two-arm", pair: true },
];

describe("renderStarter", () => {
  for (const { layout, pair } of COMBINATIONS) {
    it(`${layout}${pair ? ", HA pair" : ""}: validates as written through the real loader`, () => {
      const text = renderStarter({ layout, pair, preset: "agfa-ei" });
      const env = parseEnvironment(text, `starter-${layout}.yaml`);
      assert.equal(env.network.layout, layout);
      assert.equal(env.nodes.length, pair ? 2 : 1);
      assert.deepEqual(env.nodes.map((n) => n.role), pair ? ["primary", "secondary"] : ["primary"]);
      assert.equal(env.ha !== undefined, pair);
      assert.deepEqual(env.services.map((s) => s.name), ["core", "dicom", "hl7", "xero"]);
      assert.ok(text.startsWith("# yaml-language-server: $schema=../schema/environment.schema.json\n"));
    });

    it(`${layout}${pair ? ", HA pair" : ""}: creates its VPC, so it has a natSubnet explained by a comment; no mode that needs an adopted VPC`, () => {
      const text = renderStarter({ layout, pair, preset: "agfa-ei" });
      const env = parseEnvironment(text, `starter-${layout}.yaml`);
      assert.equal(env.network.vpcId, undefined);
      assert.deepEqual(env.network.natSubnet, { cidr: "10.80.0.0/24", availabilityZone: "eu-west-1a" });
      const lines = text.split("\n");
      const at = lines.indexOf("  natSubnet:");
      assert.ok(at > 0 && lines[at - 1].startsWith("  # "), "a comment right above natSubnet");
      assert.notEqual(env.ha?.vipMode, "route-table");
    });

    it(`${layout}${pair ? ", HA pair" : ""}: every address, CIDR, zone, AE title and ARN is marked CHANGE ME`, () => {
      const text = renderStarter({ layout, pair, preset: "agfa-ei" });
      const values = text
        .split("\n")
        .filter((l) => !l.trimStart().startsWith("#"))
        .filter((l) => /\d+\.\d+\.\d+\.\d+|availabilityZone|aeTitle|AeTitle|arn:aws|^name:|^region:/i.test(l));
      assert.ok(values.length > 10);
      for (const line of values) assert.ok(line.includes(CHANGE_ME), `marked: ${line}`);
    });
  }

  it("uses the name everywhere it appears, and rejects an invalid one", () => {
    const text = renderStarter({ layout: "two-arm", pair: true, preset: "agfa-ei", name: "st-mary" });
    const raw = parse(text) as { name: string; tls: { certificates: { web: { secretArn: string } } } };
    assert.equal(raw.name, "st-mary");
    assert.match(raw.tls.certificates.web.secretArn, /:secret:st-mary\/web-tls-/);
    assert.equal(parseEnvironment(text, "st-mary.yaml").name, "st-mary");
    assert.throws(() => renderStarter({ layout: "one-arm", pair: false, preset: "agfa-ei", name: "St_Mary" }), /starter name: expected .* got "St_Mary"/);
  });

  it("one-arm, single load balancer: exact text", () => {
    assert.equal(
      renderStarter({ layout: "one-arm", pair: false, preset: "agfa-ei" }),
      `# yaml-language-server: $schema=../schema/environment.schema.json
#
# imaging-lb environment: AGFA HealthCare Enterprise Imaging behind
# one Layer 7 SNAT load balancer, one-arm.
# Written by: imaging-lb init --layout one-arm --preset agfa-ei
#
# Every value is a valid placeholder: the file validates as written. Replace each value marked
# \`# CHANGE ME\` with your site's, then check the file (every problem is listed with file:line:col):
#   npx imaging-lb validate <this file>
# Every field: \`npx imaging-lb schema\` (JSON Schema) or imaging-lb's docs/environment-reference.md.
# The preset's services in full, with your changes: npx imaging-lb expand <this file>

# Environment name: the Terraform stack name and the prefix of the AWS resource names
# (1-32 characters: lower-case letters, digits and '-', starting with a letter).
name: st-example                    # CHANGE ME
# AWS region of the load balancers.
region: eu-west-1                   # CHANGE ME
# Service catalog: xero (XERO web viewer, 443 with 80 redirected), core (core server client ports
# 80, 443, 4447, 7443, 9080, 10124), dicom (104, 110) and hl7 (2310, 2311). \`services\` below overrides it.
preset: agfa-ei

network:
  # one-arm: a single interface (eth0) carries the VIPs and reaches the real servers.
  layout: one-arm
  # CIDR of the VPC created for the load balancers. To adopt an existing VPC instead, set
  # vpcId: vpc-... (keep vpcCidr for the checks), add a subnetId to every subnet below and
  # remove natSubnet (an adopted VPC brings its own egress).
  vpcCidr: 10.80.0.0/16             # CHANGE ME
  # The load balancer's subnet: eth0 of each node and the VIPs. Inside vpcCidr.
  subnet:
    cidr: 10.80.1.0/24              # CHANGE ME
    availabilityZone: eu-west-1a    # CHANGE ME
  # Public subnet of the NAT gateway created with the VPC: the nodes' way out to the package mirrors
  # and AWS APIs at boot. Inside vpcCidr, not overlapping the other subnets. The stack's output
  # nat_public_ip is the nodes' public source address (allow-list it where egress is filtered).
  natSubnet:
    cidr: 10.80.0.0/24              # CHANGE ME
    availabilityZone: eu-west-1a    # CHANGE ME

loadBalancer:
  # EC2 instance type of each node.
  instanceType: c6i.large
  # Operating system: ubuntu-24.04 (HAProxy 2.8 LTS), debian-13 (HAProxy 3.0 LTS) or al2023.
  os: ubuntu-24.04
  # Encrypted gp3 root volume, GiB.
  rootVolumeGiB: 20
  # The node, keyed by hostname. Add a second node (and \`ha\`) for an HA pair.
  nodes:
    lb-a:
      internalAddress: 10.80.1.10   # CHANGE ME (eth0, in the load balancer's subnet)

# The VIPs, keyed by name, in the load balancer's subnet. The agfa-ei preset puts the XERO viewer
# on \`web\` and the core server's client, DICOM and HL7 ports on \`core\` (both need 80 and 443).
vips:
  web:
    address: 10.80.1.100            # CHANGE ME
  core:
    address: 10.80.1.101            # CHANGE ME

# Changes to the preset's services: any field of a service can be overridden here.
services:
  dicom:
    # DICOM C-ECHO health check (calling AE title LBHEALTH, every 10 s).
    healthCheck:
      type: dicom-echo
      calledAeTitle: EI_CORE        # CHANGE ME (the core server's AE title)
  # hl7:
  #   balance: active-backup          # keep HL7 message order: one server at a time

# The real servers (EI core servers), keyed by name. A server serves every service unless it lists
# \`services\`. Addresses are IP literals; any subnet the load balancer can reach.
servers:
  ei-core-1:
    address: 10.80.1.21             # CHANGE ME
    aeTitle: EI_CORE                # CHANGE ME (its DICOM AE title)
  ei-core-2:
    address: 10.80.1.22             # CHANGE ME
    aeTitle: EI_CORE                # CHANGE ME

# TLS material by reference only: a Secrets Manager secret holding the PEM (certificate chain and
# private key), read by the load balancers' role at boot and daily; never in Terraform state.
tls:
  certificates:
    web:
      secretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:st-example/web-tls-AbCdEf" # CHANGE ME

access:
  # Networks allowed to reach the services: workstations, modalities, HL7 senders.
  clientCidrs: [10.0.0.0/8]         # CHANGE ME
  # Networks allowed to reach the stats page (port 8404) and Prometheus /metrics.
  adminCidrs: [10.99.0.0/24]        # CHANGE ME

admin:
  # Secrets Manager secret holding the stats page password (user admin), read at boot.
  statsPasswordSecretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:st-example/stats-AbCdEf" # CHANGE ME

# Who is told when something goes wrong (a server or a whole service down, a failover, a failed
# rollout, a node not reporting, a certificate within 30 days of its end): every alarm and its return
# to OK is mailed to these addresses, once each has confirmed SNS's first mail. What each alarm means
# and what to do: docs/alarms.md.
monitoring:
  notifications:
    email: [pacs-oncall@hospital.example] # CHANGE ME

# Terraform state in S3 (encrypted, with a lock file). Needed when more than one workstation or a
# pipeline deploys this environment; the bucket must exist. Without it the state is the local file
# terraform.st-example.tfstate in the folder you run cdktf from (not in cdktf.out), on that machine only.
# stateBackend:
#   bucket: example-hospital-terraform-state
#   key: imaging-lb/st-example.tfstate
#   region: eu-west-1

# Tags added to every AWS resource.
tags:
  owner: radiology-it               # CHANGE ME
`,
    );
  });
});

describe("imaging-lb init (command)", () => {
  let dir: { path: string; cleanup: () => void };
  before(() => {
    dir = tempDir("init");
  });
  after(() => dir.cleanup());

  function run(...args: string[]) {
    let out = "";
    let err = "";
    const code = initCommand.run(args, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  }

  it("writes the starter (folders created), named after the file, and prints the next commands", () => {
    const file = join(dir.path, "sites", "st-mary.yaml");
    const r = run("--layout", "two-arm", "--pair", "--preset", "agfa-ei", "--out", file);
    assert.equal(r.code, 0, r.err);
    const text = readFileSync(file, "utf8");
    assert.equal(text, renderStarter({ layout: "two-arm", pair: true, preset: "agfa-ei", name: "st-mary", schemaPath: schemaPathFor(file) }));
    assert.equal(parseEnvironment(text, file).name, "st-mary");
    assert.equal(
      r.out,
      `wrote ${file}: environment 'st-mary', two-arm, HA pair, preset agfa-ei\n` +
        "It validates as written; replace every value marked `# CHANGE ME`, then run:\n" +
        `  npx imaging-lb validate ${file}\n` +
        `  npx imaging-lb diagram ${file} --out ${file.replace(/\.yaml$/, ".svg")}\n`,
    );
    assert.equal(r.err, "");
  });

  it("points the modeline at this package's schema, relative to the new file", () => {
    const file = join(dir.path, "deep", "er", "site.yaml");
    assert.equal(run("--layout", "one-arm", "--out", file).code, 0);
    const modeline = readFileSync(file, "utf8").split("\n")[0];
    const schemaPath = modeline.replace("# yaml-language-server: $schema=", "");
    assert.ok(schemaPath.endsWith("schema/environment.schema.json") && !schemaPath.startsWith("/"), modeline);
    assert.ok(existsSync(join(dir.path, "deep", "er", schemaPath)), `${schemaPath} exists`);
    assert.equal(schemaPathFor(join(ROOT, "sites", "a.yaml")), "../schema/environment.schema.json");
  });

  it("refuses to overwrite an existing file unless --force", () => {
    const file = join(dir.path, "existing.yaml");
    writeFileSync(file, "name: mine\n");
    const refused = run("--layout", "one-arm", "--out", file);
    assert.equal(refused.code, 2);
    assert.equal(refused.out, "");
    assert.match(refused.err, /^imaging-lb init: .*existing\.yaml already exists; choose another file or add --force to overwrite it\nusage: imaging-lb init /);
    assert.equal(readFileSync(file, "utf8"), "name: mine\n");
    const forced = run("--layout", "one-arm", "--out", file, "--force");
    assert.equal(forced.code, 0, forced.err);
    assert.equal(parseEnvironment(readFileSync(file, "utf8"), file).name, "existing");
  });

  it("wrong usage: exit 2 with the reason and the usage, nothing written", () => {
    const file = join(dir.path, "never.yaml");
    const cases: Array<[string[], RegExp]> = [
      [["--out", file], /missing --layout: one-arm or two-arm/],
      [["--layout", "three-arm", "--out", file], /--layout: expected one-arm or two-arm, got "three-arm"/],
      [["--layout", "one-arm"], /missing --out/],
      [["--layout", "one-arm", "--preset", "other", "--out", file], /--preset: expected agfa-ei, got "other"/],
      [["--layout", "one-arm", "--out", join(dir.path, "never.json")], /--out: expected a \.yaml or \.yml file/],
      [["--layout", "one-arm", "--name", "Bad_Name", "--out", file], /--name: expected .* got "Bad_Name"/],
      [["--layout", "one-arm", "--out", file, "extra"], /unexpected argument 'extra': it takes no arguments/],
    ];
    for (const [args, message] of cases) {
      const r = run(...args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.err, message);
      assert.match(r.err, /\nusage: imaging-lb init --layout one-arm\|two-arm /);
    }
    assert.equal(existsSync(file), false);
  });

  it("names the environment after the file when the base name is a valid name", () => {
    assert.equal(nameForFile("sites/st-mary.yaml"), "st-mary");
    assert.equal(nameForFile("sites/St Mary.yaml"), "st-example");
  });
});
