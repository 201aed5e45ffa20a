/**
 * `imaging-lb status`: desired against applied configuration per node, from the status objects the nodes'
 * agents write to the configuration bucket (AWS SDK for JavaScript v3, the caller's credentials). The
 * desired version is rendered here from the environment file, exactly as the stack uploads it.
 */
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { configBucketName, nodeBundle, storeKeys } from "../../bundle/config-bundle";
import { ResolvedEnvironment } from "../../config/model";
import { awsProblem, unreadableStatus } from "../aws-problems";

/** What a node's agent last reported (the status object). */
export interface NodeStatusObject {
  readonly node?: string;
  readonly desiredVersion?: string | null;
  readonly appliedVersion?: string | null;
  readonly appliedRelease?: string | null;
  readonly result?: string;
  readonly error?: string | null;
  readonly updatedAt?: string;
  readonly appliedAt?: string | null;
  readonly haproxyVersion?: string | null;
  readonly role?: string;
}

/** One node's line of the report. */
export interface NodeStatus {
  readonly node: string;
  /** The version this environment file renders for the node. */
  readonly desiredVersion: string;
  readonly reported?: NodeStatusObject;
  /** converged: applied the desired version; failed: the desired version failed or is held; pending: not yet. */
  readonly state: "converged" | "failed" | "pending";
}

export interface EnvironmentStatus {
  readonly environment: string;
  readonly bucket: string;
  readonly release: string;
  readonly nodes: readonly NodeStatus[];
  /** Every node converged. */
  readonly converged: boolean;
  /** Some node failed the desired version (or holds it back). */
  readonly failed: boolean;
}

/** Reads a status object; undefined when the node has written none. */
export type StatusReader = (bucket: string, key: string) => Promise<NodeStatusObject | undefined>;

/**
 * The status reader over the AWS SDK (S3 GetObject; a missing object is "no status yet"). The user's AWS
 * situation (no credentials, no bucket, access denied) is thrown as an AwsProblem; an object that is not
 * a JSON object is that node's report `unreadable`, so the others are still reported.
 */
export function s3StatusReader(region: string): StatusReader {
  const s3 = new S3Client({ region });
  return async (bucket, key) => {
    let text: string;
    try {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      text = await object.Body!.transformToString("utf-8");
    } catch (e) {
      if ((e as { name?: string }).name === "NoSuchKey") return undefined;
      throw awsProblem(e, `reading s3://${bucket}/${key}`, bucket);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      return { result: "unreadable", error: unreadableStatus(bucket, key, `not JSON: ${(e as Error).message}`) };
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return { result: "unreadable", error: unreadableStatus(bucket, key, `JSON, but not an object: ${text.trim().slice(0, 40)}`) };
    }
    return parsed as NodeStatusObject;
  };
}

/** The bucket of `env`: the adopted one, or the stack's (named after the caller's account). */
export async function configBucketOf(env: ResolvedEnvironment): Promise<string> {
  if (env.configStore.bucket) return env.configStore.bucket;
  let account: string | undefined;
  try {
    account = (await new STSClient({ region: env.region }).send(new GetCallerIdentityCommand({}))).Account;
  } catch (e) {
    throw awsProblem(e, "asking AWS STS for your account, which names the configuration bucket");
  }
  return configBucketName(env.name, account!);
}

const FAILED_RESULTS = new Set(["failed", "rolled-back", "held", "bootstrap-failed"]);

/** Desired against reported, per node. */
export async function environmentStatus(env: ResolvedEnvironment, bucket: string, read: StatusReader): Promise<EnvironmentStatus> {
  const nodes = await Promise.all(
    env.nodes.map(async (n): Promise<NodeStatus> => {
      const desiredVersion = nodeBundle(env, n.name).version;
      const reported = await read(bucket, storeKeys.status(env.configStore.prefix, n.name));
      const state =
        reported?.appliedVersion === desiredVersion && reported.result === "applied"
          ? "converged"
          : reported?.desiredVersion === desiredVersion && FAILED_RESULTS.has(reported.result ?? "")
            ? "failed"
            : "pending";
      return { node: n.name, desiredVersion, reported, state };
    }),
  );
  return {
    environment: env.name,
    bucket,
    release: nodeBundle(env, env.nodes[0].name).release,
    nodes,
    converged: nodes.every((n) => n.state === "converged"),
    failed: nodes.some((n) => n.state === "failed"),
  };
}

/** The report as a table. */
export function formatStatus(status: EnvironmentStatus): string {
  const rows = [
    ["node", "state", "role", "desired", "applied", "result", "updated", "error"],
    ...status.nodes.map((n) => [
      n.node,
      n.state,
      n.reported?.role ?? "-",
      n.desiredVersion,
      n.reported?.appliedVersion ?? "-",
      n.reported?.result ?? "no status yet",
      n.reported?.updatedAt ?? "-",
      n.reported?.error ?? "",
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ").trimEnd());
  return `${status.environment}: release ${status.release} in s3://${status.bucket}\n${lines.join("\n")}\n`;
}
