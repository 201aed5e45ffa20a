/**
 * Site rules checked at the field, after the schema: availability zones of the environment's region, a
 * node's two ENIs in one zone, CIDR blocks written as network addresses, real servers that are not the
 * load balancer itself and that a created VPC can reach, and every
 * rule of the synth-time guardrails (lib/constructs/guardrails.ts) that the file alone decides. The
 * guardrails stay as a second line of defence; these say the same thing earlier, with file:line.
 * Pure: imports nothing from cdktf.
 */
import { FieldPath, ProblemCollector } from "./locate";
import { PEERS_PORT } from "./model";
import { cidrContains, isNetworkAddress, numberToIp, parseCidr } from "./net";
import type { Environment } from "./schema";

/** SSH: the guardrails reject ingress on it from any source (the nodes are reached with SSM). */
const SSH_PORT = 22;
/** Sources the guardrails count as "the internet". */
const WORLD = "0.0.0.0/0";
/** The guardrails' private-key pattern: such material belongs in Secrets Manager, never in the file. */
const PRIVATE_KEY_RE = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/;

/** Reports every site rule broken by `env` to `out`. */
export function checkSiteRules(env: Environment, out: ProblemCollector): void {
  checkAvailabilityZones(env, out);
  checkNodeZones(env, out);
  checkCidrHostBits(env, out);
  checkServerAddresses(env, out);
  checkServerReach(env, out);
  checkGuardrailRules(env, out);
}

type SubnetLike = { readonly availabilityZone: string } | undefined;

function checkAvailabilityZones(env: Environment, out: ProblemCollector): void {
  const net = env.network;
  const subnets: Array<[FieldPath, SubnetLike]> =
    net.layout === "two-arm"
      ? [[["network", "internal"], net.internal], [["network", "external"], net.external]]
      : [[["network", "subnet"], net.subnet]];
  subnets.push([["network", "natSubnet"], net.natSubnet]);
  for (const [name, node] of Object.entries(env.loadBalancer.nodes)) {
    subnets.push([["loadBalancer", "nodes", name, "internalSubnet"], node.internalSubnet]);
    subnets.push([["loadBalancer", "nodes", name, "externalSubnet"], node.externalSubnet]);
  }
  for (const [path, subnet] of subnets) {
    if (!subnet) continue;
    const az = subnet.availabilityZone;
    if (az.slice(0, -1) !== env.region) {
      out.add(
        [...path, "availabilityZone"],
        `expected an availability zone of the environment's region ${env.region} (such as ${env.region}a or ${env.region}b), got "${az}" (region ${az.slice(0, -1)})`,
      );
    }
  }
}

type NodeSubnet = { readonly cidr: string; readonly availabilityZone: string };

/**
 * A two-arm node's eth0 and eth1 in one availability zone: EC2 attaches an ENI only to an instance in the
 * ENI's zone, so a node whose external subnet is in another zone fails half-way through the apply (the
 * instance exists, the attachment is refused). Reported once per place: where the node's external
 * subnet comes from (its own `externalSubnet`, else `network.external`), or its own `internalSubnet`.
 */
function checkNodeZones(env: Environment, out: ProblemCollector): void {
  const net = env.network;
  if (net.layout !== "two-arm") return;
  const reported = new Set<string>();
  for (const [name, node] of Object.entries(env.loadBalancer.nodes)) {
    const internal: [FieldPath, NodeSubnet] = node.internalSubnet
      ? [["loadBalancer", "nodes", name, "internalSubnet"], node.internalSubnet]
      : [["network", "internal"], net.internal];
    const external: [FieldPath, NodeSubnet] = node.externalSubnet
      ? [["loadBalancer", "nodes", name, "externalSubnet"], node.externalSubnet]
      : [["network", "external"], net.external];
    if (internal[1].availabilityZone === external[1].availabilityZone) continue;
    // Point at the subnet the node itself names, or at network.external when both are the layout's.
    const [at, other] = node.externalSubnet || !node.internalSubnet ? [external, internal] : [internal, external];
    const key = at[0].join(".");
    if (reported.has(key)) continue;
    reported.add(key);
    out.add(
      [...at[0], "availabilityZone"],
      `expected ${other[1].availabilityZone}, the availability zone of ${other[0].join(".")} (node ${name}'s ${other === internal ? "eth0" : "eth1"}), got "${at[1].availabilityZone}": a node's eth0 and eth1 must be in one zone, as EC2 attaches an ENI only to an instance in its zone (the apply would stop half-way); put both subnets in one zone (a pair across zones: ha.vipMode route-table or nlb, each node with internalSubnet and externalSubnet of its own zone)`,
    );
  }
}

