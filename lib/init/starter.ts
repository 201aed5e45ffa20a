/**
 * Starter environment files for `imaging-lb init`: every field present is explained in a comment,
 * every value is a valid placeholder (the file validates as written) and every value a site must
 * change is marked `# CHANGE ME`. Pure text rendering; the same options always give the same bytes.
 */

/** Layouts a starter can be written for. */
export type StarterLayout = "one-arm" | "two-arm";
/** Service catalogs a starter can start from. */
export type StarterPreset = "agfa-ei";

/** Options of {@link renderStarter}. */
export interface StarterOptions {
  /** one-arm (a single interface) or two-arm (eth0 internal, eth1 external). */
  readonly layout: StarterLayout;
  /** Two nodes (an HA pair with keepalived) instead of one. */
  readonly pair: boolean;
  /**
   * Two nodes in two availability zones, both active behind an internal Network Load Balancer per VIP
   * (ha.vipMode nlb) instead of keepalived; implies `pair`.
   * @default false
   */
  readonly nlb?: boolean;
  /**
   * With `nlb`: the nodes, one per availability zone (a third node in eu-west-1c's placeholder subnets).
   * @default 2
   */
  readonly zones?: 2 | 3;
  /** The service catalog. */
  readonly preset: StarterPreset;
  /**
   * The environment name (the Terraform stack name).
   * @default "st-example"
   */
  readonly name?: string;
  /**
   * The JSON Schema path or URL in the `yaml-language-server` modeline, relative to the file.
   * @default "../schema/environment.schema.json"
   */
  readonly schemaPath?: string;
}

/** The default environment name of a starter. */
export const STARTER_NAME = "st-example";
/** The default modeline schema path: a file in a folder next to `schema/` (like `examples/`). */
export const STARTER_SCHEMA_PATH = "../schema/environment.schema.json";
/** The marker on every placeholder a site must replace. */
export const CHANGE_ME = "# CHANGE ME";

const NAME_RE = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$/;

/** Pads `code` so the comments of a block line up. */
const at = (code: string, comment: string, column = 36) => `${code.padEnd(column - 1)} ${comment}`;

/**
 * Renders a commented starter environment file.
 *
 * @example
 * writeFileSync("sites/st-mary.yaml", renderStarter({ layout: "two-arm", pair: true, preset: "agfa-ei", name: "st-mary" }));
 */
