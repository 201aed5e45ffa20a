/**
 * The environment file parsed: bytes → YAML → preset applied → schema → resolved environment. Every problem
 * is collected and thrown at once as a ConfigError; nothing is half-loaded. The checks that need the plans
 * (security-group quotas) run after this, in `lib/load/load.ts`, which callers use.
 */
import { readFileSync } from "node:fs";
import { LineCounter, parseDocument, visit } from "yaml";
import { ConfigError, ConfigProblem } from "./errors";
import { ProblemCollector } from "./locate";
import { ResolvedEnvironment } from "./model";
import { PRESETS, PresetName } from "./presets/agfa-ei";
import { resolveEnvironment } from "./resolve";
import { Environment, environmentSchema } from "./schema";
import { YamlError, explainYamlErrors } from "./yaml-messages";
import { closest, reportSchemaIssues } from "./schema-problems";

/** Reads the file as UTF-8, rejecting other encodings with a clear problem. */
export function readEnvironmentFile(file: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory, expected a YAML file" : `cannot be read (${code ?? String(e)})`;
    throw new ConfigError([{ file, path: "", message: why }]);
  }
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new ConfigError([{ file, path: "", message: "the file is UTF-16; expected UTF-8 (save it as UTF-8)" }]);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const bad = firstInvalidUtf8(bytes);
    const line = bytes.subarray(0, bad).toString("latin1").split("\n").length;
    throw new ConfigError([{ file, line, path: "", message: `not valid UTF-8 (byte 0x${bytes[bad].toString(16).padStart(2, "0")} at offset ${bad}); expected a UTF-8 text file (save it as UTF-8)` }]);
  }
}

function firstInvalidUtf8(bytes: Buffer): number {
  for (let i = 0; i < bytes.length; i++) {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, i + 1), { stream: true });
    } catch {
      return i;
    }
  }
  return 0;
}

interface Parsed {
  readonly raw: Record<string, unknown>;
  readonly collector: ProblemCollector;
}

function parseYaml(text: string, file: string): Parsed {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const collector = new ProblemCollector(file, doc, lines);
  const syntax: YamlError[] = [];
  for (const err of doc.errors) {
    const pos = lines.linePos(err.pos[0]);
    if (err.code === "MULTIPLE_DOCS") {
      collector.addAt(pos.line, pos.col, "a second YAML document ('---'): an environment file holds one environment; put each environment in its own file");
    } else {
      syntax.push({ code: err.code, message: err.message.split("\n")[0].replace(/ at line \d+, column \d+.*$/, ""), line: pos.line, column: pos.col });
    }
  }
  for (const p of explainYamlErrors(text, syntax)) collector.addAt(p.line, p.column, p.message);
  visit(doc, {
    Alias(_, alias) {
      if (!alias.resolve(doc)) {
        const pos = alias.range ? lines.linePos(alias.range[0]) : undefined;
        collector.addAt(pos?.line, pos?.col, `YAML alias *${alias.source} refers to no anchor &${alias.source} defined before it`);
      }
    },
  });
  if (!collector.empty) throw new ConfigError(collector.problems);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new ConfigError([{ file, path: "", message: `YAML aliases expand too far (${(e as Error).message.split("\n")[0]}); an environment file needs at most a few aliases` }]);
  }
  if (raw === null || raw === undefined) {
    throw new ConfigError([{ file, path: "", message: "the file is empty; expected a mapping with name, region, network, loadBalancer, vips, services, servers, access and admin (try `imaging-lb init`)" }]);
  }
  if (typeof raw !== "object" || Array.isArray(raw)) {
    collector.add([], `expected a mapping of environment fields, got ${Array.isArray(raw) ? "a list" : JSON.stringify(raw)}`);
    throw new ConfigError(collector.problems);
  }
  return { raw: raw as Record<string, unknown>, collector };
}

/** The file's own services laid over the preset's: user fields win, maps merge, lists replace. */
export function applyPreset(raw: Record<string, unknown>): Record<string, unknown> {
  const preset = raw.preset;
  if (typeof preset !== "string" || !(preset in PRESETS)) return raw;
  const base = PRESETS[preset as PresetName];
  const own = raw.services && typeof raw.services === "object" && !Array.isArray(raw.services) ? (raw.services as Record<string, unknown>) : {};
  const merged: Record<string, unknown> = {};
  for (const [name, svc] of Object.entries(base)) merged[name] = deepMerge(svc, own[name]);
  for (const [name, svc] of Object.entries(own)) if (!(name in merged)) merged[name] = svc;
  return { ...raw, services: merged };
}

