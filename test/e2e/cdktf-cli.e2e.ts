/**
 * The README's flow with the real cdktf CLI (`cdktf synth`, `cdktf diff`) and the real Terraform, in a
 * fresh project folder, up to the point where AWS is needed: it must end at AWS credentials, never at a
 * missing file, and a synth must keep what `terraform init` left in a stack's folder.
 *
 * Offline: Terraform installs the AWS provider from the machine's filesystem mirror (found below; a
 * missing mirror fails the test). The mirror holds provider 5.100.0 while the stacks pin 6.25.0, so the
 * test serves the 5.100.0 binary under the pinned version (SIMULATED provider version) and, for the one
 * plan it runs, rewrites its copy of one stack's `primary_network_interface` (6.x only) into
 * `network_interface { device_index = 0 }`, which 5.100 knows. `--skip-provider-lock` skips the extra
 * `terraform providers lock` the CLI runs on a first init, which asks registry.terraform.io directly.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { requireTool, tempDir } from "../helpers/tools";

const REPO = join(__dirname, "..", "..", "..");
const CDKTF = join(REPO, "node_modules", ".bin", "cdktf");

/** Folders that hold a Terraform filesystem mirror (the folder holding `registry.terraform.io`). */
const MIRROR_CANDIDATES = [process.env.IMAGING_LB_TF_MIRROR, "/opt/tf-plugins", "/usr/share/terraform/plugins", "/root/.terraform.d/plugins"];

function awsProviderBinary(): string {
  for (const root of MIRROR_CANDIDATES) {
    if (!root) continue;
    const versions = join(root, "registry.terraform.io", "hashicorp", "aws");
    for (const version of existsSync(versions) ? readdirSync(versions).sort().reverse() : []) {
      const dir = join(versions, version, "linux_amd64");
      const binary = existsSync(dir) ? readdirSync(dir).find((f) => f.startsWith("terraform-provider-aws_")) : undefined;
      if (binary) return join(dir, binary);
    }
  }
  throw new Error(
    `no Terraform filesystem mirror with the AWS provider in ${MIRROR_CANDIDATES.filter(Boolean).join(", ")} ` +
      "(set IMAGING_LB_TF_MIRROR to the folder holding registry.terraform.io); this test fails rather than skips",
  );
}

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, "g");

