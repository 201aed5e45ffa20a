/**
 * Day-2 changes never replace a machine: for each kind of configuration change on the HA pair example,
 * the synthesized instances, ENIs and ENI attachments (every argument, including the user data) and the
 * nodes' generation markers stay exactly the same; only the configuration bundle objects in S3 change.
 * And raising one node's generation replaces that node only.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { App, Testing } from "cdktf";
import { parse, stringify } from "yaml";
import { diffEnvironments } from "../lib/cli/commands/diff";
import { parseEnvironment } from "../lib/load/load";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const EXAMPLE = join(__dirname, "..", "..", "examples", "agfa-ei-ha-pair.yaml");
const base = parse(readFileSync(EXAMPLE, "utf8")) as Json;

function merge(a: unknown, b: unknown): unknown {
  if (b === null) return undefined;
  if (typeof a !== "object" || a === null || Array.isArray(a) || typeof b !== "object" || b === null || Array.isArray(b)) return b;
  const out: Json = { ...(a as Json) };
  for (const [k, v] of Object.entries(b)) {
    const m = merge(out[k], v);
    if (m === undefined) delete out[k];
    else out[k] = m;
  }
  return out;
}

const envOf = (patch: Json) => parseEnvironment(stringify(merge(base, patch)), "agfa-ei-ha-pair.yaml");

function synth(patch: Json): Json {
  const env = envOf(patch);
  const stack = new ImagingLbStack(Testing.app() as App, env.name, { environment: env });
  return JSON.parse(Testing.synth(stack)) as Json;
}

/** The resources that must never change for a configuration change. */
const MACHINE_TYPES = ["aws_instance", "aws_network_interface", "aws_network_interface_attachment", "terraform_data"];

/** Their arguments, without depends_on: creation order only, nothing Terraform changes on AWS. */
const machine = (json: Json) =>
  Object.fromEntries(
    MACHINE_TYPES.map((t) => [t, Object.fromEntries(Object.entries((json.resource[t] ?? {}) as Json).map(([id, r]) => [id, { ...r, depends_on: undefined }]))]),
  );
const manifests = (json: Json) =>
  Object.fromEntries(Object.entries(json.resource.aws_s3_object as Json).filter(([, o]) => String(o.key).endsWith("manifest.json")).map(([id, o]) => [id, o.content_base64]));

const firstServer = Object.keys(base.servers)[0];
const CHANGES: Record<string, Json> = {
  "a server added": { servers: { "ei-core-9": { address: "10.40.1.29", aeTitle: base.servers[firstServer].aeTitle } } },
  "a server removed": { servers: { [Object.keys(base.servers).at(-1)!]: null } },
  "a service port": { services: { hl7: { frontendPorts: [2310, 2312] } } },
  "a timeout": { services: { dicom: { timeouts: { client: "2h", server: "2h" } } } },
  "a health check": { services: { dicom: { healthCheck: { interval: "20s" } } } },
  "a certificate ARN": { tls: { certificates: { web: { secretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ei-ha-pair/web-tls-2027-ZyXwVu" } } } },
  "HA timers": { loadBalancer: { ha: { advertIntervalSeconds: 2 } } },
};

describe("day-2 changes replace no instance, ENI or attachment", () => {
  const before = synth({});

  for (const [what, patch] of Object.entries(CHANGES)) {
    it(`${what}: machines identical, every node's bundle manifest changed`, () => {
      const after = synth(patch);
      assert.deepEqual(machine(after), machine(before));
      const [m0, m1] = [manifests(before), manifests(after)];
      assert.deepEqual(Object.keys(m1), Object.keys(m0));
      for (const id of Object.keys(m0)) assert.notEqual(m1[id], m0[id], `${id} carries the change`);
      const verdicts = diffEnvironments(envOf({}), envOf(patch)).nodes.map((n) => n.verdict);
      assert.deepEqual(verdicts, ["applied in place (reload)", "applied in place (reload)"]);
    });
  }

  it("raising one node's generation replaces that node only (the other keeps serving)", () => {
    const [first, second] = Object.keys(base.loadBalancer.nodes).sort();
    const after = synth({ loadBalancer: { nodes: { [second]: { generation: 2 } } } });
    const generations = (json: Json) => Object.fromEntries(Object.entries(json.resource.terraform_data as Json).map(([id, d]) => [id, d.input.generation]));
    const changed = Object.entries(generations(after)).filter(([id, g]) => generations(before)[id] !== g);
    assert.equal(changed.length, 1);
    assert.match(changed[0][0], new RegExp(`node-${second}_generation`));
    const diff = diffEnvironments(envOf({}), envOf({ loadBalancer: { nodes: { [second]: { generation: 2 } } } }));
    assert.deepEqual(diff.nodes.map((n) => [n.node, n.verdict]), [[first, "no change"], [second, "node replaced"]]);
    assert.equal(diff.replacesWholePair, false);
    const both = diffEnvironments(envOf({}), envOf({ loadBalancer: { nodes: { [first]: { generation: 2 }, [second]: { generation: 2 } } } }));
    assert.equal(both.replacesWholePair, true, "the diff flags a change that would replace the whole pair");
  });

  it("a machine change (OS) alone replaces nothing until a generation is raised, and the diff says so", () => {
    const after = synth({ loadBalancer: { os: "al2023" } });
    assert.deepEqual(after.resource.terraform_data, before.resource.terraform_data);
    const diff = diffEnvironments(envOf({}), envOf({ loadBalancer: { os: "al2023" } }));
    for (const node of diff.nodes) {
      assert.match(node.reason, /keeps its machine until loadBalancer\.nodes\..*\.generation is raised/);
      assert.ok(node.files.some((f) => f.path === "(user data: the machine)"));
    }
  });
});
