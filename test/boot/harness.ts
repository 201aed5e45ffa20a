/**
 * Boot test harness: a real Debian (debootstrap'd, scripts/build-boot-image.sh) booted by QEMU with the
 * node's unmodified user data, on networks inside network namespaces this process creates.
 *
 * What is real: the Debian kernel, systemd, udev, cloud-init (NoCloud seed ISO), netplan/systemd-networkd,
 * HAProxy, the AWS CLI, PCI hot-plug of the second NIC (QEMU monitor `device_add`), DHCP (dnsmasq).
 * What is SIMULATED (labelled wherever used):
 *   - IMDSv2: test/helpers/fake-imds.ts in this process, relayed to 169.254.169.254:80 in the namespace;
 *   - AWS (Secrets Manager, S3, ...): moto behind TLS (a throwaway test CA baked into the test image),
 *     reached through DNS: dnsmasq resolves every *.amazonaws.com name to it;
 *   - EC2's network: a router namespace with one bridge per subnet; the client, admin and server hosts
 *     are further namespaces.
 * Guest state is read through qemu-guest-agent on a virtio-serial channel (no SSH, no keys in the product).
 *
 * Everything started here is registered for cleanup (processes by pid, namespaces by name).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import { requireTool } from "../helpers/tools";

export const REPO = join(__dirname, "..", "..", "..");

/** Fails loudly when a tool is missing (never skips). */
export function requireBootTools(): void {
  requireTool("qemu-system-x86_64", "qemu-system-x86");
  requireTool("qemu-img", "qemu-utils");
  requireTool("debootstrap", "debootstrap");
  requireTool("dnsmasq", "dnsmasq-base");
  requireTool("xorriso", "xorriso");
  requireTool("openssl", "openssl");
  requireTool("ip", "iproute2");
  requireTool("curl", "curl");
  requireTool("dpkg-scanpackages", "dpkg-dev");
  if (process.getuid?.() !== 0) throw new Error("the boot tests need root (network namespaces, taps, debootstrap)");
  sweepStaleNamespaces();
}

/**
 * Removes the namespaces of earlier boot-test runs whose process is gone (a run killed before its cleanup):
 * their processes (QEMU, dnsmasq, moto, relays, started by that run) are ended by pid, then the namespace.
 */
export function sweepStaleNamespaces(): void {
  const names = sh("ip", ["netns", "list"]).stdout.split("\n").map((l) => l.split(" ")[0]);
  for (const ns of names) {
    const m = /^ilbboot-(\d+)-/.exec(ns);
    if (m === null) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      alive = false;
    }
    if (alive) continue;
    for (const pid of sh("ip", ["netns", "pids", ns], { allowFail: true }).stdout.split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    sh("ip", ["netns", "del", ns], { allowFail: true });
    console.error(`boot harness: removed stale namespace ${ns} (its run, pid ${m[1]}, is gone)`);
  }
}

