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
import { diffEnvironments, environmentAtRevision, formatDiff } from "./commands/diff";
import { configBucketOf, environmentStatus, formatStatus, s3StatusReader } from "./commands/status";
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
  readonly run: (args: string[], io: Io) => number | Promise<number>;
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
  diff: {
    summary: "per node, the diff of every rendered file and whether the change reloads in place or replaces the node",
    usage: "imaging-lb diff <before.yaml> <after.yaml> [--json] | imaging-lb diff --git <revision> <env.yaml> [--json]",
    help: [
      "Verdicts: applied in place (reload), node replaced (its generation was raised), node added, node removed, no change.",
      "--git <revision>  compare the file as it was at that git revision (e.g. origin/main) with the file on disk",
      "Exit codes: 0, 1 invalid file, 2 wrong usage, 3 both nodes of an HA pair replaced by one change.",
    ].join("\n"),
    run(args, io) {
      const { positionals: files, values } = positionals(args, { git: { type: "string" }, json: { type: "boolean" } });
      let before;
      let after;
      if (values.git !== undefined) {
        const file = oneFile(files, this.usage);
        before = environmentAtRevision(String(values.git), file);
        after = loadEnvironment(file);
      } else {
        if (files.length !== 2) throw new UsageError(`expected two environment files (before, after) or --git <revision> <file>\nusage: ${this.usage}`);
        before = loadEnvironment(files[0]);
        after = loadEnvironment(files[1]);
      }
      const diff = diffEnvironments(before, after);
      io.out(values.json ? `${JSON.stringify(diff, null, 2)}\n` : formatDiff(diff));
      return diff.replacesWholePair ? 3 : EXIT.ok;
    },
  },
  status: {
    summary: "desired against applied configuration per node (from the nodes' status in S3); --wait for a rollout",
    usage: "imaging-lb status <env.yaml> [--wait] [--timeout <seconds>] [--json]",
    help: [
      "Reads each node's status object with your AWS credentials (AWS SDK: environment, profile or SSO).",
      "--wait     poll every 5 s until every node applied the version this file renders; exit 1 when a node",
      "           failed, rolled back or holds it, or at the timeout",
      "--timeout  seconds to wait (default 900)",
    ].join("\n"),
    async run(args, io) {
      const { positionals: files, values } = positionals(args, { wait: { type: "boolean" }, timeout: { type: "string" }, json: { type: "boolean" } });
      const env = loadEnvironment(oneFile(files, this.usage));
      const timeoutSeconds = Number(values.timeout ?? "900");
      if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) throw new UsageError(`--timeout: expected whole seconds, got ${values.timeout}`);
      const bucket = await configBucketOf(env);
      const read = s3StatusReader(env.region);
      const deadline = Date.now() + timeoutSeconds * 1000;
      for (;;) {
        const status = await environmentStatus(env, bucket, read);
        const done = !values.wait || status.converged || status.failed || Date.now() >= deadline;
        if (done) {
          io.out(values.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
          if (!values.wait) return EXIT.ok;
          if (status.converged) return EXIT.ok;
          io.err(status.failed ? "imaging-lb status: the rollout failed on a node (see its error)\n" : `imaging-lb status: not converged within ${timeoutSeconds} s\n`);
          return EXIT.invalid;
        }
        await new Promise((r) => setTimeout(r, 5000));
      }
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

/** Runs the CLI with `argv` (without node and script) and resolves with the exit code. */
export async function run(argv: string[], io: Io): Promise<number> {
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
    return await command.run(args, io);
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
  void run(process.argv.slice(2), {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  }).then((code) => {
    process.exitCode = code;
  });
}
