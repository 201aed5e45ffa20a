/**
 * Where the nodes' configuration lives: a per-environment S3 bucket (versioned, encrypted, private,
 * TLS-only, old versions expired) or an adopted one, the nodes' bundles uploaded into it, each manifest's
 * signature, and the IAM statements that let each node read its environment's bundles and write only its
 * own status.
 *
 * Who may publish a bundle is enforced three ways: the created bucket's policy denies writes to
 * `<prefix>/nodes/*` and `<prefix>/commands/*` to every principal but the deploying one (and
 * `configStore.writerArns`), and `<prefix>/status/*` to all but the nodes' role; each manifest is signed at
 * deploy with the environment's KMS key (`aws_kms_ciphertext`: kms:Encrypt, which the key policy allows
 * the same principals only), and a node applies nothing whose signature does not decrypt under that key
 * with its own encryption context; the node's role may only decrypt, only that key, only its own context.
 * A KMS asymmetric signature (kms:Sign) would say the same, but Terraform has no resource that calls Sign:
 * the deploy would need a tool outside `cdktf deploy`. Encrypting the manifest's digest under a key only the
 * deployers may encrypt with is a MAC that the plain deploy produces.
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
import { KmsAlias } from "@cdktf/provider-aws/lib/kms-alias";
import { KmsCiphertext } from "@cdktf/provider-aws/lib/kms-ciphertext";
import { KmsKey } from "@cdktf/provider-aws/lib/kms-key";
import { TerraformResource, TerraformStack } from "cdktf";
import { Construct } from "constructs";
import { ConfigBundle, configBucketName, storeKeys } from "../node/bundle";
import { NODE_CONTRACT, manifestKeyAlias } from "../contract/node-contract";
import { keyAdministeredByAccount, PolicyStatement, partitionOf } from "./instance-role";

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
   * IAM principal ARNs that may publish bundles and commands and sign manifests: the deploying principal
   * (a token: `aws_iam_session_context`'s issuer) and `configStore.writerArns`.
   */
  readonly writerArns: readonly string[];
  /** The nodes' role ARN: the only principal that may write `<prefix>/status/*` of the created bucket. */
  readonly nodeRoleArn: string;

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
  /** The key whose ciphertexts sign the manifests (alias `alias/imaging-lb/<environment>/manifests`). */
  readonly signingKey: KmsKey;
  /** The created bucket's policy (undefined when adopted). */
  readonly policy?: S3BucketPolicy;
  private readonly legacyObjects: string[] = [];

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
      const objects = (path: string) => `${bucket.arn}/${props.prefix}/${path}`;
      // The resource id stays "tls-only" (construct ids are API): the policy grew, the resource did not move.
      this.policy = new S3BucketPolicy(this, "tls-only", {
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
            {
              Sid: "OnlyDeployersPublish",
              Effect: "Deny",
              Principal: "*",
              Action: ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl", "s3:RestoreObject"],
              Resource: [objects("nodes/*"), objects("commands/*")],
              Condition: { StringNotLike: { "aws:PrincipalArn": [...props.writerArns] } },
            },
            {
              Sid: "OnlyNodesReport",
              Effect: "Deny",
              Principal: "*",
              Action: ["s3:PutObject", "s3:PutObjectAcl"],
              Resource: [objects("status/*")],
              Condition: { StringNotLike: { "aws:PrincipalArn": [props.nodeRoleArn] } },
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

    this.signingKey = new KmsKey(this, "manifest-key", {
      description: `imaging-lb ${props.environmentName}: signs the nodes' configuration manifests (only deployers may encrypt)`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          keyAdministeredByAccount(partition, props.accountId),
          {
            Sid: "OnlyDeployersSign",
            Effect: "Deny",
            Principal: "*",
            Action: ["kms:Encrypt", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext"],
            Resource: "*",
            Condition: { StringNotLike: { "aws:PrincipalArn": [...props.writerArns] } },
          },
        ],
      }),
      tags: { Name: `${props.environmentName}-manifests` },
    });
    new KmsAlias(this, "manifest-key-alias", { name: manifestKeyAlias(props.environmentName), targetKeyId: this.signingKey.keyId });

    // Per node: every distinct file content once (content-addressed keys; the id follows the key, so no two
    // resources ever own one object and a change never deletes an object another file still names), then
    // the signature, then the manifest that names them all.
    const manifests: Record<string, S3Object> = {};
    for (const bundle of props.bundles) {
      const bySha = new Map<string, (typeof bundle.files)[number]>();
      for (const file of bundle.files) if (!bySha.has(file.sha256)) bySha.set(file.sha256, file);
      const files = [...bySha.values()].map(
        (file) =>
          new S3Object(this, `${bundle.node}-file-${file.sha256.slice(0, 24)}`, {
            bucket: this.bucketName,
            key: storeKeys.file(props.prefix, bundle.node, file.sha256),
            contentBase64: Buffer.from(file.content, "utf8").toString("base64"),
            contentType: "text/plain; charset=utf-8",
            dependsOn: this.policy ? [this.policy] : undefined,
          }),
      );
      // Up to 0.2 a file object's id followed its path, and two paths with one content shared one key: the
      // state forgets those objects instead of deleting them (the new resources above own the same keys).
      for (const file of bundle.files) this.forgetLegacyObject(`${bundle.node}-${file.path}`);
      const ciphertext = new KmsCiphertext(this, `${bundle.node}-signature-ciphertext`, {
        keyId: this.signingKey.keyId,
        plaintext: bundle.signature.plaintext,
        context: { ...bundle.signature.context },
      });
      const signature = new S3Object(this, `${bundle.node}-signature`, {
        bucket: this.bucketName,
        key: storeKeys.signature(props.prefix, bundle.node),
        content: `{"format":${NODE_CONTRACT.signature.format},"manifestSha256":"${bundle.manifestSha256}","ciphertext":"${ciphertext.ciphertextBlob}"}\n`,
        contentType: "application/json",
        dependsOn: [...files, ...(this.policy ? [this.policy] : [])],
      });
      manifests[bundle.node] = new S3Object(this, `${bundle.node}-manifest`, {
        bucket: this.bucketName,
        key: storeKeys.manifest(props.prefix, bundle.node),
        contentBase64: Buffer.from(bundle.manifestText, "utf8").toString("base64"),
        contentType: "application/json",
        dependsOn: [signature, ...files, ...(this.bucket ? [this.bucket] : [])],
      });
    }
    this.manifests = manifests;
    const legacy = this.legacyObjects;
    TerraformStack.of(this).addOverride("removed", legacy.map((from) => ({ from, lifecycle: { destroy: false } })));
  }

  /**
   * Makes every manifest wait for `resources` too: e.g. the role's secrets policy, so a bundle naming a new
   * secret is published only once the nodes may read that secret.
   */
  publishAfter(resources: readonly TerraformResource[]): void {
    // Plain addresses: a resource's fqn token set after construction does not resolve to one.
    const addresses = resources.map((r) => `${r.terraformResourceType}.${r.friendlyUniqueId}`);
    for (const manifest of Object.values(this.manifests)) manifest.dependsOn = [...(manifest.dependsOn ?? []), ...addresses];
  }

  /** A `removed` block (destroy = false) for the 0.2 file object of id `id` under this construct. */
  private forgetLegacyObject(id: string): void {
    const stack = TerraformStack.of(this);
    // The logical id cdktf gave that object: computed from its construct path, as cdktf does (constructs
    // wrote the "/" of a construct id as "--").
    const scope = { node: { id: id.replace(/\//g, "--") } };
    const address = `aws_s3_object.${stack.getLogicalId({ scopes: [...this.node.scopes, scope] } as unknown as Construct["node"])}`;
    if (!this.legacyObjects.includes(address)) this.legacyObjects.push(address);
  }
}

/**
 * What the nodes may do in the store: read their environment's bundles, the status objects (a pair's nodes
 * read each other's) and their operator commands; write only their own status (each node's statement holds
 * only for requests from that node's eth0 address); decrypt manifest signatures with the environment's
 * signing key, only with its manifest encryption context (never encrypt: a node cannot sign). With a
 * customer managed bucket key, encrypt and decrypt through S3 only.
 */
export function configStoreStatements(props: {
  readonly bucketArn: string;
  readonly prefix: string;
  readonly region: string;
  readonly environmentName: string;
  readonly nodes: ReadonlyArray<{ readonly name: string; readonly internalAddress: string }>;
  readonly signingKeyArn: string;
  readonly kmsKeyArn?: string;
}): PolicyStatement[] {
  const object = (key: string) => `${props.bucketArn}/${key}`;
  return [
    {
      Sid: "ReadBundlesStatusAndCommands",
      Effect: "Allow",
      Action: ["s3:GetObject"],
      Resource: [object(`${props.prefix}/nodes/*`), object(`${props.prefix}/status/*`), object(`${props.prefix}/commands/*`)],
    },
    ...props.nodes.map((node) => ({
      Sid: `WriteStatus${node.name.replace(/[^A-Za-z0-9]/g, "")}`,
      Effect: "Allow" as const,
      Action: ["s3:PutObject"],
      Resource: [object(storeKeys.status(props.prefix, node.name))],
      Condition: { StringEquals: { "aws:ec2InstanceSourcePrivateIPv4": node.internalAddress } },
    })),
    {
      Sid: "VerifyManifestSignatures",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: [props.signingKeyArn],
      Condition: {
        StringEquals: {
          "kms:EncryptionContext:imaging-lb:environment": props.environmentName,
          "kms:EncryptionContext:imaging-lb:purpose": NODE_CONTRACT.signature.context["imaging-lb:purpose"],
        },
      },
    },
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
