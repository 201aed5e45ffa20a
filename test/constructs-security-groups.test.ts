/**
 * Security groups: exactly the rules a sample environment needs, per ENI, and nothing else; spread over
 * more groups when one group's quota is not enough, without changing the groups of sites that fit one.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { Testing } from "cdktf";
import { parseEnvironment } from "../lib/load/load";
import { ImagingLbStack, ImagingLbStackProps } from "../lib/constructs/imaging-lb-stack";
import { environment } from "./helpers/env";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SAMPLE = environment({
  name: "sg",
  vips: { main: null, web: { address: "10.20.2.100" }, core: { address: "10.20.2.101" } },
  services: {
    app: null,
    // port translation, own client CIDRs, explicit check port
    web: { vip: "web", frontendPorts: [443], backendPort: 8443, mode: "tcp", clientCidrs: ["10.1.0.0/16"], healthCheck: { type: "tcp", port: 9000 } },
    // no backendPort: the servers get the front-end ports
    dicom: { vip: "core", frontendPorts: [104, 110], mode: "tcp" },
    // HTTP redirect port and a path route to another port
    viewer: {
      vip: "core",
      frontendPorts: [443],
      backendPort: 8080,
      mode: "http",
      tls: { mode: "terminate", certificate: "web", redirectHttpPort: 80 },
      routes: { xt: { pathPrefixes: ["/x/"], backendPort: 9090 } },
    },
  },
  servers: { s2: { services: { web: { port: 8444 } } } }, // s2 serves only web, on its own port
  tls: { certificates: { web: { secretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:sg/web-AbCdEf" } } },
  admin: { statsPasswordSecretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:sg/stats-AbCdEf" },
});

function synth(raw: object, props: Partial<ImagingLbStackProps> = {}): Json {
  const env = parseEnvironment(JSON.stringify(raw), "test.yaml");
  const stack = new ImagingLbStack(Testing.app(), env.name, { environment: env, ...props });
  return JSON.parse(Testing.synth(stack, true)) as Json;
}

/** The rules of each security group, as "direction protocol port cidr" lines, by group id prefix. */
function rulesByGroup(json: Json): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const [type, direction] of [["aws_vpc_security_group_ingress_rule", "ingress"], ["aws_vpc_security_group_egress_rule", "egress"]] as const) {
    for (const rule of Object.values(json.resource[type] ?? {}) as Json[]) {
      const group = /aws_security_group\.(.*)_[0-9A-F]{8}\.id/.exec(rule.security_group_id)?.[1] ?? "?";
      const port = rule.from_port === undefined ? "-" : rule.from_port === rule.to_port ? String(rule.from_port) : `${rule.from_port}-${rule.to_port}`;
      const list = groups.get(group) ?? [];
      list.push(`${direction} ${rule.ip_protocol} ${port} ${rule.cidr_ipv4 ?? rule.cidr_ipv6 ?? rule.referenced_security_group_id}`);
      groups.set(group, list);
    }
  }
  for (const list of groups.values()) list.sort();
  return groups;
}

