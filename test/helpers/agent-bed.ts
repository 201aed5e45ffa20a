/**
 * A fault bed for the node agent, on loopback: the product's agent (launcher, loader and Python package,
 * installed as the user data and the bundle install them) in a sandbox root per node, against moto on a
 * loopback port (SIMULATED AWS: S3, KMS, Secrets Manager, with its authentication on, so every request's
 * SigV4 signature is checked; the real AWS CLI publishes as the stack would),
 * with a real HAProxy in master-worker mode in front of real HTTP(S) servers in this process.
 *
 * SIMULATED: systemd (a `systemctl` stub runs haproxy.service as the Debian unit does: `haproxy -W`, reload =
 * SIGUSR2 to the master; keepalived.service calls are recorded) and `ip` (prints the addresses a test gives
 * a node: the VRRP role is "holds the first VIP"). Everything else is real: haproxy -dW -c, keepalived -t,
 * the runtime API, the reloads, the health gate, the HTTP servers behind HAProxy.
 *
 * The bundles here are small hand-made ones (a health frontend and one HTTP backend per node), so each test
 * states exactly what it changes; the e2e rollout test runs the product's own rendered bundles.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { execFile } from "node:child_process";
import { imagingLbAgentLauncher, imagingLbAgentLoader } from "../../lib/agent/embedded.generated";
import { agentFiles, assembleBundle, bundleFile, type BundleFile, type ConfigBundle } from "../../lib/node/bundle";
import { NODE_CONTRACT, renderContractEnv, storeKeys } from "../../lib/contract/node-contract";
import { freeLoopbackPort, motoClientEnv, startMoto, type Moto } from "../terraform-apply/moto";
import { createSigningKey, getObject, publishBundles, putObject, type AwsCli } from "./store-publisher";
import { requireTool } from "./tools";

const execFileAsync = promisify(execFile);
/** A JSON document as the tests read it (status objects, agent state). */
export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export const BED_ENVIRONMENT = "bed";
export const BED_REGION = "eu-west-1";
export const BED_BUCKET = "imaging-lb-bed-123456789012";

/**
 * Installs what a node's user data installs for the agent under `root`: the launcher, the machine's loader
 * and the contract's facts it reads.
 */
export function installMachineAgent(root: string): void {
  const write = (path: string, content: string, mode: number) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content, { mode });
  };
  write(NODE_CONTRACT.paths.launcher, imagingLbAgentLauncher, 0o755);
  write(NODE_CONTRACT.paths.loader, imagingLbAgentLoader, 0o755);
  write(NODE_CONTRACT.paths.contractEnv, renderContractEnv(), 0o644);
}

/** SIMULATED systemd: haproxy.service as the Debian unit runs it; every call is recorded. */
const SYSTEMCTL_STUB = `#!/bin/bash
# SIMULATED systemctl (agent fault bed): haproxy.service is HAProxy in master-worker mode (reload = SIGUSR2 to
# the master); keepalived.service calls are only recorded.
set -euo pipefail
echo "$*" >>"$IMAGING_LB_ROOT/systemctl.calls"
pidfile="$IMAGING_LB_ROOT/run/haproxy-master.pid"
unit="\${*: -1}"
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case "$1 $unit" in
  "is-active haproxy.service") running ;;
  "reload haproxy.service")
    # SIMULATED crash: <root>/crash-agent-on-reload makes this reload kill its caller (the agent) first, once.
    if [ -f "$IMAGING_LB_ROOT/crash-agent-on-reload" ]; then rm -f "$IMAGING_LB_ROOT/crash-agent-on-reload"; kill -9 "$PPID"; exit 1; fi
    # SIMULATED fault: <root>/fail-reloads-after N makes every reload after the Nth fail.
    n=$(grep -c '^reload haproxy.service' "$IMAGING_LB_ROOT/systemctl.calls" || true)
    if [ -f "$IMAGING_LB_ROOT/fail-reloads-after" ] && [ "$n" -gt "$(cat "$IMAGING_LB_ROOT/fail-reloads-after")" ]; then
      echo "systemctl stub: SIMULATED reload failure" >&2
      exit 1
    fi
    running && kill -USR2 "$(cat "$pidfile")" ;;
  "restart haproxy.service" | "start haproxy.service")
    if running; then kill -TERM "$(cat "$pidfile")"; sleep 1; fi
    set -a
    if [ -f "$IMAGING_LB_ROOT/etc/imaging-lb/haproxy.env" ]; then . "$IMAGING_LB_ROOT/etc/imaging-lb/haproxy.env"; fi
    set +a
    haproxy -W -D -p "$pidfile" -f "$IMAGING_LB_ROOT/etc/haproxy/haproxy.cfg" ;;
  "enable haproxy.service") ;;
  "is-active keepalived.service") [ -f "$IMAGING_LB_ROOT/keepalived.active" ] ;;
  "reload keepalived.service" | "restart keepalived.service" | "enable keepalived.service") ;;
  *) echo "systemctl stub: unexpected: $*" >&2; exit 1 ;;
esac
`;

