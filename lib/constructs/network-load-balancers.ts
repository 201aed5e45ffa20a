/**
 * ha.vipMode nlb: an internal Network Load Balancer per VIP in front of both (active) nodes, one node per
 * availability zone: a fixed private address per zone, a TCP listener and target group per port of the
 * VIP's services (TLS stays on HAProxy), the nodes' own addresses of the VIP as IP targets with the
 * clients' addresses preserved, a health check of HAProxy itself, its own security group, and the order in
 * which a node whose generation is raised leaves and comes back (deregistration, drain, replacement,
 * registration).
 */
import { createHash } from "node:crypto";
import { Lb } from "@cdktf/provider-aws/lib/lb";
import { LbListener } from "@cdktf/provider-aws/lib/lb-listener";
import { LbTargetGroup } from "@cdktf/provider-aws/lib/lb-target-group";
import { LbTargetGroupAttachment } from "@cdktf/provider-aws/lib/lb-target-group-attachment";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { TerraformResource } from "cdktf";
import { Construct } from "constructs";
import { ResolvedEnvironment } from "../config/model";
import { nlbListeners } from "../plan/nlb";
import { NLB_HEALTH_CHECK } from "../config/nlb-limits";
import type { LoadBalancerNode, SubnetLookup } from "./load-balancer-node";
import { DEFAULT_RULES_PER_GROUP, spreadRules } from "../plan/security-quotas";
import { TerraformData } from "./terraform-data";
import { nlbGroupName, nlbSecurityRules } from "../plan/security-rules";

/** Properties of {@link ImagingLbNetworkLoadBalancers}. */
export interface ImagingLbNetworkLoadBalancersProps {
  /** The resolved environment (ha.vipMode nlb). */
  readonly environment: ResolvedEnvironment;
  /** The VPC and the nodes' client-side subnets (the NLBs' subnet mappings). */
  readonly network: SubnetLookup;
}

/**
 * An AWS name of at most 32 characters (letters, digits, '-'): `parts` joined with '-', or, when that is
 * longer, its start and a hash of the whole (names must stay unique in the account and region).
 */
export function awsLbName(...parts: string[]): string {
  const full = parts.join("-");
  if (full.length <= 32) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, 8);
  return `${full.slice(0, 23).replace(/-+$/, "")}-${hash}`;
}

/**
 * The Network Load Balancers of an environment in vipMode nlb, one per VIP (ports of different VIPs may
 * coincide, as web and core both take 443 in the agfa-ei preset; a listener port is unique per NLB).
 *
 * - **Addresses**: `internal`, one subnet mapping per node: the node's client-side subnet, with the fixed
 *   private IPv4 of `vips.<vip>.nlb.<node>.address`. The DNS name answers with the zones that have a
 *   healthy target.
 * - **Listeners and target groups**: TCP per port, `tcp.idle_timeout.seconds` derived from the service's
 *   idle timeouts; targets of type `ip` (the VIP's address on each node, `vips.<vip>.nlb.<node>.target`),
 *   client IP preservation on (HAProxy sees and logs the client, its ACLs and stick tables work on it);
 *   deregistration delay `ha.nlb.drainTime`, with the connections still open at its end reset.
 * - **Health check**: HTTP GET of {@link NLB_HEALTH_CHECK} (HAProxy's own page on the node, never the
 *   servers), every 5 s, timeout 2 s, 2 failures/successes; a target turning unhealthy keeps its
 *   established connections (a false alarm must not cut DICOM associations and HL7 links).
 * - **Security group**: the listeners' ports from each service's clientCidrs in; out, only to the targets.
 *   The nodes accept the services' ports from this group only ({@link groupIds}).
 * - **Cross-zone** load balancing as `ha.nlb.crossZone` (off by default).
 *
 * Call {@link attach} with the nodes once they exist: it registers their targets, so that raising a
 * node's generation deregisters its targets, waits `drainTime`, replaces the instance and registers the
 * new one.
 *
 * @example
 * const nlbs = new ImagingLbNetworkLoadBalancers(this, "nlb", { environment: env, network });
 * // ... nodes with securityGroupReferences: nlbs.groupIds ...
 * nlbs.attach(nodes);
 */
