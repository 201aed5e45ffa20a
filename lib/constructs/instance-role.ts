/**
 * The load balancers' IAM role and instance profile, with least privilege: Session Manager, the
 * environment's secrets, its CloudWatch Logs group, and (HA pair) exactly the failover actions of its VIP
 * mode on the pair's own resources.
 */
import { DataAwsCallerIdentity } from "@cdktf/provider-aws/lib/data-aws-caller-identity";
import { IamInstanceProfile } from "@cdktf/provider-aws/lib/iam-instance-profile";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import { IamRolePolicy } from "@cdktf/provider-aws/lib/iam-role-policy";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment";
import { Construct } from "constructs";
import { VipMode } from "../config/model";

/**
 * The first statement of every KMS key policy the stacks write: the account administers the key and grants
 * its use through IAM policies (a key policy without it can lock the account out of its own key).
 */
export const keyAdministeredByAccount = (partition: string, accountId: string) => ({
  Sid: "AccountAdministersAndGrantsThroughIam",
  Effect: "Allow",
  Principal: { AWS: `arn:${partition}:iam::${accountId}:root` },
  Action: "kms:*",
  Resource: "*",
});

/** The AWS partition of a region: `aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`, else `aws`. */
export function partitionOf(region: string): string {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}

/** One IAM policy statement (Allow only). */
export interface PolicyStatement {
  /** Statement id. */
  readonly Sid: string;
  /** Always `Allow`. */
  readonly Effect: "Allow";
  /** Exact action names, never wildcards. */
  readonly Action: readonly string[];
  /** Exact resource ARNs. */
  readonly Resource: readonly string[];
  /** Conditions, e.g. `{ StringEquals: { "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com" } }`. */
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** What the failover script of a pair may touch, per VIP mode. */
export interface VipFailoverGrant {
  /** The VIP mode of the pair (a VRRP mode: nlb moves nothing and gets no grant). */
  readonly vipMode: Exclude<VipMode, "nlb">;
  /** ARNs of both nodes' client-side ENIs (the ENIs that receive the floating addresses). */
  readonly networkInterfaceArns: readonly string[];
  /**
   * elastic-ip: ARNs of the Elastic IP allocations that follow the active node.
   * @default []
   */
  readonly elasticIpArns?: readonly string[];
  /**
   * route-table: ARNs of the route tables whose `<vip>/32` routes the script replaces.
   * @default []
   */
  readonly routeTableArns?: readonly string[];
}

/**
 * The failover statements of a VIP mode (what keepalived's notify script calls):
 * - secondary-ip: `ec2:AssignPrivateIpAddresses` / `ec2:UnassignPrivateIpAddresses` on the two client ENIs;
 * - elastic-ip: `ec2:AssociateAddress` / `ec2:DisassociateAddress` on the allocations and the two ENIs, plus
 *   the secondary-ip pair of actions on the ENIs (the VIP's private address, which the Elastic IP maps to,
 *   moves first);
 * - route-table: `ec2:ReplaceRoute` on the route tables.
 * No `ec2:Describe*`: the script learns its ENI id from IMDSv2, not from the EC2 API.
 */
export function failoverStatements(grant: VipFailoverGrant): readonly PolicyStatement[] {
  const privateIps: PolicyStatement = {
    Sid: "MoveVipPrivateAddresses",
    Effect: "Allow",
    Action: ["ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
    Resource: [...grant.networkInterfaceArns],
  };
  switch (grant.vipMode) {
    case "secondary-ip":
      return [privateIps];
    case "elastic-ip":
      return [
        privateIps,
        {
          Sid: "MoveElasticIps",
          Effect: "Allow",
          Action: ["ec2:AssociateAddress", "ec2:DisassociateAddress"],
          Resource: [...(grant.elasticIpArns ?? []), ...grant.networkInterfaceArns],
        },
      ];
    case "route-table":
      return [{ Sid: "MoveVipRoutes", Effect: "Allow", Action: ["ec2:ReplaceRoute"], Resource: [...(grant.routeTableArns ?? [])] }];
  }
}

/**
 * Reading the boot secrets: `secretsmanager:GetSecretValue` on exactly `secretArns`; with customer managed
 * keys, `kms:Decrypt` on exactly those keys, only through Secrets Manager of `region` (so the role cannot
 * decrypt anything else with them).
 */
export function secretStatements(secretArns: readonly string[], kmsKeyArns: readonly string[], region: string): readonly PolicyStatement[] {
  const keys = [...new Set(kmsKeyArns)].sort();
  return [
    { Sid: "ReadBootSecrets", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [...secretArns] },
    ...(keys.length > 0
      ? [
          {
            Sid: "DecryptBootSecrets",
            Effect: "Allow" as const,
            Action: ["kms:Decrypt"],
            Resource: keys,
            Condition: { StringEquals: { "kms:ViaService": `secretsmanager.${region}.amazonaws.com` } },
          },
        ]
      : []),
  ];
}

/** Renders an IAM policy document. */
export function policyDocument(statements: readonly PolicyStatement[]): string {
  return JSON.stringify({ Version: "2012-10-17", Statement: statements });
}

/** Properties of {@link LoadBalancerInstanceRole}. */
export interface LoadBalancerInstanceRoleProps {
  /** Environment name (role and profile names). */
  readonly environmentName: string;
  /** AWS region (ARNs and the partition). */
  readonly region: string;
  /** Secrets the nodes read at boot: the certificates' and the stats password's ARNs. */
  readonly secretArns: readonly string[];
  /**
   * Customer managed KMS keys of those secrets: `kms:Decrypt` on exactly these keys, and only when
   * Secrets Manager of the region asks (`kms:ViaService`).
   * @default [] (secrets under aws/secretsmanager need no KMS permission)
   */
  readonly secretKmsKeyArns?: readonly string[];
  /**
   * CloudWatch Logs group the nodes ship HAProxy logs to.
   * @default no log shipping, no logs permission
   */
  readonly cloudWatchLogGroup?: string;
  /**
   * CloudWatch namespace the nodes send their metrics to: `cloudwatch:PutMetricData`, only with this
   * namespace (PutMetricData has no resource to scope; the `cloudwatch:namespace` condition is the scope).
   * @default no metrics, no permission
   */
  readonly metricsNamespace?: string;
}

/** Sending the node's metrics: PutMetricData, only into `namespace`. */
export function metricsStatements(namespace: string): readonly PolicyStatement[] {
  return [
    {
      Sid: "SendNodeMetrics",
      Effect: "Allow",
      Action: ["cloudwatch:PutMetricData"],
      Resource: ["*"],
      Condition: { StringEquals: { "cloudwatch:namespace": namespace } },
    },
  ];
}

/**
 * IAM role + instance profile of the load balancer nodes. The role trusts `ec2.amazonaws.com` only and
 * carries the `AmazonSSMManagedInstanceCore` managed policy, `secretsmanager:GetSecretValue` on exactly the
 * given secrets (and `kms:Decrypt` through Secrets Manager on their customer managed keys), `logs:CreateLogStream`/`PutLogEvents`/`DescribeLogStreams` on the one log group, and
 * `cloudwatch:PutMetricData` into the one metrics namespace. Call
 * {@link grantVipFailover} for a pair once the ENIs exist.
 *
 * @example
 * const role = new LoadBalancerInstanceRole(this, "role", { environmentName: "prod", region: "eu-west-1", secretArns });
 * new Instance(this, "lb", { iamInstanceProfile: role.instanceProfile.name, ... });
 */
export class LoadBalancerInstanceRole extends Construct {
  /** The role. */
  readonly role: IamRole;
  /** The instance profile wrapping the role. */
  readonly instanceProfile: IamInstanceProfile;
  /** The failover policy, once granted. */
  failoverPolicy?: IamRolePolicy;
  /** The boot secrets policy (undefined without secrets). */
  readonly secretsPolicy?: IamRolePolicy;
  /** The configuration store policy, once granted. */
  configStorePolicy?: IamRolePolicy;
  /** The metrics policy (undefined without metricsNamespace). */
  readonly metricsPolicy?: IamRolePolicy;
  private readonly partition: string;

  constructor(scope: Construct, id: string, props: LoadBalancerInstanceRoleProps) {
    super(scope, id);
    const name = `imaging-lb-${props.environmentName}`;
    this.partition = partitionOf(props.region);
    this.role = new IamRole(this, "role", {
      name,
      description: `imaging-lb load balancers of environment ${props.environmentName}`,
      assumeRolePolicy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
      }),
    });
    new IamRolePolicyAttachment(this, "ssm-core", {
      role: this.role.name,
      policyArn: `arn:${this.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore`,
    });
    const secrets = [...new Set(props.secretArns)].sort();
    if (secrets.length > 0) {
      this.secretsPolicy = new IamRolePolicy(this, "secrets", {
        name: "read-secrets",
        role: this.role.id,
        policy: policyDocument(secretStatements(secrets, props.secretKmsKeyArns ?? [], props.region)),
      });
    }
    if (props.cloudWatchLogGroup !== undefined) {
      const account = new DataAwsCallerIdentity(this, "account").accountId;
      const group = `arn:${this.partition}:logs:${props.region}:${account}:log-group:${props.cloudWatchLogGroup}`;
      new IamRolePolicy(this, "logs", {
        name: "ship-logs",
        role: this.role.id,
        policy: policyDocument([
          {
            Sid: "ShipHaproxyLogs",
            Effect: "Allow",
            Action: ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            Resource: [group, `${group}:*`],
          },
        ]),
      });
    }
    if (props.metricsNamespace !== undefined) {
      this.metricsPolicy = new IamRolePolicy(this, "metrics", { name: "send-metrics", role: this.role.id, policy: policyDocument(metricsStatements(props.metricsNamespace)) });
    }
    this.instanceProfile = new IamInstanceProfile(this, "profile", { name, role: this.role.name });
  }

  /** Adds the configuration store's statements (see `configStoreStatements`). Once per role. */
  grantConfigStore(statements: readonly PolicyStatement[]): IamRolePolicy {
    if (this.configStorePolicy) throw new Error("grantConfigStore was already called for this role");
    this.configStorePolicy = new IamRolePolicy(this, "config-store", { name: "config-store", role: this.role.id, policy: policyDocument(statements) });
    return this.configStorePolicy;
  }

  /** Adds the failover permissions of an HA pair (see {@link failoverStatements}). Once per role. */
  grantVipFailover(grant: VipFailoverGrant): IamRolePolicy {
    if (this.failoverPolicy) throw new Error("grantVipFailover was already called for this role");
    this.failoverPolicy = new IamRolePolicy(this, "vip-failover", {
      name: "vip-failover",
      role: this.role.id,
      policy: policyDocument(failoverStatements(grant)),
    });
    return this.failoverPolicy;
  }
}
