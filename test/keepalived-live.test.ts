/**
 * Rendered keepalived.conf and notify scripts checked by the real tools:
 *
 * - `keepalived -t -f` (config test) on every rendered variant, with this machine's keepalived (Debian 12:
 *   2.2.7, as AL2023 ships; Ubuntu 24.04 has 2.2.8) and Debian 13's 2.3 (scripts/keepalived-2.3.sh, chroot),
 *   inside network namespaces that have the interfaces and addresses the configs name (veth `eth0`/`eth1`,
 *   198.51.100.0/24), with an /etc/passwd bind-mounted in a private mount namespace that adds the unprivileged
 *   `script_user`s (the host's /etc/passwd is never touched); a config naming a missing interface, and a
 *   syntactically broken one, fail.
 * - A real two-node pair, with each of the two builds: two keepalived daemons joined by a veth pair, speaking unicast VRRPv3 every 0.5 s
 *   and each tracking a process of its own by name (`vrrp_track_process`, the kernel's process events). The
 *   daemons start from the root network and PID namespaces and enter their node's network namespace themselves
 *   (`--namespace`): the kernel reports process events to no other namespace. The primary becomes MASTER (VIP
 *   on its eth0, notify_master run); its tracked process dies and the secondary takes over; it returns and the
 *   primary takes the VIP back after its preempt delay; VRRP is cut between the nodes (both MASTER) and healed,
 *   and the primary reruns its takeover (`notify_master_rx_lower_pri`); the primary stops and the secondary
 *   takes over.
 * - `shellcheck` (and `bash -n`) on the notify script of every failover mode.
 *
 * keepalived 2.2.7 (Debian 12, AL2023) has a known config-test bug: `keepalived -t` kills itself with SIGTERM
 * when a non-root script user runs a `vrrp_script` (acassen/keepalived#2617, #2587; fixed in 2.2.8, which
 * Ubuntu 24.04 ships). On 2.2.7 a verbatim config with a vrrp_script must therefore end with exactly that
 * signature, and the same text with only `script_user` set to root must pass; on any other version, and
 * without a vrrp_script, the verbatim text must pass.
 *
 * Needs root (namespaces, mounts); namespaces and processes are removed in `finally`.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, SpawnSyncReturns, ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import {
  KeepalivedNodeSpec,
  renderKeepalivedConfig,
  renderNotifyScript,
  VipFailover,
  VRRP_AUTH_PASS_PLACEHOLDER,
} from "../lib/keepalived";
import { HUNG_AFTER_MS, requireTool, tempDir } from "./helpers/tools";

const PRIMARY_ADDRESS = "198.51.100.10";
const SECONDARY_ADDRESS = "198.51.100.11";
const VIP = "198.51.100.50";
const TEST_SCRIPT_USERS = ["keepalived_script", "haproxy_check"];

const PRIMARY: KeepalivedNodeSpec = {
  envName: "prod",
  node: "primary",
  interfaceName: "eth0",
  selfAddress: PRIMARY_ADDRESS,
  peerAddress: SECONDARY_ADDRESS,
  virtualRouterId: 51,
  virtualAddresses: [VIP, "198.51.100.51"],
  notifyMasterScript: "/usr/local/sbin/imaging-lb-vip-takeover",
};
const SECONDARY: KeepalivedNodeSpec = {
  ...PRIMARY,
  node: "secondary",
  selfAddress: SECONDARY_ADDRESS,
  peerAddress: PRIMARY_ADDRESS,
};

/** Every kind of keepalived.conf the renderer produces, by name. */
const VARIANTS: Record<string, KeepalivedNodeSpec> = {
  "primary, defaults": PRIMARY,
  "secondary, defaults": SECONDARY,
  "primary, nopreempt": { ...PRIMARY, preempt: false },
  "secondary, nopreempt": { ...SECONDARY, preempt: false },
  "primary, auth placeholder": { ...PRIMARY, authPass: VRRP_AUTH_PASS_PLACEHOLDER },
  "secondary, 8-character auth": { ...SECONDARY, authPass: "s3cr3t-8" },
  "primary, process-only tracking with custom timings": {
    ...PRIMARY,
    haproxyCheck: { healthUrl: null, intervalSeconds: 5, fall: 3, rise: 4, weight: -60 },
  },
  "primary, VIPs on eth1, explicit priority and advert interval": {
    ...PRIMARY,
    vipInterfaceName: "eth1",
    priority: 200,
    advertIntervalSeconds: 2,
    virtualRouterId: 255,
  },
  "primary, no rx-lower-priority script, no preempt delay, own process name": {
    ...PRIMARY,
    notifyMasterRxLowerPriScript: null,
    preemptDelaySeconds: 0,
    haproxyCheck: { processName: "haproxy-lb-a" },
  },
  "secondary, VRRPv2 with authentication every 3 s": { ...SECONDARY, authPass: "s3cr3t-8", advertIntervalSeconds: 3 },
  "primary, adverts every 0.1 s": { ...PRIMARY, advertIntervalSeconds: 0.1 },
  "secondary, backup and fault scripts, custom script user": {
    ...SECONDARY,
    notifyBackupScript: "/usr/local/sbin/imaging-lb-vip-release",
    notifyFaultScript: "/usr/local/sbin/imaging-lb-vip-fault",
    scriptUser: "haproxy_check",
  },
};

