/**
 * Generates docs/environment-reference.md: every field of the environment file (path, type, whether
 * it is required, default, description) from the published JSON Schema, so the reference never
 * drifts from the schema. test/docs.test.ts fails when the committed file differs from the output.
 *
 * Usage (after `npm run build`):
 *   node dist/scripts/env-reference.js            # print the reference
 *   node dist/scripts/env-reference.js --write    # rewrite docs/environment-reference.md
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { cidrSchema, durationSchema, environmentJsonSchema, ipv4Schema, nameSchema } from "../lib/config/schema";

/** A JSON Schema node, as far as the reference reads it. */
interface JsonSchema {
  readonly type?: string;
  readonly description?: string;
  readonly default?: unknown;
  readonly const?: unknown;
  readonly enum?: readonly unknown[];
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minItems?: number;
  readonly minLength?: number;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: JsonSchema | boolean;
  readonly propertyNames?: JsonSchema;
  readonly items?: JsonSchema;
  readonly anyOf?: readonly JsonSchema[];
  readonly oneOf?: readonly JsonSchema[];
}

/** One row of the reference. */
export interface ReferenceRow {
  readonly path: string;
  readonly type: string;
  readonly required: boolean;
  readonly defaultValue: string;
  readonly description: string;
}

/** Where the generated reference is committed, relative to the repository root. */
export const REFERENCE_FILE = join("docs", "environment-reference.md");

const patternOf = (schema: z.ZodType) => (z.toJSONSchema(schema) as JsonSchema).pattern;

/** Friendly names of the recurring string patterns. */
function namedPatterns(): ReadonlyArray<readonly [RegExp | string, string]> {
  return [
    [patternOf(ipv4Schema) ?? "", "IPv4 address"],
    [patternOf(cidrSchema) ?? "", "IPv4 CIDR"],
    [patternOf(durationSchema) ?? "", "duration (`30s`, `10m`, `1h`, `1d`)"],
    [patternOf(nameSchema) ?? "", "name"],
    [/^\^arn:aws/, "Secrets Manager secret ARN"],
    [/^\^vpc-/, "VPC id (`vpc-...`)"],
    [/^\^subnet-/, "subnet id (`subnet-...`)"],
    [/^\^rtb-/, "route table id (`rtb-...`)"],
  ];
}

const code = (v: unknown) => `\`${typeof v === "string" ? v : JSON.stringify(v)}\``;

function typeOf(s: JsonSchema, patterns: ReturnType<typeof namedPatterns>): string {
  const variants = s.anyOf ?? s.oneOf;
  if (variants && !variants.every((v) => v.type === "object")) return variants.map((v) => typeOf(v, patterns)).join(" or ");
  if (s.const !== undefined) return code(s.const);
  if (s.enum) return `one of ${s.enum.map(code).join(", ")}`;
  switch (s.type) {
    case "string": {
      const named = s.pattern === undefined ? undefined : patterns.find(([p]) => (typeof p === "string" ? p === s.pattern : p.test(s.pattern ?? "")));
      return named ? named[1] : "string";
    }
    case "integer":
    case "number": {
      if (s.minimum === 1 && s.maximum === 65535) return "port (1–65535)";
      const range = s.minimum !== undefined && s.maximum !== undefined ? ` ${s.minimum}–${s.maximum}` : "";
      return `${s.type}${range}`;
    }
    case "boolean":
      return "boolean";
    case "array":
      return `list of ${s.items ? typeOf(s.items, patterns) : "values"}${s.minItems ? ` (at least ${s.minItems})` : ""}`;
    case "object":
      if (typeof s.additionalProperties === "object") {
        const value = s.additionalProperties;
        return `map: ${s.propertyNames?.pattern === patternOf(nameSchema) ? "name" : "key"} → ${value.type === "object" && value.properties ? "object" : typeOf(value, patterns)}`;
      }
      return "object";
    default:
      return variants ? "object" : "any";
  }
}

/** Splits "text. @default value" into the text and the default. */
function splitDefault(description: string | undefined): { text: string; fromText?: string } {
  if (!description) return { text: "" };
  const at = description.indexOf("@default");
  if (at < 0) return { text: description.trim() };
  return { text: description.slice(0, at).trim(), fromText: description.slice(at + "@default".length).trim() };
}