/**
 * Real servers (and sorry servers) that a VPC created by the stack can reach: inside `network.vpcCidr`
 * (its only other route is the internet, through the NAT gateway), not in the NAT subnet (public, it holds
 * the NAT gateway only) and, in two-arm, not in the client-side subnet when the service connects from
 * eth0. An adopted VPC's routes (VPN, Transit Gateway, peering) are not known here: nothing is checked.
 */
function checkServerReach(env: Environment, out: ProblemCollector): void {
  const net = env.network;
  if (net.vpcId || !net.vpcCidr) return;
  const vpcCidr = net.vpcCidr;
  const eth0 = net.layout === "two-arm" ? `the internal subnet ${net.internal.cidr}` : `the load balancer subnet ${net.subnet.cidr}`;
  const clientSideAddresses = new Set([
    ...Object.values(env.vips).flatMap((v) => [v.address, ...Object.values(v.nlb ?? {}).flatMap((z) => [z.address, z.target])]).filter((a): a is string => a !== undefined),
    ...Object.values(env.loadBalancer.nodes).flatMap((n) => (n.externalAddress ? [n.externalAddress] : [])),
  ]);
  /** True when `service` opens its server connections from the client side (clientAddress source from a VIP or eth1 address). */
  const fromClientSide = (service: Environment["services"][string]) =>
    service.clientAddress === "source" && (service.sourceAddress === "vip" || (service.sourceAddress !== undefined && clientSideAddresses.has(service.sourceAddress)));
  const enabled = Object.entries(env.services).filter(([, s]) => s.enabled !== false);
  const check = (path: FieldPath, address: string, what: string, services: ReadonlyArray<Environment["services"][string]>) => {
    if (!cidrContains(vpcCidr, address)) {
      out.add(
        path,
        `expected ${what} inside network.vpcCidr ${vpcCidr}, got "${address}": a VPC created by the stack routes only its own CIDR (and the internet through the NAT gateway), so the load balancer could not reach it; put it in ${eth0} or elsewhere in ${vpcCidr}, or adopt a VPC that routes to it (network.vpcId)`,
      );
    } else if (net.natSubnet && cidrContains(net.natSubnet.cidr, address)) {
      out.add(
        path,
        `"${address}" is in network.natSubnet ${net.natSubnet.cidr}, the public subnet that holds only the NAT gateway; expected ${what} in ${eth0} or elsewhere in ${vpcCidr}`,
      );
    } else if (net.layout === "two-arm" && cidrContains(net.external.cidr, address) && !cidrContains(net.internal.cidr, address) && services.some((s) => !fromClientSide(s))) {
      out.add(
        path,
        `"${address}" is in the client-side subnet network.external ${net.external.cidr}: two-arm load balancers reach servers from eth0, in ${eth0}; expected ${what} there or elsewhere in ${vpcCidr} outside the client-side and NAT subnets`,
      );
    }
  };
  for (const [name, server] of Object.entries(env.servers)) {
    const serves = enabled.filter(([svc]) => !server.services || svc in server.services).map(([, s]) => s);
    check(["servers", name, "address"], server.address, "a real server", serves);
  }
  for (const [name, s] of enabled) {
    if (s.sorryServer) check(["services", name, "sorryServer", "address"], s.sorryServer.address, "a sorry server", [s]);
  }
}

/** The network address of a CIDR block written with host bits (10.1.2.3/8 → 10.0.0.0/8). */
const networkOf = (cidr: string) => `${numberToIp(parseCidr(cidr).base)}/${parseCidr(cidr).prefix}`;

function checkCidrHostBits(env: Environment, out: ProblemCollector): void {
  const lists: Array<[FieldPath, readonly string[] | undefined]> = [
    [["access", "clientCidrs"], env.access.clientCidrs],
    [["access", "adminCidrs"], env.access.adminCidrs],
    ...Object.entries(env.services).map(([name, s]): [FieldPath, readonly string[] | undefined] => [["services", name, "clientCidrs"], s.clientCidrs]),
  ];
  for (const [path, cidrs] of lists) {
    for (const [i, cidr] of (cidrs ?? []).entries()) {
      if (!isNetworkAddress(cidr)) {
        out.add(
          [...path, i],
          `expected a network address (host bits zero), got "${cidr}": did you mean ${networkOf(cidr)} (the whole network) or ${cidr.split("/")[0]}/32 (that one host)?`,
        );
      }
    }
  }
}

