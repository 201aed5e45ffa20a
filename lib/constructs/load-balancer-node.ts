/**
 * One load balancer node: its ENIs (eth0 primary, eth1 attached at device index 1 in two-arm), their
 * security groups, and the hardened EC2 instance booting from the rendered user data.
 */
import { DataAwsSsmParameter } from "@cdktf/provider-aws/lib/data-aws-ssm-parameter";
import { Instance } from "@cdktf/provider-aws/lib/instance";
import { NetworkInterface } from "@cdktf/provider-aws/lib/network-interface";
import { NetworkInterfaceAttachmentA } from "@cdktf/provider-aws/lib/network-interface-attachment";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment";
import { NatGateway } from "@cdktf/provider-aws/lib/nat-gateway";
import { Route } from "@cdktf/provider-aws/lib/route";
import { RouteTableAssociation } from "@cdktf/provider-aws/lib/route-table-association";
import { VpcEndpoint } from "@cdktf/provider-aws/lib/vpc-endpoint";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { TerraformResource } from "cdktf";
import { Construct, IConstruct } from "constructs";
import { ResolvedEnvironment, ResolvedNode } from "../config/model";
import { NODE_CONTRACT, metadataTagsAllowed } from "../contract/node-contract";
import { nodeMachine } from "../node/machine";
import { encodeUserData } from "../bootstrap";
import { InterfaceName, InterfacePlan, initialVipAddresses, planInterfaces, vipsFloat } from "../plan/interface-plan";
import { LoadBalancerSecurityGroups } from "./security-groups";
import { TerraformData } from "./terraform-data";

/** Public SSM parameters of the supported operating systems' current AMIs. */
export const AMI_SSM_PARAMETERS = {
  "ubuntu-24.04": "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
  // Debian's official AMIs (published by the Debian cloud team, account 136693071363).
  "debian-13": "/aws/service/debian/release/13/latest/amd64",
  al2023: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
} as const;

/**
 * The data source reading the environment's AMI id from its public SSM parameter (`insecureValue`: the
 * parameter is a plain String, and `value` would be marked sensitive for no reason).
 */
export function amiParameter(scope: Construct, id: string, env: ResolvedEnvironment): DataAwsSsmParameter {
  return new DataAwsSsmParameter(scope, id, { name: env.loadBalancer.amiSsmParameter ?? AMI_SSM_PARAMETERS[env.loadBalancer.os] });
}


/** Resource types a node's first boot needs to exist already (egress, endpoints, rules, permissions). */
const BOOT_NEEDS = [
  NatGateway,
  Route,
  RouteTableAssociation,
  VpcEndpoint,
  VpcSecurityGroupIngressRule,
  VpcSecurityGroupEgressRule,
  IamRolePolicy,
  IamRolePolicyAttachment,
] as const;

/**
 * The resources below `scope` that a node's boot needs before the instance starts: NAT gateways, routes
 * and route table associations (package mirrors), VPC endpoints and security group rules (AWS APIs, any
 * egress at all), IAM role policies and attachments (Secrets Manager, SSM, EC2). Terraform otherwise
 * creates the instance as soon as its ENI, profile and AMI exist, and cloud-init may run before the
 * network or the permissions it needs.
 */
export function bootDependencies(scope: IConstruct): TerraformResource[] {
  return scope.node.findAll().filter((c): c is TerraformResource => BOOT_NEEDS.some((type) => c instanceof type));
}

/** Where a node's subnets are (an {@link ImagingLbNetwork} satisfies it). */
export interface SubnetLookup {
  /** The VPC id. */
  readonly vpcId: string;
  /** The id of the subnet with key `key` (a `ResolvedSubnet.key`). */
  subnetId(key: string): string;
  /** Managed prefix list ids by symbolic name (`s3`) for the security rules that name one. @default {} */
  readonly prefixLists?: Readonly<Record<string, string>>;
}

