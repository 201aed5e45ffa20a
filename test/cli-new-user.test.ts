/**
 * What a new user trips on (issue 26), each run as the user runs it — the compiled `imaging-lb` bin as a
 * process — with the exact text it prints. The files are the bundled examples with the one mistake made
 * by hand, as a user makes it; each place (line:column) is found in the file written, so the expected
 * text is exact without copying line numbers from the examples.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { requireTool, tempDir } from "./helpers/tools";

const ROOT = join(__dirname, "..", "..");
const BIN = join(ROOT, "dist", "lib", "cli", "main.js");

function cli(...args: string[]) {
  const run = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: "utf8" });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** A free TCP port on loopback. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** boto3 against moto: `create <bucket>` or `put <bucket> <key> <body>` (argv after the endpoint). */
const S3_PUT = [
  "import sys, boto3",
  "s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='eu-west-1', aws_access_key_id='testing', aws_secret_access_key='testing')",
  "if sys.argv[2] == 'create': s3.create_bucket(Bucket=sys.argv[3], CreateBucketConfiguration={'LocationConstraint': 'eu-west-1'})",
  "else: s3.put_object(Bucket=sys.argv[3], Key=sys.argv[4], Body=sys.argv[5].encode())",
].join("\n");

/** `line:column` (1-based) of the first occurrence of `needle` in `text`, after `after` when given. */
function place(text: string, needle: string, after?: string): string {
  const from = after === undefined ? 0 : text.indexOf(after);
  assert.ok(from >= 0, `'${after}' is not in the file`);
  const at = text.indexOf(needle, from);
  assert.ok(at >= 0, `'${needle}' is not in the file`);
  const before = text.slice(0, at).split("\n");
  return `${before.length}:${before[before.length - 1].length + 1}`;
}