interface PresetTypo {
  readonly name: string;
  /** The preset service the name is near, if any. */
  readonly hint?: string;
  readonly preset: string;
  /** The file writes `enabled: false` for it: it would disable nothing. */
  readonly disabled: boolean;
}

/**
 * Services of the file that look like a misspelt preset service (`dicon:` for `dicom`): not in the preset,
 * near a preset name, and without the frontendPorts a service of one's own needs. Also every such service
 * the file disables (`xero-viewer: { enabled: false }`), near a preset name or not: it disables nothing,
 * and the service the user meant stays on.
 */
function presetTypos(raw: Record<string, unknown>): PresetTypo[] {
  const preset = raw.preset;
  if (typeof preset !== "string" || !(preset in PRESETS) || !isPlainObject(raw.services)) return [];
  const names = Object.keys(PRESETS[preset as PresetName]);
  return Object.entries(raw.services).flatMap(([name, svc]) => {
    if (names.includes(name) || (isPlainObject(svc) && svc.frontendPorts !== undefined)) return [];
    const hint = closest(name, names);
    const disabled = isPlainObject(svc) && svc.enabled === false;
    return hint || disabled ? [{ name, hint, preset, disabled }] : [];
  });
}

/** One problem per misspelt preset service, in place of the "missing vip/frontendPorts" it would cause. */
function reportPresetTypos(typos: readonly PresetTypo[], collector: ProblemCollector): void {
  for (const t of typos) {
    const at = `services.${t.name}`;
    for (let i = collector.problems.length - 1; i >= 0; i--) if (collector.problems[i].path === at) collector.problems.splice(i, 1);
    const names = Object.keys(PRESETS[t.preset as PresetName]).sort().join(", ");
    const unknown = `unknown service${t.hint ? ` (did you mean '${t.hint}'?)` : ""}: preset ${t.preset} defines ${names}`;
    collector.add(
      ["services", t.name],
      t.disabled
        ? `${unknown}; enabled: false here disables nothing (write the preset service's name to turn it off)`
        : `${unknown}; to change one, use its name; a service of your own needs vip and frontendPorts`,
      "key",
    );
  }
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (isPlainObject(base) && isPlainObject(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
    return out;
  }
  return over;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The environment resolved, the schema's output it came from, and the collector that places further problems. */
export interface ParsedEnvironment {
  readonly env: ResolvedEnvironment;
  readonly data: Environment;
  /** Empty; problems added to it are placed at their fields' lines in the file's text. */
  readonly collector: ProblemCollector;
}

/**
 * Parses, validates and resolves environment text (named `file` in messages). Throws ConfigError listing
 * every problem of the file itself; `lib/load/load.ts` then checks what needs the plans.
 */
export function parseAndResolve(text: string, file: string): ParsedEnvironment {
  const { raw, collector } = parseYaml(text, file);
  const expanded = applyPreset(raw);
  const typos = presetTypos(raw);
  const parsed = environmentSchema.safeParse(expanded);
  if (!parsed.success) {
    reportSchemaIssues(parsed.error.issues, expanded, environmentSchema, collector, raw);
    reportPresetTypos(typos, collector);
    throw new ConfigError(collector.problems);
  }
  const env = resolveEnvironment(parsed.data, file, collector);
  reportPresetTypos(typos, collector);
  if (!env || !collector.empty) throw new ConfigError(collector.problems);
  return { env, data: parsed.data, collector };
}

/**
 * Problems found outside the loader (e.g. by `haproxy -c` on a rendered file), placed at their fields'
 * lines in the environment file's text.
 */
export function locateProblems(file: string, text: string, found: ReadonlyArray<{ path: ReadonlyArray<string | number>; message: string }>): ConfigProblem[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const collector = new ProblemCollector(file, doc, lines);
  for (const f of found) collector.add(f.path, f.message);
  return collector.problems;
}
