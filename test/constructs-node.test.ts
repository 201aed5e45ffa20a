/**
 * The load balancer node: ENIs per layout, VIPs on the client side, hardening of the instance, and the
 * source/destination check.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomBytes } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { TerraformStack, Testing } from "cdktf";
import { decodeUserData } from "../lib/bootstrap";
import { parseEnvironment } from "../lib/load/load";
import { ConfigError } from "../lib/config/errors";
import { ImagingLbStack, ImagingLbStackProps } from "../lib/constructs/imaging-lb-stack";
import { LoadBalancerNode, LoadBalancerNodeProps } from "../lib/constructs/load-balancer-node";
import { environment } from "./helpers/env";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t/stats-AbCdEf";
const TWO_ARM = environment({
  name: "t2",
  vips: { main: null, web: { address: "10.20.2.100" }, core: { address: "10.20.2.101" } },
  services: {
    app: null,
    web: { vip: "web", frontendPorts: [443], backendPort: 8443, mode: "tcp" },
    dicom: { vip: "core", frontendPorts: [104], mode: "tcp" },
  },
  servers: { s2: null },
  tls: null,
  admin: { statsPasswordSecretArn: SECRET },
});
const ONE_ARM = {
  ...TWO_ARM,
  name: "t1",
  network: { layout: "one-arm", vpcCidr: "10.30.0.0/16", subnet: { cidr: "10.30.1.0/24", availabilityZone: "eu-west-1a" }, natSubnet: { cidr: "10.30.0.0/24", availabilityZone: "eu-west-1a" } },
  loadBalancer: { nodes: { "lb-1": { internalAddress: "10.30.1.10" } } },
  vips: { web: { address: "10.30.1.100" }, core: { address: "10.30.1.101" } },
  servers: { s1: { address: "10.30.1.21" } },
};
/** TWO_ARM's subnets in an adopted VPC (route-table mode needs one: its route tables exist already). */
const ADOPTED_NETWORK = {
  layout: "two-arm",
  vpcId: "vpc-0a1b2c3d4e5f60718",
  vpcCidr: "10.20.0.0/16",
  internal: { cidr: "10.20.1.0/24", availabilityZone: "eu-west-1a", subnetId: "subnet-0a1b2c3d4e5f60711" },
  external: { cidr: "10.20.2.0/24", availabilityZone: "eu-west-1a", subnetId: "subnet-0a1b2c3d4e5f60722" },
};
const PAIR = {
  ...TWO_ARM,
  name: "tp",
  loadBalancer: {
    nodes: {
      "lb-a": { internalAddress: "10.20.1.10", externalAddress: "10.20.2.10" },
      "lb-b": { internalAddress: "10.20.1.11", externalAddress: "10.20.2.11" },
    },
    ha: { vipMode: "secondary-ip" },
  },
};

function synth(raw: object, props: Partial<ImagingLbStackProps> = {}): Json {
  const env = parseEnvironment(JSON.stringify(raw), "test.yaml");
  const stack = new ImagingLbStack(Testing.app(), env.name, { environment: env, ...props });
  return JSON.parse(Testing.synth(stack, true)) as Json;
}
const byPrefix = (block: Json | undefined, prefix: string): Json[] =>
  Object.entries(block ?? {})
    .filter(([id]) => id.startsWith(prefix))
    .map(([, v]) => v as Json);
const one = (block: Json | undefined, prefix: string): Json => {
  const found = byPrefix(block, prefix);
  assert.equal(found.length, 1, `exactly one resource with id prefix ${prefix}`);
  return found[0];
};

