/**
 * Parsed environment → resolved environment: per-mode defaults, references between sections, and the
 * cross-field rules a schema cannot express. Every problem is reported to the collector; nothing throws.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { checkSiteRules } from "./checks";
import { aeTitleProblem } from "./dicom-ae-title";
import { DEFAULT_MAINTENANCE_HTML, DEFAULT_RETRY_AFTER_SECONDS, ERROR_PAGE_MAX_BYTES, errorResponse, maintenanceResponseBytes } from "./page-responses";
import { checkNlbNodes, checkNlbServices, nlbRequested, resolveNlbSettings, resolveNlbVips } from "./nlb";
import { PRESET_REPLACES } from "./presets/agfa-ei";
import { FieldPath, ProblemCollector } from "./locate";
import { resolveMonitoring } from "./monitoring";
import {
  ADMIN_CONNECTION_RESERVE,
  CERT_DIR,
  HA_DEFAULTS,
  HEALTH_ENDPOINT,
  ResolvedCertificate,
  ResolvedEnvironment,
  ResolvedErrorPage,
  ResolvedHeaderRules,
  ResolvedMember,
  ResolvedNode,
  ResolvedService,
  ResolvedSubnet,
  ResolvedVip,
  clientSideCidr,
  defaultMaxConnections,
} from "./model";
import { cidrContains, cidrWithin, cidrsOverlap, durationMs, isAwsReserved, isNetworkAddress } from "./net";
import type { Environment, HeaderRules, Page, Service } from "./schema";

const DICOM_DEFAULT_CALLED_AE = "ANY-SCP";

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
  const services = enabled.map(([name, s]) => resolveService(env, name, s, vips, certificates, share, out, sourceFile));
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

type SubnetInput = { readonly cidr: string; readonly availabilityZone: string; readonly subnetId?: string };

/** Rules every subnet follows, whether the layout's or a node's own. */
function checkSubnet(env: Environment, path: FieldPath, subnet: SubnetInput, out: ProblemCollector): void {
  const net = env.network;
  if (!isNetworkAddress(subnet.cidr)) {
    out.add([...path, "cidr"], `expected a network address (host bits zero), got "${subnet.cidr}"`);
  }
  if (net.vpcCidr && !cidrWithin(subnet.cidr, net.vpcCidr)) {
    out.add([...path, "cidr"], `expected a subnet inside the VPC CIDR ${net.vpcCidr}, got "${subnet.cidr}"`);
  }
  if (subnet.subnetId && !net.vpcId) {
    out.add([...path, "subnetId"], "an adopted subnet needs network.vpcId (the VPC it belongs to)");
  }
  if (net.vpcId && !subnet.subnetId) {
    out.add(path, "missing subnetId: in an adopted VPC (network.vpcId) every subnet is adopted by id", "key");
  }
}

