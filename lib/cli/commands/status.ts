/**
 * `imaging-lb status`: desired against applied configuration per node, from the status objects the nodes'
 * agents write to the configuration bucket (AWS SDK for JavaScript v3, the caller's credentials). The
 * desired version is rendered here from the environment file, exactly as the stack uploads it. A status the
 * agent has not rewritten for three heartbeats is stale: its agent (or its node) is not running.
 *
 * `imaging-lb retry|release|refresh` send a node a command through the same bucket (`<prefix>/commands/<node>.json`).
 */
import { randomUUID } from "node:crypto";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { configBucketName, nodeBundle, storeKeys } from "../../node/bundle";
import { ResolvedEnvironment } from "../../config/model";
import { NODE_CONTRACT, type OperatorCommand } from "../../contract/node-contract";
import { awsProblem, unreadableStatus } from "../aws-problems";

/** What a node's agent last reported (the status object; format 2 since 0.3, see the node contract). */
export interface NodeStatusObject {
  readonly format?: number;
  readonly node?: string;
  readonly agentVersion?: string | null;
  readonly desiredVersion?: string | null;
  readonly appliedVersion?: string | null;
  readonly appliedRelease?: string | null;
  readonly result?: string;
  readonly error?: string | null;
  readonly retryable?: boolean;
  readonly nextRetryAt?: string | null;
  readonly warning?: string | null;
  readonly updatedAt?: string;
  readonly appliedAt?: string | null;
  readonly haproxyVersion?: string | null;
  readonly haproxyRunning?: boolean;
  readonly role?: string;
  readonly heartbeatSeconds?: number;
  readonly secrets?: { readonly result?: string; readonly error?: string | null; readonly refreshedAt?: string | null } | null;
  readonly certificates?: ReadonlyArray<{ readonly path: string; readonly notAfter: string | null }>;
  /** The last error sending the node's metrics to CloudWatch (null: sent). */
  readonly metricsError?: string | null;
}

/** The fields the CLI reads, each a field of the status document the contract names (checked by a test). */
export const STATUS_FIELDS_READ: ReadonlyArray<keyof NodeStatusObject> = [
  "format", "node", "agentVersion", "desiredVersion", "appliedVersion", "appliedRelease", "result", "error", "retryable",
  "nextRetryAt", "warning", "updatedAt", "appliedAt", "haproxyVersion", "haproxyRunning", "role", "heartbeatSeconds", "secrets", "certificates", "metricsError",
];

/**
 * converged: the desired version applied; failed: the desired version failed, was refused, rolled back or is
 * held, or the bootstrap failed (not retried without a change or `imaging-lb retry`); retrying: a transient
 * failure, retried by the agent; stale: the agent has said nothing for three heartbeats; pending: not yet.
 */
export type NodeState = "converged" | "failed" | "retrying" | "stale" | "pending";

