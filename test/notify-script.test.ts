/**
 * Behaviour of the rendered VIP takeover script, run for real (bash, curl, the real AWS CLI) against a
 * SIMULATED EC2 API and a SIMULATED IMDSv2 service on 127.0.0.1 (test/helpers/fake-ec2.ts): no AWS account,
 * no traffic off the machine.
 *
 * The script's `ip` calls (its "still MASTER?" question, and the local addresses of a `--force` run) go through
 * `IMAGING_LB_IP_CMD`, pointed here at a SIMULATED `ip` (test/helpers/fake-ip.ts) that answers as if keepalived
 * held the floating addresses and logs instead of changing the host's interfaces; the interface MAC is
 * read from `IMAGING_LB_SYSFS_NET`, pointed at a temporary tree. Retry delays are shortened with
 * `IMAGING_LB_BACKOFF_MS`. Each test starts its own simulated services, so the tests run concurrently.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderNotifyScript, NotifyScriptSpec, VipFailover } from "../lib/keepalived";
import { SimulatedEc2Api, SimulatedImds, RecordedEc2Call } from "./helpers/fake-ec2";
import { FAKE_IP_SCRIPT, readFakeIpLog } from "./helpers/fake-ip";
import { HUNG_AFTER_MS, requireTool, tempDir, writeTree } from "./helpers/tools";

const MAC = "02:1a:2b:3c:4d:5e";
const ENI = "eni-0a1b2c3d4e5f60718";
const UNKNOWN_MAC = "02:00:5e:00:53:09";

let awsCli: string | undefined;

/** Debian's AWS CLI v2 (`awscli`); a `pip`/pyenv v1 earlier on PATH is not what the tests pin. */
function debianAwsCli(): string {
  if (awsCli !== undefined) {
    return awsCli;
  }
  requireTool("aws", "awscli");
  const cli = "/usr/bin/aws";
  if (!existsSync(cli)) {
    throw new Error("required tool '/usr/bin/aws' is not installed: install the Debian package 'awscli'");
  }
  const version = execFileSync(cli, ["--version"], { encoding: "utf8" });
  assert.match(version, /^aws-cli\/2\./, `expected AWS CLI v2 at ${cli}, got ${version}`);
  awsCli = cli;
  return cli;
}

interface RunResult {
  readonly code: number | null;
  readonly stderr: string;
  /** Arguments of every `ip` invocation that changes something, one string each. */
  readonly ipCalls: string[];
  /** How often the script asked whether keepalived still holds the floating addresses. */
  readonly masterChecks: number;
  /** Every call the simulated EC2 API received during this run. */
  readonly ec2Calls: RecordedEc2Call[];
}

