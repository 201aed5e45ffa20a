/**
 * One Terraform stack per environment: the AWS provider (region, default tags), the optional S3 backend,
 * the network (with its NAT egress when created), the instance role, the node(s), the VIPs' Elastic IPs or
 * routes, the guardrails and the outputs operators need.
 */
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group";
import { DataAwsCallerIdentity } from "@cdktf/provider-aws/lib/data-aws-caller-identity";
import { DataAwsIamSessionContext } from "@cdktf/provider-aws/lib/data-aws-iam-session-context";
import { Eip } from "@cdktf/provider-aws/lib/eip";
import { EipAssociation } from "@cdktf/provider-aws/lib/eip-association";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { Route } from "@cdktf/provider-aws/lib/route";
import { Aspects, S3Backend, TerraformOutput, TerraformStack } from "cdktf";
import { Construct } from "constructs";
import { nodeBundle } from "../node/bundle";
import { PEERS_PORT, ResolvedEnvironment } from "../config/model";
import { ConfigStore, configStoreStatements } from "./config-store";
import { ImagingLbGuardrails } from "./guardrails";
import { LoadBalancerInstanceRole, partitionOf } from "./instance-role";
import { LoadBalancerNode, amiParameter, bootDependencies } from "./load-balancer-node";
import { subnetsOfSide } from "../plan/interface-plan";
import { ImagingLbMonitoring } from "./monitoring";
import { ImagingLbImageBuilder } from "./image-builder";
import { ImagingLbNetwork } from "./network";
import { egressPlan } from "../plan/egress";
import { ImagingLbNetworkLoadBalancers } from "./network-load-balancers";
import { NODE_CONTRACT } from "../contract/node-contract";

/** Tag every resource carries, with the environment name as value. */
export const ENVIRONMENT_TAG = "imaging-lb:environment";

/** Properties of {@link ImagingLbStack}. */
export interface ImagingLbStackProps {
  /** The resolved environment (from `loadEnvironment`). */
  readonly environment: ResolvedEnvironment;
  /**
   * Interface VPC endpoints to create (short service names).
   * @default created VPC: the services the nodes call (lib/plan/egress.ts `nodeInterfaceEndpoints`:
   * DEFAULT_INTERFACE_ENDPOINTS, plus `logs` with admin.cloudWatchLogGroup and `monitoring` with monitoring.enabled);
   * adopted VPC: none (the VPC's owner usually has them; AWS allows one private-DNS endpoint per service)
   */
  readonly interfaceEndpoints?: readonly string[];
  /**
   * Destinations of the nodes' package and API egress (eth0, TCP 80 and 443): package mirrors (Ubuntu's EC2
   * mirrors are plain HTTP) and AWS APIs. Use the VPC CIDR (interface endpoints) plus your proxy or mirror
   * to narrow it.
   * @default ["0.0.0.0/0"]
   */
  readonly packageEgressCidrs?: readonly string[];
  /**
   * Replace a node when its user data changes (see {@link LoadBalancerNodeProps.userDataReplaceOnChange}).
   * @default true
   */
  readonly userDataReplaceOnChange?: boolean;
}

/**
 * The stack of one environment. Its id is the environment name.
 *
 * @example
 * const app = new App();
 * new ImagingLbStack(app, env.name, { environment: loadEnvironment("prod.yaml") });
 * app.synth();
 */