describe("what a new user trips on (issue 26): the CLI's exact words", () => {
  let dir: { path: string; cleanup: () => void };
  before(() => {
    dir = tempDir("new-user");
  });
  after(() => dir.cleanup());

  /** The example `example` with each [from, to] replacement made (each `from` must be there), written as `name`. */
  const edited = (example: string, name: string, ...edits: Array<[string, string]>) => {
    let text = readFileSync(join(ROOT, "examples", example), "utf8");
    for (const [from, to] of edits) {
      assert.ok(text.includes(from), `'${from}' is not in ${example}`);
      text = text.replace(from, to);
    }
    const file = join(dir.path, name);
    writeFileSync(file, text);
    return { file, text };
  };

  /** `validate` must exit 1 with exactly these problems (each `[line:col, text after the place]`). */
  const refuses = (file: string, ...problems: Array<[string, string]>) => {
    const r = cli("validate", file);
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    assert.equal(r.stderr, `${count} in ${file}:\n${problems.map(([at, text]) => `  ${file}:${at} ${text}\n`).join("")}`);
    assert.equal(r.stdout, "");
    assert.equal(r.code, 1);
  };

  describe("1. a node's eth0 and eth1 in two availability zones", () => {
    it("the layout's external subnet in another zone than its internal one: refused at network.external", () => {
      const { file, text } = edited(
        "agfa-ei-ha-pair.yaml",
        "zones.yaml",
        ["external: { cidr: 10.40.2.0/24, availabilityZone: eu-west-1a }", "external: { cidr: 10.40.2.0/24, availabilityZone: eu-west-1b }"],
      );
      refuses(file, [
        place(text, "eu-west-1b"),
        `network.external.availabilityZone: expected eu-west-1a, the availability zone of network.internal (node lb-a's eth0), got "eu-west-1b": a node's eth0 and eth1 must be in one zone, as EC2 attaches an ENI only to an instance in its zone (the apply would stop half-way); put both subnets in one zone (a pair across zones: ha.vipMode route-table, each node with internalSubnet and externalSubnet of its own zone)`,
      ]);
    });

    it("a route-table pair whose second node has its eth1 subnet in another zone than its eth0 subnet: refused at that node", () => {
      const { file, text } = edited(
        "agfa-ei-ha-pair.yaml",
        "node-zones.yaml",
        ["  vpcCidr: 10.40.0.0/16\n", "  vpcId: vpc-0a1b2c3d4e5f60718\n  vpcCidr: 10.40.0.0/16\n"],
        ["availabilityZone: eu-west-1a }   # eth0", "availabilityZone: eu-west-1a, subnetId: subnet-0a1b2c3d4e5f60711 }   # eth0"],
        ["availabilityZone: eu-west-1a }   # eth1", "availabilityZone: eu-west-1a, subnetId: subnet-0a1b2c3d4e5f60722 }   # eth1"],
        ["  natSubnet: { cidr: 10.40.0.0/24, availabilityZone: eu-west-1a }  # public: NAT gateway for boot-time package installs\n", ""],
        [
          "    lb-b: { internalAddress: 10.40.1.11, externalAddress: 10.40.2.11 }\n",
          "    lb-b:\n      internalAddress: 10.40.11.11\n      externalAddress: 10.40.12.11\n" +
            "      internalSubnet: { cidr: 10.40.11.0/24, availabilityZone: eu-west-1b, subnetId: subnet-0a1b2c3d4e5f60733 }\n" +
            "      externalSubnet: { cidr: 10.40.12.0/24, availabilityZone: eu-west-1c, subnetId: subnet-0a1b2c3d4e5f60744 }\n",
        ],
        ["    vipMode: secondary-ip         # both nodes in one subnet; elastic-ip / route-table also possible\n", "    vipMode: route-table\n    routeTableIds: [rtb-0a1b2c3d4e5f60711]\n"],
        ["  web: { address: 10.40.2.100 }\n  core: { address: 10.40.2.101 }", "  web: { address: 192.168.50.10 }\n  core: { address: 192.168.50.11 }"],
      );
      refuses(file, [
        place(text, "eu-west-1c"),
        `loadBalancer.nodes.lb-b.externalSubnet.availabilityZone: expected eu-west-1b, the availability zone of loadBalancer.nodes.lb-b.internalSubnet (node lb-b's eth0), got "eu-west-1c": a node's eth0 and eth1 must be in one zone, as EC2 attaches an ENI only to an instance in its zone (the apply would stop half-way); put both subnets in one zone (a pair across zones: ha.vipMode route-table, each node with internalSubnet and externalSubnet of its own zone)`,
      ]);
    });
  });

  describe("2. a real server the created VPC cannot reach", () => {
    it("outside vpcCidr, in the NAT subnet and in the client-side subnet: each refused at its address, with what is allowed", () => {
      const { file, text } = edited(
        "agfa-ei-ha-pair.yaml",
        "reach.yaml",
        ["ei-core-1: { address: 10.40.1.21", "ei-core-1: { address: 10.41.1.21"],
        ["ei-core-2: { address: 10.40.1.22", "ei-core-2: { address: 10.40.0.22"],
        ["ei-core-3: { address: 10.40.1.23", "ei-core-3: { address: 10.40.2.23"],
      );
      refuses(
        file,
        [
          place(text, "10.41.1.21"),
          `servers.ei-core-1.address: expected a real server inside network.vpcCidr 10.40.0.0/16, got "10.41.1.21": a VPC created by the stack routes only its own CIDR (and the internet through the NAT gateway), so the load balancer could not reach it; put it in the internal subnet 10.40.1.0/24 or elsewhere in 10.40.0.0/16, or adopt a VPC that routes to it (network.vpcId)`,
        ],
        [
          place(text, "10.40.0.22"),
          `servers.ei-core-2.address: "10.40.0.22" is in network.natSubnet 10.40.0.0/24, the public subnet that holds only the NAT gateway; expected a real server in the internal subnet 10.40.1.0/24 or elsewhere in 10.40.0.0/16`,
        ],
        [
          place(text, "10.40.2.23"),
          `servers.ei-core-3.address: "10.40.2.23" is in the client-side subnet network.external 10.40.2.0/24: two-arm load balancers reach servers from eth0, in the internal subnet 10.40.1.0/24; expected a real server there or elsewhere in 10.40.0.0/16 outside the client-side and NAT subnets`,
        ],
      );
    });

    it("elsewhere in vpcCidr (another subnet of the created VPC) is accepted; in an adopted VPC nothing is guessed", () => {
      const inside = edited("agfa-ei-one-arm.yaml", "elsewhere.yaml", ["ei-core-1: { address: 10.30.1.21", "ei-core-1: { address: 10.30.7.21"]);
      assert.equal(cli("validate", inside.file).code, 0);
      const adopted = edited(
        "agfa-ei-one-arm.yaml",
        "adopted.yaml",
        ["  vpcCidr: 10.30.0.0/16\n", "  vpcId: vpc-0a1b2c3d4e5f60718\n  vpcCidr: 10.30.0.0/16\n"],
        ["availabilityZone: eu-west-1a }\n", "availabilityZone: eu-west-1a, subnetId: subnet-0a1b2c3d4e5f60711 }\n"],
        ["  natSubnet: { cidr: 10.30.0.0/24, availabilityZone: eu-west-1a }   # public: NAT gateway for boot-time package installs\n", ""],
        ["ei-core-1: { address: 10.30.1.21", "ei-core-1: { address: 172.20.4.21"],
      );
      const r = cli("validate", adopted.file);
      assert.equal(r.stderr, "");
      assert.equal(r.code, 0, "a server behind the hospital's VPN or Transit Gateway: the adopted VPC's routes are not known here");
    });

    it("a sorry server outside vpcCidr is refused the same way", () => {
      const { file, text } = edited("agfa-ei-one-arm.yaml", "sorry.yaml", ["  hl7:\n", "  xero:\n    sorryServer: { address: 192.168.9.9, port: 8080 }\n  hl7:\n"]);
      refuses(file, [
        place(text, "192.168.9.9"),
        `services.xero.sorryServer.address: expected a sorry server inside network.vpcCidr 10.30.0.0/16, got "192.168.9.9": a VPC created by the stack routes only its own CIDR (and the internet through the NAT gateway), so the load balancer could not reach it; put it in the load balancer subnet 10.30.1.0/24 or elsewhere in 10.30.0.0/16, or adopt a VPC that routes to it (network.vpcId)`,
      ]);
    });
  });

  describe("3. disabling a service the preset does not define", () => {
    it("xero-viewer: { enabled: false } is refused: it disables nothing, and the preset's names are listed", () => {
      const { file, text } = edited("agfa-ei-one-arm.yaml", "disabled.yaml", ["services:\n", "services:\n  xero-viewer: { enabled: false }\n"]);
      refuses(file, [
        place(text, "xero-viewer"),
        "services.xero-viewer: unknown service: preset agfa-ei defines core, dicom, hl7, xero, xero-xtend; enabled: false here disables nothing (write the preset service's name to turn it off)",
      ]);
    });

    it("a near miss gets its did-you-mean, disabled or not", () => {
      const off = edited("agfa-ei-one-arm.yaml", "near-off.yaml", ["services:\n", "services:\n  xero-xtnd: { enabled: false }\n"]);
      refuses(off.file, [
        place(off.text, "xero-xtnd"),
        "services.xero-xtnd: unknown service (did you mean 'xero-xtend'?): preset agfa-ei defines core, dicom, hl7, xero, xero-xtend; enabled: false here disables nothing (write the preset service's name to turn it off)",
      ]);
      const on = edited("agfa-ei-one-arm.yaml", "near-on.yaml", ["services:\n", "services:\n  dicon: { enabled: true }\n"]);
      refuses(on.file, [
        place(on.text, "dicon"),
        "services.dicon: unknown service (did you mean 'dicom'?): preset agfa-ei defines core, dicom, hl7, xero, xero-xtend; to change one, use its name; a service of your own needs vip and frontendPorts",
      ]);
    });
  });

  describe("5. more security group rules than one group takes", () => {
    /** The two-arm example with `n` servers on every AGFA EI port (about 9 outbound rules each on eth0). */
    const withServers = (n: number) => {
      const lines = Array.from({ length: n }, (_, i) => `  ei-core-${i + 1}: { address: 10.20.1.${21 + i}, aeTitle: EI_CORE }\n`).join("");
      return edited("agfa-ei-two-arm.yaml", `servers-${n}.yaml`, ["  ei-core-1: { address: 10.20.1.21, aeTitle: EI_CORE }\n  ei-core-2: { address: 10.20.1.22, aeTitle: EI_CORE }\n", lines]);
    };

    it("nine servers on the AGFA EI ports (83 outbound rules on eth0, over one group's 60): valid, the rules go into two groups", () => {
      const { file } = withServers(9);
      const r = cli("validate", file);
      assert.equal(r.stderr, "");
      assert.equal(r.stdout, `ok ${file}: ei-two-arm, two-arm, single load balancer, 4 services, 2 VIPs\n`);
      assert.equal(r.code, 0);
    });

    it("thirty-four servers (308 outbound rules, over 5 groups × 60): refused at servers, with the count and the fixes", () => {
      const { file, text } = withServers(34);
      refuses(file, [
        place(text, "servers:"),
        'servers: the security groups of lb-a eth0 need 308 outbound rules (35 address blocks × up to 9 ports or ranges), over the 300 that fit: 5 security groups per network interface × the quota of 60 outbound rules per group: one rule per real server address and port; give the servers contiguous ports where the application allows (merged into one range rule), serve fewer ports per server (servers.<name>.services), split the servers over two environments, or raise the quota in Service Quotas ("Inbound or outbound rules per security group", L-0EA8095F) and declare it as access.securityGroupRuleQuota (currently 60)',
      ]);
    });
  });

  describe("6. imaging-lb status: the user's AWS situation, not 'internal error' (SIMULATED AWS: moto's S3 and STS on loopback)", { timeout: 120_000 }, () => {
    let moto: ChildProcess;
    let endpoint: string;
    const PAIR = join(ROOT, "examples", "agfa-ei-ha-pair.yaml");
    const account = "123456789012"; // moto's STS account
    const bucket = `imaging-lb-ei-ha-pair-${account}`;
    /** `status` with moto's endpoint and test credentials (or none: `credentials` false). */
    const status = (file: string, credentials = true) => {
      const env: NodeJS.ProcessEnv = { ...process.env, AWS_ENDPOINT_URL: endpoint, AWS_REGION: "eu-west-1", AWS_EC2_METADATA_DISABLED: "true", AWS_CONFIG_FILE: join(dir.path, "no-config"), AWS_SHARED_CREDENTIALS_FILE: join(dir.path, "no-credentials") };
      for (const name of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"]) delete env[name];
      if (credentials) Object.assign(env, { AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing" });
      const run = spawnSync(process.execPath, [BIN, "status", file], { cwd: ROOT, encoding: "utf8", env, timeout: 60_000 });
      // The AWS SDK warns on Node 20 that its 2027 releases need Node 22: not imaging-lb's words.
      const stderr = run.stderr.replace(/^\(node:\d+\) Warning: NodeVersionSupportWarning:[\s\S]*?to show where the warning was created\)\n/, "");
      return { code: run.status, stdout: run.stdout, stderr };
    };
    const s3 = (...args: string[]) => {
      const r = spawnSync("python3", ["-c", S3_PUT, endpoint, ...args], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
    };

    before(async () => {
      const probe = spawnSync("python3", ["-c", "import moto.server, boto3"], { encoding: "utf8" });
      if (probe.status !== 0) throw new Error(`moto and boto3 are not importable by python3 (the machine image's Python carries moto 5.2): ${probe.stderr}`);
      const port = await freePort();
      endpoint = `http://127.0.0.1:${port}`;
      moto = spawn("python3", ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
      const deadline = Date.now() + 30_000;
      while (spawnSync("python3", ["-c", `import urllib.request; urllib.request.urlopen("${endpoint}/moto-api/")`]).status !== 0) {
        if (Date.now() > deadline) throw new Error("moto did not start within 30 s");
        await new Promise((r) => setTimeout(r, 300));
      }
    });
    after(() => {
      moto?.kill("SIGTERM");
    });

    it("no credentials: says so and how to provide them, exit 1", () => {
      const r = status(PAIR, false);
      assert.equal(
        r.stderr,
        "imaging-lb status: no AWS credentials found (asking AWS STS for your account, which names the configuration bucket): provide them as for the AWS CLI: `aws sso login --profile <name>` and AWS_PROFILE=<name>, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or a role of the machine or pipeline\n",
      );
      assert.equal(r.stdout, "");
      assert.equal(r.code, 1);
    });

    it("before the first deploy (no bucket): names the bucket, the stack and the account, exit 1", () => {
      const r = status(PAIR);
      assert.equal(
        r.stderr,
        `imaging-lb status: bucket ${bucket} does not exist: the stack ei-ha-pair may not be deployed yet (npx cdktf deploy ei-ha-pair), or it was deployed with another AWS account than the one of your credentials (${account}, the account in the bucket's name)\n`,
      );
      assert.equal(r.stdout, "");
      assert.equal(r.code, 1);
    });

    it("a status object that is not JSON: that node is reported unreadable, the other node as usual", () => {
      s3("create", bucket);
      s3("put", bucket, "ei-ha-pair/status/lb-a.json", "{");
      s3("put", bucket, "ei-ha-pair/status/lb-b.json", JSON.stringify({ node: "lb-b", result: "failed", desiredVersion: "0000000000000000", error: "haproxy -c refused it", updatedAt: "2026-12-01T10:00:00Z" }));
      const r = status(PAIR);
      assert.equal(r.stderr, "");
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^lb-a\s+pending\s+-\s+[0-9a-f]{16}\s+-\s+unreadable\s+-\s+\d+s ago\s+s3:\/\/imaging-lb-ei-ha-pair-123456789012\/ei-ha-pair\/status\/lb-a\.json is not a status report \(not JSON: [^\n]+\): the node's agent rewrites it at its next report; if it stays, read it with `aws s3 cp s3:\/\/imaging-lb-ei-ha-pair-123456789012\/ei-ha-pair\/status\/lb-a\.json -`$/m);
      assert.match(r.stdout, /^lb-b\s+pending\s+-\s+[0-9a-f]{16}\s+-\s+failed\s+0\.2\s+\d+s ago\s+haproxy -c refused it$/m);
    });
  });

  describe("7. a deleted line and a dedented field", () => {
    it("a certificate whose secretArn line was deleted: the missing field is named, not 'expected a mapping, got null'", () => {
      const { file, text } = edited("agfa-ei-one-arm.yaml", "no-arn.yaml", [
        '    web: { secretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ei-one-arm/web-tls-AbCdEf" }\n',
        "    web:\n",
      ]);
      refuses(file, [
        place(text, "web:", "certificates:"),
        'tls.certificates.web: missing required field secretArn: "web:" has no value (was the line under it deleted?); expected a mapping with secretArn; allowed here: secretArn, kmsKeyArn',
      ]);
    });

    it("aeTitle dedented into the mapping of server names: the indentation hint, not 'invalid name'", () => {
      const { file, text } = edited("agfa-ei-one-arm.yaml", "dedent.yaml", [
        "  ei-core-2: { address: 10.30.1.22, aeTitle: EI_CORE }\n",
        "  ei-core-2:\n    address: 10.30.1.22\n  aeTitle: EI_CORE\n",
      ]);
      refuses(file, [
        place(text, "aeTitle: EI_CORE\n", "ei-core-2:"),
        `servers.aeTitle: "aeTitle" is a field of a server, not the name of a server: it is indented one level too little; indent it under the server it belongs to ("ei-core-2:" above it), 2 spaces more than "ei-core-2:"`,
      ]);
    });

    it("address dedented the same way: one hint, and no 'missing required field' for the server above it", () => {
      const { file, text } = edited("agfa-ei-one-arm.yaml", "dedent-address.yaml", [
        "  ei-core-2: { address: 10.30.1.22, aeTitle: EI_CORE }\n",
        "  ei-core-2:\n    aeTitle: EI_CORE\n  address: 10.30.1.22\n",
      ]);
      refuses(file, [
        place(text, "address: 10.30.1.22"),
        `servers.address: "address" is a field of a server, not the name of a server: it is indented one level too little; indent it under the server it belongs to ("ei-core-2:" above it), 2 spaces more than "ei-core-2:"`,
      ]);
    });

    it("a field dedented out of a nested mapping (calledAeTitle out of healthCheck): the same hint", () => {
      const { file, text } = edited("agfa-ei-one-arm.yaml", "dedent-nested.yaml", [
        "    healthCheck: { type: dicom-echo, calledAeTitle: EI_CORE }\n",
        "    healthCheck:\n      type: dicom-echo\n    calledAeTitle: EI_CORE\n",
      ]);
      refuses(file, [
        place(text, "calledAeTitle"),
        'services.dicom.calledAeTitle: unknown field here: "calledAeTitle" is a field of healthCheck, the mapping above it, indented one level too little; indent it under "healthCheck:" (2 spaces more)',
      ]);
    });
  });

  describe("4. loadBalancer.instanceType changed alone", () => {
    it("diff says plainly that maxconn changes at the reload while the machine keeps its size, and both fixes", () => {
      const { file } = edited("agfa-ei-ha-pair.yaml", "bigger.yaml", ["instanceType: c6i.large", "instanceType: c6i.2xlarge"]);
      const r = cli("diff", "examples/agfa-ei-ha-pair.yaml", file);
      assert.equal(r.stderr, "");
      assert.equal(r.code, 0);
      for (const node of ["lb-a", "lb-b"]) {
        assert.ok(
          r.stdout.includes(
            `node ${node}: applied in place (reload)\n  loadBalancer.instanceType c6i.large → c6i.2xlarge: HAProxy's maxconn follows the instance type and changes at this reload (20000 → 80000), but the running instance stays c6i.large until loadBalancer.nodes.${node}.generation is raised; raise it in this change (one node per change), or hold maxconn with loadBalancer.haproxy.maxConnections: 20000 until every node runs c6i.2xlarge\n`,
          ),
          r.stdout,
        );
      }
      assert.match(r.stdout, /^-    maxconn 20000\n\+    maxconn 80000$/m, "the haproxy.cfg diff shows it");
    });

    it("with maxconn held or the generation raised, the usual verdicts", () => {
      const held = edited("agfa-ei-ha-pair.yaml", "held.yaml", ["instanceType: c6i.large", "instanceType: c6i.2xlarge\n  haproxy: { maxConnections: 20000 }"]);
      const before = edited("agfa-ei-ha-pair.yaml", "held-before.yaml", ["instanceType: c6i.large", "instanceType: c6i.large\n  haproxy: { maxConnections: 20000 }"]);
      const r = cli("diff", before.file, held.file);
      assert.match(r.stdout, /^node lb-a: no change\n {2}the machine definition changed but generation is still 1: the running instance keeps its machine until loadBalancer\.nodes\.lb-a\.generation is raised$/m);
      const raised = edited("agfa-ei-ha-pair.yaml", "raised.yaml", ["instanceType: c6i.large", "instanceType: c6i.2xlarge"], ["lb-a: { internalAddress: 10.40.1.10, externalAddress: 10.40.2.10 }", "lb-a: { internalAddress: 10.40.1.10, externalAddress: 10.40.2.10, generation: 2 }"]);
      const r2 = cli("diff", "examples/agfa-ei-ha-pair.yaml", raised.file);
      assert.match(r2.stdout, /^node lb-a: node replaced\n {2}generation 1 → 2: a new instance boots the current machine definition$/m);
      assert.match(r2.stdout, /^node lb-b: applied in place \(reload\)\n {2}loadBalancer\.instanceType c6i\.large → c6i\.2xlarge: HAProxy's maxconn follows/m);
    });
  });

  describe("8. messages printed twice, and the starter's header flagged", () => {
    it("diff with one file: the reason and the usage once, exit 2", () => {
      const r = cli("diff", "examples/agfa-ei-one-arm.yaml");
      assert.equal(
        r.stderr,
        "imaging-lb diff: expected two environment files (before, after), or --git <revision> and one file\n" +
          "usage: imaging-lb diff <before.yaml> <after.yaml> [--json] | imaging-lb diff --git <revision> <env.yaml> [--json]\n",
      );
      assert.equal(r.stdout, "");
      assert.equal(r.code, 2);
    });

    it("validate --strict on a starter whose every CHANGE ME mark and placeholder account is gone: the header comment is not a placeholder", () => {
      requireTool("haproxy", "haproxy");
      requireTool("openssl", "openssl");
      const file = join(dir.path, "finished.yaml");
      assert.equal(cli("init", "--layout", "one-arm", "--out", file).code, 0);
      const starter = readFileSync(file, "utf8");
      assert.match(starter, /^# `# CHANGE ME` with your site's/m, "the header explains the marks");
      const finished = starter.replace(/ +# CHANGE ME.*$/gm, "").replaceAll("123456789012", "210987654321");
      writeFileSync(file, finished);
      const r = cli("validate", "--strict", file);
      assert.equal(r.stderr, "");
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^ok .*finished\.yaml: /);
      // A mark left on a value line is still found, at its place.
      writeFileSync(file, finished.replace("instanceType: c6i.large", "instanceType: c6i.large   # CHANGE ME"));
      const marked = cli("validate", "--strict", file);
      assert.equal(marked.code, 1);
      const at = place(readFileSync(file, "utf8"), "# CHANGE ME", "instanceType");
      assert.equal(marked.stderr, `1 problem in ${file}:\n  ${file}:${at}: placeholder: a \`# CHANGE ME\` mark of the starter: replace the value with your site's and remove the mark\n`);
    });
  });
});