/** Properties of {@link LoadBalancerNode}. */
export interface LoadBalancerNodeProps {
  /** The resolved environment. */
  readonly environment: ResolvedEnvironment;
  /** Name of the node in `loadBalancer.nodes`. */
  readonly nodeName: string;
  /** The VPC and subnets. */
  readonly network: SubnetLookup;
  /** Name of the instance profile (see {@link LoadBalancerInstanceRole}). */
  readonly instanceProfileName: string;
  /**
   * Replace the instance when its user data changes. The load balancer is immutable: a changed
   * haproxy.cfg or bootstrap yields a new instance on the same ENIs (same addresses, VIPs and Elastic IPs),
   * so the box always runs exactly what Terraform shows. `false` makes AWS stop the instance, swap the user
   * data and start it again, and cloud-init does not re-run per-instance modules on that boot.
   * @default true
   */
  readonly userDataReplaceOnChange?: boolean;
  /**
   * Destinations of eth0's package and API egress (TCP 80 and 443: package mirrors, AWS APIs).
   * @default the egress plan's (lib/plan/egress.ts)
   */
  readonly packageEgressCidrs?: readonly string[];
  /**
   * The AMI id.
   * @default read from the OS's public SSM parameter (or loadBalancer.amiSsmParameter) by this node
   */
  readonly imageId?: string;
  /**
   * Where the node's configuration store is, as instance tags the agent reads through the instance metadata
   * (they change in place: a renamed bucket is followed without replacing the machine).
   * @default no tags: the agent uses the store its user data names
   */
  readonly configStore?: { readonly bucket: string; readonly prefix: string };
  /**
   * Security group ids of the groups the node's rules may name as their peer (see
   * {@link LoadBalancerSecurityGroupsProps.referencedGroups}): vipMode nlb's `nlb-<vip>`.
   * @default {}
   */
  readonly securityGroupReferences?: Readonly<Record<string, string>>;
  /**
   * The cloud-init user data (text; encoded here like the bootstrap's: base64, gzipped when over 16 KB).
   * @default the node's machine, `nodeMachine(environment, nodeName).userData` (the user data only: no bundle)
   */
  readonly userData?: string;
}

/**
 * An EC2 instance whose eth0 is its own `aws_network_interface` (internal subnet, the node's
 * internalAddress), plus eth1 (external subnet, externalAddress) attached at device index 1 in two-arm.
 * The VIPs are secondary private IPs of the client-side ENI; in a VRRP pair only the primary gets them at
 * creation and Terraform then ignores the ENIs' private IP lists, because keepalived moves them; behind
 * NLBs (vipMode nlb) each node's ENI carries its own addresses of the VIPs, managed by Terraform.
 *
 * Hardening: IMDSv2 only (hop limit 1), encrypted gp3 root volume, no key pair, no SSH (Session Manager),
 * user data base64-encoded (`${` and `%{` reach cloud-init untouched).
 *
 * The machine is replaced only when the node's `generation` is raised: changes of the user data (the
 * machine definition) and of the AMI are ignored until then, so no apply can replace both nodes of a pair
 * unless both generations were raised, and a new image never arrives unannounced. The configuration is
 * not in the user data at all: the agent applies it in place.
 */
export class LoadBalancerNode extends Construct {
  /** The node as resolved. */
  readonly lbNode: ResolvedNode;
  /** The EC2 instance. */
  readonly instance: Instance;
  /** The ENIs by interface name. */
  readonly interfaces: Readonly<Partial<Record<InterfaceName, NetworkInterface>>>;
  /** The interface plans (subnet, address, side, device index). */
  readonly plans: readonly InterfacePlan[];
  /** The ENI carrying the VIPs (eth1 in two-arm, eth0 in one-arm). */
  readonly clientInterface: NetworkInterface;
  /** The ENI towards servers, admins and the peer (eth0). */
  readonly serverInterface: NetworkInterface;
  /** The security groups, one per ENI. */
  readonly securityGroups: LoadBalancerSecurityGroups;
  /** VIP addresses assigned to the client ENI at creation. */
  readonly initialVips: readonly string[];
  private readonly bootNeeds = new Set<string>();

