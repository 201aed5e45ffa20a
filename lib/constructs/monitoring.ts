/**
 * Who is told, and where operators look: the environment's alarms (lib/monitoring/alarms.ts) on the metrics
 * the nodes' agents send, an SNS topic they notify on ALARM and on OK (KMS-encrypted with a key of its own,
 * with the environment file's e-mail and HTTPS subscriptions; or an adopted topic), EC2's recover action on
 * the system status check, and the CloudWatch dashboard.
 */
import { createHash } from "node:crypto";
import { CloudwatchDashboard } from "@cdktf/provider-aws/lib/cloudwatch-dashboard";
import { CloudwatchMetricAlarm } from "@cdktf/provider-aws/lib/cloudwatch-metric-alarm";
import { KmsAlias } from "@cdktf/provider-aws/lib/kms-alias";
import { KmsKey } from "@cdktf/provider-aws/lib/kms-key";
import { SnsTopic } from "@cdktf/provider-aws/lib/sns-topic";
import { SnsTopicSubscription } from "@cdktf/provider-aws/lib/sns-topic-subscription";
import { Construct } from "constructs";
import type { ResolvedEnvironment } from "../config/model";
import { alarmSpecs, type AlarmSpec, type WatchedMetric } from "../monitoring/alarms";
import { dashboardBody, dashboardName } from "../monitoring/dashboard";
import { keyAdministeredByAccount, partitionOf } from "./instance-role";

/** Properties of {@link ImagingLbMonitoring}. */
export interface ImagingLbMonitoringProps {
  /** The resolved environment (its `monitoring` section says what to create). */
  readonly environment: ResolvedEnvironment;
  /** The account the stack deploys to (the topic key's policy). */
  readonly accountId: string;
  /** EC2 instance id of each node, by node name (the system status check alarms). */
  readonly instanceIds: Readonly<Record<string, string>>;
}

/** The name of the topic the stack creates for an environment. */
export const alarmTopicName = (environment: string) => `imaging-lb-${environment}-alarms`;

/** EC2's recover action in a region. */
export const recoverActionArn = (region: string) => `arn:${partitionOf(region)}:automate:${region}:ec2:recover`;

/**
 * The alarms, their SNS topic (created or adopted) and the dashboard of one environment; nothing when
 * `monitoring.enabled` is false. Construct ids come from the environment's names (node, backend,
 * certificate; a subscription's from a hash of its endpoint), so adding one never replaces another.
 *
 * @example
 * new ImagingLbMonitoring(this, "monitoring", { environment: env, accountId, instanceIds: { "lb-a": node.instance.id } });
 */
export class ImagingLbMonitoring extends Construct {
  /** The ARN alarms notify (created or adopted); undefined with monitoring off. */
  readonly topicArn?: string;
  /** The created topic (undefined when adopted or off). */
  readonly topic?: SnsTopic;
  /** The created topic's KMS key. */
  readonly topicKey?: KmsKey;
  /** The alarms by construct id. */
  readonly alarms: Readonly<Record<string, CloudwatchMetricAlarm>>;
  /** The dashboard (monitoring.dashboard). */
  readonly dashboard?: CloudwatchDashboard;
  /** What each alarm watches (lib/monitoring/alarms.ts), in creation order. */
  readonly specs: readonly AlarmSpec[];

