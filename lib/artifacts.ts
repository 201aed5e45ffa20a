/**
 * Everything rendered for one load balancer node: haproxy.cfg, keepalived.conf + notify script (HA
 * pair), and the cloud-init user data that installs them. Pure: the constructs call this and only
 * attach the result. (Wiring of the bootstrap and keepalived renderers: see nodeArtifacts.)
 */
import { ResolvedEnvironment, ResolvedNode } from "./config/model";
import { renderHaproxy } from "./haproxy/build";

export interface NodeArtifacts {
  readonly node: ResolvedNode;
  readonly haproxyConfig: string;
  /** cloud-init user data (text, before base64). */
  readonly userData: string;
}

/** Renders the artifacts of node `nodeName` of `env`. */
export function nodeArtifacts(env: ResolvedEnvironment, nodeName: string): NodeArtifacts {
  const node = env.nodes.find((n) => n.name === nodeName);
  if (!node) throw new Error(`environment '${env.name}' has no node '${nodeName}' (nodes: ${env.nodes.map((n) => n.name).join(", ")})`);
  const haproxyConfig = renderHaproxy(env);
  // Placeholder until the bootstrap renderer is wired in (same commit series): the config as a file.
  const userData = ["#cloud-config", "write_files:", "  - path: /etc/haproxy/haproxy.cfg", "    content: |", ...haproxyConfig.split("\n").map((l) => `      ${l}`)].join("\n");
  return { node, haproxyConfig, userData };
}