export class ImagingLbStack extends TerraformStack {
  /** The environment the stack was built from. */
  readonly environment: ResolvedEnvironment;
  /** The network (created or adopted). */
  readonly network: ImagingLbNetwork;
  /** The nodes' role and instance profile. */
  readonly instanceRole: LoadBalancerInstanceRole;
  /** The configuration bundles' bucket and objects. */
  readonly configStore: ConfigStore;
  /** The nodes by name. */
  readonly nodes: Readonly<Record<string, LoadBalancerNode>>;
  /** Elastic IPs allocated by the stack, by VIP name (VIPs with elasticIp and no elasticIpAllocationId). */
  readonly elasticIps: Readonly<Record<string, Eip>>;
  /** Associations of adopted Elastic IPs (single node), by VIP name. */
  readonly elasticIpAssociations: Readonly<Record<string, EipAssociation>>;
  /**
   * The CloudWatch Logs group of admin.cloudWatchLogGroup, created here (its logs never expire; set a
   * retention on it as your policy requires). A group that already exists must be imported into the
   * stack first (`terraform import 'aws_cloudwatch_log_group.haproxy-logs' <name>`), or the apply fails.
   */
  readonly logGroup?: CloudwatchLogGroup;
  /** Alarms, their SNS topic and the dashboard (monitoring section). */
  readonly monitoring: ImagingLbMonitoring;
  /** route-table mode: the `<vip>/32` routes, by `<route table>/<vip>`. */
  readonly vipRoutes: Readonly<Record<string, Route>>;
  /** nlb mode: the VIPs' Network Load Balancers, listeners, target groups and registrations. */
  readonly networkLoadBalancers?: ImagingLbNetworkLoadBalancers;
  /** loadBalancer.imageBuild: the EC2 Image Builder pipeline of the baked image. */
  readonly imageBuilder?: ImagingLbImageBuilder;
  private caller?: DataAwsCallerIdentity;

