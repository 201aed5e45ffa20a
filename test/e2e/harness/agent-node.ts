/**
 * The product's configuration agent (`lib/agent/imaging-lb-agent.sh`, the exact script the user data
 * installs) running in an LB namespace, against an S3 + Secrets Manager emulator (moto, SIMULATED AWS) that
 * the test starts in a namespace, with the real AWS CLI and a real HAProxy in master-worker mode.
 *
 * SIMULATED: systemd. The namespaces have none, so a `systemctl` stub on the agent's PATH runs
 * `haproxy.service` the way the Debian/Ubuntu unit does (master-worker; reload = SIGUSR2 to the master,
 * which hands the listeners to a new worker) and `keepalived.service` as a foreground keepalived.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigBundle, storeKeys } from "../../../lib/node/bundle";
import { NODE_CONTRACT } from "../../../lib/contract/node-contract";
import { installMachineAgent } from "../../helpers/agent-bed";
import { createSigningKey, publishBundles } from "../../helpers/store-publisher";
import { HUNG_AFTER_MS, requireTool } from "../../helpers/tools";
import type { NsProcess, Topology } from "./netns";
import { pollUntil } from "./wait";

/** Credentials and port of the emulator (any value is accepted by moto). */
const MOTO_PORT = 5055;
export const TEST_ACCOUNT = "123456789012";

/** The S3/Secrets Manager/KMS emulator (moto) running in a topology host. */
export interface ConfigStore {
  readonly host: string;
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  /** Runs the real AWS CLI against the emulator from `host` (default: the store's host); throws on failure. */
  aws(args: readonly string[], host?: string): Promise<string>;
  /**
   * Uploads bundles the way the stack does: every content-addressed file first, then the manifests together
   * (Terraform uploads in parallel). Resolves with the time the manifest uploads began: no node can see the
   * new version before it.
   */
  upload(bundles: readonly ConfigBundle[], prefix: string): Promise<number>;
  /** Creates (or updates) a secret; returns its ARN. */
  putSecret(name: string, value: string): Promise<string>;
  /** A node's status object, or undefined when it has written none. */
  status(prefix: string, node: string): Promise<Record<string, unknown> | undefined>;
}

function awsEnv(endpoint: string, region: string): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    AWS_DEFAULT_REGION: region,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_PAGER: "",
  };
}

/**
 * Starts moto (`python3 -m moto.server`) in `host`, listening on every address of the namespace, and
 * creates `bucket`. Reach it from other hosts at `http://<address>:5055`.
 */
export async function startConfigStore(topology: Topology, host: string, options: { bucket: string; region: string; address: string; environment: string }): Promise<ConfigStore> {
  requireTool("aws", "awscli");
  const probe = spawnSync("python3", ["-c", "import moto.server"], { encoding: "utf8" });
  if (probe.status !== 0) {
    throw new Error(`moto is not importable by python3 (${probe.stderr.trim()}): the machine image's Python 3.11 carries moto 5.2`);
  }
  const proc: NsProcess = topology.spawn(host, "python3", ["-m", "moto.server", "-H", "0.0.0.0", "-p", String(MOTO_PORT)], {
    logFile: join(topology.workDir, `moto-${host}.log`),
  });
  await topology.waitForListen(host, "0.0.0.0", MOTO_PORT, { timeoutMs: 30_000, process: proc });
  const endpoint = `http://${options.address}:${MOTO_PORT}`;
  const env = awsEnv(endpoint, options.region);
  const aws = async (args: readonly string[], from = host): Promise<string> => {
    const result = await topology.exec(from, "aws", [...args], { env, timeoutMs: 30_000 });
    if (result.code !== 0) throw new Error(`aws ${args.join(" ")}: exit ${result.code}: ${result.stderr}`);
    return result.stdout;
  };
  await aws(["s3api", "create-bucket", "--bucket", options.bucket, "--create-bucket-configuration", `LocationConstraint=${options.region}`]);
  await createSigningKey((args) => aws(args), options.environment);
  const staging = join(topology.workDir, "uploads");
  mkdirSync(staging, { recursive: true });
  return {
    host,
    endpoint,
    bucket: options.bucket,
    region: options.region,
    aws,
    upload(bundles, prefix) {
      return publishBundles((args) => aws(args), { bucket: options.bucket, prefix, environment: options.environment, staging }, bundles);
    },
    async putSecret(name, value) {
      const out = await aws(["secretsmanager", "create-secret", "--name", name, "--secret-string", value]);
      return (JSON.parse(out) as { ARN: string }).ARN;
    },
    async status(prefix, node) {
      const file = join(staging, `status-${node}-${Date.now()}.json`);
      const result = await topology.exec(host, "aws", ["s3api", "get-object", "--bucket", options.bucket, "--key", storeKeys.status(prefix, node), file], { env });
      if (result.code !== 0) return undefined;
      return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    },
  };
}

