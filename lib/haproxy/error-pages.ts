/**
 * Error pages and maintenance mode of http services, as files next to haproxy.cfg: HAProxy `errorfile`s are
 * complete raw HTTP responses (status line, headers, body), read when the configuration is loaded; the
 * maintenance page is the body of an `http-request return`; the maintenance map holds the switch that the
 * runtime API can flip without a reload. Pure: the files are returned, never written here.
 */
import { NODE_CONTRACT } from "../contract/node-contract";
import type { ResolvedEnvironment, ResolvedService } from "../config/model";

/** Folder of the error pages and the maintenance map on the node (files of the configuration bundle). */
export const ERROR_DIR = NODE_CONTRACT.paths.errorDir;
/** The maintenance map, relative to the error folder: one `<service> on` line per service in maintenance. */
export const MAINTENANCE_MAP = "maintenance.map";
/**
 * Largest response (status line, headers, page) imaging-lb lets HAProxy serve from a file. HAProxy holds it in
 * one 16384-byte buffer (tune.bufsize) less the 1024 bytes it keeps for header rewrites (tune.maxrewrite) and
 * its own per-header overhead: measured with 2.6 and 3.0, a 15250-byte response of ours already starts with
 * "runs over the buffer space reserved to headers rewriting" (15240 did not), and `haproxy -c` does not say so.
 * 15000 leaves a margin.
 */
export const ERROR_PAGE_MAX_BYTES = 15000;
/** Retry-After of the maintenance answer when the environment names none (seconds). */
export const DEFAULT_RETRY_AFTER_SECONDS = 600;

const REASONS: Readonly<Record<number, string>> = {
  400: "Bad Request",
  403: "Forbidden",
  408: "Request Timeout",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** The page served while a service is in maintenance and the environment names no page of its own. */
export const DEFAULT_MAINTENANCE_HTML =
  '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Maintenance</title></head>\n' +
  "<body><h1>Down for maintenance</h1><p>This service is being maintained. Please try again later.</p></body>\n</html>\n";

/** The content type of every page. */
export const PAGE_CONTENT_TYPE = "text/html; charset=utf-8";

/**
 * The raw HTTP response of an `errorfile`: status line, headers (CRLF line ends), body. Never cached, the
 * connection closed after it (HAProxy's own error answers do the same).
 */
export function errorResponse(status: number, html: string, extraHeaders: ReadonlyArray<readonly [string, string]> = []): string {
  const reason = REASONS[status] ?? "Error";
  const headers: Array<readonly [string, string]> = [
    ["Content-Type", PAGE_CONTENT_TYPE],
    ["Content-Length", String(Buffer.byteLength(html, "utf8"))],
    ["Cache-Control", "no-store"],
    ...extraHeaders,
    ["Connection", "close"],
  ];
  return `HTTP/1.1 ${status} ${reason}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n${html}`;
}

/** Size in bytes of the response HAProxy builds for the maintenance page (status line, headers, body). */
export function maintenanceResponseBytes(html: string, retryAfterSeconds: number): number {
  return Buffer.byteLength(errorResponse(503, html, [["Retry-After", String(retryAfterSeconds)]]), "utf8");
}

/** Name of a service's `http-errors` section. */
export const httpErrorsName = (service: string) => `errors_${service}`;
/** Path of a service's error page for `status`, relative to the error folder. */
export const errorPageFile = (service: string, status: number) => `${service}/${status}.http`;
/** Path of a service's maintenance page (the body only), relative to the error folder. */
export const maintenancePageFile = (service: string) => `${service}/maintenance.html`;

/** A file the error pages need, relative to the error folder. */
export interface PageFile {
  readonly name: string;
  readonly content: string;
}

/** True when some service has a maintenance block (then the map exists, possibly without entries). */
export const usesMaintenanceMap = (env: ResolvedEnvironment) => env.services.some((s) => s.maintenance !== undefined);

/**
 * Every file the error pages and maintenance mode of `env` need, sorted by name: `<service>/<status>.http`,
 * `<service>/maintenance.html` and `maintenance.map`.
 */
export function errorPageFiles(env: ResolvedEnvironment): PageFile[] {
  const files: PageFile[] = [];
  for (const s of env.services) {
    for (const page of s.errorPages) files.push({ name: errorPageFile(s.name, page.status), content: errorResponse(page.status, page.html) });
    if (s.maintenance) files.push({ name: maintenancePageFile(s.name), content: s.maintenance.html });
  }
  if (usesMaintenanceMap(env)) files.push({ name: MAINTENANCE_MAP, content: maintenanceMap(env.services) });
  return files.sort((a, b) => a.name.localeCompare(b.name));
}

function maintenanceMap(services: readonly ResolvedService[]): string {
  const on = services.filter((s) => s.maintenance?.enabled).map((s) => `${s.name} on\n`);
  return `# Services in maintenance (imaging-lb). At run time: add map <this file> <service> on / del map <this file> <service>.\n${on.join("")}`;
}
