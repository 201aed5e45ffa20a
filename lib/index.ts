/**
 * imaging-lb as a library: `require("imaging-lb")` / `import { ... } from "imaging-lb"`.
 *
 * Three layers, usable separately:
 * - the environment loader: {@link loadEnvironment} reads, validates and resolves an environment file
 *   (every problem at once, as a {@link ConfigError});
 * - the renderers, pure functions of a resolved environment: {@link renderHaproxy},
 *   {@link nodeArtifacts} (haproxy.cfg, keepalived.conf, takeover script and cloud-init user data of
 *   one node), {@link renderKeepalivedConfig}, {@link renderUserData}, {@link renderSvg},
 *   {@link renderMermaid}, {@link renderStarter};
 * - the CDKTF constructs: {@link ImagingLbStack} (one Terraform stack per environment) and the
 *   constructs it is made of ({@link ImagingLbNetwork}, {@link LoadBalancerNode},
 *   {@link LoadBalancerInstanceRole}, {@link ImagingLbGuardrails}, ...).
 *
 * `cdktf`, `constructs` and `@cdktf/provider-aws` are peer dependencies: the stack joins the app's own
 * copies, so it composes with the app's other stacks.
 *
 * @example
 * import { App } from "cdktf";
 * import { ImagingLbStack, loadEnvironment } from "imaging-lb";
 *
 * const app = new App();
 * const env = loadEnvironment("sites/st-mary.yaml");
 * new ImagingLbStack(app, env.name, { environment: env });
 * app.synth();
 */

// The environment file
export { loadEnvironment, parseEnvironment, expandEnvironment } from "./load/load";
export { readEnvironmentFile, applyPreset } from "./config/parse";
export { ConfigError, formatProblem } from "./config/errors";
export type { ConfigProblem } from "./config/errors";
export { environmentJsonSchema } from "./config/schema";
export * from "./config/model";

// Renderers (pure: no cdktf, no AWS)
export { nodeArtifacts } from "./node/artifacts";
export { machineSpec } from "./node/machine";
export { nodeBundle, configBucketName, storeKeys, healthGate, BUNDLE_PATHS } from "./node/bundle";
export type { ConfigBundle, BundleFile, BundleManifest } from "./node/bundle";
export type { NodeArtifacts } from "./node/artifacts";
export { renderHaproxy, buildHaproxyConfig } from "./haproxy/build";
export type { HaproxyBuildOptions } from "./haproxy/build";
export { renderKeepalivedConfig, renderNotifyScript } from "./keepalived";
export type { KeepalivedNodeSpec, NotifyScriptSpec, VipFailover } from "./keepalived";
export { renderUserData, encodeUserData, decodeUserData, USER_DATA_LIMIT_BYTES } from "./bootstrap";
export type { BootstrapSpec } from "./bootstrap";
export { renderSvg, renderMermaid, renderMermaidMarkdown } from "./diagram";
export { renderStarter } from "./init";
export { nlbDetectionSeconds, nlbListeners } from "./plan/nlb";
export { NLB_HEALTH_CHECK, listenerIdleSeconds } from "./config/nlb-limits";
export type { NlbListener } from "./plan/nlb";
export { alarmSpecs, metricSeries, monitoredBackends } from "./monitoring/alarms";
export type { AlarmSpec, MonitoredBackend, WatchedMetric } from "./monitoring/alarms";
export { dashboardBody } from "./monitoring/dashboard";
export { ALARM_DEFAULTS, ALARM_KINDS } from "./config/monitoring";
export type { AlarmKind, ResolvedMonitoring, ResolvedAlarmSetting } from "./config/monitoring";
export type { StarterOptions, StarterLayout, StarterPreset } from "./init";

// CDKTF constructs
export * from "./constructs";