export interface CmdResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command synchronously; throws with its output unless `allowFail`. */
export function sh(cmd: string, args: string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}): CmdResult {
  const r = spawnSync(cmd, args, { encoding: "utf8", input: opts.input, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 });
  const out = { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
  if (!opts.allowFail && out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${out.code}: ${out.stderr.trim() || out.stdout.trim()}`);
  }
  return out;
}

/** Async command (does not block the event loop, so the in-process SIMULATED IMDS keeps answering). */
export function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<CmdResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes; then throws with `what`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, everyMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Image

export interface BootImage {
  readonly dir: string;
  /** baked: the image recipe ran in it (the node's packages are in the image); stock: the OS base only. */
  readonly flavour: "baked" | "stock";
  readonly rootfs: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly caCert: string;
  readonly caKey: string;
  /** Baked only: the image's /var/log/apt/history.log and /var/log/dpkg.log as built. */
  readonly aptHistory?: string;
  readonly dpkgLog?: string;
  /** Baked only: the .deb files the recipe installed, an apt repository (root of `debian/`): bench:boot's SIMULATED mirror. */
  readonly mirror?: string;
}

/**
 * Builds (or reuses from the cache) the Debian test image: baked with `recipeFile` (the output of
 * `imaging-lb render image-recipe`, run in the image's root as Image Builder runs it), else stock.
 */
export function bootImage(recipeFile?: string): BootImage {
  const env = { ...process.env };
  if (recipeFile === undefined) delete env.IMAGING_LB_BOOT_RECIPE;
  else env.IMAGING_LB_BOOT_RECIPE = recipeFile;
  const r = spawnSync("bash", [join(REPO, "scripts", "build-boot-image.sh")], { encoding: "utf8", env, timeout: 60 * 60_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`scripts/build-boot-image.sh exited ${r.status ?? String(r.error)}: ${r.stderr.trim()}`);
  const dir = r.stdout.trim().split("\n").pop() ?? "";
  const baked = recipeFile !== undefined;
  const img: BootImage = {
    dir,
    flavour: baked ? "baked" : "stock",
    rootfs: join(dir, "rootfs.ext4"),
    kernel: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd.img"),
    caCert: join(dir, "test-ca.crt"),
    caKey: join(dir, "test-ca.key"),
    ...(baked ? { aptHistory: join(dir, "apt-history.log"), dpkgLog: join(dir, "dpkg.log"), mirror: join(dir, "mirror") } : {}),
  };
  for (const f of [img.rootfs, img.kernel, img.initrd, img.caCert, img.caKey, img.aptHistory, img.dpkgLog, img.mirror]) {
    if (f !== undefined && !existsSync(f)) throw new Error(`boot image ${dir} lacks ${f}: scripts/build-boot-image.sh failed (${r.stderr.trim()})`);
  }
  return img;
}

/** A baked image's id for the test environments (well-formed; QEMU boots the test image whatever it says). */
export const TEST_AMI_ID = "ami-0b00700b00700b007";

/**
 * `text` (an example environment with `instanceType: c6i.large`) as a node of the test image: Debian 13 and,
 * when `baked`, `image: baked` with an amiId and no natSubnet (a VPC with no way to the internet).
 */
export function testEnvironmentText(text: string, file: string, image: "baked" | "stock"): string {
  let out = text.replace("  instanceType: c6i.large\n", `  instanceType: c6i.large\n  os: debian-13\n${image === "baked" ? `  image: baked\n  amiId: ${TEST_AMI_ID}\n` : ""}`);
  if (image === "baked") out = out.replace(/^ {2}natSubnet:.*\n/m, "");
  if (!out.includes("os: debian-13") || (image === "baked" && (out.includes("natSubnet:") || !out.includes("image: baked")))) {
    throw new Error(`${file}: could not make it a ${image} Debian 13 node (the example changed)`);
  }
  return out;
}

/**
 * The image recipe of the environment `text`, rendered as a site renders it (`imaging-lb render
 * image-recipe <env.yaml>`, the built CLI) into `dir`; returns the recipe file.
 */
export function renderImageRecipe(text: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const envFile = join(dir, "environment.yaml");
  writeFileSync(envFile, text);
  const r = sh(process.execPath, [join(REPO, "dist", "lib", "cli", "main.js"), "render", "image-recipe", envFile]);
  const recipe = join(dir, "image-recipe.sh");
  writeFileSync(recipe, r.stdout);
  return recipe;
}

// ---------------------------------------------------------------------------------------------------------
// Cleanup registry

type Cleanup = () => void | Promise<void>;
const cleanups: Cleanup[] = [];
let signalsHooked = false;
export function onCleanup(fn: Cleanup): void {
  cleanups.push(fn);
  if (!signalsHooked) {
    signalsHooked = true;
    // A cancelled run (CI timeout, Ctrl-C) still ends its VMs and servers and removes its namespaces.
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        void cleanupAll().finally(() => process.exit(130));
      });
    }
  }
}
/** Runs every registered cleanup, newest first; errors are reported, not thrown. */
export async function cleanupAll(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop() as Cleanup;
    try {
      await fn();
    } catch (err) {
      console.error(`boot cleanup: ${String(err)}`);
    }
  }
}

/** Starts a long-running process, killed (by pid, whole process group) at cleanup. */
export function startProcess(cmd: string, args: string[], logFile: string): ChildProcess {
  // Output straight to the log file: the process does not depend on this one reading a pipe.
  const log = openSync(logFile, "a");
  const child = spawn(cmd, args, { stdio: ["ignore", log, log], detached: true });
  closeSync(log);
  onCleanup(async () => {
    if (child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      return;
    }
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  });
  return child;
}

// ---------------------------------------------------------------------------------------------------------
// SIMULATED EC2 network

/** Prefix of every namespace of this run: parallel runs do not collide; stale ones are easy to spot. */
export const NS_PREFIX = `ilbboot-${process.pid}`;

export interface Subnet {
  /** e.g. 10.20.1.0/24 */
  readonly cidr: string;
  /** The router's address (base + 1), the DHCP server and DNS resolver. */
  readonly router: string;
}

export interface NetHost {
  readonly ns: string;
  readonly address: string;
}

/**
 * SIMULATED VPC: namespace `router` with a bridge per subnet (DHCP by MAC + DNS by dnsmasq, IMDS relay on
 * 169.254.169.254:80), hosts (client, admin, servers) as namespaces routed through it.
 */
export class SimulatedVpc {
  readonly router = `${NS_PREFIX}-r`;
  private readonly bridges = new Map<string, string>();
  private readonly leases: string[] = [];
  private tapCount = 0;
  private hostCount = 0;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.addNs(this.router);
    this.ip(this.router, "link", "set", "lo", "up");
    sh("ip", ["netns", "exec", this.router, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    // Strict reverse-path filtering in the SIMULATED VPC: a reply that leaves the node by the wrong ENI
    // (source address of the other subnet) is dropped here, as AWS's source/destination check would.
    sh("ip", ["netns", "exec", this.router, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.default.rp_filter=1"]);
  }

  private addNs(ns: string): void {
    sh("ip", ["netns", "add", ns]);
    onCleanup(() => {
      sh("ip", ["netns", "del", ns], { allowFail: true });
    });
  }

  ip(ns: string, ...args: string[]): CmdResult {
    return sh("ip", ["-n", ns, ...args]);
  }

  exec(ns: string, cmd: string, args: string[], timeoutMs = 60_000): Promise<CmdResult> {
    return run("ip", ["netns", "exec", ns, cmd, ...args], timeoutMs);
  }

  /** A subnet: bridge `name` with the router's address (base + 1). */
  addSubnet(name: string, cidr: string): Subnet {
    const [base, len] = cidr.split("/");
    const parts = base.split(".").map(Number);
    const router = `${parts[0]}.${parts[1]}.${parts[2]}.${parts[3] + 1}`;
    this.ip(this.router, "link", "add", name, "type", "bridge");
    this.ip(this.router, "addr", "add", `${router}/${len}`, "dev", name);
    this.ip(this.router, "link", "set", name, "up");
    sh("ip", ["netns", "exec", this.router, "sysctl", "-qw", `net.ipv4.conf.${name}.rp_filter=1`]);
    this.bridges.set(cidr, name);
    return { cidr, router };
  }

  /** A tap on the subnet's bridge (QEMU, started inside the router namespace, opens it by name). */
  addTap(cidr: string): string {
    const tap = `tap${this.tapCount++}`;
    this.ip(this.router, "tuntap", "add", "dev", tap, "mode", "tap");
    this.ip(this.router, "link", "set", tap, "master", this.bridge(cidr));
    this.ip(this.router, "link", "set", tap, "up");
    return tap;
  }

  /** An extra address of the router on a subnet (e.g. the SIMULATED AWS endpoint). */
  addRouterAddress(cidr: string, address: string): void {
    this.ip(this.router, "addr", "add", `${address}/32`, "dev", this.bridge(cidr));
  }

  /** DHCP reservation: the ENI with `mac` gets `address` (EC2 gives each ENI its primary IP by DHCP). */
  reserve(mac: string, address: string): void {
    this.leases.push(`${mac},${address}`);
  }

  private bridge(cidr: string): string {
    const b = this.bridges.get(cidr);
    if (b === undefined) throw new Error(`no subnet ${cidr}`);
    return b;
  }

  /**
   * A host namespace on `cidr` (a veth on its bridge) with `addresses` (the first is the source), default
   * route via the router; or, with `ownSubnet`, a host on a routed network of its own (e.g. the clients).
   */
  addHost(addresses: string[], where: { cidr: string } | { ownSubnet: string }): NetHost {
    const ns = `${NS_PREFIX}-h${this.hostCount++}`;
    this.addNs(ns);
    const outer = `vh${this.hostCount}`;
    sh("ip", ["-n", this.router, "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    this.ip(ns, "link", "set", "lo", "up");
    this.ip(ns, "link", "set", "eth0", "up");
    this.ip(this.router, "link", "set", outer, "up");
    let gateway: string;
    if ("cidr" in where) {
      this.ip(this.router, "link", "set", outer, "master", this.bridge(where.cidr));
      const len = where.cidr.split("/")[1];
      for (const a of addresses) this.ip(ns, "addr", "add", `${a}/${len}`, "dev", "eth0");
      gateway = this.routerOf(where.cidr);
    } else {
      // A routed /24 of its own: the router is .1, the host the given addresses.
      const [base, len] = where.ownSubnet.split("/");
      const p = base.split(".").map(Number);
      gateway = `${p[0]}.${p[1]}.${p[2]}.${p[3] + 1}`;
      this.ip(this.router, "addr", "add", `${gateway}/${len}`, "dev", outer);
      sh("ip", ["netns", "exec", this.router, "sysctl", "-qw", `net.ipv4.conf.${outer}.rp_filter=1`]);
      for (const a of addresses) this.ip(ns, "addr", "add", `${a}/${len}`, "dev", "eth0");
    }
    this.ip(ns, "route", "add", "default", "via", gateway);
    return { ns, address: addresses[0] };
  }

  private routerOf(cidr: string): string {
    const p = cidr.split("/")[0].split(".").map(Number);
    return `${p[0]}.${p[1]}.${p[2]}.${p[3] + 1}`;
  }

  /**
   * dnsmasq on every bridge: DHCP by MAC (the reservations), DNS that resolves every *.amazonaws.com name
   * (regional endpoints, S3 virtual-host buckets) to `awsAddress`, the SIMULATED AWS, and each of `names`
   * (e.g. bench:boot's SIMULATED package mirror) to its address; nothing else.
   */
  startDnsmasq(awsAddress: string, names: Readonly<Record<string, string>> = {}): void {
    // No upstream (--no-resolv): every other name fails, as the VPC has no way to the internet.
    const args = [
      "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces", "--user=root", "--log-dhcp",
      `--pid-file=${join(this.dir, "dnsmasq.pid")}`, `--dhcp-leasefile=${join(this.dir, "dnsmasq.leases")}`,
      `--address=/amazonaws.com/${awsAddress}`, "--log-queries", "--log-facility=-",
      ...Object.entries(names).map(([name, address]) => `--address=/${name}/${address}`),
    ];
    for (const [cidr, bridge] of this.bridges) {
      const net = cidr.split("/")[0];
      const router = this.routerOf(cidr);
      args.push(`--interface=${bridge}`, `--dhcp-range=${bridge},${net},static,255.255.255.0,1h`);
      args.push(`--dhcp-option=tag:${bridge},option:router,${router}`, `--dhcp-option=tag:${bridge},option:dns-server,${router}`);
    }
    for (const l of this.leases) args.push(`--dhcp-host=${l}`);
    startProcess("ip", ["netns", "exec", this.router, requireTool("dnsmasq", "dnsmasq-base"), ...args], join(this.dir, "dnsmasq.log"));
  }

  /**
   * Relays 169.254.169.254:80 in the router namespace to the SIMULATED IMDS on a Unix socket of this
   * process (a small Node relay inside the namespace: the socket file crosses namespaces).
   */
  startImdsRelay(socketPath: string | Record<string, string>): void {
    sh("ip", ["-n", this.router, "addr", "add", "169.254.169.254/32", "dev", "lo"]);
    // One IMDS per instance: with a map, the instance is told apart by its source address (its eth0).
    const paths = typeof socketPath === "string" ? { "*": socketPath } : socketPath;
    const relay = `const net=require("net");const p=${JSON.stringify(paths)};net.createServer(c=>{const s=p[String(c.remoteAddress).replace(/^::ffff:/,"")]??p["*"];if(!s){c.destroy();return;}const u=net.connect(s);c.pipe(u);u.pipe(c);u.on("error",()=>c.destroy());c.on("error",()=>u.destroy());}).listen(80,"169.254.169.254",()=>console.log("relay up"));`;
    startProcess("ip", ["netns", "exec", this.router, process.execPath, "-e", relay], join(this.dir, "imds-relay.log"));
  }
}

// ---------------------------------------------------------------------------------------------------------
// SIMULATED AWS: moto behind TLS

export interface SimulatedAws {
  /** Runs a Python snippet with `s3`/`sm`/`ec2` boto3 clients (region, endpoint and CA set) in the router namespace. */
  python(code: string): Promise<CmdResult>;
}

/**
 * moto (SIMULATED AWS) on `address`:443 inside the router namespace, with a certificate for
 * *.amazonaws.com names signed by the image's test CA (in the guest's trust store).
 */
export async function startSimulatedAws(vpc: SimulatedVpc, img: BootImage, address: string, region: string): Promise<SimulatedAws> {
  const dir = join(vpc.dir, "moto");
  mkdirSync(dir, { recursive: true });
  const key = join(dir, "moto.key");
  const csr = join(dir, "moto.csr");
  const crt = join(dir, "moto.crt");
  const ext = join(dir, "san.ext");
  // A server certificate as strict X.509 verification (Python 3.13 on Debian 13: the agent) requires it.
  writeFileSync(ext, [
    `subjectAltName=DNS:amazonaws.com,DNS:*.amazonaws.com,DNS:*.${region}.amazonaws.com,DNS:*.s3.amazonaws.com,DNS:*.s3.${region}.amazonaws.com,IP:${address}`,
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    "subjectKeyIdentifier=hash",
    "authorityKeyIdentifier=keyid,issuer",
    "",
  ].join("\n"));
  sh("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=SIMULATED AWS (moto)", "-keyout", key, "-out", csr]);
  sh("openssl", ["x509", "-req", "-in", csr, "-CA", img.caCert, "-CAkey", img.caKey, "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt]);
  const python = requireTool("python3", "python3 (with moto, the image's Python 3.11)");
  startProcess("ip", ["netns", "exec", vpc.router, python, "-m", "moto.server", "-H", address, "-p", "443", "-c", crt, "-k", key], join(dir, "moto.log"));
  const preamble = `import boto3\nkw=dict(region_name=${JSON.stringify(region)},endpoint_url="https://${address}",verify=${JSON.stringify(img.caCert)},aws_access_key_id="testing",aws_secret_access_key="testing")\nsm=boto3.client("secretsmanager",**kw)\ns3=boto3.client("s3",**kw)\nec2=boto3.client("ec2",**kw)\nkms=boto3.client("kms",**kw)\n`;
  let scripts = 0;
  const aws: SimulatedAws = {
    // From a file, not `-c`: a seeded bundle (the agent's package inside) is over Linux's 128 KiB per argument.
    python: (code) => {
      const file = join(dir, `aws-${(scripts += 1)}.py`);
      writeFileSync(file, preamble + code);
      return vpc.exec(vpc.router, python, [file], 60_000);
    },
  };
  await waitFor("moto (SIMULATED AWS) to answer", 60_000, async () => {
    const r = await aws.python("sm.list_secrets()\nprint('ok')");
    return r.code === 0 ? true : undefined;
  }, 1000);
  return aws;
}

// ---------------------------------------------------------------------------------------------------------
// QEMU

/** Line-oriented JSON client (QMP and the guest agent both speak newline-separated JSON). */
class JsonLineClient {
  private buffer = "";
  private waiters: Array<(line: string) => void> = [];
  private lines: string[] = [];
  private constructor(private readonly sock: Socket) {
    sock.on("data", (d: Buffer) => {
      this.buffer += d.toString("utf8");
      let i: number;
      while ((i = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, i).trim();
        this.buffer = this.buffer.slice(i + 1);
        if (line === "") continue;
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    sock.on("error", () => undefined);
  }

  static connect(path: string, timeoutMs: number): Promise<JsonLineClient> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(path);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect ${path}: timeout`));
      }, timeoutMs);
      sock.once("connect", () => {
        clearTimeout(timer);
        resolve(new JsonLineClient(sock));
      });
      sock.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** The next JSON message (skipping QMP events), or a timeout error. */
  next(timeoutMs: number): Promise<Record<string, unknown>> {
    const take = (): Promise<string> => {
      const l = this.lines.shift();
      if (l !== undefined) return Promise.resolve(l);
      return new Promise((resolve, reject) => {
        const w = (line: string): void => {
          clearTimeout(timer);
          resolve(line);
        };
        const timer = setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(new Error("no answer"));
        }, timeoutMs);
        this.waiters.push(w);
      });
    };
    return take().then((line) => {
      const msg = JSON.parse(line) as Record<string, unknown>;
      if ("event" in msg) return this.next(timeoutMs);
      return msg;
    });
  }

  send(msg: unknown): void {
    this.sock.write(JSON.stringify(msg) + "\n");
  }

  close(): void {
    this.sock.destroy();
  }
}

