/* eslint-disable @typescript-eslint/no-explicit-any -- synthesized Terraform JSON, YAML documents and AWS CLI output are untyped here */
/**
 * The real Terraform CLI and the real AWS provider for the apply suite: provider installation from a
 * filesystem mirror when one is present (else the registry, as `terraform init` does everywhere), a shared
 * plugin cache, and the emulator copy of a synthesized stack — every change made to that copy is listed
 * in {@link EmulatorCopy.deviations} with its reason, and the test prints them.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { requireTool } from "../helpers/tools";

const execFileAsync = promisify(execFile);

/** Where a Terraform provider mirror is looked for (the folder holding `registry.terraform.io`). */
export const MIRROR_CANDIDATES = [
  process.env.IMAGING_LB_TF_MIRROR,
  "/opt/tf-plugins",
  "/usr/local/share/terraform/plugins",
  "/usr/share/terraform/plugins",
  join(process.env.HOME ?? "/root", ".terraform.d", "plugins"),
].filter((p): p is string => Boolean(p));

/** How the AWS provider is installed for this run. */
export interface ProviderSource {
  /** The mirror root, or undefined for the registry. */
  readonly mirror?: string;
  /** The provider version pinned in the copies (the mirror's; the stack's own pin for the registry). */
  readonly version?: string;
  /** The CLI configuration file (TF_CLI_CONFIG_FILE). */
  readonly cliConfigFile: string;
}

/** Finds the AWS provider mirror (highest version) and writes the CLI configuration. */
export function providerSource(workRoot: string): ProviderSource {
  requireTool("terraform", "terraform (HashiCorp's apt repository, or the release zip)");
  const pluginCache = join(tmpdir(), "imaging-lb-terraform-plugin-cache");
  mkdirSync(pluginCache, { recursive: true });
  let mirror: string | undefined;
  let version: string | undefined;
  for (const root of MIRROR_CANDIDATES) {
    const dir = join(root, "registry.terraform.io", "hashicorp", "aws");
    if (!existsSync(dir)) continue;
    const versions = readdirSync(dir)
      .filter((v) => /^\d+\.\d+\.\d+$/.test(v) && existsSync(join(dir, v, "linux_amd64")))
      .sort((a, b) => compareVersions(b, a));
    if (versions.length > 0) {
      mirror = root;
      version = versions[0];
      break;
    }
  }
  const lines = [`plugin_cache_dir = "${pluginCache}"`];
  if (mirror) {
    lines.push("provider_installation {", `  filesystem_mirror {`, `    path    = "${mirror}"`, `    include = ["registry.terraform.io/hashicorp/aws"]`, "  }", "  direct {", `    exclude = ["registry.terraform.io/hashicorp/aws"]`, "  }", "}");
  }
  const cliConfigFile = join(workRoot, "terraform.rc");
  writeFileSync(cliConfigFile, `${lines.join("\n")}\n`);
  return { mirror, version, cliConfigFile };
}

/** Compares dotted versions numerically. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The services the stacks call, all pointed at moto. */
const MOTO_SERVICES = ["ec2", "iam", "s3", "ssm", "secretsmanager", "sts", "kms", "logs"];

/** Options of {@link emulatorCopy}. */
export interface EmulatorCopyOptions {
  /** moto's endpoint. */
  readonly endpoint: string;
  /** The provider version to pin (the mirror's), or undefined to keep the stack's. */
  readonly providerVersion?: string;
  /** SSM parameter names the emulator cannot hold, renamed to seeded ones: original → seeded name. */
  readonly ssmParameterRenames?: Readonly<Record<string, string>>;
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
    deviations.push(
      `EMULATOR moto refuses every request to a bucket with a Deny for Principal "*", whatever its condition: the config bucket's TLS-only policy is left out on ${tlsOnly.length} bucket(s); unproven here: that policy on AWS (its text is asserted by the synth tests)`,
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

/** Result of one Terraform command. */
export interface TerraformRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `terraform <args>` in `dir`; never throws for a non-zero exit (the caller asserts). */
export async function terraform(dir: string, args: readonly string[], source: ProviderSource, env: NodeJS.ProcessEnv = {}): Promise<TerraformRun> {
  try {
    const { stdout, stderr } = await execFileAsync("terraform", [...args], {
      cwd: dir,
      env: {
        ...process.env,
        ...env,
        TF_CLI_CONFIG_FILE: source.cliConfigFile,
        TF_IN_AUTOMATION: "1",
        TF_INPUT: "0",
        CHECKPOINT_DISABLE: "1",
      },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: err.stderr ?? err.message };
  }
}