/** A simulated AWS world and a way to run a rendered script in it. */
interface Harness {
  readonly ec2: SimulatedEc2Api;
  readonly imds: SimulatedImds;
  run(spec: NotifyScriptSpec, options?: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}

async function harness(): Promise<Harness> {
  requireTool("bash", "bash");
  requireTool("curl", "curl");
  requireTool("flock", "util-linux");
  requireTool("logger", "bsdutils");
  const aws = debianAwsCli();
  const dir = tempDir("notify");
  const ec2 = await SimulatedEc2Api.start();
  const imds = await SimulatedImds.start({ [MAC]: ENI, "02:99:99:99:99:99": "eni-0ffffffffffffffff" });
  const ipLog = join(dir.path, "ip-calls.log");
  writeTree(dir.path, {
    "sys/class/net/eth0/address": `${MAC.toUpperCase()}\n`,
    "sys/class/net/eth9/address": `${UNKNOWN_MAC}\n`,
    "bin/ip-recorder": FAKE_IP_SCRIPT,
  });
  chmodSync(join(dir.path, "bin/ip-recorder"), 0o755);
  let runs = 0;
  const run = async (spec: NotifyScriptSpec, options: RunOptions = {}): Promise<RunResult> => {
    runs += 1;
    const script = join(dir.path, `takeover-${runs}.sh`);
    writeFileSync(script, renderNotifyScript(spec), { mode: 0o755 });
    writeFileSync(ipLog, "");
    const callsBefore = ec2.calls.length;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dir.path,
      LANG: "C.UTF-8",
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_DEFAULT_REGION: "eu-west-1",
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_CONFIG_FILE: join(dir.path, "no-aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(dir.path, "no-aws-credentials"),
      AWS_ENDPOINT_URL_EC2: ec2.url,
      IMAGING_LB_IMDS_URL: imds.url,
      IMAGING_LB_AWS_CLI: options.awsCli ?? aws,
      IMAGING_LB_IP_CMD: join(dir.path, "bin/ip-recorder"),
      IMAGING_LB_TEST_IP_LOG: ipLog,
      IMAGING_LB_TEST_IP_HELD: (options.held ?? localAddresses(spec.failover)).join(" "),
      ...(options.heldFor === undefined ? {} : { IMAGING_LB_TEST_IP_HELD_FOR: String(options.heldFor) }),
      IMAGING_LB_SYSFS_NET: join(dir.path, "sys/class/net"),
      IMAGING_LB_LOCK_FILE: join(dir.path, "takeover.lock"),
      IMAGING_LB_BACKOFF_MS: "50",
      IMAGING_LB_MAX_BACKOFF_MS: "200",
    };
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn("bash", [script, ...(options.args ?? [])], { env, stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
      let hung = false;
      const timer = setTimeout(() => {
        hung = true;
        child.kill("SIGKILL");
      }, HUNG_AFTER_MS);
      child.on("error", reject);
      child.on("close", (exitCode) => {
        clearTimeout(timer);
        resolve({ code: exitCode, stderr: hung ? `${err}\n[killed as hung after ${HUNG_AFTER_MS / 1000} s]` : err });
      });
    });
    const { changes, masterChecks } = readFakeIpLog(ipLog);
    return { code, stderr, ipCalls: changes, masterChecks, ec2Calls: ec2.calls.slice(callsBefore) };
  };
  return {
    ec2,
    imds,
    run,
    close: async () => {
      await Promise.all([ec2.close(), imds.close()]);
      dir.cleanup();
    },
  };
}

interface RunOptions {
  /** The addresses keepalived holds on the interface (default: all of the mode's, i.e. this node is MASTER). */
  readonly held?: readonly string[];
  /** Hold them for the first N "still MASTER?" questions only (the node leaves MASTER during the run). */
  readonly heldFor?: number;
  /** The AWS CLI to run (default: Debian's). */
  readonly awsCli?: string;
  /** Arguments of the script, e.g. `--force`. */
  readonly args?: readonly string[];
}

/** The floating private addresses of a mode, which keepalived holds on the interface while MASTER. */
function localAddresses(f: VipFailover): string[] {
  switch (f.mode) {
    case "secondary-ip":
      return [...f.privateIps];
    case "elastic-ip":
      return f.associations.flatMap((a) => (a.privateIpAddress === undefined ? [] : [a.privateIpAddress]));
    case "route-table":
      return [...f.vips];
  }
}

function spec(failover: VipFailover, extra: Partial<NotifyScriptSpec> = {}): NotifyScriptSpec {
  return { envName: "prod", region: "eu-west-1", interfaceName: "eth0", failover, ...extra };
}

const SECONDARY_IP: VipFailover = { mode: "secondary-ip", privateIps: ["10.0.1.50", "10.0.1.51"] };

const ASSIGN_BOTH: RecordedEc2Call = {
  action: "AssignPrivateIpAddresses",
  params: {
    NetworkInterfaceId: ENI,
    "PrivateIpAddress.1": "10.0.1.50",
    "PrivateIpAddress.2": "10.0.1.51",
    AllowReassignment: "true",
  },
  status: 200,
};

/** IMDSv2 only: a token PUT first, then only token-bearing GETs, none refused. */
function assertImdsV2Only(imds: SimulatedImds): void {
  assert.deepEqual(imds.unauthorized, [], "a metadata request went without an IMDSv2 token");
  assert.deepEqual(
    imds.requests.map((r) => `${r.method} ${r.path} ${r.status}`).slice(0, 2),
    ["PUT /latest/api/token 200", `GET /latest/meta-data/network/interfaces/macs/${MAC}/interface-id 200`],
  );
}

async function withHarness(body: (h: Harness) => Promise<void>): Promise<void> {
  const h = await harness();
  try {
    await body(h);
  } finally {
    await h.close();
  }
}

describe("notify script against a SIMULATED EC2 API and IMDSv2", { concurrency: 2 }, () => {
  it("secondary-ip: assigns the floating IPs to this node's ENI with reassignment; keepalived owns the local addresses", () =>
    withHarness(async ({ imds, run }) => {
      const result = await run(spec(SECONDARY_IP));
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.ec2Calls, [ASSIGN_BOTH]);
      assert.deepEqual(result.ipCalls, [], "keepalived adds and removes the local addresses, not the script");
      assert.equal(result.masterChecks, 3, "still MASTER? after the lock, before the EC2 call, at the end");
      assertImdsV2Only(imds);
      assert.match(result.stderr, /imaging-lb-vip\[\d+\] info: takeover complete: prod floating addresses now on eni-0a1b2c3d4e5f60718 \(eth0\)/);
    }));

  it("elastic-ip: assigns the floating private IP first, then re-associates each Elastic IP with this ENI", () =>
    withHarness(async ({ imds, run }) => {
      const result = await run(
        spec({
          mode: "elastic-ip",
          associations: [
            { allocationId: "eipalloc-0123456789abcdef0" },
            { allocationId: "eipalloc-0123456789abcdef1", privateIpAddress: "10.0.1.60" },
          ],
        }),
      );
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.ec2Calls, [
        {
          action: "AssignPrivateIpAddresses",
          params: { NetworkInterfaceId: ENI, "PrivateIpAddress.1": "10.0.1.60", AllowReassignment: "true" },
          status: 200,
        },
        {
          action: "AssociateAddress",
          params: { AllocationId: "eipalloc-0123456789abcdef0", NetworkInterfaceId: ENI, AllowReassociation: "true" },
          status: 200,
        },
        {
          action: "AssociateAddress",
          params: {
            AllocationId: "eipalloc-0123456789abcdef1",
            NetworkInterfaceId: ENI,
            PrivateIpAddress: "10.0.1.60",
            AllowReassociation: "true",
          },
          status: 200,
        },
      ]);
      assert.deepEqual(result.ipCalls, []);
      assert.equal(result.masterChecks, 5, "after the lock, before each of the 3 EC2 calls, at the end");
      assertImdsV2Only(imds);
    }));

