/**
 * Small environment files for tests: a valid base that each test changes in one place.
 */
import { stringify } from "yaml";
import { parseEnvironment } from "../../lib/load/load";
import { ResolvedEnvironment } from "../../lib/config/model";

/** A loosely typed environment object: tests patch it freely, and the real loader validates it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Fixture = Record<string, any>;

export const SECRET = (name: string) => `arn:aws:secretsmanager:eu-west-1:123456789012:secret:test/${name}-AbCdEf`;

/** A valid two-arm, single-node environment with one tcp service `app` on VIP `main`. */
export function baseEnvironment(): Fixture {
  return {
    name: "test-env",
    region: "eu-west-1",
    network: {
      layout: "two-arm",
      vpcCidr: "10.20.0.0/16",
      internal: { cidr: "10.20.1.0/24", availabilityZone: "eu-west-1a" },
      external: { cidr: "10.20.2.0/24", availabilityZone: "eu-west-1a" },
      natSubnet: { cidr: "10.20.0.0/24", availabilityZone: "eu-west-1a" },
    },
    loadBalancer: { nodes: { "lb-a": { internalAddress: "10.20.1.10", externalAddress: "10.20.2.10" } } },
    vips: { main: { address: "10.20.2.100" } },
    services: { app: { frontendPorts: [2000] } },
    servers: { s1: { address: "10.20.1.21" }, s2: { address: "10.20.1.22" } },
    tls: { certificates: { web: { secretArn: SECRET("web") } } },
    access: { clientCidrs: ["10.0.0.0/8"], adminCidrs: ["10.99.0.0/24"] },
    admin: { statsPasswordSecretArn: SECRET("stats") },
  };
}

/** Deep-merges `patch` into the base environment (null deletes a key). */
export function environment(patch: Record<string, unknown> = {}): Fixture {
  return merge(baseEnvironment(), patch) as Fixture;
}

function merge(base: unknown, patch: unknown): unknown {
  if (patch === null) return undefined;
  if (typeof base === "object" && base && !Array.isArray(base) && typeof patch === "object" && patch && !Array.isArray(patch)) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(patch)) {
      const merged = merge(out[k], v);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
    return out;
  }
  return patch;
}

/** Resolves an environment object through the real loader (YAML text, as a user's file would be). */
export function resolve(env: Record<string, unknown>, file = "test.yaml"): ResolvedEnvironment {
  return parseEnvironment(stringify(env), file);
}