export class ImagingLbNetworkLoadBalancers extends Construct {
  /** The NLB of each VIP. */
  readonly loadBalancers: Readonly<Record<string, Lb>>;
  /** The security groups of each VIP's NLB, the first one first. */
  readonly securityGroups: Readonly<Record<string, readonly SecurityGroup[]>>;
  /** The target group of each VIP's port: `<vip>/<port>`. */
  readonly targetGroups: Readonly<Record<string, LbTargetGroup>>;
  /** The listener of each VIP's port: `<vip>/<port>`. */
  readonly listeners: Readonly<Record<string, LbListener>>;
  /**
   * The symbolic group names the nodes' rules use (`nlb-<vip>`) → the id of that NLB's first security group,
   * for {@link LoadBalancerNodeProps.securityGroupReferences}.
   */
  readonly groupIds: Readonly<Record<string, string>>;
  /** After {@link attach}: the target registrations, `<vip>/<port>/<node>`. */
  readonly attachments: Record<string, LbTargetGroupAttachment> = {};
  /** After {@link attach}: each node's drain step (a replaced node waits `drainTime` here before its instance goes). */
  readonly drains: Record<string, TerraformData> = {};
  private readonly env: ResolvedEnvironment;

  constructor(scope: Construct, id: string, props: ImagingLbNetworkLoadBalancersProps) {
    super(scope, id);
    const env = props.environment;
    this.env = env;
    const settings = env.ha?.nlb;
    if (env.ha?.vipMode !== "nlb" || !settings) throw new Error(`environment '${env.name}' is not in ha.vipMode nlb (the loader should have said so)`);
    const quota = env.access.securityGroupRuleQuota ?? DEFAULT_RULES_PER_GROUP;
    const loadBalancers: Record<string, Lb> = {};
    const groups: Record<string, SecurityGroup[]> = {};
    const groupIds: Record<string, string> = {};
    const targetGroups: Record<string, LbTargetGroup> = {};
    const listeners: Record<string, LbListener> = {};
    const listenersOf = nlbListeners(env);

    for (const vip of env.vips) {
      const zones = vip.nlb ?? [];
      const parts = spreadRules(nlbSecurityRules(env, vip.name), quota);
      groups[vip.name] = parts.map((part, i) => {
        const suffix = i === 0 ? "" : `-${i + 1}`;
        const group = new SecurityGroup(this, `security-group-${vip.name}${suffix}`, {
          name: `imaging-lb-${env.name}-nlb-${vip.name}${suffix}`,
          description: `imaging-lb ${env.name} NLB of VIP ${vip.name}: clients in, the nodes out${i === 0 ? "" : ` (group ${i + 1})`}`,
          vpcId: props.network.vpcId,
          tags: { Name: `${env.name}-nlb-${vip.name}${suffix}` },
        });
        for (const rule of part) {
          const config = {
            securityGroupId: group.id,
            description: rule.description,
            ipProtocol: rule.protocol,
            cidrIpv4: rule.cidr,
            fromPort: rule.port,
            toPort: rule.toPort ?? rule.port,
          };
          if (rule.direction === "ingress") new VpcSecurityGroupIngressRule(group, rule.key, config);
          else new VpcSecurityGroupEgressRule(group, rule.key, config);
        }
        return group;
      });
      groupIds[nlbGroupName(vip.name)] = groups[vip.name][0].id;

      const lb = new Lb(this, `load-balancer-${vip.name}`, {
        name: awsLbName(env.name, vip.name),
        internal: true,
        loadBalancerType: "network",
        ipAddressType: "ipv4",
        securityGroups: groups[vip.name].map((g) => g.id),
        subnetMapping: zones.map((z) => ({ subnetId: props.network.subnetId(z.subnet.key), privateIpv4Address: z.address })),
        enableCrossZoneLoadBalancing: settings.crossZone,
        tags: { Name: `${env.name}-${vip.name}` },
      });
      loadBalancers[vip.name] = lb;

      for (const listener of listenersOf.filter((l) => l.vip === vip.name)) {
        const key = `${vip.name}/${listener.port}`;
        const group = new LbTargetGroup(this, `target-group-${vip.name}-${listener.port}`, {
          name: awsLbName(env.name, vip.name, String(listener.port)),
          port: listener.port,
          protocol: "TCP",
          targetType: "ip",
          vpcId: props.network.vpcId,
          preserveClientIp: "true",
          deregistrationDelay: String(settings.drainSeconds),
          connectionTermination: true,
          healthCheck: {
            enabled: true,
            protocol: "HTTP",
            port: String(NLB_HEALTH_CHECK.port),
            path: NLB_HEALTH_CHECK.path,
            matcher: NLB_HEALTH_CHECK.matcher,
            interval: NLB_HEALTH_CHECK.intervalSeconds,
            timeout: NLB_HEALTH_CHECK.timeoutSeconds,
            healthyThreshold: NLB_HEALTH_CHECK.healthyThreshold,
            unhealthyThreshold: NLB_HEALTH_CHECK.unhealthyThreshold,
          },
          targetHealthState: [{ enableUnhealthyConnectionTermination: false }],
          tags: { Name: `${env.name}-${vip.name}-${listener.port}`, "imaging-lb:service": listener.service },
        });
        targetGroups[key] = group;
        listeners[key] = new LbListener(this, `listener-${vip.name}-${listener.port}`, {
          loadBalancerArn: lb.arn,
          port: listener.port,
          protocol: "TCP",
          tcpIdleTimeoutSeconds: listener.idleTimeoutSeconds,
          defaultAction: [{ type: "forward", targetGroupArn: group.arn }],
          tags: { Name: `${env.name}-${vip.name}-${listener.port}`, "imaging-lb:service": listener.service },
        });
      }
    }
    this.loadBalancers = loadBalancers;
    this.securityGroups = groups;
    this.groupIds = groupIds;
    this.targetGroups = targetGroups;
    this.listeners = listeners;
  }

