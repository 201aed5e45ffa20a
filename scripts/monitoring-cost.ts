/**
 * What monitoring costs per month for an environment: CloudWatch's custom metrics (one per series the nodes
 * send), alarms (per metric they watch), the dashboard, the PutMetricData requests (one per node per minute),
 * the alarm topic's KMS key and, in a VPC the stack creates, the CloudWatch interface endpoint. Counts come
 * from the code (metricSeries, alarmSpecs); prices are AWS's list prices in eu-west-1 (and us-east-1) as of
 * writing, before the free tier (10 metrics, 10 alarms, 3 dashboards, 1 million requests per account), which
 * an account with other workloads has used up. docs/alarms.md holds this script's table for the examples;
 * test/docs.test.ts fails when they differ.
 *
 * Usage (after `npm run build`): node dist/scripts/monitoring-cost.js [env.yaml ...]   (default: the examples)
 */
import { join } from "node:path";
import { loadEnvironment } from "../lib/load/load";
import type { ResolvedEnvironment } from "../lib/config/model";
import { alarmSpecs, metricSeries } from "../lib/monitoring/alarms";

/** USD list prices per month (CloudWatch, KMS and PrivateLink pricing pages). */
export const PRICES = {
  /** Per custom metric (series) and month, first 10,000 metrics. */
  metric: 0.3,
  /** Per standard-resolution alarm metric and month (a metric-math alarm pays per metric it reads). */
  alarmMetric: 0.1,
  dashboard: 3,
  /** Per 1,000 PutMetricData requests. */
  thousandRequests: 0.01,
  kmsKey: 1,
  /** An interface endpoint per availability zone: USD 0.01 an hour (eu-west-1: 0.011), 730 hours. */
  endpointPerAz: 7.3,
} as const;

const MINUTES_PER_MONTH = 730 * 60;

/** One environment's monthly figures. */
export interface MonitoringCost {
  readonly environment: string;
  readonly nodes: number;
  readonly metrics: number;
  readonly alarms: number;
  readonly alarmMetrics: number;
  readonly requests: number;
  /** USD: metrics, alarms, dashboard, requests, key (without the endpoint). */
  readonly cloudWatch: number;
  /** USD: the CloudWatch interface endpoint of a created VPC (0 when adopted). */
  readonly endpoint: number;
}

export function monitoringCost(env: ResolvedEnvironment): MonitoringCost {
  const m = env.monitoring;
  const series = metricSeries(env).length;
  const specs = alarmSpecs(env);
  const alarmMetrics = specs.reduce((n, s) => n + (s.expression ? Object.keys(s.expression.metrics).length : 1), 0);
  const requests = m.enabled ? env.nodes.length * MINUTES_PER_MONTH : 0;
  const cloudWatch =
    series * PRICES.metric +
    alarmMetrics * PRICES.alarmMetric +
    (m.enabled && m.dashboard ? PRICES.dashboard : 0) +
    (requests / 1000) * PRICES.thousandRequests +
    (m.enabled && m.notifications.topicArn === undefined ? PRICES.kmsKey : 0);
  const zones = new Set(env.nodes.map((n) => n.internalSubnet.availabilityZone)).size;
  const endpoint = m.enabled && env.network.vpcId === undefined ? zones * PRICES.endpointPerAz : 0;
  return { environment: env.name, nodes: env.nodes.length, metrics: series, alarms: specs.length, alarmMetrics, requests, cloudWatch, endpoint };
}

const usd = (n: number) => `USD ${n.toFixed(2)}`;

/** The table docs/alarms.md shows (Markdown). */
export function costTable(envs: readonly ResolvedEnvironment[]): string {
  const rows = envs.map((env) => {
    const c = monitoringCost(env);
    return `| \`${c.environment}\` | ${c.nodes} | ${c.metrics} | ${c.alarms} (${c.alarmMetrics} metrics) | ${c.requests.toLocaleString("en-US")} | ${usd(c.cloudWatch)} | ${usd(c.endpoint)} | **${usd(c.cloudWatch + c.endpoint)}** |`;
  });
  return [
    "| example | nodes | metrics | alarms | requests | CloudWatch + key | endpoint (created VPC) | a month |",
    "|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
  ].join("\n");
}

/** The bundled examples, resolved. */
export function exampleEnvironments(): ResolvedEnvironment[] {
  const root = join(__dirname, "..", "..");
  return ["agfa-ei-one-arm", "agfa-ei-two-arm", "agfa-ei-ha-pair", "agfa-ei-nlb"].map((n) => loadEnvironment(join(root, "examples", `${n}.yaml`)));
}

if (require.main === module) {
  const files = process.argv.slice(2);
  process.stdout.write(costTable(files.length > 0 ? files.map((f) => loadEnvironment(f)) : exampleEnvironments()));
}