export function renderStarter(options: StarterOptions): string {
  const name = options.name ?? STARTER_NAME;
  if (!NAME_RE.test(name)) {
    throw new Error(`starter name: expected 1-32 characters: lower-case letters, digits and '-', starting with a letter, got "${name}"`);
  }
  const schemaPath = options.schemaPath ?? STARTER_SCHEMA_PATH;
  const twoArm = options.layout === "two-arm";
  const nlb = options.nlb === true;
  const pair = options.pair || nlb;
  const three = nlb && options.zones === 3;
  const count = three ? "three" : "two";
  if (options.zones === 3 && !nlb) throw new Error("starter: three zones need nlb (ha.vipMode nlb); a keepalived pair has two nodes");
  const shape = nlb
    ? `${count} active Layer 7 SNAT load balancers in ${count} availability zones behind Network Load Balancers`
    : pair
      ? "an HA pair of Layer 7 SNAT load balancers"
      : "one Layer 7 SNAT load balancer";
  const secret = (what: string) => `"arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}/${what}-AbCdEf"`;
  // Placeholder addresses: 10.80.0.0/16, client side 10.80.2.0/24 in two-arm.
  const clientNet = twoArm ? "10.80.2" : "10.80.1";

  const lines: string[] = [
    `# yaml-language-server: $schema=${schemaPath}`,
    "#",
    "# imaging-lb environment: AGFA HealthCare Enterprise Imaging behind",
    `# ${shape}, ${options.layout}.`,
    `# Written by: imaging-lb init --layout ${options.layout}${nlb ? ` --nlb${three ? " --zones 3" : ""}` : pair ? " --pair" : ""} --preset ${options.preset}`,
    "#",
    "# Every value is a valid placeholder: the file validates as written. Replace each value marked",
    "# `# CHANGE ME` with your site's, then check the file (every problem is listed with file:line:col):",
    "#   npx imaging-lb validate <this file>",
    "# Every field: `npx imaging-lb schema` (JSON Schema) or imaging-lb's docs/environment-reference.md.",
    "# The preset's services in full, with your changes: npx imaging-lb expand <this file>",
    "",
    "# Environment name: the Terraform stack name and the prefix of the AWS resource names",
    "# (1-32 characters: lower-case letters, digits and '-', starting with a letter).",
    at(`name: ${name}`, CHANGE_ME),
    "# AWS region of the load balancers.",
    at("region: eu-west-1", CHANGE_ME),
    "# Service catalog: xero (XERO web viewer, 443 with 80 redirected), core (core server client ports",
    "# 80, 443, 4447, 7443, 9080, 10124), dicom (104, 110) and hl7 (2310, 2311). `services` below overrides it.",
    `preset: ${options.preset}`,
    "",
    "network:",
  ];
  if (twoArm) {
    lines.push(
      "  # two-arm: eth0 internal (server side), eth1 external (client side, carries the VIPs).",
      "  layout: two-arm",
    );
  } else {
    lines.push(
      "  # one-arm: a single interface (eth0) carries the VIPs and reaches the real servers.",
      "  layout: one-arm",
    );
  }
  lines.push(
    "  # CIDR of the VPC created for the load balancers. To adopt an existing VPC instead, set",
    "  # vpcId: vpc-... (keep vpcCidr for the checks), add a subnetId to every subnet below and",
    "  # remove natSubnet (an adopted VPC brings its own egress).",
    at("  vpcCidr: 10.80.0.0/16", CHANGE_ME),
  );
  if (twoArm) {
    lines.push(
      "  # Server-side subnet: eth0 of each node. Inside vpcCidr.",
      "  internal:",
      at("    cidr: 10.80.1.0/24", CHANGE_ME),
      at("    availabilityZone: eu-west-1a", CHANGE_ME),
      "  # Client-side subnet: eth1 of each node and the VIPs. Inside vpcCidr, not overlapping internal.",
      "  external:",
      at("    cidr: 10.80.2.0/24", CHANGE_ME),
      at("    availabilityZone: eu-west-1a", `${CHANGE_ME} (the same zone as internal)`),
    );
  } else {
    lines.push(
      "  # The load balancer's subnet: eth0 of each node and the VIPs. Inside vpcCidr.",
      "  subnet:",
      at("    cidr: 10.80.1.0/24", CHANGE_ME),
      at("    availabilityZone: eu-west-1a", CHANGE_ME),
    );
  }
  lines.push(
    "  # Public subnet of the NAT gateway created with the VPC: the nodes' way out to the package mirrors",
    "  # and AWS APIs at boot. Inside vpcCidr, not overlapping the other subnets. The stack's output",
    "  # nat_public_ip is the nodes' public source address (allow-list it where egress is filtered).",
    "  natSubnet:",
    at("    cidr: 10.80.0.0/24", CHANGE_ME),
    at("    availabilityZone: eu-west-1a", CHANGE_ME),
    "",
    "loadBalancer:",
    "  # EC2 instance type of each node.",
    "  instanceType: c6i.large",
    "  # Operating system: ubuntu-24.04 (HAProxy 2.8 LTS), debian-13 (HAProxy 3.0 LTS) or al2023.",
    "  os: ubuntu-24.04",
    "  # Encrypted gp3 root volume, GiB.",
    "  rootVolumeGiB: 20",
    pair
      ? `  # The ${count} nodes, keyed by hostname (also the HAProxy peer name); the first by name is the primary.`
      : "  # The node, keyed by hostname. Add a second node (and `ha`) for an HA pair.",
    "  nodes:",
  );
  const node = (nodeName: string, host: number) => {
    lines.push(`    ${nodeName}:`);
    lines.push(at(`      internalAddress: 10.80.1.${host}`, `${CHANGE_ME} (eth0, in the ${twoArm ? "internal" : "load balancer's"} subnet)`));
    if (twoArm) lines.push(at(`      externalAddress: 10.80.2.${host}`, `${CHANGE_ME} (eth1, in the external subnet)`));
  };
  node("lb-a", 10);
  if (nlb) {
    lines.push(
      "    # The second node in another availability zone, in subnets of its own (the NLBs span both zones).",
      "    lb-b:",
      at("      internalAddress: 10.80.11.10", `${CHANGE_ME} (eth0, in its internalSubnet)`),
      ...(twoArm ? [at("      externalAddress: 10.80.12.10", `${CHANGE_ME} (eth1, in its externalSubnet)`)] : []),
      "      internalSubnet:",
      at("        cidr: 10.80.11.0/24", CHANGE_ME),
      at("        availabilityZone: eu-west-1b", `${CHANGE_ME} (another zone than lb-a's)`),
      ...(twoArm
        ? ["      externalSubnet:", at("        cidr: 10.80.12.0/24", CHANGE_ME), at("        availabilityZone: eu-west-1b", `${CHANGE_ME} (the same zone as its internalSubnet)`)]
        : []),
      ...(three
        ? [
            "    # The third node in a third availability zone, in subnets of its own (the NLBs span all three).",
            "    lb-c:",
            at("      internalAddress: 10.80.21.10", `${CHANGE_ME} (eth0, in its internalSubnet)`),
            ...(twoArm ? [at("      externalAddress: 10.80.22.10", `${CHANGE_ME} (eth1, in its externalSubnet)`)] : []),
            "      internalSubnet:",
            at("        cidr: 10.80.21.0/24", CHANGE_ME),
            at("        availabilityZone: eu-west-1c", `${CHANGE_ME} (another zone than lb-a's and lb-b's)`),
            ...(twoArm
              ? ["      externalSubnet:", at("        cidr: 10.80.22.0/24", CHANGE_ME), at("        availabilityZone: eu-west-1c", `${CHANGE_ME} (the same zone as its internalSubnet)`)]
              : []),
          ]
        : []),
      `  # ${three ? "All three" : "Both"} nodes active behind an internal Network Load Balancer per VIP; no keepalived. The NLBs' health`,
      "  # checks ask HAProxy itself (never the servers); a node's loss costs its own connections only.",
      "  ha:",
      "    vipMode: nlb",
      "    nlb:",
      "      # Cross-zone load balancing: a zone's NLB address also reaches the other zone's node. Turn it on",
      "      # when clients use one zone's fixed address (modalities): it keeps them served while that zone's",
      "      # node is replaced or fails; it costs inter-AZ data transfer (about USD 0.01/GB each way).",
      "      crossZone: false",
      "      # Raising a node's generation first stops new connections to it and lets its own finish this long.",
      "      drainTime: 300s",
    );
  } else if (pair) {
    node("lb-b", 11);
    lines.push(
      "  # HA pair: keepalived (unicast VRRP, IP protocol 112 between the nodes) moves the VIPs to the healthy node.",
      "  ha:",
      "    # How a VIP moves: secondary-ip (reassigned in one subnet), elastic-ip (re-associated), or",
      "    # route-table (an overlay address outside the VPC CIDR, routed to the active node; needs an",
      "    # adopted VPC, network.vpcId, whose client route tables go in routeTableIds); or nlb: both nodes",
      "    # active in two zones behind Network Load Balancers (imaging-lb init --nlb).",
      "    vipMode: secondary-ip",
      "    # VRRP virtual router id 1-255: unique among keepalived pairs that can hear each other.",
      "    virtualRouterId: 51",
      "    # Seconds between VRRP advertisements: the BACKUP replaces a silent MASTER after about 3.6 of them.",
      "    advertIntervalSeconds: 0.5",
      "    # Whether the primary takes the VIPs back when it recovers (false: no second interruption).",
      "    preempt: false",
    );
  }
  lines.push(
    "",
    ...(nlb
      ? [
          "# The VIPs, keyed by name: each is an internal NLB. The agfa-ei preset puts the XERO viewer on `web`",
          "# and the core server's client, DICOM and HL7 ports on `core` (both need 80 and 443). Per node (zone):",
          "# address: the NLB's fixed address in that node's client-side subnet (what clients are given);",
          "# target: the VIP's address on the node (HAProxy listens there), in the same subnet.",
          "vips:",
          ...(["web", "core"] as const).flatMap((vip, i) => [
            `  ${vip}:`,
            "    nlb:",
            at(`      lb-a: { address: ${clientNet}.${100 + i}, target: ${clientNet}.${30 + i} }`, CHANGE_ME, 62),
            at(`      lb-b: { address: ${twoArm ? "10.80.12" : "10.80.11"}.${100 + i}, target: ${twoArm ? "10.80.12" : "10.80.11"}.${30 + i} }`, CHANGE_ME, 62),
            ...(three ? [at(`      lb-c: { address: ${twoArm ? "10.80.22" : "10.80.21"}.${100 + i}, target: ${twoArm ? "10.80.22" : "10.80.21"}.${30 + i} }`, CHANGE_ME, 62)] : []),
          ]),
        ]
      : [
          `# The VIPs, keyed by name, in the ${twoArm ? "external" : "load balancer's"} subnet. The agfa-ei preset puts the XERO viewer`,
          "# on `web` and the core server's client, DICOM and HL7 ports on `core` (both need 80 and 443).",
          "vips:",
          "  web:",
          at(`    address: ${clientNet}.100`, CHANGE_ME),
          "  core:",
          at(`    address: ${clientNet}.101`, CHANGE_ME),
        ]),
    "",
    "# Changes to the preset's services: any field of a service can be overridden here.",
    "services:",
    "  dicom:",
    "    # DICOM C-ECHO health check (calling AE title LBHEALTH, every 10 s).",
    "    healthCheck:",
    "      type: dicom-echo",
    at("      calledAeTitle: EI_CORE", `${CHANGE_ME} (the core server's AE title)`),
    "  # hl7:",
    "  #   balance: active-backup          # keep HL7 message order: one server at a time",
    "",
    "# The real servers (EI core servers), keyed by name. A server serves every service unless it lists",
    "# `services`. Addresses are IP literals; any subnet the load balancer can reach.",
    "servers:",
    "  ei-core-1:",
    at("    address: 10.80.1.21", CHANGE_ME),
    at("    aeTitle: EI_CORE", `${CHANGE_ME} (its DICOM AE title)`),
    "  ei-core-2:",
    at("    address: 10.80.1.22", CHANGE_ME),
    at("    aeTitle: EI_CORE", CHANGE_ME),
    "",
    "# TLS material by reference only: a Secrets Manager secret holding the PEM (certificate chain and",
    "# private key), read by the load balancers' role at boot and daily; never in Terraform state.",
    "tls:",
    "  certificates:",
    "    web:",
    at(`      secretArn: ${secret("web-tls")}`, CHANGE_ME, 0),
    "",
    "access:",
    "  # Networks allowed to reach the services: workstations, modalities, HL7 senders.",
    at("  clientCidrs: [10.0.0.0/8]", CHANGE_ME),
    "  # Networks allowed to reach the stats page (port 8404) and Prometheus /metrics.",
    at("  adminCidrs: [10.99.0.0/24]", CHANGE_ME),
    "",
    "admin:",
    "  # Secrets Manager secret holding the stats page password (user admin), read at boot.",
    at(`  statsPasswordSecretArn: ${secret("stats")}`, CHANGE_ME, 0),
    "",
    "# Who is told when something goes wrong (a server or a whole service down, a failover, a failed",
    "# rollout, a node not reporting, a certificate within 30 days of its end): every alarm and its return",
    "# to OK is mailed to these addresses, once each has confirmed SNS's first mail. What each alarm means",
    "# and what to do: docs/alarms.md.",
    "monitoring:",
    "  notifications:",
    at("    email: [pacs-oncall@hospital.example]", CHANGE_ME),
    "",
    "# Terraform state in S3 (encrypted, with a lock file). Needed when more than one workstation or a",
    "# pipeline deploys this environment; the bucket must exist. Without it the state is the local file",
    `# terraform.${name}.tfstate in the folder you run cdktf from (not in cdktf.out), on that machine only.`,
    "# stateBackend:",
    "#   bucket: example-hospital-terraform-state",
    `#   key: imaging-lb/${name}.tfstate`,
    "#   region: eu-west-1",
    "",
    "# Tags added to every AWS resource.",
    "tags:",
    at("  owner: radiology-it", CHANGE_ME),
  );
  return `${lines.join("\n")}\n`;
}
