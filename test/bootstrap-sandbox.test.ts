/**
 * Runs the rendered bootstrap for real, with bash, in a sandbox:
 * - cloud-init's `write_files` stage is simulated by writing the user data's files under a temp root;
 * - `IMAGING_LB_ROOT=<root>` so every path the scripts write lands in the tree;
 * - a SIMULATED IMDSv2 on 127.0.0.1 (test/helpers/fake-imds.ts) answers the metadata reads;
 * - PATH holds only recording stubs for the commands that change the host (apt-get, systemctl, ip,
 *   iptables, sysctl, netplan, hostnamectl, aws, ...) plus an allow-list of harmless real tools, so a
 *   command the test did not foresee fails the run instead of touching this machine;
 * - `haproxy` is the real binary behind a recording wrapper: `haproxy -dW -c` really validates.
 * `ip` and `iptables` stubs keep state (rules added) so running twice shows whether rules are duplicated.
 */
import { strict as assert } from "node:assert";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { renderUserData, type BootstrapSpec } from "../lib/bootstrap";
import { ENI0, ENI1, MAC0, MAC1, makeSandbox, modeOf, runBootstrap, snapshot, type Sandbox } from "./helpers/bootstrap-sandbox";
import { startFakeImds, type FakeEni, type FakeImds } from "./helpers/fake-imds";
import { makeSelfSignedPem, requireTool, tempDir } from "./helpers/tools";

