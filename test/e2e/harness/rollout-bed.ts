/**
 * A testbed for day-2 changes: the two-arm example (single node or HA pair) with three real servers
 * (Orthanc for DICOM and HTTP, MLLP receivers for HL7), an S3/Secrets Manager emulator (moto: SIMULATED
 * AWS) and the product's agent on each LB host. Changes are made through the environment file's own fields;
 * {@link RolloutBed.publish} renders every node's bundle and uploads it as the stack does.
 * Used by the rollout e2e test and by `npm run bench:rollout`.
 */
import type { ResolvedEnvironment } from "../../../lib/config/model";
import { nodeBundle, type ConfigBundle } from "../../../lib/node/bundle";
import { makeSelfSignedPem } from "../../helpers/tools";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { agentRuntimePaths, prepareAgentNode, startConfigStore, TEST_ACCOUNT, type AgentNode, type ConfigStore } from "./agent-node";
import { startMllpReceiver, type MllpReceiver } from "./hl7";
import { startOrthanc, type OrthancServer } from "./orthanc";
import { mergePatch, productEnvironment, TEST_STATS_PASSWORD } from "./product";
import { buildTwoArm, type LbTopology } from "./topologies";

export const ROLLOUT_EXAMPLE = "agfa-ei-two-arm";
/** Short checks so a change is in effect within seconds (the environment file's own fields). */
const FAST_CHECKS = {
  dicom: { healthCheck: { interval: "1s", fall: 2, rise: 1 }, timeouts: { check: "1s" } },
  xero: { healthCheck: { interval: "1s", fall: 2, rise: 1, path: "/system" }, timeouts: { check: "1s" } },
  hl7: { healthCheck: { interval: "1s", fall: 2, rise: 1 }, timeouts: { check: "1s" } },
  core: { healthCheck: { interval: "1s", fall: 2, rise: 1 }, timeouts: { check: "1s" } },
};

export interface RolloutBed {
  readonly lb: LbTopology;
  readonly store: ConfigStore;
  /** Agent nodes by LB host (`lb`, and `lb2` in a pair); node names follow the environment's. */
  readonly nodes: readonly AgentNode[];
  readonly orthancs: readonly OrthancServer[];
  readonly receivers: readonly MllpReceiver[];
  /** Secret ARNs created in the emulator: the stats password and two certificates. */
  readonly secrets: { readonly stats: string; readonly certA: string; readonly certB: string };
  /** The environment with `patch` (deep-merged after the bed's own settings). */
  environment(patch?: Record<string, unknown>): ResolvedEnvironment;
  /** Renders and uploads every node's bundle; resolves with the bundles by node name. */
  publish(env: ResolvedEnvironment): Promise<Record<string, ConfigBundle>>;
  /** When the last {@link publish} began writing the manifests (Date.now()): the new version's upload time. */
  publishedAt: number;
  destroy(): void;
}

/** Builds the bed; `pair` adds `lb2` (the VIPs sit on `lb`, the MASTER); `clients` client hosts (@default 1). */
export async function startRolloutBed(options: { pair: boolean; clients?: number }): Promise<RolloutBed> {
  const lb = buildTwoArm({ servers: 3, vips: 2, haPair: options.pair, clients: options.clients });
  const topo = lb.topology;
  const nodes: AgentNode[] = [];
  try {
    const region = "eu-west-1";
    const store = await startConfigStore(topo, "lb", { bucket: `imaging-lb-rollout-${TEST_ACCOUNT}`, region, address: "198.51.100.10", environment: "ei-two-arm" });
    const certDir = join(topo.workDir, "pems");
    mkdirSync(certDir, { recursive: true });
    const pem = (name: string) => readFileSync(makeSelfSignedPem(certDir, name), "utf8");
    const secrets = {
      stats: await store.putSecret("rollout/stats", TEST_STATS_PASSWORD),
      certA: await store.putSecret("rollout/web-a", pem("web-a")),
      certB: await store.putSecret("rollout/web-b", pem("web-b")),
    };
    const aet = "EI_CORE";
    // Every port the services check: DICOM 104 and 110, HL7 2310 and 2311 (a server failing one is DOWN).
    const orthancs = await Promise.all(lb.servers.map((host) => startOrthanc(topo, { host, aet, checkCalledAet: true, dicomPort: 104, httpPort: 80 })));
    await Promise.all(lb.servers.map((host) => startOrthanc(topo, { host, aet, checkCalledAet: true, dicomPort: 110, httpPort: 18_110 })));
    const receivers = await Promise.all(lb.servers.map((host) => startMllpReceiver(topo, { host, port: 2310 })));
    await Promise.all(lb.servers.map((host) => startMllpReceiver(topo, { host, port: 2311 })));
    const base = {
      loadBalancer: options.pair
        ? { nodes: { "lb-b": { internalAddress: "198.51.100.11", externalAddress: "203.0.113.11" } }, ha: { vipMode: "secondary-ip" } }
        : {},
      services: FAST_CHECKS,
      tls: { certificates: { web: { secretArn: secrets.certA } } },
      admin: { statsPasswordSecretArn: secrets.stats },
    };
    const environment = (patch: Record<string, unknown> = {}) =>
      productEnvironment({ example: ROLLOUT_EXAMPLE, lb, patch: mergePatch(base, patch) as Record<string, unknown> });
    const env0 = environment();
    for (const [i, host] of lb.lbs.entries()) {
      nodes.push(prepareAgentNode(topo, host, { node: env0.nodes[i].name, environment: env0.name, store, storeEndpoint: store.endpoint }));
    }
    const bed: RolloutBed = {
      lb,
      store,
      nodes,
      orthancs,
      receivers,
      secrets,
      environment,
      publishedAt: 0,
      async publish(env) {
        const bundles: Record<string, ConfigBundle> = {};
        for (const node of nodes) bundles[node.node] = nodeBundle(env, node.node, { haproxy: agentRuntimePaths(node.root) });
        bed.publishedAt = await store.upload(Object.values(bundles), env.configStore.prefix);
        return bundles;
      },
      destroy() {
        for (const node of nodes) node.stopHaproxy();
        topo.destroy();
      },
    };
    return bed;
  } catch (error) {
    for (const node of nodes) node.stopHaproxy();
    topo.destroy();
    throw error;
  }
}

/** A patch adding a third server (the topology's srv3) to the environment. */
export function thirdServer(lb: LbTopology): Record<string, unknown> {
  return { servers: { "ei-core-3": { address: lb.serverAddresses[2], aeTitle: "EI_CORE" } } };
}