describe("security groups", () => {
  const single = synth(SAMPLE);
  const singleRules = rulesByGroup(single);

  it("eth1 (client side): each service's front-end and redirect ports from that service's client CIDRs only", () => {
    assert.deepEqual(singleRules.get("node-lb-a_security-groups_eth1"), [
      "ingress tcp 104 10.0.0.0/8",
      "ingress tcp 110 10.0.0.0/8",
      "ingress tcp 443 10.0.0.0/8",
      "ingress tcp 443 10.1.0.0/16",
      "ingress tcp 80 10.0.0.0/8",
    ]);
  });

  it("eth0 (server side): stats from the admin CIDRs; egress to each server /32 on the ports it serves, checks included; package and API egress", () => {
    assert.deepEqual(singleRules.get("node-lb-a_security-groups_eth0"), [
      "egress tcp 104 10.20.1.21/32", // dicom: no backendPort, front-end ports
      "egress tcp 110 10.20.1.21/32",
      "egress tcp 443 0.0.0.0/0", // AWS APIs and package mirrors (HTTPS)
      "egress tcp 80 0.0.0.0/0", // package mirrors (Ubuntu's EC2 mirrors are plain HTTP)
      "egress tcp 8080 10.20.1.21/32", // viewer backendPort (and its HTTP check)
      "egress tcp 8443 10.20.1.21/32", // web backendPort
      "egress tcp 8444 10.20.1.22/32", // web, s2's own port
      "egress tcp 9000 10.20.1.21/32", // web's check port
      "egress tcp 9000 10.20.1.22/32",
      "egress tcp 9090 10.20.1.21/32", // viewer route xt
      "ingress tcp 8404 10.99.0.0/24",
    ]);
  });

  it("package and API egress: one rule per port, each saying what it is for", () => {
    const egress = Object.entries(single.resource.aws_vpc_security_group_egress_rule)
      .filter(([, r]) => (r as Json).cidr_ipv4 === "0.0.0.0/0")
      .map(([id, r]) => [id.replace(/_[0-9A-F]{8}$/, ""), (r as Json).description])
      .sort();
    assert.deepEqual(egress, [
      ["node-lb-a_security-groups_eth0_egress-tcp-443-0-0-0-0_0", "AWS APIs and package mirrors (HTTPS)"],
      ["node-lb-a_security-groups_eth0_egress-tcp-80-0-0-0-0_0", "package mirrors (HTTP)"],
    ]);
  });

  it("only the node's two groups and the endpoints' group exist; the endpoints accept HTTPS from the VPC only", () => {
    assert.deepEqual([...singleRules.keys()].sort(), ["network_endpoints", "node-lb-a_security-groups_eth0", "node-lb-a_security-groups_eth1"]);
    assert.deepEqual(singleRules.get("network_endpoints"), ["ingress tcp 443 10.20.0.0/16"]);
    for (const group of Object.values(single.resource.aws_security_group) as Json[]) {
      assert.equal(group.ingress, undefined, "no inline ingress");
      assert.equal(group.egress, undefined, "no inline egress (Terraform removes the default allow-all)");
    }
  });

  it("one-arm: a single group with the client, admin and server rules together", () => {
    const json = synth({
      ...SAMPLE,
      network: { layout: "one-arm", vpcCidr: "10.20.0.0/16", subnet: { cidr: "10.20.1.0/24", availabilityZone: "eu-west-1a" }, natSubnet: { cidr: "10.20.0.0/24", availabilityZone: "eu-west-1a" } },
      loadBalancer: { nodes: { "lb-a": { internalAddress: "10.20.1.10" } } },
      vips: { web: { address: "10.20.1.100" }, core: { address: "10.20.1.101" } },
    });
    const rules = rulesByGroup(json);
    assert.deepEqual([...rules.keys()].sort(), ["network_endpoints", "node-lb-a_security-groups_eth0"]);
    const expected = [...singleRules.get("node-lb-a_security-groups_eth0")!, ...singleRules.get("node-lb-a_security-groups_eth1")!].sort();
    assert.deepEqual(rules.get("node-lb-a_security-groups_eth0"), expected);
  });

  it("HA pair: VRRP (IP protocol 112) and TCP 10000 between the two nodes' eth0 only", () => {
    const json = synth({
      ...SAMPLE,
      loadBalancer: {
        nodes: {
          "lb-a": { internalAddress: "10.20.1.10", externalAddress: "10.20.2.10" },
          "lb-b": { internalAddress: "10.20.1.11", externalAddress: "10.20.2.11" },
        },
        ha: { vipMode: "secondary-ip" },
      },
    });
    const rules = rulesByGroup(json);
    const peerRules = (group: string) => rules.get(group)!.filter((r) => / 112 | 10000 /.test(r));
    assert.deepEqual(peerRules("node-lb-a_security-groups_eth0"), [
      "egress 112 - 10.20.1.11/32",
      "egress tcp 10000 10.20.1.11/32",
      "ingress 112 - 10.20.1.11/32",
      "ingress tcp 10000 10.20.1.11/32",
    ]);
    assert.deepEqual(peerRules("node-lb-b_security-groups_eth0"), [
      "egress 112 - 10.20.1.10/32",
      "egress tcp 10000 10.20.1.10/32",
      "ingress 112 - 10.20.1.10/32",
      "ingress tcp 10000 10.20.1.10/32",
    ]);
    assert.deepEqual(peerRules("node-lb-a_security-groups_eth1"), []);
    assert.deepEqual(rules.get("node-lb-b_security-groups_eth1"), singleRules.get("node-lb-a_security-groups_eth1"));
  });

  it("no port 22 anywhere and no 0.0.0.0/0 rule other than the package and API egress (TCP 80, 443)", () => {
    for (const json of [single]) {
      for (const [group, rules] of rulesByGroup(json)) {
        for (const rule of rules) {
          assert.doesNotMatch(rule, / 22 /, `${group}: ${rule}`);
          if (rule.endsWith(" 0.0.0.0/0")) assert.ok(["egress tcp 443 0.0.0.0/0", "egress tcp 80 0.0.0.0/0"].includes(rule), `${group}: ${rule}`);
          assert.doesNotMatch(rule, / -1 /, `${group}: all-protocol rule ${rule}`);
        }
      }
    }
  });

  it("packageEgressCidrs replaces 0.0.0.0/0 in the package and API egress (e.g. endpoints plus a mirror)", () => {
    const rules = rulesByGroup(synth(SAMPLE, { packageEgressCidrs: ["10.20.0.0/16", "192.168.7.8/32"] }));
    const egress = rules.get("node-lb-a_security-groups_eth0")!.filter((r) => /^egress tcp (80|443) /.test(r));
    assert.deepEqual(egress, ["egress tcp 443 10.20.0.0/16", "egress tcp 443 192.168.7.8/32", "egress tcp 80 10.20.0.0/16", "egress tcp 80 192.168.7.8/32"]);
    const none = rulesByGroup(synth(SAMPLE, { packageEgressCidrs: [] }));
    assert.deepEqual(none.get("node-lb-a_security-groups_eth0")!.filter((r) => !r.endsWith("/32") && r.startsWith("egress")), []);
  });

  it("rule ids come from the rule content, never from list positions", () => {
    const ids = Object.keys(single.resource.aws_vpc_security_group_ingress_rule);
    assert.ok(ids.some((id) => id.startsWith("node-lb-a_security-groups_eth1_ingress-tcp-443-10-1-0-0_16_")), ids.join(", "));
  });

  it("more rules than AWS's default quota of 60 per group (a raised quota declared): still a warning on the group, a reminder to have the quota raised before deploying", () => {
    const servers = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`s${i}`, { address: `10.20.1.${30 + i}` }]));
    const access = { ...(SAMPLE as { access: object }).access, securityGroupRuleQuota: 200 };
    const env = parseEnvironment(JSON.stringify({ ...SAMPLE, servers, access }), "test.yaml");
    const stack = new ImagingLbStack(Testing.app(), env.name, { environment: env });
    Testing.synth(stack, true);
    const warnings = stack.node.findAll().flatMap((c) => c.node.metadata.filter((m) => m.type === "@cdktf/warn").map((m) => `${c.node.path}: ${m.data}`));
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], /^sg\/node-lb-a\/security-groups\/eth0: \d+ egress rules exceed AWS's default quota of 60 per security group/);
  });

  describe("more rules than one group takes: spread over groups eth0, eth0-2, ... (5 per ENI at most)", () => {
    const FIXTURES = join(__dirname, "..", "..", "test", "fixtures", "security-groups");
    /** The node resources 0.2.0 synthesized for a site: its groups, their rules, and each ENI's group list. */
    const groupResources = (json: Json) => ({
      aws_security_group: Object.fromEntries(Object.entries(json.resource.aws_security_group).filter(([id]) => !id.startsWith("network_"))),
      aws_vpc_security_group_ingress_rule: Object.fromEntries(Object.entries(json.resource.aws_vpc_security_group_ingress_rule).filter(([id]) => !id.startsWith("network_"))),
      aws_vpc_security_group_egress_rule: Object.fromEntries(Object.entries(json.resource.aws_vpc_security_group_egress_rule).filter(([id]) => !id.startsWith("network_"))),
      aws_network_interface: Object.fromEntries(Object.entries(json.resource.aws_network_interface).map(([id, eni]) => [id, { security_groups: (eni as Json).security_groups }])),
    });

    it("a site that fits one group per ENI synthesizes exactly the groups, rules and ENI group lists of 0.2.0 (nothing replaced on upgrade)", () => {
      const recorded = JSON.parse(readFileSync(join(FIXTURES, "synthesized-0.2.0.json"), "utf8")) as Record<string, Json>;
      assert.deepEqual(Object.keys(recorded).sort(), ["ha-pair.yaml", "six-servers.yaml"]);
      for (const [file, expected] of Object.entries(recorded)) {
        const json = synth(parse(readFileSync(join(FIXTURES, file), "utf8")) as object);
        const now = groupResources(json);
        // Resource ids (the construct ids) and every attribute, as 0.2.0 wrote them.
        for (const type of Object.keys(expected)) {
          assert.deepEqual(Object.keys(now[type as keyof typeof now]).sort(), Object.keys(expected[type]).sort(), `${file}: ${type} ids`);
          assert.deepEqual(now[type as keyof typeof now], expected[type], `${file}: ${type}`);
        }
      }
    });

    it("nine servers on every AGFA EI port (83 outbound rules on eth0): a second group eth0-2 takes the rules past the 60th; the ENI carries both", () => {
      const doc = parse(readFileSync(join(__dirname, "..", "..", "examples", "agfa-ei-two-arm.yaml"), "utf8")) as Json;
      for (let i = 1; i <= 9; i++) doc.servers[`ei-core-${i}`] = { address: `10.20.1.${20 + i}`, aeTitle: "EI_CORE" };
      const json = synth(parse(stringify(doc)) as object);
      const byGroup = rulesByGroup(json);
      assert.deepEqual([...byGroup.keys()].sort(), ["network_endpoints", "node-lb-a_security-groups_eth0", "node-lb-a_security-groups_eth0-2", "node-lb-a_security-groups_eth1"]);
      const count = (group: string, direction: string) => byGroup.get(group)!.filter((r) => r.startsWith(`${direction} `)).length;
      assert.deepEqual([count("node-lb-a_security-groups_eth0", "egress"), count("node-lb-a_security-groups_eth0", "ingress")], [60, 1]);
      assert.deepEqual([count("node-lb-a_security-groups_eth0-2", "egress"), count("node-lb-a_security-groups_eth0-2", "ingress")], [23, 0]);

      const group = (id: string) => Object.entries(json.resource.aws_security_group).find(([k]) => k.replace(/_[0-9A-F]{8}$/, "") === id)!;
      const [firstId, first] = group("node-lb-a_security-groups_eth0");
      const [secondId, second] = group("node-lb-a_security-groups_eth0-2");
      assert.equal((first as Json).name, "imaging-lb-ei-two-arm-lb-a-eth0");
      assert.equal((first as Json).description, "imaging-lb ei-two-arm lb-a eth0 (server side)");
      assert.deepEqual(second, {
        name: "imaging-lb-ei-two-arm-lb-a-eth0-2",
        description: "imaging-lb ei-two-arm lb-a eth0 (server side; more rules, group 2)",
        tags: { Name: "ei-two-arm-lb-a-eth0-2" },
        vpc_id: (first as Json).vpc_id,
      });
      const eni = Object.entries(json.resource.aws_network_interface).find(([k]) => k.startsWith("node-lb-a_eth0_"))![1] as Json;
      assert.deepEqual(eni.security_groups, [`\${aws_security_group.${firstId}.id}`, `\${aws_security_group.${secondId}.id}`]);

      // In key order: the first 60 outbound rules in eth0 (ids under it, as before), the rest in eth0-2.
      const egress = Object.keys(json.resource.aws_vpc_security_group_egress_rule).filter((id) => id.startsWith("node-lb-a_security-groups_eth0")).map((id) => id.replace(/_[0-9A-F]{8}$/, ""));
      const keys = (prefix: string) => egress.filter((id) => id.startsWith(`${prefix}_`)).map((id) => id.slice(prefix.length + 1)).sort((a, b) => a.localeCompare(b));
      const inFirst = keys("node-lb-a_security-groups_eth0");
      const inSecond = keys("node-lb-a_security-groups_eth0-2");
      assert.deepEqual([...inFirst, ...inSecond], [...inFirst, ...inSecond].sort((a, b) => a.localeCompare(b)), "the first group holds the rules that sort first");
      assert.equal(inFirst.length, 60);
    });
  });
});
