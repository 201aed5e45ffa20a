/**
 * The workstation documentation says what the product does (issue 26), checked against the product:
 * the Terraform version and the outputs of docs/deploy-from-workstation.md against a synthesized stack,
 * where local state lives, the README's ConfigError fields, the HAProxy version per OS in
 * docs/troubleshooting.md, the day-2 sentence on machine fields against `imaging-lb diff`, the offline
 * section against the stack's provider pin and the CLI configuration the apply suite writes, and the
 * emulator recipe (docs/try-with-an-emulator.md) against the commands and the function the apply suite
 * really uses. Like test/docs.test.ts, each claim is read from the page.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError } from "../lib/config/errors";
import { parseEnvironment } from "../lib/load/load";
import { AMI_SSM_PARAMETERS } from "../lib/constructs/load-balancer-node";
import { EMULATOR_SSM_RENAMES, MOTO_COMMAND, MOTO_ENVIRONMENT, UBUNTU_AMI_PARAMETER, UBUNTU_AMI_STAND_IN, emulatorCopy } from "../scripts/emulator-copy";
import { providerSource } from "./terraform-apply/terraform";
import { SEED_UBUNTU_AMI_SCRIPT } from "./terraform-apply/variants";
import { requireTool, tempDir } from "./helpers/tools";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ROOT = join(__dirname, "..", "..");
const BIN = join(ROOT, "dist", "lib", "cli", "main.js");
const LAUNCHER = join(ROOT, "dist", "lib", "app-launcher.js");
const read = (page: string) => readFileSync(join(ROOT, page), "utf8");
/** A page's text with line breaks and runs of spaces as one space (claims wrap across lines). */
const flat = (page: string) => read(page).replace(/\s+/g, " ");
/** The fenced code blocks of a page. */
const blocks = (page: string) => [...read(page).matchAll(/^ *```[^\n]*\n([\s\S]*?)^ *```$/gm)].map((m) => m[1].replace(/^ {3}/gm, ""));