/** SIMULATED `ip -o -4 addr show`: the addresses in <root>/ip-addresses (the VIP on the MASTER). */
const IP_STUB = `#!/bin/bash
# SIMULATED ip (agent fault bed): "ip -o -4 addr show" lists lo and the addresses of <root>/ip-addresses.
echo "1: lo    inet 127.0.0.1/8 scope host lo"
if [ -f "$IMAGING_LB_ROOT/ip-addresses" ]; then
  while read -r a; do [ -n "$a" ] && echo "2: eth1    inet $a/32 scope global eth1"; done <"$IMAGING_LB_ROOT/ip-addresses"
fi
`;

/** A backend server in this process. */
export interface BedServer {
  readonly port: number;
  /** Stops answering (the port refuses). */
  close(): Promise<void>;
}

/** Starts an HTTP server answering 200 on 127.0.0.1 (a free port, or `port`). */
export async function startHttpServer(port?: number): Promise<BedServer> {
  const server = createHttpServer((_, res) => res.end("ok\n"));
  return listen(server, port);
}

/** Starts an HTTPS server answering 200 with `keyPem`/`certPem` on 127.0.0.1. */
export async function startHttpsServer(keyPem: string, certPem: string): Promise<BedServer> {
  const server = createHttpsServer({ key: keyPem, cert: certPem }, (_, res) => res.end("ok\n"));
  return listen(server);
}