function checkServerAddresses(env: Environment, out: ProblemCollector): void {
  const own = new Map<string, string>();
  for (const [name, node] of Object.entries(env.loadBalancer.nodes)) {
    own.set(node.internalAddress, `load balancer node '${name}' (loadBalancer.nodes.${name}.internalAddress)`);
    if (node.externalAddress) own.set(node.externalAddress, `load balancer node '${name}' (loadBalancer.nodes.${name}.externalAddress)`);
  }
  for (const [name, vip] of Object.entries(env.vips)) {
    if (vip.address !== undefined) own.set(vip.address, `VIP '${name}' (vips.${name}.address)`);
    for (const [node, zone] of Object.entries(vip.nlb ?? {})) {
      own.set(zone.address, `the NLB of VIP '${name}' (vips.${name}.nlb.${node}.address)`);
      own.set(zone.target, `VIP '${name}' on node '${node}' (vips.${name}.nlb.${node}.target)`);
    }
  }
  const check = (path: FieldPath, address: string, what: string) => {
    const whose = own.get(address);
    if (whose) out.add(path, `"${address}" is the address of ${whose}: ${what} must be another machine, or the load balancer would send the traffic to itself`);
  };
  for (const [name, server] of Object.entries(env.servers)) check(["servers", name, "address"], server.address, "a real server");
  for (const [name, s] of Object.entries(env.services)) {
    if (s.sorryServer) check(["services", name, "sorryServer", "address"], s.sorryServer.address, "a sorry server");
  }
}

/** The guardrails' ingress rules (ssh-ingress, admin-port-open-to-internet) and private keys in user data. */
function checkGuardrailRules(env: Environment, out: ProblemCollector): void {
  const pair = Object.keys(env.loadBalancer.nodes).length >= 2; // a pair, or three nodes behind NLBs: the peers port is open between them
  if (env.admin.statsPort === SSH_PORT) {
    out.add(["admin", "statsPort"], "port 22 would open SSH on the load balancers, which the guardrails reject (the nodes are reached with SSM Session Manager); use the default 8404 or another port");
  }
  for (const [i, cidr] of env.access.adminCidrs.entries()) {
    if (cidr === WORLD) {
      out.add(["access", "adminCidrs", i], `"${WORLD}" would open the stats page and metrics (port ${env.admin.statsPort}) to the internet, which the guardrails reject; list your admin networks`);
    }
  }
  for (const [name, s] of Object.entries(env.services)) {
    if (s.enabled === false) continue;
    const ports: Array<[FieldPath, number]> = [
      ...(s.frontendPorts ?? []).map((p, i): [FieldPath, number] => [["services", name, "frontendPorts", i], p]),
      ...(s.tls?.redirectHttpPort !== undefined ? [[["services", name, "tls", "redirectHttpPort"], s.tls.redirectHttpPort] as [FieldPath, number]] : []),
    ];
    const world = (s.clientCidrs ?? env.access.clientCidrs).includes(WORLD);
    for (const [path, port] of ports) {
      if (port === SSH_PORT) {
        out.add(path, "port 22 would open SSH on the load balancers, which the guardrails reject (the nodes are reached with SSM Session Manager); use another port");
      } else if (pair && port === PEERS_PORT && world) {
        out.add(path, `port ${PEERS_PORT} is the HAProxy peers port of the pair; open to ${WORLD} (${s.clientCidrs ? "clientCidrs" : "access.clientCidrs"}) the guardrails reject it; use another port`);
      }
    }
  }
  walkStrings(env, [], (path, value) => {
    if (PRIVATE_KEY_RE.test(value)) {
      out.add(path, "private-key material (-----BEGIN ... PRIVATE KEY-----) does not belong in the environment file (it would reach the user data and Terraform state); keep the PEM in Secrets Manager and reference it in tls.certificates");
    }
  });
}

function walkStrings(value: unknown, path: Array<string | number>, visit: (path: FieldPath, value: string) => void): void {
  if (typeof value === "string") visit(path, value);
  else if (Array.isArray(value)) value.forEach((v, i) => walkStrings(v, [...path, i], visit));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) walkStrings(v, [...path, k], visit);
}
