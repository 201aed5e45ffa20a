/**
 * The load balancer's network: a new VPC with the environment's subnets and its own way out (a public NAT
 * subnet, an internet gateway and a NAT gateway; none for a baked image), or an existing VPC and subnets
 * adopted by id, whose routing and egress belong to its owner. Interface endpoints as asked.
 */
import { DataAwsEc2ManagedPrefixList } from "@cdktf/provider-aws/lib/data-aws-ec2-managed-prefix-list";
import { DataAwsSubnet } from "@cdktf/provider-aws/lib/data-aws-subnet";
import { DataAwsVpc } from "@cdktf/provider-aws/lib/data-aws-vpc";
import { Eip } from "@cdktf/provider-aws/lib/eip";
import { InternetGateway } from "@cdktf/provider-aws/lib/internet-gateway";
import { NatGateway } from "@cdktf/provider-aws/lib/nat-gateway";
import { Route } from "@cdktf/provider-aws/lib/route";
import { RouteTable } from "@cdktf/provider-aws/lib/route-table";
import { RouteTableAssociation } from "@cdktf/provider-aws/lib/route-table-association";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { Subnet } from "@cdktf/provider-aws/lib/subnet";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { VpcEndpoint } from "@cdktf/provider-aws/lib/vpc-endpoint";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { Construct } from "constructs";
import { ResolvedSubnet } from "../config/model";
import { BASE_INTERFACE_ENDPOINTS } from "../plan/egress";

/**
 * The interface endpoints a load balancer in a private subnet needs: `ec2` (the VIP takeover script),
 * `ssm` + `ssmmessages` + `ec2messages` (Session Manager instead of SSH), `secretsmanager` (TLS PEMs and
 * the stats password at boot). Add `logs` when CloudWatch Logs shipping is on, `monitoring` when the nodes
 * send metrics (the stack does both).
 */
export const DEFAULT_INTERFACE_ENDPOINTS: readonly string[] = BASE_INTERFACE_ENDPOINTS;

/** Properties of {@link ImagingLbNetwork}. */
export interface ImagingLbNetworkProps {
  /** Environment name (Name tags, group names). */
  readonly environmentName: string;
  /** AWS region (endpoint service names). */
  readonly region: string;
  /**
   * Adopt this VPC instead of creating one; every subnet then needs its `subnetId`.
   * @default a VPC is created from vpcCidr
   */
  readonly vpcId?: string;
  /** CIDR block of the created VPC (required without vpcId; informative with it). */
  readonly vpcCidr?: string;
  /** Every subnet, created from cidr/availabilityZone or adopted by subnetId; construct ids from their keys. */
  readonly subnets: readonly ResolvedSubnet[];
  /**
   * The public subnet of the NAT gateway (network.natSubnet), not allowed with vpcId. The created VPC gets
   * an internet gateway, a NAT gateway with its own Elastic IP in this subnet, and a default route through
   * the NAT gateway for every subnet that is not public. Without it the created VPC has no way to the
   * internet (a baked image): an internet gateway only when {@link publicSubnetKeys} asks for one.
   */
  readonly natSubnet?: { readonly cidr: string; readonly availabilityZone: string };
  /**
   * Keys of the subnets routed straight to the internet gateway instead of the NAT gateway (client-side
   * subnets of VIPs with an Elastic IP: replies must leave from the Elastic IP). Ignored for an adopted VPC,
   * whose routing belongs to its owner.
   * @default [] (every subnet behind the NAT gateway)
   */
  readonly publicSubnetKeys?: readonly string[];
  /**
   * Interface VPC endpoints (short service names such as `ec2`, `logs`), with private DNS, accepting HTTPS
   * from the VPC CIDR. AWS refuses a second private-DNS endpoint for a service in one VPC, so an adopted
   * VPC gets none unless they are listed here.
   * @default DEFAULT_INTERFACE_ENDPOINTS for a created VPC; none for an adopted VPC
   */
  readonly interfaceEndpoints?: readonly string[];
  /**
   * Keys of the subnets the endpoints are placed in (one per availability zone is kept).
   * @default the first subnet of each availability zone
   */
  readonly endpointSubnetKeys?: readonly string[];
  /**
   * Look up S3's managed prefix list, for security rules that allow HTTPS to S3 only (its gateway endpoint).
   * @default false
   */
  readonly s3PrefixList?: boolean;
}

/**
 * Creates the VPC, its subnets and its egress (internet gateway, NAT gateway in the public NAT subnet,
 * the public and private route tables), or adopts an existing VPC and subnets (nothing of the network
 * created but the requested endpoints).
 *
 * @example
 * const net = new ImagingLbNetwork(this, "network", {
 *   environmentName: env.name,
 *   region: env.region,
 *   vpcCidr: "10.20.0.0/16",
 *   subnets: env.subnets,
 *   natSubnet: { cidr: "10.20.0.0/24", availabilityZone: "eu-west-1a" },
 * });
 * net.subnetId("internal");
 */
