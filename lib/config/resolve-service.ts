/**
 * One service of a parsed environment, resolved: its VIP, TLS, the features only http has, how the
 * client's address reaches the servers, and (in their own files) its servers and routes
 * (`resolve-servers.ts`), health check and timeouts (`resolve-health-check.ts`), error and maintenance
 * pages (`resolve-pages.ts`). Every problem is reported to the collector, in the order of the fields.
 */
import { FieldPath, ProblemCollector } from "./locate";
import { ResolvedCertificate, ResolvedHeaderRules, ResolvedService, ResolvedVip } from "./model";
import { resolveHealthCheck, resolveTimeouts } from "./resolve-health-check";
import { resolveErrorPages, resolveMaintenance } from "./resolve-pages";
import { resolveMembers, resolveRoutes } from "./resolve-servers";
import type { Environment, HeaderRules, Service } from "./schema";

/** What every service is resolved against. */
export interface ServiceContext {
  readonly env: Environment;
  readonly vips: readonly ResolvedVip[];
  readonly certificates: readonly ResolvedCertificate[];
  /** The maxconn of a service that sets none: its share of the global maxconn. */
  readonly maxConnectionsShare: number;
  /** The environment file: page files are read relative to its folder. */
  readonly sourceFile: string;
  readonly out: ProblemCollector;
}

/** The service being resolved: its name, its fields, where they are, and its mode. */
export interface ServiceFields {
  readonly name: string;
  readonly s: Service;
  readonly at: (...rest: Array<string | number>) => FieldPath;
  readonly mode: ResolvedService["mode"];
  readonly http: boolean;
}

/** Resolves service `name`; with problems, a placeholder that only serves to report more of them. */
export function resolveService(context: ServiceContext, name: string, s: Service): ResolvedService {
  const { env, out, sourceFile } = context;
  const at = (...rest: Array<string | number>): FieldPath => ["services", name, ...rest];
  const mode = s.mode ?? "tcp";
  const service: ServiceFields = { name, s, at, mode, http: mode === "http" };
  const http = service.http;

  const vip = serviceVip(context, service);
  if (!s.frontendPorts) out.add(at(), "missing frontendPorts: the ports the VIP listens on for this service", "key");
  const frontendPorts = [...(s.frontendPorts ?? [])];
  const tls = resolveTls(context, service);
  checkHttpOnly(context, service);
  const persistence = resolvePersistence(context, service);
  const { clientAddress, sourceAddress } = resolveClientAddress(context, service, vip);
  const { balance, listed, members } = resolveMembers(context, service);
  const routes = resolveRoutes(context, service, members);
  const healthCheck = resolveHealthCheck(context, service, frontendPorts, listed, tls.mode);
  const timeouts = resolveTimeouts(context, service, healthCheck);

  return {
    name,
    description: s.description,
    vip,
    frontendPorts,
    backendPort: s.backendPort,
    mode,
    balance,
    persistence,
    healthCheck,
    timeouts,
    tls,
    requestHeaders: headerRules(s.requestHeaders),
    responseHeaders: headerRules(s.responseHeaders),
    routes,
    rewrites: s.rewrites ?? [],
    clientAddress,
    sourceAddress,
    clientCidrs: s.clientCidrs ?? env.access.clientCidrs,
    tcpKeepalive: s.tcpKeepalive ?? !http,
    tcpKeepaliveTimers: {
      idle: s.tcpKeepaliveTimers?.idle ?? "120s",
      interval: s.tcpKeepaliveTimers?.interval ?? "30s",
      count: s.tcpKeepaliveTimers?.count ?? 4,
    },
    maxConnections: s.maxConnections ?? context.maxConnectionsShare,
    serverMaxConnections: s.serverMaxConnections ?? 1000,
    slowstart: s.slowstart === false ? undefined : (s.slowstart ?? "30s"),
    shutdownSessionsOnDown: s.shutdownSessionsOnDown ?? false,
    trustedProxies: s.trustedProxies ?? [],
    connectionRateLimit: s.connectionRateLimit,
    logAtOpen: s.logAtOpen ?? false,
    proxyProtocol: s.proxyProtocol,
    sorryServer: s.sorryServer,
    errorPages: http ? resolveErrorPages(s, at, sourceFile, out) : [],
    maintenance: http && s.maintenance ? resolveMaintenance(s.maintenance, at, sourceFile, out) : undefined,
    members,
    extraDirectives: { frontend: s.extraDirectives?.frontend ?? [], backend: s.extraDirectives?.backend ?? [] },
  };
}

