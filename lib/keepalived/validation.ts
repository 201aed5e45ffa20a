/**
 * Input checks shared by the keepalived.conf and notify-script renderers.
 *
 * Every check appends to an issue list instead of throwing, so one {@link HaSpecError} reports all
 * problems of a spec at once, each as `path: expected ..., got ...` plus a fix where one is obvious.
 */

/** Thrown by the renderers in this folder when their input is invalid; lists every problem found. */
export class HaSpecError extends Error {
  /** One line per problem: `<path>: expected <allowed>, got <value>[; <fix>]`. */
  public readonly issues: readonly string[];

  /**
   * @param what which spec was checked, e.g. `keepalived spec for prod/primary`
   * @param issues the problems found, at least one
   */
  public constructor(what: string, issues: readonly string[]) {
    const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`;
    super(`invalid ${what} (${count}):\n${issues.map((issue) => `  - ${issue}`).join("\n")}`);
    this.name = "HaSpecError";
    this.issues = issues;
  }
}

/** Collects issues; `throwIfAny` raises one {@link HaSpecError} with all of them. */
export class IssueList {
  private readonly issues: string[] = [];

  /** Records a problem at `path`. */
  public add(path: string, expected: string, got: unknown, fix?: string): void {
    this.issues.push(`${path}: expected ${expected}, got ${show(got)}${fix === undefined ? "" : `; ${fix}`}`);
  }

  /** Throws a {@link HaSpecError} when any problem was recorded. */
  public throwIfAny(what: string): void {
    if (this.issues.length > 0) {
      throw new HaSpecError(what, [...this.issues]);
    }
  }
}

/** How a received value is shown in an error message. */
function show(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(show).join(", ")}]`;
  }
  return String(value);
}

const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** True for a dotted-quad IPv4 address without prefix length or leading zeros, e.g. `10.0.1.50`. */
export function isIpv4(value: unknown): value is string {
  return typeof value === "string" && DOTTED_QUAD.test(value);
}

/** Checks that `value` is an integer in `[min, max]`. */
export function checkInteger(issues: IssueList, path: string, value: unknown, min: number, max: number, optional = false): void {
  if (optional && value === undefined) return; // absent: the default applies
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    issues.add(path, `an integer ${min < 0 ? `${min} to ${max}` : `${min}-${max}`}`, value);
  }
}

/** Checks that `value` is an IPv4 address. */
export function checkIpv4(issues: IssueList, path: string, value: unknown): void {
  if (!isIpv4(value)) {
    issues.add(path, "an IPv4 address such as 10.0.1.50 (no prefix length)", value);
  }
}

/** Checks a non-empty list of distinct IPv4 addresses. */
export function checkIpv4List(issues: IssueList, path: string, values: readonly unknown[] | undefined): void {
  if (!Array.isArray(values) || values.length === 0) {
    issues.add(path, "at least one IPv4 address", values);
    return;
  }
  values.forEach((value, index) => checkIpv4(issues, `${path}[${index}]`, value));
  checkDistinct(issues, path, values);
}

/** Checks that a list has no duplicates. */
export function checkDistinct(issues: IssueList, path: string, values: readonly unknown[]): void {
  const seen = new Set<unknown>();
  for (const value of values) {
    if (seen.has(value)) {
      issues.add(path, "distinct values", values, `remove the duplicate ${show(value)}`);
      return;
    }
    seen.add(value);
  }
}

const LINUX_IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** Checks a Linux interface name (1-15 characters, no `/`, whitespace or `:`). */
export function checkInterfaceName(issues: IssueList, path: string, value: unknown): void {
  if (typeof value !== "string" || !LINUX_IFNAME.test(value) || value === "." || value === "..") {
    issues.add(path, "a Linux interface name of 1-15 characters [A-Za-z0-9_.-], e.g. eth0", value);
  }
}

const ENV_NAME = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$/;

/** Checks an environment name: lower-case letters, digits and `-`, starting with a letter, at most 32. */
export function checkEnvName(issues: IssueList, path: string, value: unknown): void {
  if (typeof value !== "string" || !ENV_NAME.test(value)) {
    issues.add(path, "1-32 characters [a-z0-9-], starting with a letter and not ending with '-'", value);
  }
}

const SAFE_ABSOLUTE_PATH = /^(\/[A-Za-z0-9._+-]+)+$/;

/** Checks an absolute path made of safe characters only (it is written unquoted into scripts). */
export function checkAbsolutePath(issues: IssueList, path: string, value: unknown): void {
  if (typeof value !== "string" || !SAFE_ABSOLUTE_PATH.test(value) || value.split("/").includes("..")) {
    issues.add(path, "an absolute path of [A-Za-z0-9._+-] segments, e.g. /usr/local/sbin/imaging-lb-vip-takeover", value);
  }
}
