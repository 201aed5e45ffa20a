/**
 * Runs the real `haproxy -dW -c -f` on a configuration: warnings are errors, as the bootstrap on the
 * load balancer does before every (re)start.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireTool } from "./tools";

export interface HaproxyCheckResult {
  readonly ok: boolean;
  readonly output: string;
}

/** Writes `config` to `dir/haproxy.cfg` and validates it with `haproxy -dW -c -f`. */
export function haproxyCheck(dir: string, config: string): HaproxyCheckResult {
  const haproxy = requireTool("haproxy", "haproxy");
  const file = join(dir, "haproxy.cfg");
  writeFileSync(file, config);
  const run = spawnSync(haproxy, ["-dW", "-c", "-f", file], { encoding: "utf8", cwd: dir });
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
}
