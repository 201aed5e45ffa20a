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
