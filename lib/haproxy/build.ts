/**
 * Resolved environment → typed haproxy.cfg model. All Layer 7 SNAT features live here; the text
 * layout lives in render.ts.
 */
import {
  ADMIN_CONNECTION_RESERVE,
  CERT_DIR,
  HAPROXY_ENV_FILE,
  HEALTH_ENDPOINT,
  ResolvedEnvironment,
  ResolvedMember,
  ResolvedService,
  STATS_PASSWORD_VAR,
  PEERS_PORT,
} from "../config/model";
import { bindAddress, isNlb } from "../plan/nlb";
import { NLB_HEALTH_CHECK } from "../config/nlb-limits";
import { dicomTcpCheckDirectives } from "./dicom-check";
import { ERROR_DIR, MAINTENANCE_MAP, errorPageFile, httpErrorsName, maintenancePageFile } from "./error-pages";
import { PAGE_CONTENT_TYPE } from "../config/page-responses";
import type { Acl, BackendSection, Bind, FrontendSection, HaproxyConfig, Rule, ServerLine } from "./model";
import { renderHaproxyConfig } from "./render";

/** Mozilla "intermediate" TLS profile: TLS 1.2+ with forward-secret AEAD ciphers only. */
export const TLS_PROFILE = {
  ciphers:
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
  ciphersuites: "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
  options: "ssl-min-ver TLSv1.2 no-tls-tickets",
} as const;

/**
 * The `legacy` per-service TLS profile, for modalities that cannot do better (DICOM TLS on 2762 from old
 * equipment): TLS 1.0 and up, adding CBC and non-forward-secret AES ciphers; OpenSSL 3 needs security level
 * 0 for TLS 1.0/1.1. Give those modalities a VIP (service) of their own, so the others keep `intermediate`.
 */
export const LEGACY_TLS_PROFILE = {
  minVersion: "TLSv1.0",
  ciphers: `${TLS_PROFILE.ciphers}:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA:@SECLEVEL=0`,
} as const;

/** Name of the `peers` section: stick tables sync across an HA pair and survive every reload. */
export const PEERS_SECTION = "imaging_lb";
/** Runtime API socket (drain / maintenance: `set server <backend>/<server> state drain`). */
export const RUNTIME_SOCKET = "/run/haproxy/admin.sock";
/** Where the agent saves server states (`show servers state`) before a reload; the new worker loads them. */
export const SERVER_STATE_FILE = "/var/lib/haproxy/server-state";
/** Interface the admin endpoints (stats, /metrics) bind to: the internal side. */
export const ADMIN_INTERFACE = "eth0";

/** Where the configuration's runtime files live; tests running several HAProxys on one host move them. */
export interface HaproxyBuildOptions {
  /** @default RUNTIME_SOCKET */
  readonly runtimeSocket?: string;
  /** @default "/var/lib/haproxy"; false: no chroot (test harnesses without that folder) */
  readonly chroot?: string | false;
  /** Folder of the TLS PEM files (`crt-base`). @default CERT_DIR */
  readonly certBase?: string;
  /** @default SERVER_STATE_FILE */
  readonly serverStateFile?: string;
  /** The global `log` target. @default "/dev/log local0" (the node's syslog) */
  readonly log?: string;
  /** Folder of the error pages and the maintenance map (files of the bundle, see error-pages.ts). @default ERROR_DIR */
  readonly errorDir?: string;
  /**
   * The node rendered for. Only ha.vipMode nlb needs it (required there): each node listens on its own
   * addresses of the VIPs (the NLB's targets). @default none: the configuration every node of the pair shares
   */
  readonly node?: string;
}

