/**
 * HA-pair nodes in a topology. Each LB node (`lb`, `lb2`) gets a **node sandbox** — its own PID namespace
 * (with its own /proc) and a private mount namespace on top of its network namespace — in which the
 * product's HAProxy runs (master-worker, `-W`, as systemd runs it with `-Ws`), and **keepalived** runs with
 * the product's keepalived.conf beside it:
 *
 * - keepalived tracks HAProxy by process name from the kernel's process events (`vrrp_track_process`), which
 *   the kernel reports only to listeners in the initial network and PID namespaces. So keepalived starts in
 *   the root namespaces and enters the node's network namespace itself (`--namespace`, as the product's
 *   keepalived never needs to: it runs in the initial namespaces under systemd), in a private mount namespace
 *   of its own with the sandbox's files.
 * - From the root PID namespace keepalived sees every process of the machine, including the other node's
 *   HAProxy and any HAProxy of another test. ADAPTED: each node's HAProxy is started through a link named
 *   `haproxy-<node>`, which gives it that process name, and the keepalived.conf that runs is the product's with
 *   only `process haproxy` changed to `process haproxy-<node>` ({@link nodeKeepalivedConf}).
 * - the unprivileged `script_user` the rendered keepalived.conf names (`keepalived_script`) exists: an
 *   /etc/passwd copy with that user is bind-mounted over /etc/passwd in the sandbox's and keepalived's mount
 *   namespaces only (the host's /etc/passwd is never touched), as `test/keepalived-live.test.ts` does;
 * - files the rendered configuration expects at fixed paths (the `notify_master` takeover script at
 *   /usr/local/sbin/imaging-lb-vip-takeover) are installed on a tmpfs mounted over their folder in those mount
 *   namespaces, so keepalived.conf runs verbatim and the host's folders stay untouched.
 *
 * The sandbox's init is `sleep` (PID 1); programs are started in it with `nsenter -t <init> -p -m`, which
 * forks: the topology sees `nsenter`, the program is its child ({@link SandboxProcess.innerPid}). Everything
 * lives in the host's network namespace, so `Topology.destroy()` (SIGKILL to every pid of the namespace)
 * removes it; {@link NodeSandbox.destroy} does the same for the sandbox earlier. When the init dies the
 * kernel kills the rest of the PID namespace, and the mount namespace goes with its last process.
 *
 * The takeover script at the product's path is SIMULATED ({@link simulatedTakeoverScript}): where the real one
 * moves the addresses in the EC2 API, it moves them in the router's neighbour table, as permanent entries
 * that ignore gratuitous ARP, as EC2 does. Traffic then follows the takeover, not keepalived's ARP, as on AWS.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ResolvedEnvironment } from "../../../lib/config/model";
import { pairFiles, TAKEOVER_SCRIPT_PATH, vipInterface } from "../../../lib/node/ha-pair";
import { renderHaproxy } from "../../../lib/haproxy/build";
import { makeSelfSignedPem, requireTool } from "../../helpers/tools";
import { haproxyRuntime } from "./haproxy";
import type { ExecOptions, ExecResult, NsProcess, Topology } from "./netns";
import { maxconnOverride, STATS_PASSWORD_VARIABLE, TEST_STATS_PASSWORD } from "./product";
import { FatalWaitError, pollUntil } from "./wait";

/** The unprivileged user the product's keepalived.conf runs its checks as (`script_user`). */
export const KEEPALIVED_SCRIPT_USER = "keepalived_script";

/** A file placed at a fixed absolute path inside a sandbox (its folder becomes a tmpfs there). */
export interface SandboxFile {
  /** Absolute path inside the sandbox, e.g. `/usr/local/sbin/imaging-lb-vip-takeover`. */
  readonly path: string;
  readonly content: string;
  /** @default 0o755 */
  readonly mode?: number;
}