  constructor(scope: Construct, id: string, props: LoadBalancerNodeProps) {
    super(scope, id);
    const env = props.environment;
    const node = env.nodes.find((n) => n.name === props.nodeName);
    if (!node) throw new Error(`environment '${env.name}' has no node '${props.nodeName}' (nodes: ${env.nodes.map((n) => n.name).join(", ")})`);
    this.lbNode = node;
    this.plans = planInterfaces(env, node);
    this.initialVips = initialVipAddresses(env, node);
    const floating = vipsFloat(env);

    this.securityGroups = new LoadBalancerSecurityGroups(this, "security-groups", {
      environment: env,
      node,
      interfaces: this.plans,
      vpcId: props.network.vpcId,
      packageEgressCidrs: props.packageEgressCidrs,
      referencedGroups: props.securityGroupReferences,
      prefixLists: props.network.prefixLists,
    });

    const interfaces: Partial<Record<InterfaceName, NetworkInterface>> = {};
    for (const plan of this.plans) {
      const vips = plan.clientSide ? this.initialVips : [];
      interfaces[plan.name] = new NetworkInterface(this, plan.name, {
        description: `imaging-lb ${env.name} ${node.name} ${plan.name}`,
        subnetId: props.network.subnetId(plan.subnet.key),
        privateIpListEnabled: true,
        privateIpList: [plan.address, ...vips],
        securityGroups: this.securityGroups.groupIds(plan.name),
        sourceDestCheck: plan.sourceDestCheck,
        tags: { Name: `${env.name}-${node.name}-${plan.name}` },
        lifecycle: plan.clientSide && floating ? { ignoreChanges: ["private_ip_list", "private_ips", "private_ips_count"] } : undefined,
      });
    }
    this.interfaces = interfaces;
    const byName = (name: InterfaceName) => {
      const eni = interfaces[name];
      if (!eni) throw new Error(`node '${node.name}' has no ${name}`);
      return eni;
    };
    const clientPlan = this.plans.find((p) => p.clientSide);
    this.clientInterface = byName(clientPlan ? clientPlan.name : "eth0");
    this.serverInterface = byName("eth0");

    const pinned = props.imageId === undefined ? env.loadBalancer.amiId : undefined;
    const imageId = props.imageId ?? pinned ?? amiParameter(this, "ami", env).insecureValue;
    let userDataBase64: string | undefined;
    try {
      userDataBase64 = encodeUserData(props.userData ?? nodeMachine(env, node.name).userData);
    } catch (e) {
      const message = (e as Error).message;
      this.node.addValidation({ validate: () => [`node '${node.name}': ${message}`] });
    }

    // Raising the node's generation changes this resource, and that replaces the instance (replace_triggered_by).
    // Not cdktf's DataResource: it runs `terraform version` at every synth (see TerraformData).
    const generation = new TerraformData(this, "generation", { input: { generation: node.generation } });
    this.instance = new Instance(this, "instance", {
      ami: imageId,
      instanceType: env.loadBalancer.instanceType,
      iamInstanceProfile: props.instanceProfileName,
      primaryNetworkInterface: { networkInterfaceId: this.serverInterface.id },
      // Instance metadata tags: the agent reads where its configuration store is (see configStore).
      metadataOptions: {
        httpEndpoint: "enabled",
        httpTokens: "required",
        httpPutResponseHopLimit: 1,
        instanceMetadataTags: props.configStore && metadataTagsAllowed(Object.keys(env.tags ?? {})) ? "enabled" : "disabled",
      },
      rootBlockDevice: { volumeType: "gp3", volumeSize: env.loadBalancer.rootVolumeGiB, encrypted: true, deleteOnTermination: true },
      userDataBase64,
      userDataReplaceOnChange: props.userDataReplaceOnChange ?? true,
      tags: {
        Name: `${env.name}-${node.name}`,
        "imaging-lb:node": node.name,
        "imaging-lb:role": node.role,
        ...(props.configStore
          ? { [NODE_CONTRACT.instanceTags.bucket]: props.configStore.bucket, [NODE_CONTRACT.instanceTags.prefix]: props.configStore.prefix }
          : {}),
      },
      volumeTags: { Name: `${env.name}-${node.name}` },
      // The machine changes only when the node's generation is raised: a new image (also a pinned
      // loadBalancer.amiId), instance type or user data waits for it, so no apply replaces a whole pair.
      // replace_triggered_by takes a plain resource address, not an interpolation.
      lifecycle: {
        ignoreChanges: ["ami", "instance_type", "user_data", "user_data_base64"],
        replaceTriggeredBy: [`${generation.terraformResourceType}.${generation.friendlyUniqueId}`],
      },
    });
    // Its own security groups' rules: without them eth0 has no egress at all during the first boot.
    this.bootAfter(bootDependencies(this.securityGroups));

    for (const plan of this.plans) {
      if (plan.deviceIndex === 0) continue;
      new NetworkInterfaceAttachmentA(this, `${plan.name}-attachment`, {
        instanceId: this.instance.id,
        networkInterfaceId: byName(plan.name).id,
        deviceIndex: plan.deviceIndex,
      });
    }
  }

  /**
   * Makes the instance wait for `resources` too (see {@link bootDependencies}): the stack passes the
   * network's egress and endpoints and the instance role's policies once they all exist.
   */
  bootAfter(resources: readonly TerraformResource[]): void {
    // The plain address: a resource's fqn token resolves to "${type.id}" when set after construction.
    for (const resource of resources) this.bootNeeds.add(`${resource.terraformResourceType}.${resource.friendlyUniqueId}`);
    this.instance.dependsOn = [...this.bootNeeds];
  }
}
