/**
 * Security group quotas, checked when the environment file is loaded (not at `terraform apply`, where
 * AWS refuses the 61st rule after half the stack exists): every ENI of every node has one group, whose
 * inbound and outbound rules ({@link securityRules}, contiguous ports already merged into ranges) are
 * counted against AWS's default quota of 60 per direction ("Inbound or outbound rules per security
 * group", quota code L-0EA8095F) or the raised quota declared in `access.securityGroupRuleQuota`.
 * Pure: imports nothing from cdktf.
 */
import { ResolvedEnvironment } from "../config/model";
import { planInterfaces } from "./interface-plan";
import { SecurityRule, securityRules } from "./security-rules";

/** AWS's default quota of inbound (and, separately, outbound) rules per security group. */
export const DEFAULT_RULES_PER_GROUP = 60;

/** One quota problem: the field to point at and what to do. */
export interface QuotaProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * The groups whose rules exceed `quota` in a direction, one problem per (direction, side) at the field
 * that drives the count: `access.clientCidrs` for inbound client-side rules, `servers` for outbound
 * rules to the real servers, `access.adminCidrs` for inbound server-side rules.
 */
export function securityGroupQuotaProblems(env: ResolvedEnvironment, quota = DEFAULT_RULES_PER_GROUP): QuotaProblem[] {
  const problems = new Map<string, QuotaProblem>();
  for (const node of env.nodes) {
    for (const iface of planInterfaces(env, node)) {
      const rules = securityRules(env, node, iface);
      for (const direction of ["ingress", "egress"] as const) {
        const list = rules.filter((r) => r.direction === direction);
        if (list.length <= quota) continue;
        const path = direction === "egress" ? ["servers"] : iface.clientSide ? ["access", "clientCidrs"] : ["access", "adminCidrs"];
        const key = `${direction} ${path.join(".")}`;
        if (problems.has(key)) continue;
        problems.set(key, { path, message: explain(`${node.name} ${iface.name}`, direction, list, quota) });
      }
    }
  }
  return [...problems.values()];
}

function explain(where: string, direction: "ingress" | "egress", rules: readonly SecurityRule[], quota: number): string {
  const peers = new Set(rules.map((r) => r.cidr)).size;
  const ports = new Set(rules.map((r) => (r.port === undefined ? "vrrp" : `${r.port}-${r.toPort ?? r.port}`))).size;
  const what = direction === "ingress" ? "inbound" : "outbound";
  const head = `the security group of ${where} needs ${rules.length} ${what} rules (${peers} address blocks × up to ${ports} ports or ranges), over the quota of ${quota} ${what} rules per security group`;
  const quotaFix = `or raise the quota in Service Quotas ("Inbound or outbound rules per security group", L-0EA8095F) and declare it as access.securityGroupRuleQuota (currently ${quota})`;
  if (direction === "egress") {
    return `${head}: one rule per real server address and port; give the servers contiguous ports where the application allows (merged into one range rule), serve fewer ports per server (servers.<name>.services), split the servers over two environments, ${quotaFix}`;
  }
  return `${head}: one rule per address block and port; merge the blocks (access.clientCidrs, access.adminCidrs) into fewer, larger ones (e.g. one /16 instead of several /24s), give fewer services these blocks (services.<name>.clientCidrs), ${quotaFix}`;
}
