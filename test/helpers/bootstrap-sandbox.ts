/**
 * The bootstrap sandbox: the rendered user data's files written under a temp root as cloud-init's
 * `write_files` would, `IMAGING_LB_ROOT=<root>`, and a PATH of recording stubs for the commands that change
 * the host plus an allow-list of harmless real tools (see test/bootstrap-sandbox.test.ts). Shared by the
 * sandbox tests and the renderer's tests that check what the scripts write.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { FakeEni } from "./fake-imds";
import { HUNG_AFTER_MS, requireTool } from "./tools";

export const MAC0 = "0a:00:00:00:00:01";
export const MAC1 = "0a:00:00:00:00:02";
export const ENI0: FakeEni = { mac: MAC0, deviceNumber: 0, localIpv4s: ["10.0.1.10"], subnetCidr: "10.0.1.0/24" };
export const ENI1: FakeEni = { mac: MAC1, deviceNumber: 1, localIpv4s: ["10.0.2.10", "10.0.2.50"], subnetCidr: "10.0.2.0/24" };

/** Commands that change the host: recorded, never run. */
export const RECORDED = [
  "apt-get", "add-apt-repository", "dnf", "snap", "systemctl", "sysctl", "netplan", "networkctl", "udevadm",
  "hostnamectl", "dpkg", "amazon-cloudwatch-agent-ctl", "useradd",
];
/** Real tools the scripts may use: they only read, or write below the sandbox root. */
export const ALLOWED = [
  "bash", "cat", "chmod", "cmp", "cp", "curl", "cut", "date", "dirname", "flock", "grep", "head", "mkdir",
  "mktemp", "mv", "rm", "sed", "sleep", "stat", "tr", "touch",
];

export const RECORD = `{ printf '%s' "\${0##*/}"; printf ' %s' "$@"; printf '\\n'; } >>"$STUB_LOG"\n`;
export const STUBS: Record<string, string> = {
  aws: `${RECORD}case "$1 $2" in
  "secretsmanager get-secret-value")
    case "$*" in
      *stats-password*) echo "s3cr3t+/=Pw" ;;
      *stats-port*) echo "18404" ;;
      *) cat "$STUB_PEM" ;;
    esac ;;
  "s3 cp") : >"\${!#}" ;;
  "s3api put-object")
    while [ "$#" -gt 0 ] && [ "$1" != --body ]; do shift; done
    cp "$2" "$STUB_STATE/put-object.body" ;;
esac
`,
  // State: $STUB_STATE/ip-rules (one selector per line) and $STUB_STATE/links ("name state mac" lines).
  ip: `${RECORD}rules="$STUB_STATE/ip-rules" links="$STUB_STATE/links"
touch "$rules" "$links"
case "$*" in
  "rule show "*) shift 2; grep -xF -- "$*" "$rules" || true ;;
  "rule add "*) shift 2; echo "$*" >>"$rules" ;;
  "-br link show") cat "$links" ;;
  "link set dev "*" name "*) sed -i "s/^$4 /$6 /" "$links" ;;
esac
`,
  // State: $STUB_STATE/iptables ("chain T NAME" and "rule T SPEC" lines).
  iptables: `${RECORD}state="$STUB_STATE/iptables"
touch "$state"
table="$2" op="$3"
shift 3
case "$op" in
  -n) grep -qxF "chain $table $2" "$state" ;;
  -N) if grep -qxF "chain $table $1" "$state"; then exit 1; fi; echo "chain $table $1" >>"$state" ;;
  -C) grep -qxF "rule $table $*" "$state" ;;
  -A) echo "rule $table $*" >>"$state" ;;
esac
`,
  haproxy: `${RECORD}exec "$REAL_HAPROXY" "$@"\n`,
  // No system user exists yet.
  id: `${RECORD}exit 1\n`,
  dpkg: `${RECORD}if [ "$1" = --print-architecture ]; then echo amd64; fi\n`,
  // STUB_INSTALLED=1: every package is installed (a pre-baked image) but those named in STUB_MISSING; otherwise none is.
  "dpkg-query": `${RECORD}case " \${STUB_MISSING:-} " in *" \${!#} "*) exit 1 ;; esac
if [ "\${STUB_INSTALLED:-0}" = 1 ]; then printf 'install ok installed'; else exit 1; fi\n`,
  // STUB_APT_FAILURES=N: the first N apt-get calls fail as during a mirror outage (SIMULATED).
  "apt-get": `${RECORD}left="$(cat "$STUB_STATE/apt-failures" 2>/dev/null || echo "\${STUB_APT_FAILURES:-0}")"
if [ "$left" -gt 0 ]; then
  echo $((left - 1)) >"$STUB_STATE/apt-failures"
  echo "E: Failed to fetch http://deb.debian.org/debian/dists/trixie/InRelease (SIMULATED outage)" >&2
  exit 100
fi
echo 0 >"$STUB_STATE/apt-failures"
`,
};

