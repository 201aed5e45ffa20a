#!/usr/bin/env node
/**
 * The `imaging-lb` command line. Exit codes: 0 success, 1 invalid environment file (problems on
 * stderr, nothing on stdout), 2 wrong usage.
 */
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { ConfigError } from "../config/errors";
import { expandEnvironment, loadEnvironment, readEnvironmentFile } from "../config/load";
import { environmentJsonSchema } from "../config/schema";
import { nodeArtifacts } from "../artifacts";
import { renderHaproxy } from "../haproxy/build";
import { diagramCommand } from "./commands/diagram";
import { initCommand } from "./commands/init";
import { validateCommand } from "./commands/validate";

export const EXIT = { ok: 0, invalid: 1, usage: 2 } as const;

class UsageError extends Error {}

interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly help: string;
  readonly run: (args: string[], io: Io) => number;
}

function positionals(args: string[], options: Record<string, { type: "string" | "boolean"; short?: string }> = {}) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function oneFile(files: string[], usage: string): string {
  if (files.length !== 1) throw new UsageError(`expected one environment file\nusage: ${usage}`);
  return files[0];
}

const COMMANDS: Record<string, Command> = {
  validate: validateCommand,
  render: {
    summary: "print a rendered artifact: haproxy, keepalived or user-data",
    usage: "imaging-lb render haproxy|keepalived|user-data <env.yaml> [--node <name|primary|secondary>]",
    help: [
      "haproxy     the haproxy.cfg the load balancers run (identical on both nodes of a pair)",
      "keepalived  a pair node's keepalived.conf (--node; add --takeover-script for its VIP takeover script)",
      "user-data   a node's cloud-init user data, as text (--node; the first node by default)",
    ].join("\n"),
    run(args, io) {
      const { positionals: rest, values } = positionals(args, {
        node: { type: "string" },
        "takeover-script": { type: "boolean" },
      });
      const [what, ...files] = rest;
      const kinds = ["haproxy", "keepalived", "user-data"];
      if (!kinds.includes(what)) throw new UsageError(`expected an artifact: ${kinds.join(", ")}, got ${what ?? "nothing"}\nusage: ${this.usage}`);
      const env = loadEnvironment(oneFile(files, this.usage));
      if (what === "haproxy") {
        io.out(renderHaproxy(env));
        return EXIT.ok;
      }
      const wanted = values.node ?? (what === "keepalived" ? undefined : env.nodes[0].name);
      const node = env.nodes.find((n) => n.name === wanted || n.role === wanted);
      if (!node) {
        const names = env.nodes.map((n) => `${n.name} (${n.role})`).join(", ");
        throw new UsageError(`${wanted === undefined ? "missing --node" : `no node '${wanted}'`}: nodes of ${env.name} are ${names}`);
      }
      const artifacts = nodeArtifacts(env, node.name);
      if (what === "user-data") {
        io.out(artifacts.userData);
      } else if (!artifacts.keepalivedConf) {
        throw new UsageError(`${env.name} has a single load balancer: keepalived runs only in an HA pair (two nodes)`);
      } else {
        io.out(values["takeover-script"] ? artifacts.takeoverScript! : artifacts.keepalivedConf);
      }
      return EXIT.ok;
    },
  },
  init: initCommand,
  diagram: diagramCommand,
  expand: {
    summary: "print the environment with the preset applied and defaults filled in",
    usage: "imaging-lb expand <env.yaml>",
    help: "Shows every service the preset contributes, with your overrides applied, as YAML.",
    run(args, io) {
      const { positionals: files } = positionals(args);
      const file = oneFile(files, this.usage);
      io.out(stringify(expandEnvironment(readEnvironmentFile(file), file), { lineWidth: 0 }));
      return EXIT.ok;
    },
  },
  schema: {
    summary: "print the JSON Schema of the environment file",
    usage: "imaging-lb schema",
    help: "The same schema is published as schema/environment.schema.json for editor completion.",
    run(args, io) {
      positionals(args);
      io.out(`${JSON.stringify(environmentJsonSchema(), null, 2)}\n`);
      return EXIT.ok;
    },
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    "usage: imaging-lb <command> [options]",
    "",
    "commands:",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    "",
    "Run `imaging-lb <command> --help` for a command's usage.",
    "Exit codes: 0 success, 1 invalid environment file, 2 wrong usage.",
    "",
  ].join("\n");
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export function run(argv: string[], io: Io): number {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.err : io.out)(usage());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`imaging-lb: unknown command '${name}'\n\n${usage()}`);
    return EXIT.usage;
  }
  if (args.includes("--help") || args.includes("-h")) {
    io.out(`usage: ${command.usage}\n\n${command.help}\n`);
    return EXIT.ok;
  }
  try {
    return command.run(args, io);
  } catch (e) {
    if (e instanceof ConfigError) {
      io.err(`${e.message}\n`);
      return EXIT.invalid;
    }
    if (e instanceof UsageError) {
      io.err(`imaging-lb ${name}: ${e.message}\n`);
      return EXIT.usage;
    }
    throw e;
  }
}

if (require.main === module) {
  process.exitCode = run(process.argv.slice(2), {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  });
}
