/**
 * Which stacks the cdktf command that runs this app asks for (`cdktf deploy ei-foo`), so the app can
 * say, when one of them is not among the environments it read, why: the environment variable naming
 * the files is unset, or does not include that environment's file. cdktf itself only says "Could not
 * find stack" after the app has run; the app's stdout is what cdktf shows of it on success.
 *
 * The request is read from the command lines of the parent processes (Linux /proc); elsewhere, or when
 * the app is not started by a cdktf command with stack arguments, nothing is said.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";

/** cdktf subcommands that take stack names (or patterns). */
const STACK_COMMANDS = new Set(["deploy", "diff", "destroy", "output", "watch", "plan", "apply"]);

/** cdktf options followed by a value (`--output dir`), which is not a stack. */
const VALUE_OPTIONS = new Set(["-o", "--output", "-a", "--app", "--parallelism", "--var", "--var-file", "--outputs-file", "--log-level", "--terraform-parallelism"]);

/** The stack names or patterns of a cdktf command line, or undefined when it is not one. */
export function stacksFromArgv(argv: readonly string[]): string[] | undefined {
  const at = argv.findIndex((a) => basename(a) === "cdktf" || /[\\/]cdktf-cli[\\/].*[\\/]cdktf(\.js)?$/.test(a));
  if (at < 0) return undefined;
  const rest: string[] = [];
  const args = argv.slice(at + 1);
  for (let i = 0; i < args.length; i++) {
    if (VALUE_OPTIONS.has(args[i])) i++;
    else if (!args[i].startsWith("-")) rest.push(args[i]);
  }
  if (!STACK_COMMANDS.has(rest[0] ?? "")) return undefined;
  return rest.slice(1);
}

/** The stacks asked for by the nearest cdktf command among this process's ancestors ([] when none). */
export function requestedStacks(pid: number = process.ppid, depth = 6): string[] {
  for (let i = 0; i < depth && pid > 1; i++) {
    let cmdline: string;
    let stat: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      return [];
    }
    const stacks = stacksFromArgv(cmdline.split("\0").filter(Boolean));
    if (stacks) return stacks;
    // stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  }
  return [];
}

/** True when `name` matches a cdktf stack argument (a name or a glob with `*` and `?`). */
export const matches = (pattern: string, name: string): boolean =>
  new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`).test(name);

/**
 * Lines for the user when a requested stack is not among `stacks`: where the app took its environment
 * files from, and what to set. Empty when every requested stack is there.
 */
export function missingStacksNote(requested: readonly string[], stacks: readonly string[], source: string, variable: string, value: string | undefined): string[] {
  const missing = requested.filter((r) => !stacks.some((s) => matches(r, s)));
  if (missing.length === 0) return [];
  const names = missing.map((m) => `'${m}'`).join(", ");
  const have = stacks.join(", ") || "none";
  const why = value?.trim()
    ? `${variable}="${value.trim()}" does not include an environment file with name: ${missing.join(" or ")} (its files give the stacks ${have}); add that file to ${variable}`
    : `${variable} is unset, so the app read ${source} (stacks ${have}); set ${variable} to the environment file(s), e.g. ${variable}=sites/${missing[0].replace(/[*?]/g, "x")}.yaml`;
  return [`imaging-lb: cdktf asks for stack ${names}, which this run did not synthesize: ${why}`];
}

/**
 * Why a stack kept from an earlier synth is not used when the cdktf command asks for it (see
 * lib/app/synth-manifest.ts): the files it was built from are not in this run.
 */
export function keptStackRefusal(stack: string, stacks: readonly string[], source: string, variable: string, value: string | undefined): string {
  const read = value?.trim() ? `${variable}="${value.trim()}"` : `${variable} is unset, so the app read ${source}`;
  return `cdktf asks for stack '${stack}', which this run did not synthesize (${read}: stacks ${stacks.join(", ") || "none"}); its folder in cdktf.out stays as an earlier synth left it, and is not planned or deployed from here: add its environment file to ${variable}, or ask only for this run's stacks`;
}