  it("route-table: points the VIP's /32 route at this ENI in every route table", () =>
    withHarness(async ({ imds, run }) => {
      const result = await run(
        spec({ mode: "route-table", vips: ["192.0.2.10"], routeTableIds: ["rtb-0123456789abcdef0", "rtb-0fedcba9876543210"] }),
      );
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(
        result.ec2Calls,
        ["rtb-0123456789abcdef0", "rtb-0fedcba9876543210"].map((rtb) => ({
          action: "ReplaceRoute",
          params: { RouteTableId: rtb, DestinationCidrBlock: "192.0.2.10/32", NetworkInterfaceId: ENI },
          status: 200,
        })),
      );
      assert.deepEqual(result.ipCalls, []);
      assertImdsV2Only(imds);
    }));

  it("stands down without any EC2 or IMDS call when keepalived no longer holds the floating addresses (a queued run after leaving MASTER)", () =>
    withHarness(async ({ imds, run }) => {
      const result = await run(spec(SECONDARY_IP), { held: [] });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.ec2Calls, []);
      assert.deepEqual(imds.requests, []);
      assert.deepEqual(result.ipCalls, []);
      assert.match(result.stderr, /notice: no longer MASTER \(10\.0\.1\.50 is not on eth0\): standing down/);
      assert.doesNotMatch(result.stderr, /takeover complete|becoming MASTER/);
    }));

  it("a look-alike address on the interface (10.0.1.5, 10.0.1.500, 110.0.1.50) does not count as holding 10.0.1.50", () =>
    withHarness(async ({ run }) => {
      const result = await run(spec(SECONDARY_IP), { held: ["10.0.1.5", "10.0.1.500", "110.0.1.50"] });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.ec2Calls, [], "10.0.1.50 is not held, only look-alikes");
    }));

  it("stops retrying when the node leaves MASTER between two attempts, and exits 0", () =>
    withHarness(async ({ ec2, run }) => {
      ec2.failNext({ status: 503, code: "Unavailable" });
      const result = await run(spec(SECONDARY_IP), { heldFor: 2 });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.ec2Calls, [{ ...ASSIGN_BOTH, status: 503 }], "no second attempt after leaving MASTER");
      assert.match(result.stderr, /attempt 1\/5 failed, retrying/);
      assert.match(result.stderr, /standing down, the MASTER moves the addresses/);
    }));

  it("says so when the node left MASTER while its last EC2 call was in flight", () =>
    withHarness(async ({ run }) => {
      const result = await run(spec(SECONDARY_IP), { heldFor: 2 });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.ec2Calls, [ASSIGN_BOTH]);
      assert.match(result.stderr, /warning: left MASTER during the takeover: prod floating addresses may stay on eni-\w+ until the MASTER's takeover moves them/);
      assert.doesNotMatch(result.stderr, /takeover complete/);
    }));

  it("runs the AWS CLI niced (10), so keepalived's health checks never wait behind its start-up", () =>
    withHarness(async ({ run }) => {
      const dir = tempDir("notify-nice");
      try {
        const log = join(dir.path, "nice.log");
        const wrapper = join(dir.path, "aws");
        writeFileSync(wrapper, `#!/bin/sh\nnice >> ${log}\nexec ${debianAwsCli()} "$@"\n`, { mode: 0o755 });
        const result = await run(spec(SECONDARY_IP), { awsCli: wrapper });
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(result.ec2Calls, [ASSIGN_BOTH]);
        assert.equal(readFileSync(log, "utf8"), `${Math.min(19, Number(execFileSync("nice", { encoding: "utf8" })) + 10)}\n`);
      } finally {
        dir.cleanup();
      }
    }));

  it("--force (an operator's run, keepalived stopped) skips the MASTER check and adds the local addresses itself", () =>
    withHarness(async ({ run }) => {
      const result = await run(spec(SECONDARY_IP), { held: [], args: ["--force"] });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.ec2Calls, [ASSIGN_BOTH]);
      assert.deepEqual(result.ipCalls, ["-4 addr replace 10.0.1.50/32 dev eth0", "-4 addr replace 10.0.1.51/32 dev eth0"]);
      assert.equal(result.masterChecks, 0);
      assert.match(result.stderr, /takeover complete/);
    }));

  it("elastic-ip on the ENI's primary address only: nothing to check, the run goes to the end", () =>
    withHarness(async ({ run }) => {
      const result = await run(spec({ mode: "elastic-ip", associations: [{ allocationId: "eipalloc-0123456789abcdef0" }] }), { held: [] });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.ec2Calls.map((c) => c.action), ["AssociateAddress"]);
      assert.equal(result.masterChecks, 0);
    }));

  it("retries an API error (503 then 200) with backoff and succeeds, logging the failed attempt", () =>
    withHarness(async ({ ec2, run }) => {
      ec2.failNext({ status: 503, code: "Unavailable" });
      const result = await run(spec(SECONDARY_IP));
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.ec2Calls, [{ ...ASSIGN_BOTH, status: 503 }, ASSIGN_BOTH]);
      assert.match(result.stderr, /warning: AssignPrivateIpAddresses 10\.0\.1\.50 10\.0\.1\.51 -> eni-\w+: attempt 1\/5 failed, retrying in 50 ms: .*Unavailable/);
      assert.match(result.stderr, /info: AssignPrivateIpAddresses .*: ok \(attempt 2\/5\)/);
    }));

  it("exits non-zero after the last of N attempts when every attempt fails (5xx and 4xx alike), logging why, without local changes", () =>
    withHarness(async ({ ec2, run }) => {
      ec2.failNext(
        { status: 503, code: "Unavailable" },
        { status: 500, code: "InternalError" },
        { status: 403, code: "UnauthorizedOperation" },
      );
      const result = await run(spec(SECONDARY_IP, { maxAttempts: 3 }));
      assert.equal(result.code, 1, result.stderr);
      assert.deepEqual(result.ec2Calls, [503, 500, 403].map((status) => ({ ...ASSIGN_BOTH, status })));
      assert.match(result.stderr, /attempt 1\/3 failed, retrying in 50 ms: .*Unavailable/);
      assert.match(result.stderr, /attempt 2\/3 failed, retrying in 100 ms: .*InternalError/, "the delay doubles");
      assert.match(result.stderr, /err: AssignPrivateIpAddresses .*: attempt 3\/3 failed, giving up: .*UnauthorizedOperation/);
      assert.match(result.stderr, /err: could not assign 10\.0\.1\.50 10\.0\.1\.51 to eni-\w+; takeover of prod floating addresses FAILED/);
      assert.deepEqual(result.ipCalls, []);
    }));

  it("is idempotent: a second run makes the same calls and exits 0", () =>
    withHarness(async ({ run }) => {
      const first = await run(spec(SECONDARY_IP));
      const second = await run(spec(SECONDARY_IP));
      assert.equal(first.code, 0, first.stderr);
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(second.ec2Calls, first.ec2Calls);
      assert.deepEqual(second.ipCalls, first.ipCalls);
    }));

  it("fails after retrying, without calling EC2, when IMDS does not know the interface's MAC", () =>
    withHarness(async ({ imds, run }) => {
      const result = await run(spec(SECONDARY_IP, { interfaceName: "eth9", maxAttempts: 2 }));
      assert.equal(result.code, 1, result.stderr);
      assert.deepEqual(result.ec2Calls, []);
      assert.deepEqual(
        imds.requests.map((r) => `${r.method} ${r.path} ${r.status}`),
        [
          "PUT /latest/api/token 200",
          `GET /latest/meta-data/network/interfaces/macs/${UNKNOWN_MAC}/interface-id 404`,
          `GET /latest/meta-data/network/interfaces/macs/${UNKNOWN_MAC}/interface-id 404`,
        ],
      );
      assert.match(result.stderr, /err: no ENI id for eth9 \(02:00:5e:00:53:09\) from IMDS; takeover of prod floating addresses FAILED/);
    }));

  it("rejects invalid input, listing every problem at once", () => {
    assert.throws(
      () =>
        renderNotifyScript({
          envName: "Prod",
          region: "europe",
          interfaceName: "eth 0",
          failover: { mode: "route-table", vips: ["192.0.2.10/32"], routeTableIds: ["rtb-1", "rtb-1"] },
          maxAttempts: 0,
        }),
      {
        name: "HaSpecError",
        message: [
          "invalid notify script spec for Prod (8 problems):",
          '  - envName: expected 1-32 characters [a-z0-9-], starting with a letter and not ending with \'-\', got "Prod"',
          '  - region: expected an AWS region such as eu-west-1, got "europe"',
          '  - interfaceName: expected a Linux interface name of 1-15 characters [A-Za-z0-9_.-], e.g. eth0, got "eth 0"',
          "  - maxAttempts: expected an integer 1-100, got 0",
          '  - failover.vips[0]: expected an IPv4 address such as 10.0.1.50 (no prefix length), got "192.0.2.10/32"',
          '  - failover.routeTableIds[0]: expected an id such as rtb-0123456789abcdef0, got "rtb-1"',
          '  - failover.routeTableIds[1]: expected an id such as rtb-0123456789abcdef0, got "rtb-1"',
          '  - failover.routeTableIds: expected distinct values, got ["rtb-1", "rtb-1"]; remove the duplicate "rtb-1"',
        ].join("\n"),
      },
    );
  });

  it("renders a bash script with strict mode and the mode's addresses as quoted arrays", () => {
    const text = renderNotifyScript(spec(SECONDARY_IP));
    assert.ok(text.startsWith("#!/usr/bin/env bash\n# Generated by imaging-lb: VIP takeover for environment \"prod\" (mode secondary-ip).\n"));
    assert.match(text, /^set -euo pipefail$/m);
    assert.match(text, /^readonly PRIVATE_IPS=\("10\.0\.1\.50" "10\.0\.1\.51"\)$/m);
    assert.equal(renderNotifyScript(spec(SECONDARY_IP)), text, "deterministic");
  });

  it("the simulated IMDS refuses requests without a token (so the IMDSv2-only assertions mean something)", () =>
    withHarness(async ({ imds }) => {
      const response = await fetch(`${imds.url}/latest/meta-data/network/interfaces/macs/${MAC}/interface-id`);
      assert.equal(response.status, 401);
      assert.equal(imds.unauthorized.length, 1);
    }));
});