/** The service's VIP: the one it names, or the only one. */
function serviceVip({ vips, out }: ServiceContext, { s, at }: ServiceFields): ResolvedVip {
  let vip = vips.find((v) => v.name === s.vip);
  if (s.vip === undefined) {
    if (vips.length === 1) vip = vips[0];
    else out.add(at(), `missing vip: there are ${vips.length} VIPs (${vips.map((v) => v.name).join(", ")}); name one`, "key");
  } else if (!vip) {
    out.add(at("vip"), `VIP '${s.vip}' is not defined in vips (defined: ${vips.map((v) => v.name).join(", ") || "none"})`);
  }
  vip ??= { name: s.vip ?? "?", address: "0.0.0.0", elasticIp: false };
  return vip;
}

/** TLS: terminated, re-encrypted (with a private CA and the servers' name verified) or passed through. */
function resolveTls({ env, certificates, out }: ServiceContext, { name, s, at, http }: ServiceFields): ResolvedService["tls"] {
  const tlsMode = s.tls?.mode ?? "none";
  let certificate: ResolvedCertificate | undefined;
  if (tlsMode === "terminate" || tlsMode === "reencrypt") {
    if (!s.tls?.certificate) {
      out.add(at("tls"), `missing certificate: TLS mode ${tlsMode} needs a certificate name from tls.certificates`, "key");
    } else {
      certificate = certificates.find((c) => c.name === s.tls?.certificate);
      if (!certificate && !out.has(at("tls", "certificate")) && env.preset) {
        // The name comes from the preset: point at tls.certificates (or preset:), where the user adds it.
        const cert = s.tls.certificate;
        const place: FieldPath = out.has(["tls", "certificates"]) ? ["tls", "certificates"] : out.has(["tls"]) ? ["tls"] : ["preset"];
        out.add(
          ["tls", "certificates", cert],
          `missing certificate '${cert}': service '${name}' of preset ${env.preset} terminates TLS with it; add it to tls.certificates as ${cert}: { secretArn: "arn:aws:secretsmanager:${env.region}:<account>:secret:<name>" } (defined: ${certificates.map((c) => c.name).join(", ") || "none"}), or name another one in services.${name}.tls.certificate, or disable the service with services.${name}.enabled: false`,
          "key",
          place,
        );
      } else if (!certificate) {
        out.add(at("tls", "certificate"), `certificate '${s.tls.certificate}' is not defined in tls.certificates (defined: ${certificates.map((c) => c.name).join(", ") || "none"})`);
      }
    }
  } else if (s.tls?.certificate) {
    out.add(at("tls", "certificate"), `a certificate is only used with tls.mode terminate or reencrypt, not ${tlsMode}`, "key");
  }
  // Re-encryption: a private CA by reference, and the servers' name verified by default.
  let caCertificate: ResolvedCertificate | undefined;
  if (s.tls?.caCertificate !== undefined) {
    if (tlsMode !== "reencrypt") out.add(at("tls", "caCertificate"), `a CA bundle verifies re-encrypted traffic; only used with tls.mode reencrypt, not ${tlsMode}`, "key");
    caCertificate = certificates.find((c) => c.name === s.tls?.caCertificate);
    if (!caCertificate) {
      out.add(at("tls", "caCertificate"), `certificate '${s.tls.caCertificate}' is not defined in tls.certificates (defined: ${certificates.map((c) => c.name).join(", ") || "none"})`);
    }
  }
  if (tlsMode === "reencrypt" && (s.tls?.verifyServer ?? "required") === "required" && !s.tls?.serverName) {
    out.add(at("tls"), "missing serverName: re-encryption verifies the name in the servers' certificates (set the name they carry, e.g. ei-core.hospital.local), or set verifyServer: none", "key");
  }
  if (s.tls?.profile !== undefined && tlsMode !== "terminate" && tlsMode !== "reencrypt") {
    out.add(at("tls", "profile"), `a TLS profile applies to listeners that terminate TLS (tls.mode terminate or reencrypt), not ${tlsMode}`, "key");
  }
  if (tlsMode === "passthrough" && http) out.add(at("tls", "mode"), "passthrough needs mode tcp: an http service must see the request (use terminate or reencrypt)");
  if (s.tls?.redirectHttpPort !== undefined && !(http && (tlsMode === "terminate" || tlsMode === "reencrypt"))) {
    out.add(at("tls", "redirectHttpPort"), "an HTTP→HTTPS redirect needs mode http with tls.mode terminate or reencrypt", "key");
  }
  if (s.tls?.hsts && !(http && (tlsMode === "terminate" || tlsMode === "reencrypt"))) {
    out.add(at("tls", "hsts"), "HSTS needs mode http with tls.mode terminate or reencrypt", "key");
  }
  return {
    mode: tlsMode,
    certificate,
    hsts: s.tls?.hsts ?? false,
    redirectHttpPort: s.tls?.redirectHttpPort,
    verifyServer: s.tls?.verifyServer ?? "required",
    serverName: s.tls?.serverName,
    caCertificate,
    profile: s.tls?.profile ?? "intermediate",
  };
}