export const frontendName = (service: string) => `fe_${service}`;
export const backendName = (service: string, route?: string) => (route ? `be_${service}_${route}` : `be_${service}`);
/** The fallback backend of a service with a sorry server: chosen while its backend has no usable server, never stored. */
export const sorryBackendName = (service: string) => `sorry_${service}`;
/** The check-only backend whose servers a `source`-address backend tracks (checks from the node's own address). */
export const checkBackendName = (backend: string) => `chk_${backend}`;
/** Connections the stats and the health front-end each may hold (ADMIN_CONNECTION_RESERVE in all). */
export const ADMIN_FRONTEND_MAXCONN = ADMIN_CONNECTION_RESERVE / 2;
/**
 * Log line of tcp services: client address:port, VIP address:port, date, frontend, backend/server, the LB's
 * source address:port towards the server, the server's address:port, timers (queue/connect/total), bytes
 * client→server / server→client, termination state, connection counts, queues.
 */
export const TCP_LOG_FORMAT =
  "%ci:%cp %fi:%fp [%t] %ft %b/%s %bi:%bp->%si:%sp %Tw/%Tc/%Tt %U/%B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq";
/** DICOM services add the AE titles captured from the A-ASSOCIATE-RQ (trailing padding removed). */
export const DICOM_LOG_FIELDS = "calling=%{+Q}[capture.req.hdr(0),rtrim(' ')] called=%{+Q}[capture.req.hdr(1),rtrim(' ')]";
/** How long a DICOM frontend waits for the A-ASSOCIATE-RQ before connecting anyway (its titles are then not logged). */
export const DICOM_INSPECT_DELAY = "5s";
/** Client headers that carry a forwarded address or host; removed on entry unless the client is a trusted proxy. */
export const FORWARDED_HEADERS = ["Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP"] as const;

/**
 * Builds the typed haproxy.cfg model of an environment: identical on both nodes of a VRRP pair; with
 * ha.vipMode nlb each node's (`options.node`) listens on its own addresses of the VIPs.
 */
