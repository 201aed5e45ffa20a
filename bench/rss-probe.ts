/**
 * Preloaded into a benchmarked process (`node --require dist/bench/rss-probe.js ...`): on exit, writes the
 * process's peak resident set size in KiB (`process.resourceUsage().maxRSS`) to the file named by
 * IMAGING_LB_BENCH_RSS_FILE.
 */
import { writeFileSync } from "node:fs";

const target = process.env.IMAGING_LB_BENCH_RSS_FILE;
if (target) {
  process.on("exit", () => {
    writeFileSync(target, String(process.resourceUsage().maxRSS));
  });
}
