/**
 * Turns schema (zod) issues into problems that say what is allowed and what was received.
 */
import type { z } from "zod";
import { FieldPath, ProblemCollector, describeValue, valueAt } from "./locate";

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
        } else {
          out.add(path, `${expectation(issue)}, got ${describeValue(got)}`);
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
}

const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The field names the schema allows at `path` (for "unknown field" messages). */
export function allowedKeys(schema: z.ZodType, path: FieldPath, raw: unknown): string[] {
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
    if (!node) return [];
    const d = defOf(unwrap(node));
    if (d.type === "object" && d.shape) node = d.shape[String(seg)];
    else if (d.type === "record") node = d.valueType;
    else if (d.type === "array") node = d.element;
    else return [];
    walked.push(seg);
  }
  if (!node) return [];
  const shape = defOf(unwrap(node)).shape;
  return shape ? Object.keys(shape) : [];
}

/** The allowed key nearest to `key` by edit distance, when it is plausibly a typo. */
function closest(key: string, allowed: readonly string[]): string | undefined {
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

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}