export interface Sandbox {
  readonly root: string;
  readonly env: NodeJS.ProcessEnv;
  readonly log: string;
  readonly state: string;
}

/** Builds the stub and allow-list PATH and writes the user data's files under a fresh root. */
export function makeSandbox(dir: string, userData: string, pem: string): Sandbox {
  const root = join(dir, "root");
  const stubs = join(dir, "stubs");
  const real = join(dir, "real");
  const state = join(dir, "state");
  for (const d of [root, stubs, real, state]) mkdirSync(d, { recursive: true });
  for (const name of RECORDED) writeFileSync(join(stubs, name), `#!/bin/bash\n${RECORD}`, { mode: 0o755 });
  for (const [name, body] of Object.entries(STUBS)) writeFileSync(join(stubs, name), `#!/bin/bash\n${body}`, { mode: 0o755 });
  for (const tool of ALLOWED) symlinkSync(requireTool(tool, tool === "curl" ? "curl" : "coreutils"), join(real, tool));
  writeCloudInitFiles(root, userData);
  // SIMULATED agent: the bootstrap's last step runs it; the real one is tested against S3 and a real HAProxy
  // in test/e2e/rollout.e2e.ts. This one records its call and the settings the bootstrap wrote for it.
  writeFileSync(
    join(root, "usr/local/sbin/imaging-lb-agent"),
    `#!/bin/bash\n${RECORD}cp "$IMAGING_LB_ROOT/etc/imaging-lb/agent.env" "$STUB_STATE/agent.env.seen"\nexit "\${STUB_AGENT_EXIT:-0}"\n`,
    { mode: 0o755 },
  );
  const log = join(dir, "commands.log");
  writeFileSync(log, "");
  return {
    root,
    log,
    state,
    env: {
      PATH: `${stubs}:${real}`,
      IMAGING_LB_ROOT: root,
      IMAGING_LB_ENI_POLL_SECONDS: "0.2",
      IMAGING_LB_ENI_WAIT_SECONDS: "15",
      STUB_LOG: log,
      STUB_STATE: state,
      STUB_PEM: pem,
      REAL_HAPROXY: requireTool("haproxy", "haproxy"),
    },
  };
}

/** What cloud-init's write_files does, below `root`. */
export function writeCloudInitFiles(root: string, userData: string): void {
  const doc = parse(userData) as { write_files: Array<{ path: string; permissions: string; content: string }> };
  for (const file of doc.write_files) {
    const target = join(root, file.path);
    mkdirSync(join(target, ".."), { recursive: true });
    writeFileSync(target, file.content);
    chmodSync(target, parseInt(file.permissions, 8));
  }
}

export interface Run {
  readonly code: number | null;
  readonly stderr: string;
  /** The commands this run recorded. */
  readonly commands: string[];
}

/** Runs the bootstrap, or another of its scripts in /usr/local/sbin, asynchronously (the SIMULATED IMDS lives in this process's event loop). */
export function runBootstrap(sb: Sandbox, imdsUrl: string, extraEnv: NodeJS.ProcessEnv = {}, script = "imaging-lb-bootstrap"): Promise<Run> {
  const before = readFileSync(sb.log, "utf8").split("\n").filter(Boolean).length;
  return new Promise((resolve, reject) => {
    const child = spawn(requireTool("bash", "bash"), [join(sb.root, "usr/local/sbin", script)], {
      env: { ...sb.env, IMAGING_LB_IMDS_URL: imdsUrl, ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), HUNG_AFTER_MS); // a safety net for a hung run, not the speed budget
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const commands = readFileSync(sb.log, "utf8").split("\n").filter(Boolean).slice(before);
      resolve({ code, stderr, commands });
    });
  });
}

/** path → "mode sha256" of every file below `root`. */
export function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else {
        const hash = createHash("sha256").update(readFileSync(full)).digest("hex");
        out.set(full.slice(root.length), `${(statSync(full).mode & 0o7777).toString(8)} ${hash}`);
      }
    }
  };
  walk(root);
  return out;
}

export const modeOf = (path: string): string => (statSync(path).mode & 0o777).toString(8);