  constructor(scope: Construct, id: string, props: ImagingLbMonitoringProps) {
    super(scope, id);
    const env = props.environment;
    const m = env.monitoring;
    this.specs = alarmSpecs(env);
    const alarms: Record<string, CloudwatchMetricAlarm> = {};
    this.alarms = alarms;
    if (!m.enabled) return;
    const partition = partitionOf(env.region);

    if (m.notifications.topicArn !== undefined) {
      this.topicArn = m.notifications.topicArn;
    } else {
      this.topicKey = new KmsKey(this, "topic-key", {
        description: `imaging-lb ${env.name}: encrypts the alarm topic (CloudWatch may publish to it)`,
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            keyAdministeredByAccount(partition, props.accountId),
            {
              // CloudWatch publishes the alarms' notifications to the encrypted topic: SNS asks KMS for a data
              // key on its behalf (AWS's documented statement for encrypted topics and CloudWatch alarms).
              Sid: "CloudWatchAlarmsPublish",
              Effect: "Allow",
              Principal: { Service: "cloudwatch.amazonaws.com" },
              Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
              Resource: "*",
            },
          ],
        }),
        tags: { Name: `${env.name}-alarms` },
      });
      new KmsAlias(this, "topic-key-alias", { name: `alias/imaging-lb/${env.name}/alarms`, targetKeyId: this.topicKey.keyId });
      this.topic = new SnsTopic(this, "topic", {
        name: alarmTopicName(env.name),
        displayName: `imaging-lb ${env.name}`.slice(0, 100),
        kmsMasterKeyId: this.topicKey.arn,
        tags: { Name: `${env.name}-alarms` },
      });
      this.topicArn = this.topic.arn;
      const subscriptions: Array<["email" | "https", string]> = [...m.notifications.email.map((e) => ["email", e] as ["email", string]), ...m.notifications.https.map((u) => ["https", u] as ["https", string])];
      for (const [protocol, endpoint] of subscriptions) {
        const key = createHash("sha256").update(endpoint.toLowerCase()).digest("hex").slice(0, 12);
        new SnsTopicSubscription(this, `subscription-${protocol}-${key}`, { topicArn: this.topic.arn, protocol, endpoint });
      }
    }

    const actions = [this.topicArn];
    for (const spec of this.specs) {
      const alarmActions = spec.recover ? [recoverActionArn(env.region), ...actions] : actions;
      alarms[spec.id] = new CloudwatchMetricAlarm(this, spec.id, {
        alarmName: spec.name,
        alarmDescription: spec.description,
        comparisonOperator: spec.comparison,
        threshold: spec.threshold,
        evaluationPeriods: spec.evaluationPeriods,
        datapointsToAlarm: spec.datapointsToAlarm,
        treatMissingData: spec.treatMissingData,
        alarmActions,
        okActions: actions,
        ...metricOf(spec, props.instanceIds),
        tags: { Severity: spec.severity },
      });
    }

    if (m.dashboard) {
      const arns = this.specs.map((s) => alarms[s.id].arn);
      this.dashboard = new CloudwatchDashboard(this, "dashboard", {
        dashboardName: dashboardName(env.name),
        dashboardBody: JSON.stringify(dashboardBody(env, arns)),
      });
    }
  }
}

const dimensionsOf = (metric: WatchedMetric) => ({ ...metric.dimensions });

/** The metric part of an alarm: one metric, metric math, or EC2's status check of a node's instance. */
function metricOf(spec: AlarmSpec, instanceIds: Readonly<Record<string, string>>) {
  if (spec.metric) {
    const metric = spec.metric;
    return {
      namespace: metric.namespace,
      metricName: metric.name,
      dimensions: dimensionsOf(metric),
      unit: metric.unit,
      statistic: metric.statistic,
      period: spec.periodSeconds,
    };
  }
  if (spec.expression) {
    const e = spec.expression;
    return {
      metricQuery: [
        { id: e.id, expression: e.expression, label: e.label, returnData: true },
        ...Object.entries(e.metrics).map(([id, metric]) => ({
          id,
          returnData: false,
          metric: { namespace: metric.namespace, metricName: metric.name, dimensions: dimensionsOf(metric), unit: metric.unit, stat: metric.statistic, period: spec.periodSeconds },
        })),
      ],
    };
  }
  const node = spec.ec2StatusCheckOf!;
  const instanceId = instanceIds[node];
  if (instanceId === undefined) throw new Error(`alarm ${spec.id}: no instance id for node ${node}`);
  return {
    namespace: "AWS/EC2",
    metricName: "StatusCheckFailed_System",
    dimensions: { InstanceId: instanceId },
    unit: "Count",
    statistic: "Maximum",
    period: spec.periodSeconds,
  };
}
