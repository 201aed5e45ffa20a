/**
 * Security group quotas. AWS counts inbound and outbound rules per security group (default 60 each,
 * "Inbound or outbound rules per security group", quota code L-0EA8095F, or the raised quota declared in
 * `access.securityGroupRuleQuota`), and an ENI takes up to 5 security groups (L-2AFB9258; AWS keeps
 * groups per ENI × rules per group at 1000 at most). So an ENI's rules ({@link securityRules}, contiguous
 * ports already merged into ranges) are spread over as many groups as needed ({@link spreadRules}), and
 * what still does not fit — more than 5 groups' worth — is refused when the environment file is loaded
 * (not at `terraform apply`, where AWS refuses a rule after half the stack exists).
 * Pure: imports nothing from cdktf.
 */
import { ResolvedEnvironment } from "../config/model";
import { planInterfaces } from "./interface-plan";
import { isNlb } from "./nlb";
import { SecurityRule, nlbSecurityRules, rulePeer, securityRules } from "./security-rules";

/** AWS's default quota of inbound (and, separately, outbound) rules per security group. */
export const DEFAULT_RULES_PER_GROUP = 60;
/** AWS's default quota of security groups per network interface. */
export const DEFAULT_GROUPS_PER_INTERFACE = 5;
/** AWS's limit on security groups per network interface × rules per security group. */
const GROUPS_TIMES_RULES_LIMIT = 1000;

/** How many groups an ENI can take with `quota` rules per group: 5, fewer when the raised quota needs it. */
export function groupsPerInterface(quota = DEFAULT_RULES_PER_GROUP): number {
  return Math.max(1, Math.min(DEFAULT_GROUPS_PER_INTERFACE, Math.floor(GROUPS_TIMES_RULES_LIMIT / quota)));
}

/**
 * An ENI's rules as security groups of at most `quota` inbound and `quota` outbound rules each: in key
 * order, the first `quota` of each direction in the first group, the next in the second, and so on. Rules
 * that fit one group stay in one group (the first, as before groups were spread). Always at least one group.
 */
export function spreadRules(rules: readonly SecurityRule[], quota = DEFAULT_RULES_PER_GROUP): SecurityRule[][] {
  const groups: SecurityRule[][] = [[]];
  for (const direction of ["ingress", "egress"] as const) {
    const list = rules.filter((r) => r.direction === direction).sort((a, b) => a.key.localeCompare(b.key));
    list.forEach((rule, i) => {
      const at = Math.floor(i / quota);
      while (groups.length <= at) groups.push([]);
      groups[at].push(rule);
    });
  }
  return groups.map((g) => g.sort((a, b) => a.key.localeCompare(b.key)));
}

/** One quota problem: the field to point at and what to do. */
export interface QuotaProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * The ENIs whose rules exceed `quota` × {@link groupsPerInterface} in a direction, one problem per
 * (direction, side) at the field that drives the count: `access.clientCidrs` for inbound client-side
 * rules, `servers` for outbound rules to the real servers, `access.adminCidrs` for inbound server-side rules.
 */
export function securityGroupQuotaProblems(env: ResolvedEnvironment, quota = DEFAULT_RULES_PER_GROUP): QuotaProblem[] {
  const problems = new Map<string, QuotaProblem>();
  const limit = quota * groupsPerInterface(quota);
  for (const node of env.nodes) {
    for (const iface of planInterfaces(env, node)) {
      const rules = securityRules(env, node, iface);
      for (const direction of ["ingress", "egress"] as const) {
        const list = rules.filter((r) => r.direction === direction);
        if (list.length <= limit) continue;
        const path = direction === "egress" ? ["servers"] : iface.clientSide ? ["access", "clientCidrs"] : ["access", "adminCidrs"];
        const key = `${direction} ${path.join(".")}`;
        if (problems.has(key)) continue;
        problems.set(key, { path, message: explain(`${node.name} ${iface.name}`, direction, list, quota) });
      }
    }
  }
  if (isNlb(env)) {
    for (const vip of env.vips) {
      const rules = nlbSecurityRules(env, vip.name);
      for (const direction of ["ingress", "egress"] as const) {
        const list = rules.filter((r) => r.direction === direction);
        if (list.length <= limit) continue;
        const path = direction === "ingress" ? ["access", "clientCidrs"] : ["vips", vip.name];
        const key = `${direction} ${path.join(".")}`;
        if (problems.has(key)) continue;
        problems.set(key, { path, message: explain(`the NLB of VIP ${vip.name}`, direction, list, quota) });
      }
    }
  }
  return [...problems.values()];
}

function explain(where: string, direction: "ingress" | "egress", rules: readonly SecurityRule[], quota: number): string {
  const peers = new Set(rules.map(rulePeer)).size;
  const ports = new Set(rules.map((r) => (r.port === undefined ? "vrrp" : `${r.port}-${r.toPort ?? r.port}`))).size;
  const what = direction === "ingress" ? "inbound" : "outbound";
  const groups = groupsPerInterface(quota);
  const head = `the security groups of ${where} need ${rules.length} ${what} rules (${peers} address blocks × up to ${ports} ports or ranges), over the ${groups * quota} that fit: ${groups} security groups per network interface × the quota of ${quota} ${what} rules per group`;
  const quotaFix = `or raise the quota in Service Quotas ("Inbound or outbound rules per security group", L-0EA8095F) and declare it as access.securityGroupRuleQuota (currently ${quota})`;
  if (direction === "egress") {
    return `${head}: one rule per real server address and port; give the servers contiguous ports where the application allows (merged into one range rule), serve fewer ports per server (servers.<name>.services), split the servers over two environments, ${quotaFix}`;
  }
  return `${head}: one rule per address block and port; merge the blocks (access.clientCidrs, access.adminCidrs) into fewer, larger ones (e.g. one /16 instead of several /24s), give fewer services these blocks (services.<name>.clientCidrs), ${quotaFix}`;
}
