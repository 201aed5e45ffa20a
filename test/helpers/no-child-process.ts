/**
 * Preloaded into a process under test (`node --require dist/test/helpers/no-child-process.js ...`): every
 * function of `node:child_process` that starts a process (spawn, spawnSync, exec, execSync, execFile,
 * execFileSync, fork) is replaced by one that appends a line naming the function and the command to the
 * file named by IMAGING_LB_CHILD_PROCESS_LOG, then throws. The log catches callers that swallow the error
 * (cdktf's version validation turns it into a validation message), so an empty log means no process was
 * started. Loaded before the code under test, so nobody holds the original functions.
 */
// The default import is the module object itself (esModuleInterop), so replacing its functions reaches every caller.
import childProcess from "node:child_process";
import { appendFileSync } from "node:fs";

const log = process.env.IMAGING_LB_CHILD_PROCESS_LOG;
if (!log) throw new Error("no-child-process: set IMAGING_LB_CHILD_PROCESS_LOG to the file that records attempts");

/** The functions that start a child process. */
export const TRAPPED = ["spawn", "spawnSync", "exec", "execSync", "execFile", "execFileSync", "fork"] as const;

const target = childProcess as unknown as Record<string, unknown>;
for (const name of TRAPPED) {
  target[name] = (command: unknown, args?: unknown) => {
    const line = `${name} ${String(command)}${Array.isArray(args) ? ` ${args.join(" ")}` : ""}`;
    appendFileSync(log, `${line}\n`);
    throw new Error(`no-child-process: a child process was started (${line})`);
  };
}
