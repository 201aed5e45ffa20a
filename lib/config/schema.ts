/**
 * The environment file schema: one source for validation, the TypeScript types and the published JSON
 * Schema (editor completion). Pure data: imports nothing from cdktf, @cdktf/* or constructs.
 *
 * Defaults that depend on other fields (per-mode timeouts, checks) are applied after parsing by
 * `resolveEnvironment`, not here, so a preset can supply them and the user can override any of them.
 */
import { z } from "zod";
import { AWS_REGION_PATTERN, AWS_ZONE_PATTERN, S3_BUCKET_PATTERN } from "../contract/node-contract";
import { HA_DEFAULTS } from "./model";
import { monitoringSchema } from "./monitoring";

// Interpret the schemas instead of compiling a fast path per object schema with `new Function`: an
// environment file is parsed once per run, so compiling costs more than it saves (about 15 ms on the
// three examples), and no code is generated at run time.
z.config({ jitless: true });

const NAME_RE = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const CIDR_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/(3[0-2]|[12]?\d)$/;
const DURATION_RE = /^[1-9]\d*(ms|s|m|h|d)$/;
const HEADER_RE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/** Free text that reaches haproxy.cfg: printable, no quotes, backslash, '#' or control characters. */
const configText = (what: string) =>
  z.string().regex(/^[^\x00-\x1f\x7f"'\\#]*[^\x00-\x1f\x7f"'\\#\s][^\x00-\x1f\x7f"'\\#]*$/, {
    error: `expected ${what}: printable text without quotes, backslashes, '#' or line breaks`,
  });
