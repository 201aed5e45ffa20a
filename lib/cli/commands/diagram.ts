/**
 * `imaging-lb diagram`: draws an environment's layout as SVG or Mermaid.
 *
 * Wrong usage returns exit code 2 with the message on stderr (no exception); an invalid environment
 * file throws the loader's ConfigError, which the CLI prints and turns into exit code 1.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, extname } from "node:path";
import { loadEnvironment } from "../../load/load";
import { parseCommandArgs } from "../args";
import { ResolvedEnvironment } from "../../config/model";
import { renderMermaid, renderMermaidMarkdown, renderSvg } from "../../diagram";
import { haShape } from "../../plan/nlb";

/** Output streams of a command (same shape as the CLI's). */
export interface DiagramIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** Output formats: SVG, Mermaid text, or Mermaid in a Markdown fenced block. */
export type DiagramFormat = "svg" | "mermaid" | "markdown";

const FORMATS: readonly DiagramFormat[] = ["svg", "mermaid", "markdown"];
const BY_EXTENSION: Readonly<Record<string, DiagramFormat>> = { ".svg": "svg", ".mmd": "mermaid", ".md": "markdown" };

/** Renders `env` in `format`. */
export function renderDiagram(env: ResolvedEnvironment, format: DiagramFormat): string {
  switch (format) {
    case "svg":
      return renderSvg(env);
    case "mermaid":
      return renderMermaid(env);
    case "markdown":
      return renderMermaidMarkdown(env);
  }
}

/** The format an output file's extension selects, or undefined for an unknown extension. */
export function formatOfFile(file: string): DiagramFormat | undefined {
  return BY_EXTENSION[extname(file).toLowerCase()];
}

const USAGE = "imaging-lb diagram <env.yaml> --out <file.svg|file.mmd|file.md> | --format svg|mermaid|markdown";

/** The `diagram` command, registered in the CLI's command table. */
export const diagramCommand = {
  summary: "draw the layout (subnets, VIPs, nodes, servers) as SVG or Mermaid",
  usage: USAGE,
  help: [
    "Draws clients, the VIPs with their services and ports, the load balancer node(s) with their eth0/eth1",
    "addresses (an HA pair: primary, secondary and the VRRP link) and the real servers, on the subnets",
    "with their CIDRs.",
    "",
    "  --out <file>       write the drawing; the extension picks the format:",
    "                     .svg SVG, .mmd Mermaid, .md Mermaid in a ```mermaid block",
    "  --format <format>  svg, mermaid or markdown; without --out the drawing goes to stdout",
    "                     (default mermaid); with --out it must agree with the extension",
    "",
    "Exit codes: 0 written, 1 invalid environment file, 2 wrong usage.",
  ].join("\n"),
  run(args: string[], io: DiagramIo): number {
    const usageError = (message: string): number => {
      io.err(`imaging-lb diagram: ${message}\nusage: ${USAGE}\n`);
      return 2;
    };
    let parsed;
    try {
      parsed = parseCommandArgs(args, { out: { type: "string" }, format: { type: "string" } });
    } catch (e) {
      return usageError((e as Error).message);
    }
    const { values, positionals } = parsed;
    if (positionals.length !== 1) return usageError(`expected one environment file, got ${positionals.length}`);
    const requested = values.format;
    if (requested !== undefined && !FORMATS.includes(requested as DiagramFormat)) {
      return usageError(`--format: expected svg, mermaid or markdown, got "${requested}"`);
    }
    let format = requested as DiagramFormat | undefined;
    const out = values.out;
    if (out !== undefined) {
      const fromExtension = formatOfFile(out);
      if (fromExtension === undefined && format === undefined) {
        return usageError(`--out: cannot tell the format from "${out}": use a .svg, .mmd or .md file, or add --format`);
      }
      if (fromExtension !== undefined && format !== undefined && fromExtension !== format) {
        return usageError(`--format ${format} disagrees with the extension of "${out}" (${fromExtension}); drop --format or rename the file`);
      }
      format = fromExtension ?? format;
    }
    const env = loadEnvironment(positionals[0]);
    const drawing = renderDiagram(env, format ?? "mermaid");
    if (out === undefined) {
      io.out(drawing);
      return 0;
    }
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, drawing);
    const shape = haShape(env);
    const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
    io.out(`wrote ${out}: ${format} drawing of ${env.name} (${env.network.layout}, ${shape}, ${count(env.vips.length, "VIP")}, ${count(env.services.length, "service")})\n`);
    return 0;
  },
};
