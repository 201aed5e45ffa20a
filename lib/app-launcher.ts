/**
 * Starts the CDKTF app (`cdktf.json`'s `app`, `npm run synth`) from its one-file bundle,
 * dist/main.bundle.js (scripts/bundle.ts), with V8's code cache: the first run compiles the bundle and
 * saves the compiled code next to it (`main.bundle.js.v8-cache`); later runs load that instead of
 * parsing and compiling about 2 MB of JavaScript again. V8 checks the cache against the source, its
 * own version and flags, and rejects a stale one, which is then rewritten. The cache is an optimisation
 * only: when it cannot be read or written (a read-only install), the app runs the same, just slower.
 * `IMAGING_LB_CODE_CACHE=0` turns it off (the synth benchmark measures both).
 */
import { createRequire } from "node:module";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { Script, constants as vmConstants } from "node:vm";

/** The bundle's file name inside dist/. */
export const BUNDLE_FILE = "main.bundle.js";

/** Where the code cache of `bundle` is kept. */
export const codeCacheFile = (bundle: string) => `${bundle}.v8-cache`;

/** What happened to the code cache in one run. */
export type CodeCacheState = "used" | "created" | "rejected and rewritten" | "not writable" | "off";

/** A loaded bundle: its exports, and a function that saves the code cache when it needs saving. */
export interface LoadedBundle {
  readonly exports: unknown;
  /** Call after the bundle's work ran, so the cache includes the functions compiled lazily on the way. */
  saveCodeCache(): CodeCacheState;
}

function readOptional(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/**
 * Loads the CommonJS file `bundle` as Node would (module wrapper, its own `require`), with its compiled
 * code from the cache when `useCache` and the cache is valid. `bundle` must be ASCII (scripts/bundle.ts
 * builds it so), as it is read as one-byte text.
 */
export function loadBundle(bundle: string, useCache = true): LoadedBundle {
  const cacheFile = codeCacheFile(bundle);
  const cachedData = useCache ? readOptional(cacheFile) : undefined;
  // The bundle is ASCII (esbuild's charset "ascii"), so latin1 reads it exactly and skips UTF-8 decoding.
  const source = readFileSync(bundle, "latin1");
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    cachedData,
    importModuleDynamically: vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const module = { exports: {} as unknown, filename: bundle, id: bundle, loaded: false };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper.call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  module.loaded = true;
  return {
    exports: module.exports,
    saveCodeCache(): CodeCacheState {
      if (!useCache) return "off";
      if (cachedData && !script.cachedDataRejected) return "used";
      const temporary = `${cacheFile}.${process.pid}.tmp`;
      try {
        writeFileSync(temporary, script.createCachedData());
        renameSync(temporary, cacheFile);
      } catch {
        rmSync(temporary, { force: true });
        return "not writable";
      }
      return cachedData ? "rejected and rewritten" : "created";
    },
  };
}

/** The exports of main.ts (lib/app/synth.ts) the launcher uses. */
interface AppExports {
  run(): Promise<void>;
}

if (require.main === module) {
  // The same names as lib/app/synth.ts's PHASE_MARKS (not imported: the launcher loads nothing but the bundle).
  performance.mark("imaging-lb:launcher-started");
  const bundle = join(__dirname, "..", BUNDLE_FILE);
  if (!existsSync(bundle)) {
    process.stderr.write(`imaging-lb: ${bundle} is missing; build it with \`npm run build\`\n`);
    process.exitCode = 1;
  } else {
    const loaded = loadBundle(bundle, process.env.IMAGING_LB_CODE_CACHE !== "0");
    performance.mark("imaging-lb:bundle-loaded");
    void (loaded.exports as AppExports).run().then(() => {
      const state = loaded.saveCodeCache();
      if (process.env.IMAGING_LB_CODE_CACHE_REPORT === "1") process.stderr.write(`imaging-lb: code cache ${state}\n`);
      // The work is done and written: exit once stdout and stderr are flushed (a pipe is asynchronous on
      // some systems), instead of letting Node wait for V8's background tasks and free the heap page by
      // page. Measured: 10-15 ms less from the last line to the exit (bench:synth's "exit" phase).
      process.stdout.write("", () => process.stderr.write("", () => process.exit()));
    });
  }
}