describe("workstation docs (issue 26)", () => {
  let work: { path: string; cleanup: () => void };
  /**
   * Stacks synthesized by the app as a user runs it: the starter (`try`, an HA pair), the two-arm example
   * with an adopted Elastic IP (`eip`) and the Network Load Balancer example (`ei-nlb`, vipMode nlb).
   */
  let stacks: Record<string, Json>;
  before(() => {
    work = tempDir("docs-workstation");
    const sites = join(work.path, "sites");
    mkdirSync(sites);
    const init = spawnSync(process.execPath, [BIN, "init", "--layout", "two-arm", "--pair", "--out", join(sites, "try.yaml")], { encoding: "utf8" });
    assert.equal(init.status, 0, init.stderr);
    writeFileSync(join(sites, "eip.yaml"), read("examples/agfa-ei-two-arm.yaml").replace("name: ei-two-arm", "name: eip").replace("web: { address: 10.20.2.100 }", "web: { address: 10.20.2.100, elasticIp: true, elasticIpAllocationId: eipalloc-0a1b2c3d4e5f60718 }"));
    writeFileSync(join(sites, "nlb.yaml"), read("examples/agfa-ei-nlb.yaml"));
    const env: NodeJS.ProcessEnv = { ...process.env, IMAGING_LB_ENVIRONMENTS: "sites/try.yaml sites/eip.yaml sites/nlb.yaml" };
    for (const name of ["CDKTF_OUTDIR", "CDKTF_CONTEXT_JSON", "CDKTF_CONTINUE_SYNTH_ON_ERROR_ANNOTATIONS"]) delete env[name];
    const synth = spawnSync(process.execPath, [LAUNCHER], { cwd: work.path, env, encoding: "utf8" });
    assert.equal(synth.status, 0, synth.stderr);
    stacks = Object.fromEntries(["try", "eip", "ei-nlb"].map((name) => [name, JSON.parse(readFileSync(join(work.path, "cdktf.out", "stacks", name, "cdk.tf.json"), "utf8")) as Json]));
  });
  after(() => work.cleanup());

  describe("docs/deploy-from-workstation.md", () => {
    it("the Terraform version it needs is the one the stacks require", () => {
      const required = stacks.try.terraform.required_version as string;
      assert.equal(required, ">= 1.11");
      for (const page of ["docs/deploy-from-workstation.md", "docs/try-with-an-emulator.md"]) {
        const claimed = /Terraform (\d+\.\d+) or later/.exec(flat(page))?.[1];
        assert.equal(`>= ${claimed}`, required, page);
      }
    });

    it("the outputs table lists every output the stacks have, and only those", () => {
      const table = [...read("docs/deploy-from-workstation.md").matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]).sort();
      const outputs = [...new Set(Object.values(stacks).flatMap((stack) => Object.keys(stack.output as Json)))].sort();
      for (const output of ["elastic_ips", "nat_public_ip", "nlb_addresses", "alarm_topic_arn"]) assert.ok(outputs.includes(output), `some stack has ${output}`);
      assert.deepEqual(table, outputs);
    });

    it("local state: terraform.<name>.tfstate in the folder cdktf runs from, not in cdktf.out (README, this page, the starter)", () => {
      assert.deepEqual(stacks.try.terraform.backend, { local: { path: join(work.path, "terraform.try.tfstate") } });
      assert.match(flat("docs/deploy-from-workstation.md"), /the local file `terraform\.<name>\.tfstate` in the folder you run `npx cdktf` from \(the checkout's root, not `cdktf\.out`\)/);
      assert.match(flat("README.md"), /Local state — without `stateBackend` — is not in `cdktf\.out`: it is `terraform\.<name>\.tfstate` in the folder you run cdktf from/);
      assert.doesNotMatch(flat("README.md"), /\(`\.terraform\/`, `\.terraform\.lock\.hcl`, local state\)/, "local state is not in a stack's folder");
      assert.match(readFileSync(join(work.path, "sites", "try.yaml"), "utf8").replace(/\n# /g, " "), /Without it the state is the local file terraform\.try\.tfstate in the folder you run cdktf from \(not in cdktf\.out\)/);
    });
  });

  it("README: ConfigError's problems carry the fields it names", () => {
    const named = /`ConfigError` \(`\.problems`: ([^)]+)\)/.exec(read("README.md"))?.[1].split(/,\s*/);
    let problem: object | undefined;
    try {
      parseEnvironment(read("examples/agfa-ei-one-arm.yaml").replace("name: ei-one-arm", "name: Bad_Name"), "bad.yaml");
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      problem = e.problems[0];
    }
    assert.deepEqual(named?.sort(), Object.keys(problem ?? {}).sort());
  });

  it("docs/troubleshooting.md: the nodes' HAProxy series per OS are the loader's defaults", () => {
    const claim = /the nodes' \((\S+) on ubuntu-24\.04 and al2023, (\S+) on debian-13, unless `loadBalancer\.haproxy\.version` says otherwise\)/.exec(flat("docs/troubleshooting.md"));
    assert.ok(claim, "the page states the series per OS");
    const version = (os: string) => parseEnvironment(read("examples/agfa-ei-one-arm.yaml").replace("instanceType: c6i.large", `instanceType: c6i.large\n  os: ${os}`), "os.yaml").loadBalancer.haproxy.version;
    assert.deepEqual([version("ubuntu-24.04"), version("al2023"), version("debian-13")], [claim[1], claim[1], claim[2]]);
  });

  it("docs/day-2-changes.md: an instance type change moves maxconn at the next reload, and imaging-lb diff says so", () => {
    assert.match(flat("docs/day-2-changes.md"), /except that `loadBalancer\.instanceType` also sets HAProxy's default maxconn, which the next reload applies at once \(hold it with `loadBalancer\.haproxy\.maxConnections`\); `imaging-lb diff` says both/);
    const bigger = join(work.path, "bigger.yaml");
    writeFileSync(bigger, read("examples/agfa-ei-one-arm.yaml").replace("instanceType: c6i.large", "instanceType: c6i.xlarge"));
    const diff = spawnSync(process.execPath, [BIN, "diff", "examples/agfa-ei-one-arm.yaml", bigger], { cwd: ROOT, encoding: "utf8" });
    assert.equal(diff.status, 0, diff.stderr);
    assert.match(diff.stdout, /^node lb-1: applied in place \(reload\)\n {2}loadBalancer\.instanceType c6i\.large → c6i\.xlarge: HAProxy's maxconn follows the instance type and changes at this reload .* hold maxconn with loadBalancer\.haproxy\.maxConnections: 20000/m);
  });

  describe("docs/deploy-from-workstation.md, without internet for Terraform", () => {
    const page = "docs/deploy-from-workstation.md";

    it("the provider version it names is the stacks' pin, a 6.x, and the instances use primary_network_interface (5.x lacks it)", () => {
      const pinned = stacks.try.terraform.required_providers.aws.version as string;
      assert.match(flat(page), new RegExp(`The stacks pin the AWS provider \`hashicorp/aws\` ${pinned.replace(/\./g, "\\.")} `));
      assert.match(pinned, /^6\./);
      const instances = Object.values(stacks.try.resource.aws_instance) as Json[];
      assert.ok(instances.length === 2 && instances.every((i) => i.primary_network_interface?.network_interface_id), "primary_network_interface on every instance");
      assert.match(flat(page), /the nodes' instances use `primary_network_interface`, which provider 5\.x does not know/);
    });

    it("the CLI configuration is the one the apply suite writes for its mirror (paths aside)", () => {
      const hcl = blocks(page).find((b) => b.includes("provider_installation"));
      assert.ok(hcl, "the page shows the CLI configuration");
      const suiteDir = tempDir("docs-rc");
      try {
        const source = providerSource(suiteDir.path);
        assert.ok(source.mirror, "this machine has the filesystem mirror the suite uses");
        const normalize = (text: string) => text.replace(/"\/[^"]*"/g, '"<path>"').replace(/\s+/g, " ").trim();
        assert.equal(normalize(hcl), normalize(readFileSync(source.cliConfigFile, "utf8")));
      } finally {
        suiteDir.cleanup();
      }
    });

    it("CHECKPOINT_DISABLE=1, as the apply and end-to-end suites run Terraform and cdktf offline", () => {
      assert.match(flat(page), /\*\*No update checks\*\*: `export CHECKPOINT_DISABLE=1`/);
      assert.match(read("test/terraform-apply/terraform.ts"), /CHECKPOINT_DISABLE: "1"/);
      assert.match(read("test/e2e/cdktf-cli.e2e.ts"), /CHECKPOINT_DISABLE: "1"/);
    });

    it("--skip-provider-lock is an option of the cdktf diff and deploy it names", () => {
      requireTool("node", "nodejs");
      assert.match(flat(page), /pass `--skip-provider-lock` to `npx cdktf diff` and `npx cdktf deploy`/);
      for (const command of ["diff", "deploy"]) {
        const help = spawnSync(join(ROOT, "node_modules", ".bin", "cdktf"), [command, "--help"], { encoding: "utf8", env: { ...process.env, CHECKPOINT_DISABLE: "1", CI: "1" } });
        assert.match(help.stdout, /--skip-provider-lock/, `cdktf ${command} --help`);
      }
    });
  });

  describe("docs/try-with-an-emulator.md: the apply suite's own commands", () => {
    const page = "docs/try-with-an-emulator.md";
    const code = () => blocks(page).join("\n");

    it("moto is started as the suite starts it, with the setting it needs", () => {
      const env = Object.entries(MOTO_ENVIRONMENT).map(([k, v]) => `${k}=${v}`).join(" ");
      assert.ok(code().includes(`${env} ${MOTO_COMMAND.join(" ")} 5000 &`), code());
    });

    it("the Ubuntu AMI: the public parameter the stack reads, the stand-in the suite seeds, the images the suite picks from", () => {
      assert.equal(UBUNTU_AMI_PARAMETER, AMI_SSM_PARAMETERS["ubuntu-24.04"]);
      assert.ok(flat(page).includes(`\`${UBUNTU_AMI_PARAMETER}\``));
      assert.match(code(), new RegExp(`aws ssm put-parameter --name ${UBUNTU_AMI_STAND_IN} `));
      const filter = /"Values": \["([^"]+)"\]/.exec(SEED_UBUNTU_AMI_SCRIPT)?.[1];
      assert.ok(filter && code().includes(`--filters 'Name=name,Values=${filter}'`), `the suite picks from ${filter}`);
    });

    it("its emulator-copy command writes exactly the copy the suite applies, and prints every change", () => {
      const line = code().split("\n").find((l) => l.startsWith("node dist/scripts/emulator-copy.js "));
      assert.ok(line, "the page runs the script");
      const args = line.split(/\s+/).slice(1);
      assert.deepEqual(args.slice(1), ["cdktf.out/stacks/try/cdk.tf.json", "--endpoint", "http://127.0.0.1:5000", "--out", "try-moto/main.tf.json"]);
      for (const extra of [[], ["--provider-version", "5.100.0"]]) {
        const run = spawnSync(process.execPath, [join(ROOT, args[0]), ...args.slice(1), ...extra], { cwd: work.path, encoding: "utf8" });
        assert.equal(run.status, 0, run.stderr);
        const expected = emulatorCopy(stacks.try, { endpoint: "http://127.0.0.1:5000", providerVersion: extra[1], ssmParameterRenames: EMULATOR_SSM_RENAMES });
        assert.deepEqual(JSON.parse(readFileSync(join(work.path, "try-moto", "main.tf.json"), "utf8")), expected.json);
        assert.equal(run.stdout, `wrote try-moto/main.tf.json: cdktf.out/stacks/try/cdk.tf.json for moto at http://127.0.0.1:5000\n${expected.deviations.map((d) => `  ${d}\n`).join("")}`);
      }
    });

    it("every workaround the copy can make is on the page, and the page lists no other", () => {
      const deviations = [
        ...emulatorCopy(stacks.try, { endpoint: "http://127.0.0.1:5000", providerVersion: "5.100.0", ssmParameterRenames: EMULATOR_SSM_RENAMES }).deviations,
        ...emulatorCopy(stacks.eip, { endpoint: "http://127.0.0.1:5000", ssmParameterRenames: EMULATOR_SSM_RENAMES }).deviations,
      ];
      // Each kind of change the function makes, the words it uses, and the page's bullet for it.
      const kinds: Array<[RegExp, string]> = [
        [/^SETUP provider: endpoints of/, "**Provider**"],
        [/public SSM parameter/, "**Ubuntu AMI parameter**"],
        [/IP protocol 112/, "**VRRP rule**"],
        [/config bucket's policy/, "**Configuration bucket policy**"],
        [/AssociateAddress ignores PrivateIpAddress/, "**Elastic IP on a VIP**"],
        [/^PROVIDER 5\.x: primary_network_interface/, "**Provider 5.100 instead of 6.x**"],
      ];
      for (const [pattern, bullet] of kinds) {
        assert.ok(deviations.some((d) => pattern.test(d)), `the copy makes the change '${bullet}' documents (${pattern})`);
        assert.ok(read(page).includes(`- ${bullet}`), `${page} lists ${bullet}`);
      }
      for (const d of deviations.filter((d) => !/^SETUP (provider version|backend)/.test(d))) {
        assert.ok(kinds.some(([pattern]) => pattern.test(d)), `undocumented change: ${d}`);
      }
      const bullets = [...read(page).matchAll(/^- (\*\*[^*]+\*\*)/gm)].map((m) => m[1]);
      assert.deepEqual(bullets.sort(), kinds.map(([, b]) => b).sort());
    });

    it("plan, apply, plan again: the Terraform commands the suite runs", () => {
      const suite = read("test/terraform-apply/stacks.apply.ts");
      for (const [doc, args] of [
        ["terraform -chdir=try-moto apply -auto-approve", '["apply", "-auto-approve"'],
        ["terraform -chdir=try-moto plan -detailed-exitcode", '["plan", "-detailed-exitcode"'],
      ]) {
        assert.ok(code().includes(doc), doc);
        assert.ok(suite.includes(args), args);
      }
    });
  });
});
