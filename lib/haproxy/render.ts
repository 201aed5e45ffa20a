/**
 * haproxy.cfg writer: a fixed section order (global, defaults, peers, userlists, http-errors, frontends,
 * backends) and, inside each section, HAProxy's semantic order (acl → tcp-request → http-request →
 * use_backend → default_backend; `option httpchk` before `http-check`; servers last).
 */
import type { BackendSection, Bind, FrontendSection, HaproxyConfig, KeepaliveTimers, ProxyTimeouts, Rule } from "./model";

const INDENT = "    ";

const TIMEOUT_KEYWORDS: ReadonlyArray<[keyof ProxyTimeouts, string]> = [
  ["connect", "connect"],
  ["client", "client"],
  ["server", "server"],
  ["httpRequest", "http-request"],
  ["httpKeepAlive", "http-keep-alive"],
  ["queue", "queue"],
  ["tunnel", "tunnel"],
  ["clientFin", "client-fin"],
  ["serverFin", "server-fin"],
  ["check", "check"],
];

function timeouts(t: ProxyTimeouts): string[] {
  return TIMEOUT_KEYWORDS.filter(([k]) => t[k] !== undefined).map(([k, word]) => `timeout ${word} ${t[k]}`);
}

function rules(keyword: string, list: readonly Rule[]): string[] {
  return list.map((r) => (r.condition ? `${keyword} ${r.action} ${r.condition}` : `${keyword} ${r.action}`));
}

function bind(b: Bind): string {
  const parts = [`bind ${b.address}:${b.port}`];
  if (b.interface) parts.push(`interface ${b.interface}`);
  if (b.crt) parts.push(`ssl crt ${b.crt}`);
  if (b.alpn?.length) parts.push(`alpn ${b.alpn.join(",")}`);
  if (b.sslOptions?.length) parts.push(...b.sslOptions);
  return parts.join(" ");
}

function keepalive(side: "cli" | "srv", k: KeepaliveTimers | undefined): string[] {
  return k ? [`${side}tcpka-idle ${k.idle}`, `${side}tcpka-intvl ${k.interval}`, `${side}tcpka-cnt ${k.count}`] : [];
}

function section(title: string, lines: readonly string[]): string {
  return [title, ...lines.map((l) => `${INDENT}${l}`)].join("\n");
}

function frontend(f: FrontendSection): string {
  return section(`frontend ${f.name}`, [
    ...(f.description ? [`description ${f.description}`] : []),
    `mode ${f.mode}`,
    ...f.binds.map(bind),
    ...(f.maxconn !== undefined ? [`maxconn ${f.maxconn}`] : []),
    ...(f.rateLimitSessions !== undefined ? [`rate-limit sessions ${f.rateLimitSessions}`] : []),
    ...f.options.map((o) => `option ${o}`),
    ...(f.logFormat ? [`log-format "${f.logFormat}"`] : []),
    ...keepalive("cli", f.keepalive),
    ...timeouts(f.timeouts),
    ...(f.errorFiles ? [`errorfiles ${f.errorFiles}`] : []),
    ...f.acls.map((a) => `acl ${a.name} ${a.criterion}`),
    ...rules("tcp-request connection", f.tcpRequestConnection),
    ...(f.inspectDelay ? [`tcp-request inspect-delay ${f.inspectDelay}`] : []),
    ...rules("tcp-request content", f.tcpRequestContent ?? []),
    ...rules("http-request", f.httpRequest),
    ...rules("http-response", f.httpResponse),
    ...(f.monitorUri ? [`monitor-uri ${f.monitorUri}`] : []),
    ...f.stats.map((s) => `stats ${s}`),
    ...f.useBackends.map((u) => `use_backend ${u.backend} ${u.condition}`),
    ...(f.defaultBackend ? [`default_backend ${f.defaultBackend}`] : []),
    ...f.extra,
  ]);
}