/** SIMULATED systemd: only what the agent calls. */
const SYSTEMCTL_STUB = `#!/bin/bash
# SIMULATED systemctl for the namespace testbed (no systemd there): haproxy.service is HAProxy in
# master-worker mode as the Debian unit runs it; reload is SIGUSR2 to the master.
set -euo pipefail
pidfile="$IMAGING_LB_ROOT/run/haproxy-master.pid"
unit="\${*: -1}"
case "$1 $unit" in
  "reload haproxy.service") kill -USR2 "$(cat "$pidfile")" ;;
  "is-active haproxy.service") [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null ;;
  "restart haproxy.service" | "start haproxy.service")
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then kill -TERM "$(cat "$pidfile")"; sleep 1; fi
    set -a
    if [ -f "$IMAGING_LB_ROOT/etc/imaging-lb/haproxy.env" ]; then . "$IMAGING_LB_ROOT/etc/imaging-lb/haproxy.env"; fi
    set +a
    # The unit's LimitNOFILE (the bootstrap's drop-in); a test host that may not raise it gets a smaller
    # maxconn on the command line instead (as maxconnOverride does for the other e2e tests).
    extra=()
    ulimit -n 1048576 2>/dev/null || extra=(-n $((($(ulimit -Hn) - 100) / 2)))
    haproxy -W -D -p "$pidfile" "\${extra[@]}" -f "$IMAGING_LB_ROOT/etc/haproxy/haproxy.cfg" ;;
  "enable haproxy.service") ;;
  "is-active keepalived.service") exit 1 ;;
  # keepalived does not run in this testbed: the role is SIMULATED by the VIPs the topology puts on the MASTER.
  "enable keepalived.service" | "reload keepalived.service") ;;
  *) echo "systemctl stub: unexpected: $*" >&2; exit 1 ;;
esac
`;

/** One LB host running the agent. */
export interface AgentNode {
  readonly host: string;
  readonly node: string;
  /** The sandbox root (IMAGING_LB_ROOT): the node's /etc, /var/lib, /run. */
  readonly root: string;
  /** Runs one cycle of the agent (`--once`, plus `args`, e.g. `--boot`); resolves with its exit code and log. */
  run(extraEnv?: Record<string, string>, args?: readonly string[]): Promise<{ code: number; log: string }>;
  /**
   * Starts the agent as the service runs it (one long-lived process, polling every POLL_SECONDS); `extraEnv`
   * adds the agent's test overrides (IMAGING_LB_POLL_SECONDS, IMAGING_LB_METRICS_SECONDS, ...).
   */
  startPolling(extraEnv?: Record<string, string>): void;
  /** Stops the long-lived agent (SIGTERM by pid) and keeps its log. */
  stopPolling(): Promise<void>;
  /** The long-lived agent's pid (undefined when not running). */
  agentPid(): number | undefined;
  /** Every run's log so far (the long-lived agent's when stopped). */
  readonly logs: string[];
  /** The HAProxy master's pid (undefined before the first apply). */
  masterPid(): number | undefined;
  /** Stops HAProxy (master and workers). */
  stopHaproxy(): void;
}

/** Paths inside the sandbox root the bundle must be rendered with (the renderer's runtime options). */
export function agentRuntimePaths(root: string) {
  return {
    runtimeSocket: join(root, "run/haproxy/admin.sock"),
    chroot: false as const,
    certBase: join(root, "etc/haproxy/certs"),
    serverStateFile: join(root, "var/lib/haproxy/server-state"),
    // Where the agent installs the bundle's error pages and maintenance map ($IMAGING_LB_ROOT/etc/haproxy/errors).
    errorDir: join(root, "etc/haproxy/errors"),
  };
}

