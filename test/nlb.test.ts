/**
 * ha.vipMode nlb (issue 24), below the end-to-end bed: what the loader accepts and refuses (every problem at
 * its field), the haproxy.cfg each node gets (its own VIP addresses, the NLB health page), the bundle and
 * the machine (no keepalived, no MASTER), the synthesized stack (an internal NLB per VIP with a fixed
 * address per zone, TCP listeners with derived idle timeouts, IP targets with the client's address
 * preserved, the health check, the security groups, the replacement order), and the tools (diff, diagram,
 * init); and three nodes in three zones.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Testing } from "cdktf";
import { stringify } from "yaml";
import { nodeArtifacts } from "../lib/node/artifacts";
import { ConfigError } from "../lib/config/errors";
import { parseEnvironment } from "../lib/load/load";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";
import { awsLbName } from "../lib/constructs/network-load-balancers";
import { nlbSecurityRules, securityRules } from "../lib/plan/security-rules";
import { planInterfaces } from "../lib/plan/interface-plan";
import { diffEnvironments, formatDiff } from "../lib/cli/commands/diff";
import { renderMermaid, renderSvg } from "../lib/diagram";
import { renderHaproxy } from "../lib/haproxy/build";
import { renderStarter } from "../lib/init/starter";
import { haShape, nlbDetectionSeconds, nlbListeners } from "../lib/plan/nlb";
import { alarmSpecs } from "../lib/monitoring/alarms";
import { NLB_HEALTH_CHECK, listenerIdleSeconds } from "../lib/config/nlb-limits";
import { Fixture, environment, resolve } from "./helpers/env";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Deep-merges `patch` into `base` (null deletes). */
function merge(base: unknown, patch: unknown): unknown {
  if (patch === null) return undefined;
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(base) || !isObject(patch)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const m = merge(out[k], v);
    if (m === undefined) delete out[k];
    else out[k] = m;
  }
  return out;
}

/** A two-arm pair across eu-west-1a/b behind NLBs: VIP web (tcp 443) and VIP core (dicom 104, hl7 2310). */
function nlbEnvironment(patch: Record<string, unknown> = {}): Fixture {
  return merge(environment({
    name: "tn",
    loadBalancer: {
      nodes: {
        "lb-b": {
          internalAddress: "10.20.11.10",
          externalAddress: "10.20.12.10",
          internalSubnet: { cidr: "10.20.11.0/24", availabilityZone: "eu-west-1b" },
          externalSubnet: { cidr: "10.20.12.0/24", availabilityZone: "eu-west-1b" },
        },
      },
      ha: { vipMode: "nlb", nlb: { drainTime: "120s" } },
    },
    vips: {
      main: null,
      web: { nlb: { "lb-a": { address: "10.20.2.100", target: "10.20.2.20" }, "lb-b": { address: "10.20.12.100", target: "10.20.12.20" } } },
      core: { nlb: { "lb-a": { address: "10.20.2.101", target: "10.20.2.21" }, "lb-b": { address: "10.20.12.101", target: "10.20.12.21" } } },
    },
    services: {
      app: null,
      web: { vip: "web", frontendPorts: [443], backendPort: 8443, mode: "tcp", timeouts: { client: "10m", server: "10m" } },
      dicom: { vip: "core", frontendPorts: [104], mode: "tcp", timeouts: { client: "1h", server: "1h" } },
      hl7: { vip: "core", frontendPorts: [2310], mode: "tcp", balance: "active-backup", timeouts: { client: "24h", server: "24h" } },
    },
  }), patch) as Fixture;
}

/** The problems the loader reports for `raw`, as `path: message` lines with line numbers. */
function problems(raw: object): Array<{ path: string; line?: number; message: string }> {
  try {
    parseEnvironment(stringify(raw), "nlb.yaml");
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => ({ path: p.path, line: p.line, message: p.message }));
    throw e;
  }
  return [];
}

function synth(raw: Record<string, unknown>): Json {
  const app = Testing.app();
  const env = resolve(raw);
  const stack = new ImagingLbStack(app, env.name, { environment: env });
  return JSON.parse(Testing.synth(stack, true)) as Json;
}

const values = (json: Json, type: string): Json[] => Object.values(json.resource?.[type] ?? {});

