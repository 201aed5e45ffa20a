/**
 * The configuration bundle of one node: every file rendered from the environment's services, servers,
 * timeouts, TLS references, health checks, access lists and HA settings, plus a manifest naming each file's
 * sha256 and the bundle's version. The node's agent fetches it from S3, verifies, validates, installs and
 * reloads; nothing in it is part of the machine, so a change to it replaces no instance. Pure.
 */
import { createHash } from "node:crypto";
import { agentPackage, imagingLbAgentLauncher } from "../agent/embedded.generated";
import { CERT_DIR, HAPROXY_ENV_FILE, HEALTH_URL, ResolvedEnvironment, STATS_PASSWORD_VAR } from "../config/model";
import { durationMs } from "../config/net";
import { NODE_CONTRACT, bundleFileKind, manifestSignatureInput, renderContractJson } from "../contract/node-contract";
import { HaproxyBuildOptions, RUNTIME_SOCKET, SERVER_STATE_FILE, renderHaproxy } from "../haproxy/build";
import { errorPageFiles } from "../haproxy/error-pages";
import { pairFiles } from "./ha-pair";
import { isNlb } from "../plan/nlb";

export { storeKeys } from "../contract/node-contract";

const paths = NODE_CONTRACT.paths;

/** Where the installed files live on the node (see {@link NODE_CONTRACT}). */
export const BUNDLE_PATHS = {
  haproxyConfig: paths.haproxyConfig,
  /** The secrets the node fetches from Secrets Manager: `pem <arn> <path>` and `env <NAME> <arn>` lines. */
  secrets: paths.secretsList,
  /** Settings of the agent that belong to the configuration (health gate, pair roll, polling). */
  agentSettings: paths.bundleEnv,
  keepalivedConf: paths.keepalivedConf,
  takeoverScript: paths.takeoverScript,
  /** Error pages, maintenance pages and the maintenance map of http services (`<service>/<status>.http`, ...). */
  errorDir: paths.errorDir,
  /** The agent's launcher (also in the user data: it starts the agent this bundle carries). */
  agentLauncher: paths.launcher,
  /** The agent's Python package, with the node contract as `contract.json`. */
  agentPackage: `${paths.agentPackageDir}/imaging_lb_agent`,
} as const;

/** Bundle format written into every manifest; the agent refuses formats it does not know. */
export const BUNDLE_FORMAT = NODE_CONTRACT.manifest.format;

/** How long the MASTER of a pair waits for its peer to report the new version before it holds. */
export const DEFAULT_PEER_WAIT_SECONDS = NODE_CONTRACT.defaults.peerWaitSeconds;

/** Whether `path` is one of the agent's own files (the launcher and its package), not configuration. */
export function isAgentFile(path: string): boolean {
  return path === BUNDLE_PATHS.agentLauncher || path.startsWith(`${BUNDLE_PATHS.agentPackage}/`);
}

/**
 * The agent's own files, as a bundle carries them (the launcher and the Python package with the contract).
 * The machine's loader is the package's `aws`, `contract`, `store` and `loader` modules (see the user data).
 */
export function agentFiles(): Array<Omit<BundleFile, "sha256">> {
  return [
    { path: BUNDLE_PATHS.agentLauncher, mode: "0755", content: imagingLbAgentLauncher },
    ...Object.entries(agentPackage).map(([name, content]) => ({ path: `${BUNDLE_PATHS.agentPackage}/${name}`, mode: "0644", content })),
    { path: `${BUNDLE_PATHS.agentPackage}/contract.json`, mode: "0644", content: renderContractJson() },
  ];
}

/** One file of a bundle. */
export interface BundleFile {
  /** Absolute path on the node. */
  readonly path: string;
  /** Octal mode, four digits. */
  readonly mode: string;
  readonly content: string;
  /** Hex sha256 of the content (the file's S3 key suffix: files are content-addressed). */
  readonly sha256: string;
}

/** The manifest the agent reads first (`<prefix>/nodes/<node>/manifest.json`). */
export interface BundleManifest {
  readonly format: typeof BUNDLE_FORMAT;
  readonly environment: string;
  readonly node: string;
  /** 16 hex digits derived from the files: the same files give the same version on every machine. */
  readonly version: string;
  /**
   * The environment-wide version (16 hex digits over every node's bundle): the MASTER of a pair applies
   * its bundle of a release only after its peer reports the same release applied (three nodes behind NLBs:
   * each node after the nodes before it in the roll order).
   */
  readonly release: string;
  readonly files: ReadonlyArray<{ readonly path: string; readonly mode: string; readonly sha256: string }>;
}

