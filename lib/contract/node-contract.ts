/**
 * The contract between the TypeScript side (renderers, constructs, CLI) and the node agent on the box: where
 * things live on a node, the S3 keys of the configuration store, which files a bundle may carry and with
 * which modes, the settings `bundle.env` may hold and the shape they must have, the manifest's signature and
 * the status document. Written once, here; the agent reads the same facts from `contract.json`, which the
 * bundle (and the machine's loader) carries rendered from {@link NODE_CONTRACT} — so neither side can drift.
 *
 * Pure data and small helpers: no cdktf, no file system.
 */

/** Node name and environment name: what the schema allows (DNS label). */
const NAME = "[a-z][a-z0-9-]{0,62}";
/** An absolute path of plain characters (no spaces, no `..` component is checked separately). */
const PLAIN_PATH = "/[A-Za-z0-9._/-]{1,255}";
/** An AWS region name such as eu-west-1: the environment file's `region`, and what a node is told. */
const AWS_REGION = "[a-z]{2}(?:-[a-z]+)+-[0-9]";
/** An S3 bucket name (3-63 of a-z 0-9 . -): the configuration store's, adopted or created. */
const S3_BUCKET = "[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]";

/** {@link AWS_REGION} as a whole-string pattern (the schema and the renderers that take a region check it). */
export const AWS_REGION_PATTERN = new RegExp(`^${AWS_REGION}$`);
/** An availability zone: a region and a letter (eu-west-1a). */
export const AWS_ZONE_PATTERN = new RegExp(`^${AWS_REGION}[a-z]$`);
/** {@link S3_BUCKET} as a whole-string pattern (the schema and the bootstrap check it). */
export const S3_BUCKET_PATTERN = new RegExp(`^${S3_BUCKET}$`);

