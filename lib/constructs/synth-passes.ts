/**
 * Shortcuts the app (lib/app/synth.ts) takes through cdktf's synthesis of its stacks. Each leaves the output as a
 * plain cdktf App writes it, byte for byte (test/app-launcher.test.ts compares the two on the examples;
 * test/synth-passes.test.ts compares the value resolver with cdktf's on tokens of every kind). The library
 * (`ImagingLbStack` in a user's own App) keeps cdktf's own passes.
 *
 * Measured with callgrind on the three examples (instructions of the whole `npm run synth`, which a busy
 * machine does not distort): 2.47 G before, of which cdktf's token resolution was about 0.8 G.
 */
import type * as Cdktf from "cdktf";
import type { TerraformElement, TerraformStack } from "cdktf";
import type { Construct } from "constructs";

type CdktfModule = typeof Cdktf;
type DeepMerge = (target: object, source: object) => void;

/**
 * Skips cdktf's cross-stack pass for `stack`. Before writing anything, cdktf's `App.synth` resolves every
 * resource of every stack once with its `preparing` flag (`TerraformStack.prepareStack`), only to find
 * references from one stack into another and add the outputs and remote state they need; then it resolves
 * everything again to write it. This app's stacks are ImagingLbStacks made from plain values (an
 * environment file each) that reference nothing outside themselves, so that pass finds nothing, and it
 * was a fifth of the synth. The stack still gets its default backend, as `prepareStack` would add.
 */
export function withoutCrossStackPass(stack: TerraformStack): void {
  stack.prepareStack = () => {
    stack.ensureBackendExists();
  };
}

/**
 * A token encoded as a number is a negative double of magnitude 2^960 or more (cdktf's marker bits in
 * the exponent); anything above this bound is a plain number.
 */
const NUMBER_TOKEN_BOUND = -1e280;

/**
 * cdktf finds number tokens written into a string as runs like this one (its own pattern), each parsed
 * with parseFloat; a run that parses to no token stays as it is.
 */
const NUMBER_RUN = /[-|\d|.+]+(e[-|\d|.|e|E|+]+)/g;

/**
 * A run parses to a token's magnitude only with an exponent of three digits right after a digit or a
 * point, or an integer part of more than a hundred digits: a string with neither (most, hashes and
 * base64 text included) needs no closer look.
 */
const MAY_HOLD_NUMBER_TOKEN = /[\d.]e[+-]?\d{3}|\d{100}/;

/** Whether `s` holds a run that parses to a number as large (and negative) as a number token. */
function mayHoldNumberToken(s: string): boolean {
  if (!MAY_HOLD_NUMBER_TOKEN.test(s)) return false;
  NUMBER_RUN.lastIndex = 0;
  for (let run = NUMBER_RUN.exec(s); run !== null; run = NUMBER_RUN.exec(s)) if (parseFloat(run[0]) < NUMBER_TOKEN_BOUND) return true;
  return false;
}

/** cdktf's own depth limit for a value it resolves (it then reports a circular reference). */
const MAX_DEPTH = 200;

/**
 * cdktf's `Tokenization.resolve` for one element's fragment, with a fast path for values that hold no
 * token: cdktf builds a resolution context (a handful of objects and closures) for every member, key
 * and item, and searches every string three times with regular expressions, the long base64 content of
 * the bundle files included. A value with no token, no token marker and no object with a `resolve`
 * method comes back copied, as resolve returns it (undefined members and items left out); any other
 * value, at any depth, goes to cdktf's resolve, which gives a nested value the same result it gives it
 * at the top (the context of plain objects and arrays carries only the path, which its messages name).
 */
