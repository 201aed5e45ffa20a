/**
 * A node's way out, besides its real servers: the OS's package mirror (a stock image installs HAProxy and
 * its tools at first boot) and the AWS APIs (S3 for the bundles, Secrets Manager, KMS, EC2 for the
 * takeover, SSM for sessions, CloudWatch). Pure: the network construct creates what this names, the
 * security rules open only these ports, and `validate` prints it, so a site reads what its nodes need.
 */
import { ResolvedEnvironment } from "../config/model";

/**
 * - `nat`: a created VPC with a NAT gateway and an internet gateway (network.natSubnet);
 * - `adopted`: an adopted VPC with a stock image: the VPC's own way out (NAT, proxy), which the stack cannot see;
 * - `none`: a baked image without network.natSubnet: no path to the internet; the AWS APIs through VPC
 *   endpoints only.
 */
export type InternetPath = "nat" | "adopted" | "none";

/** Interface endpoints of a created VPC, whichever the image (created before baked images existed). */
export const BASE_INTERFACE_ENDPOINTS: readonly string[] = ["ec2", "ec2messages", "kms", "secretsmanager", "ssm", "ssmmessages"];

/** What {@link egressPlan} decides for an environment. */
export interface EgressPlan {
  readonly internet: InternetPath;
  /** TCP 80 and 443 to these: package mirrors and AWS APIs (empty without an internet path). */
  readonly internetCidrs: readonly string[];
  /** TCP 443 only to these: the interface endpoints (without an internet path). */
  readonly apiCidrs: readonly string[];
  /** TCP 443 to S3's managed prefix list (its gateway endpoint), without an internet path. */
  readonly s3PrefixList: boolean;
  /**
   * The AWS services the nodes call, by endpoint name (`com.amazonaws.<region>.<name>`): the interface
   * endpoints a created VPC gets; an adopted VPC's owner provides them (one private-DNS endpoint per service
   * and VPC is allowed, and hospital VPCs usually have them).
   */
  readonly interfaceEndpoints: readonly string[];
  /** Whether this stack creates the interface endpoints (a created VPC) or needs them (adopted). */
  readonly createsEndpoints: boolean;
}

/** The AWS services the nodes call, as interface endpoint names (S3 apart: a gateway endpoint). */
export function nodeInterfaceEndpoints(env: ResolvedEnvironment): string[] {
  return [...BASE_INTERFACE_ENDPOINTS, ...(env.admin.cloudWatchLogGroup ? ["logs"] : []), ...(env.monitoring.enabled ? ["monitoring"] : [])].sort();
}

/** The nodes' way out, from the image and the network (see {@link InternetPath}). */
export function egressPlan(env: ResolvedEnvironment): EgressPlan {
  const net = env.network;
  const adopted = net.vpcId !== undefined;
  const interfaceEndpoints = nodeInterfaceEndpoints(env);
  const closed = env.loadBalancer.image === "baked" && net.natSubnet === undefined;
  if (!closed) {
    return { internet: adopted ? "adopted" : "nat", internetCidrs: ["0.0.0.0/0"], apiCidrs: [], s3PrefixList: false, interfaceEndpoints, createsEndpoints: !adopted };
  }
  const apiCidrs = net.awsApiCidrs ?? (net.vpcCidr !== undefined ? [net.vpcCidr] : []);
  return { internet: "none", internetCidrs: [], apiCidrs, s3PrefixList: true, interfaceEndpoints, createsEndpoints: !adopted };
}

/**
 * What the site must give the nodes that this stack does not create, one line each (`validate` prints them
 * under the file's line): nothing for a created VPC, which gets its NAT gateway or its endpoints here.
 */
export function egressNeeds(env: ResolvedEnvironment): string[] {
  const plan = egressPlan(env);
  if (plan.createsEndpoints) return [];
  const apis = `interface endpoints with private DNS for ${plan.interfaceEndpoints.join(", ")}`;
  if (plan.internet === "none") {
    return [`needs (baked image, no internet path): ${apis} in ${plan.apiCidrs.join(", ")}, and an S3 gateway endpoint on the nodes' route tables`];
  }
  return [
    "needs (stock image): a route from the nodes' eth0 subnet to the OS's package mirror (NAT gateway or proxy): each node installs HAProxy and its tools at first boot; or bake an image (loadBalancer.image baked)",
    `needs: a route to the AWS APIs, or ${apis}, and S3`,
  ];
}

/** The nodes' way out in a few words, for `validate --strict`'s notes. */
export function egressSummary(env: ResolvedEnvironment): string {
  const plan = egressPlan(env);
  const apis = `AWS APIs through ${plan.createsEndpoints ? "this stack's" : "the VPC's"} endpoints (${[...plan.interfaceEndpoints, "s3"].sort().join(", ")})`;
  if (plan.internet === "none") return `internet: none (baked image ${env.loadBalancer.amiId}): no NAT or internet gateway for the nodes, no 0.0.0.0/0 egress; ${apis}`;
  const install = env.loadBalancer.image === "baked" ? "installs nothing (baked image)" : "installs HAProxy and its tools from the OS's package mirror at first boot";
  if (plan.internet === "nat") return `internet: the NAT gateway in ${env.network.natSubnet?.cidr}: each node ${install}; ${apis}`;
  return `internet: the adopted VPC's own: each node ${install}`;
}