const NOTIFY_MODES: Record<string, VipFailover> = {
  "secondary-ip": { mode: "secondary-ip", privateIps: ["10.0.1.50", "10.0.1.51"] },
  "elastic-ip": {
    mode: "elastic-ip",
    associations: [
      { allocationId: "eipalloc-0123456789abcdef0" },
      { allocationId: "eipalloc-0123456789abcdef1", privateIpAddress: "10.0.1.60" },
    ],
  },
  "route-table": { mode: "route-table", vips: ["192.0.2.10", "192.0.2.11"], routeTableIds: ["rtb-0123456789abcdef0"] },
};

function run(command: string, args: string[], input?: string): SpawnSyncReturns<string> {
  return spawnSync(command, args, { encoding: "utf8", input, timeout: HUNG_AFTER_MS });
}

function mustRun(command: string, args: string[]): void {
  const result = run(command, args);
  assert.equal(result.status, 0, `${command} ${args.join(" ")} failed: ${result.stderr}`);
}

/** The keepalived builds under test: this machine's (Debian 12: 2.2.7), and Debian 13's 2.3 through chroot. */
const KEEPALIVEDS = [
  { label: "keepalived", command: "keepalived" },
  { label: "keepalived 2.3 (Debian 13, chroot)", command: join(__dirname, "..", "..", "scripts", "keepalived-2.3.sh") },
] as const;

/** keepalived's version, e.g. `2.2.7`. */
function keepalivedVersion(command: string): string {
  const out = run(command, ["--version"]);
  const match = /Keepalived v(\d+\.\d+\.\d+)/.exec(`${out.stdout}${out.stderr}`);
  assert.ok(match?.[1], `cannot read keepalived's version: ${out.stderr}`);
  return match[1];
}

/** A network namespace with veth `eth0` (holding `address`/24) and `eth1`, both up. */
function createNamespace(name: string, address: string): void {
  mustRun("ip", ["netns", "add", name]);
  const inNs = (...args: string[]): void => mustRun("ip", ["netns", "exec", name, "ip", ...args]);
  inNs("link", "set", "lo", "up");
  for (const ifname of ["eth0", "eth1"]) {
    inNs("link", "add", ifname, "type", "veth", "peer", "name", `${ifname}peer`);
    inNs("link", "set", ifname, "up");
    inNs("link", "set", `${ifname}peer`, "up");
  }
  inNs("addr", "add", `${address}/24`, "dev", "eth0");
}

function deleteNamespace(name: string): void {
  for (const pid of run("ip", ["netns", "pids", name]).stdout.split("\n").filter((p) => p !== "")) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
  run("ip", ["netns", "del", name]);
}