export function buildHaproxyConfig(env: ResolvedEnvironment, options: HaproxyBuildOptions = {}): HaproxyConfig {
  const tproxy = env.services.some((s) => s.clientAddress === "tproxy");
  const pair = env.nodes.length === 2;
  const nlb = isNlb(env);
  if (nlb && !env.nodes.some((n) => n.name === options.node)) {
    throw new Error(`environment '${env.name}' is behind NLBs (ha.vipMode nlb): render haproxy.cfg for one of its nodes (${env.nodes.map((n) => n.name).join(", ")}), not ${options.node ?? "none"}`);
  }
  const header = [
    // Not the file name: renaming the environment file must change nothing deployed.
    nlb
      ? `haproxy.cfg for environment '${env.name}', node '${options.node}' (behind the VIPs' Network Load Balancers), generated by imaging-lb.`
      : `haproxy.cfg for environment '${env.name}', generated by imaging-lb.`,
    "Do not edit on the load balancer: change the environment file and redeploy.",
    `Secrets are not in this file: ${STATS_PASSWORD_VAR} comes from ${HAPROXY_ENV_FILE}, written at boot from Secrets Manager.`,
    ...(tproxy ? ["HAProxy keeps root privileges: TProxy (usesrc clientip) needs CAP_NET_ADMIN at connect time."] : []),
  ];
  const chroot = options.chroot === undefined ? "/var/lib/haproxy" : options.chroot || undefined;
  const errorDir = options.errorDir ?? ERROR_DIR;
  return {
    header,
    global: {
      log: [options.log ?? "/dev/log local0"],
      chroot,
      user: tproxy ? undefined : "haproxy",
      group: tproxy ? undefined : "haproxy",
      maxconn: env.loadBalancer.maxConnections,
      statsSocket: `${options.runtimeSocket ?? RUNTIME_SOCKET} mode 660 level admin expose-fd listeners`,
      statsTimeout: "30s",
      // A reload hands the listeners to a new worker; the old one keeps its DICOM associations and HL7 links
      // until they end, at most this long.
      hardStopAfter: env.loadBalancer.hardStopAfter,
      serverStateFile: options.serverStateFile ?? SERVER_STATE_FILE,
      crtBase: options.certBase ?? CERT_DIR,
      sslDefaultBindCiphers: TLS_PROFILE.ciphers,
      sslDefaultBindCiphersuites: TLS_PROFILE.ciphersuites,
      sslDefaultBindOptions: TLS_PROFILE.options,
      sslDefaultServerCiphers: TLS_PROFILE.ciphers,
      sslDefaultServerCiphersuites: TLS_PROFILE.ciphersuites,
      sslDefaultServerOptions: "ssl-min-ver TLSv1.2",
      // A single node is its own (only) peer: the new process of a reload takes the stick tables over from the old.
      localPeer: pair ? undefined : env.nodes[0]?.name,
    },
    defaults: {
      mode: "tcp",
      log: "global",
      // Redispatch on every retry: a client stuck to a dead server moves on at once, not after the last retry.
      options: ["dontlognull", "redispatch 1"],
      retries: 3,
      // client-fin/server-fin: a half-closed connection does not hold its slot for the whole idle timeout.
      timeouts: { connect: "5s", client: "1m", server: "1m", queue: "30s", check: "3s", clientFin: "30s", serverFin: "30s" },
      // No on-marked-down shutdown-sessions: a DOWN server gets no new sessions and finishes the ones in flight.
      defaultServer: [],
      loadServerStateFromFile: "global",
    },
    peers: pair
      ? { name: PEERS_SECTION, peers: env.nodes.map((n) => ({ name: n.name, address: n.internalAddress, port: PEERS_PORT })) }
      : { name: PEERS_SECTION, peers: env.nodes.slice(0, 1).map((n) => ({ name: n.name, address: "127.0.0.1", port: PEERS_PORT })) },
    // No stats page without a password: an unset or empty variable stops HAProxy (and `haproxy -c`). The
    // emptiness test expands the value into the condition, so the password may not contain " ' , or ).
    guards: [
      { condition: `!defined(${STATS_PASSWORD_VAR})`, alert: `${STATS_PASSWORD_VAR} is not set: refusing to start without a stats password (see ${HAPROXY_ENV_FILE})` },
      { condition: `streq("\${${STATS_PASSWORD_VAR}}","")`, alert: `${STATS_PASSWORD_VAR} is empty: refusing to start with an empty stats password (see ${HAPROXY_ENV_FILE})` },
    ],
    userlists: [{ name: "admins", users: [{ name: env.admin.statsUser, insecurePassword: `\${${STATS_PASSWORD_VAR}}` }] }],
    httpErrors: env.services
      .filter((s) => s.errorPages.length > 0)
      .map((s) => ({ name: httpErrorsName(s.name), files: s.errorPages.map((p) => ({ status: p.status, path: `${errorDir}/${errorPageFile(s.name, p.status)}` })) })),
    frontends: [
      ...env.services.map((s) => serviceFrontend(s, errorDir, options.node)),
      statsFrontend(env),
      healthFrontend(),
      ...(nlb ? [nlbHealthFrontend(env, options.node!)] : []),
    ],
    backends: env.services.flatMap((s) => serviceBackends(s, options.certBase ?? CERT_DIR)),
  };
}

/** The haproxy.cfg text of an environment. */
export function renderHaproxy(env: ResolvedEnvironment, options: HaproxyBuildOptions = {}): string {
  return renderHaproxyConfig(buildHaproxyConfig(env, options));
}

/**
 * Arguments from the environment file are single-quoted: HAProxy expands nothing there (no ${ENV}, so a
 * header value can never leak the stats password). The schema keeps single quotes and control characters out.
 */
const regexArg = (value: string) => `'${value}'`;
/** A literal log-format argument (header values, replacements): `%` is doubled so `%[...]` is not evaluated. */
const literalArg = (value: string) => `'${value.replace(/%/g, "%%")}'`;
const terminates = (s: ResolvedService) => s.tls.mode === "terminate" || s.tls.mode === "reencrypt";