/** Options of {@link startNodeSandbox}. */
export interface NodeSandboxOptions {
  /** Topology host (network namespace) the sandbox lives in. */
  readonly host: string;
  /** Extra system users (added to the sandbox's /etc/passwd copy). @default [KEEPALIVED_SCRIPT_USER] */
  readonly users?: readonly string[];
  /** Files to install at fixed paths (each folder is hidden behind a tmpfs holding only these files). @default [] */
  readonly files?: readonly SandboxFile[];
  /** @default 10000 */
  readonly startTimeoutMs?: number;
}

/** A program running in a {@link NodeSandbox}. */
export interface SandboxProcess {
  /** The `nsenter` process the topology started (its child is the program). */
  readonly process: NsProcess;
  readonly logFile: string;
  /** The program's pid as seen from the test (root PID namespace); waits for nsenter's fork. */
  innerPid(timeoutMs?: number): Promise<number>;
  /** SIGKILL to the program itself (not nsenter), e.g. to crash HAProxy; resolves once nsenter has exited. */
  crash(): Promise<void>;
  /** SIGTERM to the program, SIGKILL after `graceMs`; resolves once nsenter has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** A node's PID + mount namespace inside its network namespace. */
export interface NodeSandbox {
  readonly topology: Topology;
  readonly host: string;
  /** The `unshare` process started by the topology. */
  readonly holder: NsProcess;
  /** The sandbox's init (PID 1 inside), as seen from the test. */
  readonly initPid: number;
  /** Shell lines that make the sandbox's mounts (/etc/passwd copy, files) in the mount namespace running them. */
  readonly mountSetup: readonly string[];
  /** Runs a command inside the sandbox and collects its output (like `Topology.exec`). */
  exec(command: string, args?: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Starts a long-running program inside the sandbox (like `Topology.spawn`). */
  spawn(command: string, args: readonly string[], options: { logFile: string; env?: NodeJS.ProcessEnv }): SandboxProcess;
  /** SIGKILL to the sandbox's init (the kernel then kills everything in it). */
  destroy(): Promise<void>;
}

/** The pids whose parent is `pid` (from /proc), or [] when `pid` is gone. */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter((p) => p !== "").map(Number);
  } catch {
    return [];
  }
}

