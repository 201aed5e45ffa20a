/**
 * No first-deploy race: every instance is created only after everything its boot needs exists — the NAT
 * route and the route table associations of a created VPC (package mirrors), the VPC endpoints (AWS APIs
 * from private subnets), its own security groups' rules (without them its eth0 has no egress at all), and
 * its role's policies and attachments (Secrets Manager, SSM, the takeover's EC2 calls). Asserted on the
 * synthesized depends_on of each aws_instance.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Testing } from "cdktf";
import { loadEnvironment } from "../lib/load/load";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const EXAMPLES = join(__dirname, "..", "..", "examples");

function synth(file: string): Json {
  const env = loadEnvironment(join(EXAMPLES, file));
  const stack = new ImagingLbStack(Testing.app(), env.name, { environment: env });
  return JSON.parse(Testing.synth(stack, true)) as Json;
}

/** `${type}.${id}` of every resource of `type` whose logical id starts with `idPrefix` (ids follow construct paths). */
function addresses(json: Json, type: string, idPrefix = ""): string[] {
  return Object.keys((json.resource?.[type] ?? {}) as Record<string, Json>)
    .filter((id) => id.startsWith(idPrefix))
    .map((id) => `${type}.${id}`);
}

for (const file of ["agfa-ei-one-arm.yaml", "agfa-ei-two-arm.yaml", "agfa-ei-ha-pair.yaml"]) {
  describe(`boot order of ${file}`, () => {
    const json = synth(file);
    const instances = Object.entries(json.resource.aws_instance as Record<string, Json>);

    it("has instances to check", () => assert.ok(instances.length >= 1));

    for (const [id, instance] of instances) {
      const nodePath = id.replace(/instance_[0-9A-F]+$/, "");
      const dependsOn = new Set<string>(instance.depends_on ?? []);
      const missing = (needed: string[]) => needed.filter((a) => !dependsOn.has(a));

      it(`${id} waits for the NAT egress: default routes and route table associations`, () => {
        const needed = [...addresses(json, "aws_route", "network_"), ...addresses(json, "aws_route_table_association"), ...addresses(json, "aws_nat_gateway")];
        assert.ok(needed.length >= 3, "a created VPC has routes, associations and a NAT gateway");
        assert.deepEqual(missing(needed), []);
      });

      it(`${id} waits for the VPC endpoints (and their security group rule)`, () => {
        const needed = [...addresses(json, "aws_vpc_endpoint"), ...addresses(json, "aws_vpc_security_group_ingress_rule", "network_")];
        assert.ok(needed.length >= 5);
        assert.deepEqual(missing(needed), []);
      });

      it(`${id} waits for its own security group rules (ingress and egress)`, () => {
        const needed = [
          ...addresses(json, "aws_vpc_security_group_ingress_rule", nodePath),
          ...addresses(json, "aws_vpc_security_group_egress_rule", nodePath),
        ];
        assert.ok(needed.length >= 5);
        assert.deepEqual(missing(needed), []);
      });

      it(`${id} waits for its role's policies and policy attachments`, () => {
        const needed = [...addresses(json, "aws_iam_role_policy"), ...addresses(json, "aws_iam_role_policy_attachment")];
        assert.ok(needed.length >= 2);
        assert.deepEqual(missing(needed), []);
      });
    }
  });
}