/** A node's bundle: files and manifest. */
export interface ConfigBundle {
  readonly node: string;
  readonly version: string;
  readonly release: string;
  readonly files: readonly BundleFile[];
  readonly manifest: BundleManifest;
  /** The manifest as uploaded (JSON, one trailing newline). */
  readonly manifestText: string;
  /** Hex sha256 of {@link manifestText}: what the manifest's signature binds. */
  readonly manifestSha256: string;
  /** What the deploy encrypts under the environment's KMS key to sign the manifest, and with which context. */
  readonly signature: { readonly plaintext: string; readonly context: Readonly<Record<string, string>> };
}

/** The name of the bucket the stack creates for an environment (`configStore.bucket` adopts another). */
export function configBucketName(environmentName: string, accountId: string): string {
  return `imaging-lb-${environmentName}-${accountId}`;
}

/** Options for tests that run the bundle outside a real node (runtime paths move, nothing else). */
export interface ConfigBundleOptions {
  readonly haproxy?: HaproxyBuildOptions;
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

/**
 * The agent's health gate after a reload, in seconds: how long every server healthy before may take to pass
 * a check of the new worker. The agent starts each server's check result at "not checked yet", and the
 * worker spreads its first checks over one interval, so one slowest interval plus its timeout would do;
 * twice that plus a margin allows for one failed first check.
 */
export function healthGate(env: ResolvedEnvironment): { readonly max: number } {
  const perService = env.services
    .filter((s) => s.healthCheck.type !== "none")
    .map((s) => (durationMs(s.healthCheck.interval) + durationMs(s.timeouts.check)) / 1000);
  const slowest = Math.max(0, ...perService);
  return { max: Math.ceil(2 * slowest) + 5 };
}

function secretsList(env: ResolvedEnvironment): string {
  const lines = [
    "# Secrets this node fetches from Secrets Manager with its instance role (ARNs only; values never leave the node).",
    `env ${STATS_PASSWORD_VAR} ${env.admin.statsPasswordSecretArn}`,
    ...env.certificates.map((c) => `pem ${c.secretArn} ${c.path}`),
  ];
  return `${lines.join("\n")}\n`;
}

function agentSettings(env: ResolvedEnvironment, nodeName: string, options: ConfigBundleOptions): string {
  const node = env.nodes.find((n) => n.name === nodeName)!;
  const peer = env.nodes.length === 2 ? env.nodes.find((n) => n.name !== nodeName)?.name : undefined;
  // Three nodes behind NLBs: no single PEER but every other node, and a roll order (the secondaries in name
  // order, the primary last, as a pair's "no MASTER" rule): each node applies after the nodes before it.
  const rollOrder = env.nodes.length > 2 ? [...env.nodes.filter((n) => n.role !== "primary"), ...env.nodes.filter((n) => n.role === "primary")] : [];
  const rollAfter = rollOrder.slice(0, rollOrder.findIndex((n) => n.name === nodeName)).map((n) => n.name);
  const defaults = NODE_CONTRACT.defaults;
  const settings: Array<[keyof typeof NODE_CONTRACT.bundleEnv, string]> = [
    ["RUNTIME_SOCKET", options.haproxy?.runtimeSocket ?? RUNTIME_SOCKET],
    ["SERVER_STATE_FILE", options.haproxy?.serverStateFile ?? SERVER_STATE_FILE],
    ["HAPROXY_ENV_FILE", HAPROXY_ENV_FILE],
    ["CERT_DIR", options.haproxy?.certBase ?? CERT_DIR],
    ["HEALTH_URL", HEALTH_URL],
    ["GATE_SECONDS", String(healthGate(env).max)],
    ["PEER", peer ?? ""],
    // Who goes first when the VRRP roles do not tell (split brain, or no MASTER): the secondary.
    ...(rollOrder.length > 0
      ? ([
          ["PEERS", env.nodes.filter((n) => n.name !== nodeName).map((n) => n.name).join(",")],
          ["ROLL_AFTER", rollAfter.join(",")],
        ] as Array<[keyof typeof NODE_CONTRACT.bundleEnv, string]>)
      : []),
    ["NODE_ROLE", peer || rollOrder.length > 0 ? node.role : "single"],
    ["PEER_WAIT_SECONDS", String(DEFAULT_PEER_WAIT_SECONDS)],
    // The node holding this address is the pair's MASTER (keepalived adds the VIPs there): it applies last.
    // vipMode nlb has no MASTER (both nodes serve): empty, so the secondary goes first and the primary after it.
    ["MASTER_VIP", peer && !isNlb(env) ? env.vips[0].address : ""],
    ["POLL_SECONDS", String(defaults.pollSeconds)],
    ["HEARTBEAT_SECONDS", String(defaults.heartbeatSeconds)],
    ["SECRETS_REFRESH_SECONDS", String(defaults.secretsRefreshSeconds)],
    // The node's metrics in CloudWatch (once a minute), or none.
    ["METRICS_SECONDS", String(env.monitoring.enabled ? env.monitoring.metricsIntervalSeconds : 0)],
  ];
  for (const [key, value] of settings) {
    if (!new RegExp(NODE_CONTRACT.bundleEnv[key]).test(value)) throw new Error(`bundle.env of ${env.name}/${nodeName}: ${key}=${value} breaks the node contract (${NODE_CONTRACT.bundleEnv[key]})`);
  }
  return `# imaging-lb agent settings of ${env.name}/${nodeName}. Generated by imaging-lb: do not edit.\n${settings.map(([k, v]) => `${k}=${v}`).join("\n")}\n`;
}

function renderFiles(env: ResolvedEnvironment, nodeName: string, options: ConfigBundleOptions): BundleFile[] {
  const node = env.nodes.find((n) => n.name === nodeName);
  if (!node) throw new Error(`environment '${env.name}' has no node '${nodeName}' (nodes: ${env.nodes.map((n) => n.name).join(", ")})`);
  const pair = pairFiles(env, node);
  const raw: Array<Omit<BundleFile, "sha256">> = [
    { path: BUNDLE_PATHS.haproxyConfig, mode: "0640", content: renderHaproxy(env, { ...options.haproxy, node: nodeName }) },
    { path: BUNDLE_PATHS.secrets, mode: "0644", content: secretsList(env) },
    { path: BUNDLE_PATHS.agentSettings, mode: "0644", content: agentSettings(env, nodeName, options) },
    // Where the error pages are installed is where haproxy.cfg reads them (options.haproxy.errorDir in tests).
    ...errorPageFiles(env).map((f) => ({ path: `${BUNDLE_PATHS.errorDir}/${f.name}`, mode: "0644", content: f.content })),
    ...(pair
      ? [
          { path: BUNDLE_PATHS.keepalivedConf, mode: "0640", content: pair.keepalivedConf },
          { path: BUNDLE_PATHS.takeoverScript, mode: "0755", content: pair.takeoverScript },
        ]
      : []),
    ...agentFiles(),
  ];
  for (const f of raw) {
    // The node refuses a manifest naming any other path or mode: never render one.
    if (bundleFileKind(f.path)?.mode !== f.mode) {
      throw new Error(`bundle of ${env.name}/${nodeName}: ${f.path} (mode ${f.mode}) is not a file the node contract allows`);
    }
  }
  return raw.map((f) => ({ ...f, sha256: sha256(f.content) })).sort((a, b) => a.path.localeCompare(b.path));
}

const versionOf = (files: readonly BundleFile[]) => sha256(files.map((f) => `${f.sha256} ${f.mode} ${f.path}\n`).join("")).slice(0, 16);

/**
 * The bundle of node `nodeName`: haproxy.cfg, the secrets list, the agent settings, the error pages and
 * maintenance map of http services and, in a pair, keepalived.conf and the takeover script; and the agent.
 */
export function nodeBundle(env: ResolvedEnvironment, nodeName: string, options: ConfigBundleOptions = {}): ConfigBundle {
  // The release from the bundles as deployed (default paths), so every node computes the same one.
  const release = sha256(env.nodes.map((n) => `${n.name} ${versionOf(renderFiles(env, n.name, {}))}\n`).join("")).slice(0, 16);
  return assembleBundle(env.name, nodeName, renderFiles(env, nodeName, options), release);
}

/**
 * A bundle of exactly `files` (sorted by path here), with its manifest and what its signature must say.
 * `release`: the environment-wide version both nodes of a pair share (16 hex digits).
 */
export function assembleBundle(environment: string, nodeName: string, files: readonly BundleFile[], release: string): ConfigBundle {
  const sorted = [...files].sort((a, b) => a.path.localeCompare(b.path));
  const version = versionOf(sorted);
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    environment,
    node: nodeName,
    version,
    release,
    files: sorted.map((f) => ({ path: f.path, mode: f.mode, sha256: f.sha256 })),
  };
  const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
  const manifestSha256 = sha256(manifestText);
  return { node: nodeName, version, release, files: sorted, manifest, manifestText, manifestSha256, signature: manifestSignatureInput(environment, nodeName, manifestSha256) };
}

/** A bundle file from its path, mode and content (the sha256 computed). */
export function bundleFile(path: string, mode: string, content: string): BundleFile {
  return { path, mode, content, sha256: sha256(content) };
}
