/**
 * The app's shortcuts through cdktf's synthesis (lib/constructs/synth-passes.ts) give what cdktf gives:
 * the value resolver on tokens of every kind, and the one-pass `toTerraform` on a stack with outputs,
 * overrides and references. (test/app-launcher.test.ts compares the whole app with a plain App on the
 * examples, byte for byte.)
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as cdktf from "cdktf";
import { App, DefaultTokenResolver, Fn, Lazy, StringConcat, TerraformOutput, TerraformStack, Token, Tokenization } from "cdktf";
import { deepMerge } from "cdktf/lib/util";
import { Construct } from "constructs";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { Subnet } from "@cdktf/provider-aws/lib/subnet";
import { plainValueResolver, withOneResolvePass } from "../lib/constructs/synth-passes";

function stackWithVpc() {
  const app = new App({ outdir: "/nonexistent-never-written" });
  const stack = new TerraformStack(app, "passes");
  new AwsProvider(stack, "aws", { region: "eu-central-1" });
  const vpc = new Vpc(stack, "vpc", { cidrBlock: "10.0.0.0/16", tags: { Name: "x" } });
  return { app, stack, vpc };
}

const viaCdktf = (scope: Construct, value: unknown) => Tokenization.resolve(value, { scope, preparing: false, resolver: new DefaultTokenResolver(new StringConcat()) });

describe("plainValueResolver", () => {
  it("gives what cdktf's resolve gives, for plain values and for tokens of every kind at any depth", () => {
    const { stack, vpc } = stackWithVpc();
    const resolve = plainValueResolver(cdktf, stack);
    const stringToken = Lazy.stringValue({ produce: () => "lazy-text" });
    const numberToken = Token.asNumber(Lazy.numberValue({ produce: () => 42 }));
    const listToken = Token.asList(Lazy.listValue({ produce: () => ["a", "b"] }));
    const mapToken = Token.asStringMap(Lazy.anyValue({ produce: () => ({ k: "v" }) }));
    const values: Record<string, unknown> = {
      plain: { a: "text", b: 1, c: true, d: null, e: undefined, f: [1, undefined, "x", [], {}], g: { h: { i: "deep" } } },
      date: new Date(0),
      reference: vpc.id,
      concatenated: `prefix-${vpc.id}-suffix`,
      stringToken,
      numberToken,
      numberInString: `port ${numberToken}`,
      listToken,
      listInArray: [listToken],
      mixedArray: ["plain", vpc.id, 3],
      mapToken,
      tokenKey: { [stringToken]: "value", plain: "v" },
      fn: Fn.join(",", ["a", vpc.id]),
      escapes: "${var.not_a_token} and }",
      escapesWithToken: `\${literal} ${vpc.id}`,
      // Strings that look like numbers to cdktf's number-token search, none a token.
      hexAndBase64: ["3e51dee2143a6fd3", "IyEvYmluL2Jhc2gKe123", "1.5e300 and 7e+301", "-1.8e+289x", `${"9".repeat(150)}e2`],
      bigNegative: -1e300,
      mapTokenValueNumber: 5,
    };
    for (const [name, value] of Object.entries(values)) {
      assert.deepEqual(resolve(value), viaCdktf(stack, value), name);
      assert.deepEqual(resolve({ nested: [{ value }] }), viaCdktf(stack, { nested: [{ value }] }), `${name}, nested`);
    }
  });

  it("refuses what cdktf refuses, with cdktf's error", () => {
    const { stack } = stackWithVpc();
    const resolve = plainValueResolver(cdktf, stack);
    assert.throws(() => resolve({ f: () => 1 }), /function/i);
    assert.throws(() => resolve({ c: stack }), /construct/i);
  });
});

describe("withOneResolvePass", () => {
  it("writes the same document as cdktf's toTerraform: outputs, stack and resource overrides, references", () => {
    const { stack, vpc } = stackWithVpc();
    const nested = new Construct(stack, "nested");
    new Subnet(nested, "subnet", { vpcId: vpc.id, cidrBlock: "10.0.1.0/24", dependsOn: [vpc] });
    new TerraformOutput(nested, "subnet_vpc", { value: vpc.id });
    new TerraformOutput(stack, "cidr", { value: vpc.cidrBlock });
    vpc.addOverride("lifecycle.prevent_destroy", true);
    stack.addOverride("terraform.required_version", ">= 1.11");
    stack.addOverride("locals.vpc", vpc.id);
    stack.addOverride("removed", [{ from: "aws_s3_object.gone", lifecycle: { destroy: false } }]);
    const expected = JSON.stringify(stack.toTerraform());
    let written: unknown;
    withOneResolvePass(stack, cdktf, deepMerge, (document) => (written = document));
    const got = stack.toTerraform();
    assert.equal(JSON.stringify(got), expected);
    assert.equal(written, got, "the callback sees the document written");
    assert.match(expected, /"required_version":">= 1.11"/);
    assert.match(expected, /"vpc":"\$\{aws_vpc\.vpc\.id\}"/);
  });
});