function serviceFrontend(s: ResolvedService, errorDir: string, node: string | undefined): FrontendSection {
  const http = s.mode === "http";
  const tls = terminates(s);
  const address = bindAddress(s.vip, node);
  const binds: Bind[] = s.frontendPorts.map((port) => ({
    address,
    port,
    crt: tls && s.tls.certificate ? `${s.tls.certificate.name}.pem` : undefined,
    sslOptions: tls && s.tls.profile === "legacy" ? [`ssl-min-ver ${LEGACY_TLS_PROFILE.minVersion}`, `ciphers ${LEGACY_TLS_PROFILE.ciphers}`] : undefined,
    alpn: tls && http ? ["h2", "http/1.1"] : undefined,
  }));
  if (s.tls.redirectHttpPort !== undefined) binds.push({ address, port: s.tls.redirectHttpPort });

  const acls: Acl[] = [{ name: "allowed_clients", criterion: `src ${s.clientCidrs.join(" ")}` }];
  const httpRequest: Rule[] = [];
  const httpResponse: Rule[] = [];
  const useBackends: Array<{ backend: string; condition: string }> = [];
  if (http) {
    // 308 (not 301): the browser repeats the same method and body on the HTTPS URL.
    if (s.tls.redirectHttpPort !== undefined) httpRequest.push({ action: "redirect scheme https code 308", condition: "unless { ssl_fc }" });
    const m = s.maintenance;
    if (m) {
      // The switch is the service's line in the maintenance map: the environment file writes it (a reload),
      // the runtime API adds or deletes it (at once, until the next reload). Allowed sources pass through.
      acls.push({ name: "maintenance", criterion: `str(${s.name}),map(${errorDir}/${MAINTENANCE_MAP},off) -m str on` });
      if (m.allowedSources.length > 0) acls.push({ name: "maintenance_allowed", criterion: `src ${m.allowedSources.join(" ")}` });
      httpRequest.push({
        action: `return status 503 content-type "${PAGE_CONTENT_TYPE}" hdr Retry-After ${m.retryAfterSeconds} hdr Cache-Control no-store file ${errorDir}/${maintenancePageFile(s.name)}`,
        condition: m.allowedSources.length > 0 ? "if maintenance !maintenance_allowed" : "if maintenance",
      });
    }
    // A client's own forwarded-address headers would reach the servers ahead of ours: remove them on entry.
    if (s.trustedProxies.length > 0) acls.push({ name: "trusted_proxies", criterion: `src ${s.trustedProxies.join(" ")}` });
    for (const header of FORWARDED_HEADERS) {
      httpRequest.push({ action: `del-header ${header}`, condition: s.trustedProxies.length > 0 ? "unless trusted_proxies" : undefined });
    }
    // Scheme and port headers: servers behind TLS offload build absolute URLs from them (redirect loops otherwise).
    httpRequest.push(
      { action: "set-header X-Forwarded-Proto https", condition: "if { ssl_fc }" },
      { action: "set-header X-Forwarded-Proto http", condition: "unless { ssl_fc }" },
      { action: "set-header X-Forwarded-Port %[dst_port]" },
    );
    httpRequest.push(...headerRules(s.requestHeaders));
    for (const r of s.rewrites) httpRequest.push({ action: `replace-path ${regexArg(r.match)} ${literalArg(r.replace)}` });
    for (const route of s.routes) {
      acls.push({ name: `route_${route.name}`, criterion: `path_beg ${route.pathPrefixes.join(" ")}` });
      if (s.sorryServer) {
        useBackends.push({ backend: sorryBackendName(s.name), condition: `if route_${route.name} { nbsrv(${backendName(s.name, route.name)}) eq 0 }` });
      }
      useBackends.push({ backend: backendName(s.name, route.name), condition: `if route_${route.name}` });
    }
    if (s.tls.hsts) httpResponse.push({ action: 'set-header Strict-Transport-Security "max-age=31536000"', condition: "if { ssl_fc }" });
    httpResponse.push(...headerRules(s.responseHeaders));
  }
  // The sorry server is a backend of its own, chosen per connection: a stick table never remembers it.
  if (s.sorryServer) useBackends.push({ backend: sorryBackendName(s.name), condition: `if { nbsrv(${backendName(s.name)}) eq 0 }` });
  // tcp: a log line that traces the connection end to end (client, VIP port, LB source towards the server,
  // server, bytes both ways) and, for DICOM, the calling/called AE titles of the A-ASSOCIATE-RQ.
  const dicom = !http && s.healthCheck.type === "dicom-echo";
  const options = http ? ["httplog"] : [];
  // A reload's old worker answers the request in flight with "Connection: close" instead of dropping idle
  // keep-alive connections under the client's next request.
  if (http) options.push("idle-close-on-response");
  if (!http && s.logAtOpen) options.push("logasap");
  if (http && s.clientAddress === "forwarded-for") options.push("forwardfor");
  if (s.tcpKeepalive) options.push("clitcpka");
  return {
    name: frontendName(s.name),
    description: s.description,
    mode: s.mode,
    binds,
    maxconn: s.maxConnections,
    rateLimitSessions: s.connectionRateLimit,
    options,
    logFormat: http ? undefined : dicom ? `${TCP_LOG_FORMAT} ${DICOM_LOG_FIELDS}` : TCP_LOG_FORMAT,
    inspectDelay: dicom ? DICOM_INSPECT_DELAY : undefined,
    tcpRequestContent: dicom
      ? [
          // Offsets in the A-ASSOCIATE-RQ (PDU type 01): called AE title at 10, calling AE title at 26, 16 bytes each.
          { action: "capture req.payload(26,16) len 16", condition: "if { req.payload(0,1) -m bin 01 }" },
          { action: "capture req.payload(10,16) len 16", condition: "if { req.payload(0,1) -m bin 01 }" },
        ]
      : undefined,
    keepalive: s.tcpKeepalive ? s.tcpKeepaliveTimers : undefined,
    timeouts: { client: s.timeouts.client, httpRequest: s.timeouts.httpRequest, httpKeepAlive: s.timeouts.httpKeepAlive },
    acls,
    tcpRequestConnection: [{ action: "reject", condition: "unless allowed_clients" }],
    httpRequest,
    httpResponse,
    stats: [],
    errorFiles: s.errorPages.length > 0 ? httpErrorsName(s.name) : undefined,
    useBackends,
    defaultBackend: backendName(s.name),
    extra: s.extraDirectives.frontend,
  };
}

