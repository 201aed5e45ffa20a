/**
 * The baked image's EC2 Image Builder pipeline (loadBalancer.imageBuild, issue 25): imaging-lb's recipe
 * (lib/image) as a component, run on the OS's current image in the build subnet, the result an AMI in this
 * account and region. The pipeline builds when it is run (or on its schedule); Terraform never waits for a
 * build, and the environment's nodes take a new image only when its id is pinned (loadBalancer.amiId) and
 * a node's generation is raised.
 *
 * Why Image Builder and not a Packer template: it is part of the same Terraform stack and provider the
 * site already deploys (no second tool to install, license or keep up to date), its build instance is
 * reached through SSM rather than SSH, and its schedule rebuilds only when the parent image or a package
 * has an update.
 */
import { DataAwsSubnet } from "@cdktf/provider-aws/lib/data-aws-subnet";
import { IamInstanceProfile } from "@cdktf/provider-aws/lib/iam-instance-profile";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment";
import { ImagebuilderComponent } from "@cdktf/provider-aws/lib/imagebuilder-component";
import { ImagebuilderDistributionConfiguration } from "@cdktf/provider-aws/lib/imagebuilder-distribution-configuration";
import { ImagebuilderImagePipeline } from "@cdktf/provider-aws/lib/imagebuilder-image-pipeline";
import { ImagebuilderImageRecipe } from "@cdktf/provider-aws/lib/imagebuilder-image-recipe";
import { ImagebuilderInfrastructureConfiguration } from "@cdktf/provider-aws/lib/imagebuilder-infrastructure-configuration";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule";
import { Construct } from "constructs";
import { createHash } from "node:crypto";
import { stringify } from "yaml";
import { ResolvedEnvironment } from "../config/model";
import { NODE_CONTRACT } from "../contract/node-contract";
import { imageRecipe } from "../image/recipe";
import { AMI_SSM_PARAMETERS } from "./load-balancer-node";
import { partitionOf } from "./instance-role";

/** Properties of {@link ImagingLbImageBuilder}. */
export interface ImagingLbImageBuilderProps {
  /** The environment; its loadBalancer.imageBuild must be set. */
  readonly environment: ResolvedEnvironment;
}

/** Image Builder's AWS-managed policies the build instance needs: its agent's work, and SSM instead of SSH. */
const BUILD_INSTANCE_POLICIES = ["EC2InstanceProfileForImageBuilder", "AmazonSSMManagedInstanceCore"];

