/**
 * The environment loader on bad input, as a spec: each malformed file (test/fixtures/bad/*.yaml, or bytes
 * written here for encodings) must fail with a ConfigError that names every problem at once, each with the
 * exact field path, its line (and column where there is one) and a message saying what is allowed and what
 * was received. Never a crash, never a half-loaded environment.
 *
 * Cases whose title starts with "LOADER DEFECT" describe the correct behaviour the loader does not have
 * yet; they fail until lib/config is fixed (they are not skipped on purpose).
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError, ConfigProblem, formatProblem } from "../lib/config/errors";
import { loadEnvironment } from "../lib/load/load";
import { tempDir } from "./helpers/tools";

const FIXTURES = join(__dirname, "..", "..", "test", "fixtures", "bad");

/** One expected problem. */
interface Expected {
  /** The exact dotted field path ("" for the whole file). */
  readonly path: string;
  /** The exact 1-based line; null: the problem must have no line (the whole file); "any": not checked. */
  readonly line: number | null | "any";
  /** The exact column, where a column is meaningful; not checked when omitted. */
  readonly column?: number;
  /** Key phrases of the message (what is allowed, the value received, the fix). */
  readonly message: RegExp | readonly RegExp[];
  /** Phrases the message must not contain. */
  readonly notMessage?: RegExp;
}

/** Where the bad input comes from: a fixture file, or a path made in a temp dir (encodings, missing file, ...). */
type Source = { readonly fixture: string } | { readonly make: (dir: string) => string };

interface Case {
  readonly behaviour: string;
  readonly input: Source;
  /** Every problem the loader must report, in any order; no more, no fewer. */
  readonly problems: readonly Expected[];
  /** Set when the loader gets this wrong today: what is wrong (see the report). */
  readonly defect?: string;
}

const NAME_RULE = /expected a name of 1-32 characters: lower-case letters, digits and '-', starting with a letter/;
const PORT_RULE = /expected a port number 1-65535/;
const CIDR_RULE = /expected an IPv4 CIDR block such as 10\.20\.0\.0\/16/;
const DURATION_RULE = /expected a duration such as 500ms, 30s, 10m, 1h or 1d/;
const AE_RULE = /1-16 characters/;
const MISSING = /^missing required field: expected /;