  constructor(scope: Construct, id: string, props: ImagingLbStackProps) {
    super(scope, id);
    const env = props.environment;
    this.environment = env;
    const ha = env.ha;
    const pair = env.nodes.length === 2;

    new AwsProvider(this, "aws", {
      region: env.region,
      defaultTags: [{ tags: { ...env.tags, [ENVIRONMENT_TAG]: env.name } }],
    });
    if (env.stateBackend) {
      const backend = new S3Backend(this, {
        bucket: env.stateBackend.bucket,
        key: env.stateBackend.key,
        region: env.stateBackend.region,
        encrypt: true,
      });
      // Terraform >= 1.10 S3-native state locking; cdktf 0.21's S3Backend has no property for it.
      backend.addOverride("use_lockfile", true);
    }
    // The S3 backend's lock file (use_lockfile) is GA from Terraform 1.11; older versions refuse to run.
    this.addOverride("terraform.required_version", ">= 1.11");
    Aspects.of(this).add(new ImagingLbGuardrails({ adminPorts: [env.admin.statsPort, PEERS_PORT] }));

    const adopted = env.network.vpcId !== undefined;
    const elasticVips = env.vips.filter((v) => v.elasticIp);
    if (pair && elasticVips.length > 0 && ha?.vipMode !== "elastic-ip") {
      throw new Error(
        `${env.sourceFile}: vips.${elasticVips[0].name}.elasticIp: in an HA pair an Elastic IP follows the active node only with ha.vipMode elastic-ip (got ${ha?.vipMode}); the loader should have rejected this`,
      );
    }
    // A VIP with an Elastic IP makes its client-side subnet public (0.0.0.0/0 → internet gateway, so replies
    // leave from the Elastic IP). A server-side interface in that subnet (one-arm) would then have no egress:
    // its own address has no public IP and the subnet's default route cannot also point at the NAT gateway.
    const publicSubnets = elasticVips.length > 0 ? subnetsOfSide(env, "client").map((s) => s.key) : [];
    const serverSide = new Set(subnetsOfSide(env, "server").map((s) => s.key));
    if (!adopted && publicSubnets.some((key) => serverSide.has(key))) {
      throw new Error(
        `${env.sourceFile}: vips.${elasticVips[0].name}.elasticIp: in a created one-arm VPC an Elastic IP makes the load balancer's only subnet public, and the nodes' own address then has no way out (no NAT gateway for a public subnet), so they cannot install HAProxy at boot; use layout two-arm (the VIPs' external subnet public, eth0 behind the NAT gateway) or adopt a VPC (network.vpcId)`,
      );
    }
    const egress = egressPlan(env);
    this.network = new ImagingLbNetwork(this, "network", {
      environmentName: env.name,
      region: env.region,
      vpcId: env.network.vpcId,
      vpcCidr: env.network.vpcCidr,
      subnets: env.subnets,
      natSubnet: env.network.natSubnet,
      publicSubnetKeys: publicSubnets,
      endpointSubnetKeys: subnetsOfSide(env, "server").map((s) => s.key),
      interfaceEndpoints: props.interfaceEndpoints ?? (egress.createsEndpoints ? egress.interfaceEndpoints : undefined),
      s3PrefixList: egress.s3PrefixList,
    });

    this.instanceRole = new LoadBalancerInstanceRole(this, "instance-role", {
      environmentName: env.name,
      region: env.region,
      secretArns: [...env.certificates.map((c) => c.secretArn), env.admin.statsPasswordSecretArn],
      secretKmsKeyArns: [...env.certificates.map((c) => c.kmsKeyArn), env.admin.statsPasswordKmsKeyArn].filter((k): k is string => k !== undefined),
      cloudWatchLogGroup: env.admin.cloudWatchLogGroup,
      metricsNamespace: env.monitoring.enabled ? NODE_CONTRACT.metrics.namespace : undefined,
    });

    // Who may publish bundles and sign manifests: the principal running this deploy (its role, for an
    // assumed role's session) and the ones the environment file names.
    const deployer = new DataAwsIamSessionContext(this, "deployer", { arn: this.callerIdentity().arn });
    this.configStore = new ConfigStore(this, "config-store", {
      environmentName: env.name,
      region: env.region,
      prefix: env.configStore.prefix,
      accountId: this.accountId(),
      adoptedBucket: env.configStore.bucket,
      kmsKeyArn: env.configStore.kmsKeyArn,
      bundles: env.nodes.map((n) => nodeBundle(env, n.name)),
      writerArns: [deployer.issuerArn, ...env.configStore.writerArns],
      nodeRoleArn: this.instanceRole.role.arn,
    });
    const storePolicy = this.instanceRole.grantConfigStore(
      configStoreStatements({
        bucketArn: this.configStore.bucketArn,
        prefix: env.configStore.prefix,
        region: env.region,
        environmentName: env.name,
        nodes: env.nodes,
        signingKeyArn: this.configStore.signingKey.arn,
        kmsKeyArn: env.configStore.kmsKeyArn,
      }),
    );
    // A bundle naming a new secret, or signed with a new key, is published only after the role may use it.
    this.configStore.publishAfter([
      ...(this.instanceRole.secretsPolicy ? [this.instanceRole.secretsPolicy] : []),
      ...(this.instanceRole.metricsPolicy ? [this.instanceRole.metricsPolicy] : []),
      storePolicy,
    ]);

    // nlb mode: the VIPs' NLBs before the nodes, whose security groups accept the services from theirs.
    const nlbs = ha?.vipMode === "nlb" ? new ImagingLbNetworkLoadBalancers(this, "nlb", { environment: env, network: this.network }) : undefined;
    this.networkLoadBalancers = nlbs;
    // loadBalancer.imageBuild: the pipeline that bakes this environment's image (built when run, never by an apply).
    if (env.loadBalancer.imageBuild) {
      this.imageBuilder = new ImagingLbImageBuilder(this, "image-builder", { environment: env });
      new TerraformOutput(this, "image_pipeline_arn", {
        description: "The EC2 Image Builder pipeline that bakes this environment's image: run it, then pin the AMI it built (docs/baked-image.md)",
        value: this.imageBuilder.pipeline.arn,
      });
    }
    const imageId = env.loadBalancer.amiId ?? amiParameter(this, "ami", env).insecureValue;
    const nodes: Record<string, LoadBalancerNode> = {};
    for (const node of env.nodes) {
      nodes[node.name] = new LoadBalancerNode(this, `node-${node.name}`, {
        environment: env,
        nodeName: node.name,
        network: this.network,
        instanceProfileName: this.instanceRole.instanceProfile.name,
        imageId,
        configStore: { bucket: this.configStore.bucketName, prefix: env.configStore.prefix },
        packageEgressCidrs: props.packageEgressCidrs,
        userDataReplaceOnChange: props.userDataReplaceOnChange,
        securityGroupReferences: nlbs?.groupIds,
      });
    }
    this.nodes = nodes;
    nlbs?.attach(nodes);
    const primary = nodes[env.nodes[0].name];

    // Elastic IPs. Single node: Terraform associates each with the VIP's private address on the client ENI
    // (a new allocation, or the adopted one). Pair (elastic-ip mode, adopted allocations only): no
    // association in Terraform at all: keepalived's takeover script associates them on the active node,
    // and a Terraform-managed association would be re-created on the old node after every failover.
    const partition = partitionOf(env.region);
    const elasticIps: Record<string, Eip> = {};
    const elasticIpAssociations: Record<string, EipAssociation> = {};
    const elasticIpArns: string[] = [];
    for (const vip of elasticVips) {
      if (vip.elasticIpAllocationId) {
        elasticIpArns.push(`arn:${partition}:ec2:${env.region}:${this.accountId()}:elastic-ip/${vip.elasticIpAllocationId}`);
        if (!pair) {
          elasticIpAssociations[vip.name] = new EipAssociation(this, `eip-association-${vip.name}`, {
            allocationId: vip.elasticIpAllocationId,
            networkInterfaceId: primary.clientInterface.id,
            privateIpAddress: vip.address,
            dependsOn: this.network.internetGateway ? [this.network.internetGateway] : undefined,
          });
        }
      } else {
        const eip = new Eip(this, `eip-${vip.name}`, {
          domain: "vpc",
          networkInterface: pair ? undefined : primary.clientInterface.id,
          associateWithPrivateIp: pair ? undefined : vip.address,
          tags: { Name: `${env.name}-${vip.name}` },
          dependsOn: this.network.internetGateway ? [this.network.internetGateway] : undefined,
        });
        elasticIps[vip.name] = eip;
        elasticIpArns.push(eip.arn);
      }
    }
    this.elasticIps = elasticIps;
    this.elasticIpAssociations = elasticIpAssociations;

    // route-table mode: <vip>/32 → the primary's client ENI in each listed route table; the takeover script
    // replaces the target on failover, so Terraform ignores it afterwards.
    const vipRoutes: Record<string, Route> = {};
    const routeTableIds = ha?.vipMode === "route-table" && pair ? (ha.routeTableIds ?? []) : [];
    for (const rtb of routeTableIds) {
      for (const vip of env.vips) {
        vipRoutes[`${rtb}/${vip.name}`] = new Route(this, `vip-route-${rtb}-${vip.name}`, {
          routeTableId: rtb,
          destinationCidrBlock: `${vip.address}/32`,
          networkInterfaceId: primary.clientInterface.id,
          lifecycle: { ignoreChanges: ["network_interface_id"] },
        });
      }
    }
    this.vipRoutes = vipRoutes;

    if (pair && ha && ha.vipMode !== "nlb") {
      this.instanceRole.grantVipFailover({
        vipMode: ha.vipMode,
        networkInterfaceArns: env.nodes.map((n) => nodes[n.name].clientInterface.arn),
        elasticIpArns,
        routeTableArns: routeTableIds.map((rtb) => `arn:${partition}:ec2:${env.region}:${this.accountId()}:route-table/${rtb}`),
      });
    }

    if (env.admin.cloudWatchLogGroup !== undefined) {
      this.logGroup = new CloudwatchLogGroup(this, "haproxy-logs", { name: env.admin.cloudWatchLogGroup, tags: { Name: `${env.name}-haproxy` } });
    }
    // No first-deploy race: each instance boots only once its egress, endpoints and permissions exist
    // (and the log group its agent ships to).
    const bootNeeds = [...bootDependencies(this.network), ...bootDependencies(this.instanceRole), ...(this.logGroup ? [this.logGroup] : [])];
    for (const node of Object.values(nodes)) node.bootAfter(bootNeeds);
    // The first boot applies the node's bundle: it must be in the store (the role's policies are above).
    for (const node of env.nodes) nodes[node.name].bootAfter([this.configStore.manifests[node.name]]);

    this.monitoring = new ImagingLbMonitoring(this, "monitoring", {
      environment: env,
      accountId: this.accountId(),
      instanceIds: Object.fromEntries(env.nodes.map((n) => [n.name, nodes[n.name].instance.id])),
    });

    new TerraformOutput(this, "vip_addresses", {
      description: "VIP addresses by VIP name",
      value: Object.fromEntries(env.vips.map((v) => [v.name, v.address])),
    });
    new TerraformOutput(this, "instance_ids", {
      description: "EC2 instance id by node",
      value: Object.fromEntries(env.nodes.map((n) => [n.name, nodes[n.name].instance.id])),
    });
    new TerraformOutput(this, "eni_ids", {
      description: "ENI id by node and interface (eth0 internal, eth1 external)",
      value: Object.fromEntries(
        env.nodes.map((n) => [n.name, Object.fromEntries(Object.entries(nodes[n.name].interfaces).map(([name, eni]) => [name, eni.id]))]),
      ),
    });
    new TerraformOutput(this, "config_bucket", {
      description: "S3 bucket of the configuration bundles and node status (imaging-lb status reads it)",
      value: this.configStore.bucketName,
    });
    new TerraformOutput(this, "image_ids", {
      description: "AMI id each node runs; pin it with loadBalancer.amiId to make image changes explicit",
      value: Object.fromEntries(env.nodes.map((n) => [n.name, nodes[n.name].instance.ami])),
    });
    new TerraformOutput(this, "stats_urls", {
      description: "HAProxy stats page by node (admin networks only, authenticated; Prometheus at /metrics)",
      value: Object.fromEntries(env.nodes.map((n) => [n.name, statsUrl(env, n.internalAddress)])),
    });
    if (nlbs) {
      new TerraformOutput(this, "nlb_addresses", {
        description: "The fixed private address of each VIP's Network Load Balancer, by VIP and node (availability zone)",
        value: Object.fromEntries(env.vips.map((v) => [v.name, Object.fromEntries((v.nlb ?? []).map((z) => [z.node, z.address]))])),
      });
      new TerraformOutput(this, "nlb_dns_names", {
        description: "The DNS name of each VIP's Network Load Balancer: it answers with the zones that have a healthy node",
        value: Object.fromEntries(env.vips.map((v) => [v.name, nlbs.loadBalancers[v.name].dnsName])),
      });
      new TerraformOutput(this, "nlb_target_groups", {
        description: "Target group ARN of each VIP's port (aws elbv2 describe-target-health --target-group-arn ...)",
        value: Object.fromEntries(env.vips.map((v) => [v.name, Object.fromEntries(Object.entries(nlbs.targetGroups).filter(([k]) => k.startsWith(`${v.name}/`)).map(([k, g]) => [k.split("/")[1], g.arn]))])),
      });
    }
    if (this.monitoring.topicArn !== undefined) {
      new TerraformOutput(this, "alarm_topic_arn", {
        description: "SNS topic every alarm and its return to OK is published to (subscribe more receivers here)",
        value: this.monitoring.topicArn,
      });
    }
    if (this.monitoring.dashboard) {
      new TerraformOutput(this, "dashboard_name", { description: "CloudWatch dashboard of the environment", value: this.monitoring.dashboard.dashboardName });
    }
    if (this.network.natElasticIp) {
      new TerraformOutput(this, "nat_public_ip", {
        description: "Public address of the NAT gateway: the nodes' source address towards the internet (package mirrors); allow-list it where outbound traffic is filtered",
        value: this.network.natElasticIp.publicIp,
      });
    }
    if (elasticVips.length > 0) {
      new TerraformOutput(this, "elastic_ips", {
        description: "Elastic IP of each internet-facing VIP: public address (allocated here) or allocation id (adopted)",
        value: Object.fromEntries(elasticVips.map((v) => [v.name, elasticIps[v.name]?.publicIp ?? v.elasticIpAllocationId])),
      });
    }
  }

  private accountId(): string {
    return this.callerIdentity().accountId;
  }

  private callerIdentity(): DataAwsCallerIdentity {
    this.caller ??= new DataAwsCallerIdentity(this, "account");
    return this.caller;
  }
}

/** The stats page URL of a node (its eth0 address). */
export function statsUrl(env: ResolvedEnvironment, internalAddress: string): string {
  return `http://${internalAddress}:${env.admin.statsPort}/`;
}
