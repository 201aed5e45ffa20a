/**
 * The same `haproxy -dW -c` suite as test/haproxy-validate.test.ts, against a current LTS: HAProxy 3.0 of
 * Debian 13 (trixie), run through chroot in a minimal trixie root that scripts/trixie-root.sh builds once
 * (debootstrap, cached under /var/cache/imaging-lb/). Fails loudly when that root cannot be built.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { describeHaproxyValidation } from "./helpers/haproxy-matrix";
import { makeSelfSignedPem, tempDir } from "./helpers/tools";

const REPO = join(__dirname, "..", "..");

/** The trixie root (built on first use; throws with the script's reason when it cannot be). */
function trixieRoot(): string {
  const run = spawnSync(join(REPO, "scripts", "trixie-root.sh"), { encoding: "utf8", timeout: 15 * 60_000 });
  if (run.status !== 0) throw new Error(`scripts/trixie-root.sh failed (status ${String(run.status)}):\n${run.stderr}`);
  return run.stdout.trim().split("\n").pop() ?? "";
}

let root: string | undefined;
const getRoot = (): string => (root ??= trixieRoot());

it("the trixie root runs HAProxy 3.0", () => {
  const version = execFileSync("chroot", [getRoot(), "/usr/sbin/haproxy", "-v"], { encoding: "utf8" });
  assert.match(version, /^HAProxy version 3\.0\./);
});

describeHaproxyValidation("haproxy -dW -c on rendered configurations, HAProxy 3.0 (Debian 13 trixie, chroot)", () => {
  const base = getRoot();
  return {
    setUp: () => {
      const path = mkdtempSync(join(base, "tmp", "imaging-lb-validate-"));
      return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
    },
    certBase: (dir) => dir.slice(base.length),
    writePem: (dir, name) => {
      const scratch = tempDir("trixie-pem");
      try {
        makeSelfSignedPem(scratch.path, name);
        execFileSync("cp", [join(scratch.path, `${name}.pem`), join(dir, `${name}.pem`)]);
      } finally {
        scratch.cleanup();
      }
    },
    check: (dir, config, options) => {
      writeFileSync(join(dir, "haproxy.cfg"), config);
      const inside = join(dir.slice(base.length), "haproxy.cfg");
      const args = [base, "/usr/sbin/haproxy", ...(options.localPeer ? ["-L", options.localPeer] : []), "-dW", "-c", "-f", inside];
      const run = spawnSync("chroot", args, { encoding: "utf8", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...options.env } });
      return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
    },
  };
});
