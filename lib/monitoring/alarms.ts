/**
 * What the stack watches, as data: the metric series the nodes' agents send (from the node contract), the
 * backends they are sent for (from the haproxy.cfg model the nodes run), and every alarm with its metric,
 * statistic, threshold, periods and missing-data rule. The constructs turn these into CloudWatch resources;
 * the tests evaluate the same alarms against what a real agent sent. Pure: imports nothing from cdktf.
 */
import { ALARM_DEFAULTS, type AlarmKind } from "../config/monitoring";
import { usesKeepalived, type ResolvedEnvironment } from "../config/model";
import { NODE_CONTRACT, metricRef, type MetricName, type MetricRef } from "../contract/node-contract";
import { buildHaproxyConfig } from "../haproxy/build";

const M = NODE_CONTRACT.metrics;

/** A backend whose figures the nodes send (`be_<service>[_<route>]`). */
export interface MonitoredBackend {
  /** HAProxy's backend name: the Backend dimension. */
  readonly name: string;
  /** The service it belongs to. */
  readonly service: string;
  readonly mode: "http" | "tcp";
  /** Active (non-backup) servers it is configured with. */
  readonly activeServers: number;
}

/** The backends of the haproxy.cfg the nodes run whose names match the contract's backendPattern, by name. */
export function monitoredBackends(env: ResolvedEnvironment): MonitoredBackend[] {
  const pattern = new RegExp(M.backendPattern);
  const serviceOf = new Map<string, string>();
  for (const s of env.services) {
    serviceOf.set(`be_${s.name}`, s.name);
    for (const r of s.routes) serviceOf.set(`be_${s.name}_${r.name}`, s.name);
  }
  // Every node runs the same backends (vipMode nlb's nodes differ only in their frontends' addresses).
  return buildHaproxyConfig(env, { node: env.nodes[0].name })
    .backends.filter((b) => pattern.test(b.name))
    .map((b) => ({
      name: b.name,
      service: serviceOf.get(b.name) ?? b.name.replace(/^be_/, ""),
      mode: b.mode,
      activeServers: b.servers.filter((s) => !s.options.includes("backup")).length,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Whether a metric is sent for this subject (keepalived-pair-only and http-only metrics). */
function sent(name: MetricName, vrrp: boolean, backend?: MonitoredBackend): boolean {
  const when = M.definitions[name].when as string;
  if (when === "vrrp") return vrrp;
  if (when === "http") return backend?.mode === "http";
  return true;
}

/** Every metric series the nodes send: what the CloudWatch bill counts (one custom metric each). */
export function metricSeries(env: ResolvedEnvironment): MetricRef[] {
  if (!env.monitoring.enabled) return [];
  const vrrp = usesKeepalived(env);
  const names = Object.keys(M.definitions) as MetricName[];
  const out: MetricRef[] = [];
  for (const node of env.nodes) {
    const subject = { environment: env.name, node: node.name };
    for (const name of names) if (M.definitions[name].scope === "node" && sent(name, vrrp)) out.push(metricRef(name, subject));
    for (const b of monitoredBackends(env)) {
      for (const name of names) if (M.definitions[name].scope === "backend" && sent(name, vrrp, b)) out.push(metricRef(name, { ...subject, backend: b.name }));
    }
    for (const c of env.certificates) out.push(metricRef("CertificateDaysLeft", { ...subject, certificate: c.name }));
  }
  return out;
}

export type Statistic = "Minimum" | "Maximum" | "Sum" | "Average";
export type Comparison = "LessThanThreshold" | "GreaterThanThreshold" | "GreaterThanOrEqualToThreshold";
export type MissingData = "breaching" | "notBreaching" | "missing";

/** A metric with the statistic an alarm takes of it per period. */
export interface WatchedMetric extends MetricRef {
  readonly statistic: Statistic;
}

/** One alarm, as data. */
export interface AlarmSpec {
  /** The construct id (`alarm-...`, from the environment's own names: stable across changes). */
  readonly id: string;
  readonly kind: AlarmKind;
  /** The AlarmName: what the notification's subject shows. */
  readonly name: string;
  readonly description: string;
  readonly severity: "critical" | "warning";
  /** The node it is about (a pair-wide alarm: undefined). */
  readonly node?: string;
  /** One metric of the contract … */
  readonly metric?: WatchedMetric;
  /** … or an expression over several (metric math; `metrics` by their id in the expression) … */
  readonly expression?: { readonly id: string; readonly expression: string; readonly label: string; readonly metrics: Readonly<Record<string, WatchedMetric>> };
  /** … or EC2's own StatusCheckFailed_System of this node's instance (its InstanceId is known at deploy only). */
  readonly ec2StatusCheckOf?: string;
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly comparison: Comparison;
  readonly threshold: number;
  readonly treatMissingData: MissingData;
  /** Also EC2's recover action. */
  readonly recover: boolean;
}

/** The runbook's heading of each alarm (docs/alarms.md): the description points there. */
export const RUNBOOK_HEADINGS: Readonly<Record<AlarmKind, string>> = {
  serverDown: "A backend below its servers",
  serviceDown: "A service with no server UP",
  haproxyDown: "HAProxy not serving",
  failover: "Failover",
  pairMasters: "Two MASTERs or none",
  rolloutFailed: "Rollout failed or held",
  notReporting: "Node not reporting",
  certificateExpiry: "Certificate expiring",
  systemStatusCheck: "EC2 system status check failed",
};

/** A construct-id-safe form of a name (backends may hold `_`; kept as they are). */
const idPart = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, "-");

/** Every alarm of the environment (none with monitoring off; switched-off kinds left out). */
export function alarmSpecs(env: ResolvedEnvironment): AlarmSpec[] {
  const m = env.monitoring;
  if (!m.enabled) return [];
  // Roles exist only where keepalived moves the VIPs: vipMode nlb's nodes are all active and have none.
  const vrrp = usesKeepalived(env);
  const prefix = `imaging-lb ${env.name}`;
  const out: AlarmSpec[] = [];
  const add = (
    kind: AlarmKind,
    spec: Omit<AlarmSpec, "kind" | "severity" | "periodSeconds" | "evaluationPeriods" | "datapointsToAlarm" | "recover" | "description" | "name"> & {
      readonly name: string;
      readonly what: string;
      readonly recover?: boolean;
    },
  ) => {
    const setting = m.alarms[kind];
    if (!setting.enabled || (ALARM_DEFAULTS[kind].vrrpOnly && !vrrp)) return;
    const severity = ALARM_DEFAULTS[kind].severity;
    const { what, ...rest } = spec;
    out.push({
      ...rest,
      kind,
      severity,
      name: `${prefix}${spec.name} (${severity})`,
      description: `${what}. Runbook: docs/alarms.md, "${RUNBOOK_HEADINGS[kind]}" (imaging-lb).`,
      periodSeconds: setting.periodSeconds,
      evaluationPeriods: setting.evaluationPeriods,
      datapointsToAlarm: setting.evaluationPeriods,
      recover: spec.recover ?? false,
    });
  };
  const watch = (name: MetricName, statistic: Statistic, subject: { node: string; backend?: string; certificate?: string }): WatchedMetric => ({
    ...metricRef(name, { environment: env.name, ...subject }),
    statistic,
  });
  const backends = monitoredBackends(env);
  const staleAfter = NODE_CONTRACT.defaults.heartbeatSeconds * NODE_CONTRACT.defaults.staleHeartbeats;

  for (const node of env.nodes) {
    const n = node.name;
    for (const b of backends) {
      // One server: "below its servers" is "no server UP", which serviceDown says.
      if (b.activeServers > 1) {
        add("serverDown", {
          id: `alarm-${n}-${idPart(b.name)}-server-down`,
          name: ` ${n}: ${b.name} below its ${b.activeServers} servers`,
          what: `Node ${n}: fewer than the ${b.activeServers} configured servers of ${b.name} (service ${b.service}) are UP`,
          node: n,
          metric: watch("ServersUp", "Minimum", { node: n, backend: b.name }),
          comparison: "LessThanThreshold",
          threshold: b.activeServers,
          treatMissingData: "notBreaching",
        });
      }
      if (b.activeServers > 0) {
        add("serviceDown", {
          id: `alarm-${n}-${idPart(b.name)}-no-server`,
          name: ` ${n}: ${b.name} has no server UP`,
          what: `Node ${n}: no server of ${b.name} (service ${b.service}) is UP; clients of this node get errors or the sorry server`,
          node: n,
          metric: watch("ServersUp", "Maximum", { node: n, backend: b.name }),
          comparison: "LessThanThreshold",
          threshold: 1,
          treatMissingData: "notBreaching",
        });
      }
    }
    add("haproxyDown", {
      id: `alarm-${n}-haproxy-down`,
      name: ` ${n}: HAProxy not serving`,
      what: `Node ${n}: HAProxy's worker does not answer its runtime API or its loopback /healthz`,
      node: n,
      metric: watch("HaproxyServing", "Maximum", { node: n }),
      comparison: "LessThanThreshold",
      threshold: 1,
      treatMissingData: "notBreaching",
    });
    add("failover", {
      id: `alarm-${n}-failover`,
      name: ` ${n}: role changed (failover)`,
      what: `Node ${n} became or stopped being the pair's MASTER: the VIPs moved`,
      node: n,
      metric: watch("RoleChanges", "Sum", { node: n }),
      comparison: "GreaterThanThreshold",
      threshold: 0,
      treatMissingData: "notBreaching",
    });
    add("rolloutFailed", {
      id: `alarm-${n}-rollout-failed`,
      name: ` ${n}: rollout failed or held`,
      what: `Node ${n}'s agent did not apply the desired configuration (failed, rolled back, refused or held); it serves the last good one`,
      node: n,
      metric: watch("RolloutFailed", "Maximum", { node: n }),
      comparison: "GreaterThanThreshold",
      threshold: 0,
      treatMissingData: "notBreaching",
    });
    add("notReporting", {
      id: `alarm-${n}-not-reporting`,
      name: ` ${n}: not reporting`,
      what: `Node ${n}: no metrics arrive (agent, instance or network down), or its status in S3 is older than ${staleAfter} s`,
      node: n,
      metric: watch("StatusAge", "Maximum", { node: n }),
      comparison: "GreaterThanThreshold",
      threshold: staleAfter,
      treatMissingData: "breaching",
    });
    const days = m.alarms.certificateExpiry.days;
    for (const c of env.certificates) {
      add("certificateExpiry", {
        id: `alarm-${n}-certificate-${idPart(c.name)}`,
        name: ` ${n}: certificate ${c.name} expires within ${days} days`,
        what: `Node ${n}: the certificate ${c.name} it serves (${c.secretArn}) expires in less than ${days} days`,
        node: n,
        metric: watch("CertificateDaysLeft", "Minimum", { node: n, certificate: c.name }),
        comparison: "LessThanThreshold",
        threshold: days,
        treatMissingData: "notBreaching",
      });
    }
    add("systemStatusCheck", {
      id: `alarm-${n}-system-status`,
      name: ` ${n}: EC2 system status check failed`,
      what: `Node ${n}: EC2's system status check failed (hardware, power or network of the host)${m.alarms.systemStatusCheck.recover ? "; EC2 recovers the instance onto other hardware with the same ENIs and addresses" : ""}`,
      node: n,
      ec2StatusCheckOf: n,
      comparison: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      treatMissingData: "missing",
      recover: m.alarms.systemStatusCheck.recover,
    });
  }
  if (vrrp) {
    // MASTER's HaRole is the largest value, so FLOOR(role / MASTER) is 1 for a MASTER and 0 otherwise; a
    // node that sends nothing counts as not MASTER.
    const master = M.haRoles.MASTER;
    if (Object.values(M.haRoles).some((v) => v !== master && (v >= master || v < 0))) throw new Error("contract metrics.haRoles: MASTER must be the largest value");
    const ids = env.nodes.map((_, i) => `role${i + 1}`);
    add("pairMasters", {
      id: "alarm-pair-masters",
      name: `: not exactly one MASTER`,
      what: `Nodes ${env.nodes.map((x) => x.name).join(" and ")}: both hold the VIPs (split brain) or neither does`,
      expression: {
        id: "masters",
        expression: `ABS(${ids.map((id) => `FLOOR(FILL(${id},0)/${master})`).join("+")}-1)`,
        label: "MASTERs other than one",
        metrics: Object.fromEntries(env.nodes.map((x, i) => [ids[i], watch("HaRole", "Maximum", { node: x.name })])),
      },
      comparison: "GreaterThanThreshold",
      threshold: 0,
      treatMissingData: "notBreaching",
    });
  }
  return out;
}
