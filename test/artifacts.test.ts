/**
 * nodeArtifacts: what each node gets from the environment — the bootstrap's inputs and the encoded user data.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { nodeArtifacts } from "../lib/node/artifacts";
import { agentFiles, isAgentFile } from "../lib/node/bundle";
import { decodeUserData } from "../lib/bootstrap";
import { loadEnvironment } from "../lib/load/load";
import { renderHaproxy } from "../lib/haproxy/build";
import { environment, resolve, SECRET } from "./helpers/env";

const EXAMPLES = join(__dirname, "..", "..", "examples");
const PAIR_NODES = { "lb-b": { internalAddress: "10.20.1.11", externalAddress: "10.20.2.11" } };

describe("node artifacts", () => {
  it("a single two-arm node carries its VIPs as static addresses on eth1, not eth0", () => {
    const a = nodeArtifacts(resolve(environment()), "lb-a");
    assert.deepEqual(
      a.bootstrap.interfaces.map((i) => [i.name, i.deviceIndex, i.subnetCidr, i.addresses]),
      [
        ["eth0", 0, "10.20.1.0/24", []],
        ["eth1", 1, "10.20.2.0/24", ["10.20.2.100"]],
      ],
    );
    assert.equal(a.keepalivedConf, undefined);
    assert.deepEqual(a.bootstrap.extraServices, []);
  });

  it("a single one-arm node carries its VIPs on eth0, its only interface", () => {
    const env = loadEnvironment(join(EXAMPLES, "agfa-ei-one-arm.yaml"));
    const a = nodeArtifacts(env, "lb-1");
    assert.deepEqual(a.bootstrap.interfaces.map((i) => [i.name, i.addresses]), [["eth0", ["10.30.1.101", "10.30.1.100"]]]);
  });

  it("an HA pair leaves the VIPs to keepalived, and installs keepalived, its script user and the takeover script", () => {
    const env = resolve(environment({ loadBalancer: { nodes: PAIR_NODES } }));
    const a = nodeArtifacts(env, "lb-b");
    assert.ok(a.bootstrap.interfaces.every((i) => (i.addresses ?? []).length === 0));
    assert.equal(a.bootstrap.nonlocalBind, true, "HAProxy binds VIPs the node does not hold yet");
    assert.deepEqual(a.bootstrap.extraServices, ["keepalived"]);
    assert.deepEqual(a.bootstrap.systemUsers, ["keepalived_script"]);
    assert.deepEqual(
      a.bundle.files.filter((f) => !isAgentFile(f.path)).map((f) => [f.path, f.mode]),
      [
        ["/etc/haproxy/haproxy.cfg", "0640"],
        ["/etc/imaging-lb/bundle.env", "0644"],
        ["/etc/imaging-lb/secrets.list", "0644"],
        ["/etc/keepalived/keepalived.conf", "0640"],
        ["/usr/local/sbin/imaging-lb-vip-takeover", "0755"],
      ],
      "keepalived's files are configuration: in the bundle, not the user data",
    );
    assert.deepEqual(a.bundle.files.filter((f) => isAgentFile(f.path)).map((f) => f.path), agentFiles().map((f) => f.path).sort(), "and the agent itself");
    assert.doesNotMatch(a.userData, /vrrp_instance|unicast_peer/);
    assert.match(a.keepalivedConf ?? "", /unicast_src_ip 10\.20\.1\.11\n/);
    assert.match(a.keepalivedConf ?? "", /10\.20\.2\.100\/32 dev eth1/);
  });

  it("names the stats password and the certificates by secret ARN only, in the bundle's secrets list", () => {
    const a = nodeArtifacts(resolve(environment({ services: { web: { frontendPorts: [443], mode: "http", tls: { mode: "terminate", certificate: "web" } } } })), "lb-a");
    const list = a.bundle.files.find((f) => f.path === "/etc/imaging-lb/secrets.list")?.content ?? "";
    assert.equal(
      list.split("\n").filter((l) => l && !l.startsWith("#")).join("\n"),
      `env IMAGING_LB_STATS_PASSWORD ${SECRET("stats")}\npem ${SECRET("web")} /etc/haproxy/certs/web.pem`,
    );
    assert.doesNotMatch(a.userData, /PRIVATE KEY|arn:aws[a-z-]*:secretsmanager:/);
  });

  it("pins HAProxy to an LTS series by default and installs socat for the runtime API", () => {
    const a = nodeArtifacts(resolve(environment()), "lb-a");
    assert.deepEqual(a.bootstrap.haproxy, { source: "distribution", version: "2.8" });
    assert.deepEqual(a.bootstrap.extraPackages, ["socat"]);
    assert.deepEqual(nodeArtifacts(resolve(environment({ loadBalancer: { haproxy: { source: "ppa" } } })), "lb-a").bootstrap.haproxy, { source: "ppa", version: "3.0" });
  });

  it("bundles the same haproxy.cfg the renderer gives, keeps it out of the user data, and encodes user data within EC2's 16 KB", () => {
    for (const file of ["agfa-ei-one-arm.yaml", "agfa-ei-two-arm.yaml", "agfa-ei-ha-pair.yaml"]) {
      const env = loadEnvironment(join(EXAMPLES, file));
      for (const node of env.nodes) {
        const a = nodeArtifacts(env, node.name);
        assert.equal(a.haproxyConfig, renderHaproxy(env));
        assert.doesNotMatch(a.userData, /^frontend /m);
        assert.ok(Buffer.from(a.userDataBase64, "base64").length <= 16384, `${file} ${node.name}`);
        assert.equal(decodeUserData(a.userDataBase64), a.userData);
      }
    }
  });

  it("names the nodes of the environment when asked for an unknown one", () => {
    assert.throws(() => nodeArtifacts(resolve(environment()), "lb-z"), /environment 'test-env' has no node 'lb-z' \(nodes: lb-a\)/);
  });
});
