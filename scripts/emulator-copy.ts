/* eslint-disable @typescript-eslint/no-explicit-any -- synthesized Terraform JSON is untyped here */
/**
 * A synthesized stack made to run against moto, the AWS API emulator: the provider pointed at the
 * emulator, and each of moto's known gaps worked around — every change listed, with what it leaves
 * unproven on AWS. The apply suite (test/terraform-apply) applies its stacks through {@link emulatorCopy};
 * docs/try-with-an-emulator.md runs the same function from the command line:
 *
 *   node dist/scripts/emulator-copy.js cdktf.out/stacks/<name>/cdk.tf.json --endpoint http://127.0.0.1:5000 \
 *     --out try-moto/main.tf.json [--provider-version 5.100.0]
 *
 * It writes the copy, and prints each change on its own line.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";

/** moto as the apply suite starts it: the command (then the port) and the one setting it needs. */
export const MOTO_COMMAND = ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p"] as const;
/**
 * EMULATOR SETTING: moto loads AWS managed policies only when asked; without them
 * `AmazonSSMManagedInstanceCore` does not exist and the role's attachment fails with NoSuchEntity.
 */
export const MOTO_ENVIRONMENT = { MOTO_IAM_LOAD_MANAGED_POLICIES: "true" } as const;

/** The public SSM parameter of the Ubuntu 24.04 AMI (lib/constructs/load-balancer-node.ts reads it). */
export const UBUNTU_AMI_PARAMETER = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id";
/** EMULATOR: moto has no parameter under /aws/ and refuses to create one; the stacks read this stand-in. */
export const UBUNTU_AMI_STAND_IN = "/imaging-lb-emulator/ubuntu-24.04/ami-id";
/** The SSM parameter renames every emulator copy gets. */
export const EMULATOR_SSM_RENAMES: Readonly<Record<string, string>> = { [UBUNTU_AMI_PARAMETER]: UBUNTU_AMI_STAND_IN };

/** The services the stacks call, all pointed at moto. */
export const MOTO_SERVICES = ["ec2", "elbv2", "iam", "s3", "ssm", "secretsmanager", "sts", "kms", "logs", "cloudwatch", "sns"];

/** Options of {@link emulatorCopy}. */
export interface EmulatorCopyOptions {
  /** moto's endpoint. */
  readonly endpoint: string;
  /** The provider version to pin (the mirror's), or undefined to keep the stack's. */
  readonly providerVersion?: string;
  /** SSM parameter names the emulator cannot hold, renamed to seeded ones: original → seeded name. */
  readonly ssmParameterRenames?: Readonly<Record<string, string>>;
  /**
   * An image moto holds, run in place of an image the stack pins (loadBalancer.amiId): the AWS provider
   * reads the pinned image before it creates an instance, and moto has no image of a chosen id.
   */
  readonly pinnedAmiStandIn?: string;
}

/** A synthesized stack changed to run against moto, with every change and its reason. */
export interface EmulatorCopy {
  readonly json: Record<string, any>;
  /** One line per change: what was changed and why (printed by the test). */
  readonly deviations: readonly string[];
}

/**
 * The emulator copy of a synthesized stack (`cdk.tf.json`). Nothing else is changed than what is listed
 * in the returned deviations.
 */
