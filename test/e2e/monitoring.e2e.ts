/**
 * Issue 23, item 6: every way a site goes wrong reaches the alarm that watches it. On the namespace testbed
 * (an HA pair of the two-arm example: real HAProxy rendered by the product, real Orthanc and MLLP servers,
 * the product's agent running as the service runs it) with the emulator's CloudWatch (moto: SIMULATED AWS),
 * each fault is made for real — a server stopped, every server of a service stopped, the VIPs moved to the
 * other node, both nodes or neither holding them, HAProxy stopped, a bundle that fails its health gate, an
 * agent stopped, a certificate ten days from its end — and the test evaluates the very alarms the stack
 * synthesizes for this environment (aws_cloudwatch_metric_alarm in its Terraform JSON) against the
 * datapoints the agents sent: the metric each alarm watches must arrive with exactly the alarm's namespace,
 * name, dimensions and unit, and cross its threshold. moto stores metrics but evaluates no alarm, so the test
 * does (test/helpers/alarm-eval.ts: CloudWatch's documented rules). A healthy site raises none, and every
 * alarm returns to OK when the fault is gone.
 *
 * SIMULATED: AWS (moto), systemd (a stub running HAProxy as the Debian unit does), keepalived's role (the
 * VIPs on a node's eth1, which the agent reads as keepalived would leave them) and `keepalived -t` (a stub; see
 * rollout.e2e.ts). Time is scaled: the agents poll every second and send their metrics every
 * SECONDS_PER_MINUTE seconds instead of every 60, and one such interval stands for a CloudWatch minute. The
 * environment file shortens one alarm: the certificate alarm's period from an hour to a minute (a scaled hour
 * would be four minutes of waiting). Not provable here: EC2's StatusCheckFailed_System, which EC2 itself sends.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Testing } from "cdktf";
import type { ResolvedEnvironment } from "../../lib/config/model";
import { ImagingLbStack } from "../../lib/constructs/imaging-lb-stack";
import { NODE_CONTRACT } from "../../lib/contract/node-contract";
import { alarmSpecs, metricSeries, type AlarmSpec } from "../../lib/monitoring/alarms";
import { alarmMetrics, alarmPeriod, evaluateAlarm, seriesKey, type AlarmMetric, type Evaluation, type Point, type TfAlarm } from "../helpers/alarm-eval";
import { makeSelfSignedPem } from "../helpers/tools";
import { listNamespaces, RUN_PREFIX, startMllpReceiver, sweepStaleNamespaces, waitForApplied, type AgentNode, type MllpReceiver } from "./harness";
import { startRolloutBed, type RolloutBed } from "./harness/rollout-bed";

/** One agent interval stands for a CloudWatch minute. */
const SECONDS_PER_MINUTE = 4;
const AGENT_ENV = { IMAGING_LB_POLL_SECONDS: "1", IMAGING_LB_METRICS_SECONDS: String(SECONDS_PER_MINUTE) };

