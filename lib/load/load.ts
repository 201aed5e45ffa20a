/**
 * Loading an environment file: the configuration layer parses and resolves it (`lib/config/parse.ts`),
 * then the checks that need its plans run — the security-group quotas, counted on the rules the
 * constructs will create — each problem placed at its field's line like the file's own. Every problem is
 * thrown at once as a ConfigError; nothing is half-loaded. Pure but for reading the file.
 */
import { ConfigError } from "../config/errors";
import { withResolvedDefaults } from "../config/expand";
import { ResolvedEnvironment } from "../config/model";
import { ParsedEnvironment, parseAndResolve, readEnvironmentFile } from "../config/parse";
import { securityGroupQuotaProblems } from "../plan/security-quotas";

/** Loads, validates and resolves an environment file. Throws ConfigError listing every problem. */
export function loadEnvironment(file: string): ResolvedEnvironment {
  return parseEnvironment(readEnvironmentFile(file), file);
}

/** Parses environment text (named `file` in messages). Throws ConfigError listing every problem. */
export function parseEnvironment(text: string, file: string): ResolvedEnvironment {
  return parseAndCheck(text, file).env;
}

/**
 * The environment with the preset applied and every default filled in (the schema's, and the
 * loader's per-mode ones for each enabled service: check port, interval, fall/rise, timeouts, ...),
 * as plain data for `imaging-lb expand`. Validates first: throws ConfigError on any problem.
 */
export function expandEnvironment(text: string, file: string): Record<string, unknown> {
  const { env, data } = parseAndCheck(text, file);
  return withResolvedDefaults(data as unknown as Record<string, unknown>, env);
}

/** The parsed environment, refused when its security groups would not fit AWS's quotas. */
function parseAndCheck(text: string, file: string): ParsedEnvironment {
  const parsed = parseAndResolve(text, file);
  const { env, data, collector } = parsed;
  for (const p of securityGroupQuotaProblems(env, data.access.securityGroupRuleQuota)) collector.add([...p.path], p.message, "key");
  if (!collector.empty) throw new ConfigError(collector.problems);
  return parsed;
}