  /**
   * Registers each node's addresses of the VIPs in their target groups, through the node's drain step.
   * Raising a node's generation replaces, in this order (Terraform destroys dependents first): its target
   * registrations (the NLB sends it no new connection; established ones go on), its drain step (whose
   * destroy waits `ha.nlb.drainTime` on the machine running the deploy: `node`, which cdktf needs anyway),
   * its instance; then creates the instance, the drain step and the registrations again. The NLB sends the
   * new node connections once its health checks pass (2 × 5 s).
   */
  attach(nodes: Readonly<Record<string, LoadBalancerNode>>): void {
    const env = this.env;
    const drainSeconds = env.ha?.nlb?.drainSeconds ?? 0;
    for (const node of env.nodes) {
      const lbNode = nodes[node.name];
      if (!lbNode) throw new Error(`attach: no node '${node.name}'`);
      const marker = lbNode.node.tryFindChild("generation");
      if (!(marker instanceof TerraformResource)) throw new Error(`node '${node.name}' has no generation marker`);
      const replacedWith = [`${marker.terraformResourceType}.${marker.friendlyUniqueId}`];
      const drain = new TerraformData(this, `drain-${node.name}`, {
        input: { node: node.name, drainSeconds },
        dependsOn: [lbNode.instance],
        lifecycle: { replaceTriggeredBy: replacedWith },
        provisioners: [
          {
            type: "local-exec",
            when: "destroy",
            command: `node -e "console.log('imaging-lb: ${node.name} drains for ${drainSeconds} s (ha.nlb.drainTime) before its instance goes');setTimeout(function(){},${drainSeconds * 1000})"`,
          },
        ],
      });
      this.drains[node.name] = drain;
      for (const vip of env.vips) {
        const zone = vip.nlb?.find((z) => z.node === node.name);
        if (!zone) continue;
        for (const [key, group] of Object.entries(this.targetGroups)) {
          if (!key.startsWith(`${vip.name}/`)) continue;
          const port = Number(key.split("/")[1]);
          this.attachments[`${key}/${node.name}`] = new LbTargetGroupAttachment(this, `target-${vip.name}-${port}-${node.name}`, {
            targetGroupArn: group.arn,
            targetId: zone.target,
            port,
            dependsOn: [drain],
            lifecycle: { replaceTriggeredBy: replacedWith },
          });
        }
      }
    }
  }
}