describe("ha.vipMode nlb: the loader", () => {
  it("resolves a VIP per node (zone), the settings with their defaults, and two nodes in two zones", () => {
    const env = resolve(nlbEnvironment());
    assert.equal(env.ha?.vipMode, "nlb");
    assert.deepEqual(env.ha?.nlb, { crossZone: false, drainSeconds: 120 });
    const web = env.vips.find((v) => v.name === "web")!;
    assert.equal(web.address, "10.20.2.100", "the VIP's address is the NLB's in the primary's zone");
    assert.deepEqual(web.nlb?.map((z) => [z.node, z.subnet.availabilityZone, z.subnet.key, z.address, z.target]), [
      ["lb-a", "eu-west-1a", "external", "10.20.2.100", "10.20.2.20"],
      ["lb-b", "eu-west-1b", "lb-b-external", "10.20.12.100", "10.20.12.20"],
    ]);
    assert.deepEqual(resolve(nlbEnvironment({ loadBalancer: { ha: { nlb: null } } })).ha?.nlb, { crossZone: false, drainSeconds: 300 }, "drainTime defaults to the NLB's 300 s");
  });

  it("derives each listener's idle timeout from its service's longest idle timeout, within NLB's 60-6000 s", () => {
    const env = resolve(nlbEnvironment({ services: { web: { timeouts: { client: "20s", server: "30s" } } } }));
    assert.deepEqual(nlbListeners(env).map((l) => `${l.vip}:${l.port} ${l.service} ${l.idleTimeoutSeconds}`), ["core:104 dicom 3600", "core:2310 hl7 6000", "web:443 web 60"]);
    assert.equal(listenerIdleSeconds({ timeouts: { connect: "5s", client: "10m", server: "10m", queue: "30s", check: "3s", tunnel: "1h" } }), 3600, "a tunnel timeout counts");
  });

  it("refuses, each at its field: a VIP address besides nlb, a missing zone, addresses outside the node's subnet, both nodes in one zone", () => {
    const found = problems(
      nlbEnvironment({
        loadBalancer: {
          nodes: { "lb-b": { internalSubnet: { availabilityZone: "eu-west-1a" }, externalSubnet: { availabilityZone: "eu-west-1a" } } },
          ha: { vipMode: "nlb" },
        },
        vips: {
          web: { address: "10.20.2.100", nlb: { "lb-b": null, "lb-c": { address: "10.20.2.110", target: "10.20.2.111" } } },
          core: { nlb: { "lb-a": { target: "10.20.12.21" } } },
        },
      }),
    );
    const at = (path: string) => found.filter((p) => p.path === path).map((p) => p.message);
    assert.match(at("vips.web.address")[0] ?? "", /with ha\.vipMode nlb a VIP has an address per node/);
    assert.match(at("vips.web.nlb.lb-c")[0] ?? "", /unknown node 'lb-c'; nodes defined: lb-a, lb-b/);
    assert.match(at("vips.web.nlb")[0] ?? "", /missing lb-b: the NLB's address in lb-b's availability zone/);
    assert.match(at("vips.core.nlb.lb-a.target")[0] ?? "", /expected the VIP's address on lb-a in lb-a's client-side subnet 10\.20\.2\.0\/24 \(eu-west-1a\), got "10\.20\.12\.21"/);
    assert.match(at("loadBalancer.nodes.lb-b.externalSubnet")[0] ?? "", /expected node lb-b's client-side subnet in another availability zone than lb-a's \(eu-west-1a\), got eu-west-1a/);
    assert.ok(found.every((p) => p.line !== undefined), `every problem has its line: ${JSON.stringify(found)}`);
  });

  it("refuses HAProxy keep-alives that do not fit under a listener's idle timeout, and an idle timeout the NLB cannot hold without them", () => {
    const late = problems(nlbEnvironment({ services: { hl7: { tcpKeepaliveTimers: { idle: "2h", interval: "30s" } } } }));
    assert.deepEqual(late.map((p) => p.path), ["services.hl7.tcpKeepaliveTimers.idle"]);
    assert.match(late[0].message, /expected a keep-alive idle below 6000 s, got "2h": HAProxy keeps an idle connection of this service up to 86400 s, the NLB listener's idle timeout is 6000 s/);
    // When HAProxy's own idle timeout ends a connection before the NLB forgets it, the keep-alives do not matter.
    assert.deepEqual(problems(nlbEnvironment({ services: { dicom: { tcpKeepaliveTimers: { idle: "2h" } }, web: { timeouts: { client: "30s", server: "30s" } } } })), []);
    const none = problems(nlbEnvironment({ services: { hl7: { tcpKeepalive: false } } }));
    assert.deepEqual(none.map((p) => p.path), ["services.hl7.tcpKeepalive"]);
    assert.match(none[0].message, /HAProxy keeps an idle connection of this service up to 86400 s, but an NLB listener forgets one after at most 6000 s/);
    assert.deepEqual(problems(nlbEnvironment({ services: { hl7: { tcpKeepalive: false, timeouts: { client: "100m", server: "100m" } } } })), [], "6000 s without keep-alives fits");
  });

  it("refuses VRRP settings, Elastic IPs, clientAddress source, a drain over an hour, the health port and more than 50 listeners per NLB", () => {
    const found = problems(
      nlbEnvironment({
        loadBalancer: { ha: { vipMode: "nlb", virtualRouterId: 7, nlb: { drainTime: "2h" } } },
        vips: { web: { elasticIp: true } },
        services: {
          web: { clientAddress: "source", sourceAddress: "10.20.2.10" },
          dicom: { frontendPorts: [104, ...Array.from({ length: 50 }, (_, i) => 20000 + i)] },
          hl7: { frontendPorts: [2310, NLB_HEALTH_CHECK.port] },
        },
      }),
    );
    const paths = found.map((p) => p.path).sort();
    assert.deepEqual(paths, [
      "loadBalancer.ha.nlb.drainTime",
      "loadBalancer.ha.virtualRouterId",
      "services.hl7.frontendPorts.1",
      "services.web.clientAddress",
      "vips.core",
      "vips.web.elasticIp",
    ]);
    assert.match(found.find((p) => p.path === "vips.core")!.message, /VIP 'core' would need 53 NLB listeners .* over the 50 a Network Load Balancer takes/);
    assert.match(found.find((p) => p.path === "loadBalancer.ha.nlb.drainTime")!.message, /expected whole seconds from 0s to 3600s \(1h\).* got "2h"/);
  });

  it("refuses nlb fields outside vipMode nlb, and a missing address outside it", () => {
    const found = problems(environment({ vips: { main: { address: null, nlb: { "lb-a": { address: "10.20.2.100", target: "10.20.2.20" } } } } }));
    assert.deepEqual(found.map((p) => p.path).sort(), ["vips.main.address", "vips.main.nlb"]);
    assert.match(found.find((p) => p.path === "vips.main.address")!.message, /^missing required field: expected an IPv4 address/);
  });
});

describe("ha.vipMode nlb: what each node runs", () => {
  const env = resolve(nlbEnvironment());

  it("each node's haproxy.cfg binds its own VIP addresses and answers the NLB's health check, from the client-side subnets only", () => {
    const a = renderHaproxy(env, { node: "lb-a" });
    const b = renderHaproxy(env, { node: "lb-b" });
    assert.match(a, /^# haproxy\.cfg for environment 'tn', node 'lb-a' \(behind the VIPs' Network Load Balancers\), generated by imaging-lb\.$/m);
    assert.match(a, /^ {4}bind 10\.20\.2\.20:443$/m);
    assert.match(b, /^ {4}bind 10\.20\.12\.21:104$/m);
    assert.doesNotMatch(a, /10\.20\.12\.2[01]/, "lb-a's file names none of lb-b's addresses");
    const health = /frontend fe_nlb_health\n(( {4}.*\n)+)/.exec(a)?.[1];
    assert.equal(
      health,
      [
        "    description The Network Load Balancers' health check: 200 while HAProxy serves on this node's VIP addresses",
        "    mode http",
        "    bind 10.20.2.21:8406",
        "    bind 10.20.2.20:8406",
        "    maxconn 50",
        "    option dontlog-normal",
        "    timeout client 5s",
        "    timeout http-request 5s",
        "    acl nlb_subnets src 10.20.12.0/24 10.20.2.0/24",
        "    tcp-request connection reject unless nlb_subnets",
        "    monitor-uri /healthz",
        "",
      ].join("\n"),
    );
    assert.match(a, /^peers imaging_lb\n {4}peer lb-a 10\.20\.1\.10:10000\n {4}peer lb-b 10\.20\.11\.10:10000$/m, "stick tables synced between the two nodes, both ways");
    assert.throws(() => renderHaproxy(env), /behind NLBs \(ha\.vipMode nlb\): render haproxy\.cfg for one of its nodes \(lb-a, lb-b\)/);
  });

  it("HL7 active-backup keeps one table entry for every sender, synced through the peers", () => {
    assert.match(renderHaproxy(env, { node: "lb-b" }), /backend be_hl7\n(?: {4}.*\n)*? {4}stick-table type integer size 2 nopurge peers imaging_lb\n {4}stick on int\(1\)/);
  });

  it("the bundle has no keepalived and no MASTER (the secondary applies first, then the primary); the machine holds its VIP addresses for good", () => {
    for (const node of ["lb-a", "lb-b"]) {
      const a = nodeArtifacts(env, node);
      assert.equal(a.keepalivedConf, undefined);
      assert.equal(a.takeoverScript, undefined);
      const settings = a.bundle.files.find((f) => f.path.endsWith("bundle.env"))!.content;
      assert.match(settings, /^MASTER_VIP=$/m);
      assert.match(settings, new RegExp(`^PEER=${node === "lb-a" ? "lb-b" : "lb-a"}$`, "m"));
      assert.match(settings, new RegExp(`^NODE_ROLE=${node === "lb-a" ? "primary" : "secondary"}$`, "m"));
      assert.deepEqual(a.bootstrap.extraServices, []);
      assert.deepEqual(a.bootstrap.interfaces.find((i) => i.name === "eth1")?.addresses, node === "lb-a" ? ["10.20.2.21", "10.20.2.20"] : ["10.20.12.21", "10.20.12.20"], "core's and web's addresses");
    }
  });

  it("security rules: a node takes the services and the health check from its VIPs' NLB security groups only, no VRRP; the NLB takes the clients", () => {
    const node = env.nodes[1];
    const [eth0, eth1] = planInterfaces(env, node);
    const client = securityRules(env, node, eth1);
    assert.deepEqual(client.map((r) => `${r.key} ${r.group}`), [
      "ingress-tcp-104-sg-nlb-core nlb-core",
      "ingress-tcp-2310-sg-nlb-core nlb-core",
      "ingress-tcp-443-sg-nlb-web nlb-web",
      "ingress-tcp-8406-sg-nlb-core nlb-core",
      "ingress-tcp-8406-sg-nlb-web nlb-web",
    ]);
    assert.ok(client.every((r) => r.cidr === undefined));
    const server = securityRules(env, node, eth0).map((r) => r.key);
    assert.ok(server.includes("ingress-tcp-10000-10-20-1-10_32") && server.includes("egress-tcp-10000-10-20-1-10_32"), "HAProxy peers with lb-a");
    assert.ok(!server.some((k) => k.includes("vrrp")), "no VRRP");
    assert.deepEqual(nlbSecurityRules(env, "core").map((r) => r.key), [
      "egress-tcp-104-10-20-12-21_32",
      "egress-tcp-104-10-20-2-21_32",
      "egress-tcp-2310-10-20-12-21_32",
      "egress-tcp-2310-10-20-2-21_32",
      "egress-tcp-8406-10-20-12-21_32",
      "egress-tcp-8406-10-20-2-21_32",
      "ingress-tcp-104-10-0-0-0_8",
      "ingress-tcp-2310-10-0-0-0_8",
    ]);
  });

  it("the detection time the health check allows: 7-12 s", () => {
    assert.deepEqual(nlbDetectionSeconds(), { best: 7, worst: 12 });
  });
});

describe("ha.vipMode nlb: the stack", () => {
  const json = synth(nlbEnvironment());
  const lbs = values(json, "aws_lb");

  it("an internal NLB per VIP with a fixed private address per zone, its own security group, cross-zone as configured", () => {
    assert.deepEqual(lbs.map((l) => [l.name, l.internal, l.load_balancer_type, l.enable_cross_zone_load_balancing, l.subnet_mapping.map((m: Json) => m.private_ipv4_address)]), [
      ["tn-core", true, "network", false, ["10.20.2.101", "10.20.12.101"]],
      ["tn-web", true, "network", false, ["10.20.2.100", "10.20.12.100"]],
    ]);
    assert.ok(lbs.every((l) => l.security_groups.length === 1 && /aws_security_group\.nlb_security-group-/.test(l.security_groups[0])));
    assert.equal(synth(nlbEnvironment({ loadBalancer: { ha: { nlb: { crossZone: true } } } })).resource.aws_lb && values(synth(nlbEnvironment({ loadBalancer: { ha: { nlb: { crossZone: true } } } })), "aws_lb")[0].enable_cross_zone_load_balancing, true);
  });

  it("a TCP listener and IP target group per port: client address preserved, the drain, HAProxy's health page, connections kept on a false alarm", () => {
    const listeners = values(json, "aws_lb_listener");
    assert.deepEqual(listeners.map((l) => [l.port, l.protocol, l.tcp_idle_timeout_seconds]).sort((a, b) => a[0] - b[0]), [[104, "TCP", 3600], [443, "TCP", 600], [2310, "TCP", 6000]]);
    const groups = values(json, "aws_lb_target_group");
    assert.equal(groups.length, 3);
    for (const g of groups) {
      assert.equal(g.protocol, "TCP");
      assert.equal(g.target_type, "ip");
      assert.equal(g.preserve_client_ip, "true");
      assert.equal(g.deregistration_delay, "120");
      assert.equal(g.connection_termination, true);
      assert.deepEqual(g.health_check, { enabled: true, protocol: "HTTP", port: "8406", path: "/healthz", matcher: "200", interval: 5, timeout: 2, healthy_threshold: 2, unhealthy_threshold: 2 });
      assert.deepEqual(g.target_health_state, [{ enable_unhealthy_connection_termination: false }]);
    }
  });

  it("raising a node's generation deregisters its targets, waits the drain time, replaces the instance, registers the new one", () => {
    const attachments = Object.entries(json.resource.aws_lb_target_group_attachment as Json);
    assert.equal(attachments.length, 6, "3 ports × 2 nodes");
    const drains = json.resource.terraform_data as Json;
    for (const node of ["lb-a", "lb-b"]) {
      const [drainId, drain] = Object.entries(drains).find(([id]) => id.startsWith(`nlb_drain-${node}_`))!;
      const [generationId] = Object.entries(drains).find(([id]) => id.startsWith(`node-${node}_generation_`))!;
      const [instanceId] = Object.keys(json.resource.aws_instance).filter((id) => id.startsWith(`node-${node}_instance`));
      assert.deepEqual(drain.depends_on, [`aws_instance.${instanceId}`], "the drain step goes before the instance");
      assert.deepEqual(drain.lifecycle.replace_triggered_by, [`terraform_data.${generationId}`]);
      assert.deepEqual(drain.provisioner, [{ "local-exec": { when: "destroy", command: `node -e "console.log('imaging-lb: ${node} drains for 120 s (ha.nlb.drainTime) before its instance goes');setTimeout(function(){},120000)"` } }]);
      const mine = attachments.filter(([id]) => id.endsWith(`-${node}_${id.split("_").pop()}`) || id.includes(`-${node}_`));
      assert.equal(mine.length, 3);
      for (const [, a] of mine) {
        assert.deepEqual(a.depends_on, [`terraform_data.${drainId}`], "deregistration goes before the drain step");
        assert.deepEqual(a.lifecycle.replace_triggered_by, [`terraform_data.${generationId}`]);
      }
    }
    assert.deepEqual(
      attachments.filter(([id]) => id.includes("-lb-b_")).map(([, a]) => `${a.port} ${a.target_id}`).sort(),
      ["104 10.20.12.21", "2310 10.20.12.21", "443 10.20.12.20"],
    );
  });

  it("the nodes' ENIs carry their VIP addresses (managed by Terraform), their rules name the NLBs' groups, no failover permission, the NLB outputs", () => {
    const enis = values(json, "aws_network_interface").filter((e) => e.description.endsWith("eth1"));
    assert.deepEqual(enis.map((e) => e.private_ip_list), [["10.20.2.10", "10.20.2.21", "10.20.2.20"], ["10.20.12.10", "10.20.12.21", "10.20.12.20"]]);
    assert.ok(enis.every((e) => e.lifecycle === undefined), "Terraform keeps managing the addresses (nothing floats)");
    const toNlb = values(json, "aws_vpc_security_group_ingress_rule").filter((r) => r.referenced_security_group_id);
    assert.equal(toNlb.length, 10, "5 rules per node");
    assert.ok(!JSON.stringify(json.resource.aws_iam_role_policy ?? {}).includes("AssignPrivateIpAddresses"), "no VIP failover grant");
    assert.deepEqual(Object.keys(json.output).filter((o) => o.startsWith("nlb_")).sort(), ["nlb_addresses", "nlb_dns_names", "nlb_target_groups"]);
    assert.deepEqual(json.output.nlb_addresses.value, { core: { "lb-a": "10.20.2.101", "lb-b": "10.20.12.101" }, web: { "lb-a": "10.20.2.100", "lb-b": "10.20.12.100" } });
  });

  it("AWS names of at most 32 characters, unique per environment, VIP and port", () => {
    assert.equal(awsLbName("tn", "web", "443"), "tn-web-443");
    const long = awsLbName("a-very-long-environment-name-xyz", "core", "10124");
    assert.ok(long.length <= 32 && /^[a-z0-9-]+$/.test(long) && !long.endsWith("-"), long);
    assert.notEqual(long, awsLbName("a-very-long-environment-name-xyz", "core", "10125"));
  });
});

describe("ha.vipMode nlb: diff, diagram, init", () => {
  it("diff shows NLB changes: a listener changed in place, a fixed address replacing the NLB, a replacement that drains first", () => {
    const before = resolve(nlbEnvironment());
    const listener = diffEnvironments(before, resolve(nlbEnvironment({ services: { dicom: { frontendPorts: [104, 110] } } })));
    const core = listener.nlbs.find((n) => n.vip === "core")!;
    assert.equal(core.verdict, "NLB changed in place");
    assert.match(core.diff, /^\+listener TCP 110 → dicom, idle timeout 3600 s$/m);
    assert.equal(listener.nlbs.find((n) => n.vip === "web")?.verdict, "no change");
    const moved = diffEnvironments(before, resolve(nlbEnvironment({ vips: { web: { nlb: { "lb-b": { address: "10.20.12.105" } } } } })));
    assert.equal(moved.nlbs.find((n) => n.vip === "web")?.verdict, "NLB replaced");
    assert.match(formatDiff(moved), /^nlb web: NLB replaced\n {2}a fixed address \(subnet mapping\) changed: AWS replaces the whole NLB/m);
    const raised = diffEnvironments(before, resolve(nlbEnvironment({ loadBalancer: { nodes: { "lb-a": { generation: 2 } } } })));
    assert.match(raised.nodes.find((n) => n.node === "lb-a")!.reason, /its targets leave the NLBs first \(no new connection; those it serves drain up to 120 s\)/);
  });

  it("the diagram draws the zones and the NLBs in front of both nodes, with the peers' link instead of VRRP", () => {
    const env = resolve(nlbEnvironment());
    const svg = renderSvg(env);
    assert.match(svg, />NLB web</);
    assert.match(svg, />eu-west-1b {2}10\.20\.12\.100</);
    assert.match(svg, />Network Load Balancers, both zones</);
    assert.match(svg, />lb-b external subnet \(eth1\)</);
    assert.match(svg, />HAProxy peers \(TCP 10000\)</);
    assert.doesNotMatch(svg, /VRRP|after a failover/);
    const mermaid = renderMermaid(env);
    assert.match(mermaid, /NLB core \(internal\)<br\/>eu-west-1a: 10\.20\.2\.101 → lb-a 10\.20\.2\.21<br\/>eu-west-1b: 10\.20\.12\.101 → lb-b 10\.20\.12\.21/);
    assert.match(mermaid, /HAProxy peers: stick tables both ways, TCP 10000/);
  });

  it("init --nlb writes a starter that validates as written, in both layouts", () => {
    for (const layout of ["one-arm", "two-arm"] as const) {
      const text = renderStarter({ layout, pair: false, nlb: true, preset: "agfa-ei" });
      const env = parseEnvironment(text, `${layout}.yaml`);
      assert.equal(env.ha?.vipMode, "nlb");
      assert.deepEqual(env.nodes.map((n) => (layout === "two-arm" ? n.externalSubnet : n.internalSubnet)?.availabilityZone), ["eu-west-1a", "eu-west-1b"]);
      assert.match(text, /# Written by: imaging-lb init --layout \S+ --nlb --preset agfa-ei/);
    }
  });
});

/** The tn fixture with a third node, lb-c, in eu-west-1c (10.20.21.0/24 internal, 10.20.22.0/24 external). */
function threeEnvironment(patch: Record<string, unknown> = {}): Fixture {
  return merge(nlbEnvironment({
    loadBalancer: {
      nodes: {
        "lb-c": {
          internalAddress: "10.20.21.10",
          externalAddress: "10.20.22.10",
          internalSubnet: { cidr: "10.20.21.0/24", availabilityZone: "eu-west-1c" },
          externalSubnet: { cidr: "10.20.22.0/24", availabilityZone: "eu-west-1c" },
        },
      },
    },
    vips: {
      web: { nlb: { "lb-c": { address: "10.20.22.100", target: "10.20.22.20" } } },
      core: { nlb: { "lb-c": { address: "10.20.22.101", target: "10.20.22.21" } } },
    },
  }), patch) as Fixture;
}

describe("ha.vipMode nlb with three nodes in three zones", () => {
  const env = resolve(threeEnvironment());

  it("loads: three nodes (lb-a primary), each in its own zone, every VIP with an address per zone", () => {
    assert.deepEqual(env.nodes.map((n) => [n.name, n.role, n.externalSubnet?.availabilityZone]), [
      ["lb-a", "primary", "eu-west-1a"],
      ["lb-b", "secondary", "eu-west-1b"],
      ["lb-c", "secondary", "eu-west-1c"],
    ]);
    for (const vip of env.vips) assert.deepEqual(vip.nlb?.map((z) => z.subnet.availabilityZone), ["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
    assert.equal(haShape(env), "three nodes behind NLBs (three zones)");
    assert.equal(haShape(resolve(nlbEnvironment())), "HA pair behind NLBs (two zones)");
  });

  it("refuses, each located: a third node without vipMode nlb, two nodes in one zone, a VIP without a node's mapping, a fourth node", () => {
    const third = { internalAddress: "10.20.1.12", externalAddress: "10.20.2.12" };
    for (const ha of [undefined, { vipMode: "secondary-ip" }]) {
      const found = problems(environment({ loadBalancer: { nodes: { "lb-b": { internalAddress: "10.20.1.11", externalAddress: "10.20.2.11" }, "lb-c": third }, ...(ha ? { ha } : {}) } }));
      const nodes = found.find((p) => p.path === "loadBalancer.nodes");
      assert.ok(nodes?.line !== undefined, JSON.stringify(found));
      assert.match(nodes!.message, /^expected 1 node \(single load balancer\) or 2 \(HA pair\), got 3: a third node needs ha\.vipMode nlb/);
      assert.match(nodes!.message, ha ? /vipMode secondary-ip takes 1 node or 2/ : /without ha takes 1 node or 2/);
    }
    const sameZone = problems(threeEnvironment({ loadBalancer: { nodes: { "lb-c": { internalSubnet: { availabilityZone: "eu-west-1a" }, externalSubnet: { availabilityZone: "eu-west-1a" } } } } }));
    assert.deepEqual(sameZone.map((p) => p.path), ["loadBalancer.nodes.lb-c.externalSubnet"]);
    assert.match(sameZone[0].message, /expected node lb-c's client-side subnet in another availability zone than lb-a's \(eu-west-1a\), got eu-west-1a: vipMode nlb puts one node in each of three zones/);
    assert.ok(sameZone[0].line !== undefined);
    const bSameAsC = problems(threeEnvironment({ loadBalancer: { nodes: { "lb-c": { internalSubnet: { availabilityZone: "eu-west-1b" }, externalSubnet: { availabilityZone: "eu-west-1b" } } } } }));
    assert.match(bSameAsC.find((p) => p.path === "loadBalancer.nodes.lb-c.externalSubnet")?.message ?? "", /another availability zone than lb-b's \(eu-west-1b\)/);
    const missing = problems(threeEnvironment({ vips: { core: { nlb: { "lb-c": null } } } }));
    assert.deepEqual(missing.map((p) => p.path), ["vips.core.nlb"]);
    assert.match(missing[0].message, /^missing lb-c: the NLB's address in lb-c's availability zone and the VIP's address on lb-c/);
    const four = problems(threeEnvironment({ loadBalancer: { nodes: { "lb-d": { internalAddress: "10.20.31.10", externalAddress: "10.20.32.10", internalSubnet: { cidr: "10.20.31.0/24", availabilityZone: "eu-west-1a" }, externalSubnet: { cidr: "10.20.32.0/24", availabilityZone: "eu-west-1a" } } } } }));
    assert.match(four.find((p) => p.path === "loadBalancer.nodes")?.message ?? "", /expected 2 or 3 nodes with ha\.vipMode nlb \(one per availability zone\), got 4/);
    assert.ok(four.every((p) => p.line !== undefined));
  });

  it("each node's haproxy.cfg: its own VIP addresses, and all three nodes in the peers section (stick tables shared by all)", () => {
    for (const [node, own] of [["lb-a", "10.20.2.20"], ["lb-b", "10.20.12.20"], ["lb-c", "10.20.22.20"]]) {
      const cfg = renderHaproxy(env, { node });
      assert.match(cfg, new RegExp(`^ {4}bind ${own.replace(/\./g, "\\.")}:443$`, "m"));
      assert.match(cfg, /^peers imaging_lb\n {4}peer lb-a 10\.20\.1\.10:10000\n {4}peer lb-b 10\.20\.11\.10:10000\n {4}peer lb-c 10\.20\.21\.10:10000$/m);
      assert.match(cfg, /^ {4}acl nlb_subnets src 10\.20\.12\.0\/24 10\.20\.2\.0\/24 10\.20\.22\.0\/24$/m, "the NLBs' health checks come from all three client-side subnets");
    }
  });

  it("the bundle: no single PEER but PEERS and a roll order (the secondaries by name, the primary last), no MASTER", () => {
    const settings = (node: string) => nodeArtifacts(env, node).bundle.files.find((f) => f.path.endsWith("bundle.env"))!.content;
    const got = Object.fromEntries(["lb-a", "lb-b", "lb-c"].map((n) => [n, /^PEER=(.*)$/m.exec(settings(n))?.[1] + " | " + /^PEERS=(.*)$/m.exec(settings(n))?.[1] + " | " + /^ROLL_AFTER=(.*)$/m.exec(settings(n))?.[1] + " | " + /^NODE_ROLE=(.*)$/m.exec(settings(n))?.[1]]));
    assert.deepEqual(got, {
      "lb-a": " | lb-b,lb-c | lb-b,lb-c | primary",
      "lb-b": " | lb-a,lb-c |  | secondary",
      "lb-c": " | lb-a,lb-b | lb-b | secondary",
    });
    for (const n of ["lb-a", "lb-b", "lb-c"]) assert.match(settings(n), /^MASTER_VIP=$/m);
    // Two nodes keep their bundle as it was: PEER, no PEERS or ROLL_AFTER.
    assert.doesNotMatch(nodeArtifacts(resolve(nlbEnvironment()), "lb-a").bundle.files.find((f) => f.path.endsWith("bundle.env"))!.content, /^(PEERS|ROLL_AFTER)=/m);
  });

  it("security rules: the peers port to and from both other nodes, no VRRP; each NLB reaches all three targets", () => {
    for (const node of env.nodes) {
      const [eth0] = planInterfaces(env, node);
      const keys = securityRules(env, node, eth0).map((r) => r.key);
      for (const other of env.nodes.filter((n) => n !== node)) {
        const cidr = other.internalAddress.replace(/\./g, "-");
        assert.ok(keys.includes(`ingress-tcp-10000-${cidr}_32`) && keys.includes(`egress-tcp-10000-${cidr}_32`), `${node.name} ↔ ${other.name}: ${keys.join(", ")}`);
      }
      assert.ok(!keys.some((k) => k.includes("vrrp")));
    }
    const core = nlbSecurityRules(env, "core").map((r) => r.key);
    for (const target of ["10-20-2-21", "10-20-12-21", "10-20-22-21"]) assert.ok(core.includes(`egress-tcp-8406-${target}_32`), core.join(", "));
  });

  it("the stack: three subnet mappings per NLB, three registrations per target group, a drain step per node", () => {
    const json = synth(threeEnvironment());
    assert.deepEqual(values(json, "aws_lb").map((l) => [l.name, l.subnet_mapping.map((m: Json) => m.private_ipv4_address)]), [
      ["tn-core", ["10.20.2.101", "10.20.12.101", "10.20.22.101"]],
      ["tn-web", ["10.20.2.100", "10.20.12.100", "10.20.22.100"]],
    ]);
    const groups = Object.keys(json.resource.aws_lb_target_group as Json);
    assert.equal(groups.length, 3);
    const attachments = values(json, "aws_lb_target_group_attachment");
    assert.equal(attachments.length, 9, "3 ports × 3 nodes");
    for (const id of groups) assert.equal(attachments.filter((a) => a.target_group_arn === `\${aws_lb_target_group.${id}.arn}`).length, 3, id);
    assert.deepEqual(attachments.filter((a) => a.port === 104).map((a) => a.target_id).sort(), ["10.20.12.21", "10.20.2.21", "10.20.22.21"]);
    const drains = Object.keys(json.resource.terraform_data as Json).filter((id) => id.startsWith("nlb_drain-"));
    assert.equal(drains.length, 3);
    const peers = values(json, "aws_vpc_security_group_ingress_rule").filter((r) => r.from_port === 10000);
    assert.equal(peers.length, 6, "each node takes the peers port from the other two");
  });

  it("monitoring: the per-node alarms for each of the three, no VRRP alarm", () => {
    const specs = alarmSpecs(env);
    assert.deepEqual([...new Set(specs.filter((s) => s.kind === "haproxyDown").map((s) => s.node))], ["lb-a", "lb-b", "lb-c"]);
    assert.ok(!specs.some((s) => s.kind === "failover" || s.kind === "pairMasters"));
  });

  it("diff: replacing two of the three nodes at once is unsafe (exit 3), one at a time is not; diagram and init draw and write three zones", () => {
    const two = diffEnvironments(env, resolve(threeEnvironment({ loadBalancer: { nodes: { "lb-a": { generation: 2 }, "lb-b": { generation: 2 } } } })));
    assert.equal(two.replacesWholePair, true);
    assert.match(formatDiff(two), /UNSAFE: 2 of the 3 nodes are replaced by this change/);
    assert.equal(diffEnvironments(env, resolve(threeEnvironment({ loadBalancer: { nodes: { "lb-c": { generation: 2 } } } }))).replacesWholePair, false);
    const svg = renderSvg(env);
    assert.match(svg, />Network Load Balancers, all zones</);
    assert.match(svg, />eu-west-1c {2}10\.20\.22\.100</);
    assert.match(svg, />three active nodes in three zones behind NLBs|two-arm, three active nodes in three zones/);
    const links = renderMermaid(env).match(/HAProxy peers: stick tables both ways/g) ?? [];
    assert.equal(links.length, 3, "lb-a–lb-b, lb-a–lb-c, lb-b–lb-c");
    for (const layout of ["one-arm", "two-arm"] as const) {
      const text = renderStarter({ layout, pair: false, nlb: true, zones: 3, preset: "agfa-ei" });
      const started = parseEnvironment(text, `${layout}-3.yaml`);
      assert.deepEqual(started.nodes.map((n) => (layout === "two-arm" ? n.externalSubnet : n.internalSubnet)?.availabilityZone), ["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
      assert.match(text, /# Written by: imaging-lb init --layout \S+ --nlb --zones 3 --preset agfa-ei/);
    }
    assert.throws(() => renderStarter({ layout: "two-arm", pair: true, zones: 3, preset: "agfa-ei" }), /three zones need nlb/);
  });
});