describe("cdktf CLI flow (README order: synth, diff; real cdktf CLI and Terraform, offline)", () => {
  const work = tempDir("cdktf-cli");
  after(() => work.cleanup());
  const project = join(work.path, "project");

  const cli = (args: string[], environments?: string) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CHECKPOINT_DISABLE: "1",
      CI: "1",
      TF_CLI_CONFIG_FILE: join(work.path, "terraformrc"),
      // No AWS credentials from anywhere: every path must end at the credentials check.
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_SHARED_CREDENTIALS_FILE: join(work.path, "no-credentials"),
      AWS_CONFIG_FILE: join(work.path, "no-config"),
    };
    for (const name of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "CDKTF_OUTDIR", "CDKTF_CONTEXT_JSON", "IMAGING_LB_ENVIRONMENTS"]) delete env[name];
    if (environments) env.IMAGING_LB_ENVIRONMENTS = environments;
    const r = spawnSync(CDKTF, args, { cwd: project, env, encoding: "utf8", timeout: 300_000 });
    return { status: r.status, output: `${r.stdout}\n${r.stderr}`.replace(ANSI, "") };
  };
  const stackDir = (name: string) => join(project, "cdktf.out", "stacks", name);
  const stacks = () => readdirSync(join(project, "cdktf.out", "stacks")).sort();

  it("a fresh project: cdktf synth, the README's diff (S3 backend: stops at AWS credentials, no ENOENT), synth again", () => {
    requireTool("terraform", "terraform (HashiCorp's release; not a Debian package, on PATH in the CI image)");
    assert.ok(existsSync(CDKTF), `${CDKTF} missing: run npm ci`);
    const provider = awsProviderBinary();
    // A clone as a user has it after `npm ci && npm run build`: cdktf.json, the built app, the examples.
    mkdirSync(project);
    cpSync(join(REPO, "cdktf.json"), join(project, "cdktf.json"));
    cpSync(join(REPO, "examples"), join(project, "examples"), { recursive: true });
    symlinkSync(join(REPO, "dist"), join(project, "dist"));
    symlinkSync(join(REPO, "node_modules"), join(project, "node_modules"));

    const first = cli(["synth"]);
    assert.equal(first.status, 0, first.output);
    assert.deepEqual(stacks(), ["ei-baked", "ei-ha-pair", "ei-nlb", "ei-one-arm", "ei-two-arm"]);

    // The pinned provider version, served from the mirror (SIMULATED: it is the 5.100 binary).
    const pinned = (JSON.parse(readFileSync(join(stackDir("ei-one-arm"), "cdk.tf.json"), "utf8")) as { terraform: { required_providers: { aws: { version: string } } } }).terraform.required_providers.aws.version;
    const mirror = join(work.path, "mirror");
    const target = join(mirror, "registry.terraform.io", "hashicorp", "aws", pinned, "linux_amd64");
    mkdirSync(target, { recursive: true });
    symlinkSync(provider, join(target, `terraform-provider-aws_v${pinned}_x5`));
    writeFileSync(join(work.path, "terraformrc"), `provider_installation {\n  filesystem_mirror {\n    path = "${mirror}"\n  }\n}\n`);

    // README: after a synth of every example, `IMAGING_LB_ENVIRONMENTS=<one file> npx cdktf diff <stack>`.
    // The app synthesizes one stack; the CLI, which deletes the stack folders the new manifest does not
    // name, keeps the other two (the manifest names them as the earlier synth left them).
    mkdirSync(join(stackDir("ei-two-arm"), ".terraform"), { recursive: true });
    writeFileSync(join(stackDir("ei-two-arm"), ".terraform", "marker"), "init");
    const diff = cli(["diff", "ei-ha-pair"], "examples/agfa-ei-ha-pair.yaml");
    assert.equal(diff.status, 1, diff.output);
    assert.doesNotMatch(diff.output, /ENOENT|no such file or directory/i);
    assert.match(diff.output, /imaging-lb: 1 stack synthesized/);
    assert.match(diff.output, /kept as an earlier synth left them \(not in this run\): ei-baked, ei-nlb, ei-one-arm, ei-two-arm/);
    assert.match(diff.output, /Initializing the backend/);
    assert.match(diff.output, /No valid credential sources found/, "the S3 state backend is the first thing that needs AWS");
    assert.deepEqual(stacks(), ["ei-baked", "ei-ha-pair", "ei-nlb", "ei-one-arm", "ei-two-arm"]);
    assert.equal(readFileSync(join(stackDir("ei-two-arm"), ".terraform", "marker"), "utf8"), "init", "another stack's .terraform stays");

    const second = cli(["synth"]);
    assert.equal(second.status, 0, second.output);
    assert.deepEqual(stacks(), ["ei-baked", "ei-ha-pair", "ei-nlb", "ei-one-arm", "ei-two-arm"]);
  });

  it("cdktf diff of a stack without a backend: terraform init installs the provider, the plan stops at AWS credentials; a synth keeps .terraform and the lock file", () => {
    // This test's copy of the stack, rewritten for provider 5.100 (see the file's comment).
    const file = join(stackDir("ei-one-arm"), "cdk.tf.json");
    const json = JSON.parse(readFileSync(file, "utf8")) as { resource: { aws_instance: Record<string, Record<string, unknown>> } };
    const instances = Object.values(json.resource.aws_instance);
    assert.ok(instances.length > 0 && instances.every((i) => i.primary_network_interface), "the stack uses primary_network_interface");
    for (const instance of instances) {
      const eni = instance.primary_network_interface as { network_interface_id: string };
      delete instance.primary_network_interface;
      instance.network_interface = [{ device_index: 0, network_interface_id: eni.network_interface_id }];
    }
    writeFileSync(file, JSON.stringify(json, null, 2));

    const diff = cli(["diff", "ei-one-arm", "--skip-synth", "--skip-provider-lock"]);
    assert.equal(diff.status, 1, diff.output);
    assert.doesNotMatch(diff.output, /ENOENT|no such file or directory/i);
    assert.match(diff.output, /Terraform has been successfully initialized/);
    assert.match(diff.output, /No valid credential sources found/, "the plan ends where the provider needs AWS");
    const lock = readFileSync(join(stackDir("ei-one-arm"), ".terraform.lock.hcl"), "utf8");
    assert.match(lock, /provider "registry\.terraform\.io\/hashicorp\/aws"/);
    assert.ok(existsSync(join(stackDir("ei-one-arm"), ".terraform", "providers")));

    const synth = cli(["synth"]);
    assert.equal(synth.status, 0, synth.output);
    assert.equal(readFileSync(join(stackDir("ei-one-arm"), ".terraform.lock.hcl"), "utf8"), lock, "the lock file survives a synth");
    assert.ok(existsSync(join(stackDir("ei-one-arm"), ".terraform", "providers")), ".terraform survives a synth");
    assert.match(readFileSync(file, "utf8"), /"primary_network_interface"/, "the synth rewrote the stack's own file");
  });

  it("under the real CLI: a bad file's problems printed once and the CLI stops, folders untouched; a kept stack asked for is refused before Terraform runs", () => {
    const before = readFileSync(join(stackDir("ei-two-arm"), "cdk.tf.json"), "utf8");
    const bad = join(project, "bad.yaml");
    writeFileSync(bad, readFileSync(join(REPO, "examples", "agfa-ei-one-arm.yaml"), "utf8").replace("lb-1: { internalAddress: 10.30.1.10 }", "lb-1: { internalAddress: 10.99.1.10 }"));
    const synth = cli(["synth"], "bad.yaml");
    assert.equal(synth.status, 1, synth.output);
    const problem = 'loadBalancer.nodes.lb-1.internalAddress: expected an address in the load balancer subnet 10.30.1.0/24, got "10.99.1.10"';
    assert.equal(synth.output.split(problem).length - 1, 1, `the problem once:\n${synth.output}`);
    assert.equal(synth.output.split("imaging-lb: nothing synthesized.").length - 1, 1, synth.output);
    assert.match(synth.output, /ERROR \[imaging-lb\]: nothing synthesized: the environment files have problems \(listed above\); the stack folders in cdktf\.out are as they were/);
    assert.doesNotMatch(synth.output, /Command output on std(err|out)/, "no second copy in cdktf's error summary");
    assert.deepEqual(stacks(), ["ei-baked", "ei-ha-pair", "ei-nlb", "ei-one-arm", "ei-two-arm"]);
    assert.equal(readFileSync(join(stackDir("ei-two-arm"), "cdk.tf.json"), "utf8"), before);
    assert.ok(existsSync(join(stackDir("ei-two-arm"), ".terraform", "marker")));

    const refused = cli(["diff", "ei-two-arm"], "examples/agfa-ei-one-arm.yaml");
    assert.equal(refused.status, 1, refused.output);
    assert.match(refused.output, /ERROR \[imaging-lb\]: cdktf asks for stack 'ei-two-arm', which this run did not synthesize \(IMAGING_LB_ENVIRONMENTS="examples\/agfa-ei-one-arm\.yaml": stacks ei-one-arm\)/);
    assert.doesNotMatch(refused.output, /Initializing the backend/, "Terraform does not run on files this run did not build");
    assert.deepEqual(stacks(), ["ei-baked", "ei-ha-pair", "ei-nlb", "ei-one-arm", "ei-two-arm"]);
  });
});