async function listen(server: Server, port?: number): Promise<BedServer> {
  const chosen = port ?? (await freeLoopbackPort());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(chosen, "127.0.0.1", () => resolve());
  });
  return {
    port: chosen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** One node of the bed. */
export interface BedNode {
  readonly name: string;
  readonly root: string;
  /** HAProxy's health frontend port (HEALTH_URL) and the service frontend port. */
  readonly healthPort: number;
  readonly frontendPort: number;
  /** The TLS frontend's port (bundles with webPemArn). */
  readonly tlsPort: number;
  /** The runtime socket. */
  readonly socket: string;
}

/** What a hand-made bundle holds. */
export interface BedBundleSpec {
  /** Backend server ports (each `server sN 127.0.0.1:<port> check`). */
  readonly servers: readonly number[];
  /** TLS to the servers: verify them with this CA (a secret written to <certDir>/ca.pem). */
  readonly caSecretArn?: string;
  /** A TLS frontend on the node's tlsPort serving this certificate secret (<certDir>/web.pem). */
  readonly webPemArn?: string;
  /** Extra bundle files (paths and modes as the test wants: the agent must refuse wrong ones). */
  readonly extraFiles?: readonly BundleFile[];
  /** bundle.env lines replacing the bed's own (KEY=VALUE), or extra ones. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Raw bundle.env text (replaces everything: for malformed-settings tests). */
  readonly rawSettings?: string;
  /** A marker in haproxy.cfg (a comment): makes a new version without changing behaviour. */
  readonly marker?: string;
  /** keepalived.conf content (a pair's). */
  readonly keepalived?: string;
  /** The takeover script content (a pair's). */
  readonly takeover?: string;
  /** The secrets list's extra lines. */
  readonly secretLines?: readonly string[];
  /** Agent files to ship (default: the product's agent). */
  readonly agent?: readonly BundleFile[];
  /** The release (16 hex digits) both nodes of a pair share; default: the version's own. */
  readonly release?: string;
}

export interface AgentBed {
  readonly moto: Moto;
  readonly dir: string;
  readonly aws: AwsCli;
  readonly statsArn: string;
  node(name: string): BedNode;
  /** Builds `name`'s bundle from `spec` (not uploaded). */
  bundle(name: string, spec: BedBundleSpec): ConfigBundle;
  /** Uploads bundles as the stack does (files, signatures, manifests). */
  publish(bundles: readonly ConfigBundle[], options?: { sign?: boolean }): Promise<void>;
  /** Runs one cycle of `name`'s agent through the launcher (`--once` plus `args`). */
  run(name: string, args?: readonly string[], env?: Record<string, string>): Promise<{ code: number; log: string }>;
  /** Runs the launcher with `args` exactly (status, retry, ...). */
  launcher(name: string, args: readonly string[], env?: Record<string, string>): Promise<{ code: number; stdout: string; log: string }>;
  /** `name`'s status object in S3. */
  status(name: string): Promise<Json | undefined>;
  /** The agent's local state (state.json). */
  state(name: string): Json;
  /** Puts `name`'s VIP on (MASTER) or off (BACKUP). */
  setVip(name: string, held: boolean): void;
  /** The HAProxy master's pid of `name` (undefined when not running). */
  masterPid(name: string): number | undefined;
  /** Creates or updates a secret; returns its ARN. */
  putSecret(name: string, value: string): Promise<string>;
  /** Writes raw bytes at `key` of the bucket. */
  put(key: string, body: string | Buffer): Promise<void>;
  get(key: string): Promise<string | undefined>;
  /** `systemctl` calls of `name` so far. */
  systemctlCalls(name: string): string[];
  /** Runs the SIMULATED systemctl of `name` (e.g. restart haproxy.service: what a reboot does). */
  systemctl(name: string, args: readonly string[]): Promise<void>;
  /** Starts the long-lived agent of `name`; returns a stopper resolving with its log. */
  daemon(name: string, env?: Record<string, string>): { pid: number; stop(): Promise<string> };
  close(): Promise<void>;
}

const PEM_DAYS = 30;

/** A throwaway CA and a server certificate it signs (openssl). */
export function makeCa(dir: string, name: string): { caPem: string; keyPem: string; certPem: string } {
  const d = join(dir, `ca-${name}`);
  mkdirSync(d, { recursive: true });
  const sh = (args: string[]) => {
    const r = spawnSync("openssl", args, { cwd: d, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
  };
  sh(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", String(PEM_DAYS), "-subj", `/CN=${name} CA`, "-keyout", "ca.key", "-out", "ca.crt"]);
  sh(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "srv.key", "-out", "srv.csr"]);
  writeFileSync(join(d, "ext"), "subjectAltName=IP:127.0.0.1\n");
  sh(["x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", String(PEM_DAYS), "-extfile", "ext", "-out", "srv.crt"]);
  return { caPem: readFileSync(join(d, "ca.crt"), "utf8"), keyPem: readFileSync(join(d, "srv.key"), "utf8"), certPem: readFileSync(join(d, "srv.crt"), "utf8") };
}

/** Starts moto, creates the bucket, the signing key and the stats secret, and prepares `nodes` sandboxes. */
export async function startAgentBed(nodes: readonly string[]): Promise<AgentBed> {
  requireTool("haproxy", "haproxy");
  requireTool("aws", "awscli");
  requireTool("openssl", "openssl");
  const dir = mkdtempSync(join(tmpdir(), "imaging-lb-agent-bed-"));
  // moto checks every request's signature (and IAM) after the first three, which create the bed's user.
  const moto = await startMoto({ INITIAL_NO_AUTH_ACTION_COUNT: "3" });
  const env = { ...motoClientEnv(moto, BED_REGION) };
  const aws: AwsCli = async (args) => {
    const { stdout } = await execFileAsync("aws", [...args], { env, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  };
  try {
    await aws(["iam", "create-user", "--user-name", "bed"]);
    await aws(["iam", "put-user-policy", "--user-name", "bed", "--policy-name", "bed", "--policy-document", '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}']);
    const key = JSON.parse(await aws(["iam", "create-access-key", "--user-name", "bed"])).AccessKey as { AccessKeyId: string; SecretAccessKey: string };
    Object.assign(env, { AWS_ACCESS_KEY_ID: key.AccessKeyId, AWS_SECRET_ACCESS_KEY: key.SecretAccessKey });
    delete (env as Record<string, string | undefined>).AWS_SESSION_TOKEN;
    await aws(["s3api", "create-bucket", "--bucket", BED_BUCKET, "--create-bucket-configuration", `LocationConstraint=${BED_REGION}`]);
    await createSigningKey(aws, BED_ENVIRONMENT);
    const statsArn = JSON.parse(await aws(["secretsmanager", "create-secret", "--name", "bed/stats", "--secret-string", "s3cret-Stats_pw"])).ARN as string;
    const byName: Record<string, BedNode> = {};
    for (const name of nodes) {
      const root = join(dir, `root-${name}`);
      for (const d of ["etc/imaging-lb", "etc/haproxy/certs", "run/haproxy", "var/lib/haproxy", "bin"]) mkdirSync(join(root, d), { recursive: true });
      writeFileSync(join(root, "etc/imaging-lb/agent.env"), `BUCKET=${BED_BUCKET}\nPREFIX=${BED_ENVIRONMENT}\nNODE=${name}\nENVIRONMENT=${BED_ENVIRONMENT}\nREGION=${BED_REGION}\n`);
      installMachineAgent(root);
      writeFileSync(join(root, "bin/systemctl"), SYSTEMCTL_STUB, { mode: 0o755 });
      writeFileSync(join(root, "bin/ip"), IP_STUB, { mode: 0o755 });
      byName[name] = {
        name,
        root,
        healthPort: await freeLoopbackPort(),
        frontendPort: await freeLoopbackPort(),
        tlsPort: await freeLoopbackPort(),
        socket: join(root, "run/haproxy/admin.sock"),
      };
    }
    const staging = join(dir, "uploads");
    mkdirSync(staging, { recursive: true });
    const daemons = new Set<{ stop(): Promise<string> }>();
    const agentEnv = (node: BedNode, extra: Record<string, string> = {}) => ({
      ...env,
      IMAGING_LB_ROOT: node.root,
      IMAGING_LB_NO_TAGS: "1",
      PATH: `${join(node.root, "bin")}:${process.env.PATH}`,
      ...extra,
    });
    const masterPid = (name: string) => {
      const file = join(byName[name].root, "run/haproxy-master.pid");
      if (!existsSync(file)) return undefined;
      const pid = Number(readFileSync(file, "utf8").trim());
      try {
        process.kill(pid, 0);
        return pid;
      } catch {
        return undefined;
      }
    };
    const bed: AgentBed = {
      moto,
      dir,
      aws,
      statsArn,
      node: (name) => byName[name],
      bundle(name, spec) {
        const node = byName[name];
        const peers = nodes.filter((n) => n !== name);
        const certDir = join(node.root, "etc/haproxy/certs");
        const tls = spec.caSecretArn ? ` ssl verify required ca-file ${certDir}/ca.pem` : "";
        const cfg = [
          `# bed haproxy.cfg of ${name}${spec.marker ? ` (${spec.marker})` : ""}`,
          "global",
          `    stats socket ${node.socket} mode 660 level admin expose-fd listeners`,
          `    server-state-file ${join(node.root, "var/lib/haproxy/server-state")}`,
          `    crt-base ${certDir}`,
          "defaults",
          "    mode http",
          "    timeout connect 2s",
          "    timeout client 30s",
          "    timeout server 30s",
          "    load-server-state-from-file global",
          "frontend health",
          `    bind 127.0.0.1:${node.healthPort}`,
          "    http-request return status 200 if { path /healthz }",
          "frontend fe_web",
          `    bind 127.0.0.1:${node.frontendPort}`,
          "    default_backend be_web",
          ...(spec.webPemArn ? ["frontend fe_tls", `    bind 127.0.0.1:${node.tlsPort} ssl crt web.pem`, "    default_backend be_web"] : []),
          "backend be_web",
          "    option httpchk GET /",
          "    default-server inter 300ms fall 2 rise 1",
          ...spec.servers.map((port, i) => `    server s${i + 1} 127.0.0.1:${port} check${tls}`),
          "",
        ].join("\n");
        const settings: Record<string, string> = {
          RUNTIME_SOCKET: node.socket,
          SERVER_STATE_FILE: join(node.root, "var/lib/haproxy/server-state"),
          HAPROXY_ENV_FILE: "/etc/imaging-lb/haproxy.env",
          CERT_DIR: certDir,
          HEALTH_URL: `http://127.0.0.1:${node.healthPort}/healthz`,
          GATE_SECONDS: "4",
          PEER: peers[0] ?? "",
          NODE_ROLE: peers.length ? (nodes.indexOf(name) === 0 ? "primary" : "secondary") : "single",
          PEER_WAIT_SECONDS: "600",
          MASTER_VIP: peers.length ? "192.0.2.100" : "",
          POLL_SECONDS: "1",
          HEARTBEAT_SECONDS: "10",
          SECRETS_REFRESH_SECONDS: "86400",
          ...spec.settings,
        };
        const bundleEnv = spec.rawSettings ?? `# bed\n${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join("\n")}\n`;
        const secrets = [
          `env IMAGING_LB_STATS_PASSWORD ${statsArn}`,
          ...(spec.caSecretArn ? [`pem ${spec.caSecretArn} /etc/haproxy/certs/ca.pem`] : []),
          ...(spec.webPemArn ? [`pem ${spec.webPemArn} /etc/haproxy/certs/web.pem`] : []),
          ...(spec.secretLines ?? []),
        ].join("\n");
        const files: BundleFile[] = [
          bundleFile("/etc/haproxy/haproxy.cfg", "0640", cfg),
          bundleFile("/etc/imaging-lb/bundle.env", "0644", bundleEnv),
          bundleFile("/etc/imaging-lb/secrets.list", "0644", `${secrets}\n`),
          ...(spec.keepalived ? [bundleFile("/etc/keepalived/keepalived.conf", "0640", spec.keepalived)] : []),
          ...(spec.takeover ? [bundleFile("/usr/local/sbin/imaging-lb-vip-takeover", "0755", spec.takeover)] : []),
          ...(spec.agent ?? agentFiles().map((f) => bundleFile(f.path, f.mode, f.content))),
          ...(spec.extraFiles ?? []),
        ];
        const draft = assembleBundle(BED_ENVIRONMENT, name, files, "0".repeat(16));
        return assembleBundle(BED_ENVIRONMENT, name, files, spec.release ?? draft.version);
      },
      async publish(bundles, options = {}) {
        await publishBundles(aws, { bucket: BED_BUCKET, prefix: BED_ENVIRONMENT, environment: BED_ENVIRONMENT, staging, sign: options.sign }, bundles);
      },
      async run(name, args = [], extra = {}) {
        const node = byName[name];
        // IMAGING_LB_BED_OLD_AGENT=<file>: run the agent of 0.2 (a shell script, one run per call) instead, to
        // show which of these faults it had.
        const old = process.env.IMAGING_LB_BED_OLD_AGENT;
        const argv = old ? ["bash", old, ...args] : ["bash", join(node.root, NODE_CONTRACT.paths.launcher), "--once", ...args];
        const r = await runCommand(argv, agentEnv(node, { IMAGING_LB_PEER_POLL_SECONDS: "0", ...extra }));
        return { code: r.code, log: r.stderr };
      },
      async launcher(name, args, extra = {}) {
        const node = byName[name];
        const r = await runCommand(["bash", join(node.root, NODE_CONTRACT.paths.launcher), ...args], agentEnv(node, extra));
        return { code: r.code, stdout: r.stdout, log: r.stderr };
      },
      async status(name) {
        const text = await getObject(aws, BED_BUCKET, storeKeys.status(BED_ENVIRONMENT, name), staging);
        return text === undefined ? undefined : (JSON.parse(text) as Json);
      },
      state(name) {
        return JSON.parse(readFileSync(join(byName[name].root, NODE_CONTRACT.paths.stateDir, "state.json"), "utf8")) as Json;
      },
      setVip(name, held) {
        writeFileSync(join(byName[name].root, "ip-addresses"), held ? "192.0.2.100\n" : "");
      },
      masterPid,
      async putSecret(name, value) {
        try {
          return JSON.parse(await aws(["secretsmanager", "create-secret", "--name", name, "--secret-string", value])).ARN as string;
        } catch {
          return JSON.parse(await aws(["secretsmanager", "put-secret-value", "--secret-id", name, "--secret-string", value])).ARN as string;
        }
      },
      put: (key, body) => putObject(aws, BED_BUCKET, key, body, staging),
      get: (key) => getObject(aws, BED_BUCKET, key, staging),
      systemctlCalls(name) {
        const file = join(byName[name].root, "systemctl.calls");
        return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n") : [];
      },
      async systemctl(name, args) {
        const node = byName[name];
        const r = await runCommand([join(node.root, "bin/systemctl"), ...args], agentEnv(node));
        if (r.code !== 0) throw new Error(`systemctl ${args.join(" ")}: ${r.stderr}`);
      },
      daemon(name, extra = {}) {
        const node = byName[name];
        const logFile = join(dir, `daemon-${name}-${Date.now()}.log`);
        const child = spawn("bash", [join(node.root, NODE_CONTRACT.paths.launcher)], {
          env: agentEnv(node, extra),
          stdio: ["ignore", "ignore", "pipe"],
        });
        let log = "";
        child.stderr?.on("data", (chunk: Buffer) => {
          log += chunk.toString();
          writeFileSync(logFile, log);
        });
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        const handle = {
          pid: child.pid!,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) {
              child.kill("SIGTERM");
              const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
              await exited;
              clearTimeout(timer);
            }
            daemons.delete(handle);
            return log;
          },
        };
        daemons.add(handle);
        return handle;
      },
      async close() {
        for (const d of [...daemons]) await d.stop();
        for (const name of nodes) {
          const pid = masterPid(name);
          if (pid !== undefined) {
            try {
              process.kill(pid, "SIGTERM");
            } catch {
              /* gone */
            }
          }
        }
        await moto.stop();
        if (!process.env.IMAGING_LB_KEEP_BED) rmSync(dir, { recursive: true, force: true });
      },
    };
    return bed;
  } catch (error) {
    await moto.stop();
    throw error;
  }
}

function runCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 180_000);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
  });
}

/** Waits until `check` returns a truthy value (polled every `intervalMs`), or throws with `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
