/**
 * Bundles the compiled CDKTF app (dist/main.js, with cdktf, the provider classes it uses, yaml and zod)
 * into one CommonJS file, dist/main.bundle.js, which lib/app-launcher.ts starts. One file instead of
 * about 550 modules: Node resolves, stats and reads one file, and V8 caches its compiled code as one
 * unit. Then it warms that code cache by synthesizing the bundled examples into a temporary folder, so
 * the first `cdktf synth` after a build is as fast as the later ones. Part of `npm run build`; the
 * unbundled `node dist/main.js` keeps working and gives the same output (test/synth-main.test.ts).
 *
 * CDKTF or CDK Terrain: this is the one place imaging-lb chooses. By default the bundle holds cdktf and
 * @cdktf/provider-aws. With `IMAGING_LB_CDK=cdktn` (or `--cdk cdktn`) every import of `cdktf` and
 * `@cdktf/provider-aws/lib/<resource>` is bundled from `cdktn` and `@cdktn/provider-aws/lib/<resource>`
 * instead (CDK Terrain keeps the API and the module layout), together with the `constructs` they use,
 * all resolved from `--modules <folder>` (a folder whose node_modules holds them; default: this project).
 * The sources keep importing `cdktf`: type-checking against cdktn works the same way, through tsconfig
 * `paths` (test/e2e/cdk-terrain.e2e.ts does both).
 *
 * Usage (after tsc): node dist/scripts/bundle.js [--cdk cdktf|cdktn] [--modules <folder>] [--out <file>]
 * (--out: write the bundle elsewhere, without warming the code cache).
 */
import { Plugin, build } from "esbuild";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BUNDLE_FILE, codeCacheFile } from "../lib/app-launcher";

const DIST = join(__dirname, "..");
const BUNDLE = join(DIST, BUNDLE_FILE);

/** The CDK an app bundle is built with. */
export type CdkFlavour = "cdktf" | "cdktn";

/**
 * Module substitutions per flavour (esbuild `alias`; a subpath follows its package:
 * `@cdktf/provider-aws/lib/vpc` becomes `@cdktn/provider-aws/lib/vpc`). `constructs` maps to itself so
 * that it, too, resolves from the chosen modules folder: cdktn and the stacks must share one copy.
 */
export const CDK_ALIASES: Readonly<Record<CdkFlavour, Readonly<Record<string, string>>>> = {
  cdktf: {},
  cdktn: { cdktf: "cdktn", "@cdktf/provider-aws": "@cdktn/provider-aws", constructs: "constructs" },
};

/**
 * zod's index loads its messages in 50-odd languages (about 500 KB of the bundle) only to export them as
 * `z.locales`. imaging-lb writes its own English messages and falls back to zod's English ones, which
 * zod loads separately; the bundle gets a locale index with English alone.
 */
const zodEnglishOnly: Plugin = {
  name: "zod-english-only",
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.cjs$/ }, (args) => ({
      contents: 'exports.en = require("./en.cjs").default;\n',
      loader: "js",
      resolveDir: dirname(args.path),
    }));
  },
};

/**
 * cdktf records a full stack trace (Error.stackTraceLimit lifted to MAX_SAFE_INTEGER) for every token it
 * creates: each attribute reference and each complex attribute of every resource, thousands per stack.
 * The traces are read only to word an error about a token that cannot be resolved ("Object creation
 * stack"), a bug in imaging-lb's constructs, not in an environment file. The bundled app records none;
 * the unbundled `node dist/main.js` and the library keep cdktf's behaviour for debugging.
 * Measured: 5 ms per environment, 150 ms of 1.5 s for 30 environments.
 */
const noTokenStackTraces: Plugin = {
  name: "no-token-stack-traces",
  setup(b) {
    b.onLoad({ filter: /[\\/]cdkt[fn][\\/]lib[\\/]tokens[\\/]private[\\/]stack-trace\.js$/ }, () => ({
      // cdktf exports captureStackTrace; cdktn also captureCreationStack (its tokens call that one).
      contents: "exports.captureStackTrace = function captureStackTrace() { return []; };\nexports.captureCreationStack = function captureCreationStack() { return []; };\n",
      loader: "js",
    }));
  },
};