export interface GuestExec {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface NicSpec {
  readonly mac: string;
  /** The tap in the router namespace. */
  readonly tap: string;
  /** PCI slot: 5 → ens5 (EC2's first ENI), 6 → ens6. */
  readonly slot: number;
}

export interface VmSpec {
  readonly name: string;
  readonly image: BootImage;
  readonly dir: string;
  /** Namespace QEMU runs in (its taps are there). */
  readonly ns: string;
  /** What EC2 passes as user data: the bytes of `userDataBase64` (gzip when over 16 KB). */
  readonly userData: Buffer;
  /** NICs present at start. */
  readonly nics: readonly NicSpec[];
  /** NICs hot-plugged later ({@link Vm.hotplug}); their taps exist from the start. */
  readonly laterNics?: readonly NicSpec[];
  readonly memoryMiB?: number;
  /** Emulated CPUs (default 2, as a c6i.large); two TCG guests on 2 host cores run better with 1 each. */
  readonly cpus?: number;
}

/** "kvm" only when asked (IMAGING_LB_BOOT_ACCEL=kvm): /dev/kvm on the CI hosts runs only special kernels. */
export function accelerator(): string {
  return process.env.IMAGING_LB_BOOT_ACCEL ?? "tcg";
}

/** A QEMU VM: QMP monitor and guest agent on Unix sockets, serial console to a file. */
export class Vm {
  readonly qmpPath: string;
  readonly qgaPath: string;
  readonly serialLog: string;
  startedAt = 0;
  private process?: ChildProcess;