/** `text` as a Terraform string literal: its template sequences `${` and `%{` escaped. */
export const terraformLiteral = (text: string) => text.replace(/([$%])\{/g, (_, sign: string) => `${sign}${sign}{`);

/** `<series>.<n>`, n from the hash of `text`: Image Builder's semantic version of an immutable resource. */
export function versionOf(series: string, text: string): string {
  return `${series}.${createHash("sha256").update(text).digest().readUInt32BE(0) % 1000000}`;
}

/** Image Builder's component document: the recipe in the build phase, and what a baked image must show in the test phase. */
export function componentDocument(env: ResolvedEnvironment): string {
  const recipe = imageRecipe(env);
  // Literal blocks, never folded: the script's lines reach bash as they are.
  return stringify({
    name: `imaging-lb-${env.name}-bake`,
    description: `imaging-lb image recipe ${recipe.version}: ${recipe.os}, HAProxy ${recipe.haproxySeries}`,
    schemaVersion: 1.0,
    phases: [
      { name: "build", steps: [{ name: "Bake", action: "ExecuteBash", inputs: { commands: [recipe.script] } }] },
      {
        name: "test",
        steps: [
          {
            name: "Baked",
            action: "ExecuteBash",
            inputs: { commands: [`set -euo pipefail\ngrep -q '"recipe": "${recipe.version}"' ${NODE_CONTRACT.paths.imageManifest}\nhaproxy -v | grep -q '^HAProxy version ${recipe.haproxySeries.replace(".", "\\.")}\\.'`] },
          },
        ],
      },
    ],
  }, { lineWidth: 0, blockQuote: "literal" });
}

/**
 * The pipeline, its recipe and component, the build instance's role, security group and infrastructure,
 * and the distribution (AMI name and tags).
 */
export class ImagingLbImageBuilder extends Construct {
  readonly pipeline: ImagebuilderImagePipeline;
  readonly recipe: ImagebuilderImageRecipe;
  readonly component: ImagebuilderComponent;

  constructor(scope: Construct, id: string, props: ImagingLbImageBuilderProps) {
    super(scope, id);
    const env = props.environment;
    const build = env.loadBalancer.imageBuild;
    if (build === undefined) throw new Error(`${env.sourceFile}: loadBalancer.imageBuild is not set (the stack should not have added the image builder)`);
    const recipe = imageRecipe(env);
    const name = `imaging-lb-${env.name}`;
    const partition = partitionOf(env.region);

    const role = new IamRole(this, "role", {
      name: `${name}-image-build`,
      description: `imaging-lb ${env.name}: the image build instance (EC2 Image Builder)`,
      assumeRolePolicy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }] }),
    });
    for (const policy of BUILD_INSTANCE_POLICIES) {
      new IamRolePolicyAttachment(this, `role-${policy}`, { role: role.name, policyArn: `arn:${partition}:iam::aws:policy/${policy}` });
    }
    const profile = new IamInstanceProfile(this, "instance-profile", { name: `${name}-image-build`, role: role.name });

    // The build instance reaches the OS's package mirror and the AWS APIs; nothing reaches it (SSM, no SSH).
    const subnet = new DataAwsSubnet(this, "subnet", { id: build.subnetId });
    const group = new SecurityGroup(this, "security-group", {
      name: `${name}-image-build`,
      description: `imaging-lb ${env.name} image build: package mirrors and AWS APIs out, nothing in`,
      vpcId: subnet.vpcId,
      tags: { Name: `${env.name}-image-build` },
    });
    for (const [port, why] of [
      [80, "package mirrors (HTTP)"],
      [443, "package mirrors and AWS APIs (HTTPS)"],
    ] as const) {
      new VpcSecurityGroupEgressRule(group, `egress-tcp-${port}`, { securityGroupId: group.id, description: why, ipProtocol: "tcp", fromPort: port, toPort: port, cidrIpv4: "0.0.0.0/0" });
    }

    const infrastructure = new ImagebuilderInfrastructureConfiguration(this, "infrastructure", {
      name: `${name}-image-build`,
      description: `imaging-lb ${env.name}: where the image is built`,
      instanceProfileName: profile.name,
      instanceTypes: [build.instanceType],
      subnetId: build.subnetId,
      securityGroupIds: [group.id],
      terminateInstanceOnFailure: true,
      instanceMetadataOptions: { httpTokens: "required", httpPutResponseHopLimit: 1 },
    });

    // Components and recipes are immutable versions: the version follows the recipe's text, so a changed
    // recipe is a new version created before the old one is deleted.
    this.component = new ImagebuilderComponent(this, "component", {
      name: `${name}-bake`,
      description: `imaging-lb image recipe: ${recipe.os}, HAProxy ${recipe.haproxySeries}`,
      platform: "Linux",
      version: recipe.version,
      // Terraform would read the script's ${...} and %{...} as its own templates: escaped ($${, %%{).
      data: terraformLiteral(componentDocument(env)),
      lifecycle: { createBeforeDestroy: true },
    });
    // The parent is named by its SSM parameter (`ssm:`): each build starts from the OS's current image.
    const parentImage = `ssm:${env.loadBalancer.amiSsmParameter ?? AMI_SSM_PARAMETERS[env.loadBalancer.os]}`;
    this.recipe = new ImagebuilderImageRecipe(this, "recipe", {
      name: `${name}-${recipe.os}`,
      description: `imaging-lb ${env.name}: ${recipe.os} with HAProxy ${recipe.haproxySeries}, keepalived, socat and the AWS CLI`,
      parentImage,
      version: versionOf(recipe.haproxySeries, `${recipe.version} ${parentImage}`),
      component: [{ componentArn: this.component.arn }],
      lifecycle: { createBeforeDestroy: true },
    });
    const distribution = new ImagebuilderDistributionConfiguration(this, "distribution", {
      name: `${name}-image`,
      description: `imaging-lb ${env.name}: the baked image's name and tags`,
      distribution: [
        {
          region: env.region,
          amiDistributionConfiguration: {
            name: `${name}-${recipe.os}-{{ imagebuilder:buildDate }}`,
            description: `imaging-lb baked image: ${recipe.os}, HAProxy ${recipe.haproxySeries} (recipe ${recipe.version})`,
            amiTags: { "imaging-lb:recipe": recipe.version, "imaging-lb:os": recipe.os, "imaging-lb:haproxy": recipe.haproxySeries },
          },
        },
      ],
    });
    this.pipeline = new ImagebuilderImagePipeline(this, "pipeline", {
      name: `${name}-image`,
      description: `imaging-lb ${env.name}: bakes ${recipe.os} with HAProxy ${recipe.haproxySeries} (docs/baked-image.md)`,
      imageRecipeArn: this.recipe.arn,
      infrastructureConfigurationArn: infrastructure.arn,
      distributionConfigurationArn: distribution.arn,
      imageTestsConfiguration: { imageTestsEnabled: true, timeoutMinutes: 60 },
      ...(build.schedule !== undefined
        ? { schedule: { scheduleExpression: build.schedule, pipelineExecutionStartCondition: "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE" } }
        : {}),
    });
  }
}
