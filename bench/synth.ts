/**
 * Synth benchmark (`npm run bench:synth`, options: `--reps N`, default 5).
 *
 * 1. The app as `npm run synth` and `cdktf synth` run it after the build (`node dist/lib/app-launcher.js`:
 *    the bundle with its code cache) on the bundled examples (examples/*.yaml), against a bare CDKTF app with one VPC
 *    (dist/bench/bare-app.js, compiled by tsc, deep imports), interleaved in the same run; median wall
 *    time, the ratio, the CPU time and the peak RSS of each (measured inside the child with
 *    `process.resourceUsage()`; CPU time is steadier than wall time on a busy machine). Targets: ratio
 *    ≤ 1.5, peak RSS < 250 MB. Both are compiled beforehand, so the build (tsc, esbuild) is in neither
 *    figure.
 *    Also, for the record: the launcher with the code cache off (a first run after a Node upgrade), the
 *    unbundled `node dist/main.js`, and the files loaded and rendered without cdktf
 *    (dist/bench/load-only.js), which attributes the time to configuration versus cdktf.
 *    And cdktf's own floor (dist/bench/cdktf-floor.js): a bare app with as many resources and stacks as the
 *    examples give, which shows how much of the ratio cdktf alone takes for those resources.
 *    When NODE_EXTRA_CA_CERTS is set (it costs every Node process tens of milliseconds to start), the
 *    bare app and the launcher are measured without it too.
 * 2. 10, 25 and 50 generated environments (copies of the two-arm example with their own names and
 *    addresses, in a temporary folder): time per run and per environment, to show linear growth. Target:
 *    each environment costs under 60 ms, both at the margin (10 → 50 environments) and on average at 50.
 * The last line sums up both targets (`.ci/run` prints the whole report; it is a figure, not a gate).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const DIST = join(__dirname, "..");
const ROOT = join(DIST, "..");
const MAIN = join(DIST, "main.js");
const LAUNCHER = join(DIST, "lib", "app-launcher.js");
const BARE = join(__dirname, "bare-app.js");
const FLOOR = join(__dirname, "cdktf-floor.js");
const PROBE = join(__dirname, "rss-probe.js");
const LOAD_ONLY = join(__dirname, "load-only.js");
const EXAMPLES = join(ROOT, "examples");

interface Sample {
  readonly ms: number;
  readonly cpuMs: number;
  readonly rssMiB: number;
  /** What the child printed on stdout. */
  readonly stdout?: string;
  /** The run's phases (from the app's performance marks), in ms; empty for a process without them. */
  readonly phases?: Readonly<Record<string, number>>;
}

/** The app's phases: each ends at a performance mark (lib/app/synth.ts PHASE_MARKS), the last at the exit. */
const PHASES: ReadonlyArray<readonly [string, string | undefined]> = [
  ["node start", "imaging-lb:launcher-started"],
  ["bundle + code cache", "imaging-lb:bundle-loaded"],
  ["environment files", "imaging-lb:files-loaded"],
  ["cdktf loaded", "imaging-lb:cdktf-loaded"],
  ["constructs", "imaging-lb:stacks-built"],
  ["synthesis", "imaging-lb:synthesized"],
  ["write + summary", "imaging-lb:published"],
  ["exit", undefined],
];

/** The durations of {@link PHASES} from the marks of one run (none when a mark is missing). */
function phasesOf(marks: Readonly<Record<string, number>>, exitMs: number): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  let last = 0;
  for (const [name, mark] of PHASES) {
    const at = mark === undefined ? exitMs : marks[mark];
    if (at === undefined) return undefined;
    out[name] = at - last;
    last = at;
  }
  return out;
}

/** The targets (issue 22). */
const TARGET_RATIO = 1.5;
const TARGET_MS_PER_ENV = 60;
const TARGET_RSS_MB = 250;

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
  const probe = JSON.parse(readFileSync(rssFile, "utf8")) as { maxRssKiB: number; cpuMicros: number; marks: Record<string, number>; exitMs: number };
  rmSync(outdir, { recursive: true, force: true });
  return { ms, cpuMs: probe.cpuMicros / 1000, rssMiB: probe.maxRssKiB / 1024, stdout: r.stdout, phases: phasesOf(probe.marks, probe.exitMs) };
}

