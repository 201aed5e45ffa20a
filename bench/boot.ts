/**
 * bench:boot — boot-to-serving time of the example two-arm node (Debian 13 test image, QEMU; see
 * test/boot/harness.ts for what is real and what is SIMULATED), baked beside stock: VM start → first answer on
 * a VIP from the client network, with the bootstrap's phases read from cloud-init's own logs in the guest and
 * the package step shown separately.
 *
 * - baked: the boot test's node (`image: baked`): its disk built with the environment's image recipe, no way
 *   to any package mirror;
 * - stock: `image: stock` on a disk built WITHOUT the recipe (the OS base and the test-only packages), with a
 *   SIMULATED package mirror in the VPC: exactly the .deb files the recipe installed, an apt repository served
 *   over HTTP in the router namespace under deb.debian.org's name, so the bootstrap installs them at boot.
 *
 * Both NICs are present from the start (the usual case), so the bootstrap does not wait for eth1.
 * IMAGING_LB_BENCH_RUNS (default 1) boots each that many times; IMAGING_LB_BOOT_ACCEL=kvm uses KVM.
 */
import { readdirSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { accelerator, waitFor } from "../test/boot/harness";
import { SERVER_MARKER, startTwoArm, type ImageKind } from "../test/boot/scenario";
import { tempDir } from "../test/helpers/tools";

interface Phases {
  vmToServingS: number;
  vmToKernelS: number;
  kernelToFinalS?: number;
  finalToBootstrapDoneS?: number;
  packagesS?: number;
  packagesNote: string;
  /** The SIMULATED mirror's .deb files (stock: what the bootstrap downloaded), bytes and count. */
  mirrorBytes?: number;
  mirrorDebs?: number;
}

async function once(kind: ImageKind): Promise<Phases> {
  const tmp = tempDir(`bench-boot-${kind}`);
  const s = await startTwoArm(tmp.path, { eth1Late: false, image: kind });
  try {
    await waitFor("an answer on the VIP", 40 * 60_000, async () => {
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
    // The package step. Stock: the test image's apt hook (scripts/build-boot-image.sh) wrote the guest's uptime
    // when apt-get update started and when dpkg ended: first start → last end. Baked: apt never runs (the
    // hook's log is absent); the bootstrap's check that the packages are there, timed again in the guest.
    const hook = await s.vm.exec("cat /var/log/imaging-lb-test-apt.log");
    let packagesS: number | undefined;
    let packagesNote: string;
    if (hook.code === 0) {
      const starts = [...hook.stdout.matchAll(/^update-start ([0-9.]+)$/gm)].map((m) => Number(m[1]));
      const ends = [...hook.stdout.matchAll(/^dpkg-end ([0-9.]+)$/gm)].map((m) => Number(m[1]));
      packagesS = starts.length > 0 && ends.length > 0 ? Math.max(...ends) - Math.min(...starts) : undefined;
      packagesNote = `apt-get update start → dpkg end at boot, from the SIMULATED mirror (${starts.length} update(s), ${ends.length} dpkg run(s))`;
    } else {
      const check = await s.vm.check("TIMEFORMAT=%R; { time dpkg-query -W -f='${Status}\\n' haproxy iptables socat keepalived awscli >/dev/null; } 2>&1");
      packagesS = Number(check.trim());
      packagesNote = "baked: apt never ran; the bootstrap's dpkg-query check of the packages, timed again in the guest";
    }
    let mirrorBytes: number | undefined;
    let mirrorDebs: number | undefined;
    if (s.mirror !== undefined) {
      const pool = join(s.mirror, "debian", "pool");
      const debs = readdirSync(pool).filter((f) => f.endsWith(".deb"));
      mirrorDebs = debs.length;
      mirrorBytes = debs.reduce((sum, f) => sum + statSync(join(pool, f)).size, 0);
    }
    return {
      vmToServingS,
      vmToKernelS,
      kernelToFinalS: finalUp === undefined ? undefined : Number(finalUp),
      finalToBootstrapDoneS: finalStart !== undefined && bootstrapDone !== undefined ? bootstrapDone - finalStart : undefined,
      packagesS,
      packagesNote,
      mirrorBytes,
      mirrorDebs,
    };
  } finally {
    await s.cleanup();
    tmp.cleanup();
  }
}

async function main(): Promise<void> {
  const runs = Number(process.env.IMAGING_LB_BENCH_RUNS ?? "1");
  const f = (v: number | undefined): string => (v === undefined ? "n/a" : `${v.toFixed(1)} s`);
  console.log(`bench:boot — example two-arm node, Debian 13 under QEMU (${accelerator()}), baked beside stock, ${runs} run(s) each, host load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  const results: Record<ImageKind, Phases[]> = { baked: [], stock: [] };
  for (let i = 1; i <= runs; i++) {
    for (const kind of ["baked", "stock"] as const) {
      const p = await once(kind);
      results[kind].push(p);
      const label = kind === "baked" ? "baked (image recipe; no way to any mirror)" : "stock (installs at boot from the SIMULATED mirror)";
      console.log(`run ${i}, ${label}:`);
      console.log(`  VM start → first answer on a VIP      ${f(p.vmToServingS)}`);
      console.log(`    VM start → kernel                   ${f(p.vmToKernelS)}`);
      console.log(`    kernel → cloud-init final stage     ${f(p.kernelToFinalS)}`);
      console.log(`    final stage → bootstrap done        ${f(p.finalToBootstrapDoneS)}`);
      console.log(`    of which the package step           ${f(p.packagesS)} (${p.packagesNote})`);
      if (p.mirrorBytes !== undefined) console.log(`    SIMULATED mirror: ${p.mirrorDebs} .deb files, ${(p.mirrorBytes / 1e6).toFixed(1)} MB (the recipe's packages)`);
      console.log(`    host load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
    }
  }
  const mean = (xs: Array<number | undefined>): number | undefined => {
    const ok = xs.filter((x): x is number => x !== undefined);
    return ok.length === 0 ? undefined : ok.reduce((a, b) => a + b, 0) / ok.length;
  };
  const serving = { baked: mean(results.baked.map((p) => p.vmToServingS)), stock: mean(results.stock.map((p) => p.vmToServingS)) };
  const packages = { baked: mean(results.baked.map((p) => p.packagesS)), stock: mean(results.stock.map((p) => p.packagesS)) };
  const mb = mean(results.stock.map((p) => p.mirrorBytes));
  const diff = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : a - b);
  console.log("summary (mean):                       baked        stock        stock − baked");
  console.log(`  VM start → first answer on a VIP    ${f(serving.baked).padEnd(12)} ${f(serving.stock).padEnd(12)} ${f(diff(serving.stock, serving.baked))}`);
  console.log(`  package step                        ${f(packages.baked).padEnd(12)} ${f(packages.stock).padEnd(12)} ${f(diff(packages.stock, packages.baked))}`);
  const step = packages.stock;
  if (step !== undefined) {
    // TCG emulates every instruction: the install's CPU part (dpkg unpacking, triggers, Python byte-compiling
    // the AWS CLI) runs 10-30× slower than on a c6i.large's cores; the SIMULATED mirror is on the same host, so
    // a real mirror's download time is not in the figure.
    console.log(
      `  on EC2: the baked image saves the stock node's package step. Here it took ${step.toFixed(0)} s under TCG, mostly ` +
        `emulated CPU (the SIMULATED mirror is local, downloads are near-instant); TCG inflates CPU work ~10-30×, so on a ` +
        `c6i.large the same install is about ${(step / 30).toFixed(0)}-${(step / 10).toFixed(0)} s of CPU, plus apt-get update and ` +
        `the download of ${mb === undefined ? "the packages" : `${(mb / 1e6).toFixed(0)} MB of packages`} from a real mirror through the NAT gateway ` +
        "(seconds on a near mirror, more on a slow or failing one): a baked node serves that much sooner and does not depend on the mirror at all.",
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