/** A literal header value or replacement: printable, no single quote or control characters. */
const literalText = (what: string) =>
  z.string().regex(/^[^\x00-\x1f\x7f']+$/, { error: `expected ${what}: non-empty printable text without single quotes or line breaks` });
/** A URL path (prefix): no spaces, quotes, backslashes, '#', '$', braces or control characters. */
const urlPath = z.string().regex(/^\/[A-Za-z0-9._~!&()*+,;=:@%\/?-]*$/, {
  error: "expected a URL path starting with / (letters, digits and . _ ~ ! & ( ) * + , ; = : @ % / ? -)",
});

/** A name chosen by the user: becomes part of HAProxy section names and construct ids. */
export const nameSchema = z
  .string()
  .regex(NAME_RE, { error: "expected a name of 1-32 characters: lower-case letters, digits and '-', starting with a letter" });

export const ipv4Schema = z.string().regex(IPV4_RE, { error: "expected an IPv4 address such as 10.20.1.10" });
export const cidrSchema = z.string().regex(CIDR_RE, { error: "expected an IPv4 CIDR block such as 10.20.0.0/16" });
export const portSchema = z.int({ error: "expected a port number 1-65535" }).min(1, { error: "expected a port number 1-65535" }).max(65535, { error: "expected a port number 1-65535" });
/** An HAProxy time value: a whole number with a unit. */
export const durationSchema = z
  .string()
  .regex(DURATION_RE, { error: "expected a duration such as 500ms, 30s, 10m, 1h or 1d" });
const awsIdSchema = (prefix: string, example: string) =>
  z.string().regex(new RegExp(`^${prefix}-[0-9a-f]{8,17}$`), { error: `expected an id such as ${example}` });
const secretArnSchema = z
  .string()
  .regex(/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/, {
    error: "expected a Secrets Manager secret ARN such as arn:aws:secretsmanager:eu-west-1:123456789012:secret:lb/tls-AbCdEf",
  })
  // IAM matches a secret's full ARN, which ends in a hyphen and six random characters; a partial ARN
  // validates, deploys, and then every GetSecretValue of the node is denied.
  .regex(/-[A-Za-z0-9]{6}$/, {
    error:
      "expected the secret's full ARN, ending in Secrets Manager's six-character suffix (…:secret:lb/tls-AbCdEf): the instance role's policy names the full ARN and never matches a partial one; copy it from `aws secretsmanager describe-secret --secret-id <name> --query ARN`",
  });
/** A KMS key by key ARN: IAM policies cannot grant on an alias. Multi-Region keys (mrk-…) included. */
const kmsKeyArnSchema = z
  .string()
  .regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/, {
    error: "expected a KMS key ARN such as arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab (not an alias: IAM cannot grant on one)",
  });
const cidrList = z.array(cidrSchema).min(1, { error: "expected at least one CIDR block" });

const subnetSchema = z
  .strictObject({
    cidr: cidrSchema.describe("The subnet's CIDR block (inside the VPC CIDR)."),
    availabilityZone: z
      .string()
      .regex(AWS_ZONE_PATTERN, { error: "expected an availability zone such as eu-west-1a" })
      .describe("Availability zone of the subnet."),
    subnetId: awsIdSchema("subnet", "subnet-0a1b2c3d4e5f60718")
      .optional()
      .describe("Adopt this existing subnet instead of creating one (network.vpcId must be set)."),
  })
  .describe("A subnet: created from cidr, or adopted by subnetId.");

const networkCommon = {
  vpcId: awsIdSchema("vpc", "vpc-0a1b2c3d4e5f60718")
    .optional()
    .describe("Adopt this existing VPC (hospital VPCs are usually already joined to the site network). @default a new VPC is created"),
  vpcCidr: cidrSchema.optional().describe("CIDR block of the VPC: required when the VPC is created, and used for checks when adopted."),
  natSubnet: subnetSchema
    .optional()
    .describe(
      "Created VPC only: a public subnet holding a NAT gateway (and the VPC's internet gateway), so the nodes reach the OS's package mirror at boot. Required when the VPC is created for a stock image; with loadBalancer.image baked, leave it out and the VPC has no internet path (AWS APIs through VPC endpoints).",
    ),
  awsApiCidrs: cidrList
    .optional()
    .describe(
      "Baked image without a NAT gateway: where the nodes reach the AWS APIs' interface endpoints over HTTPS, when they are outside this VPC (a shared endpoints VPC behind a transit gateway). S3 is reached through its gateway endpoint's prefix list. @default the VPC's CIDR block",
    ),
};

export const networkSchema = z
  .discriminatedUnion("layout", [
    z.strictObject({
      layout: z.literal("one-arm").describe("One interface (eth0): VIPs and real servers are reached through it."),
      ...networkCommon,
      subnet: subnetSchema.describe("The single subnet of the load balancer's eth0 and its VIPs."),
    }),
    z.strictObject({
      layout: z.literal("two-arm").describe("eth0 internal (server side), eth1 external (client/VIP side)."),
      ...networkCommon,
      internal: subnetSchema.describe("Server-side subnet: eth0 of each node (device index 0)."),
      external: subnetSchema.describe("Client-side subnet: eth1 of each node (device index 1) carrying the VIPs."),
    }),
  ])
  .describe("Network layout: one-arm or two-arm (Loadbalancer.org convention: eth0 internal, eth1 external).");

const nodeSchema = z.strictObject({
  internalAddress: ipv4Schema.describe("Private IPv4 of eth0 (internal / server side; the only interface in one-arm)."),
  externalAddress: ipv4Schema.optional().describe("Private IPv4 of eth1 (external / client side). Required in two-arm, not allowed in one-arm."),
  internalSubnet: subnetSchema
    .optional()
    .describe("This node's own eth0 subnet, in another availability zone: an HA pair across AZs (ha.vipMode route-table or nlb). @default network.internal (two-arm) or network.subnet (one-arm)"),
  externalSubnet: subnetSchema
    .optional()
    .describe("two-arm: this node's own eth1 subnet, in another availability zone (ha.vipMode route-table or nlb). @default network.external"),
  generation: z
    .int()
    .min(1)
    .default(1)
    .describe("Machine generation of this node. Raising it replaces this node's instance with the current machine definition (OS, AMI, HAProxy package, interfaces); nothing else ever replaces it. Raise one node of a pair at a time."),
});

// --- ha.vipMode nlb: both nodes active behind a Network Load Balancer (issue 24) -----------------------
/** ha.nlb: the Network Load Balancers of vipMode nlb. */
export const nlbSettingsSchema = z.strictObject({
  crossZone: z
    .boolean()
    .default(false)
    .describe("Cross-zone load balancing: each zone's NLB address also sends connections to the other zone's node. Needed for clients that reach a fixed zone address to survive that zone's node being replaced or failing; costs inter-AZ data transfer (about USD 0.01 per GB each way) on the connections that cross."),
  drainTime: durationSchema
    .default("300s")
    .describe("How long a node being replaced (its generation raised) keeps the connections it serves after the NLB stops sending it new ones (the target groups' deregistration delay, 0-3600 s): the deploy waits this long before the instance is replaced, and the NLB resets what is still open at its end."),
});

/** vips.<name>.nlb.<node>: where the VIP is in one node's availability zone. */
export const nlbZoneSchema = z.strictObject({
  address: ipv4Schema.describe("The NLB's fixed private IPv4 in this node's client-side subnet (availability zone): what clients in or routed to this zone connect to."),
  target: ipv4Schema.describe("This VIP's address on the node: a secondary private IPv4 of the node's client-side interface, the NLB's target; HAProxy listens on it."),
});

export const haSchema = z.strictObject({
  vipMode: z
    .enum(["secondary-ip", "elastic-ip", "route-table", "nlb"])
    .default(HA_DEFAULTS.vipMode)
    .describe("How the VIPs survive a node's loss: secondary private IP reassigned (one subnet), Elastic IP re-associated, a route-table overlay VIP outside the VPC CIDR (keepalived moves them all), or nlb: every node (two or three) active in an availability zone of its own behind an internal Network Load Balancer per VIP (no keepalived)."),
  virtualRouterId: z.int().min(1).max(255).default(HA_DEFAULTS.virtualRouterId).describe("VRRP virtual router id, unique among keepalived pairs that can hear each other (not used with nlb)."),
  advertIntervalSeconds: z
    .number({ error: "expected seconds between VRRP advertisements, e.g. 0.5" })
    .min(0.1, { error: "expected at least 0.1 s between VRRP advertisements" })
    .max(40, { error: "expected at most 40 s between VRRP advertisements (VRRPv3)" })
    .multipleOf(0.01, { error: "expected seconds in steps of 0.01 (VRRPv3 counts centiseconds), e.g. 0.5" })
    .default(HA_DEFAULTS.advertIntervalSeconds)
    .describe("Seconds between VRRP advertisements (VRRPv3: 0.1-40 in steps of 0.01). The BACKUP replaces a silent MASTER after about 3.6 intervals: 1.8 s at 0.5 (not used with nlb)."),
  preempt: z.boolean().default(HA_DEFAULTS.preempt).describe("Whether the primary takes the VIPs back when it recovers, 10 s after it is healthy again (not used with nlb)."),
  routeTableIds: z.array(awsIdSchema("rtb", "rtb-0a1b2c3d4e5f60718")).optional().describe("route-table mode: the route tables whose VIP routes move on failover (the clients' route tables; required in that mode)."),
  nlb: nlbSettingsSchema.optional().describe("nlb mode: cross-zone load balancing and the drain time of a node replacement."),
});

export const loadBalancerSchema = z.strictObject({
  instanceType: z.string().regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, { error: "expected an EC2 instance type such as c6i.large" }).default("c6i.large").describe("EC2 instance type."),
  os: z.enum(["ubuntu-24.04", "debian-13", "al2023"]).default("ubuntu-24.04").describe("Operating system (AMI from the public SSM parameter; debian-13: Debian's official AMI, HAProxy 3.0 LTS)."),
  amiId: awsIdSchema("ami", "ami-0a1b2c3d4e5f60718")
    .optional()
    .describe("Pin the nodes' image (recommended for production): a new id is taken by each node when its generation is raised (one node at a time). @default the image the OS's public SSM parameter names when a node is created, then kept: a later image is taken only when the node is replaced for another reason (see the image_ids output)"),
  amiSsmParameter: z.string().startsWith("/", { error: "expected an SSM parameter name starting with /" }).optional().describe("Override the SSM parameter the AMI id is read from."),
  imageBuild: z
    .strictObject({
      subnetId: awsIdSchema("subnet", "subnet-0a1b2c3d4e5f60718").describe(
        "The subnet of the build instance: it needs a way to the OS's package mirror (NAT gateway or proxy) and to the AWS APIs. Often a build or shared-services subnet, not the clinical VPC.",
      ),
      instanceType: z
        .string()
        .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, { error: "expected an EC2 instance type such as c6i.large" })
        .default("c6i.large")
        .describe("EC2 instance type of the build instance."),
      schedule: z
        .string()
        .regex(/^cron\(.+\)$/, { error: "expected an EventBridge cron expression such as cron(0 4 ? * SUN *)" })
        .optional()
        .describe(
          "Rebuild on this schedule, only when the parent image or a package has an update (EC2 Image Builder's EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE). @default no schedule: a build starts when you run the pipeline",
        ),
    })
    .optional()
    .describe("Also create an EC2 Image Builder pipeline that bakes this environment's image with imaging-lb's recipe (docs/baked-image.md); pin what it builds with amiId and image: baked."),
  image: z
    .enum(["stock", "baked"])
    .default("stock")
    .describe(
      "stock: the OS's own image; each node installs HAProxy and its tools from the OS's package mirror at first boot (a created VPC then needs network.natSubnet). baked: amiId is an image built by imaging-lb's recipe (docs/baked-image.md); the bootstrap installs nothing, checks that the image has what the node needs, and the nodes need no internet path.",
    ),
  haproxy: z
    .strictObject({
      source: z.enum(["distribution", "ppa"]).default("distribution").describe("distribution package, or the vbernat PPA (Ubuntu only)."),
      maxConnections: z
        .int()
        .min(100)
        .max(1000000)
        .optional()
        .describe("Global maxconn. @default sized to the instance type: 10000 per 4 GiB class step (large 20000, xlarge 40000, 2xlarge and up 80000); HAProxy needs about 2 file descriptors per connection"),
      version: z
        .string()
        .regex(/^\d+\.\d*[02468]$/, { error: "expected an HAProxy LTS branch (even minor) such as 2.8 or 3.0" })
        .optional()
        .describe("LTS branch the package is pinned to. @default 2.8 from the distribution (Ubuntu 24.04 and AL2023 ship it; 3.0 on debian-13), 3.0 from the PPA"),
    })
    .default({ source: "distribution" }),
  rootVolumeGiB: z.int().min(8).max(1024).default(20).describe("Encrypted gp3 root volume size."),
  hardStopAfter: durationSchema
    .default("8h")
    .describe("After a configuration reload, how long the previous HAProxy worker may keep serving the connections it holds (DICOM associations, HL7 links) before they are closed."),
  nodes: z
    .record(nameSchema, nodeSchema)
    .describe("One node (single load balancer) or two (HA pair), keyed by the node's hostname; with ha.vipMode nlb two or three, each in an availability zone of its own."),
  ha: haSchema.optional().describe("HA pair settings (two nodes; vipMode nlb: two or three)."),
});

