/**
 * The bundle's JSON writer (lib/app/stable-json.ts) writes what the json-stable-stringify package cdktf
 * depends on writes, byte for byte: on every bundled example's synthesized stack and on the corner cases
 * (empty containers, undefined and functions, keys that sort differently as numbers, toJSON, cycles).
 * test/app-launcher.test.ts compares the whole synthesized output of the bundle and of the compiled app too.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { App, Testing } from "cdktf";
import { loadEnvironment } from "../lib/load/load";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the module is what cdktf requires: a function as module.exports
import stableStringify = require("../lib/app/stable-json");

type Stringify = (value: unknown, options?: { space?: number | string }) => string | undefined;

/** The package itself, as cdktf resolves it. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const packageStringify = require(require.resolve("json-stable-stringify", { paths: [dirname(require.resolve("cdktf"))] })) as Stringify;

const EXAMPLES = join(__dirname, "..", "..", "examples");

function cyclic(): Record<string, unknown> {
  const a: Record<string, unknown> = { name: "a" };
  a.inner = { back: a };
  return a;
}

const CORNER_CASES: ReadonlyArray<readonly [string, unknown]> = [
  ["an empty object", {}],
  ["an empty array", []],
  ["empty containers nested", { a: {}, b: [], c: [{}, []] }],
  ["undefined members and functions", { u: undefined, f: () => 1, n: null, s: "x" }],
  ["undefined items and functions in an array", [undefined, () => 1, null, 0, ""]],
  ["keys that sort differently as numbers, upper case and non-ASCII", { "10": 1, "9": 2, "é": 3, Z: 4, a: 5, "": 6 }],
  ["strings that need escapes", { "q\"k": 'a"b\\c\n\u2028\u0001', "${x}": "%{y}" }],
  ["toJSON at the top and inside", { d: new Date(0), t: { toJSON: () => ({ y: [1, { z: true }] }) } }],
  ["numbers", { i: 1, f: 1.5, neg: -0, big: 1e300, nan: NaN, inf: Infinity }],
  ["a string, a number, null, true", ["s", 1, null, true]],
  ["the same object twice, not a cycle", (() => { const shared = { k: 1 }; return { a: shared, b: [shared, shared] }; })()],
];

describe("the bundle's JSON writer matches json-stable-stringify byte for byte", () => {
  it("on every bundled example's synthesized stack", () => {
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"));
    assert.ok(files.length >= 5, `examples found: ${files.join(", ")}`);
    for (const file of files) {
      const env = loadEnvironment(join(EXAMPLES, file));
      const stack = new ImagingLbStack(Testing.app() as App, env.name, { environment: env });
      const document = stack.toTerraform();
      const expected = packageStringify(document, { space: 2 });
      assert.ok(expected && expected.length > 100_000, `${file}: a whole stack (${expected?.length ?? 0} characters)`);
      assert.equal(stableStringify(document, { space: 2 }), expected, `${file}: the writers differ`);
    }
  });

  for (const [name, value] of CORNER_CASES) {
    it(`on ${name}, with space 2, a tab and none`, () => {
      for (const options of [{ space: 2 }, { space: "\t" }, undefined, { space: 0 }]) {
        assert.equal(stableStringify(value, options), packageStringify(value, options), `${name}, options ${JSON.stringify(options)}`);
      }
    });
  }

  it("on top-level values the package leaves undefined (undefined, a function)", () => {
    for (const value of [undefined, () => 1]) assert.equal(stableStringify(value, { space: 2 }), packageStringify(value, { space: 2 }));
  });

  it("refuses a cycle as the package does", () => {
    assert.throws(() => packageStringify(cyclic(), { space: 2 }), /circular/);
    assert.throws(() => stableStringify(cyclic(), { space: 2 }), /Converting circular structure to JSON/);
  });

  it("refuses the package's other options instead of ignoring them", () => {
    assert.throws(() => stableStringify({ b: 1, a: 2 }, { space: 2, cycles: true } as never), /takes only the space option \(given: cycles\)/);
    assert.throws(() => stableStringify({ b: 1 }, ((a: string, b: string) => (a < b ? 1 : -1)) as never), /a compare function/);
  });
});
