/**
 * bench:boot — boot-to-serving time of the example two-arm node (Debian 13 test image, QEMU; see
 * test/boot/harness.ts for what is real and what is SIMULATED): VM start → first answer on a VIP from the
 * client network, with the bootstrap's phases read from the guest's console (kernel uptime stamps) and the
 * time spent in package installation shown separately.
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

/** `[ uptime ] ...` console lines of the guest. */
function stamped(serial: string): Array<{ t: number; text: string }> {
  const out: Array<{ t: number; text: string }> = [];
  for (const line of serial.split("\n")) {
    const m = /^\[\s*(\d+\.\d+)\]\s(.*)$/.exec(line.replace(/\r/g, ""));
    if (m) out.push({ t: Number(m[1]), text: m[2] });
  }
  return out;
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
    const lines = stamped(s.vm.serial());
    // The console's clock starts at the kernel: the kernel's own "uptime now" is the last stamp we saw at
    // `servingAt`; VM start → kernel start is the rest.
    const uptimeNow = Number((await s.vm.check("cut -d' ' -f1 /proc/uptime")).trim());
    const elapsedSinceServing = (Date.now() - servingAt) / 1000;
    const vmToServingS = (servingAt - s.vm.startedAt) / 1000;
    const vmToKernelS = vmToServingS - (uptimeNow - elapsedSinceServing);
    const final = lines.find((l) => /running 'modules:final'/.test(l.text));
    const done = lines.find((l) => /imaging-lb-bootstrap: done/.test(l.text));
    const installIdx = lines.findIndex((l) => /imaging-lb-bootstrap: (installing|packages already installed)/.test(l.text));
    let packagesS: number | undefined;
    let packagesNote = "no install_packages line on the console";
    if (installIdx >= 0) {
      const next = lines.slice(installIdx + 1).find((l) => /imaging-lb-/.test(l.text));
      packagesS = next ? next.t - lines[installIdx].t : undefined;
      packagesNote = /already installed/.test(lines[installIdx].text)
        ? "pre-baked image: apt skipped (dpkg-query check only); upper bound up to the bootstrap's next console line"
        : "packages installed at boot";
    }
    // What install_packages costs on a pre-baked image: its dpkg-query check, timed again in the guest.
    const check = await s.vm.check("TIMEFORMAT=%R; { time dpkg-query -W -f='${Status}\\n' haproxy socat awscli >/dev/null; } 2>&1");
    packagesNote += `; its dpkg-query check alone, re-timed in the guest: ${Number(check.trim()).toFixed(2)} s`;
    return {
      vmToServingS,
      vmToKernelS,
      kernelToFinalS: final?.t,
      finalToBootstrapDoneS: final && done ? done.t - final.t : undefined,
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
