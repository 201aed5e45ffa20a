/**
 * The environment's CloudWatch dashboard, as the JSON body CloudWatch takes: the alarms' states, then per
 * node (HAProxy serving, the VRRP role, the rollout, the status's age, the certificates' days left), then per
 * service and backend (servers UP against configured on each node, sessions, connection errors and 5xx).
 * Pure: the alarms' ARNs come in as strings (tokens at synth time).
 */
import { usesKeepalived, type ResolvedEnvironment } from "../config/model";
import { NODE_CONTRACT, metricRef, type MetricName } from "../contract/node-contract";
import { monitoredBackends } from "./alarms";

const M = NODE_CONTRACT.metrics;

interface Widget {
  readonly type: "metric" | "alarm" | "text";
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly properties: Record<string, unknown>;
}

/** The dashboard's name in CloudWatch. */
export const dashboardName = (environment: string) => `imaging-lb-${environment}`;

/**
 * The dashboard body of `env`. `alarmArns`: the alarms shown in its status widget (at most 100, CloudWatch's
 * limit for one widget; the rest are on the CloudWatch alarms page).
 */
export function dashboardBody(env: ResolvedEnvironment, alarmArns: readonly string[]): Record<string, unknown> {
  const vrrp = usesKeepalived(env);
  const widgets: Widget[] = [];
  let y = 0;
  const row = (height: number, items: ReadonlyArray<Omit<Widget, "x" | "y" | "height">>) => {
    if (items.length === 0) return;
    let x = 0;
    for (const item of items) {
      widgets.push({ ...item, x, y, height } as Widget);
      x += item.width;
    }
    y += height;
  };
  const series = (name: MetricName, node: string, extra: { backend?: string; certificate?: string } = {}, label?: string) => {
    const ref = metricRef(name, { environment: env.name, node, ...extra });
    return [ref.namespace, ref.name, ...Object.entries(ref.dimensions).flat(), { label: label ?? `${node} ${name}` }];
  };
  const graph = (title: string, metrics: unknown[], stat: string, extra: Record<string, unknown> = {}) => ({
    type: "metric" as const,
    width: 8,
    properties: { title, view: "timeSeries", region: env.region, stat, period: 60, metrics, ...extra },
  });

  row(2, [
    {
      type: "text",
      width: 24,
      properties: {
        markdown: `## imaging-lb ${env.name}\nNodes ${env.nodes.map((n) => n.name).join(", ")}; services ${env.services.map((s) => s.name).join(", ")}. Metrics: namespace \`${M.namespace}\`, sent by each node's agent once a minute. What each alarm means and what to do: docs/alarms.md.`,
      },
    },
  ]);
  if (alarmArns.length > 0) {
    row(Math.min(12, 2 + Math.ceil(alarmArns.length / 4)), [
      { type: "alarm", width: 24, properties: { title: "Alarms", alarms: alarmArns.slice(0, 100), sortBy: "stateUpdatedTimestamp" } },
    ]);
  }
  const nodes = env.nodes.map((n) => n.name);
  row(6, [
    graph("HAProxy serving (1) per node", nodes.map((n) => series("HaproxyServing", n)), "Minimum", { yAxis: { left: { min: 0, max: 1 } } }),
    vrrp
      ? graph("VRRP role: 2 MASTER, 1 BACKUP, 0 FAULT", nodes.map((n) => series("HaRole", n)), "Maximum", { yAxis: { left: { min: 0, max: 2 } } })
      : graph("Rollout failed (1) per node", nodes.map((n) => series("RolloutFailed", n)), "Maximum", { yAxis: { left: { min: 0, max: 1 } } }),
    graph("Seconds since each node's last status", nodes.map((n) => series("StatusAge", n)), "Maximum", {
      annotations: { horizontal: [{ label: "stale", value: NODE_CONTRACT.defaults.heartbeatSeconds * NODE_CONTRACT.defaults.staleHeartbeats }] },
    }),
  ]);
  row(6, [
    ...(vrrp ? [graph("Rollout failed (1) per node", nodes.map((n) => series("RolloutFailed", n)), "Maximum", { yAxis: { left: { min: 0, max: 1 } } })] : []),
    ...(vrrp ? [graph("Role changes per node", nodes.map((n) => series("RoleChanges", n)), "Sum")] : []),
    ...(env.certificates.length > 0
      ? [
          graph(
            "Certificates: days left",
            nodes.flatMap((n) => env.certificates.map((c) => series("CertificateDaysLeft", n, { certificate: c.name }, `${n} ${c.name}`))),
            "Minimum",
            { annotations: { horizontal: [{ label: "alarm", value: env.monitoring.alarms.certificateExpiry.days }] } },
          ),
        ]
      : []),
  ]);
  for (const b of monitoredBackends(env)) {
    row(6, [
      graph(
        `${b.service}: ${b.name} servers UP of ${b.activeServers}`,
        nodes.flatMap((n) => [series("ServersUp", n, { backend: b.name }, `${n} UP`), series("ServersConfigured", n, { backend: b.name }, `${n} configured`)]),
        "Minimum",
        { yAxis: { left: { min: 0 } } },
      ),
      graph(`${b.name} current sessions`, nodes.map((n) => series("Sessions", n, { backend: b.name }, n)), "Maximum"),
      graph(
        `${b.name} connection errors${b.mode === "http" ? " and 5xx" : ""} per minute`,
        nodes.flatMap((n) => [
          series("ConnectionErrors", n, { backend: b.name }, `${n} connection errors`),
          ...(b.mode === "http" ? [series("Http5xx", n, { backend: b.name }, `${n} 5xx`)] : []),
        ]),
        "Sum",
      ),
    ]);
  }
  return { start: "-PT6H", periodOverride: "inherit", widgets };
}