function checkNetwork(env: Environment, out: ProblemCollector): void {
  const net = env.network;
  if (!net.vpcId && !net.vpcCidr) {
    out.add(["network"], "missing vpcCidr: a new VPC needs its CIDR block (or set vpcId to adopt an existing VPC)", "key");
  }
  if (net.vpcCidr && !isNetworkAddress(net.vpcCidr)) {
    out.add(["network", "vpcCidr"], `expected a network address (host bits zero), got "${net.vpcCidr}"`);
  }
  const subnets: Array<[string, SubnetInput]> =
    net.layout === "two-arm" ? [["internal", net.internal], ["external", net.external]] : [["subnet", net.subnet]];
  for (const [key, subnet] of subnets) checkSubnet(env, ["network", key], subnet, out);
  if (net.vpcId && net.natSubnet) {
    out.add(["network", "natSubnet"], "only for a created VPC: an adopted VPC (vpcId) brings its own egress (NAT, proxy or endpoints)", "key");
  } else if (!net.vpcId && !net.natSubnet) {
    out.add(["network"], "missing natSubnet: a created VPC needs a public subnet for a NAT gateway, or the nodes cannot install HAProxy at boot (or adopt your VPC with vpcId)", "key");
  } else if (net.natSubnet) {
    if (!isNetworkAddress(net.natSubnet.cidr)) out.add(["network", "natSubnet", "cidr"], `expected a network address (host bits zero), got "${net.natSubnet.cidr}"`);
    if (net.vpcCidr && !cidrWithin(net.natSubnet.cidr, net.vpcCidr)) {
      out.add(["network", "natSubnet", "cidr"], `expected a subnet inside the VPC CIDR ${net.vpcCidr}, got "${net.natSubnet.cidr}"`);
    }
    if (net.natSubnet.subnetId) out.add(["network", "natSubnet", "subnetId"], "the NAT subnet of a created VPC is created too; remove subnetId", "key");
    for (const [key, subnet] of subnets) {
      if (cidrsOverlap(subnet.cidr, net.natSubnet.cidr)) out.add(["network", "natSubnet", "cidr"], `expected a subnet not overlapping ${key} ${subnet.cidr}, got "${net.natSubnet.cidr}"`);
    }
  }
  if (env.loadBalancer.ha?.vipMode === "route-table" && !net.vpcId) {
    out.add(["loadBalancer", "ha", "vipMode"], "route-table needs an adopted VPC (network.vpcId): its ha.routeTableIds are the clients' route tables, which exist before this stack");
  }
  if (net.layout === "one-arm" && !net.vpcId) {
    for (const [name, vip] of Object.entries(env.vips)) {
      if (vip.elasticIp) {
        out.add(["vips", name, "elasticIp"], "an Elastic IP in a one-arm created VPC would make the only subnet public, and the nodes could no longer reach package mirrors through the NAT; use layout two-arm (public external subnet) or adopt your VPC");
      }
    }
  }
  if (Object.keys(env.loadBalancer.nodes).length === 2 && env.loadBalancer.ha?.vipMode !== "nlb") {
    for (const [name, vip] of Object.entries(env.vips)) {
      if (vip.elasticIp && env.loadBalancer.ha?.vipMode !== "elastic-ip") {
        out.add(["vips", name, "elasticIp"], `in an HA pair an Elastic IP moves only with ha.vipMode elastic-ip (now ${env.loadBalancer.ha?.vipMode ?? "secondary-ip"})`);
      }
    }
  }
  if (net.layout === "two-arm" && cidrsOverlap(net.internal.cidr, net.external.cidr)) {
    const same = net.internal.cidr === net.external.cidr;
    out.add(
      ["network", "external", "cidr"],
      `expected a subnet ${same ? "different from" : "not overlapping"} the internal subnet ${net.internal.cidr}, got "${net.external.cidr}": two-arm needs two separate subnets`,
    );
  }
}