export const NODE_CONTRACT = {
  /** Bumped when a field below changes meaning; the agent refuses a contract it does not know. */
  contractVersion: 1,

  /** Where things live on a node (the agent prefixes `$IMAGING_LB_ROOT` in tests). */
  paths: {
    /** The agent's own state: the last good bundle, what failed, the pending apply, the status. */
    stateDir: "/var/lib/imaging-lb/agent",
    /** The machine's settings of the agent (bucket, prefix, node, environment, region): user data. */
    agentEnv: "/etc/imaging-lb/agent.env",
    /** The launcher systemd runs: starts the agent of the last good bundle (a bundle file and user data). */
    launcher: "/usr/local/sbin/imaging-lb-agent",
    /** The agent's Python package as the bundle installs it. */
    agentPackageDir: "/usr/local/lib/imaging-lb/agent",
    /** The machine's loader (user data): fetches and verifies the first bundle's agent, nothing else. */
    loader: "/usr/local/sbin/imaging-lb-agent-loader",
    /** The contract's facts as shell assignments, for the loader (user data). */
    contractEnv: "/usr/local/lib/imaging-lb/contract.env",
    haproxyConfig: "/etc/haproxy/haproxy.cfg",
    /** Settings of the agent that belong to the configuration (health gate, pair roll, polling). */
    bundleEnv: "/etc/imaging-lb/bundle.env",
    /** The secrets the node fetches from Secrets Manager: `pem <arn> <path>` and `env <NAME> <arn>` lines. */
    secretsList: "/etc/imaging-lb/secrets.list",
    /** HAProxy's environment (the stats password), mode 0600, loaded by haproxy.service. */
    haproxyEnv: "/etc/imaging-lb/haproxy.env",
    certDir: "/etc/haproxy/certs",
    errorDir: "/etc/haproxy/errors",
    keepalivedConf: "/etc/keepalived/keepalived.conf",
    takeoverScript: "/usr/local/sbin/imaging-lb-vip-takeover",
    /** A baked image's manifest (its recipe, HAProxy and package versions), which the bootstrap checks. */
    imageManifest: "/usr/share/imaging-lb/image.json",
  },

  /** S3 keys of the configuration store, relative to the bucket (`{prefix}` is the environment's). */
  keys: {
    manifest: "{prefix}/nodes/{node}/manifest.json",
    /** The manifest's signature: written before the manifest, so a node never sees a manifest older than it. */
    signature: "{prefix}/nodes/{node}/manifest.sig",
    /** Bundle files are content-addressed: one object per distinct content of a node's bundle. */
    file: "{prefix}/nodes/{node}/files/{sha256}",
    status: "{prefix}/status/{node}.json",
    /** Operator commands for a node (retry, release, refresh), written by `imaging-lb` and read by the node. */
    command: "{prefix}/commands/{node}.json",
  },

  /**
   * Instance tags the node reads through IMDS (instance metadata tags): where its configuration lives. Tags
   * change in place, so the store can move (a renamed bucket) without replacing the machine; the machine's
   * agent.env is the fallback while tags are not readable.
   */
  instanceTags: {
    bucket: "imaging-lb:config-bucket",
    prefix: "imaging-lb:config-prefix",
  },

  manifest: {
    /** The manifest format the stack writes and every agent since 0.2 reads. */
    format: 1,
    versionPattern: "^[0-9a-f]{16}$",
    /** At most this many files in one bundle (error pages of many services included). */
    maxFiles: 400,
  },

  /**
   * How a node proves who produced a manifest: at deploy, Terraform encrypts `plaintext` under the
   * environment's KMS key with this encryption context (`aws_kms_ciphertext`: only principals allowed to
   * kms:Encrypt with the key can); the node decrypts it with the same context (its role may only decrypt,
   * only this key) and compares the plaintext with the manifest it read.
   */
  signature: {
    format: 1,
    keyAlias: "alias/imaging-lb/{environment}/manifests",
    plaintext: "imaging-lb manifest {environment}/{node} sha256:{sha256}",
    context: { "imaging-lb:environment": "{environment}", "imaging-lb:node": "{node}", "imaging-lb:purpose": "manifest" },
  },

  /**
   * Every file a bundle may carry: its path (a pattern) and its exact mode. A manifest naming any other path
   * or mode is refused before anything is downloaded.
   */
  bundleFiles: [
    { kind: "haproxy-config", pattern: "^/etc/haproxy/haproxy\\.cfg$", mode: "0640" },
    { kind: "bundle-env", pattern: "^/etc/imaging-lb/bundle\\.env$", mode: "0644" },
    { kind: "secrets-list", pattern: "^/etc/imaging-lb/secrets\\.list$", mode: "0644" },
    { kind: "error-page", pattern: "^/etc/haproxy/errors/[a-z][a-z0-9-]{0,62}/(?:[1-5][0-9]{2}\\.http|maintenance\\.html)$", mode: "0644" },
    { kind: "maintenance-map", pattern: "^/etc/haproxy/errors/maintenance\\.map$", mode: "0644" },
    { kind: "keepalived-config", pattern: "^/etc/keepalived/keepalived\\.conf$", mode: "0640" },
    { kind: "takeover-script", pattern: "^/usr/local/sbin/imaging-lb-vip-takeover$", mode: "0755" },
    { kind: "agent-launcher", pattern: "^/usr/local/sbin/imaging-lb-agent$", mode: "0755" },
    { kind: "agent-module", pattern: "^/usr/local/lib/imaging-lb/agent/imaging_lb_agent/[a-z_]{1,40}\\.(?:py|json)$", mode: "0644" },
  ],

  /**
   * `agent.env`, the machine's settings of the agent (user data), and the shape of each: where its
   * configuration lives, which node it is, its region.
   */
  agentEnv: {
    BUCKET: `^${S3_BUCKET}$`,
    PREFIX: `^${NAME}$`,
    NODE: `^${NAME}$`,
    ENVIRONMENT: `^${NAME}$`,
    REGION: `^${AWS_REGION}$`,
  },

  /** `bundle.env`: every key the agent reads, and the exact shape of its value. Values are never evaluated. */
  bundleEnv: {
    RUNTIME_SOCKET: `^${PLAIN_PATH}$`,
    SERVER_STATE_FILE: `^${PLAIN_PATH}$`,
    HAPROXY_ENV_FILE: `^${PLAIN_PATH}$`,
    /** Where haproxy.cfg reads the PEMs (`crt-base`): the secrets list's paths, as HAProxy sees them. */
    CERT_DIR: `^${PLAIN_PATH}$`,
    HEALTH_URL: "^http://127\\.0\\.0\\.1:[0-9]{1,5}/[A-Za-z0-9._/-]{0,100}$",
    GATE_SECONDS: "^[1-9][0-9]{0,3}$",
    /** The other node of a pair (empty for a single node). */
    PEER: `^(?:${NAME})?$`,
    /** Three nodes behind NLBs (vipMode nlb): the other two, comma-separated (PEER is empty then). Absent otherwise. */
    PEERS: `^(?:${NAME}(?:,${NAME}){0,2})?$`,
    /** Three nodes behind NLBs: the nodes this one applies a release after (the roll order), comma-separated. */
    ROLL_AFTER: `^(?:${NAME}(?:,${NAME}){0,2})?$`,
    /** primary or secondary: who goes first when the VRRP roles do not tell (split brain, no MASTER). */
    NODE_ROLE: "^(?:single|primary|secondary)$",
    PEER_WAIT_SECONDS: "^[1-9][0-9]{0,5}$",
    /** The pair's first VIP: the node holding it is the MASTER and applies last. */
    MASTER_VIP: "^(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})(?:\\.(?:25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})){3})?$",
    POLL_SECONDS: "^[1-9][0-9]{0,2}$",
    HEARTBEAT_SECONDS: "^[1-9][0-9]{0,3}$",
    SECRETS_REFRESH_SECONDS: "^[1-9][0-9]{1,6}$",
    /** Seconds between two sends of the node's metrics to CloudWatch (one PutMetricData each); 0: none sent. */
    METRICS_SECONDS: "^(?:0|[1-9][0-9]{0,3})$",
  },

  /** The secrets list's lines: what each field may be. */
  secretsList: {
    arn: "^arn:aws(?:-cn|-us-gov)?:secretsmanager:[a-z0-9-]{1,30}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$",
    /** A PEM lands in the certificate folder, nowhere else. */
    pemPath: "^/etc/haproxy/certs/[A-Za-z0-9._-]{1,100}\\.pem$",
    envName: "^IMAGING_LB_[A-Z0-9_]{1,64}$",
    /** What an `env` secret's value may hold (it reaches HAProxy's environment). */
    envValue: "^[A-Za-z0-9._~+/=@%^-]{1,256}$",
  },

  status: {
    /** 2 since 0.3: heartbeat, staleness, retryable errors, the agent's version, secrets and certificates. */
    format: 2,
    /** Every field of the status document (format 2), in no particular order. */
    fields: [
      "format", "node", "environment", "agentVersion", "desiredVersion", "desiredRelease", "appliedVersion", "appliedRelease",
      "appliedAt", "result", "error", "retryable", "nextRetryAt", "warning", "role", "haproxyVersion", "haproxyRunning",
      "secrets", "certificates", "lastCommand", "storeSource", "pollSeconds", "heartbeatSeconds", "updatedAt", "metricsError",
    ],
    /** What `result` may say. */
    results: [
      "applied",
      "applying",
      "waiting-for-peer",
      "held",
      "retrying",
      "failed",
      "rolled-back",
      "rollback-failed",
      "refused",
      "bootstrap-failed",
    ],
    /** Results after which the desired version will not be applied without a change or an operator's retry. */
    failedResults: ["held", "failed", "rolled-back", "rollback-failed", "refused", "bootstrap-failed"],
  },

  /**
   * The node's metrics in CloudWatch, sent by the agent (one PutMetricData per interval carries all of them)
   * and watched by the stack's alarms and dashboard. Both sides read the namespace, names, units and
   * dimensions from here: an alarm on a metric nobody emits never fires.
   */
  metrics: {
    namespace: "imaging-lb",
    /** The agent's default interval (bundle.env METRICS_SECONDS): one standard-resolution datapoint a minute. */
    intervalSeconds: 60,
    /** The dimensions of each scope, in this order. */
    scopes: {
      node: ["Environment", "Node"],
      backend: ["Environment", "Node", "Backend"],
      certificate: ["Environment", "Node", "Certificate"],
    },
    /**
     * The backends whose figures are sent: the services' and their routes' (`be_<service>[_<route>]`), not
     * the sorry-server (`sorry_*`) or check-only (`chk_*`) ones.
     */
    backendPattern: "^be_",
    /** HaRole's values: MASTER holds the VIPs; FAULT is a node without the VIPs whose HAProxy does not answer its /healthz (what keepalived's tracked checks see). */
    haRoles: { MASTER: 2, BACKUP: 1, FAULT: 0 },
    /**
     * Every metric: its unit (CloudWatch's), its scope, and when it is sent: `vrrp` only by a node of a keepalived pair
     * (MASTER_VIP set; not vipMode nlb, whose nodes are all active),
     * `http` only for backends in http mode.
     */
    definitions: {
      HaproxyServing: { unit: "None", scope: "node", when: "always", description: "1 while HAProxy's worker answers its runtime API and its loopback /healthz, else 0" },
      HaRole: { unit: "None", scope: "node", when: "vrrp", description: "this node's VRRP role: 2 MASTER (holds the VIPs), 1 BACKUP, 0 FAULT" },
      RoleChanges: { unit: "Count", scope: "node", when: "vrrp", description: "times this node became or stopped being MASTER since the last send (sampled every poll)" },
      RolloutFailed: { unit: "None", scope: "node", when: "always", description: "1 while the agent's result is a failed one (failed, held, rolled-back, rollback-failed, refused, bootstrap-failed), else 0" },
      StatusAge: { unit: "Seconds", scope: "node", when: "always", description: "seconds since the agent last wrote its status to S3 (what `imaging-lb status` reads)" },
      ServersUp: { unit: "Count", scope: "backend", when: "always", description: "active (non-backup) servers UP: UP, draining (healthy, taking no new clients) or unchecked; not DOWN or in maintenance" },
      ServersConfigured: { unit: "Count", scope: "backend", when: "always", description: "active (non-backup) servers the running configuration has" },
      Sessions: { unit: "Count", scope: "backend", when: "always", description: "current sessions (connections) of the backend" },
      ConnectionErrors: { unit: "Count", scope: "backend", when: "always", description: "failed connections to the servers since the last send" },
      Http5xx: { unit: "Count", scope: "backend", when: "http", description: "5xx responses (the servers' and HAProxy's own) since the last send" },
      CertificateDaysLeft: { unit: "None", scope: "certificate", when: "always", description: "days until the installed certificate (the first in its PEM) expires; negative once expired" },
    },
  },

  /** Commands an operator may send a node (`imaging-lb retry|release|refresh`, or on the node). */
  commands: ["retry", "release", "refresh"],

  /** Defaults of the agent's timers (bundle.env may set them per environment). */
  defaults: {
    pollSeconds: 5,
    heartbeatSeconds: 60,
    /** A node whose status is older than this many heartbeats is stale: its agent is not running. */
    staleHeartbeats: 3,
    secretsRefreshSeconds: 86_400,
    peerWaitSeconds: 600,
  },
} as const;

