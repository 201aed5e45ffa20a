/**
 * The environment file's `monitoring` section: the nodes' metrics in CloudWatch, the alarms (each with its
 * default period and evaluation periods, stated once in {@link ALARM_DEFAULTS}), the SNS topic they notify
 * and the dashboard. Schema, resolved model and resolution in one file, apart from the rest of the schema.
 * Pure: imports nothing from cdktf.
 */
import { z } from "zod";
import { NODE_CONTRACT } from "../contract/node-contract";
import type { ProblemCollector } from "./locate";

/** Every alarm the stack can create, by its key in `monitoring.alarms`. */
export const ALARM_KINDS = [
  "serverDown",
  "serviceDown",
  "haproxyDown",
  "failover",
  "pairMasters",
  "rolloutFailed",
  "notReporting",
  "certificateExpiry",
  "systemStatusCheck",
] as const;
export type AlarmKind = (typeof ALARM_KINDS)[number];

/** What each alarm watches, and its defaults. */
export interface AlarmDefault {
  /** One line: what raises it (the schema's description and the runbook's heading). */
  readonly summary: string;
  readonly severity: "critical" | "warning";
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  /** Only where keepalived moves the VIPs between two nodes (every vipMode but nlb). */
  readonly vrrpOnly?: boolean;
}

/**
 * The alarms' defaults: periods of one minute (the agent sends once a minute), evaluated over enough periods
 * that a reload or a check's flap does not page anyone, but a service without servers does at once.
 */
export const ALARM_DEFAULTS: Readonly<Record<AlarmKind, AlarmDefault>> = {
  serverDown: { summary: "a backend has fewer servers UP than configured (per node and backend)", severity: "warning", periodSeconds: 60, evaluationPeriods: 3 },
  serviceDown: { summary: "a backend has no server UP (per node and backend)", severity: "critical", periodSeconds: 60, evaluationPeriods: 1 },
  haproxyDown: { summary: "a node's HAProxy does not answer (its runtime API or its loopback /healthz)", severity: "critical", periodSeconds: 60, evaluationPeriods: 2 },
  failover: { summary: "a node of the pair became or stopped being MASTER (the VIPs moved)", severity: "warning", periodSeconds: 60, evaluationPeriods: 1, vrrpOnly: true },
  pairMasters: { summary: "the pair has two MASTERs (split brain) or none", severity: "critical", periodSeconds: 60, evaluationPeriods: 2, vrrpOnly: true },
  rolloutFailed: { summary: "a node's rollout failed, was rolled back, refused or held", severity: "warning", periodSeconds: 60, evaluationPeriods: 1 },
  notReporting: { summary: "a node's agent sends no metrics, or has not written its status for three heartbeats (missing data counts as breaching)", severity: "critical", periodSeconds: 60, evaluationPeriods: 3 },
  certificateExpiry: { summary: "a certificate a node serves expires within `days` days", severity: "warning", periodSeconds: 3600, evaluationPeriods: 1 },
  systemStatusCheck: { summary: "EC2's system status check of a node failed: the instance is recovered (same ENIs and addresses) unless `recover` is false", severity: "critical", periodSeconds: 60, evaluationPeriods: 2 },
};

/** Days before a certificate's end that certificateExpiry fires. */
export const DEFAULT_CERTIFICATE_DAYS = 30;

const PERIOD_ERROR = "expected a period of 60-86400 seconds in whole minutes (the nodes send standard-resolution metrics, once a minute)";

function alarmSchema(kind: AlarmKind) {
  const d = ALARM_DEFAULTS[kind];
  return z.strictObject({
    enabled: z.boolean().optional().describe("Create this alarm. @default true (with monitoring.enabled)"),
    periodSeconds: z
      .int({ error: PERIOD_ERROR })
      .min(60, { error: PERIOD_ERROR })
      .max(86400, { error: PERIOD_ERROR })
      .multipleOf(60, { error: PERIOD_ERROR })
      .optional()
      .describe(`Length of one evaluated period, in seconds. @default ${d.periodSeconds}`),
    evaluationPeriods: z
      .int({ error: "expected a number of periods, 1-1440" })
      .min(1, { error: "expected a number of periods, 1-1440" })
      .max(1440, { error: "expected a number of periods, 1-1440" })
      .optional()
      .describe(`Consecutive periods that must breach before the alarm fires (and be fine before it clears). @default ${d.evaluationPeriods}`),
  });
}

