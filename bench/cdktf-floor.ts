/**
 * cdktf's own floor for the synth benchmark: a bare CDKTF app like dist/bench/bare-app.js (tsc-compiled,
 * deep imports, nothing of imaging-lb), with as many resources and stacks as the app synthesizes from the
 * examples. Each stack has the provider, one VPC and one security group; the rest are ingress rules that
 * reference the group, a resource the examples have most of, with fewer attributes than most of theirs.
 * So it is a lower bound: what cdktf alone costs to construct, resolve and write that many resources.
 * `IMAGING_LB_FLOOR_RESOURCES` (all stacks together) and `IMAGING_LB_FLOOR_STACKS` set the size; it writes
 * to CDKTF_OUTDIR.
 */
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { App, TerraformStack } from "cdktf";

const resources = Number(process.env.IMAGING_LB_FLOOR_RESOURCES ?? 1000);
const stacks = Math.max(1, Number(process.env.IMAGING_LB_FLOOR_STACKS ?? 1));

const app = new App({ outdir: process.env.CDKTF_OUTDIR ?? "cdktf.out" });
for (let s = 0; s < stacks; s++) {
  const stack = new TerraformStack(app, `floor-${s}`);
  new AwsProvider(stack, "aws", { region: "eu-west-1" });
  const vpc = new Vpc(stack, "vpc", { cidrBlock: `10.${s}.0.0/16` });
  const group = new SecurityGroup(stack, "group", { vpcId: vpc.id, name: `floor-${s}`, description: "synth benchmark floor" });
  // The stacks share the resources out exactly; the VPC and the group count among them (the provider does not).
  const rules = Math.max(0, Math.floor(resources / stacks) + (s < resources % stacks ? 1 : 0) - 2);
  for (let i = 0; i < rules; i++) {
    new VpcSecurityGroupIngressRule(stack, `rule-${i}`, {
      securityGroupId: group.id,
      ipProtocol: "tcp",
      fromPort: 1024 + i,
      toPort: 1024 + i,
      cidrIpv4: "10.0.0.0/8",
      description: `rule ${i}`,
      tags: { Name: `floor-${s}-rule-${i}` },
    });
  }
}
app.synth();
