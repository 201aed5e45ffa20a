/**
 * BOOT TEST (npm run test:boot): the example two-arm single node's unmodified user data on a real Debian 13
 * booted by QEMU, with eth1 attached late (after the bootstrap's 300 s wait) and a reboot. The configuration
 * bundle is in the SIMULATED S3 as the stack uploads it: the agent's first apply at boot is part of the test.
 * The node is a baked one (`image: baked`, no natSubnet): its disk was built with the environment's own image
 * recipe (scripts/build-boot-image.sh runs `imaging-lb render image-recipe`'s script in the image's root), and
 * the test network has no way to any package mirror, only to the SIMULATED AWS endpoints.
 *
 * Real: kernel, systemd, udev, cloud-init (NoCloud seed ISO carrying the gzipped user data), netplan and
 * systemd-networkd, HAProxy, the AWS CLI, PCI hot-plug, DHCP. SIMULATED (see test/boot/harness.ts): IMDSv2
 * (test/helpers/fake-imds.ts), AWS Secrets Manager (moto behind TLS, found through DNS), EC2's network
 * (a router namespace with strict reverse-path filtering, so a reply leaving by the wrong ENI is dropped).
 * One boot, many assertions; a failure prints the guest's console and cloud-init output.
 */
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { tempDir } from "../helpers/tools";
import { sh, waitFor } from "./harness";
import { agentStatus, MAC0, MAC1, SERVER_MARKER, sha256, startTwoArm, STATS_PASSWORD, type TwoArm } from "./scenario";

const MIN = 60_000;