/** One node's line of the report. */
export interface NodeStatus {
  readonly node: string;
  /** The version this environment file renders for the node. */
  readonly desiredVersion: string;
  readonly reported?: NodeStatusObject;
  /** Seconds since the node wrote its status (by S3's Last-Modified), when it wrote one. */
  readonly ageSeconds?: number;
  readonly state: NodeState;
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

/** A node's status object and when it was written; undefined when the node has written none. */
export interface StatusRead {
  readonly document: NodeStatusObject;
  /** S3's Last-Modified of the object. */
  readonly lastModified?: Date;
}

/** Reads a status object; undefined when the node has written none. */
export type StatusReader = (bucket: string, key: string) => Promise<StatusRead | undefined>;

/**
 * The status reader over the AWS SDK (S3 GetObject; a missing object is "no status yet"). The user's AWS
 * situation (no credentials, no bucket, access denied) is thrown as an AwsProblem; an object that is not
 * a JSON object is that node's report `unreadable`, so the others are still reported.
 */
export function s3StatusReader(region: string): StatusReader {
  const s3 = new S3Client({ region });
  return async (bucket, key) => {
    let text: string;
    let lastModified: Date | undefined;
    try {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      text = await object.Body!.transformToString("utf-8");
      lastModified = object.LastModified;
    } catch (e) {
      if ((e as { name?: string }).name === "NoSuchKey") return undefined;
      throw awsProblem(e, `reading s3://${bucket}/${key}`, bucket);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      return { document: { result: "unreadable", error: unreadableStatus(bucket, key, `not JSON: ${(e as Error).message}`) }, lastModified };
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return { document: { result: "unreadable", error: unreadableStatus(bucket, key, `JSON, but not an object: ${text.trim().slice(0, 40)}`) }, lastModified };
    }
    return { document: parsed as NodeStatusObject, lastModified };
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

const FAILED_RESULTS = new Set<string>(NODE_CONTRACT.status.failedResults);

/** Seconds of silence after which a node's status is stale: three heartbeats (the agent's, as it reports it). */
export function staleAfterSeconds(reported: NodeStatusObject): number {
  return (reported.heartbeatSeconds ?? NODE_CONTRACT.defaults.heartbeatSeconds) * NODE_CONTRACT.defaults.staleHeartbeats;
}

/** A node's state from what it reported, how long ago, and the version this file renders for it. */
export function nodeState(desiredVersion: string, reported: NodeStatusObject | undefined, ageSeconds: number | undefined): NodeState {
  if (reported === undefined) return "pending";
  if (reported.result === "bootstrap-failed") return "failed";
  if (ageSeconds !== undefined && ageSeconds > staleAfterSeconds(reported)) return "stale";
  if (reported.appliedVersion === desiredVersion && reported.result === "applied") return "converged";
  if (reported.desiredVersion === desiredVersion && FAILED_RESULTS.has(reported.result ?? "")) return "failed";
  if (reported.desiredVersion === desiredVersion && reported.result === "retrying") return "retrying";
  return "pending";
}

/** Desired against reported, per node (`now`: the clock the status objects' ages are taken by). */
export async function environmentStatus(env: ResolvedEnvironment, bucket: string, read: StatusReader, now: Date = new Date()): Promise<EnvironmentStatus> {
  const nodes = await Promise.all(
    env.nodes.map(async (n): Promise<NodeStatus> => {
      const desiredVersion = nodeBundle(env, n.name).version;
      const got = await read(bucket, storeKeys.status(env.configStore.prefix, n.name));
      const ageSeconds = got?.lastModified ? Math.max(0, Math.round((now.getTime() - got.lastModified.getTime()) / 1000)) : undefined;
      return { node: n.name, desiredVersion, reported: got?.document, ageSeconds, state: nodeState(desiredVersion, got?.document, ageSeconds) };
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

/** Seconds as a short age: 42s, 7m, 3h, 12d. */
function age(seconds: number | undefined): string {
  if (seconds === undefined) return "-";
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86_400)}d ago`;
}

/** What the report says of a node besides its result: its error, a stale node's silence, a warning. */
function remark(n: NodeStatus): string {
  const r = n.reported;
  if (!r) return "";
  const parts: string[] = [];
  if (n.state === "stale") parts.push(`no word for ${age(n.ageSeconds).replace(" ago", "")} (its agent or node is down: journalctl -u imaging-lb-agent over SSM)`);
  if (r.error) parts.push(r.error + (r.nextRetryAt ? ` (next attempt ${r.nextRetryAt})` : ""));
  if (r.haproxyRunning === false) parts.push("HAProxy is not running");
  if (r.secrets && r.secrets.result && r.secrets.result !== "ok" && r.secrets.error) parts.push(`secrets: ${r.secrets.error}`);
  if (r.metricsError) parts.push(`metrics not sent: ${r.metricsError}`);
  if (r.warning) parts.push(r.warning);
  return parts.join("; ");
}

/** The report as a table. */
export function formatStatus(status: EnvironmentStatus): string {
  const rows = [
    ["node", "state", "role", "desired", "applied", "result", "agent", "updated", "error"],
    ...status.nodes.map((n) => [
      n.node,
      n.state,
      n.reported?.role ?? "-",
      n.desiredVersion,
      n.reported?.appliedVersion ?? "-",
      n.reported?.result ?? "no status yet",
      // A status without the agent's version is the shell agent's of 0.2.
      n.reported?.agentVersion ?? (n.reported && n.reported.format === undefined && n.reported.result !== "unreadable" ? "0.2" : "-"),
      age(n.ageSeconds),
      remark(n),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ").trimEnd());
  return `${status.environment}: release ${status.release} in s3://${status.bucket}\n${lines.join("\n")}\n`;
}

/** The command object `imaging-lb retry|release|refresh` writes for a node. */
export interface NodeCommand {
  readonly id: string;
  readonly node: string;
  readonly command: OperatorCommand;
  readonly issuedAt: string;
  /** The caller's ARN (STS), for the node's journal. */
  readonly issuedBy: string;
  /** The version the file renders for the node, for the record. */
  readonly desiredVersion: string;
}

/** Writes a command object per node (S3 PutObject with the caller's credentials); resolves with them. */
export async function sendCommand(env: ResolvedEnvironment, bucket: string, command: OperatorCommand, nodes: readonly string[]): Promise<NodeCommand[]> {
  let issuedBy = "unknown";
  try {
    issuedBy = (await new STSClient({ region: env.region }).send(new GetCallerIdentityCommand({}))).Arn ?? issuedBy;
  } catch (e) {
    throw awsProblem(e, "asking AWS STS who you are, for the command's record");
  }
  const s3 = new S3Client({ region: env.region });
  const sent: NodeCommand[] = [];
  for (const node of nodes) {
    const doc: NodeCommand = { id: randomUUID(), node, command, issuedAt: new Date().toISOString(), issuedBy, desiredVersion: nodeBundle(env, node).version };
    const key = storeKeys.command(env.configStore.prefix, node);
    try {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `${JSON.stringify(doc)}\n`, ContentType: "application/json" }));
    } catch (e) {
      throw awsProblem(e, `writing s3://${bucket}/${key}`, bucket);
    }
    sent.push(doc);
  }
  return sent;
}
