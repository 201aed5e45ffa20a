/**
 * The HTTP responses HAProxy serves from a file for the error pages and the maintenance page (status line,
 * headers, page), their defaults and the largest HAProxy serves: the loader refuses a page whose response
 * is over it (at the page's line), and the renderer (`lib/haproxy/error-pages.ts`) writes these responses.
 * Pure: imports nothing.
 */
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