describe("boot: two-arm single node on Debian 13, eth1 attached after the bootstrap's wait, then a reboot", { timeout: 40 * MIN }, () => {
  let s: TwoArm;
  const tmp = tempDir("boot-two-arm");
  let failed = false;

  /** Guest output on failure: the serial console and cloud-init's output log. */
  async function diagnostics(): Promise<void> {
    if (s === undefined) return;
    console.error(`--- serial console (last 80 lines) ---\n${s.vm.serial().split("\n").slice(-80).join("\n")}`);
    const out = await s.vm.exec("tail -n 120 /var/log/cloud-init-output.log; journalctl -b -u haproxy -u imaging-lb-network --no-pager | tail -n 60", 60_000).catch((e: unknown) => ({ stdout: String(e) }));
    console.error(`--- cloud-init output / journal ---\n${out.stdout}`);
  }

  before(async () => {
    s = await startTwoArm(tmp.path, { eth1Late: true });
  });
  after(async () => {
    if (failed) await diagnostics();
    await s?.cleanup();
    if (!failed) tmp.cleanup();
    else console.error(`boot test files kept in ${tmp.path}`);
  });

  /** Marks the suite failed (diagnostics, kept files) when `fn` throws. */
  const step = (name: string, fn: () => Promise<void>, timeout = 20 * MIN): void => {
    it(name, { timeout }, async () => {
      try {
        await fn();
      } catch (err) {
        failed = true;
        throw err;
      }
    });
  };

  step("first boot: cloud-init finishes without error although eth1 never came during the bootstrap's wait", async () => {
    await s.vm.waitForAgent(15 * MIN);
    const status = await waitFor("cloud-init to finish", 15 * MIN, async () => {
      const r = await s.vm.exec("cloud-init status --long");
      return /status: (done|error|degraded)/.test(r.stdout) ? r : undefined;
    }, 10_000);
    assert.equal(status.code, 0, `cloud-init status --long:\n${status.stdout}${status.stderr}`);
    assert.match(status.stdout, /status: done/);
    const output = await s.vm.check("cat /var/log/cloud-init-output.log");
    assert.match(output, /no ENI with device-number 1 after 300s/, "eth1 must have been absent during the whole wait");
    assert.match(output, /imaging-lb-bootstrap: done/);
    assert.doesNotMatch(output, /ERROR/);
  });

  step("first boot: the baked image is the recipe's, nothing was installed at boot, and there is no way to a package mirror", async () => {
    // (a) The image's manifest names the recipe the disk was built with (the rendered script's RECIPE=).
    const recipe = /^RECIPE=(\S+)$/m.exec(readFileSync(s.recipeFile, "utf8"))?.[1];
    assert.ok(recipe !== undefined, `no RECIPE= line in ${s.recipeFile}`);
    const manifest = JSON.parse(await s.vm.check("cat /usr/share/imaging-lb/image.json")) as { recipe: string; os: string; haproxy: string; packages: Record<string, string> };
    assert.equal(manifest.recipe, recipe, "the guest's image manifest names the rendered recipe's version");
    assert.equal(manifest.os, "debian-13");
    assert.match(manifest.haproxy, /^3\.0\./);
    for (const p of ["haproxy", "keepalived", "socat", "iptables", "awscli"]) assert.ok(manifest.packages[p], `the manifest lists ${p}: ${JSON.stringify(manifest)}`);
    // (b) Nothing installed at boot: apt and dpkg append to their logs on every run (history.log an entry per
    // apt-get install/upgrade, dpkg.log a line per unpack/configure, also for dpkg -i), and nothing in the image
    // rotates them (no logrotate). So the guest's logs, after cloud-init is done, must be byte for byte the
    // ones the image build left (kept beside the image): no clock comparison, no reliance on a bootstrap line.
    for (const [guest, built] of [["/var/log/apt/history.log", s.image.aptHistory], ["/var/log/dpkg.log", s.image.dpkgLog]] as const) {
      const now = (await s.vm.check(`sha256sum <${guest}`)).split(" ")[0];
      if (now !== sha256(readFileSync(built as string))) {
        assert.fail(`${guest} changed since the image build (apt or dpkg ran at boot); its end:\n${await s.vm.check(`tail -n 20 ${guest}`)}`);
      }
    }
    // The test image's apt hook (update start, dpkg end) never fired: not even an apt-get update was run.
    assert.equal((await s.vm.exec("test -e /var/log/imaging-lb-test-apt.log")).code, 1, "apt-get ran at boot (its test hook wrote /var/log/imaging-lb-test-apt.log)");
    // (c) No route to a package mirror. The mirror's name resolves to nothing in the VPC (its resolver has no
    // upstream: only *.amazonaws.com, the SIMULATED AWS, is answered) ...
    const mirror = await s.vm.exec("getent ahosts deb.debian.org");
    assert.notEqual(mirror.code, 0, `deb.debian.org resolved in the guest: ${mirror.stdout}`);
    assert.equal((await s.vm.exec("getent ahosts security.debian.org")).code === 0, false, "security.debian.org resolved in the guest");
    assert.match(await s.vm.check("getent ahosts s3.eu-west-1.amazonaws.com | head -n 1"), /^10\.20\.1\.5\s/, "AWS names resolve to the SIMULATED AWS");
    // ... and no address outside the VPC is reachable: the router namespace has no uplink (no default route,
    // no interface but the VPC's bridges and host veths), so a connection to a public mirror address
    // (deb.debian.org's CDN, 151.101.2.132) fails from the guest at once.
    assert.equal(sh("ip", ["-n", s.vpc.router, "route", "show", "default"]).stdout.trim(), "", "the SIMULATED VPC's router has a default route");
    const unreachable = sh("ip", ["-n", s.vpc.router, "route", "get", "151.101.2.132"], { allowFail: true });
    assert.notEqual(unreachable.code, 0, `the router has a route to a public address: ${unreachable.stdout}`);
    const direct = await s.vm.exec("curl -sS --max-time 20 -o /dev/null http://151.101.2.132/debian/ 2>&1", 60_000);
    assert.notEqual(direct.code, 0, `the guest reached a public address: ${direct.stdout}`);
  });

  step("first boot: HAProxy active with the rendered config, stats password and certificate, though eth1 (its VIPs) is missing", async () => {
    assert.equal((await s.vm.exec("systemctl is-active haproxy")).stdout.trim(), "active");
    assert.equal((await s.vm.check("sha256sum </etc/haproxy/haproxy.cfg")).split(" ")[0], sha256(s.artifacts.haproxyConfig));
    // The configuration came as the bundle from S3, applied by the agent at first boot (the day-2 path).
    const status = await waitFor("the agent's status in S3", 2 * MIN, async () => agentStatus(s), 5000);
    assert.equal(status.result, "applied", JSON.stringify(status));
    assert.equal(status.appliedVersion, s.artifacts.bundle.version);
    assert.match(String(status.haproxyVersion), /^HAProxy version 3\.0\./);
    assert.equal((await s.vm.exec("systemctl is-active imaging-lb-agent.service")).stdout.trim(), "active", "the agent keeps polling");
    assert.equal(await s.vm.check("stat -c '%a %U' /etc/haproxy/certs/web.pem"), "600 root\n");
    // The PEM as Secrets Manager holds it (the AWS CLI's text output adds a final newline).
    assert.equal((await s.vm.check("cat /etc/haproxy/certs/web.pem")).trimEnd(), s.webPem.trimEnd());
    assert.equal(await s.vm.check("stat -c %a /etc/imaging-lb/haproxy.env"), "600\n");
    assert.equal(await s.vm.check("cat /etc/imaging-lb/haproxy.env"), `IMAGING_LB_STATS_PASSWORD=${STATS_PASSWORD}\n`);
    assert.equal(await s.vm.check("sysctl -n net.ipv4.ip_nonlocal_bind"), "1\n");
    assert.equal((await s.vm.check("sysctl -n net.ipv4.ip_local_port_range")).replace(/\s+/g, " ").trim(), "1024 65535");
    // The kernel's warning would be on the console (not the journal: qemu-ga logs each command it runs,
    // so a grep there would find its own command line).
    assert.doesNotMatch(s.vm.serial(), /prefer different parity/, "no ip_local_port_range parity warning from the kernel");
    assert.equal((await s.vm.check("ip -br link show eth0")).split(/\s+/)[2], MAC0);
    assert.equal((await s.vm.exec("ip link show eth1")).code, 1, "eth1 is not attached yet");
  });

  step("eth1 attached late (PCI hot-plug + IMDS): named eth1 by MAC, policy routing in force, a client reaches the VIP", async () => {
    await s.attachEth1();
    await waitFor("eth1 with the VIPs", 10 * MIN, async () => {
      const r = await s.vm.exec("ip -br addr show eth1");
      return r.code === 0 && r.stdout.includes("10.20.2.100/32") ? true : undefined;
    }, 5000);
    const body = await waitFor("an answer on the VIP from the client network", 5 * MIN, async () => {
      const r = await s.clientCurl(["-f", "-k", "https://10.20.2.100/"]);
      return r.code === 0 ? r.stdout : undefined;
    }, 3000);
    assert.equal(body.trim(), SERVER_MARKER);
    const links = await s.vm.check("ip -br link show");
    assert.match(links, new RegExp(`^eth0\\s+UP\\s+${MAC0}`, "m"));
    assert.match(links, new RegExp(`^eth1\\s+UP\\s+${MAC1}`, "m"));
    assert.doesNotMatch(links, /^ens\d/m, "no ENI left with its kernel name");
    const [t0, t1] = s.tables;
    const rules = await s.vm.check("ip rule show");
    assert.match(rules, new RegExp(`from 10\\.20\\.1\\.10 lookup ${t0}`));
    assert.match(rules, new RegExp(`from 10\\.20\\.2\\.10 lookup ${t1}`));
    assert.match(rules, new RegExp(`from 10\\.20\\.2\\.0/24 lookup ${t1}`));
    assert.match(await s.vm.check(`ip route show table ${t1}`), /default via 10\.20\.2\.1 dev eth1/);
    assert.match(await s.vm.check(`ip route show table ${t0}`), /default via 10\.20\.1\.1 dev eth0/);
    assert.match(await s.vm.check("ip route show table main"), /default via 10\.20\.1\.1 dev eth0/);
    // The reply to the client leaves by eth1 (the SIMULATED VPC drops it otherwise: strict rp_filter).
    assert.match(await s.vm.check("ip route get 10.30.0.5 from 10.20.2.100"), /dev eth1/);
    assert.equal((await s.vm.exec("systemctl is-active haproxy")).stdout.trim(), "active");
    // HTTP on the VIP is redirected to HTTPS; the stats page on eth0 takes the password from Secrets Manager.
    const redirect = await s.clientCurl(["-o", "/dev/null", "-w", "%{http_code}", "http://10.20.2.100/"]);
    assert.equal(redirect.stdout, "308", "HTTP is redirected to HTTPS, method kept (308)");
    const stats = await s.adminCurl(["-o", "/dev/null", "-w", "%{http_code}", "-u", `admin:${STATS_PASSWORD}`, "http://10.20.1.10:8404/"]);
    assert.equal(stats.stdout, "200", `stats page with the password: ${stats.stderr}`);
    const wrong = await s.adminCurl(["-o", "/dev/null", "-w", "%{http_code}", "-u", "admin:wrong", "http://10.20.1.10:8404/"]);
    assert.equal(wrong.stdout, "401");
  });

  step("a reboot comes back serving, with the same names and routing", async () => {
    const bootId = await s.vm.check("cat /proc/sys/kernel/random/boot_id");
    await s.vm.reboot();
    await waitFor("the guest to come back after the reboot", 15 * MIN, async () => {
      const r = await s.vm.exec("cat /proc/sys/kernel/random/boot_id", 20_000);
      return r.code === 0 && r.stdout !== bootId ? true : undefined;
    }, 5000);
    const body = await waitFor("an answer on the VIP after the reboot", 10 * MIN, async () => {
      const r = await s.clientCurl(["-f", "-k", "https://10.20.2.100/"]);
      return r.code === 0 ? r.stdout : undefined;
    }, 3000);
    assert.equal(body.trim(), SERVER_MARKER);
    const links = await s.vm.check("ip -br link show");
    assert.match(links, new RegExp(`^eth0\\s+UP\\s+${MAC0}`, "m"));
    assert.match(links, new RegExp(`^eth1\\s+UP\\s+${MAC1}`, "m"));
    assert.match(await s.vm.check("ip rule show"), new RegExp(`from 10\\.20\\.2\\.0/24 lookup ${s.tables[1]}`));
    assert.equal((await s.vm.exec("systemctl is-active haproxy")).stdout.trim(), "active");
    const status = await s.vm.exec("cloud-init status --long");
    assert.equal(status.code, 0, status.stdout);
    // After the reboot the agent still polls, and the bundle it applied is still the one in force.
    assert.equal((await s.vm.exec("systemctl is-active imaging-lb-agent.service")).stdout.trim(), "active");
    assert.equal((await s.vm.check("sha256sum </etc/haproxy/haproxy.cfg")).split(" ")[0], sha256(s.artifacts.haproxyConfig));
    assert.equal((await agentStatus(s))?.appliedVersion, s.artifacts.bundle.version);
  });
});
