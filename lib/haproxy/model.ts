/**
 * A typed model of the haproxy.cfg this package writes, in HAProxy's own vocabulary. The renderer
 * (render.ts) owns directive order; nothing here is free-form except the documented `extra` lines of
 * the `extraDirectives` escape hatch.
 */

export type ProxyMode = "http" | "tcp";
export type BalanceAlgorithm = "leastconn" | "roundrobin" | "source" | "first";

/** HAProxy `timeout` directives (values are HAProxy time strings such as 30s). */
export interface ProxyTimeouts {
  readonly connect?: string;
  readonly client?: string;
  readonly server?: string;
  readonly httpRequest?: string;
  readonly httpKeepAlive?: string;
  readonly queue?: string;
  readonly tunnel?: string;
  readonly check?: string;
  readonly clientFin?: string;
  readonly serverFin?: string;
}

/** A rule with an optional ACL condition: `<keyword> <action> [if|unless <condition>]`. */
export interface Rule {
  readonly action: string;
  /** Condition including `if`/`unless`, e.g. `if { ssl_fc }`. */
  readonly condition?: string;
}

export interface Acl {
  readonly name: string;
  readonly criterion: string;
}

export interface Bind {
  /** IPv4 address or empty for all addresses. */
  readonly address: string;
  readonly port: number;
  /** Terminate TLS with this PEM (certificate chain + key). */
  readonly crt?: string;
  readonly alpn?: readonly string[];
  /** Bind-level TLS settings overriding the global defaults (a per-service profile), e.g. `ssl-min-ver TLSv1.0`. */
  readonly sslOptions?: readonly string[];
  /** Bind to this interface only (SO_BINDTODEVICE), e.g. the internal eth0 for admin endpoints. */
  readonly interface?: string;
}

export interface GlobalSection {
  readonly log: readonly string[];
  readonly chroot?: string;
  readonly user?: string;
  readonly group?: string;
  readonly maxconn: number;
  readonly statsSocket: string;
  readonly statsTimeout: string;
  readonly hardStopAfter: string;
  /** Where server states (drain/maint, health) are saved before a reload and loaded after it. */
  readonly serverStateFile: string;
  readonly sslDefaultBindCiphers: string;
  readonly sslDefaultBindCiphersuites: string;
  readonly sslDefaultBindOptions: string;
  readonly sslDefaultServerCiphers: string;
  readonly sslDefaultServerCiphersuites: string;
  readonly sslDefaultServerOptions: string;
  /** Folder relative `crt` paths are read from. */
  readonly crtBase: string;
  /** `localpeer`: this process's name in the peers section (a single node, whose peer is itself). */
  readonly localPeer?: string;
}

/** TCP keep-alive timers (`clitcpka-*` on a frontend, `srvtcpka-*` on a backend). */
export interface KeepaliveTimers {
  readonly idle: string;
  readonly interval: string;
  readonly count: number;
}

/**
 * A start-up guard, rendered in one `.if` / `.elif` … `.endif` chain with `.alert "<message>"`: HAProxy
 * refuses the configuration (and `haproxy -c` fails) when the condition holds.
 */
export interface StartupGuard {
  readonly condition: string;
  readonly alert: string;
}

export interface DefaultsSection {
  readonly mode: ProxyMode;
  readonly log: "global";
  readonly options: readonly string[];
  readonly retries: number;
  readonly timeouts: ProxyTimeouts;
  readonly defaultServer: readonly string[];
  /** `global`: every backend loads its servers' states from the global server-state-file. */
  readonly loadServerStateFromFile: "global";
}

export interface PeersSection {
  readonly name: string;
  readonly peers: ReadonlyArray<{ readonly name: string; readonly address: string; readonly port: number }>;
}

export interface UserlistSection {
  readonly name: string;
  /** `user <name> insecure-password "<value>"`; the value is an environment-variable reference. */
  readonly users: ReadonlyArray<{ readonly name: string; readonly insecurePassword: string }>;
}

export interface FrontendSection {
  readonly name: string;
  readonly description?: string;
  readonly mode: ProxyMode;
  readonly binds: readonly Bind[];
  readonly maxconn?: number;
  /** `rate-limit sessions`: new connections accepted per second. */
  readonly rateLimitSessions?: number;
  readonly options: readonly string[];
  /** With `option clitcpka`. */
  readonly keepalive?: KeepaliveTimers;
  readonly timeouts: ProxyTimeouts;
  readonly acls: readonly Acl[];
  readonly tcpRequestConnection: readonly Rule[];
  /** `tcp-request inspect-delay`: how long `tcp-request content` rules may wait for data. */
  readonly inspectDelay?: string;
  readonly tcpRequestContent?: readonly Rule[];
  /** `log-format` (replaces `option tcplog`/`httplog`). */
  readonly logFormat?: string;
  readonly httpRequest: readonly Rule[];
  readonly httpResponse: readonly Rule[];
  /** `monitor-uri`: answer 200 on this path without a backend (liveness probes). */
  readonly monitorUri?: string;
  /** `errorfiles <http-errors section>`: the service's own error pages. */
  readonly errorFiles?: string;
  /** `stats ...` lines of a stats frontend (enable, uri, refresh). */
  readonly stats: readonly string[];
  readonly useBackends: ReadonlyArray<{ readonly backend: string; readonly condition: string }>;
  readonly defaultBackend?: string;
  readonly extra: readonly string[];
}

export interface StickTable {
  readonly type: "ip" | "integer";
  readonly size: string;
  /** Omitted: entries never expire. */
  readonly expire?: string;
  /** Never evict entries to make room (a table of one fixed key). */
  readonly nopurge?: boolean;
  readonly peers?: string;
}

export interface ServerLine {
  readonly name: string;
  readonly address: string;
  /** Omitted: the port the client connected to. */
  readonly port?: number;
  readonly options: readonly string[];
}

export interface BackendSection {
  readonly name: string;
  readonly description?: string;
  readonly mode: ProxyMode;
  readonly balance: BalanceAlgorithm;
  /** `hash-type`: consistent hashing keeps most clients on their server when one joins or leaves. */
  readonly hashType?: "consistent";
  readonly options: readonly string[];
  /** With `option srvtcpka`. */
  readonly keepalive?: KeepaliveTimers;
  /** `option httpchk` / `option tcp-check` then their `http-check` / `tcp-check` rules, in order. */
  readonly check: readonly string[];
  readonly timeouts: ProxyTimeouts;
  readonly retries?: number;
  readonly source?: string;
  readonly stickTable?: StickTable;
  readonly stickOn?: string;
  readonly cookie?: string;
  readonly httpRequest: readonly Rule[];
  readonly httpResponse: readonly Rule[];
  readonly defaultServer: readonly string[];
  readonly extra: readonly string[];
  readonly servers: readonly ServerLine[];
}

/** An `http-errors` section: `errorfile <status> <path>` per page (each file a complete HTTP response). */
export interface HttpErrorsSection {
  readonly name: string;
  readonly files: ReadonlyArray<{ readonly status: number; readonly path: string }>;
}

export interface HaproxyConfig {
  /** Comment lines at the top of the file (without `#`). */
  readonly header: readonly string[];
  readonly global: GlobalSection;
  readonly defaults: DefaultsSection;
  readonly peers?: PeersSection;
  /** Rendered after `defaults`, before the userlists. */
  readonly guards: readonly StartupGuard[];
  readonly userlists: readonly UserlistSection[];
  /** Rendered after the userlists, before the frontends. */
  readonly httpErrors: readonly HttpErrorsSection[];
  readonly frontends: readonly FrontendSection[];
  readonly backends: readonly BackendSection[];
}
