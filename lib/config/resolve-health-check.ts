/**
 * A service's health check (http, tcp or DICOM C-ECHO, on which ports) and its timeouts, with the per-mode
 * defaults. Every problem is reported to the collector.
 */
import { durationMs } from "./net";
import { aeTitleProblem } from "./dicom-ae-title";
import { ResolvedHealthCheck, ResolvedMember, ResolvedService, ResolvedTimeouts } from "./model";
import type { ServiceContext, ServiceFields } from "./resolve-service";

const DICOM_DEFAULT_CALLED_AE = "ANY-SCP";

/** The health check; `listed` are the service's servers as listed (before active-backup). */
export function resolveHealthCheck(
  { out }: ServiceContext,
  { s, at, mode, http }: ServiceFields,
  frontendPorts: readonly number[],
  listed: readonly ResolvedMember[],
  tlsMode: ResolvedService["tls"]["mode"],
): ResolvedHealthCheck {
  const hc = s.healthCheck;
  const checkType = hc?.type ?? (http ? "http" : "tcp");
  // Servers on the client's port, no check port given: a tcp or DICOM check covers every front-end port.
  const multiPort =
    hc?.port === undefined && s.backendPort === undefined && frontendPorts.length > 1 && listed.every((m) => m.port === undefined);
  const checkPorts = multiPort && (checkType === "tcp" || checkType === "dicom-echo") ? frontendPorts : [];
  const checkPort =
    checkPorts.length > 0 ? undefined : (hc?.port ?? s.backendPort ?? (listed.some((m) => m.port === undefined) ? frontendPorts[0] : undefined));
  const callingAe = hc?.callingAeTitle ?? "LBHEALTH";
  let calledAeTitle: string | undefined;
  if (checkType === "dicom-echo") {
    if (mode !== "tcp") out.add(at("healthCheck", "type"), "dicom-echo checks need mode tcp");
    const titles = [...new Set(listed.map((m) => m.aeTitle).filter((t): t is string => t !== undefined))];
    if (hc?.calledAeTitle === undefined && titles.length > 1) {
      out.add(at("healthCheck"), `missing calledAeTitle: this service's servers have different AE titles (${titles.join(", ")}) and a DICOM check is one per service; name the one to call`, "key");
    }
    calledAeTitle = hc?.calledAeTitle ?? (titles.length === 1 && listed.every((m) => m.aeTitle) ? titles[0] : DICOM_DEFAULT_CALLED_AE);
    const called = calledAeTitle;
    for (const [field, value] of [["calledAeTitle", called], ["callingAeTitle", callingAe]] as const) {
      const problem = aeTitleProblem(value);
      if (problem) out.add(at("healthCheck", field), `expected ${problem}, got "${value}"`);
    }
  }
  for (const field of ["path", "method", "host", "expectStatus", "ssl"] as const) {
    if (hc?.[field] !== undefined && checkType !== "http") out.add(at("healthCheck", field), `only used by http checks, not ${checkType}`, "key");
  }
  for (const field of ["calledAeTitle", "callingAeTitle", "variant"] as const) {
    if (hc?.[field] !== undefined && checkType !== "dicom-echo") out.add(at("healthCheck", field), `only used by dicom-echo checks, not ${checkType}`, "key");
  }
  const interval = hc?.interval ?? (checkType === "dicom-echo" ? "10s" : "5s");
  return {
    type: checkType,
    port: checkPort,
    ports: checkPorts,
    path: hc?.path ?? "/",
    method: hc?.method ?? "GET",
    host: hc?.host,
    expectStatus: hc?.expectStatus ?? "200-399",
    ssl: hc?.ssl ?? tlsMode === "reencrypt",
    calledAeTitle,
    callingAeTitle: callingAe,
    variant: hc?.variant ?? "c-echo",
    interval,
    fall: hc?.fall ?? 3,
    rise: hc?.rise ?? 2,
  };
}

/** The timeouts: per-mode defaults (inferred, see the domain reference); the check's within its interval. */
export function resolveTimeouts({ out }: ServiceContext, { s, at, http }: ServiceFields, check: Pick<ResolvedHealthCheck, "type" | "interval">): ResolvedTimeouts {
  const { type: checkType, interval } = check;
  const t = s.timeouts ?? {};
  const timeouts = {
    connect: t.connect ?? "5s",
    client: t.client ?? (http ? "10m" : "1h"),
    server: t.server ?? (http ? "10m" : "1h"),
    queue: t.queue ?? "30s",
    // A check may not outlast its interval: the default is capped by it.
    check: t.check ?? shorter(checkType === "dicom-echo" ? "5s" : "3s", interval),
    httpRequest: http ? (t.httpRequest ?? "30s") : undefined,
    httpKeepAlive: http ? (t.httpKeepAlive ?? "10s") : undefined,
    tunnel: http ? (t.tunnel ?? "1h") : undefined,
  };
  for (const field of ["httpRequest", "httpKeepAlive", "tunnel"] as const) {
    if (!http && t[field] !== undefined) out.add(at("timeouts", field), `only used in mode http (this service is mode tcp; use client/server)`, "key");
  }
  if (durationMs(timeouts.check) > durationMs(interval)) {
    out.add(at("timeouts", "check"), `expected a check timeout no longer than the check interval ${interval}, got "${timeouts.check}"`);
  }
  return timeouts;
}

/** The shorter of two HAProxy durations. */
function shorter(a: string, b: string): string {
  return durationMs(a) <= durationMs(b) ? a : b;
}
