/**
 * A declarative network-namespace topology for end-to-end tests: hosts are namespaces, L2 segments are
 * bridges inside one dedicated "switch" namespace, links are veth pairs whose host-side name the caller
 * chooses (so the LB node gets `eth0` = internal/server side and `eth1` = external/client side, the
 * Loadbalancer.org convention). Nothing is created in the root namespace: every veth is created inside the
 * switch namespace with its peer moved straight into the host namespace.
 *
 * Address plan (documentation ranges only; the builder refuses any other address):
 *
 * | Range            | Role                                                                          |
 * |------------------|-------------------------------------------------------------------------------|
 * | 192.0.2.0/24     | clients: router .1, clients .10, .11, ...                                    |
 * | 203.0.113.0/24   | external / VIP side: router .1, LB eth1 .10 (second LB .11), VIPs .100-.119  |
 * | 198.51.100.0/24  | internal / server side: router .1 (one-arm "VPC router"), LB eth0 .10        |
 * |                  | (second LB .11), one-arm VIPs .100-.119, servers .21, .22, ...               |
 *
 * Two-arm (see `topologies.ts`, {@link buildTopology} underneath):
 *
 *     client (eth0 192.0.2.10, gw .1)
 *       └─[br-cli]─ router (eth0 192.0.2.1 | eth1 203.0.113.1, ip_forward=1)
 *                     └─[br-ext]─ lb eth1 203.0.113.10 + VIP 203.0.113.100 (gw 203.0.113.1)
 *                                 lb eth0 198.51.100.10 ─[br-int]─ srv1 198.51.100.21, srv2 198.51.100.22
 *
 * The LB does not forward (ip_forward=0) and the servers have no default route: a reply reaches the client
 * only because HAProxy is a full proxy whose server-side connections come from 198.51.100.10 (SNAT).
 *
 * One-arm (mirrors AWS: one ENI in a VPC subnet, VIP = secondary private IP on that ENI, the VPC router
 * at subnet base + 1):
 *
 *     client (192.0.2.10, gw .1) ─[br-cli]─ router (192.0.2.1 | 198.51.100.1)
 *       ─[br-vpc]─ lb eth0 198.51.100.10 + VIP 198.51.100.100 (gw .1), srv1 .21, srv2 .22 (gw .1)
 *
 * Optional one-arm "overlay" VIP (AWS route-table VIP outside the VPC CIDR): 203.0.113.100/32 on LB eth0,
 * and the router routes 203.0.113.100 via 198.51.100.10.
 *
 * Cleanup: {@link Topology.destroy} kills every process started in the topology and every pid left in its
 * namespaces, deletes the namespaces (which deletes the veths and bridges) and the work directory. It also
 * runs on process exit, SIGINT, SIGTERM and SIGHUP. {@link sweepStaleNamespaces} removes `ilb-<pid>-*`
 * namespaces left by an earlier run whose process is gone.
 */
