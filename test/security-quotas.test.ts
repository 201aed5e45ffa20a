/**
 * Security group quotas at validation time: rules are counted per ENI and direction when the file is
 * loaded (contiguous ports merged into ranges first); what fits in 5 groups of the per-group quota is
 * spread over that many groups (lib/constructs/security-groups.ts), and an environment beyond that is
 * refused with the file, line and field that drive the count, and the fix.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { ConfigError } from "../lib/config/errors";
import { parseEnvironment } from "../lib/load/load";
import { planInterfaces } from "../lib/plan/interface-plan";
import { groupsPerInterface } from "../lib/plan/security-quotas";
import { securityRules } from "../lib/plan/security-rules";

const EXAMPLES = join(__dirname, "..", "..", "examples");
const example = (file: string) => parse(readFileSync(join(EXAMPLES, file), "utf8")) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function problemsOf(text: string): string {
  try {
    parseEnvironment(text, "sites/big.yaml");
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  }
  assert.fail("expected the environment to be refused");
}

describe("security group quotas", () => {
  const cidrs = (n: number) => Array.from({ length: n }, (_, i) => `10.${i + 1}.0.0/24`);
  const servers = (doc: Record<string, any>, n: number) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    for (let i = 1; i <= n; i++) doc.servers[`ei-core-${i}`] = { address: `10.20.1.${20 + i}`, aeTitle: "EI_CORE" };
  };

  it("seven client CIDRs on the AGFA EI services (63 inbound rules on eth1, over one group's 60) load: they are spread over two groups", () => {
    const doc = example("agfa-ei-two-arm.yaml");
    doc.access.clientCidrs = cidrs(7);
    assert.equal(parseEnvironment(stringify(doc), "sites/big.yaml").name, doc.name);
  });

  it("thirty-four client CIDRs (306 inbound rules on eth1, over 5 groups × 60) are refused at access.clientCidrs, with the fix", () => {
    const doc = example("agfa-ei-two-arm.yaml");
    doc.access.clientCidrs = cidrs(34);
    const text = stringify(doc);
    const message = problemsOf(text);
    const line = text.split("\n").findIndex((l) => l.startsWith("  clientCidrs:")) + 1;
    assert.match(message, new RegExp(`sites/big\\.yaml:${line}:\\d+ access\\.clientCidrs: the security groups of lb-a eth1 need 306 inbound rules \\(34 address blocks × up to 9 ports or ranges\\), over the 300 that fit: 5 security groups per network interface × the quota of 60 inbound rules per group: one rule per address block and port; merge the blocks`));
    assert.match(message, /access\.securityGroupRuleQuota \(currently 60\)/);
  });

  it("thirty-three servers on every AGFA EI port fit (299 outbound rules on eth0, in 5 groups); thirty-four are refused at servers", () => {
    const doc = example("agfa-ei-two-arm.yaml");
    servers(doc, 33);
    parseEnvironment(stringify(doc), "sites/many.yaml");
    servers(doc, 34);
    const message = problemsOf(stringify(doc));
    assert.match(message, /sites\/big\.yaml:\d+:\d+ servers: the security groups of lb-a eth0 need 308 outbound rules \(35 address blocks × up to 9 ports or ranges\), over the 300 that fit: 5 security groups per network interface × the quota of 60 outbound rules per group: one rule per real server address and port/);
  });

  it("a raised quota declared in access.securityGroupRuleQuota lets the same environment load (5 groups × 100)", () => {
    const doc = example("agfa-ei-two-arm.yaml");
    doc.access.clientCidrs = cidrs(34);
    doc.access.securityGroupRuleQuota = 100;
    assert.equal(parseEnvironment(stringify(doc), "sites/big.yaml").name, doc.name);
  });

  it("groups per ENI × rules per group stay within AWS's 1000: 5 groups up to a quota of 200, fewer above", () => {
    assert.deepEqual([60, 100, 200, 250, 500, 1000].map((q) => groupsPerInterface(q)), [5, 5, 5, 4, 2, 1]);
  });

  it("contiguous ports are one range rule (HL7 2310-2311), counted once", () => {
    const env = parseEnvironment(readFileSync(join(EXAMPLES, "agfa-ei-two-arm.yaml"), "utf8"), "two-arm.yaml");
    const node = env.nodes[0];
    const eth1 = planInterfaces(env, node).find((p) => p.clientSide);
    assert.ok(eth1);
    const rules = securityRules(env, node, eth1);
    const hl7 = rules.filter((r) => r.port === 2310 || r.port === 2311);
    assert.ok(hl7.length > 0);
    for (const r of hl7) assert.deepEqual([r.port, r.toPort], [2310, 2311], r.key);
    assert.ok(rules.some((r) => /^ingress-tcp-2310-2311-/.test(r.key)));
  });

  it("the bundled examples stay within the default quota", () => {
    for (const file of ["agfa-ei-one-arm.yaml", "agfa-ei-two-arm.yaml", "agfa-ei-ha-pair.yaml"]) {
      parseEnvironment(readFileSync(join(EXAMPLES, file), "utf8"), file);
    }
  });
});
