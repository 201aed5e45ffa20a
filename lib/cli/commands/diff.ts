/**
 * `imaging-lb diff`: what a change of the environment file does to each node. Per node, the unified diff of
 * every rendered file (the configuration bundle and the user data) and a verdict: applied in place
 * (reload), node replaced (its generation was raised), machine change waiting for a generation, or no change.
 */
import { execFileSync } from "node:child_process";
import { nodeArtifacts } from "../../node/artifacts";
import { ConfigError } from "../../config/errors";
import { parseEnvironment } from "../../load/load";
import { defaultMaxConnections, ResolvedEnvironment } from "../../config/model";
import { BUNDLE_PATHS } from "../../node/bundle";
import { metadataTagsAllowed } from "../../contract/node-contract";
import { isNlb, nlbListeners } from "../../plan/nlb";
import { NLB_HEALTH_CHECK } from "../../config/nlb-limits";
import { unifiedDiff } from "../unified-diff";

/** What a change does to one node. */
export type NodeVerdict = "applied in place (reload)" | "node replaced" | "node added" | "node removed" | "no change";

export interface NodeDiff {
  readonly node: string;
  readonly verdict: NodeVerdict;
  /** Why, in a sentence (e.g. the generation change, or a machine change that waits for one). */
  readonly reason: string;
  /** Rendered files that differ: path → unified diff. */
  readonly files: ReadonlyArray<{ readonly path: string; readonly diff: string }>;
}

/** What a change does to one VIP's Network Load Balancer (ha.vipMode nlb). */
export type NlbVerdict = "NLB added" | "NLB removed" | "NLB replaced" | "NLB changed in place" | "no change";

export interface NlbDiff {
  readonly vip: string;
  readonly verdict: NlbVerdict;
  readonly reason: string;
  /** The unified diff of the NLB's description (addresses, targets, listeners, health check, drain). */
  readonly diff: string;
}

export interface EnvironmentDiff {
  readonly before: string;
  readonly after: string;
  readonly nodes: readonly NodeDiff[];
  /** Per VIP, its Network Load Balancer (when either side is in ha.vipMode nlb). */
  readonly nlbs: readonly NlbDiff[];
  /** True when both nodes of an HA pair are replaced by this one change (their VIPs would go dark). */
  readonly replacesWholePair: boolean;
}

const USER_DATA = "(user data: the machine)";
const STORE = "(configuration store: instance tags)";

/** Where the nodes read their bundles (an adopted bucket, or the stack's own). */
function storeLocation(env: ResolvedEnvironment): string {
  return `bucket: ${env.configStore.bucket ?? `the stack's own (imaging-lb-${env.name}-<account>)`}\nprefix: ${env.configStore.prefix}\n`;
}

/** The machine settings that are not in the user data (the instance's own arguments). */
function instanceSettings(env: ResolvedEnvironment): string {
  const lb = env.loadBalancer;
  const lines = [`instanceType: ${lb.instanceType}`, `rootVolumeGiB: ${lb.rootVolumeGiB}`, `image: ${lb.amiId ?? lb.amiSsmParameter ?? `the public SSM parameter of ${lb.os}`}`];
  return `${lines.join("\n")}\n`;
}

function renderedFiles(env: ResolvedEnvironment, node: string): Map<string, string> {
  const a = nodeArtifacts(env, node);
  return new Map([
    ...a.bundle.files.map((f): [string, string] => [f.path, f.content]),
    [USER_DATA, `${a.userData}${instanceSettings(env)}`],
    [STORE, storeLocation(env)],
  ]);
}

/**
 * When `loadBalancer.instanceType` changed without the node's generation and HAProxy's maxconn follows it
 * (no `loadBalancer.haproxy.maxConnections`): the new maxconn is in the bundle, which the agent applies at
 * the next reload, while the instance keeps its size until it is replaced. Said plainly, with both fixes.
 */
function maxconnFollowsInstanceType(before: ResolvedEnvironment, after: ResolvedEnvironment, node: string): string | undefined {
  const was = before.loadBalancer;
  const now = after.loadBalancer;
  if (was.instanceType === now.instanceType || was.maxConnections === now.maxConnections) return undefined;
  if (was.maxConnections !== defaultMaxConnections(was.instanceType) || now.maxConnections !== defaultMaxConnections(now.instanceType)) return undefined;
  return (
    `loadBalancer.instanceType ${was.instanceType} → ${now.instanceType}: HAProxy's maxconn follows the instance type and changes at this reload (${was.maxConnections} → ${now.maxConnections}), ` +
    `but the running instance stays ${was.instanceType} until loadBalancer.nodes.${node}.generation is raised; ` +
    `raise it in this change (one node per change), or hold maxconn with loadBalancer.haproxy.maxConnections: ${was.maxConnections} until every node runs ${now.instanceType}`
  );
}