export const vipSchema = z.strictObject({
  address: ipv4Schema
    .optional()
    .describe("The VIP: a secondary private IP on the client-side interface (or an overlay address in route-table mode). Required, except with ha.vipMode nlb, where nlb gives the addresses per node."),
  elasticIp: z.boolean().default(false).describe("Also give this VIP an Elastic IP (internet-facing)."),
  elasticIpAllocationId: awsIdSchema("eipalloc", "eipalloc-0a1b2c3d4e5f60718")
    .optional()
    .describe("Adopt this existing Elastic IP (keeps the public address across rebuilds; required for an HA pair in elastic-ip mode)."),
  nlb: z
    .record(nameSchema, nlbZoneSchema)
    .optional()
    .describe("ha.vipMode nlb (required there): per node, keyed by node name, the NLB's fixed address in that node's availability zone and the VIP's address on the node."),
});

const healthCheckSchema = z
  .strictObject({
    type: z.enum(["tcp", "tls", "http", "dicom-echo", "none"]).describe("tcp connect, TLS handshake, HTTP request, DICOM C-ECHO association, or no check."),
    port: portSchema.optional().describe("Port to check. @default the backend port (or the first front-end port)"),
    path: urlPath.optional().describe("http: request path. @default /"),
    method: z.enum(["GET", "HEAD", "OPTIONS"]).optional().describe("http: request method. @default GET"),
    host: z.string().regex(/^[A-Za-z0-9.-]+$/, { error: "expected a host name" }).optional().describe("http: Host header."),
    expectStatus: z.string().regex(/^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$/, { error: "expected status codes such as 200 or 200-399" }).optional().describe("http: accepted status codes. @default 200-399"),
    ssl: z.boolean().optional().describe("http: check over TLS (re-encrypting services default to true)."),
    calledAeTitle: z.string().optional().describe("dicom-echo: the AE title the check calls, one per service (required when the service's servers have different aeTitle values). @default the aeTitle all the service's servers share, else ANY-SCP"),
    callingAeTitle: z.string().optional().describe("dicom-echo: the AE title the checks use, so the PACS can recognise them. @default LBHEALTH"),
    variant: z.enum(["c-echo", "associate"]).optional().describe("dicom-echo: full C-ECHO, or associate-and-abort. @default c-echo"),
    interval: durationSchema.optional().describe("Time between checks. @default 5s (DICOM: 10s; every DICOM check is an association in the PACS audit log)"),
    fall: z.int().min(1).max(100).optional().describe("Failed checks before DOWN. @default 3"),
    rise: z.int().min(1).max(100).optional().describe("Passed checks before UP. @default 2"),
  })
  .describe("Health check of the real servers.");