export function emulatorCopy(synthesized: Record<string, any>, options: EmulatorCopyOptions): EmulatorCopy {
  const json = structuredClone(synthesized);
  const deviations: string[] = [];
  const terraform = json.terraform ?? {};
  if (terraform.backend) {
    deviations.push(`SETUP backend: the ${Object.keys(terraform.backend).join(", ")} backend is removed and state kept locally (the environment's state bucket is not part of the emulated account)`);
    delete terraform.backend;
  }
  const aws = terraform.required_providers?.aws;
  if (options.providerVersion && aws && aws.version !== options.providerVersion) {
    deviations.push(`SETUP provider version: aws ${aws.version} pinned by the stack replaced by ${options.providerVersion}, the version in the filesystem mirror`);
    aws.version = options.providerVersion;
    aws.source = "hashicorp/aws";
  }
  const providers = json.provider?.aws ?? [];
  for (const provider of providers) {
    Object.assign(provider, {
      access_key: "testing",
      secret_key: "testing",
      skip_credentials_validation: true,
      skip_metadata_api_check: true,
      skip_region_validation: true,
      endpoints: [Object.fromEntries(MOTO_SERVICES.map((s) => [s, options.endpoint]))],
    });
  }
  deviations.push(`SETUP provider: endpoints of ${MOTO_SERVICES.join(", ")} pointed at moto (${options.endpoint}), static test credentials`);

  const providerMajor = Number((aws?.version ?? "6").split(".")[0]);
  const instances = Object.values(json.resource?.aws_instance ?? {}) as Array<Record<string, any>>;
  if (providerMajor < 6) {
    let rewritten = 0;
    for (const instance of instances) {
      const primary = instance.primary_network_interface;
      if (!primary) continue;
      delete instance.primary_network_interface;
      instance.network_interface = [{ device_index: 0, network_interface_id: primary.network_interface_id }];
      rewritten++;
    }
    if (rewritten > 0) {
      deviations.push(
        `PROVIDER 5.x: primary_network_interface (provider 6) rewritten to network_interface { device_index = 0 } on ${rewritten} instance(s); unproven here: provider 6's own handling of primary_network_interface`,
      );
    }
  }

  let vrrpRules = 0;
  for (const type of ["aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"]) {
    for (const rule of Object.values(json.resource?.[type] ?? {}) as Array<Record<string, any>>) {
      if (rule.ip_protocol === "112" && rule.from_port === undefined) {
        rule.from_port = -1;
        rule.to_port = -1;
        vrrpRules++;
      }
    }
  }
  if (vrrpRules > 0) {
    deviations.push(
      `EMULATOR moto answers HTTP 500 to a port-less rule of IP protocol 112 (it int()s the missing port): from_port/to_port -1 added to ${vrrpRules} VRRP rule(s); unproven here: AWS accepting the port-less protocol-112 rules as synthesized`,
    );
  }

  // moto keeps a rule's description only for CIDR rules: one that references a security group reads back none.
  let referencing = 0;
  for (const type of ["aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"]) {
    for (const rule of Object.values(json.resource?.[type] ?? {}) as Array<Record<string, any>>) {
      if (rule.referenced_security_group_id === undefined || rule.description === undefined) continue;
      rule.lifecycle = { ...rule.lifecycle, ignore_changes: [...(rule.lifecycle?.ignore_changes ?? []), "description"] };
      referencing++;
    }
  }
  if (referencing > 0) {
    deviations.push(
      `EMULATOR moto reads back no description on a security group rule that references a group (it keeps CIDR rules' only), so the second plan would set it again: ignore_changes on description of ${referencing} such rule(s); unproven here: that AWS keeps those descriptions`,
    );
  }

  // moto's DescribeLoadBalancers answers each zone with its subnet only (no LoadBalancerAddresses), so an
  // NLB's fixed private IPv4 per subnet mapping reads back empty.
  const fixedAddresses = (Object.values(json.resource?.aws_lb ?? {}) as Array<Record<string, any>>).filter(
    (lb) => Array.isArray(lb.subnet_mapping) && lb.subnet_mapping.some((m: Record<string, any>) => m.private_ipv4_address !== undefined),
  );
  for (const lb of fixedAddresses) lb.lifecycle = { ...lb.lifecycle, ignore_changes: [...(lb.lifecycle?.ignore_changes ?? []), "subnet_mapping"] };
  if (fixedAddresses.length > 0) {
    deviations.push(
      `EMULATOR moto's DescribeLoadBalancers reports no LoadBalancerAddresses, so a subnet mapping's private_ipv4_address reads back empty and the second plan would change it: ignore_changes on subnet_mapping of ${fixedAddresses.length} aws_lb(s); unproven here: that the NLB takes the fixed private IPv4 in each subnet`,
    );
  }

  const associations = Object.values(json.resource?.aws_eip_association ?? {}) as Array<Record<string, any>>;
  const toVip = associations.filter((a) => a.private_ip_address !== undefined);
  for (const association of toVip) {
    association.lifecycle = { ...association.lifecycle, ignore_changes: [...(association.lifecycle?.ignore_changes ?? []), "private_ip_address"] };
  }
  if (toVip.length > 0) {
    deviations.push(
      `EMULATOR moto's AssociateAddress ignores PrivateIpAddress and reports the ENI's primary IP, so the second plan would replace the association: ignore_changes on private_ip_address of ${toVip.length} aws_eip_association(s); unproven here: that the Elastic IP maps to the VIP's private address`,
    );
  }

  // moto answers 403 to every request once a bucket has a Deny statement for Principal "*", whatever its
  // condition (seen with the TLS-only policy, also with a condition that cannot match).
  const tlsOnly = Object.entries(json.resource?.aws_s3_bucket_policy ?? {}).filter(([, p]) => String((p as Record<string, any>).policy).includes("aws:SecureTransport"));
  for (const [id] of tlsOnly) delete json.resource.aws_s3_bucket_policy[id];
  if (tlsOnly.length > 0) {
    if (Object.keys(json.resource.aws_s3_bucket_policy).length === 0) delete json.resource.aws_s3_bucket_policy;
    // What waited for the policy (the bundle objects: published only once it holds) no longer names it.
    const gone = new Set(tlsOnly.map(([id]) => `aws_s3_bucket_policy.${id}`));
    for (const resources of Object.values(json.resource ?? {}) as Array<Record<string, Record<string, any>>>) {
      for (const resource of Object.values(resources)) {
        if (Array.isArray(resource.depends_on)) resource.depends_on = resource.depends_on.filter((d: string) => !gone.has(d));
      }
    }
    deviations.push(
      `EMULATOR moto refuses every request to a bucket with a Deny for Principal "*", whatever its condition: the config bucket's policy (TLS only, only the deployers publish, only the nodes report) is left out on ${tlsOnly.length} bucket(s); unproven here: that policy on AWS (its text is asserted by the synth tests)`,
    );
  }

  let prefixListRules = 0;
  for (const type of ["aws_vpc_security_group_egress_rule", "aws_vpc_security_group_ingress_rule"]) {
    for (const rule of Object.values(json.resource?.[type] ?? {}) as Array<Record<string, any>>) {
      if (rule.prefix_list_id !== undefined && rule.description !== undefined) {
        delete rule.description;
        prefixListRules++;
      }
    }
  }
  if (prefixListRules > 0) {
    deviations.push(
      `EMULATOR moto keeps no description on a rule whose peer is a prefix list (the next plan would set it again): left out on ${prefixListRules} rule(s); unproven here: those descriptions on AWS (the synth tests assert them)`,
    );
  }
  const pinned = new Set<string>();
  for (const instance of Object.values(json.resource?.aws_instance ?? {}) as Array<Record<string, any>>) {
    if (options.pinnedAmiStandIn !== undefined && typeof instance.ami === "string" && /^ami-[0-9a-f]+$/.test(instance.ami)) {
      pinned.add(instance.ami);
      instance.ami = options.pinnedAmiStandIn;
    }
  }
  for (const ami of pinned) {
    deviations.push(
      `EMULATOR the pinned image ${ami} (loadBalancer.amiId) is replaced by ${options.pinnedAmiStandIn}, an image moto holds: the AWS provider reads an instance's image before it creates it, and moto cannot hold an image of a chosen id; unproven here: that the pinned image exists in the account and region`,
    );
  }
  for (const [original, seeded] of Object.entries(options.ssmParameterRenames ?? {})) {
    for (const data of Object.values(json.data?.aws_ssm_parameter ?? {}) as Array<Record<string, any>>) {
      if (data.name === original) {
        data.name = seeded;
        deviations.push(
          `EMULATOR moto lacks the public SSM parameter ${original} and refuses to create names under /aws/: read from ${seeded}, seeded with an Ubuntu AMI moto knows; unproven here: the parameter's existence and value on AWS`,
        );
      }
    }
  }
  return { json, deviations };
}

