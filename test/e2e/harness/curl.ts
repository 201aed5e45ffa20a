/**
 * HTTP(S) requests with curl from a topology host, returning status, headers and body: for TLS
 * termination (`insecure` accepts the throwaway certificate), cookies and redirects through the VIP.
 */
import { requireTool } from "../../helpers/tools";
import type { Topology } from "./netns";

/** Options of {@link curl}. */
export interface CurlOptions {
  /** `-k`: accept the LB's throwaway self-signed certificate. @default false */
  readonly insecure?: boolean;
  /** Extra request headers, `Name: value`. @default [] */
  readonly headers?: readonly string[];
  /** `Cookie:` value, e.g. `SERVERID=ei-core-1`. @default none */
  readonly cookie?: string;
  /** Force HTTP/1.1 (no ALPN h2). @default false */
  readonly http1?: boolean;
  /** `--max-time`, in milliseconds. @default 10000 */
  readonly timeoutMs?: number;
}

/** A response (redirects are not followed). */
export interface CurlResponse {
  readonly status: number;
  /** The status line's protocol, e.g. `HTTP/2` or `HTTP/1.1`. */
  readonly protocol: string;
  /** Response headers, names lower-case; repeated headers joined with `\n`. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly durationMs: number;
}

/**
 * One request with curl from `host` (never through a proxy). Throws when curl fails (connection refused,
 * reset, timeout) with curl's message.
 *
 * @example
 * const r = await curl(topo, "client1", "https://203.0.113.100/system", { insecure: true });
 * assert.equal(r.status, 200);
 */
export async function curl(topology: Topology, host: string, url: string, options: CurlOptions = {}): Promise<CurlResponse> {
  const tool = requireTool("curl", "curl");
  const timeoutMs = options.timeoutMs ?? 10_000;
  const args = ["-sS", "-i", "--noproxy", "*", "--max-time", String(timeoutMs / 1000)];
  if (options.insecure) args.push("-k");
  if (options.http1) args.push("--http1.1");
  if (options.cookie !== undefined) args.push("--cookie", options.cookie);
  for (const header of options.headers ?? []) args.push("-H", header);
  args.push(url);
  const run = await topology.exec(host, tool, args, { timeoutMs: timeoutMs + 2000 });
  if (run.code !== 0) throw new Error(`${run.command} failed (code ${String(run.code)}): ${run.stderr.trim()}`);
  const split = run.stdout.indexOf("\r\n\r\n");
  const head = split < 0 ? run.stdout : run.stdout.slice(0, split);
  const body = split < 0 ? "" : run.stdout.slice(split + 4);
  const [statusLine = "", ...headerLines] = head.split("\r\n");
  const [protocol = "", status = "0"] = statusLine.split(" ");
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}\n${value}`;
  }
  return { status: Number(status), protocol, headers, body, durationMs: run.durationMs };
}

/**
 * curl's exit codes for a connection that ended without an HTTP answer: 7 (could not connect: refused or
 * reset during the handshake), 52 (empty reply), 55 (send failed: the peer closed or reset first), 56
 * (receive failed: reset). Which one a refusal surfaces as depends on when the client's kernel sees the
 * LB's close or reset relative to curl's own send — a race, not a difference in what the LB did. A timeout
 * (28) is not among them: a dropped connection is not a refused one.
 */
export const CURL_CONNECTION_FAILURES: ReadonlySet<number> = new Set([7, 52, 55, 56]);

/** How a refused request ended (see {@link curlRefused}). */
export interface CurlRefusal {
  /** curl's exit code: one of {@link CURL_CONNECTION_FAILURES}. */
  readonly code: number;
  /** curl's message, e.g. `Empty reply from server`. */
  readonly message: string;
}

/**
 * Requests `url` from `host` and asserts it was refused at the connection level: curl failed with a
 * connection-level code ({@link CURL_CONNECTION_FAILURES}) and no HTTP status line came back. Throws with
 * curl's output otherwise (an HTTP answer of any status, a timeout, another curl error).
 *
 * @example
 * const refusal = await curlRefused(topo, "srv1", "http://198.51.100.10:8404/metrics");
 */
export async function curlRefused(topology: Topology, host: string, url: string, options: CurlOptions = {}): Promise<CurlRefusal> {
  const tool = requireTool("curl", "curl");
  const timeoutMs = options.timeoutMs ?? 10_000;
  const args = ["-sS", "-i", "--noproxy", "*", "--max-time", String(timeoutMs / 1000)];
  if (options.insecure) args.push("-k");
  if (options.http1) args.push("--http1.1");
  args.push(url);
  const run = await topology.exec(host, tool, args, { timeoutMs: timeoutMs + 2000 });
  const answered = /^HTTP\/[\d.]+ \d{3}/m.test(run.stdout);
  if (run.code === null || !CURL_CONNECTION_FAILURES.has(run.code) || answered) {
    throw new Error(
      `${run.command}: expected a connection refused without an HTTP answer (curl exit ${[...CURL_CONNECTION_FAILURES].join("/")}, no status line), ` +
        `got exit ${String(run.code)}${run.timedOut ? " (timed out)" : ""}${answered ? " with an HTTP answer" : ""}: ${run.stderr.trim()}\n${run.stdout.slice(0, 500)}`,
    );
  }
  return { code: run.code, message: run.stderr.trim() };
}
