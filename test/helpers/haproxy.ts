/**
 * Runs the real `haproxy -dW -c -f` on a configuration: warnings are errors, as the bootstrap on the
 * load balancer does before every (re)start.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireTool } from "./tools";

export interface HaproxyCheckResult {
  readonly ok: boolean;
  readonly output: string;
}

export interface HaproxyCheckOptions {
  /** Local peer name (`-L`): an HA pair's `peers` section is only active on a node of that name. */
  readonly localPeer?: string;
  /** Extra environment (the stats password variable the bootstrap provides on the node). */
  readonly env?: Record<string, string>;
}

/** Writes `config` to `dir/haproxy.cfg` and validates it with `haproxy -dW -c -f`. */
export function haproxyCheck(dir: string, config: string, options: HaproxyCheckOptions = {}): HaproxyCheckResult {
  const haproxy = requireTool("haproxy", "haproxy");
  const file = join(dir, "haproxy.cfg");
  writeFileSync(file, config);
  const args = [...(options.localPeer ? ["-L", options.localPeer] : []), "-dW", "-c", "-f", file];
  const run = spawnSync(haproxy, args, { encoding: "utf8", cwd: dir, env: { ...process.env, ...options.env } });
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
}

/** The lines of section `title` of a rendered haproxy.cfg (e.g. "backend be_app"), without indentation. */
export function section(cfg: string, title: string): string[] {
  const blocks = cfg.trimEnd().split("\n\n");
  const block = blocks.find((b) => b.split("\n")[0] === title);
  assert.ok(block, `section '${title}' not found; sections: ${blocks.map((b) => b.split("\n")[0]).join(" | ")}`);
  return block.split("\n").slice(1).map((l) => l.trim());
}