const timeoutsSchema = z
  .strictObject({
    connect: durationSchema.optional(),
    client: durationSchema.optional(),
    server: durationSchema.optional(),
    httpRequest: durationSchema.optional(),
    httpKeepAlive: durationSchema.optional(),
    tunnel: durationSchema.optional(),
    queue: durationSchema.optional(),
    check: durationSchema.optional(),
  })
  .describe("HAProxy timeouts for this service (idle timeouts for long DICOM/HL7 sessions).");

const persistenceSchema = z.strictObject({
  type: z
    .enum(["none", "source-ip", "cookie", "cookie-source", "app-cookie"])
    .describe("none, source-IP stick table, inserted cookie, cookie with a source-IP fallback, or the application's own session cookie (app-cookie, e.g. JSESSIONID) prefixed with the server's name."),
  timeout: durationSchema.optional().describe("How long a client stays on its server. @default 60m"),
  cookieName: z.string().regex(/^[A-Za-z0-9_-]+$/, { error: "expected a cookie name of letters, digits, _ and -" }).optional().describe("Cookie name. @default SERVERID (app-cookie: JSESSIONID)"),
});

const tlsSchema = z.strictObject({
  mode: z.enum(["none", "terminate", "reencrypt", "passthrough"]).describe("Terminate TLS on the LB, terminate and re-encrypt to the servers, or pass it through (tcp)."),
  certificate: nameSchema.optional().describe("Name of a certificate in tls.certificates (terminate/reencrypt)."),
  hsts: z.boolean().optional().describe("Send Strict-Transport-Security (max-age one year). @default false"),
  redirectHttpPort: portSchema.optional().describe("Also listen on this port and redirect HTTP to HTTPS (http mode)."),
  verifyServer: z
    .enum(["required", "none"])
    .optional()
    .describe("reencrypt: verify the servers' certificates (against caCertificate, else the system CA store) and their name (serverName). @default required"),
  serverName: z
    .string()
    .regex(/^[A-Za-z0-9.-]+$/, { error: "expected a host name" })
    .optional()
    .describe("reencrypt: the name the servers' certificates must carry; also sent as SNI, on traffic and on checks. Required with verifyServer required."),
  caCertificate: nameSchema
    .optional()
    .describe("reencrypt: a certificate in tls.certificates holding the CA bundle (PEM) that signs the servers' certificates, e.g. the hospital's private CA. @default the system CA store"),
  profile: z
    .enum(["intermediate", "legacy"])
    .optional()
    .describe("terminate: the TLS profile of this service's listeners. legacy adds TLS 1.0/1.1 and CBC ciphers for old modalities (DICOM TLS, 2762); use one VIP per profile. @default intermediate"),
});

