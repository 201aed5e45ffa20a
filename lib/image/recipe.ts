/**
 * The baked image's recipe (issue 25): lib/shell/bake.sh with its values for an environment's OS and
 * HAProxy series. The same text runs wherever an image is baked: EC2 Image Builder's component
 * (constructs/image-builder.ts), and the boot test's disk image (scripts/build-boot-image.sh, through
 * `imaging-lb render image-recipe`). Pure: no cdktf.
 */
import { createHash } from "node:crypto";
import { bake } from "../shell/embedded.generated";
import { ResolvedEnvironment } from "../config/model";
import { NODE_CONTRACT } from "../contract/node-contract";
import { nodePackages, NodePackages } from "../bootstrap/packages";

/** Every package an image of `env`'s OS carries: any node of that OS and series, whichever its options. */
export function imagePackages(env: ResolvedEnvironment): NodePackages {
  return nodePackages({
    os: env.loadBalancer.os,
    haproxyVersion: env.loadBalancer.haproxy.version,
    tproxy: true,
    cloudWatchAgent: env.admin.cloudWatchLogGroup !== undefined,
    // python3 and curl: the agent and the bootstrap's IMDS reads; on every supported image already, named so a
    // minimal image cannot lack them.
    extra: ["socat", "keepalived", "python3", "curl"],
  });
}

/** The recipe of `env`'s image: the script, and a version that changes with its text. */
export interface ImageRecipe {
  readonly os: ResolvedEnvironment["loadBalancer"]["os"];
  readonly haproxySeries: string;
  readonly packages: NodePackages;
  /** `<series>.<n>`: Image Builder's semantic version (n from the script's hash: a new text, a new version). */
  readonly version: string;
  /** The whole bash script, values first. */
  readonly script: string;
}

const bashArray = (items: readonly string[]) => `(${items.map((i) => `'${i}'`).join(" ")})`;

/** The recipe for `env`'s OS, HAProxy source and series, and log shipping. */
export function imageRecipe(env: ResolvedEnvironment): ImageRecipe {
  const lb = env.loadBalancer;
  const packages = imagePackages(env);
  const deb =
    env.admin.cloudWatchLogGroup !== undefined && lb.os !== "al2023"
      ? `https://amazoncloudwatch-agent-${env.region}.s3.${env.region}.amazonaws.com/${lb.os.startsWith("ubuntu") ? "ubuntu" : "debian"}/amd64/latest/amazon-cloudwatch-agent.deb`
      : "";
  const values = [
    `OS=${lb.os}`,
    `PACKAGES=${bashArray(packages.packages)}`,
    `SNAPS=${bashArray(packages.snaps)}`,
    `HAPROXY_PPA=${lb.haproxy.source === "ppa" ? lb.haproxy.version : ""}`,
    `HAPROXY_SERIES=${lb.haproxy.version}`,
    `CLOUDWATCH_AGENT_DEB=${deb}`,
    `MANIFEST=${NODE_CONTRACT.paths.imageManifest}`,
  ].join("\n");
  // Image Builder's semantic version of the component: a new text, a new version.
  const version = `${lb.haproxy.version}.${createHash("sha256").update(`${values}\n${bake}`).digest().readUInt32BE(0) % 1000000}`;
  const script = `#!/bin/bash
# imaging-lb image recipe: ${lb.os}, HAProxy ${lb.haproxy.version} (${lb.haproxy.source}). Rendered by imaging-lb; do not edit.
${values}
RECIPE=${version}
${bake}`;
  return { os: lb.os, haproxySeries: lb.haproxy.version, packages, version, script };
}