/** Header rules in a fixed order: delete, rewrite, set, add. */
function headerRules(r: ResolvedService["requestHeaders"]): Rule[] {
  return [
    ...r.delete.map((name) => ({ action: `del-header ${name}` })),
    ...r.replace.map((x) => ({ action: `replace-header ${x.name} ${regexArg(x.match)} ${literalArg(x.with)}` })),
    ...r.set.map(([name, value]) => ({ action: `set-header ${name} ${literalArg(value)}` })),
    ...r.add.map(([name, value]) => ({ action: `add-header ${name} ${literalArg(value)}` })),
  ];
}

function checkDirectives(s: ResolvedService): string[] {
  const hc = s.healthCheck;
  switch (hc.type) {
    case "http": {
      const host = hc.host ?? s.vip.address;
      return [
        "option httpchk",
        `http-check send meth ${hc.method} uri ${hc.path} ver HTTP/1.1 hdr Host ${host} hdr User-Agent imaging-lb-check`,
        `http-check expect status ${hc.expectStatus}`,
      ];
    }
    case "dicom-echo":
      return dicomTcpCheckDirectives({ calledAeTitle: hc.calledAeTitle!, callingAeTitle: hc.callingAeTitle, variant: hc.variant, ports: hc.ports });
    case "tcp":
      // Every port the servers serve on must answer: one connect per port, in order.
      return hc.ports.length > 0 ? ["option tcp-check", ...hc.ports.map((p) => `tcp-check connect port ${p}`)] : [];
    case "tls":
    case "none":
      return [];
    default: {
      const never: never = hc.type;
      throw new Error(`unknown check type ${String(never)}`);
    }
  }
}

