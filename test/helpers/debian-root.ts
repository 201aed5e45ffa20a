/**
 * Minimal Debian roots of other suites (scripts/debian-root.sh: debootstrap once, cached under
 * /var/cache/imaging-lb/) and an `haproxy -dW -c` validator that runs their HAProxy through chroot:
 * trixie's 3.0 (test/haproxy-trixie.test.ts) and forky's 3.2 (test/haproxy-forky.test.ts).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HaproxyValidator } from "./haproxy-matrix";
import { makeSelfSignedPem, tempDir } from "./tools";

const REPO = join(__dirname, "..", "..", "..");

/** The root of `suite` (built on first use; throws with the script's reason when it cannot be: never a skip). */
export function debianRoot(suite: "trixie" | "forky"): string {
  const run = spawnSync(join(REPO, "scripts", "debian-root.sh"), [suite], { encoding: "utf8", timeout: 15 * 60_000 });
  if (run.status !== 0) {
    const why = run.error ? `${run.error.message}\n` : "";
    throw new Error(`scripts/debian-root.sh ${suite} failed (status ${String(run.status)}):\n${why}${run.stderr}`);
  }
  const root = run.stdout.trim().split("\n").pop() ?? "";
  if (root === "") throw new Error(`scripts/debian-root.sh ${suite} printed no root path:\n${run.stderr}`);
  return root;
}

/** Validates with the HAProxy of the root `base` through chroot; its files go under the root's /tmp. */
export function chrootValidator(base: string, label: string): HaproxyValidator {
  return {
    setUp: () => {
      const path = mkdtempSync(join(base, "tmp", "imaging-lb-validate-"));
      return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
    },
    certBase: (dir) => dir.slice(base.length),
    writePem: (dir, name) => {
      const scratch = tempDir(`${label}-pem`);
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
}
