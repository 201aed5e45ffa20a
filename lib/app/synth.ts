/**
 * The CDKTF app: one stack per environment file. Started by `main.ts` (the bundle's entry and `node
 * dist/main.js`), which lib/app-launcher.ts loads as dist/main.bundle.js.
 *
 * Which files: `IMAGING_LB_ENVIRONMENTS` (comma- or space-separated files, folders or globs), else the
 * `environments` context (cdktf.json `context.environments`, a string or a list), else the bundled
 * examples. Every file is validated before anything is synthesized: on any problem the problems are
 * printed to stderr, the exit code is 1, and `cdktf.out` is left as it was (synthesis goes to a staging
 * folder first). Under the cdktf CLI the problems go to stdout once and the CLI is stopped through its
 * manifest instead, as it would print them twice otherwise (lib/app/synth-manifest.ts). On success the
 * synthesized files are moved into `cdktf.out` in place ({@link publish}): what Terraform keeps in a
 * stack's folder (`.terraform/`, `.terraform.lock.hcl`, local state) stays, stack folders are never
 * deleted, and the manifest keeps naming the stacks of earlier runs, so the cdktf CLI (which deletes the
 * folders a new manifest does not name) leaves them too.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { globSync } from "tinyglobby";
import { ConfigError } from "../config/errors";
import { loadEnvironment } from "../load/load";
import { ResolvedEnvironment } from "../config/model";
import { keptStackRefusal, matches, missingStacksNote, requestedStacks } from "./stack-request";
import { keepEarlierStacks, MANIFEST_FILE, removeProblemStack, underCdktfCli, writeProblemManifest } from "./synth-manifest";

/** Environment variable naming the environment files. */
export const ENVIRONMENTS_VAR = "IMAGING_LB_ENVIRONMENTS";

const YAML_RE = /\.ya?ml$/i;
const GLOB_RE = /[*?[]/;

const safeReaddir = (d: string) => {
  try {
    return readdirSync(d).sort();
  } catch {
    return [];
  }
};
const statSafe = (p: string) => {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
};

/**
 * The package's bundled examples: the nearest `examples` folder above this module (dist/lib/app/ compiled,
 * dist/ in the bundle; both reach the package's root before any folder of the project using it).
 */
function bundledExamples(): string | undefined {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (statSafe(join(dir, "examples"))?.isDirectory()) return join(dir, "examples");
    if (dirname(dir) === dir) return undefined;
  }
}

/** The environment files named by the user (or the bundled examples), and problems finding them. */
export function environmentFiles(cwd = process.cwd()): { files: string[]; problems: string[]; source: string } {
  const fromEnv = process.env[ENVIRONMENTS_VAR]?.trim();
  let entries: string[] | undefined;
  let source = "";
  if (fromEnv) {
    entries = fromEnv.split(/[\s,]+/).filter(Boolean);
    source = ENVIRONMENTS_VAR;
  } else {
    const context = contextEnvironments(cwd);
    if (context) {
      entries = context;
      source = "context.environments";
    }
  }
  if (!entries) {
    const examples = bundledExamples();
    entries = examples ? [examples] : [];
    source = "bundled examples";
  }
  const files: string[] = [];
  const problems: string[] = [];
  for (const entry of entries) {
    const path = isAbsolute(entry) ? entry : join(cwd, entry);
    const stat = statSafe(path);
    if (stat?.isDirectory()) {
      const found = safeReaddir(path).filter((f) => YAML_RE.test(f)).map((f) => join(entry, f));
      if (found.length === 0) problems.push(`${entry}: no .yaml or .yml file in this folder (from ${source})`);
      files.push(...found);
    } else if (stat?.isFile()) {
      files.push(entry);
    } else if (GLOB_RE.test(entry)) {
      const found = globSync(entry, { cwd, onlyFiles: true, absolute: isAbsolute(entry), expandDirectories: false })
        .filter((f) => YAML_RE.test(f))
        .sort();
      if (found.length === 0) problems.push(`${entry}: no environment file matches this pattern (from ${source})`);
      files.push(...found);
    } else {
      problems.push(`${entry}: no such file or folder (from ${source}); expected an environment file, a folder of them, or a glob`);
    }
  }
  if (entries.length === 0) problems.push(`no environment file given: set ${ENVIRONMENTS_VAR} or cdktf.json context.environments`);
  return { files: [...new Set(files)], problems, source };
}

/** `environments` from the cdktf CLI's context (CDKTF_CONTEXT_JSON) or ./cdktf.json. */
function contextEnvironments(cwd: string): string[] | undefined {
  const sources: Array<() => unknown> = [
    () => (process.env.CDKTF_CONTEXT_JSON ? JSON.parse(process.env.CDKTF_CONTEXT_JSON) : undefined),
    () => {
      const file = join(cwd, "cdktf.json");
      return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { context?: unknown }).context : undefined;
    },
  ];
  for (const read of sources) {
    let context: unknown;
    try {
      context = read();
    } catch {
      continue;
    }
    const value = (context as { environments?: unknown } | undefined)?.environments;
    if (typeof value === "string") return value.split(/[\s,]+/).filter(Boolean);
    if (Array.isArray(value)) return value.map(String);
  }
  return undefined;
}