describe("bootstrap sandbox (real bash, stubbed host commands, SIMULATED IMDSv2)", { concurrency: true }, () => {
  let work: { path: string; cleanup: () => void };
  let pem: string;
  const servers: FakeImds[] = [];

  before(() => {
    requireTool("bash", "bash");
    requireTool("curl", "curl");
    requireTool("flock", "util-linux");
    work = tempDir("bootstrap-sandbox");
    pem = makeSelfSignedPem(work.path, "xero.imaging-lb.test");
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    work.cleanup();
  });

  const imds = async (enis: FakeEni[]): Promise<FakeImds> => {
    const server = await startFakeImds(enis);
    servers.push(server);
    return server;
  };

  const twoArmSpec = (overrides: Partial<BootstrapSpec> = {}): BootstrapSpec => ({
    envName: "prod",
    nodeName: "lb-a",
    region: "eu-central-1",
    haproxy: { source: "ppa", version: "3.0" },
    interfaces: [
      { name: "eth0", role: "internal", deviceIndex: 0, subnetCidr: "10.0.1.0/24" },
      { name: "eth1", role: "external", deviceIndex: 1, subnetCidr: "10.0.2.0/24" },
    ],
    configStore: { prefix: "prod" },
    nonlocalBind: true,
    tproxy: true,
    cloudWatchLogGroup: "/imaging-lb/prod",
    extraServices: ["keepalived"],
    systemUsers: [],
    ...overrides,
  });

  it("two-arm Ubuntu: waits for the hot-plugged eth1, writes every file, validates before enabling, and a second run changes nothing", async () => {
    const dir = join(work.path, "two-arm");
    const root = join(dir, "root");
    const spec = twoArmSpec();
    const sb = makeSandbox(dir, renderUserData(spec), pem);
    // eth0's lookup lists the MACs once, then eth1 is missing for two more listings before EC2 attaches it.
    const server = await imds([ENI0, { ...ENI1, attached: false, attachAfterListings: 3 }]);
    // What cloud-init wrote on first boot (ens5 by MAC), before the bootstrap: it is set aside (the boot
    // test found the move failing when nothing else had created /etc/imaging-lb yet).
    mkdirSync(join(root, "etc/netplan"), { recursive: true });
    writeFileSync(join(root, "etc/netplan/50-cloud-init.yaml"), "network: {version: 2, ethernets: {ens5: {dhcp4: true}}}\n");

    const first = await runBootstrap(sb, server.url);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /waiting for the ENI with device-number 1/);
    assert.ok(!existsSync(join(root, "etc/netplan/50-cloud-init.yaml")), "cloud-init's own netplan is set aside");
    assert.match(readFileSync(join(root, "etc/imaging-lb/50-cloud-init.yaml.disabled"), "utf8"), /ens5/);
    assert.equal(server.unauthorized(), 0, "every IMDS read carried an IMDSv2 token");

    // Network: both MACs named, policy routing for eth1 from its primary address and subnet.
    const netplan = readFileSync(join(root, "etc/netplan/60-imaging-lb.yaml"), "utf8");
    assert.match(netplan, new RegExp(`macaddress: "${MAC0}"\\n      set-name: eth0`));
    assert.match(netplan, new RegExp(`macaddress: "${MAC1}"\\n      set-name: eth1`));
    assert.match(netplan, /- from: 10\.0\.2\.10\/32\n {10}table: 1001/);
    assert.match(netplan, /- to: 0\.0\.0\.0\/0\n {10}via: 10\.0\.2\.1\n {10}on-link: true\n {10}table: 1001/);
    assert.equal(modeOf(join(root, "etc/netplan/60-imaging-lb.yaml")), "600");
    assert.ok(first.commands.includes("netplan apply"));
    // The real netplan accepts it and renders the networkd policy routing (in a copy: the tree stays as-is).
    const netplanRoot = join(dir, "netplan-check");
    mkdirSync(join(netplanRoot, "etc/netplan"), { recursive: true });
    copyFileSync(join(root, "etc/netplan/60-imaging-lb.yaml"), join(netplanRoot, "etc/netplan/60-imaging-lb.yaml"));
    const generate = spawnSync(requireTool("netplan", "netplan.io"), ["generate", "--root-dir", netplanRoot], { encoding: "utf8" });
    assert.equal(generate.status, 0, generate.stderr);
    const eth1Network = readFileSync(join(netplanRoot, "run/systemd/network/10-netplan-eth1.network"), "utf8");
    assert.match(eth1Network, /\[RoutingPolicyRule\]\nFrom=10\.0\.2\.10\/32\nTable=1001\n/);
    assert.match(eth1Network, /\[RoutingPolicyRule\]\nFrom=10\.0\.2\.0\/24\nTable=1001\n/);
    assert.match(eth1Network, /Gateway=10\.0\.2\.1\nGatewayOnLink=true\nTable=1001/);
    assert.match(readFileSync(join(netplanRoot, "run/systemd/network/10-netplan-eth1.link"), "utf8"), new RegExp(`MACAddress=${MAC1}[\\s\\S]*Name=eth1`));
    assert.ok(existsSync(join(root, "etc/udev/rules.d/90-imaging-lb-eni.rules")));

    // Configuration: none in the user data; the agent runs once, told where its bundle lives (the bucket named
    // after the account the SIMULATED IMDS reports); its service is enabled before that first run.
    assert.ok(!existsSync(join(root, "etc/haproxy/haproxy.cfg")), "the bootstrap writes no haproxy.cfg: the agent does");
    assert.equal(
      readFileSync(join(sb.state, "agent.env.seen"), "utf8").split("\n").filter((l) => l && !l.startsWith("#")).join(" "),
      "BUCKET=imaging-lb-prod-123456789012 PREFIX=prod NODE=lb-a ENVIRONMENT=prod REGION=eu-central-1",
    );
    const agent = first.commands.findIndex((c) => c.trim() === "imaging-lb-agent --once --boot");
    assert.ok(agent > first.commands.indexOf("systemctl stop haproxy.service"), "HAProxy's sample configuration is stopped first");
    const service = first.commands.indexOf("systemctl enable --now imaging-lb-agent.service");
    assert.ok(service >= 0 && service < agent, `the service is on before the first apply, so a failed one is retried:\n${first.commands.join("\n")}`);
    assert.match(readFileSync(join(root, "etc/systemd/system/haproxy.service.d/50-imaging-lb.conf"), "utf8"), /^LimitNOFILE=1048576$/m);

    // Kernel, hostname, packages, timers, extra files and services, log shipping.
    const sysctl = readFileSync(join(root, "etc/sysctl.d/60-imaging-lb.conf"), "utf8");
    assert.match(sysctl, /^net\.ipv4\.ip_nonlocal_bind = 1$/m);
    assert.match(sysctl, /^net\.ipv4\.ip_forward = 1$/m);
    assert.ok(first.commands.includes(`sysctl -p ${root}/etc/sysctl.d/60-imaging-lb.conf`));
    assert.ok(first.commands.includes("hostnamectl set-hostname lb-a"));
    assert.ok(first.commands.includes("add-apt-repository -y ppa:vbernat/haproxy-3.0"));
    assert.ok(first.commands.some((c) => /^apt-get install .* haproxy iptables keepalived$/.test(c)));
    assert.match(readFileSync(join(root, "etc/systemd/system/imaging-lb-agent.service"), "utf8"), /^Restart=always$/m, "one long-lived agent, restarted by systemd");
    assert.match(readFileSync(join(root, "etc/systemd/system/imaging-lb-agent.service"), "utf8"), /^Nice=10$/m, "the agent runs below keepalived's health checks");
    assert.match(readFileSync(join(root, "opt/aws/amazon-cloudwatch-agent/etc/imaging-lb.json"), "utf8"), /"log_group_name": "\/imaging-lb\/prod"/);

    // TProxy: exactly one rule each.
    assert.equal(readFileSync(join(sb.state, "ip-rules"), "utf8"), "fwmark 1 lookup 100\n");
    assert.equal(
      readFileSync(join(sb.state, "iptables"), "utf8"),
      "chain mangle DIVERT\nrule mangle PREROUTING -p tcp -m socket -j DIVERT\nrule mangle DIVERT -j MARK --set-mark 1\nrule mangle DIVERT -j ACCEPT\n",
    );

    const tree = snapshot(root);
    const state = snapshot(sb.state);
    const second = await runBootstrap(sb, server.url);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(snapshot(root), tree, "the second run leaves the tree identical");
    assert.deepEqual(snapshot(sb.state), state, "the second run adds no ip rule or iptables rule");
    for (const disruptive of ["netplan apply", "ip rule add", "iptables -t mangle -A", "iptables -t mangle -N", "systemctl restart", "systemctl reload"]) {
      assert.ok(!second.commands.some((c) => c.startsWith(disruptive)), `second run ran '${disruptive}':\n${second.commands.join("\n")}`);
    }
    assert.ok(second.commands.some((c) => c.trim() === "imaging-lb-agent --once --boot"), "the agent runs again (it converges on its own)");
  });

  it("eth1 never attached: the wait is bounded, eth0 is configured and the udev rule will handle a later attach", async () => {
    const dir = join(work.path, "no-eth1");
    const root = join(dir, "root");
    const spec = twoArmSpec({ tproxy: false, cloudWatchLogGroup: undefined, extraServices: [] });
    const sb = makeSandbox(dir, renderUserData(spec), pem);
    const server = await imds([ENI0, { ...ENI1, attached: false }]);
    const run = await runBootstrap(sb, server.url, { IMAGING_LB_ENI_WAIT_SECONDS: "1" });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /no ENI with device-number 1 after 1s/);
    const netplan = readFileSync(join(root, "etc/netplan/60-imaging-lb.yaml"), "utf8");
    assert.match(netplan, /set-name: eth0/);
    assert.doesNotMatch(netplan, /eth1/);
    assert.match(readFileSync(join(root, "etc/udev/rules.d/90-imaging-lb-eni.rules"), "utf8"), /start imaging-lb-network\.service/);

    // The ENI arrives; the hot-plug service re-runs the network script, which now adds eth1.
    server.attach(MAC1);
    const rerun = await new Promise<number | null>((resolve) => {
      const child = spawn(requireTool("bash", "bash"), [join(root, "usr/local/sbin/imaging-lb-network")], {
        env: { ...sb.env, IMAGING_LB_IMDS_URL: server.url },
        stdio: "ignore",
      });
      child.on("close", resolve);
    });
    assert.equal(rerun, 0);
    assert.match(readFileSync(join(root, "etc/netplan/60-imaging-lb.yaml"), "utf8"), new RegExp(`macaddress: "${MAC1}"\\n      set-name: eth1`));
  });

  const oneArmSpec = (overrides: Partial<BootstrapSpec> = {}): BootstrapSpec =>
    twoArmSpec({
      haproxy: { source: "distribution" },
      interfaces: [{ name: "eth0", role: "internal", deviceIndex: 0, subnetCidr: "10.0.1.0/24" }],
      tproxy: false,
      cloudWatchLogGroup: undefined,
      extraServices: [],
      ...overrides,
    });

  /** Runs the network script alone (the IMDS reads). */
  const runNetwork = (sb: Sandbox, imdsUrl: string, extraEnv: NodeJS.ProcessEnv = {}) => runBootstrap(sb, imdsUrl, extraEnv, "imaging-lb-network");

  /** A 127.0.0.1 port nothing listens on (connections are refused). */
  const freePort = async (): Promise<number> => {
    const probe = await startFakeImds([]);
    const port = Number(new URL(probe.url).port);
    await probe.close();
    return port;
  };

  it("Debian 13 on a pre-baked image: no apt-get at all (no mirror needed); otherwise apt installs awscli (no snap) and retries a failed apt-get", async () => {
    const baked = join(work.path, "debian-baked");
    const spec = oneArmSpec({ os: "debian-13" });
    const sbBaked = makeSandbox(baked, renderUserData(spec), pem);
    const server = await imds([ENI0]);
    const fast = await runBootstrap(sbBaked, server.url, { STUB_INSTALLED: "1" });
    assert.equal(fast.code, 0, fast.stderr);
    assert.match(fast.stderr, /packages already installed: haproxy socat awscli|packages already installed: haproxy awscli/);
    assert.ok(!fast.commands.some((c) => c.startsWith("apt-get") || c.startsWith("snap") || c.startsWith("add-apt-repository")), fast.commands.join("\n"));

    const fresh = join(work.path, "debian-fresh");
    const sbFresh = makeSandbox(fresh, renderUserData(oneArmSpec({ os: "debian-13" })), pem);
    const slow = await runBootstrap(sbFresh, server.url, { STUB_APT_FAILURES: "1", IMAGING_LB_RETRY_DELAY: "0" });
    assert.equal(slow.code, 0, slow.stderr);
    assert.match(slow.stderr, /apt-get update failed \(exit status 100\), try 1 of 6: retrying/);
    assert.equal(slow.commands.filter((c) => c.startsWith("apt-get update")).length, 2, "apt-get update retried once");
    assert.ok(slow.commands.some((c) => /^apt-get install .* haproxy awscli$/.test(c)), slow.commands.join("\n"));
    assert.ok(!slow.commands.some((c) => c.startsWith("snap")), "Debian's AWS CLI is a package, not a snap");
  });

  it("a baked image (loadBalancer.image baked): nothing installed, the image checked; what it lacks, or another HAProxy series, fails the bootstrap with bootstrap-failed naming it", async () => {
    const server = await imds([ENI0]);
    const series = /HAProxy version (\d+\.\d+)\./.exec(spawnSync(requireTool("haproxy", "haproxy"), ["-v"], { encoding: "utf8" }).stdout)?.[1];
    assert.ok(series, "the real haproxy's series");
    const spec = oneArmSpec({ os: "debian-13", image: "baked", haproxy: { source: "distribution", version: series }, extraPackages: ["socat"], extraServices: ["keepalived"] });
    const manifest = `{\n  "recipe": "${series}.123456",\n  "os": "debian-13",\n  "haproxy": "${series}.1",\n  "packages": {}\n}\n`;
    const baked = (name: string, withManifest = true): Sandbox => {
      const sb = makeSandbox(join(work.path, name), renderUserData(spec), pem);
      if (withManifest) {
        mkdirSync(join(sb.root, "usr/share/imaging-lb"), { recursive: true });
        writeFileSync(join(sb.root, "usr/share/imaging-lb/image.json"), manifest);
      }
      return sb;
    };
    const installs = (r: { commands: string[] }) => r.commands.filter((c) => /^(apt-get|dnf|snap|add-apt-repository)\b/.test(c));

    const ok = await runBootstrap(baked("baked-ok"), server.url, { STUB_INSTALLED: "1" });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, new RegExp(`image check: baked by recipe ${series.replace(".", "\\.")}\\.123456, HAProxy ${series.replace(".", "\\.")}, every package present \\(haproxy socat keepalived awscli\\): nothing installed`));
    assert.deepEqual(installs(ok), [], "no package manager runs on a baked image");
    assert.ok(ok.commands.includes("imaging-lb-agent --once --boot"), "and it goes on to the first apply");

    const status = (sb: Sandbox) => JSON.parse(readFileSync(join(sb.state, "put-object.body"), "utf8")) as Record<string, string>;
    const lacking = baked("baked-lacking");
    const missing = await runBootstrap(lacking, server.url, { STUB_INSTALLED: "1", STUB_MISSING: "keepalived socat" });
    assert.notEqual(missing.code, 0);
    assert.deepEqual(installs(missing), [], "never a wait on a mirror");
    assert.equal(status(lacking).result, "bootstrap-failed");
    assert.match(status(lacking).error, /^the baked image lacks socat keepalived: bake it again with this environment's recipe \(imaging-lb render image-recipe; docs\/baked-image\.md\)$/);

    const foreign = baked("baked-no-manifest", false);
    const unbaked = await runBootstrap(foreign, server.url, { STUB_INSTALLED: "1" });
    assert.notEqual(unbaked.code, 0);
    assert.match(status(foreign).error, /^loadBalancer\.image is baked, but this image has no \/usr\/share\/imaging-lb\/image\.json: it was not baked by imaging-lb's recipe/);

    const other = oneArmSpec({ os: "debian-13", image: "baked", haproxy: { source: "distribution", version: series === "3.0" ? "3.2" : "3.0" } });
    const wrong = makeSandbox(join(work.path, "baked-series"), renderUserData(other), pem);
    mkdirSync(join(wrong.root, "usr/share/imaging-lb"), { recursive: true });
    writeFileSync(join(wrong.root, "usr/share/imaging-lb/image.json"), manifest);
    const mismatch = await runBootstrap(wrong, server.url, { STUB_INSTALLED: "1" });
    assert.notEqual(mismatch.code, 0);
    assert.match(status(wrong).error, new RegExp(`^the baked image has HAProxy ${series.replace(".", "\\.")}, the environment pins the ${other.haproxy!.version!.replace(".", "\\.")} series`));
    assert.deepEqual(installs(mismatch), []);
  });

  it("a bootstrap failing before the agent runs writes this node's status (bootstrap-failed and why) to S3; a failing first apply leaves the agent's own", async () => {
    const server = await imds([ENI0]);
    const spec = oneArmSpec({ os: "debian-13" });
    const sb = makeSandbox(join(work.path, "report-failure"), renderUserData(spec), pem);
    const failed = await runBootstrap(sb, server.url, { STUB_APT_FAILURES: "100", IMAGING_LB_RETRIES: "2", IMAGING_LB_RETRY_DELAY: "0" });
    assert.notEqual(failed.code, 0);
    const put = failed.commands.find((c) => c.startsWith("aws s3api put-object"));
    assert.ok(put, failed.commands.join("\n"));
    const bucket = `imaging-lb-${spec.envName}-123456789012`; // the account the SIMULATED IMDS reports
    assert.match(put, new RegExp(`--bucket ${bucket} --key ${spec.configStore.prefix}/status/${spec.nodeName}\\.json `));
    const status = JSON.parse(readFileSync(join(sb.state, "put-object.body"), "utf8")) as Record<string, string>;
    assert.equal(status.result, "bootstrap-failed");
    assert.equal(status.node, spec.nodeName);
    assert.equal(status.environment, spec.envName);
    assert.match(status.error, /install_packages|apt-get/);
    assert.match(failed.stderr, /failure reported to s3:\/\//);

    // The agent ran and failed: its own status (written by the agent) stays; the bootstrap adds none.
    const sb2 = makeSandbox(join(work.path, "report-agent-failure"), renderUserData(spec), pem);
    const agentFailed = await runBootstrap(sb2, server.url, { STUB_INSTALLED: "1", STUB_AGENT_EXIT: "1" });
    assert.notEqual(agentFailed.code, 0);
    assert.match(agentFailed.stderr, /the first configuration apply failed/);
    assert.ok(!agentFailed.commands.some((c) => c.startsWith("aws s3api put-object")), agentFailed.commands.join("\n"));
  });

  it("IMDS resetting the first connections: every read is retried, the script succeeds with the right ENI", async () => {
    const dir = join(work.path, "imds-resets");
    const sb = makeSandbox(dir, renderUserData(oneArmSpec()), pem);
    const server = await startFakeImds([ENI0], { resetFirstConnections: 3 });
    servers.push(server);
    const run = await runNetwork(sb, server.url, { IMAGING_LB_RETRY_DELAY: "0" });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /IMDSv2 token request to http:\/\/127\.0\.0\.1:\d+ failed \(exit status 56\), try 1 of 6/);
    assert.match(readFileSync(join(sb.root, "etc/netplan/60-imaging-lb.yaml"), "utf8"), new RegExp(`macaddress: "${MAC0}"`));
    assert.equal(server.unauthorized(), 0, "no read went out without a token");
  });

  it("IMDS refusing connections for 9 s, then answering: bounded back-off outlasts it (curl's --retry gives up after 7 s)", async () => {
    const dir = join(work.path, "imds-refused");
    const sb = makeSandbox(dir, renderUserData(oneArmSpec()), pem);
    const port = await freePort();
    const later = new Promise<FakeImds>((resolve) => {
      setTimeout(() => void startFakeImds([ENI0], { port }).then((s) => (servers.push(s), resolve(s))), 9000);
    });
    const run = await runNetwork(sb, `http://127.0.0.1:${port}`);
    await later;
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /failed \(exit status 7\), try 1 of 6: retrying in 2s/);
    assert.match(readFileSync(join(sb.root, "etc/netplan/60-imaging-lb.yaml"), "utf8"), new RegExp(`macaddress: "${MAC0}"`));
  });

  it("IMDS never answering: the script fails with IMDS's real error, not 'no ENI with device-number 0'", async () => {
    const dir = join(work.path, "imds-down");
    const sb = makeSandbox(dir, renderUserData(oneArmSpec()), pem);
    const run = await runNetwork(sb, `http://127.0.0.1:${await freePort()}`, { IMAGING_LB_RETRIES: "2", IMAGING_LB_RETRY_DELAY: "0" });
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /curl: \(7\) Failed to connect/);
    assert.match(run.stderr, /IMDSv2 token request to http:\/\/127\.0\.0\.1:\d+ failed 2 times \(exit status 7\): giving up/);
    assert.match(run.stderr, /ERROR: cannot list the ENIs from IMDS/);
    assert.doesNotMatch(run.stderr, /no ENI with device-number 0/);
  });

  it("two-arm AL2023: systemd .link/.network files by MAC, live renames once, dnf packages", async () => {
    const dir = join(work.path, "al2023");
    const root = join(dir, "root");
    const spec = twoArmSpec({ os: "al2023", haproxy: { source: "distribution" }, tproxy: false, cloudWatchLogGroup: "/imaging-lb/prod" });
    const sb = makeSandbox(dir, renderUserData(spec), pem);
    writeFileSync(join(sb.state, "links"), `lo UNKNOWN 00:00:00:00:00:00 <LOOPBACK>\nens5 UP ${MAC0} <UP>\nens6 DOWN ${MAC1} <>\n`);
    const server = await imds([ENI0, ENI1]);

    const first = await runBootstrap(sb, server.url);
    assert.equal(first.code, 0, first.stderr);
    const net = join(root, "etc/systemd/network");
    assert.equal(readFileSync(join(net, "10-imaging-lb-eth1.link"), "utf8"), `[Match]\nMACAddress=${MAC1}\n\n[Link]\nName=eth1\n`);
    assert.match(readFileSync(join(net, "10-imaging-lb-eth1.network"), "utf8"), /\[RoutingPolicyRule\]\nFrom=10\.0\.2\.10\/32\nTable=1001\n/);
    assert.ok(first.commands.includes("ip link set dev ens5 name eth0"));
    assert.ok(first.commands.includes("ip link set dev ens6 name eth1"));
    assert.ok(first.commands.includes("networkctl reconfigure eth0 eth1"));
    assert.ok(first.commands.includes("dnf install -y haproxy keepalived awscli-2 amazon-cloudwatch-agent"));
    assert.ok(!first.commands.some((c) => c.startsWith("apt-get") || c.startsWith("snap")));

    const tree = snapshot(root);
    const second = await runBootstrap(sb, server.url);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(snapshot(root), tree);
    assert.ok(!second.commands.some((c) => c.startsWith("ip link set") || c.startsWith("networkctl")), second.commands.join("\n"));
  });
});
