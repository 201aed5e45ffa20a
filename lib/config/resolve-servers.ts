/**
 * A service's servers: which entries of `servers` serve it (and on which port), active-backup's backups,
 * and its path routes' servers. Every problem is reported to the collector.
 */
import type { ProblemCollector } from "./locate";
import { ResolvedMember, ResolvedRoute, ResolvedService } from "./model";
import { aeTitleProblem } from "./dicom-ae-title";
import type { Environment } from "./schema";
import type { ServiceContext, ServiceFields } from "./resolve-service";

/** Each server's AE title, and the services it names exist. */
export function checkServerReferences(env: Environment, serviceNames: Set<string>, out: ProblemCollector): void {
  for (const [name, server] of Object.entries(env.servers)) {
    const aeProblem = server.aeTitle === undefined ? undefined : aeTitleProblem(server.aeTitle);
    if (aeProblem) out.add(["servers", name, "aeTitle"], `expected ${aeProblem}, got "${server.aeTitle}"`);
    for (const svc of Object.keys(server.services ?? {})) {
      if (!serviceNames.has(svc)) {
        out.add(["servers", name, "services", svc], `unknown service '${svc}'; services defined: ${[...serviceNames].sort().join(", ") || "none"}`, "key");
      }
    }
  }
}

function members(env: Environment, serviceName: string, backendPort: number | undefined): ResolvedMember[] {
  return Object.entries(env.servers)
    .sort(([a], [b]) => a.localeCompare(b))
    .filter(([, s]) => !s.services || serviceName in s.services)
    .map(([name, s]) => {
      const per = s.services?.[serviceName] ?? {};
      return {
        name,
        address: s.address,
        port: per.port ?? backendPort,
        weight: per.weight ?? s.weight,
        backup: per.backup ?? false,
        aeTitle: s.aeTitle,
      };
    });
}

/** The balance algorithm and the service's servers: as listed, and as served (active-backup's backups made). */
export function resolveMembers({ env, out }: ServiceContext, { name, s, at }: ServiceFields): { balance: ResolvedService["balance"]; listed: ResolvedMember[]; members: ResolvedMember[] } {
  const serviceMembers = members(env, name, s.backendPort);
  if (serviceMembers.length === 0) {
    out.add(at(), "no servers: no entry in servers serves this service (a server without a services list serves all)", "key");
  }
  const balance = s.balance ?? "leastconn";
  let resolvedMembers = serviceMembers;
  if (balance === "active-backup") {
    if (serviceMembers.length < 2) out.add(at("balance"), "active-backup needs at least 2 servers");
    if (!serviceMembers.some((m) => m.backup) && serviceMembers.length > 0) {
      resolvedMembers = serviceMembers.map((m, i) => ({ ...m, backup: i > 0 }));
    }
  }
  if (serviceMembers.length > 0 && serviceMembers.every((m) => m.backup)) {
    out.add(at(), "every server of this service is a backup: at least one must be active");
  }
  return { balance, listed: serviceMembers, members: resolvedMembers };
}

/** The path routes, each with its servers (all of the service's unless it names some). */
export function resolveRoutes({ env, out }: ServiceContext, { s, at }: ServiceFields, resolvedMembers: readonly ResolvedMember[]): ResolvedRoute[] {
  const serverNames = new Set(Object.keys(env.servers));
  return Object.entries(s.routes ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([routeName, r]) => {
      for (const [i, srv] of (r.servers ?? []).entries()) {
        if (!serverNames.has(srv)) out.add(at("routes", routeName, "servers", i), `unknown server '${srv}'; servers defined: ${[...serverNames].sort().join(", ")}`);
      }
      const chosen = r.servers ? resolvedMembers.filter((m) => r.servers!.includes(m.name)) : resolvedMembers;
      const port = r.backendPort ?? s.backendPort;
      return {
        name: routeName,
        pathPrefixes: r.pathPrefixes,
        members: chosen.map((m) => ({ ...m, backup: false, port })),
        stripPrefix: r.stripPrefix ?? false,
        checkPort: s.healthCheck?.port ?? port ?? s.frontendPorts?.[0],
      };
    });
}