  constructor(readonly spec: VmSpec) {
    mkdirSync(spec.dir, { recursive: true });
    this.qmpPath = join(spec.dir, "qmp.sock");
    this.qgaPath = join(spec.dir, "qga.sock");
    this.serialLog = join(spec.dir, "serial.log");
  }

  /** The NoCloud seed ISO: user-data exactly as EC2 passes it, meta-data with an instance id. */
  private seed(): string {
    const dir = join(this.spec.dir, "seed");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "user-data"), this.spec.userData);
    writeFileSync(join(dir, "meta-data"), `instance-id: i-simulated-${this.spec.name}\nlocal-hostname: ip-simulated\n`);
    const iso = join(this.spec.dir, "seed.iso");
    sh("xorriso", ["-as", "mkisofs", "-quiet", "-output", iso, "-volid", "cidata", "-joliet", "-rock", join(dir, "user-data"), join(dir, "meta-data")]);
    return iso;
  }

  start(): void {
    const disk = join(this.spec.dir, "disk.qcow2");
    sh("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", this.spec.image.rootfs, disk]);
    const iso = this.seed();
    const args = [
      "-name", this.spec.name, "-nodefaults", "-no-user-config", "-display", "none",
      "-machine", `pc,accel=${accelerator()}`, "-cpu", "max", "-smp", String(this.spec.cpus ?? 2), "-m", String(this.spec.memoryMiB ?? 1024),
      "-kernel", this.spec.image.kernel, "-initrd", this.spec.image.initrd,
      "-append", "root=/dev/vda rw console=ttyS0 systemd.show_status=1",
      "-drive", `file=${disk},if=none,id=root,format=qcow2`, "-device", "virtio-blk-pci,drive=root,addr=0x3",
      "-drive", `file=${iso},if=none,id=seed,format=raw,readonly=on`, "-device", "virtio-blk-pci,drive=seed,addr=0x4",
      "-device", "virtio-rng-pci,addr=0x9",
      "-chardev", `socket,id=qga0,path=${this.qgaPath},server=on,wait=off`,
      "-device", "virtio-serial-pci,addr=0x8", "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
      "-qmp", `unix:${this.qmpPath},server=on,wait=off`,
      "-serial", `file:${this.serialLog}`,
    ];
    for (const [i, nic] of [...this.spec.nics, ...(this.spec.laterNics ?? [])].entries()) {
      args.push("-netdev", `tap,id=n${i},ifname=${nic.tap},script=no,downscript=no`);
      if (i < this.spec.nics.length) args.push("-device", `virtio-net-pci,netdev=n${i},mac=${nic.mac},addr=0x${nic.slot.toString(16)}`);
    }
    this.startedAt = Date.now();
    this.process = startProcess("ip", ["netns", "exec", this.spec.ns, requireTool("qemu-system-x86_64", "qemu-system-x86"), ...args], join(this.spec.dir, "qemu.log"));
  }

  /** One QMP command on a fresh connection. */
  async qmp(execute: string, args?: Record<string, unknown>): Promise<Record<string, unknown>> {
    const c = await JsonLineClient.connect(this.qmpPath, 5000);
    try {
      await c.next(10_000); // greeting
      c.send({ execute: "qmp_capabilities" });
      await c.next(10_000);
      c.send(args === undefined ? { execute } : { execute, arguments: args });
      const answer = await c.next(30_000);
      if ("error" in answer) throw new Error(`QMP ${execute}: ${JSON.stringify(answer.error)}`);
      return answer;
    } finally {
      c.close();
    }
  }

  /** EC2 attaching an ENI after boot: PCI hot-plug of a virtio NIC through the QEMU monitor. */
  async hotplug(index: number): Promise<void> {
    const nic = this.spec.laterNics?.[index];
    if (nic === undefined) throw new Error(`no later NIC ${index}`);
    const netdev = `n${this.spec.nics.length + index}`;
    await this.qmp("device_add", { driver: "virtio-net-pci", id: `hot${index}`, netdev, mac: nic.mac, bus: "pci.0", addr: `0x${nic.slot.toString(16)}` });
  }

  /**
   * A synchronised guest-agent connection. QEMU serves one client at a time, so a connection that gets no
   * answer (the agent is not up yet) is closed at once: a leaked one would block every later command.
   */
  private async agent(timeoutMs: number): Promise<JsonLineClient> {
    const c = await JsonLineClient.connect(this.qgaPath, 5000);
    try {
      // Resynchronise: stale answers of an earlier connection may be buffered in the channel.
      const id = Math.floor(Math.random() * 1e9);
      c.send({ execute: "guest-sync", arguments: { id } });
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const msg = await c.next(Math.max(1000, deadline - Date.now()));
        if (msg.return === id) return c;
      }
    } catch (err) {
      c.close();
      throw err;
    }
  }

  /** Runs `script` with bash in the guest through qemu-guest-agent (test channel only). */
  async exec(script: string, timeoutMs = 120_000): Promise<GuestExec> {
    const c = await this.agent(10_000);
    try {
      c.send({ execute: "guest-exec", arguments: { path: "/bin/bash", arg: ["-c", script], "capture-output": true } });
      const started = await c.next(10_000);
      if ("error" in started) throw new Error(`guest-exec: ${JSON.stringify(started.error)}`);
      const pid = (started.return as { pid: number }).pid;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        c.send({ execute: "guest-exec-status", arguments: { pid } });
        const st = (await c.next(10_000)).return as { exited: boolean; exitcode?: number; "out-data"?: string; "err-data"?: string };
        if (st.exited) {
          return {
            code: st.exitcode ?? -1,
            stdout: Buffer.from(st["out-data"] ?? "", "base64").toString("utf8"),
            stderr: Buffer.from(st["err-data"] ?? "", "base64").toString("utf8"),
          };
        }
        if (Date.now() > deadline) throw new Error(`guest command timed out after ${timeoutMs / 1000}s: ${script}`);
        await sleep(500);
      }
    } finally {
      c.close();
    }
  }

  /** `exec` that must succeed; returns stdout. */
  async check(script: string, timeoutMs?: number): Promise<string> {
    const r = await this.exec(script, timeoutMs);
    if (r.code !== 0) throw new Error(`guest: '${script}' exited ${r.code}: ${r.stderr.trim()} ${r.stdout.trim()}`);
    return r.stdout;
  }

  /** Waits until the guest agent answers; returns the boot id. */
  async waitForAgent(timeoutMs: number): Promise<string> {
    return waitFor(`the guest agent of ${this.spec.name} (serial log: ${this.serialLog})`, timeoutMs, async () => {
      if (this.process?.exitCode !== null && this.process?.exitCode !== undefined) {
        throw new Error(`QEMU exited ${this.process.exitCode}: ${readFileSync(join(this.spec.dir, "qemu.log"), "utf8")}`);
      }
      const r = await this.exec("cat /proc/sys/kernel/random/boot_id", 20_000);
      return r.code === 0 ? r.stdout.trim() : undefined;
    }, 3000);
  }

  /** A clean reboot requested through the guest agent (systemd shuts down and the VM restarts). */
  async reboot(): Promise<void> {
    const c = await this.agent(10_000);
    try {
      c.send({ execute: "guest-shutdown", arguments: { mode: "reboot" } });
    } finally {
      await sleep(500);
      c.close();
    }
  }

  serial(): string {
    return existsSync(this.serialLog) ? readFileSync(this.serialLog, "utf8") : "";
  }
}

/** The first secret ARN of `kind` (`pem`: a certificate, `env`: the stats password) in a node's bundle secrets list. */
export function bundleSecret(artifacts: { readonly bundle: { readonly files: ReadonlyArray<{ readonly path: string; readonly content: string }> } }, kind: "pem" | "env"): string {
  const list = artifacts.bundle.files.find((f) => f.path === "/etc/imaging-lb/secrets.list")?.content ?? "";
  const line = list.split("\n").find((l) => l.startsWith(`${kind} `));
  if (!line) throw new Error(`the bundle's secrets list names no ${kind} secret`);
  return kind === "pem" ? line.split(" ")[1] : line.split(" ")[2];
}
