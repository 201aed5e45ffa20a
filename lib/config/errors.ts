/**
 * Problems found in an environment file, reported all at once, each with its place in the file:
 * `sites/prod.yaml:14:7 services.dicom.frontendPorts.0: expected a port number 1-65535, got 70000`.
 */

export interface ConfigProblem {
  /** The environment file as the user named it. */
  readonly file: string;
  /** 1-based line and column of the offending key or value; absent when the file has no such place. */
  readonly line?: number;
  readonly column?: number;
  /** Dotted field path, e.g. `services.dicom.frontendPorts.0`; empty for the whole file. */
  readonly path: string;
  /** What is wrong: what is allowed, the value received and, where useful, the fix. */
  readonly message: string;
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}:${p.column ?? 1}` : p.file;
  return p.path ? `${where} ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

/** Thrown by the loader when the environment file is unusable; `message` lists every problem. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(ConfigError.describe(problems));
    this.name = "ConfigError";
  }

  private static describe(problems: readonly ConfigProblem[]): string {
    const sorted = [...problems].sort(
      (a, b) => a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0),
    );
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    return `${count} in ${problems[0]?.file ?? "environment"}:\n${sorted.map((p) => `  ${formatProblem(p)}`).join("\n")}`;
  }
}
