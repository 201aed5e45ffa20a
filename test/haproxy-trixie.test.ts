/**
 * The same `haproxy -dW -c` suite as test/haproxy-validate.test.ts, against a current LTS: HAProxy 3.0 of
 * Debian 13 (trixie), run through chroot in a minimal trixie root that scripts/trixie-root.sh
 * (scripts/debian-root.sh trixie) builds once (debootstrap, cached under /var/cache/imaging-lb/). Fails
 * loudly when that root cannot be built.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { it } from "node:test";
import { chrootValidator, debianRoot } from "./helpers/debian-root";
import { describeHaproxyValidation } from "./helpers/haproxy-matrix";

let root: string | undefined;
const getRoot = (): string => (root ??= debianRoot("trixie"));

it("the trixie root runs HAProxy 3.0", () => {
  const version = execFileSync("chroot", [getRoot(), "/usr/sbin/haproxy", "-v"], { encoding: "utf8" });
  assert.match(version, /^HAProxy version 3\.0\./);
});

describeHaproxyValidation("haproxy -dW -c on rendered configurations, HAProxy 3.0 (Debian 13 trixie, chroot)", () => chrootValidator(getRoot(), "trixie"));
