/**
 * A stand-in for `ip` (SIMULATED) for running the VIP takeover script without touching the host's interfaces.
 *
 * It logs every invocation to `$IMAGING_LB_TEST_IP_LOG`. To `ip -4 -o addr show dev <if>` it answers as if
 * keepalived held the addresses in `$IMAGING_LB_TEST_IP_HELD` (space separated) on that interface, the way the
 * script tells that this node is still MASTER; with `$IMAGING_LB_TEST_IP_HELD_FOR=N` it does so for the first N
 * such questions only (keepalived left MASTER during the run).
 */
import { readFileSync } from "node:fs";

export const FAKE_IP_SCRIPT = `#!/bin/sh
printf '%s\\n' "$*" >> "$IMAGING_LB_TEST_IP_LOG"
case "$*" in
  "-4 -o addr show dev "*)
    asked=$(grep -c 'addr show' "$IMAGING_LB_TEST_IP_LOG")
    if [ -z "$IMAGING_LB_TEST_IP_HELD_FOR" ] || [ "$asked" -le "$IMAGING_LB_TEST_IP_HELD_FOR" ]; then
      for address in $IMAGING_LB_TEST_IP_HELD; do
        printf '3: %s    inet %s/32 scope global %s\\\\       valid_lft forever preferred_lft forever\\n' "$6" "$address" "$6"
      done
    fi
    ;;
esac
`;

/** The fake's log, split: the questions the script asked and the changes it made. */
export function readFakeIpLog(file: string): { readonly masterChecks: number; readonly changes: string[] } {
  const lines = readFileSync(file, "utf8").split("\n").filter((line) => line !== "");
  const changes = lines.filter((line) => !line.startsWith("-4 -o addr show dev "));
  return { masterChecks: lines.length - changes.length, changes };
}
