/**
 * `imaging-lb expand`: the environment with the preset applied and every default the loader fills in
 * written out, so the printed file says what haproxy.cfg gets (check port, interval, fall/rise, every
 * timeout, balance, persistence, client address). Fields the file or the preset set are kept as they
 * are; only missing ones are added, from the resolved environment. Pure.
 */
import { ResolvedEnvironment, ResolvedService } from "./model";
import { monitoringDefaults } from "./monitoring";

type Plain = Record<string, unknown>;

const isPlain = (v: unknown): v is Plain => typeof v === "object" && v !== null && !Array.isArray(v);

/** `target` with every field of `defaults` it lacks (recursively for mappings). */
function fillMissing(target: Plain, defaults: Plain): Plain {
  const out: Plain = { ...target };
  for (const [key, value] of Object.entries(defaults)) {
    if (value === undefined) continue;
    if (out[key] === undefined) out[key] = value;
    else if (isPlain(out[key]) && isPlain(value)) out[key] = fillMissing(out[key] as Plain, value);
  }
  return out;
}

/** The defaults of one resolved service, in the environment file's shape. */
function serviceDefaults(s: ResolvedService): Plain {
  const hc = s.healthCheck;
  const http = hc.type === "http";
  const dicom = hc.type === "dicom-echo";
  const cookie = s.persistence.type === "cookie" || s.persistence.type === "cookie-source";
  return {
    enabled: true,
    vip: s.vip.name,
    mode: s.mode,
    balance: s.balance,
    persistence: { type: s.persistence.type, ...(s.persistence.type === "none" ? {} : { timeout: s.persistence.timeout }), ...(cookie ? { cookieName: s.persistence.cookieName } : {}) },
    healthCheck: {
      type: hc.type,
      ...(hc.type === "none"
        ? {}
        : {
            // With routes, an unset port means "each route's own port": writing the service's would change that.
            ...(s.routes.length === 0 ? { port: hc.port } : {}),
            interval: hc.interval,
            fall: hc.fall,
            rise: hc.rise,
            ...(http ? { path: hc.path, method: hc.method, expectStatus: hc.expectStatus, ssl: hc.ssl } : {}),
            ...(dicom ? { calledAeTitle: hc.calledAeTitle, callingAeTitle: hc.callingAeTitle, variant: hc.variant } : {}),
          }),
    },
    timeouts: { ...s.timeouts },
    tls: { mode: s.tls.mode, ...(s.tls.mode === "reencrypt" ? { verifyServer: s.tls.verifyServer } : {}) },
    clientAddress: s.clientAddress,
    tcpKeepalive: s.tcpKeepalive,
    // The page stays as written (or absent: the built-in page); only the Retry-After default is added.
    ...(s.maintenance ? { maintenance: { retryAfterSeconds: s.maintenance.retryAfterSeconds } } : {}),
  };
}

/** `expanded` (the schema's output) with the resolved defaults of every enabled service added. */
export function withResolvedDefaults(expanded: Plain, env: ResolvedEnvironment): Plain {
  const services = isPlain(expanded.services) ? { ...expanded.services } : {};
  for (const s of env.services) {
    const own = isPlain(services[s.name]) ? (services[s.name] as Plain) : {};
    services[s.name] = fillMissing(own, serviceDefaults(s));
  }
  const monitoring = fillMissing(isPlain(expanded.monitoring) ? expanded.monitoring : {}, monitoringDefaults(env.monitoring));
  // vipMode nlb runs no keepalived: the schema's VRRP defaults would be refused when read back.
  const lb = expanded.loadBalancer;
  if (env.ha?.vipMode === "nlb" && isPlain(lb) && isPlain(lb.ha)) {
    const ha = Object.fromEntries(Object.entries(lb.ha).filter(([key]) => !["virtualRouterId", "advertIntervalSeconds", "preempt"].includes(key)));
    return { ...expanded, loadBalancer: { ...lb, ha }, services, monitoring };
  }
  return { ...expanded, services, monitoring };
}
