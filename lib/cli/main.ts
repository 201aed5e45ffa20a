#!/usr/bin/env node
/**
 * The `imaging-lb` command line. Exit codes: 0 success, 1 invalid environment file (problems on
 * stderr) or a file that could not be written, 2 wrong usage.
 *
 * A command is an entry of {@link COMMANDS}: its summary, usage and help, and `run(args, io)`, which
 * parses its own arguments with {@link parseCommandArgs} (declared options, messages in the tool's
 * words) and returns the exit code. A {@link UsageError} thrown anywhere in it becomes exit code 2, a
 * {@link ConfigError} exit code 1, a file-system error one line and exit code 1 — never a stack trace.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { ConfigError } from "../config/errors";
import { expandEnvironment, loadEnvironment } from "../load/load";
import { readEnvironmentFile } from "../config/parse";
import { environmentJsonSchema } from "../config/schema";
import { nodeArtifacts } from "../node/artifacts";
import { renderHaproxy } from "../haproxy/build";
import { haShape, isNlb } from "../plan/nlb";
import { diagramCommand } from "./commands/diagram";
import { diffEnvironments, environmentAtRevision, formatDiff } from "./commands/diff";
import { initCommand } from "./commands/init";
import { configBucketOf, environmentStatus, formatStatus, s3StatusReader, sendCommand } from "./commands/status";
import type { OperatorCommand } from "../contract/node-contract";
import { strictChecks } from "./commands/validate";
import { egressNeeds } from "../plan/egress";
import { imageRecipe } from "../image/recipe";
import { parseCommandArgs, suggestion, UsageError } from "./args";
import { AwsProblem } from "./aws-problems";

export { UsageError } from "./args";

export const EXIT = { ok: 0, invalid: 1, usage: 2 } as const;

/** Where a command writes. */
export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** A command of the CLI. */
export interface Command {
  /** One line for the command list. */
  readonly summary: string;
  /** The synopsis, e.g. `imaging-lb expand <env.yaml> [--json]`. */
  readonly usage: string;
  /** What `imaging-lb <command> --help` prints after the usage: what it does, its options. */
  readonly help: string;
  /**
   * Parses `args` (everything after the command's name) and runs; returns the exit code, or a promise of
   * it for a command that waits (network, polling). Errors are handled the same either way.
   */
  readonly run: (args: string[], io: Io) => number | Promise<number>;
}

/** `imaging-lb retry|release|refresh <env.yaml> [--node <name>]`: writes the command for the node(s) to S3. */
function operatorCommand(command: OperatorCommand, summary: string, help: readonly string[]): Command {
  return {
    summary,
    usage: `imaging-lb ${command} <env.yaml> [--node <name>]`,
    help: [
      ...help,
      "Written to s3://<config bucket>/<name>/commands/<node>.json with your AWS credentials; the node's status shows",
      "the command it last acted on. On the node itself (an SSM session): sudo imaging-lb-agent " + command + ".",
      "  --node  one node (default: every node of the file)",
    ].join("\n"),
    async run(args, io) {
      const { positionals: files, values } = parseCommandArgs(args, { node: { type: "string" } }, { min: 1, max: 1, name: "environment file" });
      const env = loadEnvironment(files[0]);
      const names = env.nodes.map((n) => n.name);
      const node = values.node === undefined ? undefined : String(values.node);
      if (node !== undefined && !names.includes(node)) {
        throw new UsageError(`--node: ${env.name} has no node '${node}' (nodes: ${names.join(", ")})${suggestion(node, names)}`);
      }
      const bucket = await configBucketOf(env);
      for (const sent of await sendCommand(env, bucket, command, node ? [node] : names)) {
        io.out(`${command} sent to ${env.name}/${sent.node} (id ${sent.id}): its agent acts on it within a poll; imaging-lb status ${files[0]} shows the result\n`);
      }
      return EXIT.ok;
    },
  };
}

/** The version of the installed package (package.json next to dist/). */
export function packageVersion(from: string = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "imaging-lb" && pkg.version) return pkg.version;
    } catch {
      // not here: look further up
    }
    if (dirname(dir) === dir) return "unknown";
  }
}

