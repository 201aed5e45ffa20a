/**
 * cdktf's manifest (`cdktf.out/manifest.json`) as the app writes it for the cdktf CLI, beyond what
 * `app.synth()` writes:
 * - **Stacks of earlier runs are kept.** The CLI lists the stack folders before it runs the app and, after
 *   it, deletes every folder the new manifest does not name — `.terraform/`, the lock file and local state
 *   of a stack included — so `IMAGING_LB_ENVIRONMENTS=one.yaml cdktf synth` used to delete the others.
 *   The app names them in the new manifest as an earlier synth left them ({@link keepEarlierStacks}); a
 *   kept stack that the cdktf command asks for carries an error annotation, so the CLI stops instead of
 *   planning or deploying files this run did not build.
 * - **Problems under the CLI are reported once.** The CLI prints what a failing app wrote as it runs and
 *   again in its error summary. Under the CLI the app prints the problems once (stdout) and exits 0 with
 *   a manifest whose error annotation makes the CLI stop ({@link writeProblemManifest}): the stack folders
 *   stay as they were, and a later `--skip-synth` stops too until a synth succeeds.
 * Pure file handling: imports nothing from cdktf.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The manifest's file name in the output folder. */
export const MANIFEST_FILE = "manifest.json";

/** cdktf's annotation level for errors (`AnnotationMetadataEntryType.ERROR`): the CLI stops on one. */
const ERROR_LEVEL = "@cdktf/error";

/** The construct path the app's own annotations carry (the CLI prints `ERROR [imaging-lb]: ...`). */
export const APP_CONSTRUCT_PATH = "imaging-lb";

/** The stand-in stack that carries the problem annotation, and its file in the output folder. */
const PROBLEM_STACK = "imaging-lb:problems";
export const PROBLEM_STACK_FILE = ".imaging-lb-problems.tf.json";

/** One annotation of a manifest stack. */
interface ManifestAnnotation {
  readonly constructPath: string;
  readonly level: string;
  readonly message: string;
}

/** One stack of the manifest, as cdktf writes it. */
interface ManifestStack {
  readonly name: string;
  readonly constructPath: string;
  readonly workingDirectory: string;
  readonly synthesizedStackPath: string;
  readonly stackMetadataPath: string;
  readonly annotations: readonly ManifestAnnotation[];
  readonly dependencies: readonly string[];
}

interface Manifest {
  readonly version?: string;
  readonly stacks: Readonly<Record<string, ManifestStack>>;
}

/** Writes `file` whole or not at all (a reader sees the old or the new text). */
function writeAtomically(file: string, text: string): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, file);
}

/** True when the cdktf CLI (or CDK Terrain's) runs this app: it sets this variable for every synth. */
export function underCdktfCli(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CDKTF_CONTINUE_SYNTH_ON_ERROR_ANNOTATIONS !== undefined;
}

/** The manifest in `outdir`, or undefined when there is none (or it is not cdktf's). */
function readManifest(outdir: string): Manifest | undefined {
  try {
    const manifest = JSON.parse(readFileSync(join(outdir, MANIFEST_FILE), "utf8")) as Manifest;
    return manifest && typeof manifest.stacks === "object" && manifest.stacks !== null ? manifest : undefined;
  } catch {
    return undefined;
  }
}

/** The stacks of the manifest in `outdir` that are not in `built` and whose synthesized file is still there. */
function earlierStacks(outdir: string, built: readonly string[]): ManifestStack[] {
  const manifest = readManifest(outdir);
  if (!manifest) return [];
  return Object.values(manifest.stacks)
    .filter((s) => s.name !== PROBLEM_STACK && !built.includes(s.name) && typeof s.synthesizedStackPath === "string" && existsSync(join(outdir, s.synthesizedStackPath)))
    .sort((a, b) => a.name.localeCompare(b.name));
}

const withoutOwnAnnotations = (s: ManifestStack): ManifestStack => ({ ...s, annotations: (s.annotations ?? []).filter((a) => a.constructPath !== APP_CONSTRUCT_PATH) });

/**
 * Adds to the manifest the app just wrote in `staging` the stacks of `outdir`'s manifest that this run did
 * not build, as they are. A kept stack for which `refuse` returns a message carries it as an error
 * annotation. Returns the kept stacks' names and the refused ones'.
 */
export function keepEarlierStacks(staging: string, outdir: string, refuse: (stack: string) => string | undefined): { kept: string[]; refused: string[] } {
  const file = join(staging, MANIFEST_FILE);
  const manifest = JSON.parse(readFileSync(file, "utf8")) as Manifest;
  const kept = earlierStacks(outdir, Object.keys(manifest.stacks));
  if (kept.length === 0) return { kept: [], refused: [] };
  const refused: string[] = [];
  const stacks: Record<string, ManifestStack> = { ...manifest.stacks };
  for (const stack of kept) {
    const why = refuse(stack.name);
    if (why !== undefined) refused.push(stack.name);
    const own = withoutOwnAnnotations(stack);
    stacks[stack.name] = why === undefined ? own : { ...own, annotations: [...own.annotations, { constructPath: APP_CONSTRUCT_PATH, level: ERROR_LEVEL, message: why }] };
  }
  writeAtomically(file, `${JSON.stringify({ ...manifest, stacks }, null, 2)}\n`);
  return { kept: kept.map((s) => s.name), refused };
}

/**
 * The manifest for a run that synthesized nothing, under the cdktf CLI: every stack of the earlier manifest
 * as it was (so the CLI deletes no folder), and a stand-in stack carrying `message` as an error annotation
 * (so the CLI stops, and prints it once). The stand-in's file is {@link PROBLEM_STACK_FILE}, removed by the
 * next successful synth ({@link removeProblemStack}).
 */
export function writeProblemManifest(outdir: string, message: string): void {
  const earlier = readManifest(outdir);
  const stacks: Record<string, ManifestStack> = {};
  for (const s of earlierStacks(outdir, [])) stacks[s.name] = withoutOwnAnnotations(s);
  stacks[PROBLEM_STACK] = {
    name: PROBLEM_STACK,
    constructPath: APP_CONSTRUCT_PATH,
    workingDirectory: ".",
    synthesizedStackPath: PROBLEM_STACK_FILE,
    stackMetadataPath: PROBLEM_STACK_FILE,
    annotations: [{ constructPath: APP_CONSTRUCT_PATH, level: ERROR_LEVEL, message }],
    dependencies: [],
  };
  // What the CLI reads of a stack's file (its metadata block and required providers): nothing to deploy.
  const standIn = { "//": { metadata: { stackName: PROBLEM_STACK, backend: "none" }, "imaging-lb": "not a stack: the environment files have problems and nothing was synthesized" }, terraform: {} };
  mkdirSync(outdir, { recursive: true });
  writeAtomically(join(outdir, PROBLEM_STACK_FILE), `${JSON.stringify(standIn, null, 2)}\n`);
  const manifest = { ...(earlier?.version ? { version: earlier.version } : {}), stacks };
  writeAtomically(join(outdir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Removes the stand-in stack's file of an earlier failed run (the new manifest no longer names it). */
export function removeProblemStack(outdir: string): void {
  rmSync(join(outdir, PROBLEM_STACK_FILE), { force: true });
}
