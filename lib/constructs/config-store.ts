/**
 * Where the nodes' configuration lives: a per-environment S3 bucket (versioned, encrypted, private,
 * TLS-only, old versions expired) or an adopted one, the nodes' bundles uploaded into it, and the IAM
 * statements that let each node read its environment's bundles and write only its own status.
 *
 * S3 rather than SSM Parameter Store or AppConfig: a bundle is several files (a haproxy.cfg can exceed
 * Parameter Store's 8 KB), objects are versioned and content-addressed, a gateway endpoint makes it free and
 * private, and the status objects sit next to the bundles where the CLI and pipelines read them.
 */
import { S3Bucket } from "@cdktf/provider-aws/lib/s3-bucket";
import { S3BucketLifecycleConfiguration } from "@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration";
import { S3BucketPolicy } from "@cdktf/provider-aws/lib/s3-bucket-policy";
import { S3BucketPublicAccessBlock } from "@cdktf/provider-aws/lib/s3-bucket-public-access-block";
import { S3BucketServerSideEncryptionConfigurationA } from "@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration";
import { S3BucketVersioningA } from "@cdktf/provider-aws/lib/s3-bucket-versioning";
import { S3Object } from "@cdktf/provider-aws/lib/s3-object";
import { ITerraformDependable } from "cdktf";
import { Construct } from "constructs";
import { ConfigBundle, configBucketName, storeKeys } from "../bundle/config-bundle";
import { PolicyStatement, partitionOf } from "./instance-role";

/** Days a replaced version of a bundle or status object is kept (rollback and audit). */
export const NONCURRENT_VERSION_DAYS = 30;

/** Properties of {@link ConfigStore}. */
export interface ConfigStoreProps {
  readonly environmentName: string;
  readonly region: string;
  /** Key prefix of this environment's objects (the environment name). */
  readonly prefix: string;
  /** The account id (a token is fine): names the created bucket. */
  readonly accountId: string;
  /**
   * Adopt this bucket instead of creating one (its owner keeps versioning, encryption and policy).
   * @default a bucket created here
   */
  readonly adoptedBucket?: string;
  /**
   * Customer managed KMS key for the created bucket's default encryption.
   * @default SSE-S3 (AES256)
   */
  readonly kmsKeyArn?: string;
  /** The bundles to upload, one per node. */
  readonly bundles: readonly ConfigBundle[];
  /**
   * What a new manifest must wait for: e.g. the role's secrets policy, so a bundle naming a new secret is
   * published only once the nodes may read that secret.
   * @default []
   */
  readonly manifestsAfter?: readonly ITerraformDependable[];
}

/** The configuration store of one environment. */
export class ConfigStore extends Construct {
  /** The bucket name. */
  readonly bucketName: string;
  /** The bucket ARN. */
  readonly bucketArn: string;
  /** The created bucket (undefined when adopted). */
  readonly bucket?: S3Bucket;
  /** The manifests by node: the last object of each node's upload. */
  readonly manifests: Readonly<Record<string, S3Object>>;

