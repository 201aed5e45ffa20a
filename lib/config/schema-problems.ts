/**
 * Turns schema (zod) issues into problems that say what is allowed and what was received.
 */
import { editDistance } from "./edit-distance";
import type { z } from "zod";
import { FieldPath, ProblemCollector, describeValue, valueAt } from "./locate";
import { durationSchema } from "./schema";

type Issue = z.core.$ZodIssue;

/**
 * Adds one problem per schema issue (one per unknown key) to `out`. `raw` is what the schema checked (the
 * preset applied); `written` is the file's own mapping, whose key order says which entry is above which.
 */
export function reportSchemaIssues(issues: readonly Issue[], raw: unknown, schema: z.ZodType, out: ProblemCollector, written: unknown = raw): void {
  const pathOf = (issue: Issue) => issue.path.filter((p): p is string | number => typeof p !== "symbol");
  // A field written one level too far left, among the names of a mapping (`aeTitle:` under `servers:`):
  // one indentation hint in place of "invalid name" and "expected a mapping", and in place of what its
  // absence causes in the entry above it ("missing required field", "has no value").
  const dedents = new Map<string, { path: FieldPath; dedent: Dedent }>();
  for (const issue of issues) {
    const path = pathOf(issue);
    const dedent = dedentedField(schema, path, raw, written);
    if (dedent) dedents.set(path.join("."), { path, dedent });
  }
  const covered = (path: FieldPath): boolean =>
    [...dedents.values()].some(({ path: at, dedent }) => {
      const parent = at.slice(0, -1).join(".");
      const entry = [parent, dedent.above].filter(Boolean).join(".");
      const here = path.join(".");
      return here === entry || here === `${entry}.${String(at[at.length - 1])}`;
    });
  for (const { path, dedent } of dedents.values()) out.add(path, dedent.message, "key");
  for (const issue of issues) {
    const path = pathOf(issue);
    const got = valueAt(raw, path);
    if (dedents.has(path.join(".")) || covered(path)) continue;
    switch (issue.code) {
      case "unrecognized_keys": {
        const allowed = allowedKeys(schema, path, raw);
        for (const key of issue.keys) {
          const above = fieldOfMappingAbove(schema, path, raw, written, key);
          if (above !== undefined) {
            out.add([...path, key], `unknown field here: "${key}" is a field of ${above}, the mapping above it, indented one level too little; indent it under "${above}:" (2 spaces more)`, "key");
            continue;
          }
          const hint = closest(key, allowed);
          const fix = hint ? ` (did you mean '${hint}'?)` : "";
          out.add([...path, key], `unknown field${fix}; allowed here: ${allowed.join(", ")}`, "key");
        }
        break;
      }
      case "invalid_key": {
        const inner = issue.issues[0]?.message ?? "invalid name";
        out.add(path, `invalid name ${describeValue(path[path.length - 1])}: ${inner}`, "key");
        break;
      }
      case "invalid_type":
        if (got === null && (issue.expected === "object" || issue.expected === "record") && path.length > 0) {
          out.add(path, emptyMapping(schema, path, raw), "key");
        } else if (got === undefined) {
          out.add(path, `missing required field: ${expectation(issue)}`, path.length > 0 ? "key" : "value");
        } else if (typeof got === "number" && issue.expected === "string" && isDuration(schema, path, raw)) {
          out.add(path, `expected a duration with a unit, such as 30s, 10m or 24h, got ${got}: a bare number has no unit; write ${durationHint(got)}`);
        } else {
          out.add(path, `${expectation(issue)}, got ${describeValue(got)}${typeHint(issue.expected, got)}`);
        }
        break;
      case "invalid_value":
        out.add(path, `expected one of ${issue.values.map((v) => String(v)).join(" | ")}, got ${describeValue(got)}`);
        break;
      case "invalid_union": {
        if ("discriminator" in issue && issue.discriminator) {
          const options = (issue as { options?: unknown[] }).options ?? [];
          const disc = issue.discriminator as string;
          // zod 4 puts the discriminator at the end of the path; older releases stopped at its object.
          const at = path[path.length - 1] === disc ? path : [...path, disc];
          const value = valueAt(raw, at);
          const allowed = `expected one of ${options.map(String).join(" | ")}`;
          if (value === undefined) out.add(at, `missing required field: ${allowed}`, "key");
          else out.add(at, `${allowed}, got ${describeValue(value)}`);
        } else {
          out.add(path, `${custom(issue.message) ?? "does not match any allowed form"}, got ${describeValue(got)}`);
        }
        break;
      }
      case "too_big":
      case "too_small": {
        const own = custom(issue.message);
        if (own) {
          out.add(path, `${own}, got ${describeValue(got)}`);
        } else if (issue.origin === "array") {
          const n = Number(issue.code === "too_big" ? issue.maximum : issue.minimum);
          out.add(path, `expected ${issue.code === "too_big" ? "at most" : "at least"} ${n} item${n === 1 ? "" : "s"}, got ${Array.isArray(got) ? got.length : describeValue(got)}`);
        } else {
          const bound = issue.code === "too_big" ? `<= ${String(issue.maximum)}` : `>= ${String(issue.minimum)}`;
          out.add(path, `expected a value ${bound}, got ${describeValue(got)}`);
        }
        break;
      }
      default:
        out.add(path, `${custom(issue.message) ?? issue.message}, got ${describeValue(got)}`);
    }
  }
}

