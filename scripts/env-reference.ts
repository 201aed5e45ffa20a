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
import { parseEnvironment } from "../lib/load/load";
import { ResolvedService } from "../lib/config/model";
import { AGFA_EI_SERVICES, PRESET_REPLACES } from "../lib/config/presets/agfa-ei";
import { cidrSchema, durationSchema, environmentJsonSchema, ipv4Schema, nameSchema } from "../lib/config/schema";

/** A JSON Schema node, as far as the reference reads it. */
interface JsonSchema {
  readonly type?: string;
  readonly description?: string;
  readonly default?: unknown;
  readonly const?: unknown;
  readonly enum?: readonly unknown[];
  readonly pattern?: string;
  readonly allOf?: readonly JsonSchema[];
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
    [/:kms:/, "KMS key ARN (`arn:aws:kms:...:key/...`, not an alias)"],
    [/:secretsmanager:/, "Secrets Manager secret ARN"],
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
      // Several regexes (e.g. the secret ARN and its suffix) become allOf: the first one names the type.
      const pattern = s.pattern ?? s.allOf?.find((a) => a.pattern !== undefined)?.pattern;
      const named = pattern === undefined ? undefined : patterns.find(([p]) => (typeof p === "string" ? p === pattern : p.test(pattern)));
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

/**
 * The `preset: agfa-ei` services as the loader resolves them (every default filled in), from a small
 * environment that uses the preset: what `imaging-lb expand` and haproxy.cfg get, not a copy of it.
 * `variant` picks which of two services that replace each other is enabled (xero or xero-xtend).
 */
export function presetServices(): ResolvedService[] {
  const resolveWith = (services: string) =>
    parseEnvironment(
      [
        "name: reference",
        "region: eu-west-1",
        "preset: agfa-ei",
        "network:",
        "  layout: one-arm",
        "  vpcCidr: 10.30.0.0/16",
        "  subnet: { cidr: 10.30.1.0/24, availabilityZone: eu-west-1a }",
        "  natSubnet: { cidr: 10.30.0.0/24, availabilityZone: eu-west-1a }",
        "loadBalancer: { nodes: { lb-1: { internalAddress: 10.30.1.10 } } }",
        "vips: { web: { address: 10.30.1.100 }, core: { address: 10.30.1.101 } }",
        `services: ${services}`,
        "servers: { s1: { address: 10.30.1.21 }, s2: { address: 10.30.1.22 } }",
        'tls: { certificates: { web: { secretArn: "arn:aws:secretsmanager:eu-west-1:210987654321:secret:reference/web-AbCdEf" } } }',
        "access: { clientCidrs: [10.0.0.0/8], adminCidrs: [10.99.0.0/24] }",
        'admin: { statsPasswordSecretArn: "arn:aws:secretsmanager:eu-west-1:210987654321:secret:reference/stats-AbCdEf" }',
        "",
      ].join("\n"),
      "reference.yaml",
    ).services;
  const plain = resolveWith("{}");
  const replacing = Object.entries(PRESET_REPLACES).flatMap(([svc, replaced]) =>
    resolveWith(`{ ${svc}: { enabled: true }, ${replaced}: { enabled: false } }`).filter((s) => s.name === svc),
  );
  return Object.keys(AGFA_EI_SERVICES).map((name) => plain.find((s) => s.name === name) ?? replacing.find((s) => s.name === name)!);
}

function presetRow(s: ResolvedService): string {
  const on = AGFA_EI_SERVICES[s.name].enabled !== false;
  const ports = `${s.frontendPorts.join(", ")}${s.backendPort !== undefined ? ` → ${s.backendPort}` : ""}${s.tls.redirectHttpPort !== undefined ? `; ${s.tls.redirectHttpPort} → HTTPS` : ""}${s.routes.map((r) => `; ${r.pathPrefixes.join(" ")} → ${r.members[0]?.port ?? "the service's port"}`).join("")}`;
  const hc = s.healthCheck;
  const check = hc.type === "none" ? "none" : `${hc.type}${hc.port !== undefined ? ` :${hc.port}` : " on every port"} every ${hc.interval}, fall ${hc.fall}, rise ${hc.rise}`;
  const t = s.timeouts;
  const timeouts = [`connect ${t.connect}`, `client ${t.client}`, `server ${t.server}`, `queue ${t.queue}`, `check ${t.check}`, ...(t.httpRequest ? [`http-request ${t.httpRequest}`] : []), ...(t.httpKeepAlive ? [`http-keep-alive ${t.httpKeepAlive}`] : []), ...(t.tunnel ? [`tunnel ${t.tunnel}`] : [])].join(", ");
  const persistence = s.persistence.type === "none" ? "none" : `${s.persistence.type} ${s.persistence.timeout}`;
  const description = s.description ?? "";
  return `| \`${s.name}\` | ${on ? "yes" : "no"} | ${s.vip.name} | ${cell(ports)} | ${s.mode}, ${s.balance} | ${cell(persistence)} | ${cell(check)} | ${cell(timeouts)} | ${s.clientAddress} | ${cell(description)} |`;
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
  lines.push(
    "",
    "## preset: agfa-ei",
    "",
    "The services `preset: agfa-ei` contributes, with every default the loader fills in (as `imaging-lb expand`",
    "prints them). Override any field under `services.<name>`; disable one with `enabled: false`. The",
    "check port is the port checked on each server; timeouts are HAProxy's.",
    ...Object.entries(PRESET_REPLACES).map(
      ([svc, replaced]) => `\`${svc}\` replaces \`${replaced}\` (the same VIP and ports): to use it, enable \`${svc}\` and disable \`${replaced}\`.`,
    ),
    "",
    "| service | on | VIP | ports | mode, balance | persistence | health check | timeouts | servers see | description |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...presetServices().map(presetRow),
  );
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
