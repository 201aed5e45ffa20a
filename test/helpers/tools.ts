/**
 * Test helpers for tests that need real tools (haproxy, keepalived, dcmtk, Orthanc, ...).
 *
 * A missing tool is a failure, never a skip: `.ci/run` installs every tool the tests use, so a missing
 * one means the install step is broken and the run must go red.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** Returns the absolute path of `command`, or throws naming the Debian package that provides it. */
export function requireTool(command: string, debianPackage: string): string {
  const found = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" });
  const path = found.stdout.trim();
  if (found.status !== 0 || path === "") {
    throw new Error(
      `required tool '${command}' is not installed: install the Debian package '${debianPackage}' ` +
        `(.ci/run installs it); tests that need real tools fail rather than skip`,
    );
  }
  return path;
}

/**
 * How long a test lets a command it started run before killing it as hung: a safety net that turns a hang
 * into a failure, not a speed budget. It is generous because the same command takes many times longer on a
 * loaded machine: the takeover script's AWS CLI runs at niceness +10, and with two CPU-bound processes at
 * niceness 0 beside it one of its calls took about 10 s instead of 1.
 */
export const HUNG_AFTER_MS = 5 * 60_000;

/** The system Python, which has Debian's python3-hl7 (a pyenv `python3` earlier on PATH does not). */
export const SYSTEM_PYTHON = "/usr/bin/python3";

/** A throwaway directory removed by the returned `cleanup`. */
export function tempDir(prefix: string): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), `imaging-lb-${prefix}-`));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Writes `files` (relative path → content) below `root`, creating folders. */
export function writeTree(root: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const target = join(root, rel);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
  }
}

/** A self-signed certificate + key concatenated as HAProxy wants a `crt` PEM, made with openssl. */
export function makeSelfSignedPem(dir: string, commonName = "imaging-lb.test", days = 2): string {
  const openssl = requireTool("openssl", "openssl");
  const key = join(dir, `${commonName}.key`);
  const crt = join(dir, `${commonName}.crt`);
  execFileSync(openssl, [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", String(days), "-subj", `/CN=${commonName}`,
    "-addext", `subjectAltName=DNS:${commonName},IP:127.0.0.1`,
    "-keyout", key, "-out", crt,
  ], { stdio: "pipe" });
  const pem = join(dir, `${commonName}.pem`);
  execFileSync("sh", ["-c", `cat "${crt}" "${key}" > "${pem}"`]);
  return pem;
}