/** The one child of `parent` (waits up to `timeoutMs` for the fork). */
async function onlyChild(parent: NsProcess, what: string, timeoutMs: number): Promise<number> {
  return pollUntil(
    `${what} (child of pid ${parent.pid})`,
    () => {
      parent.assertRunning();
      const children = childPids(parent.pid);
      if (children.length > 1) throw new FatalWaitError(`pid ${parent.pid} has ${children.length} children: ${children.join(", ")}`);
      return children[0];
    },
    { timeoutMs, intervalMs: 20 },
  );
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** /etc/passwd plus `users` (system accounts without login), written to `file`. */
function writePasswdCopy(file: string, users: readonly string[]): void {
  const passwd = readFileSync("/etc/passwd", "utf8");
  const existing = new Set(passwd.split("\n").map((line) => line.split(":")[0]));
  const extra = users
    .filter((user) => !existing.has(user))
    .map((user, i) => `${user}:x:${64_910 + i}:65534:imaging-lb e2e sandbox user:/nonexistent:/usr/sbin/nologin\n`);
  writeFileSync(file, `${passwd.endsWith("\n") ? passwd : `${passwd}\n`}${extra.join("")}`);
}

const SINGLE_QUOTED = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

/**
 * Starts a node sandbox in `options.host`: PID namespace with its own /proc, private mount namespace with
 * the /etc/passwd copy and the `files`. Resolves when the mounts are in place.
 *
 * @example
 * const node = await startNodeSandbox(topo, { host: "lb", files: [{ path: TAKEOVER_SCRIPT_PATH, content: script }] });
 * const ka = node.spawn("/usr/sbin/keepalived", ["--dont-fork", ...], { logFile });
 */
export async function startNodeSandbox(topology: Topology, options: NodeSandboxOptions): Promise<NodeSandbox> {
  const unshare = requireTool("unshare", "util-linux");
  const nsenter = requireTool("nsenter", "util-linux");
  requireTool("mount", "mount");
  const host = options.host;
  const passwd = join(topology.workDir, `sandbox-${host}-passwd`);
  writePasswdCopy(passwd, options.users ?? [KEEPALIVED_SCRIPT_USER]);
  const setup: string[] = ["set -e", `mount --bind ${SINGLE_QUOTED(passwd)} /etc/passwd`];
  const folders = new Set<string>();
  for (const [i, file] of (options.files ?? []).entries()) {
    if (!file.path.startsWith("/")) throw new Error(`sandbox file ${file.path}: expected an absolute path`);
    const staged = join(topology.workDir, `sandbox-${host}-file-${i}`);
    writeFileSync(staged, file.content);
    const folder = dirname(file.path);
    if (!folders.has(folder)) {
      folders.add(folder);
      setup.push(`mount -t tmpfs -o mode=0755,size=1m imaging-lb-e2e ${SINGLE_QUOTED(folder)}`);
    }
    setup.push(`install -o root -g root -m ${(file.mode ?? 0o755).toString(8)} ${SINGLE_QUOTED(staged)} ${SINGLE_QUOTED(file.path)}`);
  }
  const mountSetup = [...setup];
  const ready = "imaging-lb-e2e: sandbox ready";
  setup.push(`echo ${SINGLE_QUOTED(ready)}`, "exec sleep 86400");
  const holder = topology.spawn(
    host,
    unshare,
    ["--pid", "--fork", "--mount-proc", "--propagation", "private", "sh", "-c", setup.join("\n")],
    { logFile: join(topology.workDir, `sandbox-${host}.log`) },
  );
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  await pollUntil(`the sandbox of ${host} to mount its files`, () => {
    holder.assertRunning();
    return holder.log().includes(ready);
  }, { timeoutMs, intervalMs: 20 });
  const initPid = await onlyChild(holder, `the sandbox init of ${host}`, timeoutMs);
  const enter = (command: string, args: readonly string[]): string[] => ["-t", String(initPid), "-p", "-m", "--", command, ...args];

  const sandbox: NodeSandbox = {
    topology,
    host,
    holder,
    initPid,
    mountSetup,
    exec: (command, args = [], execOptions = {}) => topology.exec(host, nsenter, enter(command, args), execOptions),
    spawn: (command, args, spawnOptions) => {
      const proc = topology.spawn(host, nsenter, enter(command, args), { logFile: spawnOptions.logFile, env: spawnOptions.env });
      let inner: number | undefined;
      const innerPid = async (waitMs = 5000): Promise<number> => {
        inner ??= await onlyChild(proc, `${command} in the sandbox of ${host}`, waitMs);
        return inner;
      };
      const end = async (signal: NodeJS.Signals, graceMs: number): Promise<void> => {
        if (!proc.running) return;
        signalPid(await innerPid(), signal);
        const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref());
        if ((await Promise.race([proc.exited, timer])) === "timeout") {
          signalPid(await innerPid(), "SIGKILL");
          await proc.exited;
        }
      };
      return {
        process: proc,
        logFile: proc.logFile,
        innerPid,
        crash: () => end("SIGKILL", 5000),
        stop: (graceMs = 5000) => end("SIGTERM", graceMs),
      };
    },
    destroy: async () => {
      signalPid(initPid, "SIGKILL");
      await holder.exited;
    },
  };
  return sandbox;
}

let keepalivedStarts = 0;

