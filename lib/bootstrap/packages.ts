/**
 * What a node installs from its OS's packages, written once: the stock bootstrap installs it at first boot,
 * the image recipe bakes it (every option on, so one image serves any environment of its OS and HAProxy
 * series), and the bootstrap on a baked image checks it is there.
 */
import type { BootstrapOs } from "./bootstrap-spec";

/** What a node needs, beside HAProxy. */
export interface PackageNeeds {
  readonly os: BootstrapOs;
  /** The pinned LTS series (`3.0`), or undefined for the distribution's own. */
  readonly haproxyVersion: string | undefined;
  /** TProxy: iptables (the mangle DIVERT rules). */
  readonly tproxy: boolean;
  /** CloudWatch Logs shipping: amazon-cloudwatch-agent (a package on AL2023; a .deb from AWS's S3 elsewhere). */
  readonly cloudWatchAgent: boolean;
  /** Further packages, such as socat, and services, such as keepalived. */
  readonly extra: readonly string[];
  /** The AWS CLI (the agent's loader and the takeover use it). @default true */
  readonly awsCli?: boolean;
}

/** The OS packages and snaps of a node. */
export interface NodePackages {
  /** Package manager names (AL2023: dnf specs such as `haproxy-3.0.*` when the series is pinned). */
  readonly packages: readonly string[];
  /** Snaps, installed with --classic (Ubuntu 24.04 has no AWS CLI package). */
  readonly snaps: readonly string[];
}

/** The packages and snaps `needs` asks for, by the OS's names. */
export function nodePackages(needs: PackageNeeds): NodePackages {
  const al2023 = needs.os === "al2023";
  const haproxy = al2023 && needs.haproxyVersion !== undefined ? `haproxy-${needs.haproxyVersion}.*` : "haproxy";
  const packages = [haproxy, ...(needs.tproxy ? [al2023 ? "iptables-nft" : "iptables"] : []), ...needs.extra];
  const snaps: string[] = [];
  if (needs.awsCli ?? true) {
    if (al2023) packages.push("awscli-2");
    else if (needs.os === "ubuntu-24.04") snaps.push("aws-cli");
    else packages.push("awscli");
  }
  if (al2023 && needs.cloudWatchAgent) packages.push("amazon-cloudwatch-agent");
  return { packages, snaps };
}

/** A package spec's name (`haproxy-3.0.*` → `haproxy`). */
export const packageName = (spec: string) => spec.replace(/-\d[\d.]*\.\*$/, "");