/** boto3 against moto: the namespace's metric listing and, per series, its datapoints (1-second periods) with and without the unit. */
const FETCH = String.raw`
import datetime, json, sys, boto3
req = json.load(open(sys.argv[1]))
cw = boto3.client("cloudwatch")
start = datetime.datetime.fromtimestamp(req["start"], datetime.timezone.utc)
end = datetime.datetime.fromtimestamp(req["end"], datetime.timezone.utc)
listed, seen, token = [], set(), None
while True:
    page = cw.list_metrics(Namespace=req["namespace"], **({"NextToken": token} if token else {}))
    for m in page["Metrics"]:
        dims = {d["Name"]: d["Value"] for d in m.get("Dimensions", [])}
        # CloudWatch lists a series once; moto 5.2 lists a series of two or more dimensions once per datapoint
        # (its are_dimensions_same compares every dimension with every other), so the listing is made unique here.
        key = json.dumps([m["MetricName"], sorted(dims.items())])
        if key not in seen:
            seen.add(key)
            listed.append([m["MetricName"], dims])
    token = page.get("NextToken")
    if not token:
        break
series = {}
for s in req["series"]:
    def get(unit):
        kw = dict(Namespace=s["namespace"], MetricName=s["name"], Dimensions=[{"Name": k, "Value": v} for k, v in s["dimensions"].items()],
                  StartTime=start, EndTime=end, Period=1, Statistics=["Minimum", "Maximum", "Sum", "SampleCount"])
        if unit:
            kw["Unit"] = unit
        return cw.get_metric_statistics(**kw)["Datapoints"]
    # Any unit first: every datapoint it counts is stored before the query by unit runs, so that query must count
    # at least as many in each second (agents keep sending between the two queries).
    any_unit = get(None)
    exact = get(s.get("unit"))
    series[s["key"]] = {"points": [[p["Timestamp"].timestamp(), p["Minimum"], p["Maximum"], p["Sum"], p["SampleCount"]] for p in exact],
                        "anyUnit": [[p["Timestamp"].timestamp(), p["SampleCount"]] for p in any_unit]}
print(json.dumps({"listed": listed, "series": series}))
`;

interface Fetched {
  readonly listed: Array<[string, Record<string, string>]>;
  readonly series: Record<string, { points: Array<[number, number, number, number, number]>; anyUnit: Array<[number, number]> }>;
}

