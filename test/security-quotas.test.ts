/**
 * Security group quotas at validation time: rules are counted per group and direction when the file is
 * loaded (contiguous ports merged into ranges first), and an environment over AWS's default quota of 60
 * is refused with the file, line and field that drive the count, and the fix.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { ConfigError } from "../lib/config/errors";
import { parseEnvironment } from "../lib/config/load";
import { planInterfaces } from "../lib/constructs/interface-plan";
import { securityRules } from "../lib/constructs/security-rules";

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
  it("seven client CIDRs on the AGFA EI services (70 inbound rules on eth1) are refused at access.clientCidrs, with the fix", () => {
    const doc = example("agfa-ei-two-arm.yaml");
    doc.access.clientCidrs = ["10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24", "10.4.0.0/24", "10.5.0.0/24", "10.6.0.0/24", "10.7.0.0/24"];
    const text = stringify(doc);
    const message = problemsOf(text);
    const line = text.split("\n").findIndex((l) => l.startsWith("  clientCidrs:")) + 1;
    assert.match(message, new RegExp(`sites/big\\.yaml:${line}:\\d+ access\\.clientCidrs: the security group of lb-\\w+ eth1 needs (\\d+) inbound rules`));
    assert.ok(Number(/needs (\d+) inbound/.exec(message)?.[1]) > 60);
    assert.match(message, /over the quota of 60 inbound rules per security group/);
    assert.match(message, /merge the blocks .* into fewer, larger ones/);
    assert.match(message, /access\.securityGroupRuleQuota/);
  });

  it("six servers on every AGFA EI port fit (HL7's ports merged: 56 outbound rules, was 62); seven are refused at servers", () => {
    const doc = example("agfa-ei-two-arm.yaml");
    for (let i = 1; i <= 6; i++) doc.servers[`ei-core-${i}`] = { address: `10.20.1.${20 + i}`, aeTitle: "EI_CORE" };
    parseEnvironment(stringify(doc), "sites/six.yaml");
    doc.servers["ei-core-7"] = { address: "10.20.1.27", aeTitle: "EI_CORE" };
    const message = problemsOf(stringify(doc));
    assert.match(message, /sites\/big\.yaml:\d+:\d+ servers: the security group of lb-\w+ eth0 needs 65 outbound rules/);
    assert.match(message, /one rule per real server address and port/);
  });

  it("a raised quota declared in access.securityGroupRuleQuota lets the same environment load", () => {
    const doc = example("agfa-ei-two-arm.yaml");
    doc.access.clientCidrs = ["10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24", "10.4.0.0/24", "10.5.0.0/24", "10.6.0.0/24", "10.7.0.0/24"];
    doc.access.securityGroupRuleQuota = 100;
    assert.equal(parseEnvironment(stringify(doc), "sites/big.yaml").name, doc.name);
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