function resolveNodes(env: Environment, out: ProblemCollector): { nodes: ResolvedNode[]; subnets: ResolvedSubnet[] } {
  const net = env.network;
  const entries = Object.entries(env.loadBalancer.nodes).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length < 1 || entries.length > 2) {
    out.add(["loadBalancer", "nodes"], `expected 1 node (single load balancer) or 2 (HA pair), got ${entries.length}`);
  }
  const ha = env.loadBalancer.ha;
  if (ha && entries.length !== 2) {
    out.add(["loadBalancer", "ha"], "HA settings need exactly 2 nodes in loadBalancer.nodes", "key");
  }
  if (ha?.vipMode === "route-table" && !ha.routeTableIds?.length) {
    out.add(["loadBalancer", "ha"], "missing routeTableIds: in vipMode route-table the takeover script points these route tables' VIP routes at the active node", "key");
  }
  if (ha?.routeTableIds && ha.vipMode !== "route-table") {
    out.add(["loadBalancer", "ha", "routeTableIds"], `only used with vipMode route-table, not ${ha.vipMode}`, "key");
  }
  const layoutInternal: ResolvedSubnet = net.layout === "two-arm" ? { key: "internal", ...net.internal } : { key: "subnet", ...net.subnet };
  const layoutExternal: ResolvedSubnet | undefined = net.layout === "two-arm" ? { key: "external", ...net.external } : undefined;
  const subnets = new Map<string, ResolvedSubnet>([[layoutInternal.key, layoutInternal]]);
  if (layoutExternal) subnets.set(layoutExternal.key, layoutExternal);

  const seen = new Map<string, string>();
  const checkAddress = (path: FieldPath, address: string, cidr: string, side: string) => {
    if (!cidrContains(cidr, address)) {
      out.add(path, `expected an address in the ${side} subnet ${cidr}, got "${address}"`);
    } else if (isAwsReserved(cidr, address)) {
      out.add(path, `"${address}" is reserved by AWS (the first four and the last address of ${cidr}); choose another`);
    }
    const other = seen.get(address);
    if (other) out.add(path, `"${address}" is already used by ${other}`);
    seen.set(address, path.join("."));
  };
  const nodes = entries.map(([name, node], i): ResolvedNode => {
    const base: FieldPath = ["loadBalancer", "nodes", name];
    const own = (field: "internalSubnet" | "externalSubnet", fallback: ResolvedSubnet | undefined): ResolvedSubnet | undefined => {
      const subnet = node[field];
      if (!subnet) return fallback;
      if (ha?.vipMode !== "route-table" && ha?.vipMode !== "nlb") {
        out.add([...base, field], "a node's own subnet (a pair across availability zones) needs ha.vipMode route-table or nlb: secondary-ip and elastic-ip move an address within one subnet", "key");
      }
      if (field === "externalSubnet" && net.layout === "one-arm") {
        out.add([...base, field], "one-arm nodes have a single interface (eth0): use internalSubnet", "key");
      }
      checkSubnet(env, [...base, field], subnet, out);
      const resolved = { key: `${name}-${field === "internalSubnet" ? "internal" : "external"}`, ...subnet };
      for (const other of subnets.values()) {
        if (cidrsOverlap(other.cidr, subnet.cidr)) out.add([...base, field, "cidr"], `expected a subnet not overlapping subnet '${other.key}' ${other.cidr}, got "${subnet.cidr}"`);
      }
      subnets.set(resolved.key, resolved);
      return resolved;
    };
    const internalSubnet = own("internalSubnet", layoutInternal)!;
    const externalSubnet = own("externalSubnet", layoutExternal);
    checkAddress([...base, "internalAddress"], node.internalAddress, internalSubnet.cidr, net.layout === "two-arm" ? "internal" : "load balancer");
    if (net.layout === "two-arm") {
      if (!node.externalAddress) out.add(base, "missing externalAddress: two-arm nodes need an eth1 address in the external subnet", "key");
      else checkAddress([...base, "externalAddress"], node.externalAddress, externalSubnet!.cidr, "external");
    } else if (node.externalAddress) {
      out.add([...base, "externalAddress"], "one-arm nodes have a single interface (eth0): remove externalAddress or use layout two-arm", "key");
    }
    return { name, role: i === 0 ? "primary" : "secondary", internalAddress: node.internalAddress, internalSubnet, externalAddress: node.externalAddress, externalSubnet, generation: node.generation };
  });
  return { nodes, subnets: [...subnets.values()] };
}

function resolveVips(env: Environment, out: ProblemCollector): ResolvedVip[] {
  const cidr = clientSideCidr(env.network);
  const routeTable = env.loadBalancer.ha?.vipMode === "route-table";
  const nodeAddresses = new Set(Object.values(env.loadBalancer.nodes).flatMap((n) => [n.internalAddress, n.externalAddress]));
  const seen = new Map<string, string>();
  const entries = Object.entries(env.vips).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) out.add(["vips"], "expected at least one VIP");
  return entries.map(([name, vip]) => {
    const path: FieldPath = ["vips", name, "address"];
    if (vip.nlb) out.add(["vips", name, "nlb"], `only used with ha.vipMode nlb, not ${env.loadBalancer.ha?.vipMode ?? (Object.keys(env.loadBalancer.nodes).length === 2 ? "secondary-ip" : "a single load balancer")}`, "key");
    if (vip.address === undefined) {
      out.add(path, "missing required field: expected an IPv4 address such as 10.20.1.10 (the VIP's address; only ha.vipMode nlb gives addresses per node instead)");
      return { name, address: "0.0.0.0", elasticIp: vip.elasticIp, elasticIpAllocationId: vip.elasticIpAllocationId };
    }
    if (routeTable) {
      if (env.network.vpcCidr && cidrContains(env.network.vpcCidr, vip.address)) {
        out.add(path, `route-table VIPs must lie outside the VPC CIDR ${env.network.vpcCidr}, got "${vip.address}"`);
      }
    } else if (!cidrContains(cidr, vip.address)) {
      out.add(path, `expected an address in the client-side subnet ${cidr}, got "${vip.address}"`);
    } else if (isAwsReserved(cidr, vip.address)) {
      out.add(path, `"${vip.address}" is reserved by AWS (the first four and the last address of ${cidr}); choose another`);
    }
    if (nodeAddresses.has(vip.address)) out.add(path, `"${vip.address}" is a node's own address; a VIP needs an address of its own`);
    const other = seen.get(vip.address);
    if (other) out.add(path, `"${vip.address}" is already VIP '${other}'`);
    seen.set(vip.address, name);
    if (vip.elasticIpAllocationId && !vip.elasticIp) {
      out.add(["vips", name, "elasticIpAllocationId"], "an Elastic IP allocation needs elasticIp: true", "key");
    }
    if (env.loadBalancer.ha?.vipMode === "elastic-ip" && !(vip.elasticIp && vip.elasticIpAllocationId)) {
      out.add(["vips", name], "in ha.vipMode elastic-ip every VIP moves as an existing Elastic IP: set elasticIp: true and elasticIpAllocationId (or use vipMode secondary-ip)", "key");
    }
    return { name, address: vip.address, elasticIp: vip.elasticIp, elasticIpAllocationId: vip.elasticIpAllocationId };
  });
}