/** The fields only mode http uses, refused in mode tcp (and logAtOpen, tcp's, in mode http). */
function checkHttpOnly({ out }: ServiceContext, { s, at, http }: ServiceFields): void {
  const httpOnly: Array<[keyof Service, string]> = [
    ["requestHeaders", "header rules"],
    ["responseHeaders", "header rules"],
    ["routes", "path routing"],
    ["rewrites", "URL rewrites"],
  ];
  httpOnly.push(["trustedProxies", "trusted proxies (forwarded-address headers)"], ["errorPages", "error pages"], ["maintenance", "maintenance pages"]);
  if (http && s.logAtOpen !== undefined) out.add(at("logAtOpen"), "logAtOpen is for tcp services (an http service logs each request)", "key");
  for (const [field, what] of httpOnly) {
    if (!http && s[field] !== undefined) out.add(at(field), `${what} need mode http (this service is mode tcp)`, "key");
  }
}

/** Persistence: cookies need mode http. */
function resolvePersistence({ out }: ServiceContext, { s, at, http }: ServiceFields): ResolvedService["persistence"] {
  const persistenceType = s.persistence?.type ?? "none";
  if (!http && (persistenceType === "cookie" || persistenceType === "cookie-source" || persistenceType === "app-cookie")) {
    out.add(at("persistence", "type"), `cookie persistence needs mode http; use source-ip in mode tcp, got "${persistenceType}"`);
  }
  return {
    type: persistenceType,
    timeout: s.persistence?.timeout ?? "60m",
    cookieName: s.persistence?.cookieName ?? (persistenceType === "app-cookie" ? "JSESSIONID" : "SERVERID"),
  };
}

/** How the client's address reaches the servers, and the source address of clientAddress source. */
function resolveClientAddress(
  { env, out }: ServiceContext,
  { s, at, http }: ServiceFields,
  vip: ResolvedVip,
): Pick<ResolvedService, "clientAddress" | "sourceAddress"> {
  const clientAddress = s.clientAddress ?? (http ? "forwarded-for" : "snat");
  if (clientAddress === "forwarded-for" && !http) {
    out.add(at("clientAddress"), "forwarded-for inserts an HTTP header and needs mode http; use snat or tproxy in mode tcp, got \"forwarded-for\"");
  }
  if (clientAddress === "tproxy" && env.network.layout === "one-arm") {
    out.add(at("clientAddress"), "tproxy needs layout two-arm: the servers' replies must route back through the load balancer, which one-arm cannot guarantee");
  }
  let sourceAddress: string | undefined;
  if (clientAddress === "source") {
    if (!s.sourceAddress) out.add(at(), "missing sourceAddress: clientAddress source needs 'vip' or an address of the load balancer", "key");
    else sourceAddress = s.sourceAddress === "vip" ? vip.address : s.sourceAddress;
  } else if (s.sourceAddress !== undefined) {
    out.add(at("sourceAddress"), `sourceAddress is only used with clientAddress source, not ${clientAddress}`, "key");
  }
  return { clientAddress, sourceAddress };
}

/** Header rules, each kind sorted by name. */
function headerRules(rules: HeaderRules | undefined): ResolvedHeaderRules {
  const sorted = (r: Record<string, string> | undefined) => Object.entries(r ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return {
    set: sorted(rules?.set),
    add: sorted(rules?.add),
    delete: [...(rules?.delete ?? [])].sort(),
    replace: Object.entries(rules?.replace ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, r]) => ({ name, match: r.match, with: r.with })),
  };
}
