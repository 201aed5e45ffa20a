/**
 * Synth benchmark (`npm run bench:synth`, options: `--reps N`, default 5).
 *
 * 1. The app as `npm run synth` and `cdktf synth` run it after the build (`node dist/lib/app-launcher.js`:
 *    the bundle with its code cache) on the three bundled examples, against a bare CDKTF app with one VPC
 *    (dist/bench/bare-app.js, compiled by tsc, deep imports), interleaved in the same run; median wall
 *    time, the ratio, and the peak RSS of each (measured inside the child with
 *    `process.resourceUsage().maxRSS`). Targets: ratio ≤ 2, peak RSS < 250 MB. Both are compiled
 *    beforehand, so the build (tsc, esbuild) is in neither figure.
 *    Also, for the record: the launcher with the code cache off (a first run after a Node upgrade), the
 *    unbundled `node dist/main.js`, and the files loaded and rendered without cdktf
 *    (dist/bench/load-only.js), which attributes the time to configuration versus cdktf.
 *    When NODE_EXTRA_CA_CERTS is set (it costs every Node process tens of milliseconds to start), the
 *    bare app and the launcher are measured without it too.
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
const LAUNCHER = join(DIST, "lib", "app-launcher.js");
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
function measure(script: string, environments?: string, extra: NodeJS.ProcessEnv = {}): Sample {
  const rssFile = join(work, "rss");
  const outdir = join(work, "out");
  const env: NodeJS.ProcessEnv = { ...process.env, CDKTF_OUTDIR: outdir, IMAGING_LB_BENCH_RSS_FILE: rssFile, ...extra };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
  delete env.CDKTF_CONTEXT_JSON;
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

/** Median time and peak RSS of `reps` interleaved runs of each variant, after one warm-up run each. */
function compare(variants: ReadonlyArray<readonly [string, () => Sample]>): Map<string, { ms: number; rssMiB: number }> {
  const samples = new Map<string, Sample[]>(variants.map(([name]) => [name, []]));
  for (const [, run] of variants) run();
  for (let i = 0; i < reps; i++) for (const [name, run] of variants) samples.get(name)?.push(run());
  return new Map(
    [...samples].map(([name, list]) => [name, { ms: median(list.map((s) => s.ms)), rssMiB: Math.max(...list.map((s) => s.rssMiB)) }]),
  );
}

function main(): void {
  console.log(`synth benchmark: ${reps} repetitions, node ${process.version}`);
  const noCache = { IMAGING_LB_CODE_CACHE: "0" };
  const r = compare([
    ["bare", () => measure(BARE)],
    ["app", () => measure(LAUNCHER, EXAMPLES)],
    ["cold", () => measure(LAUNCHER, EXAMPLES, noCache)],
    ["unbundled", () => measure(MAIN, EXAMPLES)],
    ["load", () => measure(LOAD_ONLY, EXAMPLES)],
  ]);
  const get = (name: string) => r.get(name) ?? { ms: NaN, rssMiB: NaN };
  const bare = get("bare");
  const app = get("app");
  const ratio = app.ms / bare.ms;
  const row = (label: string, s: { ms: number; rssMiB: number }) =>
    console.log(`  ${label.padEnd(40)}${fmt(s.ms).padStart(9)}   ${fmt(s.rssMiB, 1).padStart(12)}   ${fmt(s.ms / bare.ms, 2).padStart(5)}`);
  console.log("");
  console.log(`  ${"".padEnd(40)}median ms   peak RSS MiB   ratio`);
  row("bare cdktf app (1 VPC)", bare);
  row("imaging-lb app, 3 examples", app);
  row("  same, code cache off (first run)", get("cold"));
  row("  same, unbundled (node dist/main.js)", get("unbundled"));
  row("  config load + render only, no cdktf", get("load"));
  console.log(`  ratio ${fmt(ratio, 2)} (target <= 2: ${ratio <= 2 ? "met" : "NOT met"}); peak RSS ${fmt(app.rssMiB)} MiB (target < 250 MB: ${app.rssMiB * 1.048576 < 250 ? "met" : "NOT met"})`);
  console.log(`  attribution (unbundled): constructs + synthesis ≈ ${fmt(get("unbundled").ms - get("load").ms)} ms (main.js − load-only)`);
  if (process.env.NODE_EXTRA_CA_CERTS) {
    const unset = { NODE_EXTRA_CA_CERTS: undefined };
    const u = compare([
      ["bare", () => measure(BARE, undefined, unset)],
      ["app", () => measure(LAUNCHER, EXAMPLES, unset)],
      ["cold", () => measure(LAUNCHER, EXAMPLES, { ...unset, ...noCache })],
    ]);
    const ub = u.get("bare")?.ms ?? NaN;
    console.log(`  without NODE_EXTRA_CA_CERTS (set here; it slows every Node start): bare ${fmt(ub)} ms, imaging-lb ${fmt(u.get("app")?.ms ?? NaN)} ms ` +
      `(ratio ${fmt((u.get("app")?.ms ?? NaN) / ub, 2)}), code cache off ${fmt(u.get("cold")?.ms ?? NaN)} ms (ratio ${fmt((u.get("cold")?.ms ?? NaN) / ub, 2)})`);
  }
  console.log("");
  console.log("  generated environments        median ms   ms/env   peak RSS MiB");
  const points: Array<[number, number]> = [];
  for (const count of [10, 25, 50]) {
    const dir = generate(count);
    const runs = Array.from({ length: Math.max(3, Math.ceil(reps / 2)) }, () => measure(LAUNCHER, dir));
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
