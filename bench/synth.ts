/**
 * Synth benchmark (`npm run bench:synth`, options: `--reps N`, default 5).
 *
 * 1. `node dist/main.js` on the three bundled examples against a bare CDKTF app with one VPC
 *    (dist/bench/bare-app.js), interleaved in the same run; median wall time, the ratio, and the peak RSS
 *    of each (measured inside the child with `process.resourceUsage().maxRSS`). Targets: ratio ≤ 2,
 *    peak RSS < 250 MB. For attribution, also the same files loaded and rendered without cdktf
 *    (dist/bench/load-only.js): main.js minus that is what the constructs and synthesis cost.
 * 2. 10, 25 and 50 generated environments (copies of the two-arm example with their own names and
 *    addresses, in a temporary folder): time per run and per environment, to show linear growth.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const DIST = join(__dirname, "..");
const ROOT = join(DIST, "..");
const MAIN = join(DIST, "main.js");
const BARE = join(__dirname, "bare-app.js");
const PROBE = join(__dirname, "rss-probe.js");
const LOAD_ONLY = join(__dirname, "load-only.js");
const EXAMPLES = join(ROOT, "examples");

interface Sample {
  readonly ms: number;
  readonly rssMiB: number;
}

const reps = Number(/--reps[= ](\d+)/.exec(process.argv.slice(2).join(" "))?.[1] ?? 5);
const work = mkdtempSync(join(tmpdir(), "imaging-lb-bench-"));

/** Runs `script` in a child with the RSS probe; fails loudly when the child fails. */
function measure(script: string, environments?: string): Sample {
  const rssFile = join(work, "rss");
  const outdir = join(work, "out");
  const env: NodeJS.ProcessEnv = { ...process.env, CDKTF_OUTDIR: outdir, IMAGING_LB_BENCH_RSS_FILE: rssFile };
  if (environments) env.IMAGING_LB_ENVIRONMENTS = environments;
  else delete env.IMAGING_LB_ENVIRONMENTS;
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ["--require", PROBE, script], { cwd: work, env, encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${script} exited ${r.status}:\n${r.stderr}`);
  const rssMiB = Number(readFileSync(rssFile, "utf8")) / 1024;
  rmSync(outdir, { recursive: true, force: true });
  return { ms, rssMiB };
}

const median = (values: readonly number[]) => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const fmt = (n: number, digits = 0) => n.toFixed(digits);

/** Writes `count` environments derived from the two-arm example into a new folder. */
function generate(count: number): string {
  const template = readFileSync(join(EXAMPLES, "agfa-ei-two-arm.yaml"), "utf8");
  const dir = join(work, `envs-${count}`);
  mkdirSync(dir);
  for (let i = 0; i < count; i++) {
    const octet = 100 + i;
    const text = template
      .replace("name: ei-two-arm", `name: bench-${String(i).padStart(2, "0")}`)
      .replace(/10\.20\./g, `10.${octet}.`)
      .replace(/ei-two-arm\//g, `bench-${i}/`);
    writeFileSync(join(dir, `bench-${String(i).padStart(2, "0")}.yaml`), text);
  }
  return dir;
}

function main(): void {
  console.log(`synth benchmark: ${reps} repetitions, node ${process.version}`);
  const app: Sample[] = [];
  const bare: Sample[] = [];
  const loadOnly: Sample[] = [];
  measure(BARE); // warm the file cache
  measure(MAIN, EXAMPLES);
  measure(LOAD_ONLY, EXAMPLES);
  for (let i = 0; i < reps; i++) {
    bare.push(measure(BARE));
    app.push(measure(MAIN, EXAMPLES));
    loadOnly.push(measure(LOAD_ONLY, EXAMPLES));
  }
  const loadMs = median(loadOnly.map((s) => s.ms));
  const appMs = median(app.map((s) => s.ms));
  const bareMs = median(bare.map((s) => s.ms));
  const appRss = Math.max(...app.map((s) => s.rssMiB));
  const bareRss = Math.max(...bare.map((s) => s.rssMiB));
  const ratio = appMs / bareMs;
  console.log("");
  console.log("                                  median ms   peak RSS MiB");
  console.log(`  bare app (1 VPC)                ${fmt(bareMs).padStart(9)}   ${fmt(bareRss, 1).padStart(12)}`);
  console.log(`  imaging-lb, 3 examples          ${fmt(appMs).padStart(9)}   ${fmt(appRss, 1).padStart(12)}`);
  console.log(`  config load + render only       ${fmt(loadMs).padStart(9)}   ${fmt(Math.max(...loadOnly.map((s) => s.rssMiB)), 1).padStart(12)}   (no cdktf)`);
  console.log(`  ratio ${fmt(ratio, 2)} (target <= 2: ${ratio <= 2 ? "met" : "NOT met"}); peak RSS ${fmt(appRss)} MiB (target < 250 MB: ${appRss * 1.048576 < 250 ? "met" : "NOT met"})`);

  console.log(`  attribution: constructs + synthesis ≈ ${fmt(appMs - loadMs)} ms (main.js − load-only), ${fmt((appMs - loadMs) / bareMs, 2)}× the bare app`);
  console.log("");
  console.log("  generated environments        median ms   ms/env   peak RSS MiB");
  const points: Array<[number, number]> = [];
  for (const count of [10, 25, 50]) {
    const dir = generate(count);
    const runs = Array.from({ length: Math.max(3, Math.ceil(reps / 2)) }, () => measure(MAIN, dir));
    const ms = median(runs.map((s) => s.ms));
    points.push([count, ms]);
    console.log(`  ${String(count).padStart(3)} environments              ${fmt(ms).padStart(9)}   ${fmt(ms / count, 1).padStart(6)}   ${fmt(Math.max(...runs.map((s) => s.rssMiB)), 1).padStart(12)}`);
  }
  const slope1 = (points[1][1] - points[0][1]) / (points[1][0] - points[0][0]);
  const slope2 = (points[2][1] - points[1][1]) / (points[2][0] - points[1][0]);
  console.log(`  marginal cost: ${fmt(slope1, 1)} ms/env (10→25), ${fmt(slope2, 1)} ms/env (25→50): ${slope2 <= slope1 * 1.5 ? "linear" : "super-linear"}`);
}

try {
  main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
