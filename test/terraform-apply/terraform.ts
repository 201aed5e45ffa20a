/**
 * The real Terraform CLI and the real AWS provider for the apply suite: provider installation from a
 * filesystem mirror when one is present (else the registry, as `terraform init` does everywhere), a shared
 * plugin cache, and the emulator copy of a synthesized stack — every change made to that copy is listed
 * in {@link EmulatorCopy.deviations} with its reason, and the test prints them.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { requireTool } from "../helpers/tools";

const execFileAsync = promisify(execFile);

/** Where a Terraform provider mirror is looked for (the folder holding `registry.terraform.io`). */
export const MIRROR_CANDIDATES = [
  process.env.IMAGING_LB_TF_MIRROR,
  "/opt/tf-plugins",
  "/usr/local/share/terraform/plugins",
  "/usr/share/terraform/plugins",
  join(process.env.HOME ?? "/root", ".terraform.d", "plugins"),
].filter((p): p is string => Boolean(p));

/** How the AWS provider is installed for this run. */
export interface ProviderSource {
  /** The mirror root, or undefined for the registry. */
  readonly mirror?: string;
  /** The provider version pinned in the copies (the mirror's; the stack's own pin for the registry). */
  readonly version?: string;
  /** The CLI configuration file (TF_CLI_CONFIG_FILE). */
  readonly cliConfigFile: string;
}

/** Finds the AWS provider mirror (highest version) and writes the CLI configuration. */
export function providerSource(workRoot: string): ProviderSource {
  requireTool("terraform", "terraform (HashiCorp's apt repository, or the release zip)");
  const pluginCache = join(tmpdir(), "imaging-lb-terraform-plugin-cache");
  mkdirSync(pluginCache, { recursive: true });
  let mirror: string | undefined;
  let version: string | undefined;
  for (const root of MIRROR_CANDIDATES) {
    const dir = join(root, "registry.terraform.io", "hashicorp", "aws");
    if (!existsSync(dir)) continue;
    const versions = readdirSync(dir)
      .filter((v) => /^\d+\.\d+\.\d+$/.test(v) && existsSync(join(dir, v, "linux_amd64")))
      .sort((a, b) => compareVersions(b, a));
    if (versions.length > 0) {
      mirror = root;
      version = versions[0];
      break;
    }
  }
  const lines = [`plugin_cache_dir = "${pluginCache}"`];
  if (mirror) {
    lines.push("provider_installation {", `  filesystem_mirror {`, `    path    = "${mirror}"`, `    include = ["registry.terraform.io/hashicorp/aws"]`, "  }", "  direct {", `    exclude = ["registry.terraform.io/hashicorp/aws"]`, "  }", "}");
  }
  const cliConfigFile = join(workRoot, "terraform.rc");
  writeFileSync(cliConfigFile, `${lines.join("\n")}\n`);
  return { mirror, version, cliConfigFile };
}

/** Compares dotted versions numerically. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export { emulatorCopy, type EmulatorCopy, type EmulatorCopyOptions } from "../../scripts/emulator-copy";

/** Result of one Terraform command. */
export interface TerraformRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The most retry lines a failure message quotes. */
const MAX_RETRY_LINES = 20;

/**
 * The lines of the AWS provider's debug log that show the AWS SDK sending a request again: an attempt
 * after the first (`amz_sdk_request="attempt=2; max=25"`), a failure it called retryable, and the SDK v1
 * "Retrying Request" line; each without its timestamp and logger prefix, cut to 400 characters.
 */
export function providerRetries(log: string): string[] {
  return log
    .split("\n")
    .filter((line) => /amz_sdk_request="attempt=(?:[2-9]|\d{2,})/.test(line) || /(?<!un)retryable error/.test(line) || /Retrying Request/i.test(line))
    .map((line) => line.replace(/^\S+ \[\w+\] provider\.[^:]+: /, "").slice(0, 400));
}

let debugLogs = 0;

/** What a failed apply's message ends with: the retry lines of the provider's debug log `file`. */
function retrySummary(file: string): string {
  let retries: string[];
  try {
    retries = providerRetries(readFileSync(file, "utf8"));
  } catch {
    return `(the provider's debug log ${file} could not be read)`;
  }
  if (retries.length === 0) return "the AWS SDK sent no request twice (provider debug log)";
  const shown = retries.length > MAX_RETRY_LINES ? `, the first ${MAX_RETRY_LINES}` : "";
  return `requests the AWS SDK sent again (provider debug log, ${retries.length} lines${shown}):\n${retries.slice(0, MAX_RETRY_LINES).join("\n")}`;
}

/** Runs terraform once with `env` added to this process's; never throws for a non-zero exit. */
async function runTerraform(dir: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<TerraformRun> {
  try {
    const { stdout, stderr } = await execFileAsync("terraform", [...args], { cwd: dir, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: err.stderr ?? err.message };
  }
}

/**
 * Runs `terraform <args>` in `dir`; never throws for a non-zero exit (the caller asserts). An `apply`
 * runs with the AWS provider's debug log: when it fails, stderr ends with the requests the AWS SDK sent
 * more than once and why (a create sent twice is refused by the emulator as a duplicate). The log is
 * deleted afterwards either way; writing it did not slow an apply measurably (302 s against 315 s).
 */
export async function terraform(dir: string, args: readonly string[], source: ProviderSource, env: NodeJS.ProcessEnv = {}): Promise<TerraformRun> {
  const debugLog = args[0] === "apply" && env.TF_LOG_PATH === undefined ? join(dir, `provider-debug-${++debugLogs}.log`) : undefined;
  const result = await runTerraform(dir, args, {
    ...(debugLog ? { TF_LOG_PROVIDER: "DEBUG", TF_LOG_PATH: debugLog } : {}),
    ...env,
    TF_CLI_CONFIG_FILE: source.cliConfigFile,
    TF_IN_AUTOMATION: "1",
    TF_INPUT: "0",
    CHECKPOINT_DISABLE: "1",
  });
  if (!debugLog) return result;
  try {
    return result.code === 0 ? result : { ...result, stderr: `${result.stderr}\n${retrySummary(debugLog)}` };
  } finally {
    rmSync(debugLog, { force: true });
  }
}
