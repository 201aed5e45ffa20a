/**
 * A product testbed: a topology of the example's layout, real servers behind it (Orthanc for DICOM and
 * HTTP, MLLP receivers for HL7) on the ports the example's services use, and the product's rendered
 * haproxy.cfg running on the LB.
 */
import type { ResolvedEnvironment } from "../../../lib/config/model";
import { startMllpReceiver, type MllpReceiver } from "./hl7";
import { startOrthanc, type OrthancServer } from "./orthanc";
import { exampleServerNames, productEnvironment, startProductHaproxy, type ExampleName, type ProductHaproxy } from "./product";
import { buildOneArm, buildTwoArm, type LbTopology, type OneArmOptions, type TwoArmOptions } from "./topologies";

/** Options of {@link startTestbed}. */
export interface TestbedOptions {
  readonly example: ExampleName;
  /** Topology options (VIP count is set from the example). @default {} */
  readonly topology?: TwoArmOptions & OneArmOptions;
  /** Environment changes through the file's own fields (see `productEnvironmentDocument`). @default {} */
  readonly patch?: Record<string, unknown>;
  /**
   * Orthanc DICOM ports per server: one Orthanc each (the first also serves HTTP on {@link httpPort}).
   * @default [104, 110] — the product's DICOM check covers both of the preset's DICOM ports
   */
  readonly dicomPorts?: readonly number[];
  /** HTTP port of the first Orthanc of each server (the web service's backend port). @default 80 */
  readonly httpPort?: number;
  /** Extra Orthancs serving HTTP only on these ports (e.g. a path route's backend port), named `<host>-<port>`. @default [] */
  readonly extraHttpPorts?: readonly number[];
  /** MLLP receiver ports per server. @default [] */
  readonly mllpPorts?: readonly number[];
  /** Backends whose servers must be UP before the testbed is returned. @default [] */
  readonly waitUp?: readonly string[];
}

/** A running testbed. */
export interface Testbed {
  readonly lb: LbTopology;
  readonly env: ResolvedEnvironment;
  readonly product: ProductHaproxy;
  /** The example's server names (HAProxy server names, cookie values), index-aligned with `lb.servers`. */
  readonly serverNames: readonly string[];
  /** Orthancs by DICOM port, index-aligned with `lb.servers`. */
  readonly orthancs: ReadonlyMap<number, readonly OrthancServer[]>;
  /** HTTP-only Orthancs by port, index-aligned with `lb.servers`. */
  readonly httpOrthancs: ReadonlyMap<number, readonly OrthancServer[]>;
  /** MLLP receivers by port, index-aligned with `lb.servers`. */
  readonly receivers: ReadonlyMap<number, readonly MllpReceiver[]>;
  /** The VIP address of a VIP name of the environment (`web`, `core`). */
  vip(name: string): string;
  /** Kills everything and removes the namespaces. */
  destroy(): void;
}

/**
 * Builds the example's layout, starts the servers and the product's HAProxy. On failure everything started
 * so far is destroyed.
 *
 * @example
 * const bed = await startTestbed({ example: "agfa-ei-two-arm", mllpPorts: [2310], waitUp: ["be_dicom"] });
 * try { ... } finally { bed.destroy(); }
 */
export async function startTestbed(options: TestbedOptions): Promise<Testbed> {
  const serverNames = exampleServerNames(options.example);
  const layoutOptions = { servers: serverNames.length, vips: 2, ...options.topology };
  const lb = options.example === "agfa-ei-two-arm" ? buildTwoArm(layoutOptions) : buildOneArm(layoutOptions);
  try {
    const env = productEnvironment({ example: options.example, lb, patch: options.patch });
    const topo = lb.topology;
    const aet = (i: number): string => env.services.find((s) => s.name === "dicom")?.members[i]?.aeTitle ?? "ORTHANC";
    const orthancs = new Map<number, OrthancServer[]>();
    const dicomPorts = options.dicomPorts ?? [104, 110];
    for (const [p, dicomPort] of dicomPorts.entries()) {
      const httpPort = p === 0 ? (options.httpPort ?? 80) : 18_000 + dicomPort;
      orthancs.set(
        dicomPort,
        await Promise.all(lb.servers.map((host, i) => startOrthanc(topo, { host, aet: aet(i), checkCalledAet: true, dicomPort, httpPort }))),
      );
    }
    const httpOrthancs = new Map<number, OrthancServer[]>();
    for (const httpPort of options.extraHttpPorts ?? []) {
      httpOrthancs.set(
        httpPort,
        await Promise.all(lb.servers.map((host) => startOrthanc(topo, { host, name: `${host}-${httpPort}`, httpPort, dicomPort: 20_000 + httpPort }))),
      );
    }
    const receivers = new Map<number, MllpReceiver[]>();
    for (const port of options.mllpPorts ?? []) {
      receivers.set(port, await Promise.all(lb.servers.map((host) => startMllpReceiver(topo, { host, port }))));
    }
    const product = await startProductHaproxy(lb, env, { waitUp: options.waitUp });
    return {
      lb,
      env,
      product,
      serverNames,
      orthancs,
      httpOrthancs,
      receivers,
      vip: (name) => {
        const vip = env.vips.find((v) => v.name === name);
        if (!vip) throw new Error(`no VIP ${name} (VIPs: ${env.vips.map((v) => v.name).join(", ")})`);
        return vip.address;
      },
      destroy: () => lb.topology.destroy(),
    };
  } catch (error) {
    lb.topology.destroy();
    throw error;
  }
}