function checkServerReferences(env: Environment, serviceNames: Set<string>, out: ProblemCollector): void {
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

function resolveService(
  env: Environment,
  name: string,
  s: Service,
  vips: ResolvedVip[],
  certificates: ResolvedCertificate[],
  maxConnectionsShare: number,
  out: ProblemCollector,
  sourceFile: string,
): ResolvedService {
  const at = (...rest: Array<string | number>): FieldPath => ["services", name, ...rest];
  const mode = s.mode ?? "tcp";
  const http = mode === "http";

  // VIP
  let vip = vips.find((v) => v.name === s.vip);
  if (s.vip === undefined) {
    if (vips.length === 1) vip = vips[0];
    else out.add(at(), `missing vip: there are ${vips.length} VIPs (${vips.map((v) => v.name).join(", ")}); name one`, "key");
  } else if (!vip) {
    out.add(at("vip"), `VIP '${s.vip}' is not defined in vips (defined: ${vips.map((v) => v.name).join(", ") || "none"})`);
  }
  vip ??= { name: s.vip ?? "?", address: "0.0.0.0", elasticIp: false };

  if (!s.frontendPorts) out.add(at(), "missing frontendPorts: the ports the VIP listens on for this service", "key");
  const frontendPorts = [...(s.frontendPorts ?? [])];

  // TLS
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

  // HTTP-only features
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
  const persistenceType = s.persistence?.type ?? "none";
  if (!http && (persistenceType === "cookie" || persistenceType === "cookie-source" || persistenceType === "app-cookie")) {
    out.add(at("persistence", "type"), `cookie persistence needs mode http; use source-ip in mode tcp, got "${persistenceType}"`);
  }

  // Client address
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

  // Servers
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

  // Routes
  const serverNames = new Set(Object.keys(env.servers));
  const routes = Object.entries(s.routes ?? {})
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

  // Health check
  const hc = s.healthCheck;
  const checkType = hc?.type ?? (http ? "http" : "tcp");
  // Servers on the client's port, no check port given: a tcp or DICOM check covers every front-end port.
  const multiPort =
    hc?.port === undefined && s.backendPort === undefined && frontendPorts.length > 1 && serviceMembers.every((m) => m.port === undefined);
  const checkPorts = multiPort && (checkType === "tcp" || checkType === "dicom-echo") ? frontendPorts : [];
  const checkPort =
    checkPorts.length > 0 ? undefined : (hc?.port ?? s.backendPort ?? (serviceMembers.some((m) => m.port === undefined) ? frontendPorts[0] : undefined));
  const callingAe = hc?.callingAeTitle ?? "LBHEALTH";
  let calledAeTitle: string | undefined;
  if (checkType === "dicom-echo") {
    if (mode !== "tcp") out.add(at("healthCheck", "type"), "dicom-echo checks need mode tcp");
    const titles = [...new Set(serviceMembers.map((m) => m.aeTitle).filter((t): t is string => t !== undefined))];
    if (hc?.calledAeTitle === undefined && titles.length > 1) {
      out.add(at("healthCheck"), `missing calledAeTitle: this service's servers have different AE titles (${titles.join(", ")}) and a DICOM check is one per service; name the one to call`, "key");
    }
    calledAeTitle = hc?.calledAeTitle ?? (titles.length === 1 && serviceMembers.every((m) => m.aeTitle) ? titles[0] : DICOM_DEFAULT_CALLED_AE);
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

  // Timeouts: per-mode defaults (inferred, see the domain reference)
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

  return {
    name,
    description: s.description,
    vip,
    frontendPorts,
    backendPort: s.backendPort,
    mode,
    balance,
    persistence: {
      type: persistenceType,
      timeout: s.persistence?.timeout ?? "60m",
      cookieName: s.persistence?.cookieName ?? (persistenceType === "app-cookie" ? "JSESSIONID" : "SERVERID"),
    },
    healthCheck: {
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
    },
    timeouts,
    tls: {
      mode: tlsMode,
      certificate,
      hsts: s.tls?.hsts ?? false,
      redirectHttpPort: s.tls?.redirectHttpPort,
      verifyServer: s.tls?.verifyServer ?? "required",
      serverName: s.tls?.serverName,
      caCertificate,
      profile: s.tls?.profile ?? "intermediate",
    },
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
    maxConnections: s.maxConnections ?? maxConnectionsShare,
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
    members: resolvedMembers,
    extraDirectives: { frontend: s.extraDirectives?.frontend ?? [], backend: s.extraDirectives?.backend ?? [] },
  };
}

/**
 * A page's HTML: inline, or read from a file relative to the environment file's folder. Reports a missing
 * or unreadable file, both or neither of file/html, and text that is not UTF-8.
 */
function readPage(page: Page, at: FieldPath, sourceFile: string, out: ProblemCollector): string | undefined {
  if ((page.file === undefined) === (page.html === undefined)) {
    out.add(at, `expected exactly one of file (an HTML file, relative to the environment file) or html (the page inline), got ${page.file === undefined ? "neither" : "both"}`, "key");
    return undefined;
  }
  if (page.html !== undefined) return page.html;
  const file = page.file as string;
  const path = isAbsolute(file) ? file : join(dirname(sourceFile), file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, expected an HTML file" : `cannot be read (${code ?? String(e)})`;
    out.add([...at, "file"], `"${file}" (${path}): ${why}; expected an HTML file, relative to the environment file's folder`);
    return undefined;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    out.add([...at, "file"], `"${file}" is not UTF-8 text; expected an HTML file saved as UTF-8`);
    return undefined;
  }
}

function resolveErrorPages(s: Service, at: (...rest: Array<string | number>) => FieldPath, sourceFile: string, out: ProblemCollector): ResolvedErrorPage[] {
  const pages: ResolvedErrorPage[] = [];
  for (const [code, page] of Object.entries(s.errorPages ?? {})) {
    if (!page) continue;
    const html = readPage(page, at("errorPages", code), sourceFile, out);
    if (html === undefined) continue;
    const status = Number(code);
    const bytes = Buffer.byteLength(errorResponse(status, html), "utf8");
    if (bytes > ERROR_PAGE_MAX_BYTES) {
      out.add(at("errorPages", code), `the ${status} response would be ${bytes} bytes (page and headers); HAProxy serves at most ${ERROR_PAGE_MAX_BYTES} from a file: make the page smaller (inline CSS, no images)`, "key");
      continue;
    }
    pages.push({ status, html });
  }
  return pages.sort((a, b) => a.status - b.status);
}

function resolveMaintenance(
  m: NonNullable<Service["maintenance"]>,
  at: (...rest: Array<string | number>) => FieldPath,
  sourceFile: string,
  out: ProblemCollector,
): ResolvedService["maintenance"] {
  const html = m.page ? readPage(m.page, at("maintenance", "page"), sourceFile, out) : DEFAULT_MAINTENANCE_HTML;
  const retryAfterSeconds = m.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
  if (html === undefined) return undefined;
  const bytes = maintenanceResponseBytes(html, retryAfterSeconds);
  if (bytes > ERROR_PAGE_MAX_BYTES) {
    out.add(at("maintenance", "page"), `the maintenance response would be ${bytes} bytes (page and headers); HAProxy serves at most ${ERROR_PAGE_MAX_BYTES} from a file: make the page smaller (inline CSS, no images)`, "key");
    return undefined;
  }
  return { enabled: m.enabled, html, allowedSources: m.allowedSources ?? [], retryAfterSeconds };
}

/** The global maxconn: the environment's, or sized to the instance type. */
function globalMaxConnections(env: Environment): number {
  return env.loadBalancer.haproxy.maxConnections ?? defaultMaxConnections(env.loadBalancer.instanceType);
}

/** The shorter of two HAProxy durations. */
function shorter(a: string, b: string): string {
  return durationMs(a) <= durationMs(b) ? a : b;
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
