/**
 * Parsed environment → resolved environment: per-mode defaults, references between sections, and the
 * cross-field rules a schema cannot express. Every problem is reported to the collector; nothing throws.
 * The parts: the network, nodes and VIPs (`resolve-network.ts`), each service (`resolve-service.ts`, with
 * its servers, health check and pages), nlb mode (`nlb.ts`), monitoring (`monitoring.ts`) and the site
 * checks (`checks.ts`); here the whole, the ports services share and the boot secrets.
 */
import { checkSiteRules } from "./checks";
import { checkNlbNodes, checkNlbServices, nlbRequested, resolveNlbSettings, resolveNlbVips } from "./nlb";
import { PRESET_REPLACES } from "./presets/agfa-ei";
import { FieldPath, ProblemCollector } from "./locate";
import { resolveMonitoring } from "./monitoring";
import { ADMIN_CONNECTION_RESERVE, CERT_DIR, HA_DEFAULTS, HEALTH_ENDPOINT, ResolvedCertificate, ResolvedEnvironment, ResolvedService, defaultMaxConnections } from "./model";
import { checkNetwork, resolveNodes, resolveVips } from "./resolve-network";
import { checkServerReferences } from "./resolve-servers";
import { ServiceContext, resolveService } from "./resolve-service";
import type { Environment } from "./schema";

/** Resolves a parsed environment; returns undefined when any problem was found (all are reported). */
export function resolveEnvironment(env: Environment, sourceFile: string, out: ProblemCollector): ResolvedEnvironment | undefined {
  const before = out.problems.length;
  checkNetwork(env, out);
  const { nodes, subnets } = resolveNodes(env, out);
  const nlb = nlbRequested(env);
  const nlbSettings = resolveNlbSettings(env, out);
  if (nlb) checkNlbNodes(env, nodes, out);
  const vips = nlb ? resolveNlbVips(env, nodes, out) : resolveVips(env, out);
  const certificates: ResolvedCertificate[] = Object.entries(env.tls?.certificates ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, c]) => ({ name, secretArn: c.secretArn, ...(c.kmsKeyArn ? { kmsKeyArn: c.kmsKeyArn } : {}), path: `${CERT_DIR}/${name}.pem` }));
  checkSecrets(env, out);
  checkSiteRules(env, out);

  const enabled = Object.entries(env.services)
    .filter(([, s]) => s.enabled !== false)
    .sort(([a], [b]) => a.localeCompare(b));
  const serviceNames = new Set(Object.keys(env.services));
  checkServerReferences(env, serviceNames, out);

  const share = Math.max(1, Math.floor((globalMaxConnections(env) - ADMIN_CONNECTION_RESERVE) / Math.max(1, enabled.length)));
  const context: ServiceContext = { env, vips, certificates, maxConnectionsShare: share, sourceFile, out };
  const services = enabled.map(([name, s]) => resolveService(context, name, s));
  checkPortCollisions(env, services, out);
  if (nlb) checkNlbServices(env, vips, services, out);
  const monitoring = resolveMonitoring(env.monitoring, env.region, out);
  if (env.admin.statsPort === HEALTH_ENDPOINT.port) {
    out.add(["admin", "statsPort"], `port ${HEALTH_ENDPOINT.port} is HAProxy's loopback health endpoint (keepalived tracks it); choose another stats port`);
  }
  if (services.length === 0) {
    out.add(["services"], "no enabled service: define at least one service, or use `preset: agfa-ei`", "key");
  }

  if (out.problems.length > before) return undefined;
  const configured = env.loadBalancer.ha;
  const ha = configured
    ? {
        vipMode: configured.vipMode,
        virtualRouterId: configured.virtualRouterId,
        advertIntervalSeconds: configured.advertIntervalSeconds,
        preempt: configured.preempt,
        ...(configured.routeTableIds ? { routeTableIds: configured.routeTableIds } : {}),
        ...(nlbSettings ? { nlb: nlbSettings } : {}),
      }
    : nodes.length === 2
      ? HA_DEFAULTS
      : undefined;
  return {
    name: env.name,
    region: env.region,
    sourceFile,
    network: env.network,
    loadBalancer: {
      instanceType: env.loadBalancer.instanceType,
      os: env.loadBalancer.os,
      amiSsmParameter: env.loadBalancer.amiSsmParameter,
      amiId: env.loadBalancer.amiId,
      image: env.loadBalancer.image,
      imageBuild: env.loadBalancer.imageBuild,
      haproxy: {
        source: env.loadBalancer.haproxy.source,
        // The distribution's LTS series: 2.8 on Ubuntu 24.04 and AL2023, 3.0 on Debian 13.
        version: env.loadBalancer.haproxy.version ?? (env.loadBalancer.haproxy.source === "ppa" || env.loadBalancer.os === "debian-13" ? "3.0" : "2.8"),
      },
      maxConnections: globalMaxConnections(env),
      rootVolumeGiB: env.loadBalancer.rootVolumeGiB,
      hardStopAfter: env.loadBalancer.hardStopAfter,
    },
    nodes,
    ha,
    vips,
    subnets,
    services,
    certificates,
    access: env.access,
    admin: env.admin,
    configStore: { bucket: env.configStore?.bucket, kmsKeyArn: env.configStore?.kmsKeyArn, prefix: env.name, writerArns: env.configStore?.writerArns ?? [] },
    stateBackend: env.stateBackend && {
      bucket: env.stateBackend.bucket,
      key: env.stateBackend.key ?? `imaging-lb/${env.name}.tfstate`,
      region: env.stateBackend.region ?? env.region,
    },
    tags: env.tags ?? {},
    monitoring,
  };
}