describe("load balancer node", () => {
  const oneArm = synth(ONE_ARM);
  const twoArm = synth(TWO_ARM);
  const pair = synth(PAIR);

  it("one-arm: one ENI per node, carrying the node address and the VIPs, no attachment", () => {
    const enis = Object.values(oneArm.resource.aws_network_interface) as Json[];
    assert.equal(enis.length, 1);
    assert.deepEqual(enis[0].private_ip_list, ["10.30.1.10", "10.30.1.101", "10.30.1.100"]);
    assert.equal(enis[0].private_ip_list_enabled, true);
    assert.equal(oneArm.resource.aws_network_interface_attachment, undefined);
    const instance = one(oneArm.resource.aws_instance, "node-lb-1_instance");
    assert.match(instance.primary_network_interface.network_interface_id, /aws_network_interface\.node-lb-1_eth0_/);
  });

  it("two-arm: eth0 internal is the primary ENI, eth1 external attached at device index 1 with the VIPs", () => {
    const eth0 = one(twoArm.resource.aws_network_interface, "node-lb-a_eth0");
    const eth1 = one(twoArm.resource.aws_network_interface, "node-lb-a_eth1");
    assert.match(eth0.subnet_id, /aws_subnet\.network_subnet-internal_/);
    assert.deepEqual(eth0.private_ip_list, ["10.20.1.10"]);
    assert.match(eth1.subnet_id, /aws_subnet\.network_subnet-external_/);
    assert.deepEqual(eth1.private_ip_list, ["10.20.2.10", "10.20.2.101", "10.20.2.100"]);
    const instance = one(twoArm.resource.aws_instance, "node-lb-a_instance");
    assert.match(instance.primary_network_interface.network_interface_id, /node-lb-a_eth0_/);
    assert.equal(instance.network_interface, undefined, "the deprecated network_interface block is not used");
    const attachment = one(twoArm.resource.aws_network_interface_attachment, "node-lb-a_eth1-attachment");
    assert.equal(attachment.device_index, 1);
    assert.match(attachment.network_interface_id, /node-lb-a_eth1_/);
    assert.match(attachment.instance_id, /node-lb-a_instance_/);
  });

  it("two-arm: eth0 and eth1 have separate security groups", () => {
    const eth0 = one(twoArm.resource.aws_network_interface, "node-lb-a_eth0");
    const eth1 = one(twoArm.resource.aws_network_interface, "node-lb-a_eth1");
    assert.match(eth0.security_groups[0], /node-lb-a_security-groups_eth0_/);
    assert.match(eth1.security_groups[0], /node-lb-a_security-groups_eth1_/);
    assert.equal(eth0.security_groups.length, 1);
    assert.equal(eth1.security_groups.length, 1);
  });

  it("instance: IMDSv2 only with hop limit 1, encrypted gp3 root, no key pair, base64 user data; replaced only by its generation", () => {
    for (const json of [oneArm, twoArm, pair]) {
      for (const instance of Object.values(json.resource.aws_instance) as Json[]) {
        assert.equal(instance.metadata_options.http_tokens, "required");
        assert.equal(instance.metadata_options.http_put_response_hop_limit, 1);
        assert.deepEqual(instance.root_block_device, { delete_on_termination: true, encrypted: true, volume_size: 20, volume_type: "gp3" });
        assert.equal(instance.key_name, undefined);
        assert.equal(instance.user_data, undefined);
        assert.ok(decodeUserData(instance.user_data_base64).startsWith("#cloud-config"));
        assert.equal(instance.user_data_replace_on_change, true);
        assert.deepEqual(instance.lifecycle.ignore_changes, ["ami", "instance_type", "user_data", "user_data_base64"]);
        assert.equal(instance.lifecycle.replace_triggered_by.length, 1);
        assert.match(instance.lifecycle.replace_triggered_by[0], /^terraform_data\.node-.*_generation_[0-9A-F]+$/);
        assert.match(instance.ami, /^\$\{data\.aws_ssm_parameter\..*\.insecure_value\}$/);
        assert.equal(instance.associate_public_ip_address, undefined);
      }
    }
  });

  it("AMI: Ubuntu 24.04 parameter by default, AL2023 for os al2023, Debian's own for debian-13, amiSsmParameter wins", () => {
    const names = (json: Json) => (Object.values(json.data.aws_ssm_parameter) as Json[]).map((p) => p.name);
    assert.deepEqual(names(twoArm), ["/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"]);
    const al = synth({ ...TWO_ARM, loadBalancer: { ...TWO_ARM.loadBalancer, os: "al2023" } });
    assert.deepEqual(names(al), ["/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"]);
    const debian = synth({ ...TWO_ARM, loadBalancer: { ...TWO_ARM.loadBalancer, os: "debian-13" } });
    assert.deepEqual(names(debian), ["/aws/service/debian/release/13/latest/amd64"]);
    const bootstrap = decodeUserData((Object.values(debian.resource.aws_instance) as Json[])[0].user_data_base64);
    // The node's values for the bootstrap's scripts (bootstrap.env): apt pins HAProxy to HAPROXY_PIN.* and installs PACKAGES.
    assert.match(bootstrap, /^ +HAPROXY_PIN=3\.0 /m, "Debian 13 ships HAProxy 3.0: the default pin follows it");
    assert.match(bootstrap, /^ +PACKAGES=\(haproxy socat awscli\)\n +HAPROXY_PIN=.*\n +AWS_CLI_SNAP=0 /m, "Debian's AWS CLI from apt");
    const own = synth({ ...TWO_ARM, loadBalancer: { ...TWO_ARM.loadBalancer, amiSsmParameter: "/golden/lb" } });
    assert.deepEqual(names(own), ["/golden/lb"]);
  });

  it("source/dest check stays on for a full proxy", () => {
    for (const eni of Object.values(twoArm.resource.aws_network_interface) as Json[]) assert.equal(eni.source_dest_check, true);
  });

  it("source/dest check is off on eth0 only when a service uses TProxy", () => {
    const json = synth({ ...TWO_ARM, services: { ...TWO_ARM.services, dicom: { ...TWO_ARM.services.dicom, clientAddress: "tproxy" } } });
    assert.equal(one(json.resource.aws_network_interface, "node-lb-a_eth0").source_dest_check, false);
    assert.equal(one(json.resource.aws_network_interface, "node-lb-a_eth1").source_dest_check, true);
  });

  it("HA pair: the VIPs start on the primary's eth1; both eth1 ignore private IP changes, eth0 does not", () => {
    assert.deepEqual(one(pair.resource.aws_network_interface, "node-lb-a_eth1").private_ip_list, ["10.20.2.10", "10.20.2.101", "10.20.2.100"]);
    assert.deepEqual(one(pair.resource.aws_network_interface, "node-lb-b_eth1").private_ip_list, ["10.20.2.11"]);
    for (const node of ["lb-a", "lb-b"]) {
      assert.deepEqual(one(pair.resource.aws_network_interface, `node-${node}_eth1`).lifecycle.ignore_changes, ["private_ip_list", "private_ips", "private_ips_count"]);
      assert.equal(one(pair.resource.aws_network_interface, `node-${node}_eth0`).lifecycle, undefined);
    }
  });

  it("single node: Terraform keeps managing the VIPs (no ignore_changes)", () => {
    assert.equal(one(twoArm.resource.aws_network_interface, "node-lb-a_eth1").lifecycle, undefined);
  });

  it("route-table pair: no VIP on any ENI, source/dest check off on the client side, <vip>/32 routes to the primary's eth1", () => {
    const json = synth({
      ...PAIR,
      network: ADOPTED_NETWORK,
      vips: { web: { address: "192.168.50.10" } },
      services: { web: TWO_ARM.services.web },
      loadBalancer: { ...PAIR.loadBalancer, ha: { vipMode: "route-table", routeTableIds: ["rtb-0a1b2c3d4e5f60711"] } },
    });
    for (const node of ["lb-a", "lb-b"]) {
      const eth1 = one(json.resource.aws_network_interface, `node-${node}_eth1`);
      assert.equal(eth1.private_ip_list.length, 1);
      assert.equal(eth1.source_dest_check, false);
      assert.equal(one(json.resource.aws_network_interface, `node-${node}_eth0`).source_dest_check, true);
    }
    const route = one(json.resource.aws_route, "vip-route-rtb-0a1b2c3d4e5f60711-web");
    assert.equal(route.route_table_id, "rtb-0a1b2c3d4e5f60711");
    assert.equal(route.destination_cidr_block, "192.168.50.10/32");
    assert.match(route.network_interface_id, /node-lb-a_eth1_/);
    assert.deepEqual(route.lifecycle.ignore_changes, ["network_interface_id"]);
  });

  it("route-table pair across availability zones: each node's ENIs in its own subnets", () => {
    const json = synth(
      {
        ...PAIR,
        network: ADOPTED_NETWORK,
        vips: { web: { address: "192.168.50.10" } },
        services: { web: TWO_ARM.services.web },
        loadBalancer: {
          nodes: {
            "lb-a": { internalAddress: "10.20.1.10", externalAddress: "10.20.2.10" },
            "lb-b": {
              internalAddress: "10.20.11.10",
              externalAddress: "10.20.12.10",
              internalSubnet: { cidr: "10.20.11.0/24", availabilityZone: "eu-west-1b", subnetId: "subnet-0a1b2c3d4e5f60733" },
              externalSubnet: { cidr: "10.20.12.0/24", availabilityZone: "eu-west-1b", subnetId: "subnet-0a1b2c3d4e5f60744" },
            },
          },
          ha: { vipMode: "route-table", routeTableIds: ["rtb-0a1b2c3d4e5f60711"] },
        },
      },
      { interfaceEndpoints: ["ec2"] },
    );
    assert.match(one(json.resource.aws_network_interface, "node-lb-a_eth0").subnet_id, /data\.aws_subnet\.network_subnet-internal_/);
    assert.match(one(json.resource.aws_network_interface, "node-lb-b_eth0").subnet_id, /data\.aws_subnet\.network_subnet-lb-b-internal_/);
    assert.match(one(json.resource.aws_network_interface, "node-lb-b_eth1").subnet_id, /data\.aws_subnet\.network_subnet-lb-b-external_/);
    assert.equal(one(json.data.aws_subnet, "network_subnet-lb-b-internal").id, "subnet-0a1b2c3d4e5f60733");
    const endpoint = one(json.resource.aws_vpc_endpoint, "network_endpoint-ec2_");
    assert.equal(endpoint.subnet_ids.length, 2, "one endpoint subnet per availability zone");
  });

  it("Elastic IP, single node: allocated and associated with the VIP's private address, after the internet gateway", () => {
    const json = synth({ ...TWO_ARM, name: "te", vips: { ...TWO_ARM.vips, web: { address: "10.20.2.100", elasticIp: true } } });
    const eip = one(json.resource.aws_eip, "eip-web");
    assert.equal(eip.domain, "vpc");
    assert.equal(eip.associate_with_private_ip, "10.20.2.100");
    assert.match(eip.network_interface, /node-lb-a_eth1_/);
    assert.deepEqual(eip.depends_on, [`aws_internet_gateway.${Object.keys(json.resource.aws_internet_gateway)[0]}`]);
    assert.equal(eip.lifecycle, undefined);
    assert.equal(byPrefix(json.resource.aws_eip, "eip-core").length, 0, "no EIP for a VIP without elasticIp");
  });

  it("Elastic IP, single node, adopted allocation: an association only", () => {
    const json = synth({ ...TWO_ARM, vips: { ...TWO_ARM.vips, web: { address: "10.20.2.100", elasticIp: true, elasticIpAllocationId: "eipalloc-0a1b2c3d4e5f60718" } } });
    assert.equal(byPrefix(json.resource.aws_eip, "eip-").length, 0, "no VIP Elastic IP allocated (only the NAT gateway's)");
    const association = one(json.resource.aws_eip_association, "eip-association-web");
    assert.equal(association.allocation_id, "eipalloc-0a1b2c3d4e5f60718");
    assert.equal(association.private_ip_address, "10.20.2.100");
    assert.match(association.network_interface_id, /node-lb-a_eth1_/);
  });

  it("Elastic IP, elastic-ip pair: no association in Terraform (the takeover script owns it)", () => {
    const json = synth({
      ...PAIR,
      vips: { web: { address: "10.20.2.100", elasticIp: true, elasticIpAllocationId: "eipalloc-0a1b2c3d4e5f60718" } },
      services: { web: TWO_ARM.services.web },
      loadBalancer: { ...PAIR.loadBalancer, ha: { vipMode: "elastic-ip" } },
    });
    assert.equal(byPrefix(json.resource.aws_eip, "eip-").length, 0, "no VIP Elastic IP allocated (only the NAT gateway's)");
    assert.equal(json.resource.aws_eip_association, undefined);
    assert.deepEqual(one(json.resource.aws_network_interface, "node-lb-a_eth1").private_ip_list, ["10.20.2.10", "10.20.2.100"]);
  });

  it("Elastic IP in a secondary-ip pair is refused by the loader, before any stack", () => {
    const text = JSON.stringify({ ...PAIR, vips: { ...TWO_ARM.vips, web: { address: "10.20.2.100", elasticIp: true } } });
    assert.throws(
      () => parseEnvironment(text, "pair.yaml"),
      (e: unknown) => e instanceof ConfigError && /pair\.yaml:\d+:\d+ vips\.web\.elasticIp: in an HA pair an Elastic IP moves only with ha\.vipMode elastic-ip/.test(e.message),
    );
  });

  describe("standalone, with a given subnet lookup and user data", () => {
    const env = parseEnvironment(JSON.stringify(TWO_ARM), "test.yaml");
    const build = (props: Partial<LoadBalancerNodeProps>) => {
      const stack = new TerraformStack(Testing.app(), "node");
      new AwsProvider(stack, "aws", { region: "eu-west-1" });
      new LoadBalancerNode(stack, "lb-a", {
        environment: env,
        nodeName: "lb-a",
        network: { vpcId: "vpc-0a1b2c3d4e5f60718", subnetId: (key) => `subnet-${key}` },
        instanceProfileName: "profile",
        imageId: "ami-0123456789abcdef0",
        ...props,
      });
      return stack;
    };
    const big = `#cloud-config\n# ${"x".repeat(20000)}\n`;
    const incompressible = `#cloud-config\n# ${randomBytes(24000).toString("base64")}\n`;

    it("uses the subnet lookup and the given AMI", () => {
      const json = JSON.parse(Testing.synth(build({ userData: "#cloud-config\n" }), true)) as Json;
      assert.equal(one(json.resource.aws_network_interface, "lb-a_eth1").subnet_id, "subnet-external");
      assert.equal(one(json.resource.aws_instance, "lb-a_instance").ami, "ami-0123456789abcdef0");
      assert.equal(json.data, undefined, "no SSM lookup when imageId is given");
    });

    it("user data over EC2's 16 KB limit is gzipped, decoding to the same text", () => {
      const json = JSON.parse(Testing.synth(build({ userData: big }), true)) as Json;
      const encoded = one(json.resource.aws_instance, "lb-a_instance").user_data_base64 as string;
      assert.equal(gunzipSync(Buffer.from(encoded, "base64")).toString("utf8"), big);
    });

    it("user data still over the limit after gzip fails synthesis with both sizes and the fix", () => {
      assert.throws(() => Testing.synth(build({ userData: incompressible }), true), /node 'lb-a': user data is 32\d\d\d bytes \(\d+ gzipped\); EC2 allows 16384: shrink/);
    });

    it("small user data goes out as plain base64", () => {
      const json = JSON.parse(Testing.synth(build({ userData: "#cloud-config\n" }), true)) as Json;
      assert.equal(Buffer.from(one(json.resource.aws_instance, "lb-a_instance").user_data_base64 as string, "base64").toString("utf8"), "#cloud-config\n");
    });
  });
});