const headerName = z.string().regex(HEADER_RE, { error: "expected an HTTP header name" });
const headerValue = literalText("a literal header value");
const headerRulesSchema = z.strictObject({
  set: z.record(headerName, headerValue).optional().describe("Headers set (replaced if present). Values are literal: no %[...] or ${...} expansion."),
  add: z.record(headerName, headerValue).optional().describe("Headers added. Values are literal."),
  delete: z.array(headerName).optional().describe("Headers removed."),
  replace: z
    .record(headerName, z.strictObject({ match: literalText("a regular expression"), with: literalText("a literal replacement (\\1 for groups)") }))
    .optional()
    .describe("Header values rewritten by regular expression."),
});

const routeSchema = z.strictObject({
  pathPrefixes: z.array(urlPath).min(1).describe("Requests whose path starts with one of these go to this route's servers."),
  servers: z.array(nameSchema).optional().describe("Servers of this route. @default the service's servers"),
  backendPort: portSchema.optional().describe("Port on the servers. @default the service's backend port"),
  stripPrefix: z.boolean().optional().describe("Remove the matched prefix before forwarding. @default false"),
});

const rewriteSchema = z.strictObject({
  match: literalText("a regular expression").describe("Regular expression on the path."),
  replace: literalText("a literal replacement path").describe("Replacement path (\\1 for groups)."),
});

/** HTTP status codes HAProxy answers itself and that may get a page of the site's own (`errorfile`). */
export const ERROR_PAGE_STATUSES = ["400", "403", "408", "429", "500", "502", "503", "504"] as const;

const pageSchema = z
  .strictObject({
    file: z
      .string()
      .regex(/^[^\x00-\x1f\x7f]+$/, { error: "expected a file path without control characters" })
      .optional()
      .describe("An HTML file, relative to the environment file's folder (or absolute)."),
    html: z.string().min(1, { error: "expected the page's HTML" }).optional().describe("The page's HTML, inline."),
  })
  .describe("An HTML page: file or html (exactly one). imaging-lb adds the status line and headers; the whole response must fit in 15000 bytes (HAProxy's 16384-byte buffer, less what it reserves for header rewrites and its own overhead).");