  constructor(scope: Construct, id: string, props: ConfigStoreProps) {
    super(scope, id);
    const partition = partitionOf(props.region);
    if (props.adoptedBucket) {
      this.bucketName = props.adoptedBucket;
      this.bucketArn = `arn:${partition}:s3:::${props.adoptedBucket}`;
    } else {
      const bucket = new S3Bucket(this, "bucket", {
        bucket: configBucketName(props.environmentName, props.accountId),
        tags: { Name: `${props.environmentName}-config` },
      });
      new S3BucketVersioningA(this, "versioning", { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } });
      new S3BucketServerSideEncryptionConfigurationA(this, "encryption", {
        bucket: bucket.id,
        rule: [
          {
            applyServerSideEncryptionByDefault: props.kmsKeyArn
              ? { sseAlgorithm: "aws:kms", kmsMasterKeyId: props.kmsKeyArn }
              : { sseAlgorithm: "AES256" },
            bucketKeyEnabled: props.kmsKeyArn !== undefined,
          },
        ],
      });
      new S3BucketPublicAccessBlock(this, "public-access-block", {
        bucket: bucket.id,
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      });
      new S3BucketPolicy(this, "tls-only", {
        bucket: bucket.id,
        policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "TlsOnly",
              Effect: "Deny",
              Principal: "*",
              Action: "s3:*",
              Resource: [bucket.arn, `${bucket.arn}/*`],
              Condition: { Bool: { "aws:SecureTransport": "false" } },
            },
          ],
        }),
      });
      new S3BucketLifecycleConfiguration(this, "lifecycle", {
        bucket: bucket.id,
        rule: [
          {
            id: "expire-replaced-versions",
            status: "Enabled",
            filter: [{ prefix: "" }],
            noncurrentVersionExpiration: [{ noncurrentDays: NONCURRENT_VERSION_DAYS }],
            abortIncompleteMultipartUpload: [{ daysAfterInitiation: 1 }],
          },
        ],
      });
      this.bucket = bucket;
      this.bucketName = bucket.bucket;
      this.bucketArn = bucket.arn;
    }

    // Files first (content-addressed: a changed file is a new key, the old one stays until the new manifest
    // is up), then the manifest that names them.
    const manifests: Record<string, S3Object> = {};
    for (const bundle of props.bundles) {
      const files = bundle.files.map(
        (file) =>
          new S3Object(this, `${bundle.node}-${file.path}`, {
            bucket: this.bucketName,
            key: storeKeys.file(props.prefix, bundle.node, file.sha256),
            contentBase64: Buffer.from(file.content, "utf8").toString("base64"),
            contentType: "text/plain; charset=utf-8",
            lifecycle: { createBeforeDestroy: true },
          }),
      );
      manifests[bundle.node] = new S3Object(this, `${bundle.node}-manifest`, {
        bucket: this.bucketName,
        key: storeKeys.manifest(props.prefix, bundle.node),
        contentBase64: Buffer.from(bundle.manifestText, "utf8").toString("base64"),
        contentType: "application/json",
        dependsOn: [...files, ...(this.bucket ? [this.bucket] : []), ...(props.manifestsAfter ?? [])],
      });
    }
    this.manifests = manifests;
  }
}

/**
 * What the nodes may do in the store: read their environment's bundles and the status objects (a pair's
 * MASTER reads its peer's), and write only their own status (each node's statement holds only for requests
 * from that node's eth0 address). With a customer managed key, encrypt and decrypt through S3 only.
 */
export function configStoreStatements(props: {
  readonly bucketArn: string;
  readonly prefix: string;
  readonly region: string;
  readonly nodes: ReadonlyArray<{ readonly name: string; readonly internalAddress: string }>;
  readonly kmsKeyArn?: string;
}): PolicyStatement[] {
  const object = (key: string) => `${props.bucketArn}/${key}`;
  return [
    {
      Sid: "ReadBundlesAndStatus",
      Effect: "Allow",
      Action: ["s3:GetObject"],
      Resource: [object(`${props.prefix}/nodes/*`), object(`${props.prefix}/status/*`)],
    },
    ...props.nodes.map((node) => ({
      Sid: `WriteStatus${node.name.replace(/[^A-Za-z0-9]/g, "")}`,
      Effect: "Allow" as const,
      Action: ["s3:PutObject"],
      Resource: [object(storeKeys.status(props.prefix, node.name))],
      Condition: { StringEquals: { "aws:ec2InstanceSourcePrivateIPv4": node.internalAddress } },
    })),
    ...(props.kmsKeyArn
      ? [
          {
            Sid: "BucketKey",
            Effect: "Allow" as const,
            Action: ["kms:Decrypt", "kms:GenerateDataKey"],
            Resource: [props.kmsKeyArn],
            Condition: { StringEquals: { "kms:ViaService": `s3.${props.region}.amazonaws.com` } },
          },
        ]
      : []),
  ];
}