/**
 * cdktf loads archiver (with readable-stream, glob, lodash, async and others: a fifth of the bundle) at
 * start-up, for TerraformAsset's zip archives, which imaging-lb never creates, and which a bundle could not
 * create anyway (cdktf zips by running its own module file in a child `node`). The bundle gets a stand-in
 * that says so if it is ever called.
 */
const noArchiver: Plugin = {
  name: "no-archiver",
  setup(b) {
    b.onResolve({ filter: /^archiver$/ }, () => ({ path: "archiver", namespace: "imaging-lb-stand-in" }));
    b.onLoad({ filter: /^archiver$/, namespace: "imaging-lb-stand-in" }, () => ({
      contents:
        'module.exports = function archiver() { throw new Error("the imaging-lb app bundle does not include archiver (TerraformAsset zip archives); run node dist/main.js"); };\n',
      loader: "js",
    }));
  },
};

/**
 * cdktf writes each stack's JSON with the json-stable-stringify package; the bundle gets imaging-lb's
 * writer instead (lib/app/stable-json.ts: the same bytes, in about a third of the time).
 */
const stableJsonWriter: Plugin = {
  name: "stable-json-writer",
  setup(b) {
    b.onResolve({ filter: /^json-stable-stringify$/ }, () => ({ path: join(DIST, "lib", "app", "stable-json.js") }));
  },
};

/** Synthesizes the bundled examples once through the launcher, which saves the code cache. */
function warmCodeCache(): void {
  const outdir = mkdtempSync(join(tmpdir(), "imaging-lb-warm-"));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, IMAGING_LB_ENVIRONMENTS: join(DIST, "..", "examples"), CDKTF_OUTDIR: join(outdir, "cdktf.out") };
    delete env.CDKTF_CONTEXT_JSON;
    delete env.IMAGING_LB_CODE_CACHE;
    const warm = spawnSync(process.execPath, [join(DIST, "lib", "app-launcher.js")], { cwd: outdir, env, encoding: "utf8" });
    // The cache is an optimisation: without it the first synth is slower, not wrong, so the build goes on.
    if (warm.status !== 0) process.stderr.write(`bundle: code cache not warmed (the examples did not synthesize):\n${warm.stderr}`);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

interface BundleOptions {
  readonly cdk: CdkFlavour;
  /** Folder whose node_modules the aliased modules resolve from. */
  readonly modules: string;
  readonly outfile: string;
}

function bundleOptions(): BundleOptions {
  const { values } = parseArgs({ options: { cdk: { type: "string" }, modules: { type: "string" }, out: { type: "string" } }, strict: true });
  const cdk = values.cdk ?? process.env.IMAGING_LB_CDK ?? "cdktf";
  if (cdk !== "cdktf" && cdk !== "cdktn") throw new Error(`--cdk / IMAGING_LB_CDK: expected cdktf or cdktn, got "${cdk}"`);
  return { cdk, modules: resolve(values.modules ?? join(DIST, "..")), outfile: resolve(values.out ?? BUNDLE) };
}

async function bundle(): Promise<void> {
  const options = bundleOptions();
  const aliases = CDK_ALIASES[options.cdk];
  await build({
    entryPoints: [join(DIST, "main.js")],
    outfile: options.outfile,
    // Aliased imports resolve from the working folder (esbuild's rule), so from the chosen modules.
    absWorkingDir: options.modules,
    alias: { ...aliases },
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    // Non-ASCII characters escaped: the launcher reads the file as one-byte text, without UTF-8 decoding.
    charset: "ascii",
    plugins: [zodEnglishOnly, noTokenStackTraces, noArchiver, stableJsonWriter],
    // Whitespace and syntax only: identifiers stay readable in stack traces and profiles (renaming them
    // too saves nothing measurable).
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: "warning",
  });
  rmSync(codeCacheFile(options.outfile), { force: true });
  if (options.outfile === BUNDLE) warmCodeCache();
}

bundle().catch((e: unknown) => {
  // esbuild has already printed its errors with file and line.
  process.stderr.write(`bundle: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}\n`);
  process.exitCode = 1;
});