/** What moving the configuration store does (the nodes follow their instance tags in place). */
function storeMove(after: ResolvedEnvironment): string {
  const tags = metadataTagsAllowed(Object.keys(after.tags ?? {}));
  return tags
    ? "the configuration store moves (configStore): the stack writes the bundle to the new location, moves the nodes' permissions and changes their instance tag imaging-lb:config-bucket in place; each node follows within 5 minutes, no instance is replaced"
    : "the configuration store moves (configStore), but EC2 does not expose this environment's instance tags (a tag key holds a '/' or a space): the nodes keep reading the old location, which loses their permissions, until each node's generation is raised — keep configStore as it is, or drop those tags first";
}

/** A VIP's NLB as text, one fact a line, for the diff. */
function describeNlb(env: ResolvedEnvironment, vip: string): string | undefined {
  const v = env.vips.find((x) => x.name === vip);
  if (!isNlb(env) || !v?.nlb) return undefined;
  const h = NLB_HEALTH_CHECK;
  return [
    `internal NLB of VIP ${vip}, cross-zone ${env.ha?.nlb?.crossZone ? "on" : "off"}`,
    ...v.nlb.map((z) => `address ${z.node} (${z.subnet.availabilityZone}): ${z.address}`),
    ...v.nlb.map((z) => `target ${z.node}: ${z.target}`),
    ...nlbListeners(env)
      .filter((l) => l.vip === vip)
      .map((l) => `listener TCP ${l.port} → ${l.service}, idle timeout ${l.idleTimeoutSeconds} s`),
    `health check HTTP :${h.port}${h.path} every ${h.intervalSeconds} s, timeout ${h.timeoutSeconds} s, ${h.unhealthyThreshold} failures / ${h.healthyThreshold} passes`,
    `drain (deregistration delay) ${env.ha?.nlb?.drainSeconds ?? 0} s`,
    "",
  ].join("\n");
}

/** Per VIP, what the change does to its NLB. */
function diffNlbs(before: ResolvedEnvironment, after: ResolvedEnvironment): NlbDiff[] {
  if (!isNlb(before) && !isNlb(after)) return [];
  const vips = [...new Set([...before.vips, ...after.vips].map((v) => v.name))].sort();
  return vips.map((vip): NlbDiff => {
    const was = describeNlb(before, vip);
    const now = describeNlb(after, vip);
    const diff = unifiedDiff(was ?? "", now ?? "", `before/nlb/${vip}`, `after/nlb/${vip}`);
    if (was === undefined) return { vip, verdict: "NLB added", reason: "a new internal NLB with its listeners; clients reach the VIP at its addresses once its health checks pass", diff };
    if (now === undefined) return { vip, verdict: "NLB removed", reason: "the NLB and its addresses are destroyed: clients of those addresses lose the VIP", diff };
    if (diff === "") return { vip, verdict: "no change", reason: "nothing of this NLB changed", diff };
    const addresses = (text: string) => text.split("\n").filter((l) => l.startsWith("address "));
    if (addresses(was).join("\n") !== addresses(now).join("\n")) {
      return { vip, verdict: "NLB replaced", reason: "a fixed address (subnet mapping) changed: AWS replaces the whole NLB, and every connection through it is cut; clients given the old address must be changed", diff };
    }
    const why: string[] = [];
    const targets = (text: string) => text.split("\n").filter((l) => l.startsWith("target "));
    if (targets(was).join() !== targets(now).join()) why.push("a node's target address changes: the old one is deregistered (its connections drain) and the new one registered");
    if (diff.includes("listener")) why.push("listeners are added, removed or changed in place (established connections of other listeners are untouched)");
    if (diff.includes("cross-zone") || diff.includes("drain")) why.push("attributes change in place");
    return { vip, verdict: "NLB changed in place", reason: why.join("; ") || "changed in place", diff };
  });
}

