/**
 * Data-plane benchmark of the product's rendered haproxy.cfg (`npm run bench:dataplane`, as root).
 *
 * Topology: examples/agfa-ei-one-arm.yaml mapped to the e2e harness's one-arm layout, because there the
 * client can also reach a server directly through the same router: "through the LB" and "direct" share the
 * client, the router and the server, and differ only by the HAProxy hop (two-arm servers are unreachable
 * from the client without the LB). The LB runs the configuration exactly as rendered, plus one plain-HTTP
 * service added through the environment file (`services.plain`, mode http, no TLS) to separate the TLS
 * cost from the proxy cost.
 *
 * Servers (real processes in the server namespaces):
 * - DICOM: DCMTK `storescp --ignore` on 104 (receives every byte of every C-STORE, writes nothing: the
 *   network/proxy path is measured, not a PACS's disk); it also answers the product's C-ECHO check.
 * - HTTP: a small static origin, HAProxy `http-request return` ("ok", 2 bytes) on 80 and on 443 (TLS with
 *   the same throwaway certificate), so the origin is never the bottleneck.
 *
 * Figures printed: C-STORE throughput of 10 × 50 MB instances in one association (LB / direct ratio,
 * target ≥ 0.8), and wrk keep-alive HTTP requests/s and latency p50/p99 (target: ≤ 1 ms added p99) for
 * HTTPS through the rendered XERO service (TLS terminated on the LB) vs HTTPS direct, and plain HTTP through
 * the plain service vs plain HTTP direct.
 *
 * Environment: BENCH_DICOM_COUNT (10), BENCH_DICOM_MB (50), BENCH_WRK_SECONDS (8), BENCH_RUNS (3).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { makeSelfSignedPem, requireTool, tempDir } from "../test/helpers/tools";
import {
  buildOneArm,
  generateDicomInstances,
  productEnvironment,
  startProductHaproxy,
  storescu,
  type LbTopology,
  type Topology,
} from "../test/e2e/harness";

const DICOM_COUNT = Number(process.env.BENCH_DICOM_COUNT ?? 10);
const DICOM_MB = Number(process.env.BENCH_DICOM_MB ?? 50);
const WRK_SECONDS = Number(process.env.BENCH_WRK_SECONDS ?? 8);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PLAIN_PORT = 8080;

/** wrk's figures. */
interface WrkResult {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: string;
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

async function wrk(topo: Topology, host: string, url: string, connections: number): Promise<WrkResult> {
  const tool = requireTool("wrk", "wrk");
  const run = await topo.execOk(host, tool, ["-t1", `-c${connections}`, `-d${WRK_SECONDS}s`, "--latency", "--timeout", "5s", url], {
    timeoutMs: (WRK_SECONDS + 20) * 1000,
  });
  const out = run.stdout;
  const pct = (p: string) => toMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m").exec(out)?.[1] ?? "");
  return {
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    p50Ms: pct("50"),
    p99Ms: pct("99"),
    errors: [/Socket errors:.*/.exec(out)?.[0], /Non-2xx.*/.exec(out)?.[0]].filter(Boolean).join("; ") || "none",
  };
}

/** The origin's HAProxy configuration: 200 "ok" on 80 and 443 (TLS). */
function originConfig(pem: string): string {
  return [
    "global",
    "    maxconn 4000",
    "defaults",
    "    mode http",
    "    timeout client 30s",
    "    timeout server 30s",
    "    timeout connect 5s",
    "frontend origin",
    "    bind :80",
    `    bind :443 ssl crt ${pem}`,
    '    http-request return status 200 content-type text/plain string "ok"',
    "",
  ].join("\n");
}

/** The median (upper median for an even count). */
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

async function main(): Promise<void> {
  const haproxy = requireTool("haproxy", "haproxy");
  const storescp = requireTool("storescp", "dcmtk");
  requireTool("wrk", "wrk");
  const data = tempDir("bench-dicom");
  let lb: LbTopology | undefined;
  try {
    console.log(`# imaging-lb data-plane benchmark (${new Date().toISOString()}, ${cpus().length} CPUs, load ${loadavg().map((l) => l.toFixed(2)).join(" ")})`);
    const t0 = Date.now();
    const files = generateDicomInstances({ dir: data.path, count: DICOM_COUNT, sizeBytes: DICOM_MB * 1024 * 1024 });
    const totalBytes = files.reduce((sum, f) => sum + f.sizeBytes, 0);
    console.log(`generated ${files.length} × ${DICOM_MB} MB DICOM instances (${(totalBytes / 1e6).toFixed(0)} MB) in ${Date.now() - t0} ms`);

    lb = buildOneArm({ servers: 2, vips: 2 });
    const topo = lb.topology;
    const env = productEnvironment({
      example: "agfa-ei-one-arm",
      lb,
      patch: {
        services: {
          plain: {
            description: "Plain HTTP service for the benchmark (no TLS), otherwise like XERO",
            vip: "web",
            mode: "http",
            frontendPorts: [PLAIN_PORT],
            backendPort: 80,
            persistence: { type: "cookie-source" },
            healthCheck: { type: "http", path: "/" },
          },
        },
      },
    });
    const certDir = join(topo.workDir, "origin-certs");
    mkdirSync(certDir, { recursive: true });
    const originPem = makeSelfSignedPem(certDir, "origin");
    const originCfg = join(topo.workDir, "origin.cfg");
    writeFileSync(originCfg, originConfig(originPem));
    for (const host of lb.servers) {
      // -dhl: no reverse DNS per association (the namespaces have no resolver: every association would wait for it).
      topo.spawn(host, storescp, ["--ignore", "-dhl", "-aet", "EI_CORE", "104"]);
      topo.spawn(host, haproxy, ["-f", originCfg, "-db"]);
      await topo.waitForListen(host, "0.0.0.0", 104, { timeoutMs: 10_000 });
      await topo.waitForListen(host, "0.0.0.0", 443, { timeoutMs: 10_000 });
    }
    const product = await startProductHaproxy(lb, env, { waitUp: ["be_dicom", "be_xero", "be_plain"] });
    if (product.maxconnOverride !== undefined) console.log(`note: this host cannot raise the FD limit for the rendered maxconn; HAProxy runs with -n ${product.maxconnOverride} (config unchanged)`);
    const core = env.vips.find((v) => v.name === "core")?.address ?? "";
    const web = env.vips.find((v) => v.name === "web")?.address ?? "";
    const server = lb.serverAddresses[0];

    // Large C-STORE: one association carrying every file, alternating direct / LB, RUNS times each.
    const store = async (address: string): Promise<number> => {
      const started = Date.now();
      const run = await storescu(topo, "client1", { address, calledAet: "EI_CORE", timeoutMs: 600_000 }, files.map((f) => f.path));
      if (run.code !== 0) throw new Error(`storescu to ${address} failed: ${run.output.slice(-2000)}`);
      return totalBytes / ((Date.now() - started) / 1000) / 1e6;
    };
    const direct: number[] = [];
    const viaLb: number[] = [];
    for (let i = 0; i < RUNS; i += 1) {
      direct.push(await store(server));
      viaLb.push(await store(core));
    }
    console.log("\n## DICOM C-STORE, one association, storescu → storescp --ignore (MB/s, runs)");
    console.log(`direct to ${server}:104      ${direct.map((v) => fmt(v, 1)).join(", ")}   median ${fmt(median(direct), 1)}`);
    console.log(`through LB ${core}:104   ${viaLb.map((v) => fmt(v, 1)).join(", ")}   median ${fmt(median(viaLb), 1)}`);
    const ratio = median(viaLb) / median(direct);
    console.log(`ratio LB/direct: ${fmt(ratio)} (target ≥ 0.80: ${ratio >= 0.8 ? "met" : "MISSED"})`);

    // HTTP with wrk, keep-alive, 2-byte responses.
    const cases: Array<[string, string, string]> = [
      ["HTTPS direct (origin TLS)", `https://${server}/`, "https"],
      ["HTTPS through LB (xero: TLS terminated, cookie, XFF)", `https://${web}/`, "https"],
      ["HTTP direct (plain)", `http://${server}/`, "http"],
      [`HTTP through LB (plain service :${PLAIN_PORT})`, `http://${web}:${PLAIN_PORT}/`, "http"],
    ];
    for (const connections of [1, 10]) {
      console.log(`\n## HTTP keep-alive, wrk -t1 -c${connections} -d${WRK_SECONDS}s, median of ${RUNS} runs (requests/s, latency p50 / p99 ms)`);
      const results = new Map<string, WrkResult>();
      for (const [name, url] of cases) {
        // RUNS runs per case, medians of each figure (the test host's other load makes single runs noisy).
        const runs: WrkResult[] = [];
        for (let i = 0; i < RUNS; i += 1) runs.push(await wrk(topo, "client1", url, connections));
        const r: WrkResult = {
          requestsPerSecond: median(runs.map((x) => x.requestsPerSecond)),
          p50Ms: median(runs.map((x) => x.p50Ms)),
          p99Ms: median(runs.map((x) => x.p99Ms)),
          errors: [...new Set(runs.map((x) => x.errors))].join(" / "),
        };
        results.set(name, r);
        console.log(`${name.padEnd(56)} ${fmt(r.requestsPerSecond, 0).padStart(8)} req/s   p50 ${fmt(r.p50Ms, 3)}   p99 ${fmt(r.p99Ms, 3)}   errors: ${r.errors}`);
      }
      for (const scheme of ["HTTPS", "HTTP"]) {
        const [d, l] = cases.filter(([n]) => n.startsWith(`${scheme} `)).map(([n]) => results.get(n) as WrkResult);
        const added = l.p99Ms - d.p99Ms;
        console.log(
          `${scheme}: LB/direct req/s ${fmt(l.requestsPerSecond / d.requestsPerSecond)}, added p50 ${fmt(l.p50Ms - d.p50Ms, 3)} ms, ` +
            `added p99 ${fmt(added, 3)} ms (target ≤ 1 ms: ${added <= 1 ? "met" : "MISSED"})`,
        );
      }
    }
  } finally {
    lb?.topology.destroy();
    data.cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
