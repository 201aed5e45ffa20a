/**
 * The JSON writer cdktf writes every `cdk.tf.json` and its manifest with, as the app bundle has it
 * (scripts/bundle.ts puts it in place of the `json-stable-stringify` package cdktf requires). The output is
 * that package's, byte for byte (test/stable-json.test.ts compares the two on every example and on the
 * corner cases): members in sorted key order, undefined members and functions left out, undefined items
 * and functions in arrays written as null, `toJSON` honoured, a circular value refused, and an empty
 * object or array written across two lines (`{` then the closing brace on its own indented line).
 *
 * Why: the package builds every level's indentation again for each value and calls through generic
 * helpers for each key; on the five examples it took about 50 ms of a 600 ms synth, this about 15 ms.
 * Only the options cdktf passes are taken (`space`); any other is refused rather than ignored.
 */

/** The options cdktf passes; the package's others (cmp, replacer, cycles, collapseEmpty) are refused. */
interface StableJsonOptions {
  readonly space?: number | string;
}

function stableStringify(value: unknown, options?: StableJsonOptions): string | undefined {
  const unsupported = Object.keys(options ?? {}).filter((k) => k !== "space");
  if (typeof options === "function" || unsupported.length > 0) {
    throw new TypeError(`imaging-lb's json-stable-stringify takes only the space option (given: ${typeof options === "function" ? "a compare function" : unsupported.join(", ")})`);
  }
  const space = typeof options?.space === "number" ? " ".repeat(options.space) : (options?.space ?? "");
  const colon = space ? ": " : ":";
  const indents: string[] = [];
  const indent = (level: number): string => (indents[level] ??= space ? `\n${space.repeat(level)}` : "");
  /** The objects being written, outermost first: one met again inside itself is a cycle. */
  const open = new Set<object>();

  const write = (input: unknown, level: number): string | undefined => {
    let node = input;
    if (node && typeof (node as { toJSON?: unknown }).toJSON === "function") node = (node as { toJSON: () => unknown }).toJSON();
    if (typeof node !== "object" || node === null) return JSON.stringify(node) as string | undefined;
    const inner = indent(level + 1);
    let out = "";
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) out += `${i === 0 ? "" : ","}${inner}${write(node[i], level + 1) ?? "null"}`;
      return `[${out}${indent(level)}]`;
    }
    if (open.has(node)) throw new TypeError("Converting circular structure to JSON");
    open.add(node);
    const record = node as Record<string, unknown>;
    for (const key of Object.keys(record).sort()) {
      const member = write(record[key], level + 1);
      if (member === undefined) continue;
      out += `${out === "" ? "" : ","}${inner}${JSON.stringify(key)}${colon}${member}`;
    }
    open.delete(node);
    return `{${out}${indent(level)}}`;
  };
  return write(value, 0);
}

// cdktf calls the module itself (`require("json-stable-stringify")(value, { space: 2 })`).
export = stableStringify;