const errorPagesSchema = z
  .strictObject(Object.fromEntries(ERROR_PAGE_STATUSES.map((code) => [code, pageSchema.optional()])) as Record<(typeof ERROR_PAGE_STATUSES)[number], z.ZodOptional<typeof pageSchema>>)
  .describe("http: pages HAProxy answers with instead of its own, by status: 502/503/504 when servers fail or none is usable (503 also when every server is down and there is no sorry server), 403/429 when a rule of yours (extraDirectives) denies, 400/408/500 on bad or slow requests and internal errors. Rendered as an http-errors section; the files reach the nodes in the configuration bundle (/etc/haproxy/errors/<service>/<status>.http), so a change is a reload, not a replacement.");

const maintenanceSchema = z
  .strictObject({
    enabled: z.boolean().describe("Answer every request with 503 and the maintenance page (except from allowedSources). false keeps the switch ready for the runtime API (docs/maintenance-page.md)."),
    page: pageSchema.optional().describe("The maintenance page. @default a short built-in page"),
    allowedSources: cidrList.optional().describe("Clients that still reach the servers during maintenance (testers). @default none"),
    retryAfterSeconds: z.int().min(1).max(604800).optional().describe("Retry-After header of the maintenance answer, in seconds. @default 600"),
  })
  .describe("http: maintenance mode of this service, switched in the environment file (a reload) or at run time through the maintenance map (no reload).");

export const serviceSchema = z.strictObject({
  enabled: z.boolean().optional().describe("Render this service. @default true (preset services may default to false)"),
  description: configText("a description").max(200).optional(),
  vip: nameSchema.optional().describe("Name of the VIP in vips. @default the only VIP"),
  frontendPorts: z.array(portSchema).min(1, { error: "expected at least one port" }).optional().describe("Ports the VIP listens on."),
  backendPort: portSchema.optional().describe("Port on the real servers (port translation). @default the port the client connected to"),
  mode: z.enum(["http", "tcp"]).optional().describe("http (L7, headers/cookies/routing) or tcp. @default tcp"),
  balance: z.enum(["leastconn", "roundrobin", "source", "active-backup"]).optional().describe("@default leastconn"),
  persistence: persistenceSchema.optional(),
  healthCheck: healthCheckSchema.optional(),
  timeouts: timeoutsSchema.optional(),
  tls: tlsSchema.optional(),
  requestHeaders: headerRulesSchema.optional().describe("http: request header rules."),
  responseHeaders: headerRulesSchema.optional().describe("http: response header rules."),
  routes: z.record(nameSchema, routeSchema).optional().describe("http: path routing to other server groups, keyed by route name."),
  rewrites: z.array(rewriteSchema).optional().describe("http: path rewrites, applied in order."),
  clientAddress: z
    .enum(["snat", "forwarded-for", "tproxy", "source"])
    .optional()
    .describe("What the servers see: the LB's address (snat), snat + X-Forwarded-For (http), the client's address (tproxy, two-arm only), or sourceAddress. @default snat (forwarded-for in http mode)"),
  sourceAddress: z.union([z.literal("vip"), ipv4Schema]).optional().describe("clientAddress source: 'vip' or an address of the LB."),
  clientCidrs: cidrList.optional().describe("Clients allowed to reach this service. @default access.clientCidrs"),
  tcpKeepalive: z.boolean().optional().describe("TCP keep-alives on both sides (long idle DICOM/HL7 sessions). @default true in tcp mode"),
  maxConnections: z
    .int()
    .min(1)
    .max(1000000)
    .optional()
    .describe("Front-end maxconn: this service's share of loadBalancer.haproxy.maxConnections. @default an equal share of the global maxconn after the stats and health reserve"),
  serverMaxConnections: z
    .int()
    .min(1)
    .max(100000)
    .optional()
    .describe("Per-server maxconn: above it new connections wait in the queue (timeouts.queue) instead of piling onto the server. @default 1000"),
  slowstart: z
    .union([durationSchema, z.literal(false)])
    .optional()
    .describe("A server coming back UP ramps its share of new connections up over this time (false: full share at once). @default 30s"),
  shutdownSessionsOnDown: z
    .boolean()
    .optional()
    .describe("Cut every session of a server that goes DOWN or into maintenance (on-marked-down shutdown-sessions). @default false: a DOWN server gets no new sessions but finishes the ones it serves"),
  trustedProxies: cidrList
    .optional()
    .describe("http: upstream proxies whose X-Forwarded-For, Forwarded, X-Real-IP and X-Forwarded-Host are kept. From every other client these headers are removed on entry. @default none"),
  tcpKeepaliveTimers: z
    .strictObject({
      idle: durationSchema.optional().describe("Idle time before the first keep-alive probe. @default 120s"),
      interval: durationSchema.optional().describe("Time between probes. @default 30s"),
      count: z.int().min(1).max(100).optional().describe("Unanswered probes before the connection is dropped. @default 4"),
    })
    .optional()
    .describe("TCP keep-alive timers on both sides (clitcpka-*/srvtcpka-*), below common firewall idle timers so an idle DICOM/HL7 link stays open."),
  connectionRateLimit: z.int().min(1).max(1000000).optional().describe("New connections per second this service accepts (rate-limit sessions); above it connections wait in the kernel's backlog."),
  logAtOpen: z
    .boolean()
    .optional()
    .describe("tcp: write the connection's log line when the server connection opens (option logasap), for links that stay open for days; HAProxy then writes no second line at close. @default false (true for the preset's hl7)"),
  proxyProtocol: z.enum(["v1", "v2"]).optional().describe("Send the PROXY protocol header to the servers (and on their checks); only for servers configured to accept it."),
  sorryServer: z.strictObject({ address: ipv4Schema, port: portSchema }).optional().describe("Used when every server is down."),
  errorPages: errorPagesSchema.optional(),
  maintenance: maintenanceSchema.optional(),
  extraDirectives: z
    .strictObject({
      frontend: z.array(z.string().regex(/^[^\x00-\x1f\x7f]+$/, { error: "expected one directive per item, without line breaks" })).optional(),
      backend: z.array(z.string().regex(/^[^\x00-\x1f\x7f]+$/, { error: "expected one directive per item, without line breaks" })).optional(),
    })
    .optional()
    .describe("Escape hatch: raw HAProxy directives appended to this service's frontend/backend, after the generated ones and before the servers."),
});