import { spawn as spawnChild, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { requireTool } from "../../helpers/tools";
import { NsProcess } from "./ns-process";
import { pollUntil } from "./wait";

export type { NsProcess };

/** The namespace-name prefix of this process: every namespace this run creates starts with `ilb-<pid>-`. */
export const RUN_PREFIX = `ilb-${process.pid}`;

/** The only address ranges the harness lets a topology use (RFC 5737 documentation ranges). */
export const ALLOWED_RANGES: readonly string[] = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"];

/** An L2 segment: a bridge `br-<name>` in the topology's switch namespace. */
export interface SegmentSpec {
  /** Free text for humans (shown as the bridge alias). @default the segment name */
  readonly description?: string;
}

/** One interface of a host: a veth whose host end has the interface name that keys it. */
export interface InterfaceSpec {
  /** The segment (key of {@link TopologySpec.segments}) the other end of the veth plugs into. */
  readonly segment: string;
  /** Addresses in CIDR form, primary first, e.g. `["203.0.113.10/24", "203.0.113.100/24"]`. */
  readonly addresses: readonly string[];
  /** Link MTU. @default 1500 */
  readonly mtu?: number;
}

/** A static route inside a host. */
export interface RouteSpec {
  /** Destination prefix, e.g. `203.0.113.100/32`. */
  readonly to: string;
  /** Next hop. */
  readonly via: string;
}

/** A host: one network namespace `ilb-<pid>-t<n>-<host>`. */
export interface HostSpec {
  /** Interfaces keyed by their name inside the host (`eth0`, `eth1`, ...). */
  readonly interfaces: Readonly<Record<string, InterfaceSpec>>;
  /** Default gateway. @default none (only connected subnets are reachable) */
  readonly gateway?: string;
  /** Extra static routes. @default [] */
  readonly routes?: readonly RouteSpec[];
  /** sysctls written in the namespace, e.g. `{ "net.ipv4.ip_forward": 1 }`. @default {} */
  readonly sysctls?: Readonly<Record<string, string | number>>;
}

/** A whole topology. */
export interface TopologySpec {
  /** L2 segments keyed by a short name (at most 12 characters: the bridge is `br-<name>`). */
  readonly segments: Readonly<Record<string, SegmentSpec>>;
  /** Hosts keyed by a short name (lower-case letters, digits, `-`; `sw` is reserved). */
  readonly hosts: Readonly<Record<string, HostSpec>>;
}

/** Options of {@link Topology.exec}. */
export interface ExecOptions {
  /** Kill the command (SIGKILL) after this many milliseconds. @default 30000 */
  readonly timeoutMs?: number;
  /** Written to the command's stdin. @default nothing (stdin closed) */
  readonly input?: string | Buffer;
  /** Environment. @default process.env without proxy variables */
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory. @default the topology's work directory */
  readonly cwd?: string;
}

/** The outcome of {@link Topology.exec}. */
export interface ExecResult {
  /** The command line, for messages. */
  readonly command: string;
  /** Exit code, or `null` when killed by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  /** Whether the harness killed the command at `timeoutMs`. */
  readonly timedOut: boolean;
}

/** Options of {@link Topology.spawn}. */
export interface SpawnOptions {
  /** File receiving stdout and stderr. @default `<workDir>/<host>-<command>-<n>.log` */
  readonly logFile?: string;
  /** Environment. @default process.env without proxy variables */
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory. @default the topology's work directory */
  readonly cwd?: string;
}

/** The outcome of {@link Topology.http}. */
export interface HttpResult {
  readonly status: number;
  readonly body: string;
  readonly durationMs: number;
}

/** Options of {@link Topology.http}. */
export interface HttpOptions {
  /** @default "GET" */
  readonly method?: string;
  /** Request body (sent with `--data-binary @-`). @default none */
  readonly body?: string;
  /** Extra request headers, `Name: value`. @default [] */
  readonly headers?: readonly string[];
  /** curl's `--max-time`, in milliseconds. @default 10000 */
  readonly timeoutMs?: number;
}

const HOST_NAME = /^[a-z][a-z0-9-]{0,19}$/;
const IF_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,14}$/;
const SEGMENT_NAME = /^[a-z][a-z0-9]{0,11}$/;
const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const live = new Set<Topology>();
let topologyCounter = 0;
let handlersInstalled = false;

/** The environment for commands: the caller's, minus proxy variables (curl must never use a proxy here). */
function cleanEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const key of Object.keys(copy)) if (/_proxy$/i.test(key)) delete copy[key];
  return copy;
}