/** The command line: `<cdk.tf.json> --endpoint <url> --out <file> [--provider-version <version>] [--ami <id>]`. */
function main(argv: readonly string[]): number {
  const usage = "usage: node dist/scripts/emulator-copy.js <cdk.tf.json> --endpoint <moto url> --out <main.tf.json> [--provider-version <version>] [--ami <an image moto holds, for a pinned amiId>]";
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, options: { endpoint: { type: "string" }, out: { type: "string" }, "provider-version": { type: "string" }, ami: { type: "string" } } });
  } catch (e) {
    process.stderr.write(`emulator-copy: ${(e as Error).message}\n${usage}\n`);
    return 2;
  }
  const { positionals, values } = parsed;
  if (positionals.length !== 1 || !values.endpoint || !values.out) {
    process.stderr.write(`emulator-copy: expected one synthesized stack (cdk.tf.json), --endpoint and --out\n${usage}\n`);
    return 2;
  }
  const copy = emulatorCopy(JSON.parse(readFileSync(positionals[0], "utf8")) as Record<string, any>, {
    endpoint: values.endpoint,
    providerVersion: values["provider-version"],
    ssmParameterRenames: EMULATOR_SSM_RENAMES,
    pinnedAmiStandIn: values.ami,
  });
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify(copy.json, null, 1)}\n`);
  process.stdout.write(`wrote ${values.out}: ${positionals[0]} for moto at ${values.endpoint}\n${copy.deviations.map((d) => `  ${d}\n`).join("")}`);
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