/** A keepalived daemon of a node (root PID namespace, the node's network namespace). */
export interface KeepalivedInstance {
  readonly sandbox: NodeSandbox;
  /** The keepalived.conf text it started with ({@link reload} writes another over {@link configFile}). */
  readonly config: string;
  readonly configFile: string;
  /** keepalived's parent process (`unshare` → `sh` → `keepalived`, one pid). */
  readonly program: NsProcess;
  /** keepalived's console log (`--log-console --log-detail`). */
  log(): string;
  /** The VRRP states entered so far, in order (`MASTER`, `BACKUP`, `FAULT`), from the log. */
  states(): string[];
  /** Polls (every 50 ms) until the last state entered is `state`; resolves with the time waited (ms). */
  waitForState(state: "MASTER" | "BACKUP" | "FAULT", timeoutMs: number): Promise<number>;
  /** SIGTERM (keepalived removes its virtual addresses and sends a priority-0 advert), SIGKILL after 5 s. */
  stop(): Promise<void>;
  /** SIGKILL to keepalived and its VRRP child (a dead node: no priority-0 advert, the addresses stay). */
  kill(): Promise<void>;
  /** Writes `config` over the running file and reloads keepalived (SIGHUP, as `systemctl reload keepalived`). */
  reload(config: string): Promise<void>;
}

/** The pids whose parent is `pid`, recursively (from /proc). */
function descendants(pid: number): number[] {
  return childPids(pid).flatMap((child) => [child, ...descendants(child)]);
}

/**
 * Starts `keepalived --dont-fork --log-console --log-detail --vrrp -f <config> --namespace <node netns>` from
 * the root network and PID namespaces (see the file comment), in a private mount namespace with the sandbox's
 * mounts, with its pid files in the topology's work directory (so several daemons on one machine never share
 * /run/keepalived.pid). keepalived's own config check (`-t`) is not run: keepalived 2.2.7 (Debian 12) kills
 * itself in `-t` when a non-root `script_user` runs a vrrp_script (fixed in 2.2.8; see
 * `test/keepalived-live.test.ts`).
 */
export async function startKeepalived(sandbox: NodeSandbox, config: string, name: string): Promise<KeepalivedInstance> {
  const keepalived = requireTool("keepalived", "keepalived");
  const unshare = requireTool("unshare", "util-linux");
  const topology = sandbox.topology;
  const dir = topology.workDir;
  keepalivedStarts += 1;
  const base = join(dir, `keepalived-${name}-${keepalivedStarts}`);
  const configFile = `${base}.conf`;
  writeFileSync(configFile, config);
  const script = [...sandbox.mountSetup, 'exec "$0" "$@"'].join("\n");
  // Fresh pid files per start: keepalived refuses to start ("daemon is already running") over a stale one.
  const program = topology.spawnRoot(
    sandbox.host,
    unshare,
    [
      "--mount", "--propagation", "private", "sh", "-c", script, keepalived,
      "--dont-fork", "--log-console", "--log-detail", "--vrrp", "--use-file", configFile, "--namespace", topology.ns(sandbox.host),
      "--pid", `${base}.pid`, "--vrrp_pid", `${base}-vrrp.pid`,
    ],
    { logFile: `${base}.log` },
  );
  const log = (): string => program.log();
  const states = (): string[] => [...log().matchAll(/Entering (MASTER|BACKUP|FAULT) STATE/g)].map((m) => m[1]);
  await pollUntil(`keepalived ${name} to start its VRRP process`, () => {
    program.assertRunning();
    return /Starting VRRP child process/.test(log());
  }, { timeoutMs: 10_000, intervalMs: 20 });
  return {
    sandbox,
    config,
    configFile,
    program,
    log,
    states,
    waitForState: async (state, timeoutMs) => {
      const started = Date.now();
      await pollUntil(`keepalived ${name} to enter ${state}`, () => {
        program.assertRunning();
        if (states().at(-1) === state) return true;
        throw new Error(`states so far: ${states().join(" → ") || "none"}; log tail:\n${program.logTail(8)}`);
      }, { timeoutMs, intervalMs: 50 });
      return Date.now() - started;
    },
    stop: () => program.stop(5000),
    kill: async () => {
      for (const pid of descendants(program.pid)) signalPid(pid, "SIGKILL");
      await program.kill();
    },
    reload: async (next) => {
      const reloads = (): number => (log().match(/Reloading/g) ?? []).length;
      const before = reloads();
      writeFileSync(configFile, next);
      program.signal("SIGHUP");
      await pollUntil(`keepalived ${name} to reload`, () => {
        program.assertRunning();
        return reloads() > before;
      }, { timeoutMs: 10_000, intervalMs: 20 });
    },
  };
}