/** `cookie` of a backend of `s`: the service's cookie name, suffixed with the route's name in a route backend. */
function cookieDirective(s: ResolvedService, route?: string): string | undefined {
  const p = s.persistence;
  if (!cookiePersistence(s)) return undefined;
  // The application's own session cookie is the application's: the same name everywhere, prefixed per server.
  if (p.type === "app-cookie") return `${p.cookieName} prefix nocache`;
  const name = route ? `${p.cookieName}_${route}` : p.cookieName;
  return `${name} insert indirect nocache httponly${terminates(s) ? " secure" : ""} maxidle ${p.timeout}`;
}

const cookiePersistence = (s: ResolvedService) =>
  s.persistence.type === "cookie" || s.persistence.type === "cookie-source" || s.persistence.type === "app-cookie";

function serverOptions(m: ResolvedMember, cookie: boolean, track?: string): string[] {
  return [
    ...(m.weight !== 1 ? [`weight ${m.weight}`] : []),
    ...(m.backup ? ["backup"] : []),
    ...(cookie ? [`cookie ${m.name}`] : []),
    ...(track ? [`track ${track}/${m.name}`] : []),
  ];
}

/** Health-check options of the servers of `s`, checked on `checkPort`. */
function checkOptions(s: ResolvedService, checkPort: number | undefined): string[] {
  const hc = s.healthCheck;
  if (hc.type === "none") return [];
  const options = ["check", `inter ${hc.interval}`, `fall ${hc.fall}`, `rise ${hc.rise}`];
  if (checkPort !== undefined) options.push(`port ${checkPort}`);
  if (hc.type === "tls" || (hc.type === "http" && hc.ssl)) {
    // Checks of a re-encrypting service verify like its traffic (and send its SNI); a TLS check of plain
    // traffic only handshakes.
    options.push(...(s.tls.mode === "reencrypt" ? ["check-ssl", ...(s.tls.serverName ? [`check-sni ${s.tls.serverName}`] : [])] : ["check-ssl", "verify none"]));
  }
  if (s.proxyProtocol) options.push("check-send-proxy");
  return options;
}

/** Options of the traffic towards the servers of `s` (the same on check-only servers that must speak like them). */
function connectionOptions(s: ResolvedService, certBase: string): string[] {
  const options: string[] = [];
  if (s.tls.mode === "reencrypt") {
    options.push("ssl");
    if (s.tls.verifyServer === "required") {
      options.push("verify required", `ca-file ${s.tls.caCertificate ? `${certBase}/${s.tls.caCertificate.name}.pem` : "@system-ca"}`);
      if (s.tls.serverName) options.push(`sni str(${s.tls.serverName})`, `verifyhost ${s.tls.serverName}`);
    } else {
      options.push("verify none");
    }
  }
  if (s.proxyProtocol) options.push(s.proxyProtocol === "v2" ? "send-proxy-v2" : "send-proxy");
  return options;
}

/** Capacity and state-change options: queue above maxconn, ramp up after recovery, cut sessions only when asked. */
function capacityOptions(s: ResolvedService): string[] {
  return [
    `maxconn ${s.serverMaxConnections}`,
    ...(s.slowstart ? [`slowstart ${s.slowstart}`] : []),
    ...(s.shutdownSessionsOnDown ? ["on-marked-down shutdown-sessions"] : []),
  ];
}

