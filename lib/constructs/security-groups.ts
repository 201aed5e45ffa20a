/**
 * One security group per ENI of a load balancer node, with exactly the rules of {@link securityRules}.
 */
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { Annotations } from "cdktf";
import { Construct } from "constructs";
import { ResolvedEnvironment, ResolvedNode } from "../config/model";
import { InterfaceName, InterfacePlan } from "./interface-plan";
import { SecurityRule, securityRules } from "./security-rules";

/** AWS's default quota of inbound (and, separately, outbound) rules per security group. */
export const RULES_PER_GROUP_QUOTA = 60;

/** Properties of {@link LoadBalancerSecurityGroups}. */
export interface LoadBalancerSecurityGroupsProps {
  /** The resolved environment. */
  readonly environment: ResolvedEnvironment;
  /** The node the groups belong to. */
  readonly node: ResolvedNode;
  /** The node's interfaces (one group each). */
  readonly interfaces: readonly InterfacePlan[];
  /** The VPC of the groups. */
  readonly vpcId: string;
  /**
   * Destinations of eth0's package and API egress (TCP 80 and 443: package mirrors, AWS APIs).
   * @default ["0.0.0.0/0"]
   */
  readonly packageEgressCidrs?: readonly string[];
}

/**
 * A security group per ENI (`eth0`, `eth1`), each rule its own resource with a content-derived id. The
 * groups carry no inline rules, so Terraform removes AWS's default allow-all egress rule on creation.
 *
 * @example
 * const groups = new LoadBalancerSecurityGroups(this, "sg", { environment, node, interfaces, vpcId });
 * groups.groupId("eth0");
 */
export class LoadBalancerSecurityGroups extends Construct {
  /** The groups by interface name. */
  readonly groups: Readonly<Partial<Record<InterfaceName, SecurityGroup>>>;
  /** The rules of each group, as computed (for outputs and tests). */
  readonly rules: Readonly<Partial<Record<InterfaceName, readonly SecurityRule[]>>>;

  constructor(scope: Construct, id: string, props: LoadBalancerSecurityGroupsProps) {
    super(scope, id);
    const groups: Partial<Record<InterfaceName, SecurityGroup>> = {};
    const rules: Partial<Record<InterfaceName, readonly SecurityRule[]>> = {};
    const { environment: env, node } = props;
    for (const iface of props.interfaces) {
      const role = [iface.serverSide ? "server side" : "", iface.clientSide ? "client side" : ""].filter(Boolean).join(" and ");
      const group = new SecurityGroup(this, iface.name, {
        name: `imaging-lb-${env.name}-${node.name}-${iface.name}`,
        description: `imaging-lb ${env.name} ${node.name} ${iface.name} (${role})`,
        vpcId: props.vpcId,
        tags: { Name: `${env.name}-${node.name}-${iface.name}` },
      });
      const list = securityRules(env, node, iface, { packageEgressCidrs: props.packageEgressCidrs });
      for (const rule of list) {
        const config = {
          securityGroupId: group.id,
          description: rule.description,
          ipProtocol: rule.protocol,
          cidrIpv4: rule.cidr,
          ...(rule.port !== undefined ? { fromPort: rule.port, toPort: rule.toPort ?? rule.port } : {}),
        };
        if (rule.direction === "ingress") new VpcSecurityGroupIngressRule(group, rule.key, config);
        else new VpcSecurityGroupEgressRule(group, rule.key, config);
      }
      for (const direction of ["ingress", "egress"] as const) {
        const count = list.filter((r) => r.direction === direction).length;
        if (count > RULES_PER_GROUP_QUOTA) {
          Annotations.of(group).addWarning(
            `${count} ${direction} rules exceed AWS's default quota of ${RULES_PER_GROUP_QUOTA} per security group: request a quota increase ("Inbound or outbound rules per security group") before deploying, or narrow the CIDRs/servers`,
          );
        }
      }
      groups[iface.name] = group;
      rules[iface.name] = list;
    }
    this.groups = groups;
    this.rules = rules;
  }

  /** The id of the group of interface `name`. */
  groupId(name: InterfaceName): string {
    const group = this.groups[name];
    if (!group) throw new Error(`no security group for ${name} (interfaces: ${Object.keys(this.groups).join(", ")})`);
    return group.id;
  }
}