/** Counts of a synthesized stack. */
interface StackCounts {
  readonly resources: number;
  readonly dataSources: number;
}

/** The counts of a stack's Terraform document (as written to its cdk.tf.json). */
function countDocument(document: Readonly<Record<string, unknown>>): StackCounts {
  const count = (block: unknown) => Object.values((block ?? {}) as Record<string, object>).reduce((n, byId) => n + Object.keys(byId).length, 0);
  return { resources: count(document.resource), dataSources: count(document.data) };
}

/** A file as the user would type it: relative to the working folder when inside it. */
function display(file: string): string {
  const rel = relative(process.cwd(), resolve(file));
  return rel.startsWith("..") || isAbsolute(rel) ? file : rel;
}

/**
 * cdktf's validation failure as lines for the user: each `[<stack>/<construct>] problem` line prefixed
 * with the stack's environment file, without the advice to skip validation.
 */
function synthFailure(message: string, environments: readonly ResolvedEnvironment[]): string[] {
  const files = new Map(environments.map((env) => [env.name, env.sourceFile]));
  return message
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("If you wish to ignore these validations"))
    .map((line) => {
      const file = files.get(/^\s*\[([^/\]]+)[/\]]/.exec(line)?.[1] ?? "");
      return file === undefined ? line : `${display(file)}: ${line.trim()}`;
    });
}

/**
 * Reports a run that synthesized nothing: the lines on stderr and exit code 1; under the cdktf CLI the
 * lines on stdout and a manifest that makes the CLI stop (it prints a failing app's output twice).
 */
function fail(lines: readonly string[], outdir: string): number {
  if (underCdktfCli()) {
    process.stdout.write(`${lines.join("\n")}\n`);
    writeProblemManifest(outdir, "nothing synthesized: the environment files have problems (listed above); the stack folders in cdktf.out are as they were");
    return 0;
  }
  for (const line of lines) process.stderr.write(`${line}\n`);
  return 1;
}

/**
 * Moves a synthesized app from `staging` into `outdir` (same file system), in place: every file the
 * synthesis wrote replaces its namesake (a rename, so a reader sees the old or the new file, never a
 * half-written one), stack by stack, and `manifest.json` last, so the manifest never names a stack whose
 * files are not there yet. Nothing else in `outdir` is touched: a stack's `.terraform/`,
 * `.terraform.lock.hcl` and local state survive, and so do the folders of stacks not in this run (the
 * manifest keeps naming them, see lib/app/synth-manifest.ts, so the cdktf CLI does not delete them either).
 */
export function publish(staging: string, outdir: string): void {
  mkdirSync(outdir, { recursive: true });
  const replace = (from: string, to: string) => {
    if (statSafe(from)?.isDirectory() && statSafe(to)?.isDirectory()) {
      for (const entry of readdirSync(from)) replace(join(from, entry), join(to, entry));
      return;
    }
    if (statSafe(to)?.isDirectory()) rmSync(to, { recursive: true, force: true });
    renameSync(from, to);
  };
  const entries = readdirSync(staging).sort((a, b) => Number(a === MANIFEST) - Number(b === MANIFEST));
  for (const entry of entries) replace(join(staging, entry), join(outdir, entry));
}

/** cdktf's manifest file at the top of the output folder. */
const MANIFEST = MANIFEST_FILE;

let deprecationFilterInstalled = false;

/**
 * cdktf 0.21 calls `util.isArray` when it synthesizes outputs; Node 22 and later print a DEP0044
 * deprecation warning on stderr for it, which imaging-lb cannot fix in cdktf (archived). This drops
 * that one warning (code DEP0044) in the app's process; every other warning is printed as before.
 */
