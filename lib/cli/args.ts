/**
 * The command line's argument parser: options declared per command, problems answered in imaging-lb's
 * own words with a did-you-mean (instead of Node's parseArgs messages), and an exception type the
 * dispatcher turns into exit code 2.
 */
import { editDistance } from "../config/edit-distance";

/** Wrong usage: printed as `imaging-lb <command>: <message>` with the command's usage; exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One option of a command. */
export interface OptionSpec {
  /** A string option takes a value (`--out file` or `--out=file`); a boolean one takes none. */
  readonly type: "string" | "boolean";
  /** A one-letter alias, without the dash. */
  readonly short?: string;
}

/** A command's options by long name (without the dashes). */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The values of `S`: strings for string options, `true` for booleans given; absent when not given. */
export type OptionValues<S extends OptionSpecs> = { -readonly [K in keyof S]?: S[K]["type"] extends "string" ? string : boolean };

/** What {@link parseCommandArgs} returns. */
export interface ParsedArgs<S extends OptionSpecs> {
  readonly values: OptionValues<S>;
  readonly positionals: string[];
}

/** What a command accepts besides options. */
export interface PositionalSpec {
  /** Fewest positional arguments (default 0). */
  readonly min?: number;
  /** Most positional arguments (default: no limit). */
  readonly max?: number;
  /** What they are, for the messages, e.g. "environment file". */
  readonly name?: string;
}

/** The candidate closest to `word` when it is close enough to be a typo (or a prefix of exactly one), else undefined. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const prefixed = candidates.filter((c) => word.length >= 2 && c.startsWith(word));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestDistance = Infinity;
  let tied = false;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
      tied = false;
    } else if (d === bestDistance) {
      tied = true;
    }
  }
  const allowed = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  // Two candidates equally close: no guess.
  return bestDistance <= allowed && !tied ? best : undefined;
}

/** `; did you mean X?` or nothing. */
export const suggestion = (word: string, candidates: readonly string[], render: (c: string) => string = (c) => c): string => {
  const close = didYouMean(word, candidates);
  return close === undefined ? "" : `; did you mean ${render(close)}?`;
};

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;

/**
 * Parses a command's arguments: `--name value`, `--name=value`, `-x value`, booleans as `--flag`, `--`
 * ends the options. Unknown options, missing values, values given to a boolean and a wrong number of
 * positional arguments throw a {@link UsageError} that names the problem and the options the command has.
 */
export function parseCommandArgs<S extends OptionSpecs>(args: readonly string[], options: S, positional: PositionalSpec = {}): ParsedArgs<S> {
  const values: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  const names = Object.keys(options);
  const byShort = new Map(Object.entries(options).flatMap(([name, spec]) => (spec.short ? [[spec.short, name] as const] : [])));
  const known = names.length === 0 ? "it takes no options" : `its options: ${names.map((n) => `--${n}`).join(", ")}`;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const given = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
      if (!(given in options)) throw new UsageError(`unknown option --${given}${suggestion(given, names, (c) => `--${c}`)} (${known})`);
      name = given;
    } else {
      name = byShort.get(arg.slice(1, 2));
      if (name === undefined || (arg.length > 2 && options[name].type === "boolean")) {
        throw new UsageError(`unknown option ${arg} (${known})`);
      }
      inline = arg.length > 2 ? arg.slice(2) : undefined;
    }
    const spec = options[name];
    if (spec.type === "boolean") {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value, got "${inline}"`);
      values[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) throw new UsageError(`option --${name} needs a value`);
      value = next;
      i++;
    }
    if (name in values && values[name] !== value) throw new UsageError(`option --${name} given twice ("${String(values[name])}" and "${value}")`);
    values[name] = value;
  }
  const { min = 0, max = Infinity, name = "argument" } = positional;
  if (positionals.length < min) {
    throw new UsageError(min === 1 && max === 1 ? `expected one ${name}` : `expected at least ${plural(min, name)}`);
  }
  if (positionals.length > max) {
    const extra = positionals.slice(max).map((p) => `'${p}'`).join(", ");
    const what = max === 0 ? "it takes no arguments" : `it takes ${max === 1 ? `one ${name}` : `at most ${plural(max, name)}`}`;
    throw new UsageError(`unexpected argument${positionals.length - max === 1 ? "" : "s"} ${extra}: ${what}`);
  }
  return { values: values as OptionValues<S>, positionals };
}
