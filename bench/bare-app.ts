/**
 * The baseline of the synth benchmark: a bare CDKTF app that synthesizes one stack with the AWS provider
 * and one VPC, importing the provider by deep path as imaging-lb does. Writes to CDKTF_OUTDIR.
 */
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { App, TerraformStack } from "cdktf";

const app = new App({ outdir: process.env.CDKTF_OUTDIR ?? "cdktf.out" });
const stack = new TerraformStack(app, "bare");
new AwsProvider(stack, "aws", { region: "eu-west-1" });
new Vpc(stack, "vpc", { cidrBlock: "10.0.0.0/16" });
app.synth();