export class ImagingLbNetwork extends Construct {
  /** The VPC id. */
  readonly vpcId: string;
  /** The VPC CIDR block (a token for an adopted VPC). */
  readonly vpcCidr: string;
  /** True when the VPC and subnets were adopted by id (no network resource is created). */
  readonly adopted: boolean;
  /** The created VPC, when not adopted. */
  readonly vpc?: Vpc;
  /** The internet gateway (created VPC). */
  readonly internetGateway?: InternetGateway;
  /** The public subnets' route table (created VPC): the NAT subnet and any Elastic IP VIP subnet, 0.0.0.0/0 → internet gateway. */
  readonly publicRouteTable?: RouteTable;
  /** The NAT gateway's public subnet (created VPC). */
  readonly natSubnet?: Subnet;
  /** The NAT gateway's Elastic IP (created VPC): the nodes' public source address. */
  readonly natElasticIp?: Eip;
  /** The NAT gateway (created VPC). */
  readonly natGateway?: NatGateway;
  /** The private subnets' route table (created VPC): 0.0.0.0/0 → NAT gateway. */
  readonly privateRouteTable?: RouteTable;
  /** Keys of the subnets behind the NAT gateway (created VPC); empty for an adopted VPC. */
  readonly privateSubnetKeys: readonly string[];
  /** The interface endpoints by short service name. */
  readonly endpoints: Readonly<Record<string, VpcEndpoint>>;
  /** The S3 gateway endpoint (created VPCs). */
  readonly s3Endpoint?: VpcEndpoint;
  /** Managed prefix list ids by symbolic name (`s3`), for security rules (see {@link ImagingLbNetworkProps.s3PrefixList}). */
  readonly prefixLists: Readonly<Record<string, string>>;
  private readonly subnetIds = new Map<string, string>();

