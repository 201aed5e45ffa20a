/**
 * The same `haproxy -dW -c` suite as test/haproxy-validate.test.ts, against the newest LTS: HAProxy 3.2 of
 * Debian forky (testing), run through chroot in a minimal forky root that `scripts/debian-root.sh forky`
 * builds once (debootstrap, cached under /var/cache/imaging-lb/). 3.2 is the newest series the Ubuntu PPA
 * option (`haproxy.source: ppa`) installs. Fails loudly when that root cannot be built.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { it } from "node:test";
import { chrootValidator, debianRoot } from "./helpers/debian-root";
import { describeHaproxyValidation } from "./helpers/haproxy-matrix";

let root: string | undefined;
const getRoot = (): string => (root ??= debianRoot("forky"));

it("the forky root runs HAProxy 3.2", () => {
  const version = execFileSync("chroot", [getRoot(), "/usr/sbin/haproxy", "-v"], { encoding: "utf8" });
  assert.match(version, /^HAProxy version 3\.2\./);
});

describeHaproxyValidation("haproxy -dW -c on rendered configurations, HAProxy 3.2 (Debian forky, chroot)", () => chrootValidator(getRoot(), "forky"));
