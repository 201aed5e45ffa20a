/**
 * The CDKTF app's entry point, at the root where its published paths expect it: the entry of the bundle
 * (scripts/bundle.ts: dist/main.bundle.js, which lib/app-launcher.ts and so cdktf.json start) and of
 * `node dist/main.js`. The app itself is lib/app/synth.ts.
 */
import { run } from "./lib/app/synth";

export { ENVIRONMENTS_VAR, PHASE_MARKS, environmentFiles, main, publish, quietCdktfDeprecation, run } from "./lib/app/synth";

if (require.main === module) void run();