export function plainValueResolver(cdktf: CdktfModule, scope: Construct): <T>(value: T) => T {
  const { Token, Tokenization, DefaultTokenResolver, StringConcat } = cdktf;
  const resolver = new DefaultTokenResolver(new StringConcat());
  const viaCdktf = (value: unknown): unknown => Tokenization.resolve(value, { scope, preparing: false, resolver });
  const plainString = (s: string) =>
    !s.includes("TfToken[") && s !== Token.STRING_MAP_TOKEN_VALUE && s !== Token.ANY_MAP_TOKEN_VALUE && !mayHoldNumberToken(s);
  const plainNumber = (n: number) => (n > NUMBER_TOKEN_BOUND || Number.isNaN(n)) && n !== Token.NUMBER_MAP_TOKEN_VALUE;

  const resolveValue = (value: unknown, depth: number): unknown => {
    switch (typeof value) {
      case "string":
        return plainString(value) ? value : viaCdktf(value);
      case "number":
        return plainNumber(value) ? value : viaCdktf(value);
      case "undefined":
      case "boolean":
      case "bigint":
      case "symbol":
        return value;
      case "function":
        return viaCdktf(value);
    }
    if (value === null || value instanceof Date) return value;
    if (depth > MAX_DEPTH || Tokenization.isResolvable(value) || isConstruct(value as object)) return viaCdktf(value);
    if (Array.isArray(value)) {
      const items = value as unknown[];
      if (!items.every((x) => (typeof x === "string" ? plainString(x) : typeof x === "number" ? plainNumber(x) : true))) return viaCdktf(value);
      const out: unknown[] = [];
      for (const item of items) {
        const resolved = resolveValue(item, depth + 1);
        if (resolved !== undefined) out.push(resolved);
      }
      return out;
    }
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    if (!keys.every(plainString)) return viaCdktf(value);
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const resolved = resolveValue(record[key], depth + 1);
      if (resolved !== undefined) out[key] = resolved;
    }
    return out;
  };
  return <T>(value: T) => resolveValue(value, 0) as T;
}

/** cdktf's test for a construct (resolve refuses one: it would loop between parent and children). */
const isConstruct = (x: object) => (x as { _children?: unknown })._children !== undefined && (x as { _metadata?: unknown })._metadata !== undefined;

/**
 * Makes `stack` resolve each of its elements once when it is written. cdktf's `TerraformStack.toTerraform`
 * resolves every element's fragment, merges the fragments and the stack's own overrides, then resolves the
 * whole merged document a second time. For the fragments that pass finds nothing (resolving a resolved
 * value gives it back), and it walked every value of every resource again, the inline bundle files
 * included. Here the second pass covers only the top-level blocks the stack's overrides touch, the
 * fragments go through {@link plainValueResolver}, and everything else is done as cdktf does it, in the same
 * order (key order included). `written` sees each document as it is written.
 */
export function withOneResolvePass(stack: TerraformStack, cdktf: CdktfModule, deepMerge: DeepMerge, written?: (document: Readonly<Record<string, unknown>>) => void): void {
  const { TerraformElement: Element, TerraformOutput, TerraformStack: Stack } = cdktf;
  const resolve = plainValueResolver(cdktf, stack);
  // cdktf's private fields, read as its own toTerraform reads them.
  const internals = stack as unknown as { readonly rawOverrides: Record<string, unknown>; readonly cdktfVersion: string };
  const elementsOf = (scope: Construct, into: TerraformElement[] = []): TerraformElement[] => {
    if (Element.isTerraformElement(scope)) into.push(scope);
    for (const child of scope.node.children) if (!Stack.isStack(child)) elementsOf(child, into);
    return into;
  };
  stack.toTerraform = () => {
    const overrides = internals.rawOverrides;
    const metadata: Record<string, unknown> = {
      version: internals.cdktfVersion,
      stackName: stack.node.id,
      backend: "local",
      cloud: undefined,
      ...(Object.keys(overrides).length > 0 ? { overrides: { stack: Object.keys(overrides) } } : {}),
    };
    const elements = elementsOf(stack);
    for (const meta of elements.map((e) => resolve(e.toMetadata()))) deepMerge(metadata, meta);
    const outputs: Record<string, unknown> = {};
    for (const item of elements) {
      if (!TerraformOutput.isTerraformOutput(item)) continue;
      const path = item.node.path.split("/").reduceRight<Record<string, unknown>>((inner, part) => ({ [part]: Object.keys(inner).length === 0 ? item.friendlyUniqueId : inner }), {});
      deepMerge(outputs, path);
    }
    const tf: Record<string, unknown> = { "//": resolve({ metadata, outputs }) };
    for (const fragment of elements.map((e) => resolve(e.toTerraform()))) deepMerge(tf, fragment as object);
    deepMerge(tf, overrides);
    for (const key of Object.keys(overrides)) tf[key] = resolve(tf[key]);
    written?.(tf);
    return tf;
  };
}