/** A problem of one file, as `validate --json` reports it. */
interface JsonProblem {
  readonly file: string;
  readonly line?: number;
  readonly column?: number;
  readonly path: string;
  readonly message: string;
}

/** The commands by name; `imaging-lb <name> ...` runs `COMMANDS[name].run`. Add a command here. */
export const COMMANDS: Record<string, Command> = {
  validate: {
    summary: "check environment files; report every problem with file:line:col",
    usage: "imaging-lb validate <env.yaml> [<env.yaml> ...] [--strict] [--json]",
    help: [
      "Loads each file (preset applied), checks the schema and the cross-field rules, and prints one line",
      "per valid file on stdout and every problem of the invalid ones on stderr; exit code 1 when any file",
      "is invalid. In an adopted VPC, indented lines under the file's say what the VPC must give the nodes",
      "(a way to the package mirror, or the AWS APIs' endpoints): this stack does not create them.",
      "",
      "  --json  one JSON document on stdout instead: {\"valid\": <all valid>, \"files\": [{\"file\", \"valid\",",
      "          and \"environment\", \"layout\", \"nodes\", \"services\", \"vips\", \"needs\" or \"problems\": [{\"file\",",
      "          \"line\", \"column\", \"path\", \"message\"}]}]}; the exit code is the same",
      "  --strict  also flag the starter's placeholders (123456789012, # CHANGE ME), and run the real",
      "          `haproxy -dW -c` and (HA pair) `keepalived -t` on the rendered files when those tools are",
      "          installed (a missing tool is reported as skipped)",
    ].join("\n"),
    run(args, io) {
      const { positionals: files, values } = parseCommandArgs(args, { json: { type: "boolean" }, strict: { type: "boolean" } }, { min: 1, name: "environment file" });
      const results: Array<Record<string, unknown>> = [];
      let invalid = false;
      for (const file of files) {
        try {
          const env = loadEnvironment(file);
          const strict = values.strict ? strictChecks(file, env) : { problems: [], notes: [] };
          if (strict.problems.length > 0) throw new ConfigError(strict.problems);
          const shape = haShape(env);
          const needs = egressNeeds(env);
          results.push({ file, valid: true, environment: env.name, layout: env.network.layout, nodes: env.nodes.length, services: env.services.length, vips: env.vips.length, needs });
          if (!values.json) {
            io.out(`ok ${file}: ${env.name}, ${env.network.layout}, ${shape}, ${env.services.length} services, ${env.vips.length} VIPs\n`);
            needs.forEach((n) => io.out(`  ${n}\n`));
            strict.notes.forEach((n) => io.out(`  ${n}\n`));
          }
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          invalid = true;
          const problems: JsonProblem[] = e.problems.map((p) => ({ file: p.file, line: p.line, column: p.column, path: p.path, message: p.message }));
          results.push({ file, valid: false, problems });
          if (!values.json) io.err(`${e.message}\n`);
        }
      }
      if (values.json) io.out(`${JSON.stringify({ valid: !invalid, files: results }, null, 2)}\n`);
      return invalid ? EXIT.invalid : EXIT.ok;
    },
  },
  render: {
    summary: "print a rendered artifact: haproxy, keepalived, user-data or image-recipe",
    usage: "imaging-lb render haproxy|keepalived|user-data|image-recipe <env.yaml> [--node <name|primary|secondary>]",
    help: [
      "haproxy     the haproxy.cfg the load balancers run (identical on both nodes of a VRRP pair; with",
      "            ha.vipMode nlb each node listens on its own VIP addresses: --node, the first node by default)",
      "keepalived  a pair node's keepalived.conf (--node; add --takeover-script for its VIP takeover script)",
      "user-data   a node's cloud-init user data, as text (--node; the first node by default)",
      "image-recipe  the bash script that bakes the environment's image (OS, HAProxy series): what EC2 Image",
      "            Builder runs (imageBuild), or run it yourself as root on a fresh instance (docs/baked-image.md)",
    ].join("\n"),
    run(args, io) {
      const { positionals: rest, values } = parseCommandArgs(args, { node: { type: "string" }, "takeover-script": { type: "boolean" } });
      const [what, ...files] = rest;
      const kinds = ["haproxy", "keepalived", "user-data", "image-recipe"];
      if (!kinds.includes(what)) {
        const close = what === undefined ? "" : suggestion(what, kinds, (c) => `'${c}'`);
        throw new UsageError(`expected an artifact: ${kinds.join(", ")}, got ${what === undefined ? "nothing" : `'${what}'`}${close}`);
      }
      if (files.length === 0) throw new UsageError("expected one environment file");
      if (files.length > 1) throw new UsageError(`unexpected argument${files.length > 2 ? "s" : ""} ${files.slice(1).map((f) => `'${f}'`).join(", ")}: it takes one environment file`);
      const file = files[0];
      if (values["takeover-script"] && what !== "keepalived") throw new UsageError("--takeover-script goes with render keepalived only");
      const env = loadEnvironment(file);
      if (what === "image-recipe") {
        if (values.node !== undefined) throw new UsageError("--node: the image recipe is the same for every node");
        io.out(imageRecipe(env).script);
        return EXIT.ok;
      }
      const wanted = values.node ?? (what === "keepalived" ? undefined : env.nodes[0].name);
      const node = env.nodes.find((n) => n.name === wanted || n.role === wanted);
      if (!node) {
        const names = env.nodes.map((n) => `${n.name} (${n.role})`).join(", ");
        const close = wanted === undefined ? "" : suggestion(wanted, env.nodes.map((n) => n.name), (c) => `'${c}'`);
        throw new UsageError(`${wanted === undefined ? "missing --node" : `--node: no node '${wanted}' in ${env.name}${close}`}; its nodes: ${names}`);
      }
      if (what === "haproxy") {
        io.out(renderHaproxy(env, isNlb(env) ? { node: node.name } : {}));
        return EXIT.ok;
      }
      const artifacts = nodeArtifacts(env, node.name);
      if (what === "user-data") {
        io.out(artifacts.userData);
      } else if (!artifacts.keepalivedConf) {
        throw new UsageError(
          isNlb(env)
            ? `${env.name} runs behind Network Load Balancers (ha.vipMode nlb): no keepalived, the NLBs' health checks choose the nodes`
            : `${env.name} has a single load balancer: keepalived runs only in an HA pair (two nodes)`,
        );
      } else {
        io.out(values["takeover-script"] ? artifacts.takeoverScript! : artifacts.keepalivedConf);
      }
      return EXIT.ok;
    },
  },
  init: initCommand,
  diagram: diagramCommand,
  diff: {
    summary: "per node, the diff of every rendered file and whether the change reloads in place or replaces the node",
    usage: "imaging-lb diff <before.yaml> <after.yaml> [--json] | imaging-lb diff --git <revision> <env.yaml> [--json]",
    help: [
      "Verdicts: applied in place (reload), node replaced (its generation was raised), node added, node removed, no change.",
      "  --git <revision>  compare the file as it was at that git revision (e.g. origin/main) with the file on disk",
      "  --json            the same as one JSON document",
      "Exit codes: 0, 1 invalid file, 2 wrong usage, 3 both nodes of an HA pair replaced by one change.",
    ].join("\n"),
    run(args, io) {
      const { positionals: files, values } = parseCommandArgs(args, { git: { type: "string" }, json: { type: "boolean" } }, { min: 1, max: 2, name: "environment file" });
      if ((values.git === undefined) !== (files.length === 2)) {
        throw new UsageError("expected two environment files (before, after), or --git <revision> and one file");
      }
      const before = values.git === undefined ? loadEnvironment(files[0]) : environmentAtRevision(String(values.git), files[0]);
      const after = loadEnvironment(files[files.length - 1]);
      const diff = diffEnvironments(before, after);
      io.out(values.json ? `${JSON.stringify(diff, null, 2)}\n` : formatDiff(diff));
      return diff.replacesWholePair ? 3 : EXIT.ok;
    },
  },
  status: {
    summary: "desired against applied configuration per node (the nodes' status in S3); --wait for a rollout",
    usage: "imaging-lb status <env.yaml> [--wait] [--timeout <seconds>] [--json]",
    help: [
      "Reads each node's status object with your AWS credentials (AWS SDK: environment, profile or SSO).",
      "States: converged (applied the version this file renders), pending (not yet: applying, waiting for its",
      "peer, or no status yet), retrying (a transient failure the agent retries on its own), failed (refused,",
      "rolled back, held, or the bootstrap failed: not retried without a change or `imaging-lb retry`), stale",
      "(the agent has said nothing for three heartbeats: it or its node is down).",
      "  --wait     poll every 5 s until every node converged; exit 1 when a node failed, or at the timeout",
      "  --timeout  seconds to wait (default 900)",
      "  --json     the same as one JSON document",
    ].join("\n"),
    async run(args, io) {
      const { positionals: files, values } = parseCommandArgs(
        args,
        { wait: { type: "boolean" }, timeout: { type: "string" }, json: { type: "boolean" } },
        { min: 1, max: 1, name: "environment file" },
      );
      const env = loadEnvironment(files[0]);
      const timeoutSeconds = Number(values.timeout ?? "900");
      if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) throw new UsageError(`--timeout: expected whole seconds, got ${String(values.timeout)}`);
      const bucket = await configBucketOf(env);
      const read = s3StatusReader(env.region);
      const deadline = Date.now() + timeoutSeconds * 1000;
      for (;;) {
        const status = await environmentStatus(env, bucket, read);
        if (!values.wait || status.converged || status.failed || Date.now() >= deadline) {
          io.out(values.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
          if (!values.wait || status.converged) return EXIT.ok;
          const stale = status.nodes.filter((n) => n.state === "stale").map((n) => n.node);
          io.err(
            status.failed
              ? "imaging-lb status: the rollout failed on a node (see its error; `imaging-lb retry` once it is fixed)\n"
              : `imaging-lb status: not converged within ${timeoutSeconds} s${stale.length ? ` (${stale.join(", ")}: stale, its agent is not running)` : ""}\n`,
          );
          return EXIT.invalid;
        }
        await new Promise((r) => setTimeout(r, 5000));
      }
    },
  },
  retry: operatorCommand("retry", "apply the version this file renders again on a node where it failed (after fixing the cause)", [
    "The node's agent reads the command within a few seconds and applies its desired version once more,",
    "whatever failed before (a refused, rolled-back or held version is otherwise not retried until the next deploy).",
  ]),
  release: operatorCommand("release", "let a held node apply without waiting for its peer (a pair whose other node failed or is gone)", [
    "A pair's node that goes second waits for its peer to report the release, and holds when the peer failed it;",
    "of three nodes behind NLBs, each waits for the nodes before it in the roll order (the secondaries by name, then the primary).",
    "release makes it apply now; its own health gate and rollback still protect it.",
  ]),
  refresh: operatorCommand("refresh", "make a node fetch its secrets now (a certificate rotated in Secrets Manager) instead of within 24 h", [
    "The node fetches every secret of its bundle, checks the configuration with them and reloads when one changed.",
  ]),
  expand: {
    summary: "print the environment with the preset applied and defaults filled in",
    usage: "imaging-lb expand <env.yaml> [--json]",
    help: [
      "Shows every service the preset contributes, with your overrides applied, as YAML.",
      "",
      "  --json  the same document as JSON",
    ].join("\n"),
    run(args, io) {
      const { positionals: files, values } = parseCommandArgs(args, { json: { type: "boolean" } }, { min: 1, max: 1, name: "environment file" });
      const expanded = expandEnvironment(readEnvironmentFile(files[0]), files[0]);
      io.out(values.json ? `${JSON.stringify(expanded, null, 2)}\n` : stringify(expanded, { lineWidth: 0 }));
      return EXIT.ok;
    },
  },
  schema: {
    summary: "print the JSON Schema of the environment file",
    usage: "imaging-lb schema",
    help: "The same schema is published as schema/environment.schema.json for editor completion.",
    run(args, io) {
      parseCommandArgs(args, {}, { max: 0 });
      io.out(`${JSON.stringify(environmentJsonSchema(), null, 2)}\n`);
      return EXIT.ok;
    },
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    "usage: imaging-lb <command> [options]",
    "       imaging-lb --version",
    "",
    "commands:",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    "",
    "Run `imaging-lb <command> --help` for a command's usage.",
    "Exit codes: 0 success, 1 invalid environment file (or a file that could not be written), 2 wrong usage.",
    "",
  ].join("\n");
}

