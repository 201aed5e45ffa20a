/**
 * The frontend of each service: its binds (TLS, redirect port), who may connect, and in mode http the
 * maintenance switch, forwarded-address and scheme headers, header rules, rewrites and path routes; in mode
 * tcp the connection log line and, for DICOM, the AE titles captured from the A-ASSOCIATE-RQ. Pure.
 */
import type { ResolvedService } from "../config/model";
import { PAGE_CONTENT_TYPE } from "../config/page-responses";
import { bindAddress } from "../plan/nlb";
import { literalArg, regexArg } from "./arguments";
import { MAINTENANCE_MAP, httpErrorsName, maintenancePageFile } from "./error-pages";
import type { Acl, Bind, FrontendSection, Rule } from "./model";
import { backendName, frontendName, sorryBackendName } from "./names";
import { LEGACY_TLS_PROFILE, terminates } from "./tls";

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

/** The frontend of service `s`, on `node`'s addresses of its VIP (nlb) or the VIP's address. */
export function serviceFrontend(s: ResolvedService, errorDir: string, node: string | undefined): FrontendSection {
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
