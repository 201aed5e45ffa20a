/**
 * Upgrading imaging-lb replaces no machine (issue 22). The generation marker is now imaging-lb's own
 * `terraform_data` resource (lib/constructs/terraform-data.ts) instead of cdktf's DataResource, which ran
 * `terraform version` at every synth; this file shows that nothing a deployed environment has moves:
 * - the new marker synthesizes exactly the block cdktf's DataResource did (JSON and HCL);
 * - the bundled examples keep every instance, ENI and attachment address 0.1.0 and 0.2.0 synthesized,
 *   the 0.2.0 markers with the same addresses and attributes, and the instances' replace_triggered_by
 *   and ignore_changes (test/fixtures/upgrade/machines-*.json, recorded from those versions);
 * - with the real Terraform CLI: the state 0.1.0 leaves, then 0.2.0's, then this version's, then a raised
 *   generation. SIMULATED: each aws_instance is played by a `terraform_data` with the same address name,
 *   lifecycle and a `triggers_replace` of its user data digest (the instance's user_data_replace_on_change);
 *   replace_triggered_by and ignore_changes are Terraform core's, the same for both resource types.
 *   No provider, no network, no AWS.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { App, DataResource, TerraformStack, Testing } from "cdktf";
import { parse, stringify } from "yaml";
import { loadEnvironment, parseEnvironment } from "../lib/load/load";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";
import { TerraformData } from "../lib/constructs/terraform-data";
import { requireTool, tempDir } from "./helpers/tools";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const EXAMPLES = join(__dirname, "..", "..", "examples");
const FIXTURES = join(__dirname, "..", "..", "test", "fixtures", "upgrade");
const EXAMPLE_FILES = ["agfa-ei-ha-pair.yaml", "agfa-ei-one-arm.yaml", "agfa-ei-two-arm.yaml"];

/** What decides whether a machine is replaced, as test/fixtures/upgrade/machines-*.json record it. */
interface Machines {
  /** Generation markers: address name → attributes (0.2.0 and later). */
  readonly terraform_data?: Record<string, Json>;
  readonly aws_instance: Record<string, { lifecycle?: Json; user_data_replace_on_change?: boolean; user_data_base64_sha256: string }>;
  readonly aws_network_interface: string[];
  readonly aws_network_interface_attachment: string[];
}

const fixture = (version: string) => JSON.parse(readFileSync(join(FIXTURES, `machines-${version}.json`), "utf8")) as Record<string, Machines>;
const V010 = fixture("0.1.0");
const V020 = fixture("0.2.0");

/** The machines of a synthesized stack, in the fixtures' form. */
function machines(json: Json): Machines {
  const resources = json.resource as Json;
  const block = (type: string) => (resources[type] ?? {}) as Json;
  return {
    terraform_data: Object.fromEntries(Object.entries(block("terraform_data")).map(([id, r]) => [id, Object.fromEntries(Object.entries(r as Json).filter(([key]) => key !== "//"))])),
    aws_instance: Object.fromEntries(
      Object.entries(block("aws_instance")).map(([id, r]) => [
        id,
        { lifecycle: r.lifecycle, user_data_replace_on_change: r.user_data_replace_on_change, user_data_base64_sha256: createHash("sha256").update(r.user_data_base64).digest("hex") },
      ]),
    ),
    aws_network_interface: Object.keys(block("aws_network_interface")).sort(),
    aws_network_interface_attachment: Object.keys(block("aws_network_interface_attachment")).sort(),
  };
}

const synthStack = (env: ReturnType<typeof loadEnvironment>): Json =>
  JSON.parse(Testing.synth(new ImagingLbStack(Testing.app() as App, env.name, { environment: env }))) as Json;