export type NodeContract = typeof NODE_CONTRACT;
export type StatusResult = (typeof NODE_CONTRACT.status.results)[number];
export type OperatorCommand = (typeof NODE_CONTRACT.commands)[number];
/** A metric the agent sends. */
export type MetricName = keyof typeof NODE_CONTRACT.metrics.definitions;
/** What a metric is about: the node, one of its backends, or one of its certificates. */
export type MetricScope = keyof typeof NODE_CONTRACT.metrics.scopes;

/** A metric exactly as the agent sends it: namespace, name, unit and dimensions (name → value, in the contract's order). */
export interface MetricRef {
  readonly namespace: string;
  readonly name: MetricName;
  readonly unit: string;
  readonly dimensions: Readonly<Record<string, string>>;
}

/** The values of a metric's dimensions: the environment and node always, the backend or certificate by scope. */
export interface MetricSubject {
  readonly environment: string;
  readonly node: string;
  readonly backend?: string;
  readonly certificate?: string;
}

/**
 * The metric `name` of `subject`, as the agent sends it. Throws when the subject lacks a dimension of the
 * metric's scope or gives one it does not have (so an alarm can never name a series nobody sends).
 */
export function metricRef(name: MetricName, subject: MetricSubject): MetricRef {
  const m = NODE_CONTRACT.metrics;
  const definition = m.definitions[name];
  const values: Record<string, string | undefined> = {
    Environment: subject.environment,
    Node: subject.node,
    Backend: subject.backend,
    Certificate: subject.certificate,
  };
  const wanted: readonly string[] = m.scopes[definition.scope];
  const dimensions: Record<string, string> = {};
  for (const [dimension, value] of Object.entries(values)) {
    if (wanted.includes(dimension) !== (value !== undefined)) {
      throw new Error(`metric ${name} (scope ${definition.scope}: ${wanted.join(", ")}) ${value === undefined ? "needs" : "has no"} dimension ${dimension}`);
    }
  }
  for (const dimension of wanted) dimensions[dimension] = values[dimension]!;
  return { namespace: m.namespace, name, unit: definition.unit, dimensions };
}