function serviceBackends(s: ResolvedService, certBase: string): BackendSection[] {
  const source =
    s.clientAddress === "tproxy" ? "0.0.0.0 usesrc clientip" : s.clientAddress === "source" ? s.sourceAddress : undefined;
  // A fixed source address (e.g. the VIP) exists on the active node only: checks run from a check-only backend
  // without it, from the node's own address, so the servers are UP on both nodes before a failover.
  const tracked = s.clientAddress === "source" && s.healthCheck.type !== "none";
  const persistence = s.persistence;
  const activeBackup = s.balance === "active-backup";
  const sticky = !activeBackup && (persistence.type === "source-ip" || persistence.type === "cookie-source");
  const cookie = cookiePersistence(s);
  // Every node has a peers section (a single node is its own peer): tables survive reloads, and sync in a pair.
  const peers = PEERS_SECTION;
  const keepalive = s.tcpKeepalive ? s.tcpKeepaliveTimers : undefined;
  const base: Omit<BackendSection, "name" | "description" | "defaultServer" | "httpRequest" | "extra" | "servers"> = {
    mode: s.mode,
    balance: activeBackup ? "roundrobin" : s.balance,
    hashType: s.balance === "source" ? "consistent" : undefined,
    options: s.tcpKeepalive ? ["srvtcpka"] : [],
    keepalive,
    check: tracked ? [] : checkDirectives(s),
    timeouts: {
      connect: s.timeouts.connect,
      server: s.timeouts.server,
      queue: s.timeouts.queue,
      tunnel: s.timeouts.tunnel,
      check: tracked ? undefined : s.timeouts.check,
    },
    source,
    httpResponse: [],
    // active-backup: one entry for every sender, never expiring — all senders on one server, and after a
    // failover they stay on the backup until an operator moves them back (`clear table` or maintenance).
    // Otherwise every backend of the service (its routes too) keeps clients on their server the same way.
    // (size 2: a store first allocates its own entry before merging it into the existing key; a full
    // nopurge table would silently skip the update after a failover.)
    stickTable: activeBackup
      ? { type: "integer", size: "2", nopurge: true, peers }
      : sticky
        ? { type: "ip", size: "200k", expire: persistence.timeout, peers }
        : undefined,
    stickOn: activeBackup ? "int(1)" : sticky ? "src" : undefined,
    cookie: cookieDirective(s),
  };
  const checkBackend = (name: string, checkPort: number | undefined, members: readonly ResolvedMember[]): BackendSection => ({
    name: checkBackendName(name),
    description: `health checks of ${name} from the node address (traffic leaves from ${s.sourceAddress})`,
    mode: s.mode,
    balance: "roundrobin",
    options: [],
    check: checkDirectives(s),
    timeouts: { check: s.timeouts.check },
    httpRequest: [],
    httpResponse: [],
    defaultServer: [...checkOptions(s, checkPort), ...connectionOptions(s, certBase)],
    extra: [],
    servers: members.map((m) => ({ name: m.name, address: m.address, port: m.port, options: [] })),
  });
  const defaultServer = (checkPort: number | undefined) => [...(tracked ? [] : checkOptions(s, checkPort)), ...connectionOptions(s, certBase), ...capacityOptions(s)];
  const mainName = backendName(s.name);
  const main: BackendSection = {
    ...base,
    name: mainName,
    description: s.description,
    defaultServer: defaultServer(s.healthCheck.port),
    httpRequest: [],
    extra: s.extraDirectives.backend,
    servers: s.members.map((m): ServerLine => ({
      name: m.name,
      address: m.address,
      port: m.port,
      options: serverOptions(m, cookie, tracked ? checkBackendName(mainName) : undefined),
    })),
  };
  const routes = s.routes.map((r): BackendSection => {
    const name = backendName(s.name, r.name);
    return {
      ...base,
      name,
      description: `${s.name}: paths ${r.pathPrefixes.join(" ")}`,
      httpRequest: r.stripPrefix
        ? r.pathPrefixes.map((p) => ({ action: `replace-path ${regexArg(`^${escapeRegex(p.replace(/\/$/, ""))}/?(.*)`)} '/\\1'` }))
        : [],
      defaultServer: defaultServer(r.checkPort),
      // A cookie of its own: the route's server choice never overwrites the service's (one path=/ cookie
      // per backend would move the whole viewer session to the route's server).
      cookie: cookieDirective(s, r.name),
      extra: [],
      servers: r.members.map((m) => ({ name: m.name, address: m.address, port: m.port, options: serverOptions(m, cookie, tracked ? checkBackendName(name) : undefined) })),
    };
  });
  const sorry: BackendSection[] = s.sorryServer
    ? [
        {
          name: sorryBackendName(s.name),
          description: `${s.name}: sorry server, while no server of the service is usable (no persistence)`,
          mode: s.mode,
          balance: "roundrobin",
          options: [],
          check: [],
          timeouts: { connect: s.timeouts.connect, server: s.timeouts.server, tunnel: s.timeouts.tunnel },
          httpRequest: [],
          httpResponse: [],
          defaultServer: [],
          extra: [],
          servers: [{ name: "sorry", address: s.sorryServer.address, port: s.sorryServer.port, options: [] }],
        },
      ]
    : [];
  const checks = tracked
    ? [checkBackend(mainName, s.healthCheck.port, s.members), ...s.routes.map((r) => checkBackend(backendName(s.name, r.name), r.checkPort, r.members))]
    : [];
  return [main, ...routes, ...sorry, ...checks];
}

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function healthFrontend(): FrontendSection {
  return {
    name: "fe_health",
    description: "Liveness for keepalived: 200 while HAProxy runs, loopback only",
    mode: "http",
    binds: [{ address: HEALTH_ENDPOINT.address, port: HEALTH_ENDPOINT.port }],
    maxconn: ADMIN_FRONTEND_MAXCONN,
    options: ["dontlog-normal"],
    timeouts: { client: "5s", httpRequest: "5s" },
    acls: [],
    tcpRequestConnection: [],
    httpRequest: [],
    httpResponse: [],
    stats: [],
    monitorUri: HEALTH_ENDPOINT.path,
    useBackends: [],
    extra: [],
  };
}