/** The object variants of a union (network's layouts), merged: a field present in only some is marked. */
function mergeVariants(variants: readonly JsonSchema[]): { properties: Record<string, JsonSchema>; required: Set<string>; only: Map<string, string> } {
  const properties: Record<string, JsonSchema> = {};
  const required = new Set<string>();
  const only = new Map<string, string>();
  const labels = variants.map((v, i) => {
    const discriminator = Object.values(v.properties ?? {}).find((p) => p.const !== undefined);
    return discriminator ? String(discriminator.const) : `variant ${i + 1}`;
  });
  const keys = [...new Set(variants.flatMap((v) => Object.keys(v.properties ?? {})))];
  for (const key of keys) {
    const having = variants.map((v, i) => [v, labels[i]] as const).filter(([v]) => v.properties?.[key]);
    const first = having[0][0].properties?.[key] as JsonSchema;
    const consts = having.map(([v]) => v.properties?.[key]?.const).filter((c) => c !== undefined);
    const described = having.map(([v, label]) => `\`${label}\`: ${v.properties?.[key]?.description ?? ""}`).join(" ");
    properties[key] = consts.length === having.length && consts.length > 1 ? { ...first, const: undefined, enum: consts, description: described } : first;
    if (having.every(([v]) => v.required?.includes(key))) required.add(key);
    if (having.length < variants.length) only.set(key, having.map(([, l]) => l).join(", "));
  }
  return { properties, required, only };
}

function rows(s: JsonSchema, path: string, required: boolean, out: ReferenceRow[], patterns: ReturnType<typeof namedPatterns>, note = ""): void {
  const { text, fromText } = splitDefault(s.description);
  const defaultValue = s.default !== undefined ? code(s.default) : fromText ? fromText : "";
  if (path !== "") {
    out.push({ path, type: typeOf(s, patterns), required, defaultValue, description: `${note}${text}` });
  }
  const variants = (s.oneOf ?? s.anyOf)?.filter((v) => v.type === "object");
  if (variants && variants.length > 1) {
    const merged = mergeVariants(variants);
    for (const [key, child] of Object.entries(merged.properties)) {
      const only = merged.only.get(key);
      rows(child, join2(path, key), merged.required.has(key), out, patterns, only ? `(${only} only) ` : "");
    }
    return;
  }
  if (s.type === "object" && s.properties) {
    for (const [key, child] of Object.entries(s.properties)) rows(child, join2(path, key), s.required?.includes(key) ?? false, out, patterns);
  }
  if (s.type === "object" && typeof s.additionalProperties === "object" && s.additionalProperties.properties) {
    rows({ ...s.additionalProperties, description: undefined }, `${path}.<name>`, false, out, patterns);
  }
  if (s.type === "array" && s.items?.type === "object") rows({ ...s.items, description: undefined }, `${path}[]`, false, out, patterns);
}

const join2 = (path: string, key: string) => (path === "" ? key : `${path}.${key}`);

/** Every field of the environment file, depth first in schema order. */
export function referenceRows(schema: Record<string, unknown> = environmentJsonSchema()): ReferenceRow[] {
  const out: ReferenceRow[] = [];
  rows(schema as JsonSchema, "", true, out, namedPatterns());
  return out;
}

/** Markdown table cell text: pipes escaped, `<` written so HTML renderers show it. */
const cell = (text: string) =>
  text
    .replace(/\n/g, " ")
    .split("`")
    .map((part, i) => (i % 2 === 0 ? part.replace(/</g, "&lt;") : part))
    .join("`")
    .replace(/\|/g, "\\|");

const row = (r: ReferenceRow) => `| \`${r.path}\` | ${cell(r.type)} | ${r.required ? "yes" : ""} | ${cell(r.defaultValue)} | ${cell(r.description)} |`;

/** The reference as Markdown: the top-level fields, then one section per field that has fields of its own. */
export function renderEnvironmentReference(schema: Record<string, unknown> = environmentJsonSchema()): string {
  const all = referenceRows(schema);
  const top = all.filter((r) => !r.path.includes(".") && !r.path.includes("["));
  const lines = [
    "# Environment file reference",
    "",
    "<!-- Generated by scripts/env-reference.ts from the environment file's schema: do not edit by hand.",
    "     Regenerate: npm run build && node dist/scripts/env-reference.js --write -->",
    "",
    "Every field of an imaging-lb environment file (YAML). `<name>` is a key you choose (1-32 characters:",
    "lower-case letters, digits and `-`, starting with a letter); `[]` is an item of a list. A field marked",
    "**yes** is required when its parent is present. Defaults that depend on other fields (per-mode",
    "timeouts and checks) and the `preset: agfa-ei` services are applied after validation: print them with",
    "`npx imaging-lb expand <env.yaml>`. The editor schema is `schema/environment.schema.json`.",
    "",
    "## Top level",
    "",
    "| field | type | required | default | description |",
    "|---|---|---|---|---|",
    ...top.map(row),
  ];
  for (const t of top) {
    const section = all.filter((r) => r.path.startsWith(`${t.path}.`) || r.path.startsWith(`${t.path}[`));
    if (section.length === 0) continue;
    lines.push("", `## ${t.path}`, "", "| field | type | required | default | description |", "|---|---|---|---|---|", ...section.map(row));
  }
  return `${lines.join("\n")}\n`;
}

if (require.main === module) {
  const text = renderEnvironmentReference();
  if (process.argv.includes("--write")) {
    const target = join(__dirname, "..", "..", REFERENCE_FILE);
    writeFileSync(target, text);
    process.stdout.write(`wrote ${REFERENCE_FILE}\n`);
  } else {
    process.stdout.write(text);
  }
}