/** The Certificate dimension of an installed PEM: its file name without `.pem` (the certificate's name in the environment file). */
export function certificateDimension(pemPath: string): string {
  return (pemPath.split("/").pop() ?? pemPath).replace(/\.pem$/, "");
}

/** Fills `{name}` placeholders of a contract template. */
export function fillTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{([a-z0-9]+)\}/gi, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`contract template ${template}: no value for {${name}}`);
    return value;
  });
}

/** Where a node's objects live in the configuration store, relative to the bucket. */
export const storeKeys = {
  manifest: (prefix: string, node: string) => fillTemplate(NODE_CONTRACT.keys.manifest, { prefix, node }),
  signature: (prefix: string, node: string) => fillTemplate(NODE_CONTRACT.keys.signature, { prefix, node }),
  file: (prefix: string, node: string, sha256: string) => fillTemplate(NODE_CONTRACT.keys.file, { prefix, node, sha256 }),
  status: (prefix: string, node: string) => fillTemplate(NODE_CONTRACT.keys.status, { prefix, node }),
  command: (prefix: string, node: string) => fillTemplate(NODE_CONTRACT.keys.command, { prefix, node }),
} as const;

/** The KMS alias of an environment's manifest-signing key. */
export const manifestKeyAlias = (environment: string) => fillTemplate(NODE_CONTRACT.signature.keyAlias, { environment });

