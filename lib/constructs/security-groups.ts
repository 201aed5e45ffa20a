/**
 * The security groups of each ENI of a load balancer node, with exactly the rules of {@link securityRules}:
 * one group, or as many as the rules need at the per-group quota ({@link spreadRules}).
 */
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { Annotations } from "cdktf";
import { Construct } from "constructs";
import { ResolvedEnvironment, ResolvedNode } from "../config/model";
import { InterfaceName, InterfacePlan } from "../plan/interface-plan";
import { DEFAULT_RULES_PER_GROUP, spreadRules } from "../plan/security-quotas";
import { SecurityRule, securityRules } from "../plan/security-rules";

/** AWS's default quota of inbound (and, separately, outbound) rules per security group. */
export const RULES_PER_GROUP_QUOTA = DEFAULT_RULES_PER_GROUP;

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
   * @default the egress plan's (lib/plan/egress.ts)
   */
  readonly packageEgressCidrs?: readonly string[];
  /**
   * Security group ids for the rules whose peer is a group ({@link SecurityRule.group}), by its symbolic
   * name: vipMode nlb's node rules name each VIP's NLB group (`nlb-<vip>`).
   * @default {} (no rule may name a group)
   */
  readonly referencedGroups?: Readonly<Record<string, string>>;
  /**
   * Managed prefix list ids for the rules whose peer is a prefix list ({@link SecurityRule.prefixList}), by
   * its symbolic name: `s3` (a baked image without an internet path reaches S3 through its gateway endpoint).
   * @default {} (no rule may name a prefix list)
   */
  readonly prefixLists?: Readonly<Record<string, string>>;
}

/**
 * The security groups of each ENI (`eth0`, `eth1`), each rule its own resource with a content-derived id.
 * The groups carry no inline rules, so Terraform removes AWS's default allow-all egress rule on creation.
 *
 * Rules that fit one group (the quota, `access.securityGroupRuleQuota`, 60 by default, per direction) are
 * all in the interface's first group, whose construct id is the interface name (`eth0`): the ids, names and
 * rules of 0.2.0, so an upgrade replaces nothing. More rules go on in further groups `eth0-2`, `eth0-3`, ...
 * (up to 5 per ENI; the loader refuses what does not fit), all attached to the ENI.
 *
 * @example
 * const groups = new LoadBalancerSecurityGroups(this, "sg", { environment, node, interfaces, vpcId });
 * groups.groupIds("eth0");
 */
export class LoadBalancerSecurityGroups extends Construct {
  /** The first group of each interface, by interface name. */
  readonly groups: Readonly<Partial<Record<InterfaceName, SecurityGroup>>>;
  /** Every group of each interface, the first one first. */
  readonly groupsByInterface: Readonly<Partial<Record<InterfaceName, readonly SecurityGroup[]>>>;
  /** The rules of each interface (all its groups), as computed (for outputs and tests). */
  readonly rules: Readonly<Partial<Record<InterfaceName, readonly SecurityRule[]>>>;

  constructor(scope: Construct, id: string, props: LoadBalancerSecurityGroupsProps) {
    super(scope, id);
    const groups: Partial<Record<InterfaceName, SecurityGroup>> = {};
    const byInterface: Partial<Record<InterfaceName, SecurityGroup[]>> = {};
    const rules: Partial<Record<InterfaceName, readonly SecurityRule[]>> = {};
    const { environment: env, node } = props;
    const quota = env.access.securityGroupRuleQuota ?? DEFAULT_RULES_PER_GROUP;
    for (const iface of props.interfaces) {
      const role = [iface.serverSide ? "server side" : "", iface.clientSide ? "client side" : ""].filter(Boolean).join(" and ");
      const list = securityRules(env, node, iface, { packageEgressCidrs: props.packageEgressCidrs });
      const parts = spreadRules(list, quota);
      byInterface[iface.name] = parts.map((part, i) => {
        // The first group keeps the id, name and description it had before groups were spread (a change replaces it).
        const suffix = i === 0 ? "" : `-${i + 1}`;
        const group = new SecurityGroup(this, `${iface.name}${suffix}`, {
          name: `imaging-lb-${env.name}-${node.name}-${iface.name}${suffix}`,
          description: i === 0 ? `imaging-lb ${env.name} ${node.name} ${iface.name} (${role})` : `imaging-lb ${env.name} ${node.name} ${iface.name} (${role}; more rules, group ${i + 1})`,
          vpcId: props.vpcId,
          tags: { Name: `${env.name}-${node.name}-${iface.name}${suffix}` },
        });
        for (const rule of part) {
          const referenced = rule.group === undefined ? undefined : props.referencedGroups?.[rule.group];
          if (rule.group !== undefined && referenced === undefined) {
            throw new Error(`security rule ${rule.key} of ${node.name} ${iface.name} names group '${rule.group}', which no referencedGroups entry gives`);
          }
          const prefixList = rule.prefixList === undefined ? undefined : props.prefixLists?.[rule.prefixList];
          if (rule.prefixList !== undefined && prefixList === undefined) {
            throw new Error(`security rule ${rule.key} of ${node.name} ${iface.name} names prefix list '${rule.prefixList}', which no prefixLists entry gives`);
          }
          const peer = referenced !== undefined ? { referencedSecurityGroupId: referenced } : prefixList !== undefined ? { prefixListId: prefixList } : { cidrIpv4: rule.cidr };
          const config = {
            securityGroupId: group.id,
            description: rule.description,
            ipProtocol: rule.protocol,
            ...peer,
            ...(rule.port !== undefined ? { fromPort: rule.port, toPort: rule.toPort ?? rule.port } : {}),
          };
          if (rule.direction === "ingress") new VpcSecurityGroupIngressRule(group, rule.key, config);
          else new VpcSecurityGroupEgressRule(group, rule.key, config);
        }
        for (const direction of ["ingress", "egress"] as const) {
          const count = part.filter((r) => r.direction === direction).length;
          if (count > RULES_PER_GROUP_QUOTA) {
            Annotations.of(group).addWarning(
              `${count} ${direction} rules exceed AWS's default quota of ${RULES_PER_GROUP_QUOTA} per security group: request a quota increase ("Inbound or outbound rules per security group") before deploying, or narrow the CIDRs/servers`,
            );
          }
        }
        return group;
      });
      groups[iface.name] = byInterface[iface.name]![0];
      rules[iface.name] = list;
    }
    this.groups = groups;
    this.groupsByInterface = byInterface;
    this.rules = rules;
  }

  /** The id of the first group of interface `name`. */
  groupId(name: InterfaceName): string {
    return this.groupIds(name)[0];
  }

  /** The ids of every group of interface `name` (what its ENI carries), the first one first. */
  groupIds(name: InterfaceName): string[] {
    const list = this.groupsByInterface[name];
    if (!list) throw new Error(`no security group for ${name} (interfaces: ${Object.keys(this.groupsByInterface).join(", ")})`);
    return list.map((g) => g.id);
  }
}
