/**
 * The configuration bundle of one node: every file rendered from the environment's services, servers,
 * timeouts, TLS references, health checks, access lists and HA settings, plus a manifest naming each file's
 * sha256 and the bundle's version. The node's agent fetches it from S3, verifies, validates, installs and
 * reloads; nothing in it is part of the machine, so a change to it replaces no instance. Pure.
 */
import { createHash } from "node:crypto";
import { HAPROXY_ENV_FILE, HEALTH_ENDPOINT, ResolvedEnvironment, STATS_PASSWORD_VAR } from "../config/model";
import { durationMs } from "../config/net";
import { HaproxyBuildOptions, RUNTIME_SOCKET, SERVER_STATE_FILE, renderHaproxy } from "../haproxy/build";
import { ERROR_DIR, errorPageFiles } from "../haproxy/error-pages";
import { KEEPALIVED_CONF_PATH, pairFiles, TAKEOVER_SCRIPT_PATH } from "../ha-pair";

/** Where the installed files live on the node. */
export const BUNDLE_PATHS = {
  haproxyConfig: "/etc/haproxy/haproxy.cfg",
  /** The secrets the node fetches from Secrets Manager: `pem <arn> <path>` and `env <NAME> <arn>` lines. */
  secrets: "/etc/imaging-lb/secrets.list",
  /** Settings of the agent that belong to the configuration (runtime socket, health gate, pair roll). */
  agentSettings: "/etc/imaging-lb/bundle.env",
  keepalivedConf: KEEPALIVED_CONF_PATH,
  takeoverScript: TAKEOVER_SCRIPT_PATH,
  /** Error pages, maintenance pages and the maintenance map of http services (`<service>/<status>.http`, ...). */
  errorDir: ERROR_DIR,
} as const;

/** Bundle format written into every manifest; the agent refuses formats it does not know. */
export const BUNDLE_FORMAT = 1;

/** How long the MASTER of a pair waits for its peer to report the new version before it holds. */
export const DEFAULT_PEER_WAIT_SECONDS = 600;

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
   * its bundle of a release only after its peer reports the same release applied.
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
}

/** Where a node's bundle and status live in the config store, relative to the bucket. */
export const storeKeys = {
  manifest: (prefix: string, node: string) => `${prefix}/nodes/${node}/manifest.json`,
  file: (prefix: string, node: string, sha256: string) => `${prefix}/nodes/${node}/files/${sha256}`,
  status: (prefix: string, node: string) => `${prefix}/status/${node}.json`,
} as const;

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
  const peer = env.nodes.length === 2 ? env.nodes.find((n) => n.name !== nodeName)?.name : undefined;
  const settings: Array<[string, string]> = [
    ["RUNTIME_SOCKET", options.haproxy?.runtimeSocket ?? RUNTIME_SOCKET],
    ["SERVER_STATE_FILE", options.haproxy?.serverStateFile ?? SERVER_STATE_FILE],
    ["HAPROXY_ENV_FILE", HAPROXY_ENV_FILE],
    ["HEALTH_URL", `http://${HEALTH_ENDPOINT.address}:${HEALTH_ENDPOINT.port}${HEALTH_ENDPOINT.path}`],
    ["GATE_SECONDS", String(healthGate(env).max)],
    ["PEER", peer ?? ""],
    ["PEER_WAIT_SECONDS", String(DEFAULT_PEER_WAIT_SECONDS)],
    // The node holding this address is the pair's MASTER (keepalived adds the VIPs there): it applies last.
    ["MASTER_VIP", peer ? env.vips[0].address : ""],
  ];
  return `# imaging-lb agent settings of ${env.name}/${nodeName}. Generated by imaging-lb: do not edit.\n${settings.map(([k, v]) => `${k}=${v}`).join("\n")}\n`;
}

function renderFiles(env: ResolvedEnvironment, nodeName: string, options: ConfigBundleOptions): BundleFile[] {
  const node = env.nodes.find((n) => n.name === nodeName);
  if (!node) throw new Error(`environment '${env.name}' has no node '${nodeName}' (nodes: ${env.nodes.map((n) => n.name).join(", ")})`);
  const pair = pairFiles(env, node);
  const raw: Array<Omit<BundleFile, "sha256">> = [
    { path: BUNDLE_PATHS.haproxyConfig, mode: "0640", content: renderHaproxy(env, options.haproxy) },
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
  ];
  return raw.map((f) => ({ ...f, sha256: sha256(f.content) })).sort((a, b) => a.path.localeCompare(b.path));
}

const versionOf = (files: readonly BundleFile[]) => sha256(files.map((f) => `${f.sha256} ${f.mode} ${f.path}\n`).join("")).slice(0, 16);

/**
 * The bundle of node `nodeName`: haproxy.cfg, the secrets list, the agent settings, the error pages and
 * maintenance map of http services and, in a pair, keepalived.conf and the takeover script.
 */
export function nodeBundle(env: ResolvedEnvironment, nodeName: string, options: ConfigBundleOptions = {}): ConfigBundle {
  const files = renderFiles(env, nodeName, options);
  const version = versionOf(files);
  // From the bundles as deployed (default paths), so every node computes the same release.
  const release = sha256(env.nodes.map((n) => `${n.name} ${versionOf(renderFiles(env, n.name, {}))}\n`).join("")).slice(0, 16);
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    environment: env.name,
    node: nodeName,
    version,
    release,
    files: files.map((f) => ({ path: f.path, mode: f.mode, sha256: f.sha256 })),
  };
  return { node: nodeName, version, release, files, manifest, manifestText: `${JSON.stringify(manifest, null, 2)}\n` };
}
