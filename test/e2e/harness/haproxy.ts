/**
 * Runs a real HAProxy (`haproxy -f <cfg> -db`) inside a topology host, with the configuration validated
 * first (`haproxy -dW -c`, warnings are errors) and readiness checked on its listening sockets.
 */
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { requireTool } from "../../helpers/tools";
import type { NsProcess, Topology } from "./netns";

/** Options of {@link startHaproxy}. */
export interface HaproxyOptions {
  /** Topology host (the LB node). */
  readonly host: string;
  /** The haproxy.cfg text (e.g. the product's rendered configuration). */
  readonly config: string;
  /**
   * Listeners (`address:port`) that must be listening in `host` before this resolves (checked with `ss`,
   * without connecting, so no backend sees a probe). @default []
   */
  readonly waitFor?: readonly { readonly address: string; readonly port: number }[];
  /** Validate with `haproxy -dW -c` first (warnings are errors). @default true */
  readonly strictCheck?: boolean;
  /** @default 10000 */
  readonly startTimeoutMs?: number;
  /**
   * Extra environment variables for the check and the running HAProxy (e.g. the product's
   * `IMAGING_LB_STATS_PASSWORD`), added to this process's environment. @default {}
   */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra command-line arguments for the running HAProxy (not the check), e.g. `["-n", "9000"]`. @default [] */
  readonly args?: readonly string[];
  /**
   * This HAProxy's name in the `peers` section (`-L`, for the check and the run alike: a peers section
   * without the local peer is removed with a warning, which the strict check refuses). @default none: the host name
   */
  readonly localPeer?: string;
}

/** A running HAProxy. */
export interface HaproxyInstance {
  readonly process: NsProcess;
  /** Where the configuration was written. */
  readonly configFile: string;
  /** HAProxy's stdout/stderr (`log stdout ...` lines end up here). */
  readonly logFile: string;
  /** Stops HAProxy (SIGTERM = hard stop in `-db` mode; SIGKILL after the grace time). */
  stop(): Promise<void>;
}

/**
 * Validates and starts HAProxy in `options.host` and waits for its listeners.
 *
 * @example
 * const lb = await startHaproxy(topo, { host: "lb", config, waitFor: [{ address: vip, port: 104 }] });
 */
export async function startHaproxy(topology: Topology, options: HaproxyOptions): Promise<HaproxyInstance> {
  const haproxy = requireTool("haproxy", "haproxy");
  const configFile = join(topology.workDir, `haproxy-${options.host}.cfg`);
  writeFileSync(configFile, options.config);
  const env = { ...process.env, ...options.env };
  const localPeer = options.localPeer === undefined ? [] : ["-L", options.localPeer];
  const check = await topology.exec(options.host, haproxy, [...(options.strictCheck === false ? [] : ["-dW"]), "-c", "-f", configFile, ...localPeer], { env });
  if (check.code !== 0) throw new Error(`haproxy -c rejected ${configFile}:\n${check.stdout}${check.stderr}`);
  const proc = topology.spawn(options.host, haproxy, ["-f", configFile, "-db", ...localPeer, ...(options.args ?? [])], { logFile: join(topology.workDir, `haproxy-${options.host}.log`), env });
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  for (const listener of options.waitFor ?? []) {
    await topology.waitForListen(options.host, listener.address, listener.port, { timeoutMs, process: proc });
  }
  proc.assertRunning();
  return { process: proc, configFile, logFile: proc.logFile, stop: () => proc.stop(3000) };
}

/**
 * Sends one command to HAProxy's runtime API on a `stats socket <path>` (a Unix socket is reachable from
 * the root namespace) and returns the answer, e.g. `set server be_dicom/srv1 state drain`.
 */
export function haproxyRuntime(socketPath: string, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`haproxy runtime API ${socketPath}: no answer to "${command}" within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("connect", () => socket.end(`${command}\n`));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`haproxy runtime API ${socketPath}: ${error.message}`));
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
  });
}