/** An HAProxy in a sandbox. */
export interface SandboxHaproxy {
  readonly config: string;
  readonly configFile: string;
  readonly program: SandboxProcess;
  /** The runtime API socket. */
  readonly socketPath: string;
  /** `-n` given because the machine cannot raise the FD limit (see `maxconnOverride`); undefined otherwise. */
  readonly maxconnOverride: number | undefined;
  /** The process name of this node's HAProxy processes (`haproxy-<node>`, at most 15 characters). */
  readonly processName: string;
  /** The link to the haproxy binary that gives its processes {@link processName}. */
  readonly binary: string;
  /** A master-worker reload (SIGUSR2 to the master, as `systemctl reload haproxy`): a new worker takes over. */
  reload(): Promise<void>;
  runtime(command: string): Promise<string>;
  /** `show stat` rows keyed by the CSV header. */
  stat(): Promise<Record<string, string>[]>;
  /** Polls until every listed `backend/server` is exactly `status`. */
  waitForStatus(servers: readonly { backend: string; server: string }[], status: string, timeoutMs: number): Promise<void>;
}

/** Options of {@link startProductPairNode}. */
export interface ProductPairNodeOptions {
  /** The node's name in the environment (`lb-a`): HAProxy's local peer name (`-L`) and keepalived's node. */
  readonly node: string;
  /** Listeners to wait for (address:port). @default every VIP:port of the environment's services */
  readonly waitFor?: readonly { readonly address: string; readonly port: number }[];
  /** @default 10000 */
  readonly startTimeoutMs?: number;
  /** How many times this node's HAProxy was started before (names its log). @default 0 */
  readonly restart?: number;
}

/** The process name a node's HAProxy runs under in the testbed (see the file comment). */
export function nodeHaproxyName(node: string): string {
  return `haproxy-${node}`.slice(0, 15);
}

/**
 * Renders the product's haproxy.cfg for `env` (as `startProductHaproxy` does: only the runtime socket, chroot
 * and certificate folder moved into the work directory) and runs it in `sandbox` in master-worker mode (`-W`,
 * as systemd's `-Ws`) with `-L <node>` — the product names each node's peer after its hostname, which
 * `ip netns exec` does not change — through a link named {@link nodeHaproxyName}, validated with
 * `haproxy -dW -c -L <node>` first.
 */