describe("alarms on the namespace testbed: each fault seen by the alarm that watches it (SIMULATED AWS: moto's CloudWatch; the test evaluates the alarms)", { timeout: 1_500_000 }, () => {
  let bed: RolloutBed;
  let env: ResolvedEnvironment;
  let alarms: Map<string, TfAlarm>;
  let specs: AlarmSpec[];
  let master: AgentNode;
  let backup: AgentNode;
  let webSecret: string;
  /** The HL7 receivers on port 2310, one per server (a restarted one replaces its entry). */
  let hl7: MllpReceiver[];
  let started = 0;
  const log: string[] = [];

  /** Every alarm's metrics' datapoints since `from` (epoch seconds; at most since the agents started) from moto, plus the namespace's listing. */
  async function fetch(from = Date.now() / 1000 - 90): Promise<Fetched> {
    const wanted = new Map<string, AlarmMetric>();
    for (const a of alarms.values()) for (const m of Object.values(alarmMetrics(a))) if (m.namespace === NODE_CONTRACT.metrics.namespace) wanted.set(seriesKey(m), m);
    const now = Date.now() / 1000;
    const request = join(bed.lb.topology.workDir, `fetch-${process.hrtime.bigint()}.json`);
    writeFileSync(
      request,
      JSON.stringify({
        namespace: NODE_CONTRACT.metrics.namespace,
        start: Math.max(started, from),
        end: now + 1,
        series: [...wanted].map(([key, m]) => ({ key, namespace: m.namespace, name: m.name, dimensions: m.dimensions, unit: m.unit })),
      }),
    );
    const motoEnv = { ...process.env, AWS_ENDPOINT_URL: bed.store.endpoint, AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_DEFAULT_REGION: bed.store.region, AWS_EC2_METADATA_DISABLED: "true" };
    const run = await bed.lb.topology.exec(bed.store.host, "python3", ["-c", FETCH, request], { env: motoEnv, timeoutMs: 60_000 });
    assert.equal(run.code, 0, `fetching the metrics from moto: ${run.stderr}`);
    return JSON.parse(run.stdout) as Fetched;
  }

  const pointsOf = (f: Fetched) => (m: AlarmMetric): Point[] =>
    (f.series[seriesKey(m)]?.points ?? []).map(([t, min, max, sum, count]) => ({ t, min, max, sum, count }));

  /** The product's own alarms (EC2's status check aside: EC2 sends that metric, not the nodes). */
  const productAlarms = () => [...alarms].filter(([, a]) => a.namespace !== "AWS/EC2");
  /** An alarm's period on the bed's time scale, in seconds. */
  const periodOf = (a: TfAlarm) => (alarmPeriod(a) / 60) * SECONDS_PER_MINUTE;
  /** The longest span of data any alarm's evaluation reads (its periods), on the bed's time scale. */
  const lookback = () => Math.max(...productAlarms().map(([, a]) => periodOf(a) * a.evaluation_periods));

  /** The state of every product alarm, evaluated at `at` (epoch seconds; default now). */
  function evaluateAll(f: Fetched, at = Date.now() / 1000): Map<string, Evaluation> {
    const out = new Map<string, Evaluation>();
    for (const [name, a] of productAlarms()) out.set(name, evaluateAlarm(a, pointsOf(f), at, SECONDS_PER_MINUTE));
    return out;
  }

  /**
   * Every evaluation CloudWatch makes of `name` after `since` up to now: one at the end of each of its
   * periods (an alarm that breached for one period between two looks of the test did notify).
   */
  function evaluationsSince(f: Fetched, name: string, since: number): Evaluation[] {
    const a = alarms.get(name)!;
    const length = periodOf(a);
    const out: Evaluation[] = [];
    for (let end = (Math.floor(since / length) + 1) * length; end <= Date.now() / 1000; end += length) out.push(evaluateAlarm(a, pointsOf(f), end, SECONDS_PER_MINUTE));
    return out;
  }

  /** The tail of each running agent's log (the daemons' log files in the bed's folder). */
  function agentLogTails(): string {
    const dir = bed.lb.topology.workDir;
    return bed.nodes
      .map((n) => {
        const files = readdirSync(dir).filter((f) => f.startsWith(`agent-${n.host}-`)).sort();
        const text = files.length ? readFileSync(join(dir, files[files.length - 1]), "utf8") : "";
        return `${n.node} (${files.at(-1) ?? "no log"}):\n${text.split("\n").slice(-15).join("\n")}`;
      })
      .join("\n");
  }

  /**
   * The alarm's metrics arrived exactly as it names them: a listed series with exactly its dimensions (and
   * none with more, so moto's subset filter is exact), every datapoint with its unit.
   */
  function assertExact(f: Fetched, name: string): void {
    for (const m of Object.values(alarmMetrics(alarms.get(name)!))) {
      const dims = JSON.stringify(Object.entries(m.dimensions).sort());
      const same = f.listed.filter(([n, d]) => n === m.name && JSON.stringify(Object.entries(d).sort()) === dims);
      assert.equal(same.length, 1, `${name}: ${m.name} ${dims} is listed in ${m.namespace} exactly once`);
      const wider = f.listed.filter(([n, d]) => n === m.name && Object.entries(m.dimensions).every(([k, v]) => d[k] === v) && Object.keys(d).length > Object.keys(m.dimensions).length);
      assert.deepEqual(wider, [], `${name}: no series of ${m.name} with more dimensions than the alarm's`);
      const s = f.series[seriesKey(m)];
      assert.ok(s && s.points.length > 0, `${name}: datapoints of ${m.name} ${dims} with unit ${m.unit}`);
      const withUnit = new Map(s.points.map((p) => [p[0], p[4]]));
      const short = s.anyUnit.filter(([t, count]) => (withUnit.get(t) ?? 0) < count);
      assert.deepEqual(short, [], `${name}: every datapoint of ${m.name} ${dims} has the unit ${m.unit} (seconds with fewer datapoints by that unit than by any unit)`);
    }
  }

  const describeState = (states: Map<string, Evaluation>, names: Iterable<string>) =>
    [...names].map((n) => `  ${n}: ${states.get(n)?.state} ${JSON.stringify(states.get(n)?.periods.map((p) => [p.value, p.counted]))}`).join("\n");

  /**
   * Waits until every alarm of `must` has been in ALARM at one of CloudWatch's evaluations since the call
   * (the fault was made just before it), while no alarm outside `must` and `may` is in ALARM now; checks
   * that each of `must` watches a metric that arrived exactly as it names it. Returns, per alarm, the
   * evaluation that fired (for `must`) or the state now.
   */
  async function expectAlarms(what: string, must: readonly string[], may: readonly string[] = [], timeoutMs = 120_000): Promise<Map<string, Evaluation>> {
    for (const n of [...must, ...may]) assert.ok(alarms.has(n), `${what}: no alarm named ${n}`);
    const since = Date.now() / 1000;
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
      const f = await fetch(since - lookback() - SECONDS_PER_MINUTE);
      const states = evaluateAll(f);
      const fired = new Map<string, Evaluation>();
      for (const n of must) {
        const hit = evaluationsSince(f, n, since).find((e) => e.state === "ALARM");
        if (hit) fired.set(n, hit);
      }
      const firing = [...states].filter(([, e]) => e.state === "ALARM").map(([n]) => n);
      const missing = must.filter((n) => !fired.has(n));
      const unexpected = firing.filter((n) => !must.includes(n) && !may.includes(n));
      if (missing.length === 0 && unexpected.length === 0) {
        for (const n of must) assertExact(f, n);
        log.push(`${what}: ${must.length ? must.join("; ") : "no alarm"} (${(Date.now() / 1000 - since).toFixed(0)} s)`);
        return new Map([...states, ...fired]);
      }
      last = `not yet fired since the fault (state now):\n${describeState(states, missing)}\nfiring unexpectedly:\n${describeState(states, unexpected)}`;
      if (Date.now() > deadline) assert.fail(`${what}: within ${timeoutMs / 1000} s the alarms did not settle as expected.\n${last}\n${agentLogTails()}`);
      await new Promise((r) => setTimeout(r, 1500));
    }
  }

  /** The alarm of `kind` (for `node`, about backend or certificate `about`). */
  function alarm(kind: AlarmSpec["kind"], node?: string, about?: string): string {
    const found = specs.filter(
      (s) => s.kind === kind && s.node === node && (about === undefined || s.metric?.dimensions.Backend === about || s.metric?.dimensions.Certificate === about),
    );
    assert.equal(found.length, 1, `one ${kind} alarm for ${node} ${about ?? ""}: ${found.map((s) => s.name).join(", ")}`);
    return found[0].name;
  }

  async function moveVips(from: string | undefined, to: string | undefined): Promise<void> {
    for (const vip of bed.lb.vips) {
      if (from) assert.equal((await bed.lb.topology.exec(from, "ip", ["addr", "del", `${vip}/24`, "dev", "eth1"])).code, 0);
      if (to) assert.equal((await bed.lb.topology.exec(to, "ip", ["addr", "add", `${vip}/24`, "dev", "eth1"])).code, 0);
    }
  }

  before(async () => {
    sweepStaleNamespaces();
    bed = await startRolloutBed({ pair: true });
    [master, backup] = bed.nodes;
    hl7 = [...bed.receivers];
    // SIMULATED keepalived -t (as rollout.e2e.ts explains).
    for (const n of bed.nodes) writeFileSync(join(n.root, "bin/keepalived"), '#!/bin/bash\n# SIMULATED keepalived -t\n[ "$1" = -t ] && [ -s "$3" ]\n', { mode: 0o755 });
    const pems = join(bed.lb.topology.workDir, "monitoring-pems");
    mkdirSync(pems, { recursive: true });
    webSecret = await bed.store.putSecret("monitoring/web", readFileSync(makeSelfSignedPem(pems, "web-long", 400), "utf8"));
    env = bed.environment({
      tls: { certificates: { web: { secretArn: webSecret } } },
      // The core service's six ports: the bed's servers answer 80 only.
      services: { core: { healthCheck: { port: 80 } } },
      monitoring: { alarms: { certificateExpiry: { periodSeconds: 60 } } },
    });
    const json = JSON.parse(Testing.synth(new ImagingLbStack(Testing.app(), env.name, { environment: env }), true)) as { resource: { aws_cloudwatch_metric_alarm: Record<string, TfAlarm> } };
    alarms = new Map(Object.values(json.resource.aws_cloudwatch_metric_alarm).map((a) => [a.alarm_name, a]));
    specs = alarmSpecs(env);
    assert.deepEqual([...alarms.keys()].sort(), specs.map((s) => s.name).sort(), "the stack's alarms are the specs'");
    const bundles = await bed.publish(env);
    for (const n of [backup, master]) {
      const first = await n.run();
      assert.equal(first.code, 0, first.log);
      await waitForApplied(bed.store, env.configStore.prefix, n.node, bundles[n.node].version, 10_000);
    }
    started = Date.now() / 1000;
    for (const n of bed.nodes) n.startPolling(AGENT_ENV);
  });

  after(async () => {
    for (const n of bed?.nodes ?? []) await n.stopPolling();
    bed?.destroy();
    if (log.length) process.stdout.write(`# ${log.join("\n# ")}\n`);
    assert.deepEqual(listNamespaces(`${RUN_PREFIX}-`), [], "every namespace of this run is gone");
  });

  it("a healthy site: the nodes send exactly the series the stack knows, every alarm's metric arrives as it names it, and no alarm fires", async () => {
    // Enough intervals for every alarm's evaluation periods (and a counter's second datapoint).
    await new Promise((r) => setTimeout(r, 5 * SECONDS_PER_MINUTE * 1000));
    await expectAlarms("healthy", []);
    const f = await fetch();
    const listed = f.listed.map(([n, d]) => JSON.stringify([n, Object.entries(d).sort()])).sort();
    const expected = metricSeries(env).map((m) => JSON.stringify([m.name, Object.entries(m.dimensions).sort()])).sort();
    assert.deepEqual(listed, expected, "the series in CloudWatch are the ones metricSeries() names (the bill and the dashboard)");
    for (const [name, a] of alarms) if (a.namespace !== "AWS/EC2") assertExact(f, name);
    const states = evaluateAll(f);
    for (const [name, e] of states) assert.equal(e.state, "OK", `${name}: ${JSON.stringify(e.periods)}`);
    // And at every evaluation CloudWatch would have made once the alarm had its periods of data.
    const whole = await fetch(started);
    for (const [name, a] of productAlarms()) {
      const evaluations = evaluationsSince(whole, name, started + periodOf(a) * a.evaluation_periods + SECONDS_PER_MINUTE);
      assert.ok(evaluations.length > 0, `${name}: evaluated at least once`);
      for (const e of evaluations) assert.equal(e.state, "OK", `${name}: ${JSON.stringify(e.periods)}`);
    }
  });

  it("one server of a service stopped: that backend is below its servers on both nodes; back: OK", async () => {
    const [first] = hl7;
    await first.stop();
    await expectAlarms("one HL7 server stopped", [alarm("serverDown", "lb-a", "be_hl7"), alarm("serverDown", "lb-b", "be_hl7")]);
    hl7[0] = await startMllpReceiver(bed.lb.topology, { host: first.host, port: first.port });
    await expectAlarms("HL7 server back", []);
  });

  it("every server of a service stopped: no server UP (critical) on both nodes", async () => {
    const serving = hl7.slice(0, 2); // the example's two servers
    for (const r of serving) await r.stop();
    await expectAlarms("every HL7 server stopped", [
      alarm("serviceDown", "lb-a", "be_hl7"),
      alarm("serviceDown", "lb-b", "be_hl7"),
      alarm("serverDown", "lb-a", "be_hl7"),
      alarm("serverDown", "lb-b", "be_hl7"),
    ]);
    for (const [i, r] of serving.entries()) hl7[i] = await startMllpReceiver(bed.lb.topology, { host: r.host, port: r.port });
    await expectAlarms("HL7 servers back", []);
  });

  it("a failover: both nodes' role changes; two MASTERs, then none: the pair alarm", async () => {
    const masters = alarm("pairMasters");
    await moveVips("lb", "lb2");
    await expectAlarms("VIPs moved to lb-b", [alarm("failover", "lb-a"), alarm("failover", "lb-b")], [masters]);
    await expectAlarms("after the failover", []);
    await moveVips(undefined, "lb");
    await expectAlarms("both nodes hold the VIPs", [masters], [alarm("failover", "lb-a")]);
    await moveVips("lb", undefined);
    await moveVips("lb2", undefined);
    await expectAlarms("neither node holds the VIPs", [masters], [alarm("failover", "lb-a"), alarm("failover", "lb-b")]);
    await moveVips(undefined, "lb");
    await expectAlarms("lb-a MASTER again", [], [alarm("failover", "lb-a")]);
    await expectAlarms("the pair settled", []);
  });

  it("HAProxy stopped on a node: not serving (critical); its backends' figures stop, and nothing else fires", async () => {
    backup.stopHaproxy();
    await expectAlarms("HAProxy stopped on lb-b", [alarm("haproxyDown", "lb-b")]);
    const restart = `hostname ${backup.node} && exec bash ${join(backup.root, "bin/systemctl")} restart haproxy.service`;
    const r = await bed.lb.topology.exec(backup.host, "unshare", ["--uts", "bash", "-c", restart], { env: { ...process.env, IMAGING_LB_ROOT: backup.root, PATH: `${join(backup.root, "bin")}:${process.env.PATH}` } });
    assert.equal(r.code, 0, r.stderr);
    await expectAlarms("HAProxy back on lb-b", []);
  });

  it("a bundle that fails its health gate: the BACKUP rolls back, the MASTER holds; both say so", async () => {
    const unhealthy = bed.environment({
      tls: { certificates: { web: { secretArn: webSecret } } },
      services: { core: { healthCheck: { port: 80 } }, dicom: { healthCheck: { calledAeTitle: "NOT_EI_CORE" } } },
      monitoring: { alarms: { certificateExpiry: { periodSeconds: 60 } } },
    });
    await bed.publish(unhealthy);
    // While the BACKUP's gate waits, its new worker has no DICOM server UP: those alarms may fire too.
    await expectAlarms("a bundle failing its gate", [alarm("rolloutFailed", "lb-a"), alarm("rolloutFailed", "lb-b")], [alarm("serviceDown", "lb-b", "be_dicom"), alarm("serverDown", "lb-b", "be_dicom")]);
    const status = await bed.store.status(env.configStore.prefix, backup.node);
    assert.equal(status?.result, "rolled-back", JSON.stringify(status));
    assert.equal((await bed.store.status(env.configStore.prefix, master.node))?.result, "held");
    await bed.publish(env);
    await expectAlarms("the good bundle again", []);
  });

  it("a node's agent stopped: not reporting (missing data counts as breaching)", async () => {
    await backup.stopPolling();
    await expectAlarms("lb-b's agent stopped", [alarm("notReporting", "lb-b")]);
    backup.startPolling(AGENT_ENV);
    await expectAlarms("lb-b's agent back", []);
  });

  it("a certificate ten days from its end: the expiry alarm on both nodes", async () => {
    const pem = readFileSync(makeSelfSignedPem(join(bed.lb.topology.workDir, "monitoring-pems"), "web-short", 10), "utf8");
    const file = join(bed.lb.topology.workDir, "web-short.secret");
    writeFileSync(file, pem);
    await bed.store.aws(["secretsmanager", "put-secret-value", "--secret-id", webSecret, "--secret-string", `file://${file}`]);
    // imaging-lb refresh, as an operator would send it on the node (the pair's BACKUP first, then the MASTER).
    for (const n of bed.nodes) {
      const inbox = join(n.root, NODE_CONTRACT.paths.stateDir, "inbox");
      mkdirSync(inbox, { recursive: true });
      writeFileSync(join(inbox, "refresh"), "");
    }
    const states = await expectAlarms("certificate 10 days from its end", [alarm("certificateExpiry", "lb-a", "web"), alarm("certificateExpiry", "lb-b", "web")], [], 180_000);
    const value = states.get(alarm("certificateExpiry", "lb-b", "web"))!.periods.at(-1)!.value!;
    assert.ok(value > 9 && value <= 10, `days left ${value}`);
  });
});
