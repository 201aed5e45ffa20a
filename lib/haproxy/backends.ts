/**
 * The backends of each service: the main one, one per path route, the sorry server's, and with
 * clientAddress source the check-only backends their servers track; balance, persistence (stick tables,
 * cookies), the traffic towards the servers (re-encryption, PROXY protocol, source address) and capacity. Pure.
 */
import type { ResolvedMember, ResolvedService } from "../config/model";
import { escapeRegex, regexArg } from "./arguments";
import { checkDirectives, checkOptions } from "./checks";
import type { BackendSection, ServerLine } from "./model";
import { PEERS_SECTION, backendName, checkBackendName, sorryBackendName } from "./names";
import { terminates } from "./tls";

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

/** Every backend of service `s`; `certBase` is the folder of the CA bundles. */
export function serviceBackends(s: ResolvedService, certBase: string): BackendSection[] {
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