/**
 * vipMode nlb: what the NLB's health checks ask, on each of the node's VIP addresses: 200 while this
 * HAProxy runs and accepts connections there, whatever its servers' state (a dead PACS must not take both
 * nodes out). Only from the client-side subnets, where the NLB's own addresses are.
 */
function nlbHealthFrontend(env: ResolvedEnvironment, node: string): FrontendSection {
  const subnets = [...new Set(env.vips.flatMap((v) => v.nlb ?? []).map((z) => z.subnet.cidr))].sort();
  return {
    name: "fe_nlb_health",
    description: "The Network Load Balancers' health check: 200 while HAProxy serves on this node's VIP addresses",
    mode: "http",
    binds: env.vips.map((v) => ({ address: bindAddress(v, node), port: NLB_HEALTH_CHECK.port })),
    maxconn: ADMIN_FRONTEND_MAXCONN,
    options: ["dontlog-normal"],
    timeouts: { client: "5s", httpRequest: "5s" },
    acls: [{ name: "nlb_subnets", criterion: `src ${subnets.join(" ")}` }],
    tcpRequestConnection: [{ action: "reject", condition: "unless nlb_subnets" }],
    httpRequest: [],
    httpResponse: [],
    stats: [],
    monitorUri: NLB_HEALTH_CHECK.path,
    useBackends: [],
    extra: [],
  };
}

function statsFrontend(env: ResolvedEnvironment): FrontendSection {
  const httpRequest: Rule[] = [{ action: "auth realm imaging-lb", condition: "unless { http_auth(admins) }" }];
  if (env.admin.prometheus) httpRequest.push({ action: "use-service prometheus-exporter", condition: "if { path /metrics }" });
  return {
    name: "fe_stats",
    description: "Stats page and Prometheus metrics, admin networks only, authenticated",
    mode: "http",
    binds: [{ address: "", port: env.admin.statsPort, interface: ADMIN_INTERFACE }],
    maxconn: ADMIN_FRONTEND_MAXCONN,
    options: ["httplog"],
    timeouts: { client: "30s", httpRequest: "10s" },
    acls: [{ name: "admin_networks", criterion: `src ${env.access.adminCidrs.join(" ")}` }],
    tcpRequestConnection: [{ action: "reject", condition: "unless admin_networks" }],
    httpRequest,
    httpResponse: [],
    stats: ["enable", "uri /", "refresh 10s", "show-legends"],
    useBackends: [],
    extra: [],
  };
}
