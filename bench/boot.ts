/**
 * bench:boot — boot-to-serving time of the example two-arm node (Debian 13 test image, QEMU; see
 * test/boot/harness.ts for what is real and what is SIMULATED): VM start → first answer on a VIP from the
 * client network, with the bootstrap's phases read from cloud-init's own logs in the guest and the time spent
 * in package installation shown separately.
 *
 * Both NICs are present from the start (the usual case), so the bootstrap does not wait for eth1.
 * IMAGING_LB_BENCH_RUNS (default 1) boots that many times; IMAGING_LB_BOOT_ACCEL=kvm uses KVM.
 */
import { loadavg } from "node:os";
import { accelerator, waitFor } from "../test/boot/harness";
import { SERVER_MARKER, startTwoArm } from "../test/boot/scenario";
import { tempDir } from "../test/helpers/tools";

interface Phases {
  vmToServingS: number;
  vmToKernelS: number;
  kernelToFinalS?: number;
  finalToBootstrapDoneS?: number;
  packagesS?: number;
  packagesNote: string;
}

async function once(): Promise<Phases> {
  const tmp = tempDir("bench-boot");
  const s = await startTwoArm(tmp.path, { eth1Late: false });
  try {
    await waitFor("an answer on the VIP", 30 * 60_000, async () => {
      const r = await s.clientCurl(["-f", "-k", "--max-time", "2", "https://10.20.2.100/"]);
      return r.code === 0 && r.stdout.trim() === SERVER_MARKER ? true : undefined;
    }, 1000);
    const servingAt = Date.now();
    // The guest's uptime counts from the kernel's start: VM start → kernel start is the rest.
    const uptimeNow = Number((await s.vm.check("cut -d' ' -f1 /proc/uptime")).trim());
    const elapsedSinceServing = (Date.now() - servingAt) / 1000;
    const vmToServingS = (servingAt - s.vm.startedAt) / 1000;
    const vmToKernelS = vmToServingS - (uptimeNow - elapsedSinceServing);
    // The VIP answers before the bootstrap ends (its last steps run with HAProxy already serving).
    await s.vm.exec("cloud-init status --wait", 15 * 60_000);
    // cloud-init's own records (the journal and the serial console both lose cloud-final's lines under TCG):
    // the output log gives the final stage's start in uptime, cloud-init.log the bootstrap's run (runcmd, in
    // config-scripts-user) in wall-clock time.
    const finalLine = await s.vm.check("grep \"running 'modules:final'\" /var/log/cloud-init-output.log | tail -n 1");
    const finalUp = /Up ([0-9.]+) seconds/.exec(finalLine)?.[1];
    const ciLog = await s.vm.check("grep -E 'start: modules-final: running modules for final|finish: modules-final/config-scripts-user' /var/log/cloud-init.log");
    const wallClock = (pattern: RegExp): number | undefined => {
      const m = new RegExp(`^(\\d{4}-\\d\\d-\\d\\d) (\\d\\d:\\d\\d:\\d\\d),(\\d{3}) - .*${pattern.source}`, "m").exec(ciLog);
      return m ? Date.parse(`${m[1]}T${m[2]}.${m[3]}Z`) / 1000 : undefined;
    };
    const finalStart = wallClock(/start: modules-final: running modules for final/);
    const bootstrapDone = wallClock(/finish: modules-final\/config-scripts-user: SUCCESS/);
    // install_packages on a pre-baked image is its dpkg-query check alone: timed again in the guest. A stock
    // image installs at boot, which the output log says without timing it.
    const installLine = await s.vm.check("grep -m 1 -E 'imaging-lb-bootstrap: (installing|packages already installed)' /var/log/cloud-init-output.log || true");
    const check = await s.vm.check("TIMEFORMAT=%R; { time dpkg-query -W -f='${Status}\\n' haproxy socat awscli >/dev/null; } 2>&1");
    const prebaked = /already installed/.test(installLine);
    const packagesS = prebaked ? Number(check.trim()) : undefined;
    const packagesNote = prebaked
      ? "pre-baked image: apt skipped; the bootstrap's dpkg-query check, timed again in the guest"
      : installLine.trim() === "" ? "no install line in cloud-init-output.log" : "packages installed at boot (not timed separately)";
    return {
      vmToServingS,
      vmToKernelS,
      kernelToFinalS: finalUp === undefined ? undefined : Number(finalUp),
      finalToBootstrapDoneS: finalStart !== undefined && bootstrapDone !== undefined ? bootstrapDone - finalStart : undefined,
      packagesS,
      packagesNote,
    };
  } finally {
    await s.cleanup();
    tmp.cleanup();
  }
}

async function main(): Promise<void> {
  const runs = Number(process.env.IMAGING_LB_BENCH_RUNS ?? "1");
  const f = (v: number | undefined): string => (v === undefined ? "n/a" : `${v.toFixed(1)} s`);
  console.log(`bench:boot — example two-arm node, Debian 13 under QEMU (${accelerator()}), ${runs} run(s), host load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  for (let i = 1; i <= runs; i++) {
    const p = await once();
    console.log(`run ${i}:`);
    console.log(`  VM start → first answer on a VIP      ${f(p.vmToServingS)}`);
    console.log(`    VM start → kernel                   ${f(p.vmToKernelS)}`);
    console.log(`    kernel → cloud-init final stage     ${f(p.kernelToFinalS)}`);
    console.log(`    final stage → bootstrap done        ${f(p.finalToBootstrapDoneS)}`);
    console.log(`    of which package installation       ${f(p.packagesS)} (${p.packagesNote})`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
