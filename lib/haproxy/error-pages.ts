/**
 * Error pages and maintenance mode of http services, as files next to haproxy.cfg: HAProxy `errorfile`s are
 * complete raw HTTP responses (status line, headers, body; `lib/config/page-responses.ts` builds them), read when the configuration is loaded; the
 * maintenance page is the body of an `http-request return`; the maintenance map holds the switch that the
 * runtime API can flip without a reload. Pure: the files are returned, never written here.
 */
import { NODE_CONTRACT } from "../contract/node-contract";
import type { ResolvedEnvironment, ResolvedService } from "../config/model";
import { errorResponse } from "../config/page-responses";

/** Folder of the error pages and the maintenance map on the node (files of the configuration bundle). */
export const ERROR_DIR = NODE_CONTRACT.paths.errorDir;
/** The maintenance map, relative to the error folder: one `<service> on` line per service in maintenance. */
export const MAINTENANCE_MAP = "maintenance.map";
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
