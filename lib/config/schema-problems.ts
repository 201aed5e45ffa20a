/**
 * Turns schema (zod) issues into problems that say what is allowed and what was received.
 */
import { editDistance } from "./edit-distance";
import type { z } from "zod";
import { FieldPath, ProblemCollector, describeValue, valueAt } from "./locate";
import { durationSchema } from "./schema";

type Issue = z.core.$ZodIssue;

/** Adds one problem per schema issue (one per unknown key) to `out`. */
export function reportSchemaIssues(issues: readonly Issue[], raw: unknown, schema: z.ZodType, out: ProblemCollector): void {
  for (const issue of issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    const got = valueAt(raw, path);
    switch (issue.code) {
      case "unrecognized_keys": {
        const allowed = allowedKeys(schema, path, raw);
        for (const key of issue.keys) {
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
        if (got === undefined) {
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