/** A file-system error (errno code) as one line: what failed, on which file, why. */
function fileSystemProblem(e: unknown): string | undefined {
  const error = e as NodeJS.ErrnoException;
  if (!(e instanceof Error) || typeof error.code !== "string" || typeof error.syscall !== "string") return undefined;
  const target = error.path ? ` ${error.path}` : "";
  const what = error.syscall === "mkdir" ? "cannot create the folder" : /^(open|write|rename|copyfile|symlink|unlink)$/.test(error.syscall) ? "cannot write" : `cannot ${error.syscall}`;
  return `${what}${target}: ${error.message.replace(/^[A-Z]+: /, "").replace(/, \w+ '[^']*'$/, "")} (${error.code})`;
}

const GLOBAL_OPTIONS = ["--help", "--version"];

/**
 * Runs the CLI with `argv` (without node and script) and returns the exit code (a promise of it when the
 * command is asynchronous).
 */
export function run(argv: string[], io: Io): number | Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.err : io.out)(usage());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    if (args.length > 0) {
      io.err(`imaging-lb: unexpected argument${args.length === 1 ? "" : "s"} after ${name}: ${args.map((a) => `'${a}'`).join(", ")}\n`);
      return EXIT.usage;
    }
    io.out(`imaging-lb ${packageVersion()}\n`);
    return EXIT.ok;
  }
  if (name.startsWith("-")) {
    const option = name.split("=")[0];
    io.err(`imaging-lb: unknown option ${option}${suggestion(option, GLOBAL_OPTIONS)} (a command's options come after the command)\n\n${usage()}`);
    return EXIT.usage;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    io.err(`imaging-lb: unknown command '${name}'${suggestion(name, Object.keys(COMMANDS), (c) => `'${c}'`)}\n\n${usage()}`);
    return EXIT.usage;
  }
  const optionsEnd = args.indexOf("--");
  const options = optionsEnd === -1 ? args : args.slice(0, optionsEnd);
  if (options.includes("--help") || options.includes("-h")) {
    io.out(`usage: ${command.usage}\n\n${command.help}\n`);
    return EXIT.ok;
  }
  const failed = (e: unknown): number => {
    if (e instanceof ConfigError) {
      io.err(`${e.message}\n`);
      return EXIT.invalid;
    }
    if (e instanceof UsageError) {
      io.err(`imaging-lb ${name}: ${e.message}\nusage: ${command.usage}\n`);
      return EXIT.usage;
    }
    if (e instanceof AwsProblem) {
      io.err(`imaging-lb ${name}: ${e.message}\n`);
      return EXIT.invalid;
    }
    const problem = fileSystemProblem(e);
    if (problem !== undefined) {
      io.err(`imaging-lb ${name}: ${problem}\n`);
      return EXIT.invalid;
    }
    throw e;
  };
  try {
    const result = command.run(args, io);
    return typeof result === "number" ? result : result.catch(failed);
  } catch (e) {
    return failed(e);
  }
}

/**
 * Writing to stdout can fail after `run` returned (a full disk, a closed pipe): one line on stderr and
 * exit code 1 instead of Node's stack trace; a reader that closed the pipe (EPIPE, `| head`) ends the
 * run quietly.
 */
export function handleOutputErrors(stream: NodeJS.WriteStream, label: string): void {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") process.stderr.write(`imaging-lb: cannot write to ${label}: ${e.message.replace(/^[A-Z]+: /, "").replace(/, write$/, "")} (${e.code ?? "error"})\n`);
    process.exitCode = e.code === "EPIPE" ? process.exitCode : 1;
  });
}

if (require.main === module) {
  handleOutputErrors(process.stdout, "standard output");
  const internalError = (e: unknown) => {
    // A bug, not the user's doing: one line, and the stack only when asked for.
    process.stderr.write(`imaging-lb: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    if (process.env.IMAGING_LB_DEBUG === "1" && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  };
  try {
    const result = run(process.argv.slice(2), {
      out: (t) => process.stdout.write(t),
      err: (t) => process.stderr.write(t),
    });
    if (typeof result === "number") process.exitCode = result;
    else result.then((code) => (process.exitCode = code), internalError);
  } catch (e) {
    internalError(e);
  }
}
