/**
 * Terraform's built-in `terraform_data` resource, as imaging-lb uses it: a value kept in state whose
 * change other resources can react to (`replace_triggered_by`).
 */
import { TerraformResource, anyToHclTerraform, anyToTerraform, hashMapper, hashMapperHcl } from "cdktf";
import { Construct } from "constructs";

/** Properties of {@link TerraformData}. */
export interface TerraformDataProps {
  /** Stored in state (`input`, reflected in `output`); changing it updates the resource in place. */
  readonly input: Readonly<Record<string, string | number | boolean>>;
}

/**
 * A `terraform_data` resource with an `input` map: the same block, address and attributes as cdktf's
 * `DataResource` synthesizes, without the validation that class adds. cdktf's `DataResource` runs
 * `terraform version` in a child process at every synth (a `ValidateTerraformVersion(">=1.4")`), so an
 * app using it cannot synthesize where Terraform is not installed, and pays a process start per
 * resource. imaging-lb needs no Terraform to synthesize; the stacks require Terraform >= 1.11 when they
 * are planned (`required_version`), which covers `terraform_data` (1.4).
 *
 * Built into Terraform: no provider, no provider block, nothing in `required_providers`.
 */
export class TerraformData extends TerraformResource {
  /** The Terraform resource type. */
  static readonly tfResourceType = "terraform_data";

  private readonly storedInput: TerraformDataProps["input"];

  constructor(scope: Construct, id: string, props: TerraformDataProps) {
    // providerName "terraform": cdktf's provider-presence check skips built-in resources.
    super(scope, id, { terraformResourceType: TerraformData.tfResourceType, terraformGeneratorMetadata: { providerName: "terraform" } });
    this.storedInput = { ...props.input };
  }

  /** The resource's id (a UUID Terraform assigns). */
  get id(): string {
    return this.getStringAttribute("id");
  }

  // The attributes exactly as cdktf's DataResource maps them (it also writes triggers_replace, always unset here).
  protected synthesizeAttributes(): Record<string, unknown> {
    return { input: hashMapper(anyToTerraform)(this.storedInput) };
  }

  protected synthesizeHclAttributes(): Record<string, unknown> {
    return { input: hashMapperHcl(anyToHclTerraform)(this.storedInput) };
  }
}