describe("upgrading replaces no machine", () => {
  it("the generation marker synthesizes exactly the block cdktf's DataResource did (JSON, HCL, address)", () => {
    const blocks = (make: (stack: TerraformStack) => DataResource | TerraformData) => {
      const stack = new TerraformStack(Testing.app() as App, "ei-ha-pair");
      const marker = make(stack);
      // As written to cdk.tf.json (undefined attributes are dropped there).
      const written = (block: unknown) => JSON.parse(JSON.stringify(block)) as Json;
      return { json: written(marker.toTerraform()), hcl: written(marker.toHclTerraform()), address: `${marker.terraformResourceType}.${marker.friendlyUniqueId}` };
    };
    const theirs = blocks((stack) => new DataResource(stack, "generation", { input: { generation: 3 } }));
    const ours = blocks((stack) => new TerraformData(stack, "generation", { input: { generation: 3 } }));
    assert.deepEqual(ours, theirs);
    assert.deepEqual(ours.json.resource, { terraform_data: { generation: { input: { generation: 3 }, "//": { metadata: { path: "ei-ha-pair/generation", uniqueId: "generation" } } } } });
  });

  for (const file of EXAMPLE_FILES) {
    it(`${file}: the 0.2.0 markers and every 0.1.0/0.2.0 instance, ENI and attachment address, with the instances' triggers`, () => {
      const env = loadEnvironment(join(EXAMPLES, file));
      const now = machines(synthStack(env));
      const [was01, was02] = [V010[env.name], V020[env.name]];
      assert.ok(was01 && was02, `${env.name} is recorded in the fixtures`);
      assert.deepEqual(now.terraform_data, was02.terraform_data, "the generation markers: same addresses, same attributes");
      for (const was of [was01, was02]) {
        for (const type of ["aws_network_interface", "aws_network_interface_attachment"] as const) {
          assert.deepEqual(was[type].filter((id) => !now[type].includes(id)), [], `${type} addresses kept`);
        }
        assert.deepEqual(Object.keys(was.aws_instance).filter((id) => !(id in now.aws_instance)), [], "instance addresses kept");
      }
      for (const [id, instance] of Object.entries(was02.aws_instance)) {
        const current = now.aws_instance[id];
        assert.deepEqual(current.lifecycle?.replace_triggered_by, instance.lifecycle?.replace_triggered_by, `${id}: replaced by its own marker only`);
        for (const ignored of instance.lifecycle?.ignore_changes ?? []) assert.ok(current.lifecycle?.ignore_changes?.includes(ignored), `${id}: still ignores ${ignored}`);
        assert.equal(current.user_data_replace_on_change, instance.user_data_replace_on_change);
      }
    });
  }

  describe("real Terraform on the HA pair: 0.1.0 → 0.2.0 → this version → a raised generation (SIMULATED instances)", () => {
    const terraform = requireTool("terraform", "terraform (HashiCorp's apt repository, or the release zip)");
    const dir = tempDir("upgrade");
    after(dir.cleanup);
    writeFileSync(join(dir.path, "terraform.rc"), "");
    const tf = (...args: string[]) => {
      const r = spawnSync(terraform, args, {
        cwd: dir.path,
        encoding: "utf8",
        env: { ...process.env, TF_CLI_CONFIG_FILE: join(dir.path, "terraform.rc"), TF_IN_AUTOMATION: "1", CHECKPOINT_DISABLE: "1" },
      });
      assert.equal(r.status, 0, `terraform ${args.join(" ")}:\n${r.stderr}${r.stdout}`);
      return r.stdout;
    };

    /** A Terraform configuration with the markers, and a stand-in terraform_data per instance. */
    const configuration = (m: Machines) => {
      const standIns = Object.entries(m.aws_instance).map(([id, instance]) => {
        const ignoresUserData = instance.lifecycle?.ignore_changes?.includes("user_data_base64") === true;
        const triggers = instance.lifecycle?.replace_triggered_by as string[] | undefined;
        const lifecycle = { ...(ignoresUserData ? { ignore_changes: ["triggers_replace"] } : {}), ...(triggers ? { replace_triggered_by: triggers } : {}) };
        return [id, { input: { simulates: `aws_instance.${id}` }, ...(instance.user_data_replace_on_change ? { triggers_replace: { user_data_base64_sha256: instance.user_data_base64_sha256 } } : {}), lifecycle }];
      });
      return { resource: { terraform_data: { ...(m.terraform_data ?? {}), ...Object.fromEntries(standIns) } } };
    };
    /** Plans `m` against the state; resource address → actions (and why, for a replacement). */
    const plan = (m: Machines): Record<string, string> => {
      writeFileSync(join(dir.path, "main.tf.json"), JSON.stringify(configuration(m), null, 2));
      tf("plan", "-input=false", "-no-color", "-out=plan.bin");
      const changes = (JSON.parse(tf("show", "-json", "plan.bin")) as Json).resource_changes as Json[];
      return Object.fromEntries(changes.map((c) => [c.address, `${(c.change.actions as string[]).join("+")}${c.action_reason ? ` (${c.action_reason})` : ""}`]));
    };
    const apply = (m: Machines) => {
      writeFileSync(join(dir.path, "main.tf.json"), JSON.stringify(configuration(m), null, 2));
      tf("apply", "-input=false", "-no-color", "-auto-approve");
    };
    const noOps = (m: Machines, except: Record<string, string> = {}) =>
      Object.fromEntries([...Object.keys(m.terraform_data ?? {}), ...Object.keys(m.aws_instance)].map((id) => [`terraform_data.${id}`, except[id] ?? "no-op"]));

    const PAIR = join(EXAMPLES, "agfa-ei-ha-pair.yaml");
    const current = machines(synthStack(loadEnvironment(PAIR)));
    const raised = (() => {
      const doc = parse(readFileSync(PAIR, "utf8")) as Json;
      doc.loadBalancer.nodes["lb-b"].generation = 2;
      return machines(synthStack(parseEnvironment(stringify(doc), PAIR)));
    })();
    const [was01, was02] = [V010["ei-ha-pair"], V020["ei-ha-pair"]];
    const markerOf = (node: string) => Object.keys(current.terraform_data ?? {}).find((id) => id.startsWith(`node-${node}_generation_`)) ?? assert.fail(`no marker of ${node}`);
    const instanceOf = (node: string) => Object.keys(current.aws_instance).find((id) => id.startsWith(`node-${node}_instance_`)) ?? assert.fail(`no instance of ${node}`);

    it("0.1.0 deployed, then this version planned: the markers are created, no instance is replaced (its new user data is ignored)", () => {
      tf("init", "-input=false", "-no-color");
      apply(was01);
      for (const id of Object.keys(was01.aws_instance)) assert.notEqual(current.aws_instance[id].user_data_base64_sha256, was01.aws_instance[id].user_data_base64_sha256, "the user data changed since 0.1.0");
      const created = Object.fromEntries(Object.keys(current.terraform_data ?? {}).map((id) => [id, "create"]));
      assert.equal(Object.keys(created).length, 2);
      assert.deepEqual(plan(current), noOps(current, created));
      // Control: without ignore_changes the changed user data would replace both (the stand-ins can fail).
      const withoutIgnore: Machines = {
        ...current,
        aws_instance: Object.fromEntries(Object.entries(current.aws_instance).map(([id, i]) => [id, { ...i, lifecycle: { ...i.lifecycle, ignore_changes: undefined } }])),
      };
      assert.deepEqual(Object.values(plan(withoutIgnore)).filter((a) => a.startsWith("delete+create")).length, 2);
    });

    it("0.2.0 applied, then this version planned: no change at all", () => {
      apply(was02);
      assert.deepEqual(plan(current), noOps(current));
    });

    it("this version with lb-b's generation raised: lb-b's marker is updated and lb-b alone is replaced", () => {
      assert.deepEqual(plan(raised), noOps(current, { [markerOf("lb-b")]: "update", [instanceOf("lb-b")]: "delete+create (replace_by_triggers)" }));
    });
  });
});
