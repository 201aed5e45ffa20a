/**
 * CloudWatch's alarm evaluation, as the tests need it: the AWS emulator (moto) stores metrics but evaluates
 * no alarm, so the tests evaluate the alarms the stack synthesizes (aws_cloudwatch_metric_alarm as Terraform
 * JSON) against the datapoints the agents sent.
 *
 * The rules, as CloudWatch documents them: periods aligned to the wall clock; the alarm's statistic of the
 * datapoints in each period; each period breaching, not breaching or missing; missing periods counted as
 * the alarm's treat_missing_data says (breaching, notBreaching, or left out: missing/ignore); ALARM when at
 * least datapoints_to_alarm of the last evaluation_periods periods breach. Metric math: the subset of
 * functions the stack uses (+ - * /, ABS, FLOOR, FILL); a period where no metric of the expression has a
 * datapoint is missing, FILL fills the others (the reading this evaluator takes of FILL).
 *
 * Time scale: the bed's agents send every `secondsPerMinute` seconds instead of every 60; one such interval
 * stands for one CloudWatch minute, so a period of P seconds spans P/60 intervals. Only complete periods
 * are evaluated.
 */

/** One bucket of datapoints (a 1-second period of GetMetricStatistics). */
export interface Point {
  /** Epoch seconds. */
  readonly t: number;
  readonly min: number;
  readonly max: number;
  readonly sum: number;
  readonly count: number;
}

/** A metric as an alarm names it. */
export interface AlarmMetric {
  readonly namespace: string;
  readonly name: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly unit?: string;
  readonly statistic: string;
}

/** The fields of a synthesized aws_cloudwatch_metric_alarm the evaluation reads. */
export interface TfAlarm {
  readonly alarm_name: string;
  readonly namespace?: string;
  readonly metric_name?: string;
  readonly dimensions?: Record<string, string>;
  readonly unit?: string;
  readonly statistic?: string;
  readonly period?: number;
  readonly evaluation_periods: number;
  readonly datapoints_to_alarm?: number;
  readonly comparison_operator: string;
  readonly threshold: number;
  readonly treat_missing_data?: string;
  readonly metric_query?: ReadonlyArray<{
    readonly id: string;
    readonly expression?: string;
    readonly return_data?: boolean;
    readonly metric?: { readonly namespace: string; readonly metric_name: string; readonly dimensions?: Record<string, string>; readonly unit?: string; readonly stat: string; readonly period: number };
  }>;
}

/** The metrics an alarm watches, by their id in its expression (a single-metric alarm: id `m`). */
export function alarmMetrics(alarm: TfAlarm): Record<string, AlarmMetric> {
  if (alarm.metric_query) {
    return Object.fromEntries(
      alarm.metric_query
        .filter((q) => q.metric)
        .map((q) => [q.id, { namespace: q.metric!.namespace, name: q.metric!.metric_name, dimensions: q.metric!.dimensions ?? {}, unit: q.metric!.unit, statistic: q.metric!.stat }]),
    );
  }
  return { m: { namespace: alarm.namespace!, name: alarm.metric_name!, dimensions: alarm.dimensions ?? {}, unit: alarm.unit, statistic: alarm.statistic! } };
}

export function alarmPeriod(alarm: TfAlarm): number {
  return alarm.period ?? alarm.metric_query!.find((q) => q.metric)!.metric!.period;
}

/** A key naming a metric series exactly (namespace, name, sorted dimensions, unit). */
export function seriesKey(m: AlarmMetric): string {
  const dims = Object.entries(m.dimensions).sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify([m.namespace, m.name, dims, m.unit ?? null]);
}

function statistic(points: readonly Point[], stat: string): number | undefined {
  if (points.length === 0) return undefined;
  switch (stat) {
    case "Minimum":
      return Math.min(...points.map((p) => p.min));
    case "Maximum":
      return Math.max(...points.map((p) => p.max));
    case "Sum":
      return points.reduce((s, p) => s + p.sum, 0);
    case "Average":
      return points.reduce((s, p) => s + p.sum, 0) / points.reduce((s, p) => s + p.count, 0);
    case "SampleCount":
      return points.reduce((s, p) => s + p.count, 0);
    default:
      throw new Error(`statistic ${stat} is not evaluated here`);
  }
}