const median = (values: readonly number[]) => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const fmt = (n: number, digits = 0) => n.toFixed(digits);
const met = (ok: boolean) => (ok ? "met" : "NOT met");

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

/** The median of each phase over runs that have them. */
function medianPhases(list: readonly Sample[]): Record<string, number> | undefined {
  const runs = list.map((s) => s.phases).filter((p): p is Readonly<Record<string, number>> => p !== undefined);
  if (runs.length === 0) return undefined;
  return Object.fromEntries(PHASES.map(([name]) => [name, median(runs.map((p) => p[name]))]));
}

/** One line saying where a run's time goes, phase by phase (medians, so they need not add up exactly). */
const phaseLine = (phases: Readonly<Record<string, number>> | undefined) =>
  phases ? PHASES.map(([name]) => `${name} ${fmt(phases[name])}`).join(", ") : "n/a (no performance marks)";

/** Median times and peak RSS of `reps` interleaved runs of each variant, after one warm-up run each. */
function compare(variants: ReadonlyArray<readonly [string, () => Sample]>): Map<string, Sample> {
  const samples = new Map<string, Sample[]>(variants.map(([name]) => [name, []]));
  for (const [, run] of variants) run();
  for (let i = 0; i < reps; i++) for (const [name, run] of variants) samples.get(name)?.push(run());
  return new Map(
    [...samples].map(([name, list]) => [name, { ms: median(list.map((s) => s.ms)), cpuMs: median(list.map((s) => s.cpuMs)), rssMiB: Math.max(...list.map((s) => s.rssMiB)), phases: medianPhases(list) }]),
  );
}

/** The stacks and resources the app reports in its summary (`  <stack> (<file>): ...; <n> resources, ...`). */
function synthesized(stdout: string): { stacks: number; resources: number } {
  const counts = [...stdout.matchAll(/^ {2}\S+ \(.*\): .*; (\d+) resources?,/gm)].map((m) => Number(m[1]));
  if (counts.length === 0) throw new Error(`the app's summary names no stack:\n${stdout}`);
  return { stacks: counts.length, resources: counts.reduce((a, b) => a + b, 0) };
}