const emailSchema = z.string().regex(/^[^@\s,;"'<>()]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$/, { error: "expected an e-mail address such as pacs-oncall@hospital.example" });
const httpsSchema = z.string().regex(/^https:\/\/[^\s"'<>]+$/, { error: "expected an https:// URL (SNS posts the notifications there)" });
const topicArnSchema = z.string().regex(/^arn:aws(?:-cn|-us-gov)?:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/, {
  error: "expected an SNS topic ARN such as arn:aws:sns:eu-west-1:123456789012:pacs-alerts",
});

/** The `monitoring` section of the environment file. */
export const monitoringSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .optional()
      .describe(
        "Send the nodes' metrics to CloudWatch (namespace imaging-lb, once a minute) and create the alarms, the SNS topic and the dashboard; false: none of them. Costs and figures: docs/alarms.md. @default true",
      ),
    dashboard: z.boolean().optional().describe("Create the CloudWatch dashboard imaging-lb-<name>. @default true"),
    notifications: z
      .strictObject({
        email: z.array(emailSchema).optional().describe("Addresses subscribed to the environment's topic (each confirms the subscription from the first mail SNS sends). @default none"),
        https: z.array(httpsSchema).optional().describe("HTTPS endpoints subscribed to the topic (they confirm the subscription; a chat or paging service's webhook). @default none"),
        topicArn: topicArnSchema
          .optional()
          .describe("Send the alarms to this existing topic (in the environment's region) instead of one the stack creates; subscriptions are then yours to make. @default a KMS-encrypted topic imaging-lb-<name>-alarms, with its own key"),
      })
      .optional()
      .describe("Who is told: every alarm and its return to OK is published to one SNS topic."),
    alarms: z
      .strictObject(
        Object.fromEntries(
          ALARM_KINDS.map((kind) => {
            const extra =
              kind === "certificateExpiry"
                ? { days: z.int().min(1).max(365).optional().describe(`Days before the end of a certificate's validity that the alarm fires. @default ${DEFAULT_CERTIFICATE_DAYS}`) }
                : kind === "systemStatusCheck"
                  ? { recover: z.boolean().optional().describe("Also recover the instance (EC2's recover action: the same instance, ENIs and addresses on other hardware). @default true") }
                  : {};
            return [kind, alarmSchema(kind).extend(extra).optional().describe(`${ALARM_DEFAULTS[kind].summary}${ALARM_DEFAULTS[kind].vrrpOnly ? " (keepalived pair only: not vipMode nlb)" : ""}; ${ALARM_DEFAULTS[kind].severity}.`)];
          }),
        ) as Record<AlarmKind, z.ZodOptional<ReturnType<typeof alarmSchema>>>,
      )
      .optional()
      .describe("Tune or switch off single alarms (docs/alarms.md: what each means and what to do)."),
  })
  .describe("Metrics, alarms, notifications and dashboard in CloudWatch (docs/alarms.md).");

export type MonitoringInput = z.output<typeof monitoringSchema>;

/** One alarm's resolved settings. */
export interface ResolvedAlarmSetting {
  readonly enabled: boolean;
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
}

export interface ResolvedMonitoring {
  /** Metrics sent, alarms, topic and dashboard created. */
  readonly enabled: boolean;
  /** Seconds between two sends of a node's metrics (the contract's interval). */
  readonly metricsIntervalSeconds: number;
  readonly dashboard: boolean;
  readonly notifications: {
    /** An adopted topic; undefined: the stack creates one. */
    readonly topicArn?: string;
    readonly email: readonly string[];
    readonly https: readonly string[];
  };
  readonly alarms: Readonly<Record<AlarmKind, ResolvedAlarmSetting>> & {
    readonly certificateExpiry: ResolvedAlarmSetting & { readonly days: number };
    readonly systemStatusCheck: ResolvedAlarmSetting & { readonly recover: boolean };
  };
}

/** The `monitoring` section with every default filled in; problems (cross-field rules) go to `out`. */
export function resolveMonitoring(input: MonitoringInput | undefined, region: string, out: ProblemCollector): ResolvedMonitoring {
  const m = input ?? {};
  const path = ["monitoring"];
  const n = m.notifications ?? {};
  if (n.topicArn !== undefined) {
    const topicRegion = n.topicArn.split(":")[3];
    if (topicRegion !== region) {
      out.add([...path, "notifications", "topicArn"], `expected a topic in the environment's region ${region} (CloudWatch alarms notify topics of their own region only), got one in ${topicRegion}`);
    }
    for (const protocol of ["email", "https"] as const) {
      if ((n[protocol] ?? []).length > 0) {
        out.add(
          [...path, "notifications", protocol],
          `subscriptions are made on the topic the stack creates; with notifications.topicArn (your own topic) subscribe these on that topic, or remove topicArn to let the stack create one`,
        );
      }
    }
  }
  for (const protocol of ["email", "https"] as const) {
    const seen = new Set<string>();
    (n[protocol] ?? []).forEach((value, i) => {
      const key = value.toLowerCase();
      if (seen.has(key)) out.add([...path, "notifications", protocol, i], `"${value}" is listed twice; expected each ${protocol === "email" ? "address" : "endpoint"} once`);
      seen.add(key);
    });
  }
  const alarms = Object.fromEntries(
    ALARM_KINDS.map((kind) => {
      const own = m.alarms?.[kind] ?? {};
      const d = ALARM_DEFAULTS[kind];
      const periodSeconds = own.periodSeconds ?? d.periodSeconds;
      const evaluationPeriods = own.evaluationPeriods ?? d.evaluationPeriods;
      // CloudWatch: evaluation periods x period at most one day below hourly periods, seven days from them.
      const limit = periodSeconds < 3600 ? 86400 : 604800;
      if (periodSeconds * evaluationPeriods > limit) {
        out.add(
          [...path, "alarms", kind, own.evaluationPeriods !== undefined ? "evaluationPeriods" : "periodSeconds"],
          `expected periodSeconds x evaluationPeriods of at most ${limit} s (${limit === 86400 ? "one day, CloudWatch's limit for periods under an hour" : "seven days, CloudWatch's limit"}), got ${periodSeconds} x ${evaluationPeriods} = ${periodSeconds * evaluationPeriods}`,
        );
      }
      const extra =
        kind === "certificateExpiry"
          ? { days: (own as { days?: number }).days ?? DEFAULT_CERTIFICATE_DAYS }
          : kind === "systemStatusCheck"
            ? { recover: (own as { recover?: boolean }).recover ?? true }
            : {};
      return [kind, { enabled: own.enabled ?? true, periodSeconds, evaluationPeriods, ...extra }];
    }),
  ) as unknown as ResolvedMonitoring["alarms"];
  return {
    enabled: m.enabled ?? true,
    metricsIntervalSeconds: NODE_CONTRACT.metrics.intervalSeconds,
    dashboard: m.dashboard ?? true,
    notifications: { ...(n.topicArn !== undefined ? { topicArn: n.topicArn } : {}), email: n.email ?? [], https: n.https ?? [] },
    alarms,
  };
}

/** The resolved section in the environment file's shape (`imaging-lb expand`). */
export function monitoringDefaults(m: ResolvedMonitoring): Record<string, unknown> {
  return {
    enabled: m.enabled,
    dashboard: m.dashboard,
    alarms: Object.fromEntries(ALARM_KINDS.map((kind) => [kind, { ...m.alarms[kind] }])),
  };
}
