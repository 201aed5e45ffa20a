/**
 * The network, the nodes and the VIPs of a parsed environment (VRRP, route-table and elastic-ip modes;
 * nlb's VIPs are in `nlb.ts`): subnets inside the VPC and apart, addresses inside their subnets, neither
 * reserved by AWS nor used twice. Every problem is reported to the collector.
 */
import { FieldPath, ProblemCollector } from "./locate";
import { ResolvedNode, ResolvedSubnet, ResolvedVip, clientSideCidr } from "./model";
import { MAX_NLB_NODES } from "./nlb-limits";
import { cidrContains, cidrWithin, cidrsOverlap, isAwsReserved, isNetworkAddress } from "./net";
import type { Environment } from "./schema";

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

/** The network block: a created or adopted VPC, its subnets, its NAT subnet and what the layout allows. */
/** loadBalancer.image baked: a pinned image; network.awsApiCidrs only where there is no internet path. */
function checkBakedImage(env: Environment, out: ProblemCollector): void {
  const net = env.network;
  const baked = env.loadBalancer.image === "baked";
  if (baked && !env.loadBalancer.amiId) {
    out.add(["loadBalancer", "image"], "baked needs loadBalancer.amiId: the id of the image imaging-lb's recipe built (docs/baked-image.md); a stock image comes from the OS's SSM parameter instead", "value");
  }
  if (net.awsApiCidrs && (!baked || net.natSubnet)) {
    out.add(["network", "awsApiCidrs"], `only for loadBalancer.image baked without a NAT gateway: ${baked ? "with network.natSubnet" : "a stock image installs packages from the internet, so"} the nodes' HTTPS egress is 0.0.0.0/0; remove awsApiCidrs`, "key");
  }
  if (baked && net.vpcId && !net.vpcCidr && !net.awsApiCidrs) {
    out.add(["network"], "missing vpcCidr (or awsApiCidrs): a baked image's nodes send HTTPS only to the AWS APIs' interface endpoints, by default in the adopted VPC's CIDR block, which the file must then name", "key");
  }
}

export function checkNetwork(env: Environment, out: ProblemCollector): void {
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
  } else if (!net.vpcId && !net.natSubnet && env.loadBalancer.image === "stock") {
    out.add(
      ["network"],
      "missing natSubnet: with loadBalancer.image stock each node installs HAProxy from the OS's package mirror at first boot, so a created VPC needs a public subnet for a NAT gateway; or bake an image (loadBalancer.image baked, docs/baked-image.md) and the VPC needs no internet path; or adopt your VPC with vpcId",
      "key",
    );
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
  checkBakedImage(env, out);
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

/** The nodes, with their subnets (the layout's or their own) and addresses. */
export function resolveNodes(env: Environment, out: ProblemCollector): { nodes: ResolvedNode[]; subnets: ResolvedSubnet[] } {
  const net = env.network;
  const entries = Object.entries(env.loadBalancer.nodes).sort(([a], [b]) => a.localeCompare(b));
  const ha = env.loadBalancer.ha;
  const nlbMode = ha?.vipMode === "nlb";
  if (nlbMode && entries.length >= 2) {
    if (entries.length > MAX_NLB_NODES) {
      out.add(["loadBalancer", "nodes"], `expected 2 or ${MAX_NLB_NODES} nodes with ha.vipMode nlb (one per availability zone), got ${entries.length}`);
    }
  } else if (entries.length < 1 || entries.length > 2) {
    const third = entries.length === 3
      ? `: a third node needs ha.vipMode nlb (three nodes active in three availability zones behind the NLBs); ${ha ? `vipMode ${ha.vipMode}` : "without ha"} takes 1 node or 2`
      : "";
    out.add(["loadBalancer", "nodes"], `expected 1 node (single load balancer) or 2 (HA pair), got ${entries.length}${third}`);
  }
  if (ha && entries.length !== 2 && !(nlbMode && entries.length === MAX_NLB_NODES)) {
    out.add(["loadBalancer", "ha"], nlbMode ? `HA settings need 2 or ${MAX_NLB_NODES} nodes in loadBalancer.nodes with vipMode nlb (one per availability zone), got ${entries.length}` : "HA settings need exactly 2 nodes in loadBalancer.nodes", "key");
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

/** The VIPs of a single node or a pair that moves them (not nlb): one address each, on the client side. */
export function resolveVips(env: Environment, out: ProblemCollector): ResolvedVip[] {
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