function main(): void {
  console.log(`synth benchmark: ${reps} repetitions, node ${process.version}`);
  const noCache = { IMAGING_LB_CODE_CACHE: "0" };
  const size = synthesized(measure(LAUNCHER, EXAMPLES).stdout ?? "");
  const floorSize = { IMAGING_LB_FLOOR_RESOURCES: String(size.resources), IMAGING_LB_FLOOR_STACKS: String(size.stacks) };
  const r = compare([
    ["bare", () => measure(BARE)],
    ["floor", () => measure(FLOOR, undefined, floorSize)],
    ["app", () => measure(LAUNCHER, EXAMPLES)],
    ["cold", () => measure(LAUNCHER, EXAMPLES, noCache)],
    ["unbundled", () => measure(MAIN, EXAMPLES)],
    ["load", () => measure(LOAD_ONLY, EXAMPLES)],
  ]);
  const get = (name: string) => r.get(name) ?? { ms: NaN, cpuMs: NaN, rssMiB: NaN };
  const bare = get("bare");
  const app = get("app");
  const ratio = app.ms / bare.ms;
  const row = (label: string, s: Sample) =>
    console.log(`  ${label.padEnd(40)}${fmt(s.ms).padStart(9)}   ${fmt(s.ms / bare.ms, 2).padStart(5)}   ${fmt(s.cpuMs).padStart(6)}   ${fmt(s.rssMiB, 1).padStart(12)}`);
  console.log("");
  console.log(`  ${"".padEnd(40)}median ms   ratio   CPU ms   peak RSS MiB`);
  row("bare cdktf app (1 VPC)", bare);
  row(`imaging-lb app, ${readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml")).length} examples`, app);
  row("  same, code cache off (first run)", get("cold"));
  row("  same, unbundled (node dist/main.js)", get("unbundled"));
  row("  config load + render only, no cdktf", get("load"));
  row(`cdktf alone, ${size.resources} resources in ${size.stacks} stacks`, get("floor"));
  const rssMet = app.rssMiB * 1.048576 < TARGET_RSS_MB;
  console.log(`  ratio ${fmt(ratio, 2)} (target <= ${TARGET_RATIO}: ${met(ratio <= TARGET_RATIO)}; CPU time ${fmt(app.cpuMs / bare.cpuMs, 2)}); peak RSS ${fmt(app.rssMiB)} MiB (target < ${TARGET_RSS_MB} MB: ${met(rssMet)})`);
  console.log(`  attribution (unbundled): constructs + synthesis ≈ ${fmt(get("unbundled").ms - get("load").ms)} ms (main.js − load-only)`);
  console.log(`  where the app's time goes (ms, medians of its performance marks): ${phaseLine(app.phases)}`);
  const floorExtra = get("floor").ms - bare.ms;
  console.log(
    `  over the bare app: imaging-lb ${fmt(app.ms - bare.ms)} ms (everything: files, rendering, constructs, synthesis); ` +
      `cdktf alone ${fmt(floorExtra)} ms for as many resources; the ratio target leaves ${fmt((TARGET_RATIO - 1) * bare.ms)} ms ` +
      `(${floorExtra > (TARGET_RATIO - 1) * bare.ms ? "less than cdktf alone takes" : "more than cdktf alone takes"})`,
  );
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
  console.log("  generated environments        median ms   ms/env   CPU ms   peak RSS MiB");
  const points: Array<[number, number]> = [];
  let phases50: Readonly<Record<string, number>> | undefined;
  for (const count of [10, 25, 50]) {
    const dir = generate(count);
    const runs = Array.from({ length: Math.max(3, Math.ceil(reps / 2)) }, () => measure(LAUNCHER, dir));
    const ms = median(runs.map((s) => s.ms));
    points.push([count, ms]);
    phases50 = medianPhases(runs);
    console.log(
      `  ${String(count).padStart(3)} environments              ${fmt(ms).padStart(9)}   ${fmt(ms / count, 1).padStart(6)}   ${fmt(median(runs.map((s) => s.cpuMs))).padStart(6)}   ${fmt(Math.max(...runs.map((s) => s.rssMiB)), 1).padStart(12)}`,
    );
  }
  const slope = (a: [number, number], b: [number, number]) => (b[1] - a[1]) / (b[0] - a[0]);
  const [slope1, slope2, marginal] = [slope(points[0], points[1]), slope(points[1], points[2]), slope(points[0], points[2])];
  const at50 = points[2][1] / points[2][0];
  console.log(`  marginal cost: ${fmt(slope1, 1)} ms/env (10→25), ${fmt(slope2, 1)} ms/env (25→50): ${slope2 <= slope1 * 1.5 ? "linear" : "super-linear"}`);
  console.log(`  where the time goes at 50 environments (ms): ${phaseLine(phases50)}`);
  const perEnvMet = marginal < TARGET_MS_PER_ENV && at50 < TARGET_MS_PER_ENV;
  console.log(`  per environment: ${fmt(marginal, 1)} ms at the margin (10→50), ${fmt(at50, 1)} ms on average at 50 (target < ${TARGET_MS_PER_ENV} ms: ${met(perEnvMet)})`);
  console.log("");
  console.log(
    `summary: synth ${fmt(ratio, 2)}x the bare app (target <= ${TARGET_RATIO}: ${met(ratio <= TARGET_RATIO)}; cdktf alone with as many resources ${fmt(get("floor").ms / bare.ms, 2)}x), ` +
      `${fmt(marginal, 1)} ms per environment (target < ${TARGET_MS_PER_ENV}: ${met(perEnvMet)}), peak RSS ${fmt(app.rssMiB)} MiB (target < ${TARGET_RSS_MB} MB: ${met(rssMet)})`,
  );
}

try {
  main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
