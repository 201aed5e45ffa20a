/**
 * The tests' alarm evaluator (test/helpers/alarm-eval.ts) on hand-made datapoints: the monitoring e2e test
 * trusts it to say which alarms fire, so it is checked against CloudWatch's documented rules here.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { evaluateAlarm, evaluateExpression, type Point, type TfAlarm } from "./helpers/alarm-eval";

const at = (t: number, v: number): Point => ({ t, min: v, max: v, sum: v, count: 1 });
const base: TfAlarm = {
  alarm_name: "a",
  namespace: "imaging-lb",
  metric_name: "ServersUp",
  dimensions: { Node: "lb-a" },
  unit: "Count",
  statistic: "Minimum",
  period: 60,
  evaluation_periods: 3,
  datapoints_to_alarm: 3,
  comparison_operator: "LessThanThreshold",
  threshold: 2,
  treat_missing_data: "notBreaching",
};

describe("alarm evaluation (the tests' stand-in for CloudWatch)", () => {
  it("M of N complete periods, aligned to the clock; the period in progress is not evaluated", () => {
    const points = [at(1000, 1), at(1060, 1), at(1130, 1), at(1190, 1)]; // periods 960, 1020, 1080, 1140 (+ one at 1190)
    assert.equal(evaluateAlarm(base, () => points, 1200, 60).state, "ALARM");
    assert.deepEqual(evaluateAlarm(base, () => points, 1200, 60).periods.map((p) => p.start), [1020, 1080, 1140]);
    assert.equal(evaluateAlarm(base, () => [...points.slice(0, 3), at(1150, 2)], 1200, 60).state, "OK", "one good period of three");
    assert.equal(evaluateAlarm(base, () => points, 1210, 60).state, "ALARM");
  });

  it("missing data: notBreaching counts as good, breaching as bad, missing is left out", () => {
    assert.equal(evaluateAlarm(base, () => [at(1090, 1)], 1200, 60).state, "OK");
    assert.equal(evaluateAlarm({ ...base, treat_missing_data: "breaching" }, () => [], 1200, 60).state, "ALARM");
    assert.equal(evaluateAlarm({ ...base, treat_missing_data: "breaching" }, () => [at(1150, 5)], 1200, 60).state, "OK");
    assert.equal(evaluateAlarm({ ...base, treat_missing_data: "missing" }, () => [], 1200, 60).state, "INSUFFICIENT_DATA");
  });

  it("statistics over a period's datapoints; the time scale stretches periods", () => {
    const hourly = { ...base, period: 3600, evaluation_periods: 1, datapoints_to_alarm: 1, threshold: 30, metric_name: "CertificateDaysLeft" };
    // Scale 4 s per minute: a 3600 s period is 240 s; the minimum of its datapoints decides.
    assert.equal(evaluateAlarm(hourly, () => [at(730, 400), at(800, 10), at(900, 400)], 960, 4).state, "ALARM");
    assert.equal(evaluateAlarm(hourly, () => [at(730, 400), at(900, 400)], 960, 4).state, "OK");
    assert.equal(evaluateAlarm({ ...hourly, statistic: "Sum", threshold: 0, comparison_operator: "GreaterThanThreshold" }, () => [at(730, 0), at(735, 1)], 960, 4).state, "ALARM");
  });

  it("metric math: the pair's MASTER count, a silent node counting as not MASTER", () => {
    const expr = "ABS(FLOOR(FILL(role1,0)/2)+FLOOR(FILL(role2,0)/2)-1)";
    assert.equal(evaluateExpression(expr, { role1: 2, role2: 1 }), 0);
    assert.equal(evaluateExpression(expr, { role1: 2, role2: 2 }), 1);
    assert.equal(evaluateExpression(expr, { role1: 1, role2: 0 }), 1);
    assert.equal(evaluateExpression(expr, { role1: undefined, role2: 1 }), 1);
    assert.equal(evaluateExpression(expr, { role1: undefined, role2: 2 }), 0);
    const math: TfAlarm = {
      alarm_name: "m",
      evaluation_periods: 2,
      datapoints_to_alarm: 2,
      comparison_operator: "GreaterThanThreshold",
      threshold: 0,
      treat_missing_data: "notBreaching",
      metric_query: [
        { id: "masters", expression: expr, return_data: true },
        { id: "role1", return_data: false, metric: { namespace: "imaging-lb", metric_name: "HaRole", dimensions: { Node: "lb-a" }, unit: "None", stat: "Maximum", period: 60 } },
        { id: "role2", return_data: false, metric: { namespace: "imaging-lb", metric_name: "HaRole", dimensions: { Node: "lb-b" }, unit: "None", stat: "Maximum", period: 60 } },
      ],
    };
    const roles = (a: number[], b: number[]) => (m: { dimensions: Readonly<Record<string, string>> }) =>
      (m.dimensions.Node === "lb-a" ? a : b).map((v, i) => at(1090 + 60 * i, v)).filter((p) => !Number.isNaN(p.max));
    assert.equal(evaluateAlarm(math, roles([2, 2], [1, 1]), 1200, 60).state, "OK");
    assert.equal(evaluateAlarm(math, roles([2, 2], [2, 2]), 1200, 60).state, "ALARM");
    assert.equal(evaluateAlarm(math, roles([2, 2], [1, 2]), 1200, 60).state, "OK", "one period of two");
    assert.equal(evaluateAlarm(math, roles([NaN, NaN], [NaN, NaN]), 1200, 60).state, "OK", "no data at all: missing, not breaching");
    assert.throws(() => evaluateExpression("IF(role1==2,1,0)", { role1: 2 }), /IF|cannot parse/);
  });
});
