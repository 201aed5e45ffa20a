/**
 * The load balancer's network: a new VPC with the environment's subnets, or an existing VPC and subnets
 * adopted by id. Optional pieces (internet gateway, interface endpoints) only when asked.
 */
import { DataAwsSubnet } from "@cdktf/provider-aws/lib/data-aws-subnet";
import { DataAwsVpc } from "@cdktf/provider-aws/lib/data-aws-vpc";
import { InternetGateway } from "@cdktf/provider-aws/lib/internet-gateway";
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

/**
 * The interface endpoints a load balancer in a private subnet needs: `ec2` (the VIP takeover script),
 * `ssm` + `ssmmessages` + `ec2messages` (Session Manager instead of SSH), `secretsmanager` (TLS PEMs and
 * the stats password at boot). Add `logs` when CloudWatch Logs shipping is on.
 */
export const DEFAULT_INTERFACE_ENDPOINTS: readonly string[] = ["ec2", "ec2messages", "secretsmanager", "ssm", "ssmmessages"];

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
   * Keys of the subnets routed to a new internet gateway (client-side subnets of VIPs with an Elastic
   * IP). Ignored for an adopted VPC, whose routing belongs to its owner.
   * @default [] (no internet gateway, no route table)
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
}

/**
 * Creates or adopts the VPC and the subnets.
 *
 * @example
 * const net = new ImagingLbNetwork(this, "network", { environmentName: env.name, region: env.region, vpcCidr: "10.20.0.0/16", subnets: env.subnets });
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
  /** The internet gateway, when created. */
  readonly internetGateway?: InternetGateway;
  /** The public subnets' route table, when created. */
  readonly publicRouteTable?: RouteTable;
  /** The interface endpoints by short service name. */
  readonly endpoints: Readonly<Record<string, VpcEndpoint>>;
  private readonly subnetIds = new Map<string, string>();

  constructor(scope: Construct, id: string, props: ImagingLbNetworkProps) {
    super(scope, id);
    const name = props.environmentName;
    this.adopted = props.vpcId !== undefined;

    if (props.vpcId !== undefined) {
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
      if (publicKeys.length > 0) {
        const igw = new InternetGateway(this, "internet-gateway", { vpcId: vpc.id, tags: { Name: name } });
        const table = new RouteTable(this, "public-route-table", { vpcId: vpc.id, tags: { Name: `${name}-public` } });
        new Route(this, "public-default-route", { routeTableId: table.id, destinationCidrBlock: "0.0.0.0/0", gatewayId: igw.id });
        for (const key of publicKeys) {
          new RouteTableAssociation(this, `public-${key}`, { routeTableId: table.id, subnetId: this.subnetId(key) });
        }
        this.internetGateway = igw;
        this.publicRouteTable = table;
      }
    }

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
  }

  /** The id of the subnet with key `key` (`subnet`, `internal`, `external`, `<node>-internal`, ...). */
  subnetId(key: string): string {
    const id = this.subnetIds.get(key);
    if (id === undefined) throw new Error(`this network has no subnet '${key}' (subnets: ${[...this.subnetIds.keys()].join(", ")})`);
    return id;
  }
}