const serverServiceSchema = z.strictObject({
  weight: z.int().min(0).max(256).optional().describe("HAProxy weight for this service. @default the server's weight"),
  backup: z.boolean().optional().describe("Only used when the active servers are down. @default false"),
  port: portSchema.optional().describe("Back-end port on this server, overriding the service's."),
});

export const serverSchema = z.strictObject({
  address: ipv4Schema.describe("The real server's IPv4 address (IP literal: haproxy -c must not depend on DNS)."),
  weight: z.int().min(0).max(256).default(1).describe("HAProxy weight of this server in every service that does not set its own (0 takes it out of the balance)."),
  aeTitle: z.string().optional().describe("The server's DICOM AE title, used as the called AE title of DICOM checks."),
  services: z
    .record(nameSchema, serverServiceSchema)
    .optional()
    .describe("The services this server serves, with per-service options. @default every service"),
});

export const certificateSchema = z.strictObject({
  secretArn: secretArnSchema.describe("Secrets Manager secret holding the PEM (certificate chain + private key), fetched at boot by the instance role."),
  kmsKeyArn: kmsKeyArnSchema
    .optional()
    .describe("The customer managed KMS key the secret is encrypted with: the instance role may decrypt with it through Secrets Manager only. @default the secret uses aws/secretsmanager (no KMS permission needed)"),
});

export const accessSchema = z.strictObject({
  clientCidrs: cidrList.describe("Clients allowed to reach the services (per-service clientCidrs override)."),
  adminCidrs: cidrList.describe("Admin networks allowed to reach the stats page and Prometheus endpoint."),
  securityGroupRuleQuota: z
    .int()
    .min(60)
    .max(1000)
    .default(60)
    .describe("Your account's quota of inbound (and of outbound) rules per security group: an ENI's rules are spread over up to 5 groups of this many (fewer above 200: AWS keeps groups × rules at 1000), and what does not fit is refused when the file is loaded; raise it in Service Quotas first (L-0EA8095F). 60 is AWS's default."),
});