/** What a node's manifest signature encrypts, and under which encryption context. */
export function manifestSignatureInput(environment: string, node: string, manifestSha256: string): { plaintext: string; context: Record<string, string> } {
  const values = { environment, node, sha256: manifestSha256 };
  return {
    plaintext: fillTemplate(NODE_CONTRACT.signature.plaintext, values),
    context: Object.fromEntries(Object.entries(NODE_CONTRACT.signature.context).map(([k, v]) => [k, fillTemplate(v, values)])),
  };
}

/** The bundle file kind whose pattern `path` matches, or undefined when no bundle may carry it. */
export function bundleFileKind(path: string): (typeof NODE_CONTRACT.bundleFiles)[number] | undefined {
  if (path.split("/").includes("..")) return undefined;
  return NODE_CONTRACT.bundleFiles.find((f) => new RegExp(f.pattern).test(path));
}

/**
 * `contract.env`: the facts the machine's shell loader needs, as shell assignments (single-quoted: the
 * templates hold braces, never quotes).
 */
export function renderContractEnv(): string {
  const c = NODE_CONTRACT;
  const agentModule = c.bundleFiles.find((f) => f.kind === "agent-module")!;
  const values: Array<[string, string]> = [
    ["STATE_DIR", c.paths.stateDir],
    ["AGENT_ENV", c.paths.agentEnv],
    ["KEY_MANIFEST", c.keys.manifest],
    ["KEY_SIGNATURE", c.keys.signature],
    ["KEY_FILE", c.keys.file],
    ["MANIFEST_FORMAT", String(c.manifest.format)],
    ["SIGNATURE_ALIAS", c.signature.keyAlias],
    ["SIGNATURE_PLAINTEXT", c.signature.plaintext],
    ["SIGNATURE_CONTEXT", JSON.stringify(c.signature.context)],
    ["AGENT_FILE_PATTERN", agentModule.pattern],
  ];
  for (const [name, value] of values) if (value.includes("'")) throw new Error(`contract.env: ${name} holds a quote`);
  return `# shellcheck shell=bash disable=SC2034 # sourced by the loader\n# imaging-lb node contract (generated from lib/contract/node-contract.ts): do not edit.\n${values.map(([k, v]) => `${k}='${v}'`).join("\n")}\n`;
}

/** `contract.json` as the agent reads it (stable key order, one trailing newline). */
export function renderContractJson(): string {
  return `${JSON.stringify(NODE_CONTRACT, null, 2)}\n`;
}

/**
 * Whether EC2 can expose an instance's tags in its metadata (where a node reads its store's location): it
 * refuses to while any tag key holds a character outside letters, digits and `+ - = . , _ : @` (a `/` or a
 * space), or is `.`, `..` or `_index`. The environment's own tags reach the instances (default tags).
 */
export function metadataTagsAllowed(tagKeys: readonly string[]): boolean {
  return tagKeys.every((k) => /^[A-Za-z0-9+\-=.,_:@]+$/.test(k) && ![".", "..", "_index"].includes(k));
}