const CASES: readonly Case[] = [
  // --- wrong types ---------------------------------------------------------------------------------
  {
    behaviour: "rejects a port given as a quoted string, showing the string",
    input: { fixture: "port-as-string.yaml" },
    problems: [{ path: "admin.statsPort", line: 38, column: 14, message: [PORT_RULE, /got "8404": a quoted number is text; remove the quotes \(8404\)$/] }],
  },
  {
    behaviour: "rejects a list where a mapping of named VIPs is expected, in plain words (not zod's 'record')",
    input: { fixture: "list-for-mapping.yaml" },
    problems: [{ path: "vips", line: 16, column: 7, message: /^expected a mapping.*, got a list$/ }],
    defect: "D1: says 'expected record, got a list'",
  },
  {
    behaviour: "rejects a number as the environment name, showing the number",
    input: { fixture: "number-for-name.yaml" },
    problems: [{ path: "name", line: 2, column: 7, message: /^expected .*, got 42: YAML read this as a number; quote it if you meant the text \("42"\)$/ }],
  },
  // --- ranges --------------------------------------------------------------------------------------
  {
    behaviour: "rejects front-end port 0, pointing at the list item",
    input: { fixture: "port-zero.yaml" },
    problems: [{ path: "services.dicom.frontendPorts.0", line: 22, column: 21, message: [PORT_RULE, /got 0$/] }],
  },
  {
    behaviour: "rejects front-end port 70000, pointing at the second list item",
    input: { fixture: "port-70000.yaml" },
    problems: [{ path: "services.hl7.frontendPorts.1", line: 22, column: 27, message: [PORT_RULE, /got 70000$/] }],
  },
  // --- names ---------------------------------------------------------------------------------------
  {
    behaviour: "rejects a server name with upper-case letters, pointing at the key",
    input: { fixture: "name-upper-case.yaml" },
    problems: [{ path: "servers.EI-Core-1", line: 25, column: 3, message: [/invalid name "EI-Core-1"/, NAME_RULE] }],
  },
  {
    behaviour: "rejects underscores in the environment name and in a node name, both at once",
    input: { fixture: "name-underscore.yaml" },
    problems: [
      { path: "name", line: 2, column: 7, message: [NAME_RULE, /got "ei_one_arm"$/] },
      { path: "loadBalancer.nodes.lb_1", line: 14, column: 5, message: [/invalid name "lb_1"/, NAME_RULE] },
    ],
  },
  {
    behaviour: "rejects an unknown preset, listing the presets there are",
    input: { fixture: "unknown-preset.yaml" },
    problems: [{ path: "preset", line: 4, column: 9, message: /^expected one of agfa-ei, got "agfa-ie"$/ }],
  },
  // --- ports on a VIP ------------------------------------------------------------------------------
  {
    behaviour: "rejects two services listening on the same port of one VIP, naming the other service",
    input: { fixture: "duplicate-vip-port.yaml" },
    problems: [
      { path: "services.dicom-tls.frontendPorts.1", line: 23, column: 27, message: /VIP 'core' port 104 is already used by service 'dicom'; use another port or VIP/ },
    ],
  },
  {
    behaviour: "rejects an HTTP redirect port that another service on the VIP already listens on",
    input: { fixture: "redirect-port-collision.yaml" },
    problems: [
      { path: "services.xero.tls.redirectHttpPort", line: 26, column: 30, message: /VIP 'web' port 80 is already used by service 'admin-portal'/ },
    ],
  },
  {
    behaviour: "rejects an HTTP redirect port equal to the service's own TLS port (two binds on VIP:443)",
    input: { fixture: "redirect-port-own-port.yaml" },
    problems: [{ path: "services.xero.tls.redirectHttpPort", line: 22, column: 30, message: [/443/, /frontendPorts|front-end port|already/] }],
    defect: "D6: accepted; the rendered frontend binds 10.30.1.100:443 twice (TLS and plain)",
  },
  // --- references between sections ----------------------------------------------------------------
  {
    behaviour: "rejects a service no server serves, pointing at the service",
    input: { fixture: "service-without-servers.yaml" },
    problems: [{ path: "services.worklist", line: 21, column: 3, message: /^no servers: no entry in servers serves this service/ }],
  },
  {
    behaviour: "rejects a server listing an unknown service, listing the services there are",
    input: { fixture: "server-unknown-service.yaml" },
    problems: [
      { path: "servers.ei-core-2.services.hl7s", line: 28, column: 28, message: /unknown service 'hl7s'; services defined: core, dicom, hl7, xero, xero-xtend/ },
    ],
  },
  {
    behaviour: "rejects a route naming an unknown server, pointing at the list item",
    input: { fixture: "route-unknown-server.yaml" },
    problems: [
      { path: "services.xero-xtend.routes.xtend.servers.1", line: 26, column: 37, message: /unknown server 'ei-xtend-1'; servers defined: ei-core-1, ei-core-2/ },
    ],
  },
  {
    behaviour: "rejects TLS termination without a certificate name",
    input: { fixture: "tls-terminate-without-certificate.yaml" },
    problems: [{ path: "services.portal.tls", line: 25, column: 5, message: /missing certificate: TLS mode terminate needs a certificate name from tls.certificates/ }],
  },
  {
    behaviour: "rejects a certificate name not defined in tls.certificates, listing the defined ones",
    input: { fixture: "tls-undefined-certificate.yaml" },
    problems: [{ path: "services.xero.tls.certificate", line: 22, column: 25, message: /certificate 'web-tls' is not defined in tls.certificates \(defined: web\)/ }],
  },
  // --- network -------------------------------------------------------------------------------------
  {
    behaviour: "rejects overlapping two-arm subnets",
    input: { fixture: "two-arm-subnets-overlap.yaml" },
    problems: [{ path: "network.external.cidr", line: 11, column: 21, message: /not overlapping the internal subnet 10\.20\.0\.0\/22, got "10\.20\.2\.0\/24"/ }],
  },
  {
    behaviour: "rejects equal two-arm subnets",
    input: { fixture: "two-arm-subnets-equal.yaml" },
    problems: [{ path: "network.external.cidr", line: 11, column: 21, message: /different from the internal subnet 10\.20\.1\.0\/24, got "10\.20\.1\.0\/24"/ }],
  },
  {
    behaviour: "rejects a subnet outside the VPC CIDR",
    input: { fixture: "subnet-outside-vpc.yaml" },
    problems: [{ path: "network.subnet.cidr", line: 10, column: 19, message: /expected a subnet inside the VPC CIDR 10\.30\.0\.0\/16, got "10\.31\.1\.0\/24"/ }],
  },
  {
    behaviour: "rejects malformed CIDR blocks (a /33, an octet of 256), both at once",
    input: { fixture: "bad-cidr.yaml" },
    problems: [
      { path: "network.vpcCidr", line: 8, column: 12, message: [CIDR_RULE, /got "10\.30\.0\.0\/33"$/] },
      { path: "access.clientCidrs.1", line: 32, column: 29, message: [CIDR_RULE, /got "10\.256\.0\.0\/16"$/] },
    ],
  },
  {
    behaviour: "rejects a subnet CIDR with host bits set",
    input: { fixture: "cidr-host-bits.yaml" },
    problems: [{ path: "network.subnet.cidr", line: 10, column: 19, message: /expected a network address \(host bits zero\), got "10\.30\.1\.7\/24"/ }],
  },
  // --- addresses -----------------------------------------------------------------------------------
  {
    behaviour: "rejects a node address outside its subnet",
    input: { fixture: "node-outside-subnet.yaml" },
    problems: [{ path: "loadBalancer.nodes.lb-1.internalAddress", line: 14, column: 30, message: /expected an address in the load balancer subnet 10\.30\.1\.0\/24, got "10\.30\.2\.10"/ }],
  },
  {
    behaviour: "rejects a two-arm VIP in the internal subnet (VIPs live on the client side)",
    input: { fixture: "vip-outside-subnet.yaml" },
    problems: [{ path: "vips.core.address", line: 19, column: 20, message: /expected an address in the client-side subnet 10\.20\.2\.0\/24, got "10\.20\.1\.101"/ }],
  },
  {
    behaviour: "rejects an unknown layout at its value, listing the layouts",
    input: { fixture: "layout-unknown.yaml" },
    problems: [{ path: "network.layout", line: 7, column: 11, message: /^expected one of one-arm \| two-arm, got "three-arm"$/ }],
  },
  {
    behaviour: "rejects a network without a layout, listing the layouts",
    input: { fixture: "layout-missing.yaml" },
    problems: [{ path: "network.layout", line: 7, message: /^missing required field: expected one of one-arm \| two-arm$/ }],
  },
  {
    behaviour: "rejects a KMS alias where a key ARN is needed, saying why",
    input: { fixture: "kms-key-wrong.yaml" },
    problems: [
      { path: "admin.statsPasswordKmsKeyArn", line: 35, column: 27, message: [/^expected a KMS key ARN such as arn:aws:kms:/, /not an alias: IAM cannot grant on one/, /got "arn:aws:kms:eu-west-1:123456789012:alias\/ei-secrets"$/] },
    ],
  },
  {
    behaviour: "rejects a secret in another region than the environment (the nodes fetch through their region)",
    input: { fixture: "secret-other-region.yaml" },
    problems: [
      { path: "admin.statsPasswordSecretArn", line: 34, column: 27, message: /^expected a secret in the environment's region eu-west-1 \(the nodes fetch it through that region's Secrets Manager\), got "arn:aws:secretsmanager:us-east-1:123456789012:secret:ei-two-arm\/stats-AbCdEf"$/ },
    ],
  },
  {
    behaviour: "rejects a KMS key in another region than its secret (after the schema passes)",
    input: { fixture: "kms-key-other-region.yaml" },
    problems: [
      { path: "tls.certificates.web.kmsKeyArn", line: 27, column: 116, message: /^expected a key in the secret's region eu-west-1 \(Secrets Manager encrypts only with keys of its own region\), got "arn:aws:kms:eu-central-1:123456789012:key\/1234abcd-12ab-34cd-56ef-1234567890ab"$/ },
    ],
  },
  {
    behaviour: "rejects addresses AWS reserves (.3, the broadcast .255, the network .0), all at once",
    input: { fixture: "aws-reserved-addresses.yaml" },
    problems: [
      { path: "loadBalancer.nodes.lb-1.internalAddress", line: 14, column: 30, message: /"10\.30\.1\.3" is reserved by AWS .*; choose another/ },
      { path: "vips.web.address", line: 17, column: 19, message: /"10\.30\.1\.255" is reserved by AWS/ },
      { path: "vips.core.address", line: 18, column: 20, message: /"10\.30\.1\.0" is reserved by AWS/ },
    ],
  },
  {
    behaviour: "rejects a VIP equal to a node's own address",
    input: { fixture: "vip-equals-node.yaml" },
    problems: [{ path: "vips.web.address", line: 17, column: 19, message: /"10\.30\.1\.10" is a node's own address; a VIP needs an address of its own/ }],
  },
  {
    behaviour: "rejects externalAddress on a one-arm node, saying how to fix it",
    input: { fixture: "external-address-one-arm.yaml" },
    problems: [{ path: "loadBalancer.nodes.lb-1.externalAddress", line: 14, column: 42, message: /remove externalAddress or use layout two-arm/ }],
  },
  {
    behaviour: "rejects a two-arm node without externalAddress, pointing at the node",
    input: { fixture: "external-address-missing-two-arm.yaml" },
    problems: [{ path: "loadBalancer.nodes.lb-a", line: 15, column: 5, message: /missing externalAddress: two-arm nodes need an eth1 address in the external subnet/ }],
  },
  // --- nodes and HA --------------------------------------------------------------------------------
  {
    behaviour: "rejects three nodes, and the HA settings that need exactly two, both at once",
    input: { fixture: "three-nodes.yaml" },
    problems: [
      { path: "loadBalancer.nodes", line: 15, column: 5, message: /expected 1 node \(single load balancer\) or 2 \(HA pair\), got 3/ },
      { path: "loadBalancer.ha", line: 18, column: 3, message: /HA settings need exactly 2 nodes/ },
    ],
  },
  {
    behaviour: "rejects HA settings with a single node",
    input: { fixture: "ha-one-node.yaml" },
    problems: [{ path: "loadBalancer.ha", line: 15, column: 3, message: /HA settings need exactly 2 nodes in loadBalancer.nodes/ }],
  },
  // --- required and unknown fields -----------------------------------------------------------------
  {
    behaviour: "reports every missing top-level field at once, at the top-level mapping",
    input: { fixture: "missing-top-level-fields.yaml" },
    problems: ["network", "loadBalancer", "vips", "servers", "access", "admin"].map((path) => ({
      path,
      line: 2,
      column: 1,
      message: [MISSING, /^missing required field: expected a mapping/],
    })),
    defect: "D1: vips and servers say 'expected record'",
  },
  {
    behaviour: "rejects a misspelt top-level key with a did-you-mean hint, and reports the field it left missing",
    input: { fixture: "unknown-top-level-key.yaml" },
    problems: [
      { path: "regoin", line: 3, column: 1, message: [/^unknown field \(did you mean 'region'\?\)/, /allowed here: name, region, preset, network/] },
      { path: "region", line: 2, column: 1, message: MISSING },
    ],
  },
  {
    behaviour: "rejects a misspelt key inside services.dicom.healthCheck with a did-you-mean hint",
    input: { fixture: "unknown-health-check-key.yaml" },
    problems: [
      { path: "services.dicom.healthCheck.intervall", line: 25, column: 7, message: [/^unknown field \(did you mean 'interval'\?\)/, /allowed here: type, port, path/] },
    ],
  },
  {
    behaviour: "rejects a misspelt key inside a node with a did-you-mean hint, and the address it left missing",
    input: { fixture: "unknown-node-key.yaml" },
    problems: [
      { path: "loadBalancer.nodes.lb-1.internalAdress", line: 14, column: 13, message: /^unknown field \(did you mean 'internalAddress'\?\); allowed here: internalAddress, externalAddress/ },
      { path: "loadBalancer.nodes.lb-1.internalAddress", line: 14, column: 11, message: MISSING },
    ],
  },
  // --- rules that depend on mode and layout --------------------------------------------------------
  {
    behaviour: "rejects TProxy in one-arm",
    input: { fixture: "tproxy-one-arm.yaml" },
    problems: [{ path: "services.core.clientAddress", line: 22, column: 20, message: /tproxy needs layout two-arm/ }],
  },
  {
    behaviour: "rejects cookie persistence in tcp mode, suggesting source-ip",
    input: { fixture: "cookie-persistence-tcp.yaml" },
    problems: [{ path: "services.core.persistence.type", line: 22, column: 26, message: /cookie persistence needs mode http; use source-ip in mode tcp, got "cookie"/ }],
  },
  {
    behaviour: "rejects forwarded-for in tcp mode",
    input: { fixture: "forwarded-for-tcp.yaml" },
    problems: [{ path: "services.hl7.clientAddress", line: 22, column: 20, message: /forwarded-for inserts an HTTP header and needs mode http/ }],
  },
  {
    behaviour: "rejects HSTS on a service that does not terminate TLS",
    input: { fixture: "hsts-without-tls.yaml" },
    problems: [{ path: "services.portal.tls.hsts", line: 25, column: 24, message: /HSTS needs mode http with tls.mode terminate or reencrypt/ }],
  },
  // --- free text that ends up in haproxy.cfg -------------------------------------------------------
  {
    behaviour: "rejects a header value with a line break (it would split the haproxy.cfg line and inject a header)",
    input: { fixture: "header-value-newline.yaml" },
    problems: [{ path: "services.xero.requestHeaders.set.X-Site", line: 23, column: 22, message: /got "radiology\\nX-Injected: 1"/ }],
    defect: "D7: accepted; haproxy -dW -c then fails with 'unmatched quote'",
  },
  {
    behaviour: "rejects an HTTP check path with a space (it would become a second http-check argument)",
    input: { fixture: "health-check-path-space.yaml" },
    problems: [{ path: "services.xero.healthCheck.path", line: 22, column: 38, message: /got "\/status page"/ }],
    defect: "D8: accepted; haproxy -dW -c then fails on 'http-check send'",
  },
  // --- durations and health checks -----------------------------------------------------------------
  {
    behaviour: "rejects durations HAProxy does not take ('24 hours', '0s'), both at once",
    input: { fixture: "bad-duration.yaml" },
    problems: [
      { path: "services.hl7.timeouts.client", line: 22, column: 25, message: [DURATION_RULE, /got "24 hours"$/] },
      { path: "services.dicom.healthCheck.interval", line: 24, column: 48, message: [DURATION_RULE, /got "0s"$/] },
    ],
  },
  {
    behaviour: "rejects a 17-character called AE title for a dicom-echo check",
    input: { fixture: "ae-title-17-chars.yaml" },
    problems: [{ path: "services.dicom.healthCheck.calledAeTitle", line: 22, column: 53, message: [AE_RULE, /got "EI_CORE_ARCHIVE_1"$/] }],
  },
  {
    behaviour: "rejects a 17-character AE title on a server",
    input: { fixture: "server-ae-title-17-chars.yaml" },
    problems: [{ path: "servers.ei-core-1.aeTitle", line: 25, column: 46, message: [AE_RULE, /EI_CORE_ARCHIVE_1/] }],
    defect: "D3: accepted (servers.*.aeTitle is not validated)",
  },
  {
    behaviour: "rejects a check timeout longer than the check interval",
    input: { fixture: "check-timeout-over-interval.yaml" },
    problems: [{ path: "services.hl7.timeouts.check", line: 22, column: 24, message: /expected a check timeout no longer than the check interval 5s, got "10s"/ }],
  },
  // --- YAML ----------------------------------------------------------------------------------------
  {
    behaviour: "explains bad indentation in plain words at the over-indented line, once, with the indentation fix",
    input: { fixture: "yaml-bad-indentation.yaml" },
    problems: [
      {
        path: "",
        line: 6,
        column: 5,
        message: [/^YAML syntax: line 6 \("vpcCidr: 10\.30\.0\.0\/16"\) is indented more than line 5 \("layout: one-arm"\)/, /indent it by 2 spaces like "layout:"/],
        notMessage: /compact mappings|Implicit keys/,
      },
    ],
    defect: "D4: YAML syntax errors carry no line or column",
  },
  {
    behaviour: "reports an unclosed bracket as a YAML syntax error with its line and column",
    input: { fixture: "yaml-unclosed-bracket.yaml" },
    problems: [{ path: "", line: 5, column: 16, message: [/^YAML syntax: this "\[" opens a list that is never closed: end it with "\]"/] }],
    defect: "D4: YAML syntax errors carry no line or column",
  },
  {
    behaviour: "reports a duplicate key as a YAML syntax error at the second occurrence",
    input: { fixture: "yaml-duplicate-key.yaml" },
    problems: [{ path: "", line: 6, column: 3, message: [/^YAML syntax: /, /unique/] }],
    defect: "D4: YAML syntax errors carry no line or column",
  },
  {
    behaviour: "rejects a second YAML document at its '---', in the user's words (not the library's API advice)",
    input: { fixture: "yaml-multiple-documents.yaml" },
    problems: [{ path: "", line: 4, column: 1, message: /document/, notMessage: /parseAllDocuments/ }],
    defect: "D5: no line, and the message says 'please use YAML.parseAllDocuments()'",
  },
  {
    behaviour: "rejects an alias whose anchor was never set, at the alias",
    input: { fixture: "yaml-unresolved-alias.yaml" },
    problems: [{ path: "", line: 5, column: 16, message: [/alias/i, /hospital/] }],
    defect: "D2: crashes with ReferenceError 'Unresolved alias' instead of a ConfigError",
  },
  {
    behaviour: "rejects an alias bomb ('billion laughs') as a problem, not a crash",
    input: { fixture: "yaml-alias-bomb.yaml" },
    problems: [{ path: "", line: "any", message: /alias/i }],
    defect: "D2: crashes with ReferenceError 'Excessive alias count ...' instead of a ConfigError",
  },
  {
    behaviour: "rejects an empty file, suggesting `imaging-lb init`",
    input: { fixture: "empty.yaml" },
    problems: [{ path: "", line: null, message: [/the file is empty/, /imaging-lb init/] }],
  },
  {
    behaviour: "rejects a file with only comments as empty",
    input: { fixture: "only-comments.yaml" },
    problems: [{ path: "", line: null, message: /the file is empty; expected a mapping with name, region/ }],
  },
  {
    behaviour: "rejects a top-level list",
    input: { fixture: "top-level-list.yaml" },
    problems: [{ path: "", line: 2, column: 1, message: /expected a mapping of environment fields, got a list/ }],
  },
  // --- files and encodings -------------------------------------------------------------------------
  {
    behaviour: "rejects a UTF-16 file (with BOM), saying to save it as UTF-8",
    input: {
      make: (dir) => {
        const file = join(dir, "utf16.yaml");
        writeFileSync(file, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("name: ei-one-arm\nregion: eu-west-1\n", "utf16le")]));
        return file;
      },
    },
    problems: [{ path: "", line: null, message: [/UTF-16/, /save it as UTF-8/] }],
  },
  {
    behaviour: "rejects a Latin-1 file, naming the first invalid byte and its line",
    input: {
      make: (dir) => {
        const file = join(dir, "latin1.yaml");
        writeFileSync(file, Buffer.from("name: ei-one-arm\nregion: eu-west-1\n# Standort: Z\xfcrich\n", "latin1"));
        return file;
      },
    },
    problems: [{ path: "", line: 3, message: [/not valid UTF-8 \(byte 0xfc at offset 48\)/, /save it as UTF-8/] }],
  },
  {
    behaviour: "rejects a missing file",
    input: { make: (dir) => join(dir, "no-such-site.yaml") },
    problems: [{ path: "", line: null, message: /^no such file$/ }],
  },
  {
    behaviour: "rejects a directory",
    input: {
      make: (dir) => {
        const sub = join(dir, "sites");
        mkdirSync(sub, { recursive: true });
        return sub;
      },
    },
    problems: [{ path: "", line: null, message: /is a directory, expected a YAML file/ }],
  },
  // --- network egress and HA modes ------------------------------------------------------------------
  {
    behaviour: "rejects a created VPC without a NAT subnet (the nodes could not install HAProxy at boot)",
    input: { fixture: "created-vpc-without-nat.yaml" },
    problems: [{ path: "network", line: 6, column: 1, message: /missing natSubnet: with loadBalancer\.image stock each node installs HAProxy from the OS's package mirror at first boot, so a created VPC needs a public subnet for a NAT gateway; or bake an image/ }],
  },
  {
    behaviour: "rejects a NAT subnet in an adopted VPC",
    input: { fixture: "nat-with-adopted-vpc.yaml" },
    problems: [{ path: "network.natSubnet", line: 11, column: 3, message: /only for a created VPC/ }],
  },
  {
    behaviour: "rejects route-table failover in a created VPC (the clients' route tables predate the stack)",
    input: { fixture: "route-table-created-vpc.yaml" },
    problems: [{ path: "loadBalancer.ha.vipMode", line: 19, column: 14, message: /route-table needs an adopted VPC \(network\.vpcId\)/ }],
  },
  {
    behaviour: "rejects an Elastic IP on a VIP of a secondary-ip pair (it would not follow the VIP)",
    input: { fixture: "eip-in-secondary-ip-pair.yaml" },
    problems: [{ path: "vips.web.elasticIp", line: 25, column: 43, message: /Elastic IP moves only with ha\.vipMode elastic-ip \(now secondary-ip\)/ }],
  },
  // --- issue 15: gaps a new user hit ----------------------------------------------------------------
  {
    behaviour: "rejects an availability zone of another region, naming the environment's region",
    input: { fixture: "az-other-region.yaml" },
    problems: [{ path: "network.subnet.availabilityZone", line: 10, column: 51, message: /^expected an availability zone of the environment's region eu-west-1 \(such as eu-west-1a or eu-west-1b\), got "us-east-1a" \(region us-east-1\)$/ }],
  },
  {
    behaviour: "rejects a client CIDR with host bits set, offering the network and the single host",
    input: { fixture: "cidr-host-bits-client.yaml" },
    problems: [{ path: "access.clientCidrs.0", line: 33, column: 17, message: /^expected a network address \(host bits zero\), got "10\.1\.2\.3\/8": did you mean 10\.0\.0\.0\/8 \(the whole network\) or 10\.1\.2\.3\/32 \(that one host\)\?$/ }],
  },
  {
    behaviour: "rejects a real server at a load balancer node's address",
    input: { fixture: "server-is-node.yaml" },
    problems: [{ path: "servers.ei-core-2.address", line: 26, column: 25, message: /^"10\.30\.1\.10" is the address of load balancer node 'lb-1' \(loadBalancer\.nodes\.lb-1\.internalAddress\): a real server must be another machine/ }],
  },
  {
    behaviour: "rejects a real server at a VIP's address",
    input: { fixture: "server-is-vip.yaml" },
    problems: [{ path: "servers.ei-core-1.address", line: 25, column: 25, message: /^"10\.30\.1\.101" is the address of VIP 'core' \(vips\.core\.address\): a real server must be another machine/ }],
  },
  {
    behaviour: "rejects admin CIDR 0.0.0.0/0 at the field (the guardrails would reject it only at synth)",
    input: { fixture: "admin-cidrs-world.yaml" },
    problems: [{ path: "access.adminCidrs.0", line: 34, column: 16, message: /^"0\.0\.0\.0\/0" would open the stats page and metrics \(port 8404\) to the internet, which the guardrails reject; list your admin networks$/ }],
  },
  {
    behaviour: "rejects stats port 22 at the field (the guardrails reject SSH ingress only at synth)",
    input: { fixture: "stats-port-ssh.yaml" },
    problems: [{ path: "admin.statsPort", line: 38, column: 14, message: /^port 22 would open SSH on the load balancers, which the guardrails reject \(the nodes are reached with SSM Session Manager\)/ }],
  },
  {
    behaviour: "rejects a service on port 22 at the field",
    input: { fixture: "frontend-port-ssh.yaml" },
    problems: [{ path: "services.sftp.frontendPorts.0", line: 21, column: 38, message: /^port 22 would open SSH on the load balancers/ }],
  },
  {
    behaviour: "rejects private-key material anywhere in the file at the field (the guardrails check the user data only at synth)",
    input: { fixture: "private-key-in-file.yaml" },
    problems: [{ path: "services.hl7.description", line: 22, column: 18, message: /^private-key material .* keep the PEM in Secrets Manager/ }],
  },
  {
    behaviour: "rejects a duration given as a bare number, suggesting seconds and the same time in hours",
    input: { fixture: "duration-as-number.yaml" },
    problems: [{ path: "services.hl7.timeouts.client", line: 22, column: 25, message: /^expected a duration with a unit, such as 30s, 10m or 24h, got 86400: a bare number has no unit; write 86400s for 86400 seconds \(= 24h\)/, notMessage: /expected a string/ }],
  },
  {
    behaviour: "says did-you-mean for a misspelt preset service, instead of the missing vip and frontendPorts it causes",
    input: { fixture: "preset-service-typo.yaml" },
    problems: [{ path: "services.dicon", line: 21, column: 3, message: /^unknown service \(did you mean 'dicom'\?\): preset agfa-ei defines core, dicom, hl7, xero, xero-xtend/, notMessage: /missing vip|missing frontendPorts/ }],
  },
  {
    behaviour: "tells to disable xero when xero-xtend is enabled (Xtend replaces the viewer), once",
    input: { fixture: "xtend-without-disabling-xero.yaml" },
    problems: [{ path: "services.xero-xtend.enabled", line: 22, column: 5, message: /^service 'xero-xtend' replaces service 'xero' \(same VIP 'web' and ports\): disable xero with services\.xero\.enabled: false/, notMessage: /use another port/ }],
  },
  {
    behaviour: "reports a certificate the preset needs at tls.certificates' place in the file (here: no tls, so the preset line), saying how to add it",
    input: { fixture: "preset-certificate-missing.yaml" },
    problems: [{ path: "tls.certificates.web", line: 4, column: 1, message: [/^missing certificate 'web': service 'xero' of preset agfa-ei terminates TLS with it; add it to tls\.certificates as web: \{ secretArn: "arn:aws:secretsmanager:eu-west-1:/, /services\.xero\.enabled: false/] }],
  },
  {
    behaviour: "explains a mapping started on its key's line in plain words, with the fix",
    input: { fixture: "yaml-compact-mapping.yaml" },
    problems: [{ path: "", line: 21, column: 8, message: /^YAML syntax: two "key: value" pairs on one line \("hl7: balance: active-backup"\): .*put "balance: active-backup" on its own line, indented 2 spaces more than "hl7:"/, notMessage: /compact mappings/ }],
  },
  {
    behaviour: "rejects the HA pair's peers port (10000) as a service port open to 0.0.0.0/0, at the field (guardrail admin-port-open-to-internet)",
    input: {
      make: (dir) => {
        const file = join(dir, "peers-port-open.yaml");
        const pair = readFileSync(join(__dirname, "..", "..", "examples", "agfa-ei-ha-pair.yaml"), "utf8");
        writeFileSync(file, pair.replace("services:\n", "services:\n  portal: { vip: web, frontendPorts: [10000], clientCidrs: [0.0.0.0/0] }\n"));
        return file;
      },
    },
    problems: [{ path: "services.portal.frontendPorts.0", line: 35, column: 39, message: /^port 10000 is the HAProxy peers port of the pair; open to 0\.0\.0\.0\/0 \(clientCidrs\) the guardrails reject it; use another port$/ }],
  },
  {
    behaviour: "reports a preset's certificate missing from an existing tls.certificates at that mapping's line",
    input: {
      make: (dir) => {
        const file = join(dir, "preset-certificate-other-name.yaml");
        const oneArm = readFileSync(join(__dirname, "..", "..", "examples", "agfa-ei-one-arm.yaml"), "utf8");
        writeFileSync(file, oneArm.replace("    web: { secretArn:", "    portal: { secretArn:"));
        return file;
      },
    },
    problems: [{ path: "tls.certificates.web", line: 38, column: 3, message: /^missing certificate 'web': service 'xero' of preset agfa-ei terminates TLS with it; .*\(defined: portal\)/ }],
  },
];

/** Words that betray a message written for developers, not for the person editing the file. */
const UNHELPFUL = /\bundefined\b|\[object Object\]|\brecord\b|\bNaN\b|parseAllDocuments|Invalid input/;

function loadError(file: string): ConfigError {
  try {
    loadEnvironment(file);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    assert.fail(`expected a ConfigError, got a crash:\n${e instanceof Error ? e.stack : String(e)}`);
  }
  assert.fail(`expected a ConfigError, but ${file} loaded`);
}

const show = (problems: readonly ConfigProblem[]) => problems.map((p) => `  ${formatProblem(p)}`).join("\n");

function matches(p: ConfigProblem, want: Expected): boolean {
  if (p.path !== want.path) return false;
  if (want.line === null ? p.line !== undefined : want.line !== "any" && p.line !== want.line) return false;
  if (want.column !== undefined && p.column !== want.column) return false;
  const phrases: readonly RegExp[] = want.message instanceof RegExp ? [want.message] : want.message;
  if (!phrases.every((re) => re.test(p.message))) return false;
  return !(want.notMessage && want.notMessage.test(p.message));
}

const describeExpected = (e: Expected) =>
  `path "${e.path}" line ${String(e.line)}${e.column !== undefined ? ` column ${e.column}` : ""} message ${[e.message].flat().map(String).join(" & ")}`;

describe("environment loader: bad input", () => {
  let dir: { path: string; cleanup: () => void };
  before(() => {
    dir = tempDir("config-errors");
  });
  after(() => dir.cleanup());

  it("has a fixture file for every fixture case, and a case for every fixture file", () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith(".yaml")).sort();
    const used = CASES.flatMap((c) => ("fixture" in c.input ? [c.input.fixture] : [])).sort();
    assert.deepEqual(used, files);
    assert.ok(CASES.length >= 35, `only ${CASES.length} cases`);
  });

  for (const c of CASES) {
    const title = c.defect ? `LOADER DEFECT ${c.defect.split(":")[0]}: ${c.behaviour}` : c.behaviour;
    it(title, () => {
      const file = "fixture" in c.input ? join(FIXTURES, c.input.fixture) : c.input.make(dir.path);
      const err = loadError(file);
      const context = `${c.defect ? `known defect ${c.defect}\n` : ""}reported:\n${show(err.problems)}`;

      for (const p of err.problems) {
        assert.equal(p.file, file, `problem names the wrong file\n${context}`);
        assert.ok(p.message.trim().length > 0, `empty message\n${context}`);
        assert.doesNotMatch(p.message, UNHELPFUL, `unhelpful wording\n${context}`);
        assert.ok(p.line === undefined || (Number.isInteger(p.line) && p.line >= 1), `bad line\n${context}`);
      }

      const left = [...err.problems];
      for (const want of c.problems) {
        const i = left.findIndex((p) => matches(p, want));
        assert.ok(i >= 0, `missing the expected problem: ${describeExpected(want)}\n${context}`);
        left.splice(i, 1);
      }
      assert.equal(left.length, 0, `unexpected extra problems:\n${show(left)}\n${context}`);
      assert.equal(err.problems.length, c.problems.length);
    });
  }
});

describe("environment loader: how problems read", () => {
  it("formats a problem as file:line:column path: message", () => {
    const file = join(FIXTURES, "port-70000.yaml");
    const [p] = loadError(file).problems;
    assert.equal(formatProblem(p), `${file}:22:27 services.hl7.frontendPorts.1: expected a port number 1-65535, got 70000`);
  });

  it("lists every problem in the error message, counted and sorted by line", () => {
    const file = join(FIXTURES, "aws-reserved-addresses.yaml");
    const err = loadError(file);
    const lines = err.message.split("\n");
    assert.equal(lines[0], `3 problems in ${file}:`);
    assert.deepEqual(
      lines.slice(1).map((l) => l.trim().split(" ")[0]),
      [`${file}:14:30`, `${file}:17:19`, `${file}:18:20`],
    );
    assert.doesNotMatch(err.message, /\n\s+at /, "no stack frames in the message");
  });

  it("names the file as the caller gave it", () => {
    const relative = join("test", "fixtures", "bad", "port-zero.yaml");
    const cwd = process.cwd();
    try {
      process.chdir(join(__dirname, "..", ".."));
      const err = loadError(relative);
      assert.equal(err.problems[0].file, relative);
      assert.match(err.message, /^1 problem in test\/fixtures\/bad\/port-zero\.yaml:\n {2}test\/fixtures\/bad\/port-zero\.yaml:22:21 /);
    } finally {
      process.chdir(cwd);
    }
  });
});
