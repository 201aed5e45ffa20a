/**
 * `imaging-lb init`: writes a commented starter environment file that validates as written.
 *
 * Wrong usage, and an existing file without --force, return exit code 2 with the message on stderr
 * (no exception). The starter is validated through the real loader before it is written.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { basename, dirname, extname } from "node:path";
import { parseEnvironment } from "../../load/load";
import { parseCommandArgs } from "../args";
import { renderStarter, schemaPathFor, STARTER_NAME, StarterLayout, StarterPreset } from "../../init";

/** Output streams of a command (same shape as the CLI's). */
export interface InitIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const LAYOUTS: readonly StarterLayout[] = ["one-arm", "two-arm"];
const PRESETS: readonly StarterPreset[] = ["agfa-ei"];
const NAME_RE = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$/;
const USAGE = "imaging-lb init --layout one-arm|two-arm [--pair | --nlb [--zones 2|3]] [--preset agfa-ei] [--name <name>] --out <file.yaml> [--force]";

/** The environment name for `file`: its base name when that is a valid name, else the starter's default. */
export function nameForFile(file: string): string {
  const base = basename(file, extname(file));
  return NAME_RE.test(base) ? base : STARTER_NAME;
}

/** `file` as one shell word (single-quoted when it holds anything but safe characters). */
const shellWord = (file: string) => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(file) ? file : `'${file.replace(/'/g, "'\\''")}'`);

/** The `init` command, registered in the CLI's command table. */
export const initCommand = {
  summary: "write a commented starter environment file (valid as written; CHANGE ME markers)",
  usage: USAGE,
  help: [
    "Writes an environment file in which every field is explained, every value is a valid placeholder",
    "and every value your site must change is marked `# CHANGE ME`.",
    "",
    "  --layout one-arm|two-arm  one interface, or eth0 internal + eth1 external",
    "  --pair                    two nodes (HA pair with keepalived) instead of one",
    "  --nlb                     two active nodes in two availability zones behind an internal Network",
    "                            Load Balancer per VIP (ha.vipMode nlb, survives an AZ's loss)",
    "  --zones 2|3               with --nlb: two nodes in two zones (default) or three in three",
    "  --preset agfa-ei          the service catalog (default agfa-ei, the only one)",
    "  --name <name>             environment (stack) name; default: the file's base name if valid, else st-example",
    "  --out <file.yaml>         the file to write (folders are created)",
    "  --force                   overwrite an existing file",
    "",
    "Exit codes: 0 written, 2 wrong usage or the file exists (without --force).",
  ].join("\n"),
  run(args: string[], io: InitIo): number {
    const usageError = (message: string): number => {
      io.err(`imaging-lb init: ${message}\nusage: ${USAGE}\n`);
      return 2;
    };
    let parsed;
    try {
      parsed = parseCommandArgs(args, {
        layout: { type: "string" },
        pair: { type: "boolean" },
        nlb: { type: "boolean" },
        zones: { type: "string" },
        preset: { type: "string" },
        name: { type: "string" },
        out: { type: "string" },
        force: { type: "boolean" },
      }, { max: 0 });
    } catch (e) {
      return usageError((e as Error).message);
    }
    const { values } = parsed;
    const layout = values.layout as StarterLayout | undefined;
    if (layout === undefined) return usageError("missing --layout: one-arm or two-arm");
    if (!LAYOUTS.includes(layout)) return usageError(`--layout: expected one-arm or two-arm, got "${values.layout}"`);
    if (values.zones !== undefined && values.zones !== "2" && values.zones !== "3") return usageError(`--zones: expected 2 or 3, got "${values.zones}"`);
    if (values.zones !== undefined && values.nlb !== true) return usageError("--zones needs --nlb: only nodes behind NLBs span more than one zone each");
    const zones = values.zones === "3" ? 3 : 2;
    const preset = (values.preset ?? "agfa-ei") as StarterPreset;
    if (!PRESETS.includes(preset)) return usageError(`--preset: expected agfa-ei, got "${values.preset}"`);
    const out = values.out;
    if (out === undefined) return usageError("missing --out: the environment file to write, e.g. sites/st-mary.yaml");
    if (!/\.ya?ml$/i.test(out)) return usageError(`--out: expected a .yaml or .yml file, got "${out}"`);
    const name = values.name ?? nameForFile(out);
    if (!NAME_RE.test(name)) {
      return usageError(`--name: expected 1-32 characters: lower-case letters, digits and '-', starting with a letter, got "${name}"`);
    }
    if (existsSync(out) && !values.force) {
      return usageError(`${out} already exists; choose another file or add --force to overwrite it`);
    }
    const text = renderStarter({ layout, pair: values.pair === true, nlb: values.nlb === true, zones, preset, name, schemaPath: schemaPathFor(out) });
    parseEnvironment(text, out); // never write a starter that does not validate (throws ConfigError)
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, text);
    const shape = values.nlb ? (zones === 3 ? "three active nodes behind NLBs (three zones)" : "two active nodes behind NLBs (two zones)") : values.pair ? "HA pair" : "single load balancer";
    io.out(
      [
        `wrote ${out}: environment '${name}', ${layout}, ${shape}, preset ${preset}`,
        "It validates as written; replace every value marked `# CHANGE ME`, then run:",
        `  npx imaging-lb validate ${shellWord(out)}`,
        `  npx imaging-lb diagram ${shellWord(out)} --out ${shellWord(out.replace(/\.ya?ml$/i, ".svg"))}`,
        "",
      ].join("\n"),
    );
    return 0;
  },
};
