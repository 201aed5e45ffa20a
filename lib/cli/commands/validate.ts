/**
 * The strict checks of `imaging-lb validate --strict` (the command is in ../main.ts). Besides loading each
 * file, `--strict`:
 * - flags the starter's placeholders (`123456789012`, `# CHANGE ME`) left in the file;
 * - runs the real `haproxy -dW -c` on the rendered haproxy.cfg of every node (warnings are errors), with
 *   throwaway self-signed certificates in place of the PEMs the nodes fetch from Secrets Manager; a
 *   rejected `extraDirectives` line is reported at its place in the environment file;
 * - runs the real `keepalived -t` on each pair node's keepalived.conf, inside a private network and mount
 *   namespace (`unshare`, root only) holding the interfaces and script users the configuration names,
 *   so the check does not depend on this machine's interfaces or users.
 * A tool that is not installed is reported as skipped (stdout), not as a problem.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { nodeArtifacts } from "../../node/artifacts";
import { ConfigProblem, formatProblem } from "../../config/errors";
import { locateProblems, readEnvironmentFile } from "../../config/parse";
import { ResolvedEnvironment, STATS_PASSWORD_VAR, usesKeepalived } from "../../config/model";
import { renderHaproxy } from "../../haproxy/build";
import { egressSummary } from "../../plan/egress";
import { isNlb } from "../../plan/nlb";
import { errorPageFiles } from "../../haproxy/error-pages";

/** Output streams of a command (same shape as the CLI's). */
export interface ValidateIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** Placeholders `imaging-lb init` writes for the user to replace. */
export const PLACEHOLDERS: ReadonlyArray<{ readonly pattern: RegExp; readonly what: string }> = [
  { pattern: /123456789012/g, what: "the starter's placeholder AWS account id 123456789012: put your account's id in the ARN" },
  { pattern: /#\s*CHANGE ME/gi, what: "a `# CHANGE ME` mark of the starter: replace the value with your site's and remove the mark" },
];

/** Where an executable is on PATH, or undefined. */
export function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir) continue;
    const path = join(dir, command);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The placeholders left in the file's text, each at its line and column. Whole-line comments are not
 * values: the starter's header, which explains the `# CHANGE ME` marks, and commented-out examples.
 */
export function placeholderProblems(file: string, text: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trimStart().startsWith("#")) return;
    for (const { pattern, what } of PLACEHOLDERS) {
      for (const m of line.matchAll(pattern)) problems.push({ file, line: i + 1, column: (m.index ?? 0) + 1, path: "", message: `placeholder: ${what}` });
    }
  });
  return problems;
}

/** Result of one strict check: problems, and notes for stdout (what ran, what was skipped). */
interface StrictResult {
  readonly problems: ConfigProblem[];
  readonly notes: string[];
}

