/**
 * The error pages and maintenance page of an http service: inline or read from a file next to the
 * environment file, and refused when HAProxy could not serve their response from a file.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { FieldPath, ProblemCollector } from "./locate";
import { ResolvedErrorPage, ResolvedService } from "./model";
import { DEFAULT_MAINTENANCE_HTML, DEFAULT_RETRY_AFTER_SECONDS, ERROR_PAGE_MAX_BYTES, errorResponse, maintenanceResponseBytes } from "./page-responses";
import type { Page, Service } from "./schema";

/**
 * A page's HTML: inline, or read from a file relative to the environment file's folder. Reports a missing
 * or unreadable file, both or neither of file/html, and text that is not UTF-8.
 */
function readPage(page: Page, at: FieldPath, sourceFile: string, out: ProblemCollector): string | undefined {
  if ((page.file === undefined) === (page.html === undefined)) {
    out.add(at, `expected exactly one of file (an HTML file, relative to the environment file) or html (the page inline), got ${page.file === undefined ? "neither" : "both"}`, "key");
    return undefined;
  }
  if (page.html !== undefined) return page.html;
  const file = page.file as string;
  const path = isAbsolute(file) ? file : join(dirname(sourceFile), file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, expected an HTML file" : `cannot be read (${code ?? String(e)})`;
    out.add([...at, "file"], `"${file}" (${path}): ${why}; expected an HTML file, relative to the environment file's folder`);
    return undefined;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    out.add([...at, "file"], `"${file}" is not UTF-8 text; expected an HTML file saved as UTF-8`);
    return undefined;
  }
}

/** A service's error pages, by status. */
export function resolveErrorPages(s: Service, at: (...rest: Array<string | number>) => FieldPath, sourceFile: string, out: ProblemCollector): ResolvedErrorPage[] {
  const pages: ResolvedErrorPage[] = [];
  for (const [code, page] of Object.entries(s.errorPages ?? {})) {
    if (!page) continue;
    const html = readPage(page, at("errorPages", code), sourceFile, out);
    if (html === undefined) continue;
    const status = Number(code);
    const bytes = Buffer.byteLength(errorResponse(status, html), "utf8");
    if (bytes > ERROR_PAGE_MAX_BYTES) {
      out.add(at("errorPages", code), `the ${status} response would be ${bytes} bytes (page and headers); HAProxy serves at most ${ERROR_PAGE_MAX_BYTES} from a file: make the page smaller (inline CSS, no images)`, "key");
      continue;
    }
    pages.push({ status, html });
  }
  return pages.sort((a, b) => a.status - b.status);
}

/** A service's maintenance block, with the default page and Retry-After. */
export function resolveMaintenance(
  m: NonNullable<Service["maintenance"]>,
  at: (...rest: Array<string | number>) => FieldPath,
  sourceFile: string,
  out: ProblemCollector,
): ResolvedService["maintenance"] {
  const html = m.page ? readPage(m.page, at("maintenance", "page"), sourceFile, out) : DEFAULT_MAINTENANCE_HTML;
  const retryAfterSeconds = m.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
  if (html === undefined) return undefined;
  const bytes = maintenanceResponseBytes(html, retryAfterSeconds);
  if (bytes > ERROR_PAGE_MAX_BYTES) {
    out.add(at("maintenance", "page"), `the maintenance response would be ${bytes} bytes (page and headers); HAProxy serves at most ${ERROR_PAGE_MAX_BYTES} from a file: make the page smaller (inline CSS, no images)`, "key");
    return undefined;
  }
  return { enabled: m.enabled, html, allowedSources: m.allowedSources ?? [], retryAfterSeconds };
}