function backend(b: BackendSection): string {
  const st = b.stickTable;
  return section(`backend ${b.name}`, [
    ...(b.description ? [`description ${b.description}`] : []),
    `mode ${b.mode}`,
    `balance ${b.balance}`,
    ...(b.hashType ? [`hash-type ${b.hashType}`] : []),
    ...b.options.map((o) => `option ${o}`),
    ...keepalive("srv", b.keepalive),
    ...b.check,
    ...timeouts(b.timeouts),
    ...(b.retries !== undefined ? [`retries ${b.retries}`] : []),
    ...(b.source ? [`source ${b.source}`] : []),
    ...(st
      ? [`stick-table type ${st.type} size ${st.size}${st.expire ? ` expire ${st.expire}` : ""}${st.nopurge ? " nopurge" : ""}${st.peers ? ` peers ${st.peers}` : ""}`]
      : []),
    ...(b.stickOn ? [`stick on ${b.stickOn}`] : []),
    ...(b.cookie ? [`cookie ${b.cookie}`] : []),
    ...rules("http-request", b.httpRequest),
    ...rules("http-response", b.httpResponse),
    ...(b.defaultServer.length ? [`default-server ${b.defaultServer.join(" ")}`] : []),
    ...b.extra,
    ...b.servers.map((s) => [`server ${s.name} ${s.address}${s.port !== undefined ? `:${s.port}` : ""}`, ...s.options].join(" ")),
  ]);
}

/** Renders the configuration text. Deterministic: the same model always gives the same bytes. */
export function renderHaproxyConfig(cfg: HaproxyConfig): string {
  const g = cfg.global;
  const parts: string[] = [
    cfg.header.map((l) => (l ? `# ${l}` : "#")).join("\n"),
    section("global", [
      ...g.log.map((l) => `log ${l}`),
      ...(g.chroot ? [`chroot ${g.chroot}`] : []),
      ...(g.user ? [`user ${g.user}`] : []),
      ...(g.group ? [`group ${g.group}`] : []),
      `maxconn ${g.maxconn}`,
      `stats socket ${g.statsSocket}`,
      `stats timeout ${g.statsTimeout}`,
      `hard-stop-after ${g.hardStopAfter}`,
      `server-state-file ${g.serverStateFile}`,
      `crt-base ${g.crtBase}`,
      ...(g.localPeer ? [`localpeer ${g.localPeer}`] : []),
      `ssl-default-bind-ciphers ${g.sslDefaultBindCiphers}`,
      `ssl-default-bind-ciphersuites ${g.sslDefaultBindCiphersuites}`,
      `ssl-default-bind-options ${g.sslDefaultBindOptions}`,
      `ssl-default-server-ciphers ${g.sslDefaultServerCiphers}`,
      `ssl-default-server-ciphersuites ${g.sslDefaultServerCiphersuites}`,
      `ssl-default-server-options ${g.sslDefaultServerOptions}`,
    ]),
    section("defaults", [
      `mode ${cfg.defaults.mode}`,
      `log ${cfg.defaults.log}`,
      ...cfg.defaults.options.map((o) => `option ${o}`),
      `retries ${cfg.defaults.retries}`,
      `load-server-state-from-file ${cfg.defaults.loadServerStateFromFile}`,
      ...timeouts(cfg.defaults.timeouts),
      ...(cfg.defaults.defaultServer.length ? [`default-server ${cfg.defaults.defaultServer.join(" ")}`] : []),
    ]),
  ];
  if (cfg.peers) {
    parts.push(section(`peers ${cfg.peers.name}`, cfg.peers.peers.map((p) => `peer ${p.name} ${p.address}:${p.port}`)));
  }
  if (cfg.guards.length > 0) {
    // One .if/.elif chain: the first condition that holds stops the start-up with its message.
    const lines = cfg.guards.flatMap((g, i) => [`${i === 0 ? ".if" : ".elif"} ${g.condition}`, `${INDENT}.alert "${g.alert}"`]);
    parts.push([...lines, ".endif"].join("\n"));
  }
  for (const u of cfg.userlists) {
    parts.push(section(`userlist ${u.name}`, u.users.map((x) => `user ${x.name} insecure-password "${x.insecurePassword}"`)));
  }
  for (const e of cfg.httpErrors) {
    parts.push(section(`http-errors ${e.name}`, e.files.map((f) => `errorfile ${f.status} ${f.path}`)));
  }
  parts.push(...cfg.frontends.map(frontend), ...cfg.backends.map(backend));
  return `${parts.join("\n\n")}\n`;
}