  constructor(scope: Construct, id: string, props: ImagingLbNetworkProps) {
    super(scope, id);
    const name = props.environmentName;
    this.adopted = props.vpcId !== undefined;
    let privateKeys: string[] = [];

    if (props.vpcId !== undefined) {
      if (props.natSubnet) throw new Error("network.natSubnet: only for a created VPC; an adopted VPC brings its own egress (the loader should have rejected this)");
      const vpc = new DataAwsVpc(this, "vpc", { id: props.vpcId });
      this.vpcId = vpc.id;
      this.vpcCidr = vpc.cidrBlock;
      for (const subnet of props.subnets) {
        if (!subnet.subnetId) throw new Error(`subnet '${subnet.key}': an adopted VPC needs subnetId on every subnet (the loader should have rejected this)`);
        this.subnetIds.set(subnet.key, new DataAwsSubnet(this, `subnet-${subnet.key}`, { id: subnet.subnetId, vpcId: props.vpcId }).id);
      }
    } else {
      if (!props.vpcCidr) throw new Error("network.vpcCidr: a created VPC needs its CIDR block (the loader should have rejected this)");
      const vpc = new Vpc(this, "vpc", { cidrBlock: props.vpcCidr, enableDnsSupport: true, enableDnsHostnames: true, tags: { Name: name } });
      this.vpc = vpc;
      this.vpcId = vpc.id;
      this.vpcCidr = props.vpcCidr;
      for (const subnet of props.subnets) {
        const created = new Subnet(this, `subnet-${subnet.key}`, {
          vpcId: vpc.id,
          cidrBlock: subnet.cidr,
          availabilityZone: subnet.availabilityZone,
          mapPublicIpOnLaunch: false,
          tags: { Name: `${name}-${subnet.key}` },
        });
        this.subnetIds.set(subnet.key, created.id);
      }
      const publicKeys = [...new Set(props.publicSubnetKeys ?? [])];
      const nat = props.natSubnet;

      // Public side: the NAT subnet (and any Elastic IP VIP subnet) → internet gateway. Without a NAT subnet
      // (a baked image) the VPC has no internet gateway unless an Elastic IP VIP needs one.
      if (nat !== undefined || publicKeys.length > 0) {
        const igw = new InternetGateway(this, "internet-gateway", { vpcId: vpc.id, tags: { Name: name } });
        const publicTable = new RouteTable(this, "public-route-table", { vpcId: vpc.id, tags: { Name: `${name}-public` } });
        new Route(this, "public-default-route", { routeTableId: publicTable.id, destinationCidrBlock: "0.0.0.0/0", gatewayId: igw.id });
        for (const key of publicKeys) {
          new RouteTableAssociation(this, `public-${key}`, { routeTableId: publicTable.id, subnetId: this.subnetId(key) });
        }
        this.internetGateway = igw;
        this.publicRouteTable = publicTable;
      }
      if (nat !== undefined && this.internetGateway && this.publicRouteTable) {
        const natSubnet = new Subnet(this, "nat-subnet", {
          vpcId: vpc.id,
          cidrBlock: nat.cidr,
          availabilityZone: nat.availabilityZone,
          mapPublicIpOnLaunch: false,
          tags: { Name: `${name}-nat` },
        });
        new RouteTableAssociation(this, "public-nat-subnet", { routeTableId: this.publicRouteTable.id, subnetId: natSubnet.id });
        const natEip = new Eip(this, "nat-eip", { domain: "vpc", tags: { Name: `${name}-nat` }, dependsOn: [this.internetGateway] });
        this.natSubnet = natSubnet;
        this.natElasticIp = natEip;
        this.natGateway = new NatGateway(this, "nat-gateway", {
          connectivityType: "public",
          allocationId: natEip.allocationId,
          subnetId: natSubnet.id,
          tags: { Name: name },
          dependsOn: [this.internetGateway],
        });
      }

      // Private side: every other subnet → the NAT gateway (package mirrors at boot), or nowhere but the VPC
      // and its endpoints (a baked image).
      privateKeys = props.subnets.map((s) => s.key).filter((key) => !publicKeys.includes(key));
      const privateTable = new RouteTable(this, "private-route-table", { vpcId: vpc.id, tags: { Name: `${name}-private` } });
      if (this.natGateway) {
        new Route(this, "private-default-route", { routeTableId: privateTable.id, destinationCidrBlock: "0.0.0.0/0", natGatewayId: this.natGateway.id });
      }
      for (const key of privateKeys) {
        new RouteTableAssociation(this, `private-${key}`, { routeTableId: privateTable.id, subnetId: this.subnetId(key) });
      }
      this.privateRouteTable = privateTable;
    }
    this.privateSubnetKeys = privateKeys;

    const services = [...new Set(props.interfaceEndpoints ?? (this.adopted ? [] : DEFAULT_INTERFACE_ENDPOINTS))].sort();
    const endpoints: Record<string, VpcEndpoint> = {};
    if (services.length > 0) {
      const perAz = new Map<string, string>();
      const candidates = props.endpointSubnetKeys ?? props.subnets.map((s) => s.key);
      for (const key of candidates) {
        const subnet = props.subnets.find((s) => s.key === key);
        if (!subnet) throw new Error(`endpointSubnetKeys: no subnet '${key}' (subnets: ${props.subnets.map((s) => s.key).join(", ")})`);
        if (!perAz.has(subnet.availabilityZone)) perAz.set(subnet.availabilityZone, this.subnetId(key));
      }
      const group = new SecurityGroup(this, "endpoints", {
        name: `imaging-lb-${name}-endpoints`,
        description: `imaging-lb ${name} interface endpoints: HTTPS from the VPC`,
        vpcId: this.vpcId,
        tags: { Name: `${name}-endpoints` },
      });
      new VpcSecurityGroupIngressRule(group, "ingress-tcp-443-vpc", {
        securityGroupId: group.id,
        description: "HTTPS from the VPC",
        ipProtocol: "tcp",
        fromPort: 443,
        toPort: 443,
        cidrIpv4: this.vpcCidr,
      });
      for (const service of services) {
        endpoints[service] = new VpcEndpoint(this, `endpoint-${service}`, {
          vpcId: this.vpcId,
          serviceName: `com.amazonaws.${props.region}.${service}`,
          vpcEndpointType: "Interface",
          privateDnsEnabled: true,
          subnetIds: [...perAz.values()],
          securityGroupIds: [group.id],
          tags: { Name: `${name}-${service}` },
        });
      }
    }
    this.endpoints = endpoints;
    this.prefixLists = props.s3PrefixList
      ? { s3: new DataAwsEc2ManagedPrefixList(this, "s3-prefix-list", { name: `com.amazonaws.${props.region}.s3` }).id }
      : {};
    // S3 (the configuration bundles) through a gateway endpoint: private, and no NAT data charges.
    if (!this.adopted) {
      const tables = [this.privateRouteTable, this.publicRouteTable].filter((t): t is RouteTable => t !== undefined);
      this.s3Endpoint = new VpcEndpoint(this, "endpoint-s3", {
        vpcId: this.vpcId,
        serviceName: `com.amazonaws.${props.region}.s3`,
        vpcEndpointType: "Gateway",
        routeTableIds: tables.map((t) => t.id),
        tags: { Name: `${name}-s3` },
      });
    }
  }

  /** The id of the subnet with key `key` (`subnet`, `internal`, `external`, `<node>-internal`, ...). */
  subnetId(key: string): string {
    const id = this.subnetIds.get(key);
    if (id === undefined) throw new Error(`this network has no subnet '${key}' (subnets: ${[...this.subnetIds.keys()].join(", ")})`);
    return id;
  }
}