export async function startProductPairHaproxy(sandbox: NodeSandbox, env: ResolvedEnvironment, options: ProductPairNodeOptions): Promise<SandboxHaproxy> {
  const haproxy = requireTool("haproxy", "haproxy");
  const topo = sandbox.topology;
  const node = options.node;
  const certBase = join(topo.workDir, `certs-${node}`);
  mkdirSync(certBase, { recursive: true });
  for (const certificate of env.certificates) makeSelfSignedPem(certBase, certificate.name);
  const socketPath = join(topo.workDir, `haproxy-${node}.sock`);
  const config = renderHaproxy(env, { runtimeSocket: socketPath, chroot: false, certBase });
  const configFile = join(topo.workDir, `haproxy-${node}.cfg`);
  writeFileSync(configFile, config);
  const processEnv = { ...process.env, [STATS_PASSWORD_VARIABLE]: TEST_STATS_PASSWORD };
  const check = await sandbox.exec(haproxy, ["-dW", "-c", "-f", configFile, "-L", node], { env: processEnv });
  if (check.code !== 0) throw new Error(`haproxy -dW -c -L ${node} rejected ${configFile}:\n${check.stdout}${check.stderr}`);
  const override = maxconnOverride(config);
  const processName = nodeHaproxyName(node);
  const binDir = join(topo.workDir, `bin-${node}`);
  mkdirSync(binDir, { recursive: true });
  const binary = join(binDir, processName);
  if (!existsSync(binary)) symlinkSync(haproxy, binary);
  const program = sandbox.spawn(binary, ["-W", "-db", "-f", configFile, "-L", node, ...(override === undefined ? [] : ["-n", String(override)])], {
    logFile: join(topo.workDir, `haproxy-${node}${options.restart ? `-${options.restart}` : ""}.log`),
    env: processEnv,
  });
  const listeners =
    options.waitFor ??
    env.services.flatMap((s) => [...s.frontendPorts, ...(s.tls.redirectHttpPort === undefined ? [] : [s.tls.redirectHttpPort])].map((port) => ({ address: s.vip.address, port })));
  for (const listener of listeners) {
    await topo.waitForListen(sandbox.host, listener.address, listener.port, { timeoutMs: options.startTimeoutMs ?? 10_000, process: program.process });
  }
  const runtime = (command: string): Promise<string> => haproxyRuntime(socketPath, command);
  const stat = async (): Promise<Record<string, string>[]> => {
    const lines = (await runtime("show stat")).split("\n").filter((line) => line.trim() !== "");
    const header = (lines.shift() ?? "").replace(/^#\s*/, "").split(",");
    return lines.map((line) => Object.fromEntries(line.split(",").map((value, i) => [header[i] ?? String(i), value])));
  };
  return {
    config,
    configFile,
    program,
    socketPath,
    maxconnOverride: override,
    processName,
    binary,
    reload: async () => signalPid(await program.innerPid(), "SIGUSR2"),
    runtime,
    stat,
    waitForStatus: async (servers, status, timeoutMs) => {
      await pollUntil(`${servers.map((s) => `${s.backend}/${s.server}`).join(", ")} to be ${status} on ${node}`, async () => {
        program.process.assertRunning();
        const rows = await stat();
        const row = (s: { backend: string; server: string }) => rows.find((r) => r.pxname === s.backend && r.svname === s.server);
        const wrong = servers.filter((s) => row(s)?.status !== status);
        if (wrong.length === 0) return true;
        throw new Error(`not yet: ${wrong.map((s) => `${s.backend}/${s.server} ${row(s)?.status ?? "missing"} (${row(s)?.check_status ?? ""} ${row(s)?.check_code ?? ""} "${row(s)?.last_chk ?? ""}")`).join(", ")}`);
      }, { timeoutMs, intervalMs: 100 });
    },
  };
}

/** The product's keepalived.conf of `node` (`pairFiles`), unchanged. Throws if `env` is not an HA pair. */
export function productKeepalivedConf(env: ResolvedEnvironment, node: string): string {
  const resolved = env.nodes.find((n) => n.name === node);
  if (!resolved) throw new Error(`no node ${node} in ${env.name} (nodes: ${env.nodes.map((n) => n.name).join(", ")})`);
  const files = pairFiles(env, resolved);
  if (!files) throw new Error(`${env.name} is not an HA pair: pairFiles returned nothing`);
  return files.keepalivedConf;
}

/**
 * The keepalived.conf a testbed node runs: the product's ({@link productKeepalivedConf}) with only its tracked
 * process name changed to the node's ({@link nodeHaproxyName}; ADAPTED, see the file comment).
 */
export function nodeKeepalivedConf(env: ResolvedEnvironment, node: string): string {
  const product = productKeepalivedConf(env, node);
  const adapted = product.replace(/^ {4}process haproxy$/m, `    process ${nodeHaproxyName(node)}`);
  if (adapted === product) throw new Error(`the product's keepalived.conf of ${node} tracks no process named haproxy:\n${product}`);
  return adapted;
}

/** Where a simulated takeover moves the VIPs: the router's neighbour table (SIMULATED EC2). */
export interface SimulatedEc2 {
  /** The router's namespace (`topology.ns("router")`). */
  readonly routerNamespace: string;
  /** The router's interface on the VIPs' segment, e.g. `eth1` (two-arm) or `eth1` (one-arm's VPC side). */
  readonly routerInterface: string;
  /** The VIPs; the first is the one whose presence on `vipInterface` means "this node is MASTER". */
  readonly vips: readonly string[];
  /** This node's interface holding the VIPs (`eth1` two-arm, `eth0` one-arm). */
  readonly vipInterface: string;
}

/**
 * A **simulated** takeover script for {@link TAKEOVER_SCRIPT_PATH}. Like the product's, it stands down unless
 * keepalived holds the first VIP on the node's interface (the node is MASTER); where the product's script then
 * moves the floating addresses in the EC2 API, this one points the router's neighbour entries for the VIPs at
 * this node's interface, as permanent entries: the router then ignores gratuitous ARP, as the VPC does, and
 * sends the VIPs' traffic where the last takeover put it. It records each run in `recordFile`
 * (`<epoch ms> <node> SIMULATED takeover (args: ...)`, or `... stood down` when not MASTER).
 */
export function simulatedTakeoverScript(node: string, recordFile: string, ec2: SimulatedEc2): string {
  const ip = requireTool("ip", "iproute2");
  const record = SINGLE_QUOTED(recordFile);
  return [
    "#!/bin/sh",
    "# SIMULATED imaging-lb VIP takeover (e2e testbed): the product's script calls the EC2 API here; this one",
    "# points the router's neighbour entries for the VIPs at this node (permanent: gratuitous ARP is ignored).",
    `if ! ${ip} -4 -o addr show dev ${ec2.vipInterface} | grep -q ' ${ec2.vips[0]}/32 '; then`,
    `  echo "$(date +%s%3N) ${node} SIMULATED takeover stood down (not MASTER; args: $*)" >> ${record}`,
    "  exit 0",
    "fi",
    `mac="$(${ip} -o link show dev ${ec2.vipInterface} | sed -n 's/.*link\\/ether \\([0-9a-f:]*\\).*/\\1/p')"`,
    `for vip in ${ec2.vips.join(" ")}; do`,
    `  ${ip} -n ${ec2.routerNamespace} neigh replace "$vip" lladdr "$mac" dev ${ec2.routerInterface} nud permanent || exit 1`,
    "done",
    `echo "$(date +%s%3N) ${node} SIMULATED takeover (args: $*)" >> ${record}`,
    "exit 0",
    "",
  ].join("\n");
}

/** The takeovers a record file holds (`[]` when the script never ran), without the runs that stood down. */
export function takeoverRecords(recordFile: string): string[] {
  try {
    return readFileSync(recordFile, "utf8").split("\n").filter((line) => / SIMULATED takeover \(args/.test(line));
  } catch {
    return [];
  }
}

/** The epoch-ms times of the takeovers in a record file. */
export function takeoverTimes(recordFile: string): number[] {
  return takeoverRecords(recordFile).map((line) => Number(line.split(" ")[0]));
}

/** A product HA-pair node: sandbox, HAProxy (`-L <node>`), keepalived with its rendered config. */
export interface ProductPairNode {
  readonly node: string;
  readonly host: string;
  readonly sandbox: NodeSandbox;
  /** The running HAProxy; replaced by {@link restartHaproxy}. */
  haproxy: SandboxHaproxy;
  /** Undefined until {@link startKeepalived} is called. */
  keepalived: KeepalivedInstance | undefined;
  /** Where the simulated takeover script records its runs. */
  readonly takeoverRecordFile: string;
  /** The keepalived.conf this node runs ({@link nodeKeepalivedConf}). */
  readonly keepalivedConf: string;
  /** Starts keepalived with this node's keepalived.conf, or with `config` (a benchmark's comparison). */
  startKeepalived(config?: string): Promise<KeepalivedInstance>;
  /** Starts HAProxy again (after it was killed), waiting for its listeners. */
  restartHaproxy(): Promise<SandboxHaproxy>;
}

/**
 * Starts a product HA-pair node in `host`: a sandbox with the `keepalived_script` user and the simulated
 * takeover script at the product's path (moving the VIPs in `ec2`'s router), then the product's HAProxy.
 * keepalived is started separately ({@link ProductPairNode.startKeepalived}) so the test decides which node
 * is elected first.
 */
export async function startProductPairNode(
  topology: Topology,
  env: ResolvedEnvironment,
  host: string,
  options: ProductPairNodeOptions & { readonly ec2: Omit<SimulatedEc2, "vips" | "vipInterface"> },
): Promise<ProductPairNode> {
  const takeoverRecordFile = join(topology.workDir, `takeover-${options.node}.log`);
  const ec2: SimulatedEc2 = { ...options.ec2, vips: env.vips.map((v) => v.address), vipInterface: vipInterface(env) };
  const sandbox = await startNodeSandbox(topology, {
    host,
    files: [{ path: TAKEOVER_SCRIPT_PATH, content: simulatedTakeoverScript(options.node, takeoverRecordFile, ec2) }],
  });
  const keepalivedConf = nodeKeepalivedConf(env, options.node);
  let restarts = 0;
  const node: ProductPairNode = {
    node: options.node,
    host,
    sandbox,
    haproxy: await startProductPairHaproxy(sandbox, env, options),
    keepalived: undefined,
    takeoverRecordFile,
    keepalivedConf,
    startKeepalived: async (config = keepalivedConf) => {
      node.keepalived = await startKeepalived(sandbox, config, options.node);
      return node.keepalived;
    },
    restartHaproxy: async () => {
      if (node.haproxy.program.process.running) throw new Error(`HAProxy of ${options.node} still runs`);
      restarts += 1;
      node.haproxy = await startProductPairHaproxy(sandbox, env, { ...options, restart: restarts });
      return node.haproxy;
    },
  };
  return node;
}

/** The IPv4 addresses (without prefix length) on `ifName` of `host`. */
export async function interfaceAddresses(topology: Topology, host: string, ifName: string): Promise<string[]> {
  const out = await topology.execOk(host, "ip", ["-4", "-o", "addr", "show", "dev", ifName], { timeoutMs: 3000 });
  return [...out.stdout.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]);
}

/** The MAC address of `ifName` in `host`. */
export async function interfaceMac(topology: Topology, host: string, ifName: string): Promise<string> {
  const out = await topology.execOk(host, "cat", [`/sys/class/net/${ifName}/address`], { timeoutMs: 3000 });
  return out.stdout.trim().toLowerCase();
}

/** The link-layer address `host` has for `address` in its neighbour (ARP) table, or undefined. */
export async function neighbourMac(topology: Topology, host: string, address: string): Promise<string | undefined> {
  const out = await topology.exec(host, "ip", ["-4", "neigh", "show", "to", address], { timeoutMs: 3000 });
  return /lladdr ([0-9a-f:]{17})/.exec(out.stdout)?.[1];
}

/** One entry of `show table <backend>`. */
export interface StickEntry {
  readonly key: string;
  readonly serverId: number;
  /** `server_key`/`server_name` when HAProxy prints it. */
  readonly serverName: string | undefined;
  readonly raw: string;
}

/** Parses the runtime API's `show table <name>` output. */
export function parseStickTable(text: string): StickEntry[] {
  return text
    .split("\n")
    .filter((line) => /\bkey=/.test(line))
    .map((line) => ({
      key: /\bkey=(\S+)/.exec(line)?.[1] ?? "",
      serverId: Number(/\bserver_id=(\d+)/.exec(line)?.[1] ?? "NaN"),
      serverName: /\bserver_(?:key|name)=(\S+)/.exec(line)?.[1],
      raw: line.trim(),
    }));
}
