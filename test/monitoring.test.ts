/**
 * Metrics, alarms, notifications and dashboard (issue 23), without AWS: the environment file's monitoring
 * section (defaults stated once, every problem with file:line:col), the series the nodes send and the alarms
 * on them (none on a metric nobody sends), the same names, units and dimensions in the agent's Python, and
 * the synthesized topic, key, subscriptions, alarms, recover action and dashboard.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Testing } from "cdktf";
import { agentFiles, BUNDLE_PATHS, nodeBundle } from "../lib/node/bundle";
import { ConfigError } from "../lib/config/errors";
import { expandEnvironment, loadEnvironment, parseEnvironment } from "../lib/load/load";
import { ALARM_DEFAULTS, ALARM_KINDS } from "../lib/config/monitoring";
import { ImagingLbStack } from "../lib/constructs/imaging-lb-stack";
import { NODE_CONTRACT, metricRef, type MetricName } from "../lib/contract/node-contract";
import { RUNBOOK_HEADINGS, alarmSpecs, metricSeries, monitoredBackends } from "../lib/monitoring/alarms";
import { costTable, exampleEnvironments } from "../scripts/monitoring-cost";
import { environment, resolve } from "./helpers/env";
import { requireTool, tempDir } from "./helpers/tools";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const EXAMPLES = join(__dirname, "..", "..", "examples");
const example = (name: string) => loadEnvironment(join(EXAMPLES, `${name}.yaml`));
const PAIR_NODES = { "lb-a": { internalAddress: "10.20.1.10", externalAddress: "10.20.2.10" }, "lb-b": { internalAddress: "10.20.1.11", externalAddress: "10.20.2.11" } };

function synth(env: ReturnType<typeof resolve>): Json {
  return JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), env.name, { environment: env }), true)) as Json;
}
const alarmsOf = (json: Json) => Object.entries((json.resource.aws_cloudwatch_metric_alarm ?? {}) as Record<string, Json>);
const seriesId = (m: { namespace: string; name: string; unit: string; dimensions: Readonly<Record<string, string>> }) =>
  JSON.stringify([m.namespace, m.name, m.unit, Object.entries(m.dimensions).sort(([a], [b]) => a.localeCompare(b))]);
const bundleEnv = (env: ReturnType<typeof resolve>) => nodeBundle(env, env.nodes[0].name).files.find((f) => f.path === "/etc/imaging-lb/bundle.env")!.content;

describe("monitoring: the environment file", () => {
  it("is on by default, every alarm with the defaults stated in ALARM_DEFAULTS; the nodes send once a minute", () => {
    const env = resolve(environment());
    assert.equal(env.monitoring.enabled, true);
    assert.equal(env.monitoring.dashboard, true);
    assert.deepEqual(env.monitoring.notifications, { email: [], https: [] });
    for (const kind of ALARM_KINDS) {
      assert.equal(env.monitoring.alarms[kind].enabled, true, kind);
      assert.equal(env.monitoring.alarms[kind].periodSeconds, ALARM_DEFAULTS[kind].periodSeconds, kind);
      assert.equal(env.monitoring.alarms[kind].evaluationPeriods, ALARM_DEFAULTS[kind].evaluationPeriods, kind);
    }
    assert.equal(env.monitoring.alarms.certificateExpiry.days, 30);
    assert.equal(env.monitoring.alarms.systemStatusCheck.recover, true);
    assert.match(bundleEnv(env), /^METRICS_SECONDS=60$/m);
    assert.match(bundleEnv(resolve(environment({ monitoring: { enabled: false } }))), /^METRICS_SECONDS=0$/m);
  });

  it("imaging-lb expand writes the resolved section", () => {
    const expanded = expandEnvironment(JSON.stringify(environment({ monitoring: { alarms: { serverDown: { evaluationPeriods: 5 } } } })), "x.yaml") as Json;
    assert.equal(expanded.monitoring.alarms.serverDown.evaluationPeriods, 5);
    assert.equal(expanded.monitoring.alarms.serviceDown.periodSeconds, 60);
    assert.equal(expanded.monitoring.enabled, true);
  });

  it("every problem at once, each with file:line:col, the field, what is allowed and the value", () => {
    const text = [
      "monitoring:",
      "  notifications:",
      "    email: [ops@hospital.example, not-an-address]",
      '    https: ["http://hooks.example/x"]',
      "  alarms:",
      "    serverDown: { periodSeconds: 90 }",
      "    certificateExpiry: { days: 0 }",
      "",
    ].join("\n");
    // The base environment (one flow mapping per key), then the monitoring block as a user writes it.
    const doc = `${Object.entries(environment()).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n")}\n${text}`;
    let problems: ConfigError["problems"] = [];
    try {
      parseEnvironment(doc, "site.yaml");
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      problems = e.problems;
    }
    const lines = doc.split("\n");
    const lineOf = (needle: string) => lines.findIndex((l) => l.includes(needle)) + 1;
    const got = problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`);
    assert.equal(problems.length, 4, got.join("\n"));
    const find = (path: string) => problems.find((p) => p.path === path);
    assert.match(find("monitoring.notifications.email.1")?.message ?? "", /expected an e-mail address .*got "not-an-address"/);
    assert.equal(find("monitoring.notifications.email.1")?.line, lineOf("not-an-address"));
    assert.match(find("monitoring.notifications.https.0")?.message ?? "", /expected an https:\/\/ URL.*got "http:\/\/hooks.example\/x"/);
    assert.match(find("monitoring.alarms.serverDown.periodSeconds")?.message ?? "", /60-86400 seconds in whole minutes.*got 90/);
    assert.equal(find("monitoring.alarms.serverDown.periodSeconds")?.line, lineOf("periodSeconds: 90"));
    assert.ok(find("monitoring.alarms.certificateExpiry.days"));
  });

  it("cross-field rules: an adopted topic of another region, subscriptions with an adopted topic, duplicates, periods beyond CloudWatch's limit", () => {
    const patch = {
      monitoring: {
        notifications: { topicArn: "arn:aws:sns:us-east-1:123456789012:pacs", email: ["a@h.example", "A@h.example"] },
        alarms: { serviceDown: { periodSeconds: 3000, evaluationPeriods: 100 } },
      },
    };
    assert.throws(
      () => resolve(environment(patch)),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const messages = e.problems.map((p) => `${p.path}: ${p.message}`);
        assert.deepEqual(e.problems.map((p) => p.path).sort(), [
          "monitoring.alarms.serviceDown.evaluationPeriods",
          "monitoring.notifications.email",
          "monitoring.notifications.email.1",
          "monitoring.notifications.topicArn",
        ]);
        assert.ok(messages.some((m) => /topicArn: expected a topic in the environment's region eu-west-1 .*got one in us-east-1/.test(m)), messages.join("\n"));
        assert.ok(messages.some((m) => /at most 86400 s .* got 3000 x 100 = 300000/.test(m)), messages.join("\n"));
        assert.ok(messages.every((m) => m.length > 40));
        return true;
      },
    );
  });
});

describe("monitoring: what the nodes send and what the alarms watch", () => {
  it("the backends are the haproxy.cfg's be_* (services and routes), with their active servers; no sorry or check-only backend", () => {
    const env = resolve(
      environment({
        services: { app: { frontendPorts: [2000], sorryServer: { address: "10.20.1.99", port: 80 }, clientAddress: "source", sourceAddress: "vip" } },
        servers: { s3: { address: "10.20.1.23", services: { app: { backup: true } } } },
      }),
    );
    assert.deepEqual(monitoredBackends(env), [{ name: "be_app", service: "app", mode: "tcp", activeServers: 2 }]);
    const pair = example("agfa-ei-ha-pair");
    assert.deepEqual(
      monitoredBackends(pair).map((b) => `${b.name} ${b.mode} ${b.activeServers}`),
      ["be_core tcp 3", "be_dicom tcp 3", "be_hl7 tcp 3", "be_xero-xtend http 3", "be_xero-xtend_xtend http 3"],
    );
  });

  it("every alarm watches a series the nodes send, with its exact namespace, name, unit and dimensions (EC2's own status check aside)", () => {
    for (const name of ["agfa-ei-one-arm", "agfa-ei-two-arm", "agfa-ei-ha-pair"]) {
      const env = example(name);
      const sent = new Set(metricSeries(env).map(seriesId));
      assert.equal(sent.size, metricSeries(env).length, `${name}: no series twice`);
      const specs = alarmSpecs(env);
      for (const spec of specs) {
        const watched = spec.metric ? [spec.metric] : Object.values(spec.expression?.metrics ?? {});
        if (spec.ec2StatusCheckOf) continue;
        assert.ok(watched.length > 0, spec.name);
        for (const m of watched) assert.ok(sent.has(seriesId(m)), `${name}: ${spec.name} watches ${seriesId(m)}, which no node sends`);
      }
      assert.equal(new Set(specs.map((s) => s.name)).size, specs.length, `${name}: alarm names are unique`);
      assert.equal(new Set(specs.map((s) => s.id)).size, specs.length, `${name}: construct ids are unique`);
    }
  });

  it("a single node has no pair alarms; switched-off kinds and monitoring off create none", () => {
    const single = alarmSpecs(example("agfa-ei-two-arm"));
    assert.ok(!single.some((s) => s.kind === "failover" || s.kind === "pairMasters"));
    assert.ok(!metricSeries(example("agfa-ei-two-arm")).some((m) => m.name === "HaRole" || m.name === "RoleChanges"));
    const pair = alarmSpecs(example("agfa-ei-ha-pair"));
    assert.deepEqual(pair.filter((s) => s.kind === "pairMasters").length, 1);
    // vipMode nlb: two active nodes, no VRRP role, so neither the role series nor their alarms; the agent
    // is told by an empty MASTER_VIP (it sends HaRole only when that is set).
    const nlb = example("agfa-ei-nlb");
    assert.equal(nlb.nodes.length, 2);
    assert.ok(!alarmSpecs(nlb).some((s) => s.kind === "failover" || s.kind === "pairMasters"));
    assert.ok(!metricSeries(nlb).some((m) => m.name === "HaRole" || m.name === "RoleChanges"));
    assert.ok(alarmSpecs(nlb).some((s) => s.kind === "haproxyDown" && s.node === nlb.nodes[1].name));
    for (const n of nlb.nodes) assert.match(nodeBundle(nlb, n.name).files.find((f) => f.path === BUNDLE_PATHS.agentSettings)?.content ?? "", /^MASTER_VIP=$/m);
    assert.deepEqual(pair.filter((s) => s.kind === "failover").map((s) => s.node), ["lb-a", "lb-b"]);
    const off = resolve(environment({ monitoring: { alarms: { serverDown: { enabled: false } } }, loadBalancer: { nodes: PAIR_NODES } }));
    assert.ok(!alarmSpecs(off).some((s) => s.kind === "serverDown"));
    assert.deepEqual(alarmSpecs(resolve(environment({ monitoring: { enabled: false } }))), []);
    assert.deepEqual(metricSeries(resolve(environment({ monitoring: { enabled: false } }))), []);
  });

  it("one server: no 'below its servers' alarm (it would say what 'no server UP' says)", () => {
    const env = resolve(environment({ servers: { s2: null } }));
    assert.deepEqual(alarmSpecs(env).filter((s) => s.metric?.name === "ServersUp").map((s) => s.kind), ["serviceDown"]);
  });

  it("the agent's Python builds each metric with the dimensions and unit metricRef gives the alarms", () => {
    requireTool("python3", "python3");
    const dir = tempDir("monitoring-parity");
    try {
      for (const f of agentFiles()) {
        if (!f.path.includes("/imaging_lb_agent/")) continue;
        const target = join(dir.path, "imaging_lb_agent", f.path.split("/imaging_lb_agent/")[1]);
        mkdirSync(join(target, ".."), { recursive: true });
        writeFileSync(target, f.content);
      }
      const subject = { environment: "prod", node: "lb-a", backend: "be_dicom", certificate: "web" };
      const names = Object.keys(NODE_CONTRACT.metrics.definitions) as MetricName[];
      const script = [
        "import json, sys",
        "from imaging_lb_agent import metrics",
        "out = {}",
        "for name, definition in metrics.METRICS['definitions'].items():",
        "    dims = {'Environment': 'prod', 'Node': 'lb-a'}",
        "    if definition['scope'] == 'backend': dims['Backend'] = 'be_dicom'",
        "    if definition['scope'] == 'certificate': dims['Certificate'] = 'web'",
        "    out[name] = metrics.datum(name, 1, **dims)",
        "print(json.dumps(out))",
      ].join("\n");
      const run = spawnSync("python3", ["-c", script], { encoding: "utf8", env: { ...process.env, PYTHONPATH: dir.path } });
      assert.equal(run.status, 0, run.stderr);
      const python = JSON.parse(run.stdout) as Record<string, { MetricName: string; Unit: string; Dimensions: Array<{ Name: string; Value: string }> }>;
      assert.deepEqual(Object.keys(python).sort(), [...names].sort());
      for (const name of names) {
        const scope = NODE_CONTRACT.metrics.definitions[name].scope;
        const ref = metricRef(name, { environment: subject.environment, node: subject.node, ...(scope === "backend" ? { backend: subject.backend } : {}), ...(scope === "certificate" ? { certificate: subject.certificate } : {}) });
        assert.deepEqual(
          { name: python[name].MetricName, unit: python[name].Unit, dimensions: Object.fromEntries(python[name].Dimensions.map((d) => [d.Name, d.Value])) },
          { name: ref.name, unit: ref.unit, dimensions: ref.dimensions },
          name,
        );
        assert.deepEqual(python[name].Dimensions.map((d) => d.Name), Object.keys(ref.dimensions), `${name}: the same order`);
      }
    } finally {
      dir.cleanup();
    }
  });
});

describe("monitoring: the synthesized stack", () => {
  const pair = resolve(environment({ loadBalancer: { nodes: PAIR_NODES }, monitoring: { notifications: { email: ["pacs-oncall@hospital.example"], https: ["https://hooks.example/imaging"] } } }));
  const json = synth(pair);

  it("a topic encrypted with a key of its own that CloudWatch may use; e-mail and HTTPS subscriptions with ids from their endpoints", () => {
    const topic = Object.values(json.resource.aws_sns_topic as Json)[0] as Json;
    assert.equal(topic.name, "imaging-lb-test-env-alarms");
    const [keyId, key] = Object.entries(json.resource.aws_kms_key as Json).find(([id]) => id.startsWith("monitoring_topic-key"))!;
    assert.equal(topic.kms_master_key_id, `\${aws_kms_key.${keyId}.arn}`);
    assert.equal((key as Json).enable_key_rotation, true);
    const statements = JSON.parse((key as Json).policy).Statement as Json[];
    assert.deepEqual(statements.find((s) => s.Sid === "CloudWatchAlarmsPublish"), {
      Sid: "CloudWatchAlarmsPublish",
      Effect: "Allow",
      Principal: { Service: "cloudwatch.amazonaws.com" },
      Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
      Resource: "*",
    });
    const subs = Object.entries(json.resource.aws_sns_topic_subscription as Json).map(([id, s]) => [id.replace(/_[0-9A-F]{8}$/, ""), (s as Json).protocol, (s as Json).endpoint]);
    assert.deepEqual(subs.map(([, p, e]) => `${p} ${e}`).sort(), ["email pacs-oncall@hospital.example", "https https://hooks.example/imaging"]);
    // Adding a receiver keeps the others' ids (no subscription is replaced).
    const more = synth(resolve(environment({ loadBalancer: { nodes: PAIR_NODES }, monitoring: { notifications: { email: ["first@hospital.example", "pacs-oncall@hospital.example"], https: ["https://hooks.example/imaging"] } } })));
    const ids = new Set(Object.keys(more.resource.aws_sns_topic_subscription));
    for (const id of Object.keys(json.resource.aws_sns_topic_subscription)) assert.ok(ids.has(id), id);
    assert.equal(json.output.alarm_topic_arn.value, `\${aws_sns_topic.${Object.keys(json.resource.aws_sns_topic)[0]}.arn}`);
  });

  it("alarms notify the topic on ALARM and on OK; the system status check also recovers the instance", () => {
    const topic = `\${aws_sns_topic.${Object.keys(json.resource.aws_sns_topic)[0]}.arn}`;
    const alarms = alarmsOf(json);
    assert.equal(alarms.length, alarmSpecs(pair).length);
    for (const [id, a] of alarms) {
      assert.deepEqual(a.ok_actions, [topic], id);
      assert.ok(a.alarm_actions.includes(topic), id);
    }
    const status = alarms.filter(([id]) => id.includes("system-status")).map(([, a]) => a);
    assert.equal(status.length, 2);
    for (const a of status) {
      assert.deepEqual(a.alarm_actions, ["arn:aws:automate:eu-west-1:ec2:recover", topic]);
      assert.equal(a.namespace, "AWS/EC2");
      assert.equal(a.metric_name, "StatusCheckFailed_System");
      assert.match(a.dimensions.InstanceId, /^\$\{aws_instance\.node-lb-[ab]_instance_[0-9A-F]+\.id\}$/);
    }
    const masters = alarms.find(([id]) => id.startsWith("monitoring_alarm-pair-masters"))![1];
    assert.equal(masters.metric_query[0].expression, "ABS(FLOOR(FILL(role1,0)/2)+FLOOR(FILL(role2,0)/2)-1)");
    assert.deepEqual(masters.metric_query.slice(1).map((q: Json) => q.metric.dimensions.Node), ["lb-a", "lb-b"]);
    const notReporting = alarms.find(([id]) => id.startsWith("monitoring_alarm-lb-a-not-reporting"))![1];
    assert.equal(notReporting.treat_missing_data, "breaching");
    assert.equal(notReporting.threshold, NODE_CONTRACT.defaults.heartbeatSeconds * NODE_CONTRACT.defaults.staleHeartbeats);
    assert.deepEqual(notReporting.dimensions, { Environment: "test-env", Node: "lb-a" });
    assert.equal(notReporting.unit, "Seconds");
  });

  it("the dashboard shows only series the nodes send, and every alarm", () => {
    const dashboard = Object.values(json.resource.aws_cloudwatch_dashboard as Json)[0] as Json;
    assert.equal(dashboard.dashboard_name, "imaging-lb-test-env");
    const body = JSON.parse(dashboard.dashboard_body) as { widgets: Json[] };
    const sent = new Set(metricSeries(pair).map((m) => JSON.stringify([m.namespace, m.name, Object.entries(m.dimensions).sort(([a], [b]) => a.localeCompare(b))])));
    let shown = 0;
    for (const w of body.widgets.filter((x) => x.type === "metric")) {
      for (const line of w.properties.metrics as unknown[][]) {
        const [namespace, name, ...rest] = line.filter((x) => typeof x === "string") as string[];
        const dims: Array<[string, string]> = [];
        for (let i = 0; i < rest.length; i += 2) dims.push([rest[i], rest[i + 1]]);
        assert.ok(sent.has(JSON.stringify([namespace, name, dims.sort(([a], [b]) => a.localeCompare(b))])), `${name} ${JSON.stringify(dims)}`);
        shown++;
      }
    }
    assert.equal(shown, sent.size, "every series the nodes send is on the dashboard");
    const alarmWidget = body.widgets.find((x) => x.type === "alarm")!;
    assert.equal(alarmWidget.properties.alarms.length, alarmsOf(json).length);
    assert.equal(json.output.dashboard_name.value, `\${aws_cloudwatch_dashboard.${Object.keys(json.resource.aws_cloudwatch_dashboard)[0]}.dashboard_name}`);
  });

  it("an adopted topic: no topic, key or subscription of the stack; the alarms notify it", () => {
    const arn = "arn:aws:sns:eu-west-1:123456789012:pacs-alerts";
    const adopted = synth(resolve(environment({ monitoring: { notifications: { topicArn: arn } } })));
    assert.equal(adopted.resource.aws_sns_topic, undefined);
    assert.equal(adopted.resource.aws_sns_topic_subscription, undefined);
    assert.ok(!Object.keys(adopted.resource.aws_kms_key).some((id) => id.startsWith("monitoring_")));
    for (const [, a] of alarmsOf(adopted)) assert.deepEqual(a.ok_actions, [arn]);
    assert.equal(adopted.output.alarm_topic_arn.value, arn);
  });

  it("monitoring off: no alarm, topic, dashboard, metrics permission or CloudWatch endpoint, and the construct ids of the rest do not move", () => {
    const on = synth(resolve(environment()));
    const off = synth(resolve(environment({ monitoring: { enabled: false } })));
    assert.equal(off.resource.aws_cloudwatch_metric_alarm, undefined);
    assert.equal(off.resource.aws_sns_topic, undefined);
    assert.equal(off.resource.aws_cloudwatch_dashboard, undefined);
    assert.equal(off.output.alarm_topic_arn, undefined);
    assert.ok(!Object.keys(off.resource.aws_iam_role_policy).some((id) => id.startsWith("instance-role_metrics")));
    // Everything else keeps its id (bundle objects and signatures follow the bundle's content, which says METRICS_SECONDS=0).
    const ids = (j: Json) =>
      Object.entries(j.resource as Record<string, Json>)
        .filter(([type]) => type !== "aws_s3_object" && type !== "aws_kms_ciphertext")
        .flatMap(([type, byId]) => Object.keys(byId).map((id) => `${type}.${id}`))
        .filter((id) => !/\.(monitoring_|instance-role_metrics_|network_endpoint-monitoring_)/.test(id))
        .sort();
    assert.deepEqual(ids(off), ids(on));
  });
});

describe("docs/alarms.md says what the code does", () => {
  const page = readFileSync(join(__dirname, "..", "..", "docs", "alarms.md"), "utf8");

  it("the cost table is scripts/monitoring-cost.ts's for the examples (regenerate: node dist/scripts/monitoring-cost.js)", () => {
    const table = /<!-- monitoring-cost:begin -->\n([\s\S]*?)<!-- monitoring-cost:end -->/.exec(page)?.[1];
    assert.equal(table, costTable(exampleEnvironments()));
  });

  it("the metrics table names every metric of the contract with its unit", () => {
    const rows = new Map([...page.matchAll(/^\| `([A-Za-z0-9]+)` \| [^|]+ \| ([A-Za-z]+) \|/gm)].map((m) => [m[1], m[2]]));
    for (const [name, d] of Object.entries(NODE_CONTRACT.metrics.definitions)) assert.equal(rows.get(name), d.unit, name);
  });

  it("the alarms table gives every alarm its default periods, severity and missing-data rule; every alarm has its section", () => {
    for (const kind of ALARM_KINDS) {
      const row = new RegExp(`^\\| \`${kind}\` \\|.*$`, "m").exec(page)?.[0];
      assert.ok(row, kind);
      const d = ALARM_DEFAULTS[kind];
      const period = d.periodSeconds % 3600 === 0 ? `${d.periodSeconds / 3600} h` : `${d.periodSeconds / 60} min`;
      assert.ok(row.includes(`| ${d.evaluationPeriods} × 1 ${period.split(" ")[1]} |`) && period.startsWith("1 "), `${kind}: ${row}`);
      assert.ok(row.endsWith(`| ${d.severity} |`), `${kind}: ${row}`);
      const missing = alarmSpecs(example("agfa-ei-ha-pair")).find((s) => s.kind === kind)!.treatMissingData;
      assert.equal(/\*\*breaching\*\*/.test(row), missing === "breaching", `${kind}: missing data ${missing}: ${row}`);
      assert.match(page, new RegExp(`^### ${RUNBOOK_HEADINGS[kind]}$`, "m"), `${kind}: a section "${RUNBOOK_HEADINGS[kind]}"`);
    }
  });
});