/** The global maxconn: the environment's, or sized to the instance type. */
function globalMaxConnections(env: Environment): number {
  return env.loadBalancer.haproxy.maxConnections ?? defaultMaxConnections(env.loadBalancer.instanceType);
}

/** Two services may not listen on the same VIP port; nor may a service use the stats port. */
function checkPortCollisions(env: Environment, services: ResolvedService[], out: ProblemCollector): void {
  const taken = new Map<string, string>();
  const replaced = new Set<string>();
  for (const s of services) {
    const ports: Array<[number, FieldPath]> = [
      ...s.frontendPorts.map((p, i): [number, FieldPath] => [p, ["services", s.name, "frontendPorts", i]]),
      ...(s.tls.redirectHttpPort !== undefined ? [[s.tls.redirectHttpPort, ["services", s.name, "tls", "redirectHttpPort"]] as [number, FieldPath]] : []),
    ];
    for (const [port, path] of ports) {
      const key = `${s.vip.address}:${port}`;
      const other = taken.get(key);
      if (other === s.name) {
        out.add(path, `VIP '${s.vip.name}' port ${port} is already a port of this service; each port once (and a redirect port apart from the TLS ports)`);
      } else if (other && PRESET_REPLACES[s.name] === other) {
        // Two preset services meant as alternatives (xero-xtend replaces xero): one problem, saying which to disable.
        if (!replaced.has(s.name)) {
          replaced.add(s.name);
          out.add(
            ["services", s.name, "enabled"],
            `service '${s.name}' replaces service '${other}' (same VIP '${s.vip.name}' and ports): disable ${other} with services.${other}.enabled: false (under services, write ${other}: { enabled: false })`,
            "key",
          );
        }
      } else if (other) {
        out.add(path, `VIP '${s.vip.name}' port ${port} is already used by service '${other}'; use another port or VIP`);
      } else {
        taken.set(key, s.name);
      }
      if (port === env.admin.statsPort) {
        out.add(path, `port ${port} is the stats port (admin.statsPort); use another port or change admin.statsPort`);
      }
    }
  }
}

/** The partition (2nd) and region (4th) fields of an ARN. */
const arnPartition = (arn: string) => arn.split(":")[1];
const arnRegion = (arn: string) => arn.split(":")[3];

/**
 * The boot secrets and their KMS keys, as the nodes will use them: each secret in the environment's region
 * (the bootstrap fetches it through that region's Secrets Manager endpoint), each customer managed key in
 * its secret's region and partition (Secrets Manager encrypts only with keys of its own region). Either
 * mistake would otherwise surface only at boot, as an error the plan does not show.
 */
function checkSecrets(env: Environment, out: ProblemCollector): void {
  const secrets: Array<{ arnPath: FieldPath; arn: string; keyPath: FieldPath; key?: string }> = [
    ...Object.entries(env.tls?.certificates ?? {}).map(([name, c]) => ({
      arnPath: ["tls", "certificates", name, "secretArn"],
      arn: c.secretArn,
      keyPath: ["tls", "certificates", name, "kmsKeyArn"],
      key: c.kmsKeyArn,
    })),
    { arnPath: ["admin", "statsPasswordSecretArn"], arn: env.admin.statsPasswordSecretArn, keyPath: ["admin", "statsPasswordKmsKeyArn"], key: env.admin.statsPasswordKmsKeyArn },
  ];
  for (const { arnPath, arn, keyPath, key } of secrets) {
    if (arnRegion(arn) !== env.region) {
      out.add(arnPath, `expected a secret in the environment's region ${env.region} (the nodes fetch it through that region's Secrets Manager), got ${JSON.stringify(arn)}`);
    }
    if (key !== undefined && (arnRegion(key) !== arnRegion(arn) || arnPartition(key) !== arnPartition(arn))) {
      out.add(keyPath, `expected a key in the secret's region ${arnRegion(arn)} (Secrets Manager encrypts only with keys of its own region), got ${JSON.stringify(key)}`);
    }
  }
}
