/** A long-running process in a topology namespace (see `Topology.spawn` in `netns.ts`). */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { FatalWaitError } from "./wait";

/** A long-running process started in a namespace with {@link Topology.spawn}. */
export class NsProcess {
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitCodeValue: number | null = null;
  private exitSignalValue: NodeJS.Signals | null = null;
  private hasExited = false;

  /** @internal use {@link Topology.spawn}. */
  constructor(
    /** The pid of the command itself (`ip netns exec` execs it in place). */
    readonly pid: number,
    /** The host (topology key) it runs in. */
    readonly host: string,
    /** The command line, for messages. */
    readonly command: string,
    /** Where its stdout and stderr go. */
    readonly logFile: string,
    child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.hasExited = true;
        this.exitCodeValue = code;
        this.exitSignalValue = signal;
        resolve({ code, signal });
      });
    });
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return !this.hasExited;
  }

  /** Exit code once exited (`null` while running or when killed by a signal). */
  get exitCode(): number | null {
    return this.exitCodeValue;
  }

  /** The signal that ended the process, if any. */
  get exitSignal(): NodeJS.Signals | null {
    return this.exitSignalValue;
  }

  /** The process's whole log so far. */
  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** The last `lines` lines of the log, for error messages. */
  logTail(lines = 20): string {
    return this.log().split("\n").slice(-lines - 1).join("\n");
  }

  /** Throws a {@link FatalWaitError} (stops a {@link pollUntil}) with the log tail if the process has exited. */
  assertRunning(): void {
    if (!this.hasExited) return;
    throw new FatalWaitError(
      `${this.command} in ${this.host} exited (code ${String(this.exitCodeValue)}, signal ${String(this.exitSignalValue)}); ` +
        `log ${this.logFile}:\n${this.logTail()}`,
    );
  }

  /** Sends SIGTERM, waits up to `graceMs`, then SIGKILL; resolves once the process has exited. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.hasExited) return;
    this.signal("SIGTERM");
    const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref());
    if ((await Promise.race([this.exited, timer])) === "timeout") await this.kill();
  }

  /** Sends SIGKILL and resolves once the process has exited. */
  async kill(): Promise<void> {
    if (this.hasExited) return;
    this.signal("SIGKILL");
    await this.exited;
  }

  /** @internal sends a signal, ignoring a process that is already gone. */
  signal(signal: NodeJS.Signals): void {
    if (this.hasExited) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
  }
}