/**
 * `command` inside namespace `ns` and a private mount namespace where `passwd` is /etc/passwd
 * (so the test script users exist without touching the host's /etc/passwd).
 */
function inNamespaceArgs(ns: string, passwd: string, command: string[]): string[] {
  return [
    "netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c",
    'mount --bind "$1" /etc/passwd && shift && exec "$@"', "sh", passwd, ...command,
  ];
}

describe("rendered keepalived.conf and notify scripts under the real tools", () => {
  const id = process.pid;
  const nsPrimary = `ilb-ka-${id}-p`;
  const nsSecondary = `ilb-ka-${id}-s`;
  const dir = tempDir("keepalived-live");
  const passwd = join(dir.path, "passwd");
  const versions = new Map<string, string>();

  before(() => {
    requireTool("keepalived", "keepalived");
    requireTool("ip", "iproute2");
    requireTool("unshare", "util-linux");
    requireTool("mount", "mount");
    requireTool("iptables", "iptables");
    for (const k of KEEPALIVEDS) versions.set(k.command, keepalivedVersion(k.command));
    assert.match(versions.get(KEEPALIVEDS[1].command) ?? "", /^2\.3\./, "the Debian 13 root runs keepalived 2.3");
    writeFileSync(
      passwd,
      readFileSync("/etc/passwd", "utf8") +
        TEST_SCRIPT_USERS.map((user, i) => `${user}:x:${64900 + i}:65534:imaging-lb test:/nonexistent:/usr/sbin/nologin\n`).join(""),
    );
    createNamespace(nsPrimary, PRIMARY_ADDRESS);
    createNamespace(nsSecondary, SECONDARY_ADDRESS);
  });

  after(() => {
    deleteNamespace(nsPrimary);
    deleteNamespace(nsSecondary);
    dir.cleanup();
  });

  /** `keepalived -t -f <text>` in the node's namespace. */
  function configTest(spec: KeepalivedNodeSpec, text: string, keepalived = "keepalived"): SpawnSyncReturns<string> {
    const file = join(dir.path, `keepalived-${Math.random().toString(36).slice(2)}.conf`);
    writeFileSync(file, text);
    const ns = spec.node === "primary" ? nsPrimary : nsSecondary;
    return run("ip", inNamespaceArgs(ns, passwd, [keepalived, "-t", "-f", file]));
  }

  for (const k of KEEPALIVEDS) for (const [name, spec] of Object.entries(VARIANTS)) {
    it(`${k.label} -t accepts the rendered config: ${name}`, () => {
      const text = renderKeepalivedConfig(spec);
      const verbatim = configTest(spec, text, k.command);
      if (versions.get(k.command) === "2.2.7" && /^vrrp_script /m.test(text)) {
        // Known 2.2.7 bug (see the file comment): with a vrrp_script, the verbatim config test dies of SIGTERM ...
        assert.equal(verbatim.signal, "SIGTERM", `expected the keepalived 2.2.7 script_user bug: ${verbatim.stderr}`);
        // ... so the same text with only script_user changed must pass.
        const rootUser = text.replace(/^ {4}script_user \S+$/m, "    script_user root");
        assert.notEqual(rootUser, text);
        const patched = configTest(spec, rootUser, k.command);
        assert.equal(patched.status, 0, `keepalived -t failed:\n${patched.stderr}\n${rootUser}`);
        assert.equal(patched.stderr, "", "keepalived -t printed warnings");
      } else {
        assert.equal(verbatim.status, 0, `keepalived -t failed:\n${verbatim.stderr}\n${text}`);
        assert.equal(verbatim.stderr, "", "keepalived -t printed warnings");
      }
    });
  }

  it("keepalived -t rejects a config naming an interface the namespace lacks", () => {
    const spec = { ...PRIMARY, interfaceName: "eth7" };
    const text = renderKeepalivedConfig(spec).replace(/^ {4}script_user \S+$/m, "    script_user root");
    const result = configTest(spec, text);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /interface eth7 for vrrp_instance imaging_lb_prod doesn't exist/);
  });

  it("keepalived -t rejects a syntactically broken config", () => {
    const text = renderKeepalivedConfig(PRIMARY)
      .replace(/^ {4}script_user \S+$/m, "    script_user root")
      .replace("    unicast_peer {\n", "    unicast_peer\n");
    const result = configTest(PRIMARY, text);
    assert.notEqual(result.status, 0);
    assert.notEqual(result.stderr, "");
  });

  for (const [run_, k] of KEEPALIVEDS.entries()) it(`two real ${k.label} daemons over unicast VRRPv3: the tracked process dies, returns, the VRRP link is cut and healed, the primary stops`, async (t) => {
    // Join the two namespaces' eth0 through one veth pair (replacing the unconnected ones, or the last run's).
    const pairDir = mkdtempSync("/run/imaging-lb-ka-"); // root-only path: enable_script_security accepts it
    const children: ChildProcess[] = [];
    const trackers = new Map<string, ChildProcess>();
    try {
      for (const ns of [nsPrimary, nsSecondary]) {
        run("ip", ["netns", "exec", ns, "ip", "link", "del", "eth0"]); // absent when the last run's pair went with its peer
      }
      const [vethP, vethS] = [`ilbp${id}-${run_}`.slice(0, 15), `ilbs${id}-${run_}`.slice(0, 15)];
      mustRun("ip", ["link", "add", vethP, "netns", nsPrimary, "type", "veth", "peer", "name", vethS, "netns", nsSecondary]);
      for (const [ns, ifname, address] of [
        [nsPrimary, vethP, PRIMARY_ADDRESS],
        [nsSecondary, vethS, SECONDARY_ADDRESS],
      ] as const) {
        mustRun("ip", ["netns", "exec", ns, "ip", "link", "set", ifname, "name", "eth0"]);
        mustRun("ip", ["netns", "exec", ns, "ip", "addr", "add", `${address}/24`, "dev", "eth0"]);
        mustRun("ip", ["netns", "exec", ns, "ip", "link", "set", "eth0", "up"]);
      }
      const events = join(pairDir, "events.log");
      writeFileSync(events, "");
      const eventLines = (): string[] => readFileSync(events, "utf8").split("\n").filter((l) => l !== "");
      // Each node's stand-in for HAProxy: `sleep` started through a link named after the node, so its process
      // name (/proc/<pid>/comm, what keepalived tracks) is the node's own on this shared machine.
      const trackerName = (node: string): string => `ilbka${node[0]}${id}`.slice(0, 15);
      const startTracker = (node: string): void => {
        const link = join(pairDir, trackerName(node));
        mustRun("ln", ["-sf", "/usr/bin/sleep", link]);
        trackers.set(node, spawn(link, ["3600"], { stdio: "ignore" }));
      };
      const stopTracker = async (node: string): Promise<void> => {
        const child = trackers.get(node);
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGKILL");
        await exited;
      };
      const start = (spec: KeepalivedNodeSpec, ns: string): ChildProcess => {
        const notify = join(pairDir, `${spec.node}-master`);
        const rx = join(pairDir, `${spec.node}-rx-lower-pri`);
        // The takeover script reads "keepalived holds the VIP" as "still MASTER": keepalived must add the VIP
        // before it runs notify_master, or every takeover would stand down.
        for (const [file, what] of [[notify, "MASTER"], [rx, "RX_LOWER_PRI"]] as const) {
          writeFileSync(
            file,
            `#!/bin/sh\nif ip -4 -o addr show dev eth0 | grep -q ' ${VIP}/32 '; then echo "${spec.node} ${what}" >> ${events}; else echo "${spec.node} ${what} without the VIP" >> ${events}; fi\n`,
            { mode: 0o755 },
          );
        }
        const conf = join(pairDir, `${spec.node}.conf`);
        writeFileSync(
          conf,
          renderKeepalivedConfig({
            ...spec,
            virtualAddresses: [VIP],
            notifyMasterScript: notify,
            notifyMasterRxLowerPriScript: rx,
            preemptDelaySeconds: 2,
            haproxyCheck: { processName: trackerName(spec.node), healthUrl: null },
          }),
        );
        const log = openSync(join(pairDir, `${spec.node}.log`), "w");
        // From the root namespaces, entering the node's network namespace itself (--namespace): the kernel
        // reports process events only to listeners in the initial network and PID namespaces.
        const child = spawn(
          "unshare",
          [
            "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$1" /etc/passwd && shift && exec "$@"', "sh", passwd,
            k.command, "--dont-fork", "--log-console", "--log-detail", "--vrrp", "--use-file", conf, "--namespace", ns,
            "--pid", join(pairDir, `${spec.node}.pid`), "--vrrp_pid", join(pairDir, `${spec.node}-vrrp.pid`),
          ],
          { stdio: ["ignore", log, log] },
        );
        closeSync(log);
        children.push(child);
        return child;
      };
      const hasVip = (ns: string): boolean =>
        run("ip", ["netns", "exec", ns, "ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout.includes(`${VIP}/32`);
      const waitFor = async (what: string, condition: () => boolean): Promise<number> => {
        const started = Date.now();
        const deadline = started + 15_000;
        while (!condition()) {
          if (Date.now() > deadline) {
            const logs = ["primary", "secondary"].map((n) => `--- ${n}\n${safeRead(join(pairDir, `${n}.log`))}`).join("\n");
            assert.fail(`timed out waiting for ${what}; events: ${eventLines().join(", ")}\n${logs}`);
          }
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        return Date.now() - started;
      };
      // No VRRP packet leaves either node (both directions cut; the nodes stay reachable otherwise).
      const vrrpCut = (action: "-I" | "-D"): void => {
        for (const ns of [nsPrimary, nsSecondary]) mustRun("ip", ["netns", "exec", ns, "iptables", action, "OUTPUT", "-p", "vrrp", "-j", "DROP"]);
      };

      startTracker("primary");
      startTracker("secondary");
      // Both start as BACKUP and the first to time out wins the first election: the primary starts first.
      const primary = start(PRIMARY, nsPrimary);
      await waitFor("the primary to become MASTER", () => hasVip(nsPrimary) && eventLines().includes("primary MASTER"));
      start(SECONDARY, nsSecondary);
      await new Promise((resolve) => setTimeout(resolve, 2_000)); // four adverts: the secondary must stay BACKUP
      assert.equal(hasVip(nsSecondary), false, "the secondary took the VIP while the primary was MASTER (split brain)");
      assert.deepEqual(eventLines(), ["primary MASTER"]);
      assert.match(safeRead(join(pairDir, "primary.log")), /proc_events has confirmed it is configured/, "keepalived receives the kernel's process events");

      // 1. The tracked process dies: the primary gives the VIP up at once and the secondary takes it.
      await stopTracker("primary");
      const released = await waitFor("the primary to give the VIP up", () => !hasVip(nsPrimary));
      const taken = await waitFor("the secondary to take over", () => hasVip(nsSecondary) && eventLines().includes("secondary MASTER"));
      t.diagnostic(`tracked process killed: VIP off the primary after ${released} ms, on the secondary (takeover run) ${taken} ms later`);
      assert.ok(released < 1000, `the primary released the VIP ${released} ms after its tracked process died`);

      // 2. A short-lived process of that name (an `haproxy -c` while HAProxy is down) ends the FAULT for its
      // lifetime only: the primary is BACKUP meanwhile and does not take the VIP (its preempt delay is longer).
      const transient = spawn(join(pairDir, trackerName("primary")), ["1"], { stdio: "ignore" });
      await new Promise((resolve) => transient.once("exit", resolve));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(hasVip(nsPrimary), false, "a short-lived process did not bring the VIP back to the primary");
      assert.deepEqual(eventLines().filter((l) => l === "primary MASTER"), ["primary MASTER"], "no takeover on the primary meanwhile");
      // 3. It returns for good: the primary is BACKUP at once, and takes the VIP back after its preempt delay (2 s).
      startTracker("primary");
      const back = await waitFor("the primary to take the VIP back", () => hasVip(nsPrimary) && eventLines().filter((l) => l === "primary MASTER").length === 2);
      await waitFor("the secondary to give the VIP up", () => !hasVip(nsSecondary));
      t.diagnostic(`tracked process back: primary MASTER again after ${back} ms (preempt_delay 2 s)`);
      assert.ok(back >= 2000, `the primary took MASTER back after its preempt delay, not after ${back} ms`);

      // 4. VRRP cut between the nodes: both MASTER; healed: the secondary yields and the primary reruns its takeover.
      vrrpCut("-I");
      await waitFor("the secondary to become MASTER while cut off", () => hasVip(nsSecondary) && eventLines().filter((l) => l === "secondary MASTER").length === 2);
      assert.equal(hasVip(nsPrimary), true, "the primary stays MASTER: both nodes hold the VIP (split brain, as designed while cut off)");
      // The heal's rerun is a new RX_LOWER_PRI event: the primary also ran one when it took the VIP back in 3.
      const rerunsBefore = eventLines().filter((l) => l.startsWith("primary RX_LOWER_PRI")).length;
      vrrpCut("-D");
      await waitFor("the secondary to yield after the cut", () => !hasVip(nsSecondary));
      await waitFor("the primary to rerun its takeover after the heal (notify_master_rx_lower_pri)", () => eventLines().filter((l) => l.startsWith("primary RX_LOWER_PRI")).length > rerunsBefore);
      assert.equal(hasVip(nsPrimary), true);

      // 5. The primary stops: the secondary takes over.
      const linesBefore = eventLines().length;
      primary.kill("SIGTERM");
      await waitFor("the secondary to take over", () => hasVip(nsSecondary) && eventLines().slice(linesBefore).includes("secondary MASTER"));
      assert.equal(hasVip(nsPrimary), false, "the stopped primary kept the VIP");
      t.diagnostic(`events: ${eventLines().join(", ")}`);
      assert.deepEqual(
        eventLines().filter((l) => !l.endsWith("RX_LOWER_PRI")),
        ["primary MASTER", "secondary MASTER", "primary MASTER", "secondary MASTER", "secondary MASTER"],
      );
      assert.ok(eventLines().every((l) => !l.includes("without the VIP")), "every script ran while its node held the VIP");
    } finally {
      for (const child of [...children, ...trackers.values()]) {
        child.kill("SIGTERM");
      }
      await Promise.all(
        [...children, ...trackers.values()].map((child) =>
          child.exitCode !== null || child.signalCode !== null ? undefined : new Promise((resolve) => child.once("exit", resolve)),
        ),
      );
      for (const ns of [nsPrimary, nsSecondary]) run("ip", ["netns", "exec", ns, "iptables", "-F"]);
      rmSync(pairDir, { recursive: true, force: true });
      for (const ns of [nsPrimary, nsSecondary]) rmSync(`/run/keepalived/${ns}`, { recursive: true, force: true });
    }
  });

  for (const [mode, failover] of Object.entries(NOTIFY_MODES)) {
    it(`shellcheck and bash -n accept the ${mode} notify script`, () => {
      requireTool("shellcheck", "shellcheck");
      const script = renderNotifyScript({ envName: "prod", region: "eu-west-1", interfaceName: "eth1", failover });
      const lint = run("shellcheck", ["--shell=bash", "--severity=style", "-"], script);
      assert.equal(lint.status, 0, `shellcheck:\n${lint.stdout}${lint.stderr}`);
      const syntax = run("bash", ["-n"], script);
      assert.equal(syntax.status, 0, syntax.stderr);
    });
  }
});

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "(no log)";
  }
}