function ipv4ToInt(address: string): number | undefined {
  const parts = address.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

/** Whether `address` (no prefix length) lies in one of {@link ALLOWED_RANGES}. */
export function isAllowedAddress(address: string): boolean {
  const value = ipv4ToInt(address);
  if (value === undefined) return false;
  return ALLOWED_RANGES.some((range) => {
    const [base, bits] = range.split("/");
    const mask = bits === "0" ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
    return ((value & mask) >>> 0) === ((ipv4ToInt(base) ?? -1) & mask) >>> 0;
  });
}

/** Lists problems in `spec` (all of them), or returns an empty array. */
export function validateTopologySpec(spec: TopologySpec): string[] {
  const problems: string[] = [];
  const allowed = `allowed ranges: ${ALLOWED_RANGES.join(", ")}`;
  for (const name of Object.keys(spec.segments)) {
    if (!SEGMENT_NAME.test(name)) problems.push(`segments.${name}: expected ${SEGMENT_NAME} (bridge names are br-<name>, max 15 chars)`);
  }
  for (const [host, hostSpec] of Object.entries(spec.hosts)) {
    if (!HOST_NAME.test(host) || host === "sw") problems.push(`hosts.${host}: expected ${HOST_NAME} and not "sw" (reserved for the switch)`);
    for (const [ifName, ifSpec] of Object.entries(hostSpec.interfaces)) {
      const where = `hosts.${host}.interfaces.${ifName}`;
      if (!IF_NAME.test(ifName) || ifName === "lo") problems.push(`${where}: interface name must match ${IF_NAME} (Linux limit 15 chars) and not be "lo"`);
      if (!(ifSpec.segment in spec.segments)) {
        problems.push(`${where}.segment: unknown segment "${ifSpec.segment}"; defined: ${Object.keys(spec.segments).join(", ") || "none"}`);
      }
      for (const cidr of ifSpec.addresses) {
        const match = CIDR.exec(cidr);
        const address = cidr.split("/")[0];
        if (!match || Number(match[5]) > 32) problems.push(`${where}.addresses: expected a.b.c.d/len, got "${cidr}"`);
        else if (!isAllowedAddress(address)) problems.push(`${where}.addresses: "${cidr}" is outside the test ranges; ${allowed}`);
      }
    }
    for (const gateway of hostSpec.gateway === undefined ? [] : [hostSpec.gateway]) {
      if (!isAllowedAddress(gateway)) problems.push(`hosts.${host}.gateway: "${gateway}" is outside the test ranges; ${allowed}`);
    }
    for (const route of hostSpec.routes ?? []) {
      if (!isAllowedAddress(route.to.split("/")[0])) problems.push(`hosts.${host}.routes: destination "${route.to}" is outside the test ranges; ${allowed}`);
      if (!isAllowedAddress(route.via)) problems.push(`hosts.${host}.routes: next hop "${route.via}" is outside the test ranges; ${allowed}`);
    }
  }
  return problems;
}

/** Runs `ip` (or another root-namespace admin command) synchronously; throws with stderr on failure. */
function run(command: string, args: readonly string[]): string {
  const result = spawnSync(command, args, { encoding: "utf8", env: cleanEnv(), timeout: 15_000 });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (status ${String(result.status)}): ${result.stderr.trim() || result.error?.message || ""}`);
  }
  return result.stdout;
}

/** Runs `ip -n <ns> -batch -` with `commands` (one per line); stops at and reports the first failure. */
function runBatch(ip: string, ns: string, commands: readonly string[]): void {
  const input = `${commands.join("\n")}\n`;
  const result = spawnSync(ip, ["-n", ns, "-batch", "-"], { encoding: "utf8", input, env: cleanEnv(), timeout: 15_000 });
  if (result.status !== 0) {
    throw new Error(`ip -n ${ns} -batch failed: ${result.stderr.trim() || result.error?.message || ""}\nbatch:\n${input}`);
  }
}

/** Names of all network namespaces (`ip netns list`), optionally only those starting with `prefix`. */
export function listNamespaces(prefix?: string): string[] {
  const ip = requireTool("ip", "iproute2");
  const names = run(ip, ["netns", "list"])
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0])
    .filter((name): name is string => name !== undefined && name !== "");
  return prefix === undefined ? names : names.filter((name) => name.startsWith(prefix));
}

/** Kills (SIGKILL) every process in namespace `ns` and deletes it; ignores a namespace already gone. */
function killAndDeleteNamespace(ip: string, ns: string): void {
  const pids = spawnSync(ip, ["netns", "pids", ns], { encoding: "utf8" });
  for (const pid of (pids.stdout ?? "").split(/\s+/).filter((p) => /^\d+$/.test(p))) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
  spawnSync(ip, ["netns", "del", ns], { encoding: "utf8" });
  // keepalived started with --namespace <ns> keeps its pid files in /run/keepalived/<ns> (left when killed).
  rmSync(join("/run/keepalived", ns), { recursive: true, force: true });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes namespaces named `ilb-<pid>-...` whose `<pid>` is no longer running (a crashed earlier run):
 * kills the processes still inside them, then deletes them. Namespaces of live processes (a concurrent
 * run) and names not of that form are left alone. Returns the names removed.
 */
export function sweepStaleNamespaces(): string[] {
  const ip = requireTool("ip", "iproute2");
  const removed: string[] = [];
  for (const ns of listNamespaces("ilb-")) {
    const match = /^ilb-(\d+)-/.exec(ns);
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    killAndDeleteNamespace(ip, ns);
    removed.push(ns);
  }
  return removed;
}

function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => destroyAllTopologies());
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      destroyAllTopologies();
      // Our listener is gone (once): re-raise so the default action (or another listener) still runs.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** Destroys every topology this process has built and not destroyed yet (used by the signal handlers). */
export function destroyAllTopologies(): void {
  for (const topology of [...live]) {
    try {
      topology.destroy();
    } catch (error) {
      console.error(`imaging-lb e2e: cleanup of ${topology.prefix} failed: ${String(error)}`);
    }
  }
}

/**
 * Builds `spec`: namespaces, a switch namespace with one bridge per segment, veth links, addresses,
 * routes and sysctls. On failure everything built so far is removed and the error says which step failed.
 * The returned topology is destroyed automatically on process exit and on SIGINT/SIGTERM/SIGHUP, but
 * tests should call {@link Topology.destroy} in an `after`/`finally` hook.
 *
 * @example
 * const topo = buildTopology({
 *   segments: { lan: {} },
 *   hosts: {
 *     a: { interfaces: { eth0: { segment: "lan", addresses: ["192.0.2.1/24"] } } },
 *     b: { interfaces: { eth0: { segment: "lan", addresses: ["192.0.2.2/24"] } } },
 *   },
 * });
 * try { await topo.exec("a", "curl", ["http://192.0.2.2/"]); } finally { topo.destroy(); }
 */
export function buildTopology(spec: TopologySpec): Topology {
  const problems = validateTopologySpec(spec);
  if (problems.length > 0) throw new Error(`invalid topology:\n  ${problems.join("\n  ")}`);
  if (process.getuid?.() !== 0) {
    throw new Error("the e2e harness needs root (CAP_NET_ADMIN) to create network namespaces; run the e2e tests as root");
  }
  const ip = requireTool("ip", "iproute2");
  const sysctl = requireTool("sysctl", "procps");
  requireTool("bash", "bash");
  requireTool("curl", "curl");
  installCleanupHandlers();

  topologyCounter += 1;
  const topology = new Topology(`${RUN_PREFIX}-t${topologyCounter}`, spec);
  live.add(topology);
  try {
    // Few processes: one `ip -batch` per namespace (a build is ~20 spawns instead of ~100).
    const sw = topology.switchNamespace;
    const hostNamespaces = Object.keys(spec.hosts).map((h) => topology.ns(h));
    for (const ns of [sw, ...hostNamespaces]) {
      run(ip, ["netns", "add", ns]);
      topology.created.push(ns);
    }
    // Quiet, deterministic segments: no IPv6 (no DAD, no router solicitations), plus the host's sysctls.
    const quiet = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"];
    run(ip, ["netns", "exec", sw, sysctl, "-q", "-w", ...quiet]);
    for (const [host, hostSpec] of Object.entries(spec.hosts)) {
      const pairs = Object.entries(hostSpec.sysctls ?? {}).map(([key, value]) => `${key}=${String(value)}`);
      run(ip, ["netns", "exec", topology.ns(host), sysctl, "-q", "-w", ...quiet, ...pairs]);
    }
    const switchBatch = ["link set lo up"];
    for (const [segment, segmentSpec] of Object.entries(spec.segments)) {
      const bridge = `br-${segment}`;
      switchBatch.push(
        `link add ${bridge} type bridge stp_state 0 forward_delay 0`,
        `link set ${bridge} alias "${segmentSpec.description ?? segment}"`,
        `link set ${bridge} up`,
      );
    }
    let port = 0;
    const hostBatches = new Map<string, string[]>();
    for (const [host, hostSpec] of Object.entries(spec.hosts)) {
      const ns = topology.ns(host);
      const batch = ["link set lo up"];
      for (const [ifName, ifSpec] of Object.entries(hostSpec.interfaces)) {
        port += 1;
        const switchPort = `p${port}`;
        const mtu = String(ifSpec.mtu ?? 1500);
        switchBatch.push(
          `link add ${switchPort} mtu ${mtu} type veth peer name ${ifName} mtu ${mtu} netns ${ns}`,
          `link set ${switchPort} alias "${host}:${ifName}"`,
          `link set ${switchPort} master br-${ifSpec.segment} up`,
        );
        for (const cidr of ifSpec.addresses) batch.push(`addr add ${cidr} dev ${ifName}`);
        batch.push(`link set ${ifName} up`);
      }
      for (const route of hostSpec.routes ?? []) batch.push(`route add ${route.to} via ${route.via}`);
      if (hostSpec.gateway !== undefined) batch.push(`route add default via ${hostSpec.gateway}`);
      hostBatches.set(ns, batch);
    }
    runBatch(ip, sw, switchBatch);
    for (const [ns, batch] of hostBatches) runBatch(ip, ns, batch);
  } catch (error) {
    topology.destroy();
    throw new Error(`building topology ${topology.prefix} failed: ${(error as Error).message}`);
  }
  return topology;
}

/** A built topology: run commands in its hosts, then {@link Topology.destroy} it. */
export class Topology {
  /** A scratch directory for configs, logs and data of this topology; removed by {@link destroy}. */
  readonly workDir: string;
  /** @internal namespaces created so far, in creation order. */
  readonly created: string[] = [];
  private readonly processes = new Set<NsProcess>();
  private destroyed = false;
  private spawnCounter = 0;

  /** @internal use {@link buildTopology}. */
  constructor(
    /** Prefix of every namespace of this topology: `ilb-<pid>-t<n>`. */
    readonly prefix: string,
    /** The spec it was built from. */
    readonly spec: TopologySpec,
  ) {
    this.workDir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  }

  /** The namespace holding the bridges. */
  get switchNamespace(): string {
    return `${this.prefix}-sw`;
  }

  /** The namespace name of `host`; throws for an unknown host. */
  ns(host: string): string {
    if (!(host in this.spec.hosts)) {
      throw new Error(`unknown host "${host}"; hosts of ${this.prefix}: ${Object.keys(this.spec.hosts).join(", ")}`);
    }
    return `${this.prefix}-${host}`;
  }

  /** The first (primary) address of `host`'s interface `ifName`, without prefix length. */
  address(host: string, ifName: string): string {
    const spec = this.spec.hosts[host]?.interfaces[ifName];
    const first = spec?.addresses[0];
    if (first === undefined) throw new Error(`host "${host}" has no address on interface "${ifName}"`);
    return first.split("/")[0];
  }

  /**
   * Runs `command args` in `host`'s namespace and collects its output. Never throws for a non-zero exit
   * (see {@link execOk}); kills the command at `timeoutMs`.
   */
  exec(host: string, command: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    const ns = this.ns(host);
    const commandLine = `[${host}] ${command} ${args.join(" ")}`;
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const child = spawnChild("ip", ["netns", "exec", ns, command, ...args], {
        env: cleanEnv(options.env),
        cwd: options.cwd ?? this.workDir,
        stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, options.timeoutMs ?? 30_000);
      child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
      child.once("error", (error) => {
        clearTimeout(timer);
        reject(new Error(`${commandLine}: ${error.message}`));
      });
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        resolve({
          command: commandLine,
          code,
          signal,
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: Buffer.concat(stderr).toString("utf8"),
          durationMs: Date.now() - started,
          timedOut,
        });
      });
      if (options.input !== undefined) child.stdin?.end(options.input);
    });
  }

  /** Like {@link exec}, but throws (with the output) unless the command exits 0. */
  async execOk(host: string, command: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    const result = await this.exec(host, command, args, options);
    if (result.code !== 0) {
      throw new Error(
        `${result.command} failed (code ${String(result.code)}, signal ${String(result.signal)}${result.timedOut ? ", timed out" : ""}):\n` +
          `${result.stdout}${result.stderr}`,
      );
    }
    return result;
  }

  /**
   * Starts a long-running `command args` in `host`'s namespace with stdout/stderr to a log file. The
   * process is killed by {@link destroy} if still running.
   */
  spawn(host: string, command: string, args: readonly string[] = [], options: SpawnOptions = {}): NsProcess {
    const ns = this.ns(host);
    this.spawnCounter += 1;
    const logFile = options.logFile ?? join(this.workDir, `${host}-${basename(command)}-${this.spawnCounter}.log`);
    const fd = openSync(logFile, "a");
    try {
      const child = spawnChild("ip", ["netns", "exec", ns, command, ...args], {
        env: cleanEnv(options.env),
        cwd: options.cwd ?? this.workDir,
        stdio: ["ignore", fd, fd],
      });
      if (child.pid === undefined) throw new Error(`could not start ${command} in ${host}`);
      const proc = new NsProcess(child.pid, host, `${command} ${args.join(" ")}`, logFile, child);
      this.processes.add(proc);
      void proc.exited.then(() => this.processes.delete(proc));
      return proc;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Starts a long-running `command args` in the **root** network namespace, for a program that enters
   * `host`'s namespace itself (keepalived `--namespace`: the kernel reports process events only to listeners
   * in the initial network and PID namespaces). `host` names the log file and the process; the process is
   * killed by {@link destroy} like any other (and, once it has entered the namespace, with it).
   */
  spawnRoot(host: string, command: string, args: readonly string[] = [], options: SpawnOptions = {}): NsProcess {
    this.ns(host); // an unknown host throws
    this.spawnCounter += 1;
    const logFile = options.logFile ?? join(this.workDir, `${host}-${basename(command)}-${this.spawnCounter}.log`);
    const fd = openSync(logFile, "a");
    try {
      const child = spawnChild(command, [...args], {
        env: cleanEnv(options.env),
        cwd: options.cwd ?? this.workDir,
        stdio: ["ignore", fd, fd],
      });
      if (child.pid === undefined) throw new Error(`could not start ${command} for ${host}`);
      const proc = new NsProcess(child.pid, host, `${command} ${args.join(" ")}`, logFile, child);
      this.processes.add(proc);
      void proc.exited.then(() => this.processes.delete(proc));
      return proc;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Waits until a TCP connection from `host` to `address:port` succeeds (bash's /dev/tcp), or throws at
   * `timeoutMs`. Pass the server's `process` to fail at once (with its log) if it dies meanwhile.
   */
  async waitForTcp(host: string, address: string, port: number, options: { timeoutMs: number; process?: NsProcess }): Promise<void> {
    await pollUntil(
      `TCP ${address}:${port} to accept connections from ${host}`,
      async () => {
        options.process?.assertRunning();
        const probe = await this.exec(host, "bash", ["-c", `exec 3<>/dev/tcp/${address}/${port}`], { timeoutMs: 2000 });
        if (probe.code !== 0) throw new Error(probe.stderr.trim() || `exit ${String(probe.code)}`);
        return true;
      },
      { timeoutMs: options.timeoutMs, intervalMs: 50 },
    );
  }

  /**
   * Waits until a TCP socket in `host` listens on `address:port` (or on the wildcard address), checked
   * with `ss` so that no connection is made (a probe through a proxy would reach a backend). Pass the
   * server's `process` to fail at once (with its log) if it dies meanwhile.
   */
  async waitForListen(host: string, address: string, port: number, options: { timeoutMs: number; process?: NsProcess }): Promise<void> {
    const wanted = new Set([`${address}:${port}`, `0.0.0.0:${port}`, `*:${port}`]);
    await pollUntil(
      `a listener on ${address}:${port} in ${host}`,
      async () => {
        options.process?.assertRunning();
        const listing = await this.execOk(host, "ss", ["-H", "-l", "-t", "-n", `sport = :${port}`], { timeoutMs: 2000 });
        return listing.stdout.split("\n").some((line) => wanted.has(line.trim().split(/\s+/)[3] ?? ""));
      },
      { timeoutMs: options.timeoutMs, intervalMs: 50 },
    );
  }

  /** An HTTP request made with curl from `host` (never through a proxy). */
  async http(host: string, url: string, options: HttpOptions = {}): Promise<HttpResult> {
    const marker = "\n__ILB_HTTP_STATUS__";
    const args = ["-sS", "--noproxy", "*", "--max-time", String((options.timeoutMs ?? 10_000) / 1000), "-X", options.method ?? "GET",
      "-o", "-", "-w", `${marker}%{http_code}`];
    for (const header of options.headers ?? []) args.push("-H", header);
    if (options.body !== undefined) args.push("--data-binary", "@-");
    args.push(url);
    const result = await this.exec(host, "curl", args, { timeoutMs: (options.timeoutMs ?? 10_000) + 2000, input: options.body });
    const at = result.stdout.lastIndexOf(marker);
    if (result.code !== 0 || at < 0) {
      throw new Error(`${result.command} failed (code ${String(result.code)}): ${result.stderr.trim()}`);
    }
    return { status: Number(result.stdout.slice(at + marker.length)), body: result.stdout.slice(0, at), durationMs: result.durationMs };
  }

  /** Names of this topology's namespaces that currently exist. */
  existingNamespaces(): string[] {
    return listNamespaces(`${this.prefix}-`);
  }

  /**
   * Kills every process of this topology (SIGKILL: its data is throwaway; call `stop()` on a process first
   * for a graceful end), deletes its namespaces (and so its veths and bridges) and its work directory.
   * Synchronous and idempotent, so it is safe in `finally`, `after`, and exit/signal handlers. Set
   * `IMAGING_LB_E2E_KEEP_WORKDIR=1` to keep the work directory (logs) for debugging.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const proc of this.processes) proc.signal("SIGKILL");
    const ip = requireTool("ip", "iproute2");
    for (const ns of [...this.created].reverse()) killAndDeleteNamespace(ip, ns);
    const left = listNamespaces(`${this.prefix}-`);
    if (process.env.IMAGING_LB_E2E_KEEP_WORKDIR !== "1") rmSync(this.workDir, { recursive: true, force: true });
    if (left.length > 0) throw new Error(`namespaces still present after destroy: ${left.join(", ")}`);
  }
}