/**
 * Prepares `host` to run the agent: the sandbox root with `etc/imaging-lb/agent.env` (as the bootstrap writes
 * it), the agent script, and the stub `systemctl` first on PATH.
 */
export function prepareAgentNode(topology: Topology, host: string, options: { node: string; environment: string; store: ConfigStore; storeEndpoint: string }): AgentNode {
  requireTool("socat", "socat");
  requireTool("haproxy", "haproxy");
  const root = join(topology.workDir, `root-${host}`);
  for (const dir of ["etc/imaging-lb", "usr/local/sbin", "run/haproxy", "var/lib/haproxy", "bin"]) mkdirSync(join(root, dir), { recursive: true });
  writeFileSync(
    join(root, "etc/imaging-lb/agent.env"),
    `BUCKET=${options.store.bucket}\nPREFIX=${options.environment}\nNODE=${options.node}\nENVIRONMENT=${options.environment}\nREGION=${options.store.region}\n`,
  );
  installMachineAgent(root);
  writeFileSync(join(root, "bin/systemctl"), SYSTEMCTL_STUB);
  chmodSync(join(root, "bin/systemctl"), 0o755);
  // No IMDS in the namespaces: credentials come from the environment, the store's location from agent.env.
  const env = {
    ...awsEnv(options.storeEndpoint, options.store.region),
    IMAGING_LB_ROOT: root,
    IMAGING_LB_NO_TAGS: "1",
    PATH: `${join(root, "bin")}:${process.env.PATH}`,
  };
  const launcher = join(root, NODE_CONTRACT.paths.launcher);
  const logs: string[] = [];
  // SIMULATED hostname (cloud-init sets it on a node): HAProxy's peers section needs it to be the node name.
  const script = `hostname ${options.node} && exec bash ${launcher} "$@"`;
  const run = async (extraEnv: Record<string, string> = {}, args: readonly string[] = []) => {
    const result = await topology.exec(host, "unshare", ["--uts", "bash", "-c", script, "agent", "--once", ...args], {
      env: { ...env, ...extraEnv },
      // A safety net against a hang, not a speed budget: a run that takes 13 s took over 120 s at load 19.
      timeoutMs: HUNG_AFTER_MS,
    });
    const log = `[${new Date().toISOString()}] exit ${result.code}\n${result.stderr}`;
    logs.push(log);
    return { code: result.code ?? -1, log };
  };
  const pidfile = join(root, "run/haproxy-master.pid");
  const masterPid = () => (existsSync(pidfile) ? Number(readFileSync(pidfile, "utf8").trim()) : undefined);
  let daemon: NsProcess | undefined;
  let daemonLog = "";
  return {
    host,
    node: options.node,
    root,
    run,
    logs,
    startPolling(extraEnv = {}) {
      daemonLog = join(topology.workDir, `agent-${host}-${Date.now()}.log`);
      daemon = topology.spawn(host, "unshare", ["--uts", "bash", "-c", script, "agent"], { env: { ...env, ...extraEnv }, logFile: daemonLog });
    },
    async stopPolling() {
      if (!daemon) return;
      const proc = daemon;
      daemon = undefined;
      await proc.stop();
      logs.push(existsSync(daemonLog) ? readFileSync(daemonLog, "utf8") : "");
    },
    agentPid: () => daemon?.pid,
    masterPid,
    stopHaproxy() {
      const pid = masterPid();
      if (pid === undefined) return;
      try {
        process.kill(pid, "SIGTERM"); // the master stops its workers, old ones included
      } catch {
        /* already gone */
      }
    },
  };
}

/** Waits until `node`'s status says `appliedVersion === version` with result `applied`; resolves with the status. */
export async function waitForApplied(store: ConfigStore, prefix: string, node: string, version: string, timeoutMs: number): Promise<Record<string, unknown>> {
  let last: Record<string, unknown> | undefined;
  await pollUntil(
    `${node} to apply ${version}`,
    async () => {
      last = await store.status(prefix, node);
      if (last?.appliedVersion === version && last.result === "applied") return true;
      throw new Error(`status: ${JSON.stringify(last)}`);
    },
    { timeoutMs, intervalMs: 250 },
  );
  return last!;
}