/** The fix for a value of the wrong type that is only written wrongly: a quoted number, an unquoted name. */
function typeHint(expected: string, got: unknown): string {
  if (typeof got === "string" && (expected === "number" || expected === "int") && /^\s*-?\d+(\.\d+)?\s*$/.test(got)) {
    return `: a quoted number is text; remove the quotes (${got.trim()})`;
  }
  if (typeof got === "string" && expected === "boolean" && /^(true|false)$/i.test(got.trim())) {
    return `: a quoted true/false is text; remove the quotes (${got.trim().toLowerCase()})`;
  }
  if ((typeof got === "number" || typeof got === "boolean") && expected === "string") {
    return `: YAML read this as a ${typeof got === "number" ? "number" : "true/false"}; quote it if you meant the text ("${String(got)}")`;
  }
  return "";
}

/** `86400` → `86400s (= 24h)`: the number read as seconds, and the same time in the largest whole unit. */
function durationHint(n: number): string {
  if (!Number.isInteger(n) || n <= 0) return "a whole number followed by ms, s, m, h or d";
  const units: Array<[string, number]> = [["d", 7 * 86400], ["h", 3600], ["m", 60]];
  const whole = units.find(([, size]) => n % size === 0 && n >= size);
  if (whole?.[0] === "d") whole[1] = 86400;
  return `${n}s for ${n} seconds${whole ? ` (= ${n / whole[1]}${whole[0]})` : ""}, or ${n}ms for milliseconds`;
}

/** Messages the schema wrote itself start with "expected"; zod's generic ones do not. */
function custom(message: string): string | undefined {
  return message.startsWith("expected") ? message : undefined;
}

function expectation(issue: Extract<Issue, { code: "invalid_type" }>): string {
  const own = custom(issue.message);
  if (own) return own;
  const names: Record<string, string> = {
    object: "a mapping",
    record: "a mapping",
    array: "a list",
    string: "a string",
    number: "a number",
    int: "a whole number",
    boolean: "true or false",
  };
  return `expected ${names[issue.expected] ?? issue.expected}`;
}

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  valueType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  discriminator?: string;
  checks?: z.ZodType[];
  pattern?: RegExp;
}

const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The field names the schema allows at `path` (for "unknown field" messages). */
export function allowedKeys(schema: z.ZodType, path: FieldPath, raw: unknown): string[] {
  const node = schemaAt(schema, path, raw);
  const shape = node && defOf(node).shape;
  return shape ? Object.keys(shape) : [];
}

/** The fields an object schema requires (neither optional nor defaulted). */
function requiredKeys(node: z.ZodType | undefined): string[] {
  const shape = node && defOf(node).shape;
  if (!shape) return [];
  return Object.entries(shape)
    .filter(([, field]) => !["optional", "default", "prefault"].includes(defOf(field).type))
    .map(([key]) => key);
}

/**
 * The message for a key written without a value where a mapping belongs (`web:` once its `secretArn:` line
 * was deleted): which required fields are missing, not "expected a mapping, got null".
 */
function emptyMapping(schema: z.ZodType, path: FieldPath, raw: unknown): string {
  const node = schemaAt(schema, path, raw);
  const name = String(path[path.length - 1]);
  if (node && defOf(node).type === "record") return `"${name}:" has no value: expected a mapping of names to entries under it, or remove the line`;
  const required = requiredKeys(node);
  const allowed = allowedKeys(schema, path, raw);
  const also = allowed.length > required.length ? `; allowed here: ${allowed.join(", ")}` : "";
  if (required.length === 0) return `"${name}:" has no value: expected a mapping${also ? ` (${also.slice(2)})` : ""}, or remove the line`;
  const s = required.length === 1 ? "" : "s";
  return `missing required field${s} ${required.join(", ")}: "${name}:" has no value (was the line under it deleted?); expected a mapping with ${required.join(" and ")}${also}`;
}

/** What to call one entry of the mapping of names at `parent` (servers → "a server"). */
const ENTRY_NAMES: Readonly<Record<string, string>> = {
  servers: "a server",
  services: "a service",
  vips: "a VIP",
  nodes: "a node",
  certificates: "a certificate",
  routes: "a route",
};

