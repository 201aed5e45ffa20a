/**
 * The product under test: an example environment file (`examples/*.yaml`) with its addresses mapped to a
 * harness topology, rendered with the product's own `renderHaproxy`, and run unchanged in the LB namespace.
 * Only the runtime paths the renderer exposes as options move (runtime socket, no chroot, certificate
 * folder); everything else is the configuration the bootstrap deploys.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse, stringify } from "yaml";
import { parseEnvironment } from "../../../lib/load/load";
import type { ResolvedEnvironment } from "../../../lib/config/model";
import { renderHaproxy } from "../../../lib/haproxy/build";
import { bindAddress } from "../../../lib/plan/nlb";
import { errorPageFiles } from "../../../lib/haproxy/error-pages";
import { makeSelfSignedPem } from "../../helpers/tools";
import { startHaproxy, haproxyRuntime, type HaproxyInstance } from "./haproxy";
import type { LbTopology } from "./topologies";
import { pollUntil } from "./wait";

/** The example environment files shipped with the product. */
export type ExampleName = "agfa-ei-two-arm" | "agfa-ei-one-arm";

/** The variable the rendered `userlist admins` reads the stats password from. */
export const STATS_PASSWORD_VARIABLE = "IMAGING_LB_STATS_PASSWORD";
/** A throwaway stats password for the tests (the product reads it from Secrets Manager at boot). */
export const TEST_STATS_PASSWORD = "e2e-stats-password";

/** The repository root (found from `src/` and from `dist/`). */
export function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 8; i += 1) {
    if (existsSync(join(dir, "examples")) && existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`cannot find the repository root (a folder with examples/ and package.json) above ${__dirname}`);
}

type Doc = Record<string, unknown>;

/** Deep-merges `patch` into `base` (objects merge, everything else replaces, `null` deletes). */
export function mergePatch(base: unknown, patch: unknown): unknown {
  if (patch === null) return undefined;
  const isObject = (v: unknown): v is Doc => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(base) || !isObject(patch)) return patch;
  const out: Doc = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    const merged = mergePatch(out[key], value);
    if (merged === undefined) delete out[key];
    else out[key] = merged;
  }
  return out;
}

/** Options of {@link productEnvironmentDocument}. */
export interface ProductEnvironmentOptions {
  /** Which example to start from. */
  readonly example: ExampleName;
  /** The topology whose addresses replace the example's. */
  readonly lb: LbTopology;
  /**
   * Changes made through the environment file's own fields after the address mapping (e.g. shorter check
   * intervals, `clientAddress: tproxy`), deep-merged; `null` deletes a key. @default {}
   */
  readonly patch?: Record<string, unknown>;
}

/**
 * The example's environment document (parsed YAML) with every address mapped to the topology: an adopted
 * VPC (`vpcId` + `subnetId`s, since the test ranges fit in no single VPC CIDR), subnets 198.51.100.0/24
 * (internal / one-arm) and 203.0.113.0/24 (two-arm external), nodes, VIPs and servers in file order onto
 * the topology's addresses, clients 192.0.2.0/24, admins the topology's admin host (or 198.51.100.5/32).
 * Services, AE titles, checks and timeouts are left as the example has them, then `patch` is applied.
 */
export function productEnvironmentDocument(options: ProductEnvironmentOptions): Doc {
  const { lb } = options;
  const doc = parse(readFileSync(join(repoRoot(), "examples", `${options.example}.yaml`), "utf8")) as Doc;
  const network = doc.network as Doc;
  const az = ((network.internal ?? network.subnet) as Doc).availabilityZone as string;
  const layout = network.layout as string;
  if (layout !== lb.layout) throw new Error(`example ${options.example} is ${layout}, the topology is ${lb.layout}`);
  doc.network =
    layout === "two-arm"
      ? {
          layout,
          vpcId: "vpc-0e2e0e2e0e2e0e2e0",
          internal: { cidr: "198.51.100.0/24", availabilityZone: az, subnetId: "subnet-0e2e0e2e0e2e00001" },
          external: { cidr: "203.0.113.0/24", availabilityZone: az, subnetId: "subnet-0e2e0e2e0e2e00002" },
        }
      : { layout, vpcId: "vpc-0e2e0e2e0e2e0e2e0", subnet: { cidr: "198.51.100.0/24", availabilityZone: az, subnetId: "subnet-0e2e0e2e0e2e00001" } };

  const loadBalancer = doc.loadBalancer as Doc;
  const nodeNames = Object.keys(loadBalancer.nodes as Doc);
  if (nodeNames.length > lb.lbs.length) throw new Error(`example ${options.example} has ${nodeNames.length} nodes, the topology ${lb.lbs.length}`);
  loadBalancer.nodes = Object.fromEntries(
    nodeNames.map((name, i) => {
      const internalAddress = `198.51.100.${10 + i}`;
      return [name, layout === "two-arm" ? { internalAddress, externalAddress: `203.0.113.${10 + i}` } : { internalAddress }];
    }),
  );

  const vipNames = Object.keys(doc.vips as Doc);
  if (vipNames.length > lb.vips.length) throw new Error(`example ${options.example} has ${vipNames.length} VIPs; build the topology with vips: ${vipNames.length}`);
  doc.vips = Object.fromEntries(vipNames.map((name, i) => [name, { ...((doc.vips as Doc)[name] as Doc), address: lb.vips[i] }]));

  const serverNames = Object.keys(doc.servers as Doc);
  if (serverNames.length > lb.serverAddresses.length) throw new Error(`example ${options.example} has ${serverNames.length} servers, the topology ${lb.serverAddresses.length}`);
  doc.servers = Object.fromEntries(serverNames.map((name, i) => [name, { ...((doc.servers as Doc)[name] as Doc), address: lb.serverAddresses[i] }]));

  doc.access = { clientCidrs: ["192.0.2.0/24"], adminCidrs: [`${lb.admin?.address ?? "198.51.100.5"}/32`] };
  return mergePatch(doc, options.patch ?? {}) as Doc;
}