export const adminSchema = z.strictObject({
  statsPort: portSchema.default(8404).describe("Stats page and /metrics port, on the internal interface."),
  statsUser: z.string().regex(/^[A-Za-z0-9_.-]+$/, { error: "expected a user name" }).default("admin").describe("User name of the stats page (its password: statsPasswordSecretArn)."),
  statsPasswordSecretArn: secretArnSchema.describe("Secrets Manager secret with the stats password, fetched at boot (never in Terraform state or user data)."),
  statsPasswordKmsKeyArn: kmsKeyArnSchema
    .optional()
    .describe("The customer managed KMS key the stats password secret is encrypted with (see tls.certificates.*.kmsKeyArn). @default aws/secretsmanager"),
  prometheus: z.boolean().default(true).describe("Serve Prometheus metrics at /metrics."),
  cloudWatchLogGroup: z
    .string()
    .optional()
    .describe("Also ship HAProxy logs to this CloudWatch Logs group, which the stack creates (logs never expire unless you set a retention); import an existing group first: terraform import 'aws_cloudwatch_log_group.haproxy-logs' <name>."),
});

export const configStoreSchema = z.strictObject({
  bucket: z
    .string()
    .regex(S3_BUCKET_PATTERN, { error: "expected an S3 bucket name (3-63 of a-z 0-9 . -)" })
    .optional()
    .describe("Adopt this existing S3 bucket for the configuration bundles and node status (keys under <name>/). @default a bucket created by the stack, imaging-lb-<name>-<account id>"),
  kmsKeyArn: kmsKeyArnSchema
    .optional()
    .describe("Customer managed KMS key for the created bucket's default encryption (the nodes get kms:Decrypt through S3 only). @default SSE-S3"),
  writerArns: z
    .array(
      z.string().regex(/^arn:aws(?:-cn|-us-gov)?:iam::[0-9]{12}:(?:root|(?:role|user)\/[A-Za-z0-9+=,.@_/-]{1,512})$/, {
        error: "expected an IAM role, user or account root ARN (arn:aws:iam::<account>:role/<name>)",
      }),
    )
    .optional()
    .describe("IAM principals besides the one running the deploy that may publish bundles and send commands (nodes/*, commands/* of the created bucket, and kms:Encrypt with the manifest key): your pipelines' apply roles, a break-glass role. @default only the deploying principal"),
});

export const stateBackendSchema = z.strictObject({
  bucket: z.string().min(3),
  key: z.string().optional().describe("@default imaging-lb/<name>.tfstate"),
  region: z.string().optional().describe("@default the environment's region"),
});

export const environmentSchema = z
  .strictObject({
    name: nameSchema.describe("Environment name: the Terraform stack and resource name prefix."),
    region: z.string().regex(AWS_REGION_PATTERN, { error: "expected an AWS region such as eu-west-1" }).describe("AWS region."),
    preset: z.enum(["agfa-ei"]).optional().describe("Service catalog to start from; services entries override it."),
    network: networkSchema,
    loadBalancer: loadBalancerSchema,
    vips: z.record(nameSchema, vipSchema).describe("Virtual IP addresses, keyed by name."),
    services: z.record(nameSchema, serviceSchema).default({}).describe("Load-balanced services, keyed by name."),
    servers: z.record(nameSchema, serverSchema).describe("Real servers, keyed by name."),
    tls: z
      .strictObject({ certificates: z.record(nameSchema, certificateSchema).default({}) })
      .optional()
      .describe("TLS material, by reference only."),
    access: accessSchema,
    admin: adminSchema,
    configStore: configStoreSchema.optional().describe("Where the nodes' configuration bundles and status live (S3)."),
    stateBackend: stateBackendSchema.optional().describe("Remote state in S3 (encrypted, with a lock file)."),
    monitoring: monitoringSchema.optional(),
    tags: z.record(z.string(), z.string()).optional().describe("Tags added to every AWS resource."),
  })
  .describe("imaging-lb environment: one site's Layer 7 SNAT load balancer(s).");

export type EnvironmentInput = z.input<typeof environmentSchema>;
export type Environment = z.output<typeof environmentSchema>;
export type Service = z.output<typeof serviceSchema>;
export type Server = z.output<typeof serverSchema>;
export type Network = z.output<typeof networkSchema>;
export type HealthCheck = z.output<typeof healthCheckSchema>;
export type Timeouts = z.output<typeof timeoutsSchema>;
export type HeaderRules = z.output<typeof headerRulesSchema>;
export type Route = z.output<typeof routeSchema>;
export type Persistence = z.output<typeof persistenceSchema>;
export type ServiceTls = z.output<typeof tlsSchema>;
export type Page = z.output<typeof pageSchema>;

/** JSON Schema (draft 2020-12) of the environment file, for editors. */
export function environmentJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(environmentSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return { ...schema, $id: "https://imaging-lb.dev/schema/environment.schema.json", title: "imaging-lb environment" };
}