export function quietCdktfDeprecation(): void {
  if (deprecationFilterInstalled) return;
  deprecationFilterInstalled = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const code = typeof rest[0] === "object" && rest[0] !== null ? (rest[0] as { code?: unknown }).code : rest[1];
    if (code === "DEP0044" || (warning instanceof Error && (warning as NodeJS.ErrnoException).code === "DEP0044")) return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

/**
 * Performance marks of a run's phases, in order (the launcher sets the first two): `npm run bench:synth`
 * reads them to say where the time goes. A mark costs microseconds.
 */
export const PHASE_MARKS = {
  launcherStarted: "imaging-lb:launcher-started",
  bundleLoaded: "imaging-lb:bundle-loaded",
  filesLoaded: "imaging-lb:files-loaded",
  cdktfLoaded: "imaging-lb:cdktf-loaded",
  stacksBuilt: "imaging-lb:stacks-built",
  synthesized: "imaging-lb:synthesized",
  published: "imaging-lb:published",
} as const;

/**
 * Runs the app; resolves to the exit code. cdktf and the constructs are loaded only once every file is
 * valid, so a problem is reported without that cost.
 */
export async function main(): Promise<number> {
  const { files, problems, source } = environmentFiles();
  const messages = [...problems];
  const environments: ResolvedEnvironment[] = [];
  for (const file of files) {
    try {
      environments.push(loadEnvironment(file));
    } catch (e) {
      if (e instanceof ConfigError) messages.push(e.message);
      else throw e;
    }
  }
  const byName = new Map<string, string>();
  for (const env of environments) {
    const other = byName.get(env.name);
    if (other) messages.push(`${env.sourceFile}: name '${env.name}' is already used by ${other}; every environment needs its own name (it is the stack name)`);
    byName.set(env.name, env.sourceFile);
  }
  const outdir = resolve(process.env.CDKTF_OUTDIR ?? "cdktf.out");
  if (messages.length > 0) return fail(["imaging-lb: nothing synthesized.", ...messages], outdir);
  performance.mark(PHASE_MARKS.filesLoaded);

  mkdirSync(dirname(outdir), { recursive: true });
  const staging = mkdtempSync(join(dirname(outdir), `.${basename(outdir)}.staging-`));
  const refused: string[] = [];
  const counted = new Map<string, StackCounts>();
  try {
    quietCdktfDeprecation();
    const cdktf = await import("cdktf");
    const { deepMerge } = await import("cdktf/lib/util");
    const { withOneResolvePass, withoutCrossStackPass } = await import("../constructs/synth-passes");
    const { ImagingLbStack } = await import("../constructs/imaging-lb-stack");
    performance.mark(PHASE_MARKS.cdktfLoaded);
    const app = new cdktf.App({ outdir: staging });
    for (const env of environments) {
      try {
        const stack = new ImagingLbStack(app, env.name, { environment: env });
        withoutCrossStackPass(stack);
        // The summary's counts come from the document as it is written, not from reading the files back.
        withOneResolvePass(stack, cdktf, deepMerge, (document) => counted.set(env.name, countDocument(document)));
      } catch (e) {
        refused.push(e instanceof Error ? e.message : String(e));
      }
    }
    performance.mark(PHASE_MARKS.stacksBuilt);
    if (refused.length === 0) app.synth();
    performance.mark(PHASE_MARKS.synthesized);
  } catch (e) {
    refused.push(...synthFailure(e instanceof Error ? e.message : String(e), environments));
  }
  if (refused.length > 0) {
    rmSync(staging, { recursive: true, force: true });
    return fail(["imaging-lb: nothing synthesized.", ...refused], outdir);
  }
  const requested = requestedStacks();
  const built = environments.map((e) => e.name);
  let earlier: { kept: string[]; refused: string[] };
  try {
    earlier = keepEarlierStacks(staging, outdir, (stack) =>
      requested.some((r) => matches(r, stack)) ? keptStackRefusal(stack, built, source, ENVIRONMENTS_VAR, process.env[ENVIRONMENTS_VAR]) : undefined,
    );
    publish(staging, outdir);
    removeProblemStack(outdir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }

  const lines = [`imaging-lb: ${environments.length} stack${environments.length === 1 ? "" : "s"} synthesized to ${outdir}`];
  for (const env of environments) {
    const counts = counted.get(env.name);
    if (!counts) throw new Error(`stack ${env.name} was written without its document being counted`);
    const vips = env.vips.map((v) => `${v.name}=${v.nlb ? v.nlb.map((z) => z.address).join("/") : v.address}${v.elasticIp ? " (+EIP)" : ""}`).join(", ");
    const shape = `${env.network.layout}, ${env.nodes.length === 2 ? `HA pair (${env.ha?.vipMode})` : env.nodes.length > 2 ? `${env.nodes.length} nodes (${env.ha?.vipMode})` : "single node"}`;
    const data = `${counts.dataSources} data source${counts.dataSources === 1 ? "" : "s"}`;
    lines.push(`  ${env.name} (${display(env.sourceFile)}): ${shape}; ${counts.resources} resources, ${data}; VIPs ${vips}`);
  }
  if (earlier.kept.length > 0) {
    lines.push(`  kept as an earlier synth left them (not in this run): ${earlier.kept.join(", ")}`);
  }
  // cdktf shows the app's stdout: say why a stack it is asked for is not there (variable unset or without it).
  // A kept stack it asks for is refused through the manifest instead (cdktf prints that message).
  lines.push(...missingStacksNote(requested, [...built, ...earlier.refused], source, ENVIRONMENTS_VAR, process.env[ENVIRONMENTS_VAR]));
  process.stdout.write(`${lines.join("\n")}\n`);
  performance.mark(PHASE_MARKS.published);
  return 0;
}

/**
 * Runs {@link main} as the process: sets the exit code, and reports an unexpected error as one line
 * instead of a stack trace. Resolves when done (the launcher then saves its code cache).
 */
export function run(): Promise<void> {
  return main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`imaging-lb: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}