/** Evaluates a metric-math expression of the subset the stack uses; undefined when a value it needs is missing. */
export function evaluateExpression(expression: string, values: Readonly<Record<string, number | undefined>>): number | undefined {
  const tokens = expression.match(/\s*([A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|[-+*/(),])/g)?.map((t) => t.trim()) ?? [];
  if (tokens.join("") !== expression.replace(/\s+/g, "")) throw new Error(`cannot parse ${expression}`);
  let i = 0;
  const peek = () => tokens[i];
  const take = (want?: string) => {
    const t = tokens[i++];
    if (want !== undefined && t !== want) throw new Error(`${expression}: expected ${want} at token ${i}, got ${t}`);
    return t;
  };
  const expr = (): number | undefined => {
    let v = term();
    while (peek() === "+" || peek() === "-") {
      const op = take();
      const r = term();
      v = v === undefined || r === undefined ? undefined : op === "+" ? v + r : v - r;
    }
    return v;
  };
  const term = (): number | undefined => {
    let v = factor();
    while (peek() === "*" || peek() === "/") {
      const op = take();
      const r = factor();
      v = v === undefined || r === undefined ? undefined : op === "*" ? v * r : v / r;
    }
    return v;
  };
  const factor = (): number | undefined => {
    const t = take();
    if (t === "-") {
      const v = factor();
      return v === undefined ? undefined : -v;
    }
    if (t === "(") {
      const v = expr();
      take(")");
      return v;
    }
    if (/^\d/.test(t)) return Number(t);
    if (peek() === "(") {
      take("(");
      const args: Array<number | undefined> = [expr()];
      while (peek() === ",") {
        take(",");
        args.push(expr());
      }
      take(")");
      switch (t) {
        case "ABS":
          return args[0] === undefined ? undefined : Math.abs(args[0]);
        case "FLOOR":
          return args[0] === undefined ? undefined : Math.floor(args[0]);
        case "FILL":
          return args[0] ?? args[1];
        default:
          throw new Error(`${expression}: function ${t} is not evaluated here`);
      }
    }
    if (!(t in values)) throw new Error(`${expression}: unknown metric id ${t}`);
    return values[t];
  };
  const v = expr();
  if (i !== tokens.length) throw new Error(`${expression}: trailing tokens`);
  return v;
}

export type PeriodState = "breaching" | "ok" | "missing";

/** The outcome of one evaluation. */
export interface Evaluation {
  readonly state: "ALARM" | "OK" | "INSUFFICIENT_DATA";
  /** The evaluated periods, oldest first: the alarm's value (undefined: no data) and what it counted as. */
  readonly periods: ReadonlyArray<{ readonly start: number; readonly value: number | undefined; readonly counted: PeriodState }>;
}

/**
 * Evaluates `alarm` at `now` (epoch seconds) over `points` (by {@link seriesKey}); `secondsPerMinute`: the
 * time scale (60 on AWS).
 */
export function evaluateAlarm(alarm: TfAlarm, points: (m: AlarmMetric) => readonly Point[], now: number, secondsPerMinute: number): Evaluation {
  const length = (alarmPeriod(alarm) / 60) * secondsPerMinute;
  const end = Math.floor(now / length) * length;
  const metrics = alarmMetrics(alarm);
  const expression = alarm.metric_query?.find((q) => q.return_data !== false && q.expression)?.expression;
  const periods: Array<{ start: number; value: number | undefined; counted: PeriodState }> = [];
  for (let k = alarm.evaluation_periods; k >= 1; k--) {
    const start = end - k * length;
    const values: Record<string, number | undefined> = {};
    for (const [id, m] of Object.entries(metrics)) values[id] = statistic(points(m).filter((p) => p.t >= start && p.t < start + length), m.statistic);
    const any = Object.values(values).some((v) => v !== undefined);
    const value = !any ? undefined : expression ? evaluateExpression(expression, values) : values.m;
    let counted: PeriodState;
    if (value === undefined) {
      counted = alarm.treat_missing_data === "breaching" ? "breaching" : alarm.treat_missing_data === "notBreaching" ? "ok" : "missing";
    } else {
      const breach =
        alarm.comparison_operator === "LessThanThreshold"
          ? value < alarm.threshold
          : alarm.comparison_operator === "GreaterThanThreshold"
            ? value > alarm.threshold
            : alarm.comparison_operator === "GreaterThanOrEqualToThreshold"
              ? value >= alarm.threshold
              : alarm.comparison_operator === "LessThanOrEqualToThreshold"
                ? value <= alarm.threshold
                : (() => {
                    throw new Error(`comparison ${alarm.comparison_operator}`);
                  })();
      counted = breach ? "breaching" : "ok";
    }
    periods.push({ start, value, counted });
  }
  const counted = periods.filter((p) => p.counted !== "missing");
  if (counted.length === 0) return { state: "INSUFFICIENT_DATA", periods };
  const breaches = counted.filter((p) => p.counted === "breaching").length;
  return { state: breaches >= (alarm.datapoints_to_alarm ?? alarm.evaluation_periods) ? "ALARM" : "OK", periods };
}