/**
 * {@link productEnvironmentDocument} resolved through the product's loader (YAML text, as a user's file
 * would be); throws the product's `ConfigError` if the mapped file is invalid.
 */
export function productEnvironment(options: ProductEnvironmentOptions): ResolvedEnvironment {
  return parseEnvironment(stringify(productEnvironmentDocument(options)), `${options.example}.e2e.yaml`);
}

/** The example's server names in file order (index-aligned with the topology's servers). */
export function exampleServerNames(example: ExampleName): string[] {
  const doc = parse(readFileSync(join(repoRoot(), "examples", `${example}.yaml`), "utf8")) as Doc;
  return Object.keys(doc.servers as Doc);
}

/**
 * The `-n <maxconn>` command-line override needed when this process's hard file-descriptor limit is
 * below what the configuration's global `maxconn` needs (about 2 × maxconn): HAProxy then refuses to
 * start ("Cannot raise FD limit") unless it can raise the limit itself (CAP_SYS_RESOURCE, as on the real
 * load balancer). Returns undefined when no override is needed. The configuration file is never changed.
 */
export function maxconnOverride(config: string): number | undefined {
  const maxconn = Number(/^global\n(?:[ \t]+.*\n)*?[ \t]+maxconn (\d+)$/m.exec(config)?.[1] ?? "0");
  if (maxconn === 0) return undefined;
  const hard = spawnSync("bash", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout.trim();
  if (hard === "unlimited") return undefined;
  const canRaise = spawnSync("prlimit", ["--nofile=1048576:1048576", "true"]).status === 0;
  const needed = 2 * maxconn + 100;
  if (canRaise || Number(hard) >= needed) return undefined;
  return Math.floor((Number(hard) - 100) / 2);
}

/** A running product HAProxy. */
export interface ProductHaproxy {
  readonly env: ResolvedEnvironment;
  /**
   * `-n` given on the command line because the test host cannot raise the FD limit to what the rendered
   * `maxconn` needs (see {@link maxconnOverride}); undefined when HAProxy runs with the file's maxconn.
   */
  readonly maxconnOverride: number | undefined;
  /** The exact rendered haproxy.cfg that runs. */
  readonly config: string;
  readonly haproxy: HaproxyInstance;
  /** The runtime API socket (`stats socket`). */
  readonly socketPath: string;
  /** One runtime API command, e.g. `set server be_dicom/ei-core-1 state drain`. */
  runtime(command: string): Promise<string>;
  /** `show stat` as records keyed by the CSV header (`pxname`, `svname`, `status`, `scur`, `stot`, ...). */
  stat(): Promise<Record<string, string>[]>;
  /** The `status` column (`UP`, `DOWN`, `DRAIN`, `MAINT`, `UP 1/2`, ...) of `backend/server`. */
  serverStatus(backend: string, server: string): Promise<string>;
  /** Polls (every 100 ms) until `backend/server`'s status is exactly `status`; resolves with the time waited (ms). */
  waitForStatus(backend: string, server: string, status: string, timeoutMs: number): Promise<number>;
}

/** Options of {@link startProductHaproxy}. */
export interface StartProductOptions {
  /** The LB host. @default "lb" */
  readonly host?: string;
  /** Listeners to wait for. @default every VIP:port of the environment's services */
  readonly waitFor?: readonly { readonly address: string; readonly port: number }[];
  /**
   * Wait until every server of these backends is UP (checks passed) before returning, so tests start from
   * a settled state. @default []
   */
  readonly waitUp?: readonly string[];
  /** @default 30000 */
  readonly upTimeoutMs?: number;
  /**
   * The node of the environment this HAProxy is (`-L <node>`: its peer name in the `peers` section). With
   * ha.vipMode nlb also the node the configuration is rendered for (its own VIP addresses).
   * @default none: the configuration every node shares, no `-L`
   */
  readonly node?: string;
}

/**
 * Renders `env` with `renderHaproxy(env, { runtimeSocket, chroot: false, certBase, errorDir })`, writes a throwaway
 * self-signed PEM for every certificate the environment names and its error pages, and starts it in the LB namespace with
 * `IMAGING_LB_STATS_PASSWORD` set (validated with `haproxy -dW -c` first).
 *
 * @example
 * const env = productEnvironment({ example: "agfa-ei-two-arm", lb });
 * const product = await startProductHaproxy(lb, env, { waitUp: ["be_dicom"] });
 */
export async function startProductHaproxy(lb: Pick<LbTopology, "topology">, env: ResolvedEnvironment, options: StartProductOptions = {}): Promise<ProductHaproxy> {
  const host = options.host ?? "lb";
  const topo = lb.topology;
  const certBase = join(topo.workDir, `certs-${host}`);
  mkdirSync(certBase, { recursive: true });
  for (const certificate of env.certificates) makeSelfSignedPem(certBase, certificate.name);
  const socketPath = join(topo.workDir, `haproxy-${host}.sock`);
  // The error pages and maintenance map the bundle installs under /etc/haproxy/errors, in the work folder.
  const errorDir = join(topo.workDir, `errors-${host}`);
  for (const file of errorPageFiles(env)) {
    mkdirSync(dirname(join(errorDir, file.name)), { recursive: true });
    writeFileSync(join(errorDir, file.name), file.content);
  }
  const config = renderHaproxy(env, { runtimeSocket: socketPath, chroot: false, certBase, errorDir, ...(options.node ? { node: options.node } : {}) });
  const listeners =
    options.waitFor ??
    env.services.flatMap((s) => [...s.frontendPorts, ...(s.tls.redirectHttpPort === undefined ? [] : [s.tls.redirectHttpPort])].map((port) => ({ address: bindAddress(s.vip, options.node), port })));
  const override = maxconnOverride(config);
  const haproxy = await startHaproxy(topo, {
    host,
    config,
    waitFor: listeners,
    env: { [STATS_PASSWORD_VARIABLE]: TEST_STATS_PASSWORD },
    args: override === undefined ? [] : ["-n", String(override)],
    ...(options.node ? { localPeer: options.node } : {}),
  });
  const runtime = (command: string): Promise<string> => haproxyRuntime(socketPath, command);
  const stat = async (): Promise<Record<string, string>[]> => {
    const text = await runtime("show stat");
    const lines = text.split("\n").filter((line) => line.trim() !== "");
    const header = (lines.shift() ?? "").replace(/^#\s*/, "").split(",");
    return lines.map((line) => Object.fromEntries(line.split(",").map((value, i) => [header[i] ?? String(i), value])));
  };
  const serverStatus = async (backend: string, server: string): Promise<string> => {
    const row = (await stat()).find((r) => r.pxname === backend && r.svname === server);
    if (!row) throw new Error(`no server ${backend}/${server} in show stat`);
    return row.status ?? "";
  };
  const waitForStatus = async (backend: string, server: string, status: string, timeoutMs: number): Promise<number> => {
    const started = Date.now();
    let last = "";
    await pollUntil(
      `${backend}/${server} to be ${status}`,
      async () => {
        const row = (await stat()).find((r) => r.pxname === backend && r.svname === server);
        last = row ? `status ${row.status}, check ${row.check_status} ${row.check_code ?? ""} "${row.last_chk ?? ""}"` : "no such server";
        if (row?.status === status) return true;
        throw new Error(last);
      },
      { timeoutMs, intervalMs: 100 },
    );
    return Date.now() - started;
  };
  const product: ProductHaproxy = { env, maxconnOverride: override, config, haproxy, socketPath, runtime, stat, serverStatus, waitForStatus };
  for (const backend of options.waitUp ?? []) {
    const service = env.services.find((s) => `be_${s.name}` === backend);
    if (!service) throw new Error(`waitUp: no backend ${backend}`);
    for (const member of service.members) {
      if (!member.backup) await waitForStatus(backend, member.name, "UP", options.upTimeoutMs ?? 30_000);
    }
  }
  return product;
}