/** Compares two resolved environments node by node. */
export function diffEnvironments(before: ResolvedEnvironment, after: ResolvedEnvironment): EnvironmentDiff {
  const names = [...new Set([...before.nodes, ...after.nodes].map((n) => n.name))].sort();
  const nodes = names.map((name): NodeDiff => {
    const was = before.nodes.find((n) => n.name === name);
    const now = after.nodes.find((n) => n.name === name);
    if (!was) return { node: name, verdict: "node added", reason: "a new instance is created", files: [] };
    if (!now) return { node: name, verdict: "node removed", reason: "its instance is destroyed", files: [] };
    const old = renderedFiles(before, name);
    const next = renderedFiles(after, name);
    const paths = [...new Set([...old.keys(), ...next.keys()])].sort();
    const files = paths
      .map((path) => ({ path, diff: unifiedDiff(old.get(path) ?? "", next.get(path) ?? "", `before${path.startsWith("/") ? path : "/user-data"}`, `after${path.startsWith("/") ? path : "/user-data"}`) }))
      .filter((f) => f.diff !== "");
    const machineChanged = files.some((f) => f.path === USER_DATA);
    const storeMoved = files.some((f) => f.path === STORE);
    if (now.generation !== was.generation) {
      const drain = isNlb(after)
        ? `: its targets leave the NLBs first (no new connection; those it serves drain up to ${after.ha?.nlb?.drainSeconds ?? 0} s), then a new instance boots the current machine definition and is registered again, taking connections once healthy`
        : ": a new instance boots the current machine definition";
      return { node: name, verdict: "node replaced", reason: `generation ${was.generation} → ${now.generation}${drain}`, files };
    }
    if (files.length === 0) return { node: name, verdict: "no change", reason: "nothing rendered for this node changed", files };
    const keepalivedChanged = after.nodes.length === 2 && files.some((f) => f.path === BUNDLE_PATHS.keepalivedConf);
    const reason =
      maxconnFollowsInstanceType(before, after, name) ??
      (storeMoved ? storeMove(after) : undefined) ??
      (machineChanged && files.every((f) => f.path === USER_DATA)
        ? `the machine definition changed but generation is still ${now.generation}: the running instance keeps its machine until loadBalancer.nodes.${name}.generation is raised`
        : `the agent validates, reloads seamlessly and health-checks the new bundle${keepalivedChanged ? "; keepalived reloads, and the MASTER assigns its VIPs in EC2 right after (a VIP added is routed at once, without a failover)" : ""}${machineChanged ? `; the machine part waits for loadBalancer.nodes.${name}.generation` : ""}`);
    const inPlace = files.some((f) => f.path !== USER_DATA);
    return { node: name, verdict: inPlace ? "applied in place (reload)" : "no change", reason, files };
  });
  const replaced = nodes.filter((n) => n.verdict === "node replaced").length;
  return { before: before.sourceFile, after: after.sourceFile, nodes, nlbs: diffNlbs(before, after), replacesWholePair: after.nodes.length >= 2 && replaced >= 2 };
}

/** The environment file `file` as it was at git revision `rev` (read with `git show`). */
export function environmentAtRevision(rev: string, file: string): ResolvedEnvironment {
  let text: string;
  try {
    text = execFileSync("git", ["show", `${rev}:./${file.replace(/^\.\//, "")}`], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? (e as Error).message).trim();
    throw new ConfigError([{ file: `${rev}:${file}`, path: "", message: `cannot be read from git (${stderr})` }]);
  }
  return parseEnvironment(text, `${rev}:${file}`);
}

/** The diff as text: per node, a verdict line, its reason and the file diffs. */
export function formatDiff(diff: EnvironmentDiff): string {
  const out: string[] = [];
  for (const node of diff.nodes) {
    out.push(`node ${node.node}: ${node.verdict}`, `  ${node.reason}`);
    for (const file of node.files) out.push(file.diff.replace(/\n$/, ""));
    out.push("");
  }
  for (const nlb of diff.nlbs) {
    if (nlb.verdict === "no change") continue;
    out.push(`nlb ${nlb.vip}: ${nlb.verdict}`, `  ${nlb.reason}`);
    if (nlb.diff) out.push(nlb.diff.replace(/\n$/, ""));
    out.push("");
  }
  if (diff.replacesWholePair) {
    const replaced = diff.nodes.filter((n) => n.verdict === "node replaced").length;
    out.push(
      diff.nodes.length === 2
        ? "UNSAFE: both nodes of the HA pair are replaced by this change; raise one node's generation per change (exit 3)"
        : `UNSAFE: ${replaced} of the ${diff.nodes.length} nodes are replaced by this change (their zones at once); raise one node's generation per change (exit 3)`,
      "",
    );
  }
  return `${out.join("\n")}`;
}