/** `haproxy -dW -c` on the rendered configuration of every node. */
export function haproxyStrict(file: string, text: string, env: ResolvedEnvironment): StrictResult {
  const haproxy = which("haproxy");
  if (!haproxy) return { problems: [], notes: ["haproxy -dW -c skipped: haproxy is not installed (Debian/Ubuntu package haproxy)"] };
  const dir = mkdtempSync(join(tmpdir(), "imaging-lb-strict-"));
  try {
    const openssl = env.certificates.length > 0 ? which("openssl") : undefined;
    if (env.certificates.length > 0 && !openssl) {
      return { problems: [], notes: ["haproxy -dW -c skipped: openssl is not installed (needed for throwaway certificates in place of the Secrets Manager PEMs)"] };
    }
    for (const c of env.certificates) {
      const key = join(dir, `${c.name}.key`);
      const crt = join(dir, `${c.name}.crt`);
      const made = spawnSync(openssl!, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", `/CN=${c.name}.imaging-lb.invalid`, "-keyout", key, "-out", crt], { encoding: "utf8" });
      if (made.status !== 0) throw new Error(`openssl could not make a throwaway certificate: ${made.stderr}`);
      writeFileSync(join(dir, `${c.name}.pem`), readFileSync(crt, "utf8") + readFileSync(key, "utf8"));
    }
    // The node's agent keeps the server-state file; here an empty one (its version line) stands in.
    const serverStateFile = join(dir, "server-state");
    writeFileSync(serverStateFile, "1\n");
    // The error pages and maintenance map the bundle installs under /etc/haproxy/errors, written here.
    const errorDir = join(dir, "errors");
    for (const f of errorPageFiles(env)) {
      mkdirSync(dirname(join(errorDir, f.name)), { recursive: true });
      writeFileSync(join(errorDir, f.name), f.content);
    }
    const problems: ConfigProblem[] = [];
    const peers = env.nodes.length >= 2 ? env.nodes.map((n) => n.name) : [undefined];
    const version = /HAProxy version (\S+)/i.exec(spawnSync(haproxy, ["-v"], { encoding: "utf8" }).stdout ?? "")?.[1] ?? "";
    for (const peer of peers) {
      // vipMode nlb: each node listens on its own addresses of the VIPs, so each has its own haproxy.cfg.
      const cfg = renderHaproxy(env, { certBase: dir, serverStateFile, errorDir, ...(isNlb(env) ? { node: peer } : {}) });
      const cfgFile = join(dir, "haproxy.cfg");
      writeFileSync(cfgFile, cfg);
      const cfgLines = cfg.split("\n");
      const run = spawnSync(haproxy, [...(peer ? ["-L", peer] : []), "-dW", "-c", "-f", cfgFile], {
        encoding: "utf8",
        cwd: dir,
        env: { ...process.env, [STATS_PASSWORD_VAR]: "imaging-lb-strict-check" },
      });
      const output = `${run.stdout}${run.stderr}`;
      if (run.status === 0) continue;
      const alerts = output.split("\n").filter((l) => /\[(ALERT|WARNING)\]/.test(l) && !/Fatal errors found|Error\(s\) found in configuration file/.test(l));
      const on = peer ? ` on node ${peer}` : "";
      for (const alert of alerts.length > 0 ? alerts : [output.trim()]) {
        const message = alert.replace(/^\[(ALERT|WARNING)\]\s*\(\d+\)\s*:\s*/, "").replace(cfgFile, "haproxy.cfg");
        const line = Number(/\[[^\]]*haproxy\.cfg:(\d+)\]/.exec(alert)?.[1] ?? /haproxy\.cfg:(\d+)/.exec(message)?.[1] ?? NaN);
        const source = Number.isNaN(line) ? undefined : cfgLines[line - 1]?.trim();
        const directive = source === undefined ? undefined : findExtraDirective(env, source);
        if (directive) {
          problems.push(...locateProblems(file, text, [{ path: directive, message: `haproxy -dW -c${on} rejects this directive: ${message.replace(/^config : parsing \[[^\]]*\] : /, "")}` }]));
        } else {
          problems.push({ file, path: "", message: `haproxy -dW -c${on} rejects the rendered haproxy.cfg: ${message}${source ? ` (line: ${source})` : ""}` });
        }
      }
    }
    const unique = dedupe(problems);
    return { problems: unique, notes: unique.length === 0 ? [`haproxy -dW -c: ok${version ? ` (HAProxy ${version} on this machine)` : ""}`] : [] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The `services.<name>.extraDirectives.<side>.<i>` path of a rendered line, when it is one. */
function findExtraDirective(env: ResolvedEnvironment, line: string): Array<string | number> | undefined {
  for (const s of env.services) {
    for (const side of ["frontend", "backend"] as const) {
      const i = s.extraDirectives[side].findIndex((d) => d.trim() === line);
      if (i >= 0) return ["services", s.name, "extraDirectives", side, i];
    }
  }
  return undefined;
}

const dedupe = (problems: ConfigProblem[]) => {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = formatProblem(p).replace(/ on node \S+/, "");
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
};

/** keepalived 2.2.7 ends its own config test with SIGTERM when script_user is not root (fixed in 2.2.8). */
const SCRIPT_USER_BUG_VERSION = "2.2.7";

/** `keepalived -t` on each pair node's keepalived.conf, in a private network and mount namespace. */
export function keepalivedStrict(file: string, env: ResolvedEnvironment): StrictResult {
  if (!usesKeepalived(env)) return { problems: [], notes: [] };
  const keepalived = which("keepalived");
  if (!keepalived) return { problems: [], notes: ["keepalived -t skipped: keepalived is not installed (Debian/Ubuntu package keepalived)"] };
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    // A user namespace would do without root, but in one the system's files belong to an unmapped user:
    // keepalived then calls its check scripts insecure and fails the test whatever the configuration.
    return { problems: [], notes: ["keepalived -t skipped: it needs root here (run validate --strict with sudo to include it)"] };
  }
  const unshare = which("unshare");
  const ip = which("ip");
  if (!unshare || !ip) return { problems: [], notes: ["keepalived -t skipped: it needs unshare (util-linux) and ip (iproute2) to give the check the interfaces the configuration names"] };
  const version = /Keepalived v(\S+)/.exec(spawnSync(keepalived, ["--version"], { encoding: "utf8" }).stderr ?? "")?.[1] ?? "";
  const dir = mkdtempSync(join(tmpdir(), "imaging-lb-strict-"));
  const problems: ConfigProblem[] = [];
  const notes: string[] = [];
  try {
    for (const node of env.nodes) {
      const text = nodeArtifacts(env, node.name).keepalivedConf!;
      let run = keepalivedTest(dir, unshare, keepalived, text, node.internalAddress);
      let patched = false;
      if (run.signal === "SIGTERM" && version === SCRIPT_USER_BUG_VERSION) {
        run = keepalivedTest(dir, unshare, keepalived, text.replace(/^(\s*script_user)\s+\S+$/m, "$1 root"), node.internalAddress);
        patched = true;
      }
      if (run.error) {
        notes.push(`keepalived -t skipped: ${run.error}`);
        break;
      }
      const complaints = run.stderr.split("\n").filter((l) => l.trim() !== "");
      if (run.status !== 0 || complaints.length > 0) {
        for (const c of complaints.length > 0 ? complaints : [`exit status ${run.status ?? run.signal}`]) {
          problems.push({ file, path: "", message: `keepalived -t rejects node ${node.name}'s keepalived.conf: ${c.replace(/\(\S+keepalived\.conf: /, "(")}` });
        }
      } else {
        notes.push(`keepalived -t: ok on ${node.name}${version ? ` (keepalived ${version} on this machine${patched ? `, checked with script_user root: ${version} kills its own config test otherwise` : ""})` : ""}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { problems, notes };
}

interface KeepalivedRun {
  readonly status: number | null;
  readonly signal: string | null;
  readonly stderr: string;
  readonly error?: string;
}

/**
 * `keepalived -t -f` in a new network and mount namespace (root only): the
 * interfaces the configuration names exist there (veth, the node's address on the VRRP interface), and
 * /etc/passwd is a copy listing its script users. Nothing on this machine changes.
 */
export function keepalivedTest(dir: string, unshare: string, keepalived: string, text: string, address: string): KeepalivedRun {
  const conf = join(dir, "keepalived.conf");
  writeFileSync(conf, text);
  const users = [...text.matchAll(/^\s*script_user\s+(\S+)/gm)].map((m) => m[1]).filter((u) => u !== "root");
  const passwd = join(dir, "passwd");
  writeFileSync(passwd, readFileSync("/etc/passwd", "utf8") + users.map((u, i) => `${u}:x:${64900 + i}:65534:imaging-lb strict check:/nonexistent:/usr/sbin/nologin\n`).join(""));
  const vrrp = /^\s*interface\s+(\S+)/m.exec(text)?.[1] ?? "eth0";
  const names = [...new Set([vrrp, ...[...text.matchAll(/\bdev\s+(\S+)/g)].map((m) => m[1])])];
  const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  const script = [
    ...names.map((n, i) => `ip link add ${q(n)} type veth peer name ilbstrict${i} && ip link set ${q(n)} up`),
    `ip addr add ${q(`${address}/32`)} dev ${q(vrrp)}`,
    `mount --bind ${q(passwd)} /etc/passwd`,
    `exec ${q(keepalived)} -t -f ${q(conf)}`,
  ].join(" && ");
  const run = spawnSync(unshare, ["--net", "--mount", "sh", "-c", script], { encoding: "utf8" });
  if (run.status !== 0 && run.signal === null && /unshare:|Operation not permitted|Unknown device type|RTNETLINK/.test(run.stderr)) {
    return { status: run.status, signal: null, stderr: run.stderr, error: `could not make a private namespace for the check (${run.stderr.trim().split("\n")[0]})` };
  }
  return { status: run.status, signal: run.signal, stderr: run.stderr };
}

/** `validate --strict` on one loaded file: placeholders, haproxy, keepalived. */
export function strictChecks(file: string, env: ResolvedEnvironment): StrictResult {
  const text = readEnvironmentFile(file);
  const h = haproxyStrict(file, text, env);
  const k = keepalivedStrict(file, env);
  return { problems: [...placeholderProblems(file, text), ...h.problems, ...k.problems], notes: [egressSummary(env), ...h.notes, ...k.notes] };
}
