/**
 * Bounded waiting: every wait in the e2e harness polls with a deadline and fails with a message that
 * says what it waited for, for how long, and the last thing that went wrong.
 */

/** Options of {@link pollUntil}. */
export interface PollOptions {
  /** Give up after this many milliseconds. */
  readonly timeoutMs: number;
  /**
   * Pause between attempts.
   * @default 50
   */
  readonly intervalMs?: number;
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Calls `attempt` until it returns a value other than `undefined`/`false`, or throws once `timeoutMs` has
 * passed. An attempt that throws counts as "not yet", and its message is reported if the deadline passes.
 *
 * @example
 * const count = await pollUntil("10 instances stored", async () => ((await orthanc.countInstances()) === 10 ? 10 : undefined), { timeoutMs: 5000 });
 */
export async function pollUntil<T>(
  what: string,
  attempt: () => Promise<T | undefined | false> | T | undefined | false,
  options: PollOptions,
): Promise<T> {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  const interval = options.intervalMs ?? 50;
  let lastProblem = "no attempt finished";
  for (;;) {
    try {
      const value = await attempt();
      if (value !== undefined && value !== false) return value;
      lastProblem = "condition not met yet";
    } catch (error) {
      if (error instanceof FatalWaitError) throw error;
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${Date.now() - started} ms waiting for ${what}; last: ${lastProblem}`);
    }
    await delay(Math.min(interval, Math.max(0, deadline - Date.now())));
  }
}

/** Thrown from a {@link pollUntil} attempt to stop waiting at once (e.g. the awaited process died). */
export class FatalWaitError extends Error {
  override readonly name = "FatalWaitError";
}