/**
 * When `path` is a key of a mapping of names (servers, services, vips, ...) that is really a field of one
 * entry, written one level too far left (its value is then not a mapping): the indentation hint.
 */
/** A field indented one level too little: the hint, and the entry it belongs under. */
interface Dedent {
  readonly message: string;
  readonly above?: string;
}

function dedentedField(schema: z.ZodType, path: FieldPath, raw: unknown, written: unknown): Dedent | undefined {
  if (path.length < 2) return undefined;
  const parentPath = path.slice(0, -1);
  const parent = schemaAt(schema, parentPath, raw);
  if (!parent || defOf(parent).type !== "record") return undefined;
  const key = String(path[path.length - 1]);
  const entry = schemaAt(schema, path, raw);
  if (!entry || !defOf(entry).shape || !(key in defOf(entry).shape!)) return undefined;
  const value = valueAt(raw, path);
  if (typeof value === "object" && value !== null && !Array.isArray(value)) return undefined;
  const own = valueAt(written, parentPath);
  const container = (typeof own === "object" && own !== null && !Array.isArray(own) ? own : valueAt(raw, parentPath)) as Record<string, unknown>;
  const keys = Object.keys(container);
  const above = keys
    .slice(0, keys.indexOf(key))
    .reverse()
    .find((k) => container[k] === null || (typeof container[k] === "object" && !Array.isArray(container[k])));
  const what = ENTRY_NAMES[String(parentPath[parentPath.length - 1])] ?? "an entry";
  const noun = what.replace(/^an? /, "");
  const under = above !== undefined ? `under the ${noun} it belongs to ("${above}:" above it), 2 spaces more than "${above}:"` : `under the ${noun} it belongs to, 2 spaces more than its name`;
  return { message: `"${key}" is a field of ${what}, not the name of ${what}: it is indented one level too little; indent it ${under}`, above };
}

/**
 * When the unknown field `key` of the mapping at `path` is a field of the mapping just above it in the file
 * (`calledAeTitle:` dedented out of `healthCheck:`), that mapping's name.
 */
function fieldOfMappingAbove(schema: z.ZodType, path: FieldPath, raw: unknown, written: unknown, key: string): string | undefined {
  const container = valueAt(written, path) ?? valueAt(raw, path);
  if (typeof container !== "object" || container === null || Array.isArray(container)) return undefined;
  const keys = Object.keys(container);
  const previous = keys[keys.indexOf(key) - 1];
  if (previous === undefined) return undefined;
  const value = (container as Record<string, unknown>)[previous];
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const node = schemaAt(schema, [...path, previous], raw);
  const shape = node && defOf(node).shape;
  return shape && key in shape ? previous : undefined;
}

/** True when the field at `path` takes an HAProxy duration (30s, 10m, 24h). */
function isDuration(schema: z.ZodType, path: FieldPath, raw: unknown): boolean {
  const node = schemaAt(schema, path, raw);
  if (!node) return false;
  // The same schema object, or a copy of it (`.describe()` copies): the same pattern check.
  const pattern = (s: z.ZodType) => (defOf(s).checks ?? []).map((c) => String(defOf(c).pattern ?? "")).join(" ");
  return node === durationSchema || (pattern(node) !== "" && pattern(node) === pattern(durationSchema));
}

/** The schema of the field at `path` (optional/default wrappers removed), or undefined. */
function schemaAt(schema: z.ZodType, path: FieldPath, raw: unknown): z.ZodType | undefined {
  let node: z.ZodType | undefined = schema;
  const walked: (string | number)[] = [];
  const unwrap = (s: z.ZodType): z.ZodType => {
    let cur = s;
    for (;;) {
      const d = defOf(cur);
      if ((d.type === "optional" || d.type === "default" || d.type === "nullable" || d.type === "prefault") && d.innerType) {
        cur = d.innerType;
      } else if (d.type === "union" && d.options) {
        const value = valueAt(raw, walked) as Record<string, unknown> | undefined;
        const pick: z.ZodType | undefined = d.discriminator
          ? d.options.find((o) => {
              const lit = defOf(unwrap(o)).shape?.[d.discriminator!];
              return lit && (lit as unknown as { _zod: { def: { values: unknown[] } } })._zod.def.values?.includes(value?.[d.discriminator!]);
            })
          : undefined;
        cur = pick ?? d.options.find((o) => defOf(unwrap(o)).type === "object") ?? d.options[0];
      } else {
        return cur;
      }
    }
  };
  for (const seg of path) {
    if (!node) return undefined;
    const d = defOf(unwrap(node));
    if (d.type === "object" && d.shape) node = d.shape[String(seg)];
    else if (d.type === "record") node = d.valueType;
    else if (d.type === "array") node = d.element;
    else return undefined;
    walked.push(seg);
  }
  return node && unwrap(node);
}

/** The allowed key nearest to `key` by edit distance, when it is plausibly a typo. */
export function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}
