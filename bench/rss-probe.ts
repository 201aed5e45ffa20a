/**
 * Preloaded into a benchmarked process (`node --require dist/bench/rss-probe.js ...`): on exit, writes to
 * the file named by IMAGING_LB_BENCH_RSS_FILE, as JSON, the process's peak resident set size in KiB, the
 * CPU time it used (user + system, microseconds), and the times of its `imaging-lb:` performance marks and
 * of its exit (milliseconds since the process started): `{"maxRssKiB":…,"cpuMicros":…,"marks":{…},"exitMs":…}`.
 */
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const target = process.env.IMAGING_LB_BENCH_RSS_FILE;
if (target) {
  process.on("exit", () => {
    const usage = process.resourceUsage();
    const marks = Object.fromEntries(
      performance
        .getEntriesByType("mark")
        .filter((m) => m.name.startsWith("imaging-lb:"))
        .map((m) => [m.name, m.startTime]),
    );
    writeFileSync(target, JSON.stringify({ maxRssKiB: usage.maxRSS, cpuMicros: usage.userCPUTime + usage.systemCPUTime, marks, exitMs: performance.now() }));
  });
}
