/**
 * The example pipelines: both parse as YAML with the structure their CI system requires, and every
 * `imaging-lb`, `npm run` and `cdktf` command they call exists.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { diagramCommand } from "../lib/cli/commands/diagram";
import { initCommand } from "../lib/cli/commands/init";
import { ENVIRONMENTS_VAR } from "../main";

const ROOT = join(__dirname, "..", "..");
const PIPELINES = join(ROOT, "examples", "pipelines");
const read = (file: string) => readFileSync(join(PIPELINES, file), "utf8");
const PACKAGE = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};

/** The CLI's commands, as `imaging-lb --help` lists them, plus the ones this change adds. */
function cliCommands(): Set<string> {
  const run = spawnSync(process.execPath, [join(ROOT, "dist", "lib", "cli", "main.js"), "--help"], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  const listed = run.stdout.split("commands:\n")[1]?.split("\n\n")[0] ?? "";
  const names = listed.split("\n").map((l) => /^ {2}(\S+)/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  assert.ok(names.includes("validate"), `--help lists commands:\n${run.stdout}`);
  const added = [diagramCommand, initCommand].map((c) => c.usage.split(" ")[1]);
  return new Set([...names, ...added]);
}

/** cdktf-cli subcommands the pipelines may use. */
const CDKTF_SUBCOMMANDS = new Set(["synth", "diff", "deploy", "destroy", "list", "output"]);

interface Invocations {
  readonly imagingLb: string[];
  readonly npmRun: string[];
  readonly cdktf: string[];
}

/** Every `imaging-lb <cmd>`, `npm run <script>` and `cdktf <cmd>` in shell text. */
function invocations(scripts: readonly string[]): Invocations {
  const all = (re: RegExp) => scripts.flatMap((s) => [...s.matchAll(re)].map((m) => m[1]));
  return {
    imagingLb: all(/(?:npx |^|\s)imaging-lb ([a-z][a-z-]*)/g),
    npmRun: all(/npm run ([A-Za-z0-9:_-]+)/g),
    cdktf: all(/npx cdktf ([a-z-]+)/g),
  };
}

function assertCommandsExist(found: Invocations, where: string): void {
  const commands = cliCommands();
  for (const c of found.imagingLb) assert.ok(commands.has(c), `${where}: imaging-lb ${c} is not a command (have ${[...commands].join(", ")})`);
  for (const s of found.npmRun) assert.ok(s in PACKAGE.scripts, `${where}: npm run ${s}: no such script in package.json`);
  for (const c of found.cdktf) assert.ok(CDKTF_SUBCOMMANDS.has(c), `${where}: cdktf ${c} is not a cdktf-cli command`);
}

/** A GitHub Actions step, as far as the tests read it. */
interface Step {
  readonly uses?: string;
  readonly run?: string;
  readonly with?: Readonly<Record<string, unknown>>;
}
const withOf = (s: Step) => s.with ?? {};
type Job = Record<string, unknown> & { readonly steps?: Step[]; readonly permissions?: Record<string, string> };

/** A GitLab CI job (or template, or `default`), as far as the tests read it. */
interface GitlabJob {
  readonly stage?: string;
  readonly script?: string[];
  readonly before_script?: string[];
  readonly extends?: string;
  readonly needs?: string[];
  readonly rules?: unknown;
  readonly artifacts?: { readonly paths?: string[] };
  readonly id_tokens?: Record<string, { readonly aud: string }>;
}

describe("examples/pipelines/github-actions.yml", () => {
  const text = read("github-actions.yml");
  const workflow = parse(text) as { on: Record<string, unknown>; jobs: Record<string, Job>; env: Record<string, string>; permissions: unknown };

  it("is a workflow: on, jobs with runs-on and steps that each use an action or run a command", () => {
    assert.ok(workflow.on && typeof workflow.on === "object", "on");
    assert.deepEqual(Object.keys(workflow.on).sort(), ["pull_request", "push", "workflow_dispatch"]);
    assert.deepEqual(Object.keys(workflow.jobs), ["validate", "diff", "deploy"]);
    for (const [id, job] of Object.entries(workflow.jobs)) {
      assert.equal(typeof job["runs-on"], "string", `${id}.runs-on`);
      const steps = job.steps as Array<Record<string, unknown>>;
      assert.ok(Array.isArray(steps) && steps.length > 0, `${id}.steps`);
      for (const [i, step] of steps.entries()) {
        const uses = typeof step.uses === "string";
        const run = typeof step.run === "string";
        assert.ok(uses !== run, `${id}.steps[${i}] has exactly one of uses/run`);
        if (uses) assert.match(step.uses as string, /^[\w.-]+\/[\w.-]+@v\d+$/, `${id}.steps[${i}].uses is pinned to a major version`);
      }
      for (const need of (job.needs === undefined ? [] : [job.needs].flat()) as string[]) assert.ok(need in workflow.jobs, `${id} needs ${need}`);
    }
  });

  it("selects environments with IMAGING_LB_ENVIRONMENTS (what the app reads), default sites/*.yaml", () => {
    assert.equal(ENVIRONMENTS_VAR, "IMAGING_LB_ENVIRONMENTS");
    assert.match(workflow.env[ENVIRONMENTS_VAR], /vars\.IMAGING_LB_ENVIRONMENTS \|\| 'sites\/\*\.yaml'/);
  });

  it("plans on pull requests and deploys on main, with OIDC credentials and the artifacts kept", () => {
    const { diff, deploy } = workflow.jobs;
    assert.equal(diff.if, "github.event_name == 'pull_request'");
    assert.match(String(deploy.if), /github\.ref == 'refs\/heads\/main'/);
    for (const job of [diff, deploy]) {
      assert.equal((job.permissions as Record<string, string>)["id-token"], "write");
      const steps = job.steps ?? [];
      const aws = steps.find((s) => String(s.uses).startsWith("aws-actions/configure-aws-credentials@"));
      assert.ok(aws?.with?.["role-to-assume"], "role-to-assume");
      assert.ok(steps.some((s) => String(s.uses).startsWith("hashicorp/setup-terraform@") && withOf(s).terraform_wrapper === false));
    }
    const diffSteps = diff.steps ?? [];
    assert.ok(diffSteps.some((s) => /npx cdktf diff "\$stack"/.test(s.run ?? "")));
    assert.ok(diffSteps.some((s) => String(s.uses).startsWith("actions/upload-artifact@") && String(withOf(s).path).split("\n").includes("plan.txt")));
    assert.ok(diffSteps.some((s) => String(s.uses).startsWith("actions/github-script@") && /createComment/.test(String(withOf(s).script))));
    const deploySteps = deploy.steps ?? [];
    assert.ok(deploySteps.some((s) => /npx cdktf deploy "\$stack" --auto-approve --outputs-file "outputs-\$stack\.json"/.test(s.run ?? "") && /outputs\.json/.test(s.run ?? "")));
    assert.ok(deploySteps.some((s) => String(s.uses).startsWith("actions/upload-artifact@") && withOf(s).path === "outputs.json"));
  });

  it("calls only commands that exist", () => {
    const scripts = Object.values(workflow.jobs).flatMap((j) => (j.steps ?? []).map((s) => s.run ?? ""));
    const found = invocations(scripts);
    assert.deepEqual([...new Set(found.imagingLb)].sort(), ["diagram", "diff", "status", "validate"]);
    assert.deepEqual([...new Set(found.npmRun)], ["synth"]);
    assert.deepEqual([...new Set(found.cdktf)].sort(), ["deploy", "diff"]);
    assertCommandsExist(found, "github-actions.yml");
  });
});

describe("examples/pipelines/gitlab-ci.yml", () => {
  const raw = parse(read("gitlab-ci.yml")) as Record<string, unknown>;
  const stages = raw.stages as string[];
  const variables = raw.variables as Record<string, { readonly value: string }>;
  const RESERVED = new Set(["workflow", "stages", "variables", "default", "include", "image", "services", "cache", "before_script", "after_script"]);
  /** Jobs and templates (`.aws`) and `default`: every mapping that is not a global keyword's value. */
  const config = Object.fromEntries(Object.entries(raw).filter(([k]) => k === "default" || !RESERVED.has(k))) as Record<string, GitlabJob>;
  const jobs = Object.entries(config).filter(([k]) => k !== "default" && !k.startsWith("."));
  const job = (name: string): GitlabJob => config[name] ?? assert.fail(`no job ${name}`);
  /** A job with its `extends` template merged in (one level, as used here). */
  const expanded = (job: GitlabJob): GitlabJob => ({ ...(job.extends ? config[job.extends] : {}), ...job });

  it("is a pipeline: stages, and every job has a known stage and a script of strings", () => {
    assert.deepEqual(stages, ["validate", "diff", "deploy"]);
    assert.deepEqual(jobs.map(([k]) => k), ["validate", "diff", "deploy"]);
    for (const [name, job] of jobs) {
      assert.ok(stages.includes(String(job.stage)), `${name}.stage`);
      const full = expanded(job);
      for (const key of ["script", "before_script"] as const) {
        const lines: unknown = full[key] ?? config.default?.[key];
        assert.ok(Array.isArray(lines) && lines.length > 0, `${name}.${key}`);
        for (const line of lines) assert.equal(typeof line, "string", `${name}.${key}: every entry is a string (got ${JSON.stringify(line)})`);
      }
      if (job.extends) assert.ok(job.extends in config, `${name} extends ${job.extends}`);
      for (const need of job.needs ?? []) assert.ok(jobs.some(([k]) => k === need), `${name} needs ${need}`);
    }
  });

  it("selects environments with IMAGING_LB_ENVIRONMENTS, default sites/*.yaml", () => {
    assert.equal(variables[ENVIRONMENTS_VAR].value, "sites/*.yaml");
  });

  it("plans on merge requests and deploys on the default branch, with OIDC credentials and the artifacts kept", () => {
    assert.deepEqual(job("diff").rules, [{ if: '$CI_PIPELINE_SOURCE == "merge_request_event"' }]);
    assert.deepEqual(job("deploy").rules, [{ if: "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" }]);
    const aws = job(".aws");
    assert.equal(aws.id_tokens?.AWS_ID_TOKEN.aud, "sts.amazonaws.com");
    assert.ok(aws.before_script?.some((l) => l.includes("aws sts assume-role-with-web-identity") && l.includes('--web-identity-token "$AWS_ID_TOKEN"')));
    assert.equal(job("diff").extends, ".aws");
    assert.equal(job("deploy").extends, ".aws");
    assert.deepEqual(job("diff").artifacts?.paths, ["plan.txt", "config-diff.txt"]);
    assert.deepEqual(job("deploy").artifacts?.paths, ["outputs.json"]);
    assert.ok(job("deploy").script?.some((l) => /npx cdktf deploy "\$stack" --auto-approve --outputs-file "outputs-\$stack\.json"/.test(l)));
  });

  it("calls only commands that exist", () => {
    const scripts = Object.values(config).flatMap((j) => [...(j.before_script ?? []), ...(j.script ?? [])]);
    const found = invocations(scripts);
    assert.deepEqual([...new Set(found.imagingLb)].sort(), ["diagram", "diff", "status", "validate"]);
    assert.deepEqual([...new Set(found.npmRun)], ["synth"]);
    assert.deepEqual([...new Set(found.cdktf)].sort(), ["deploy", "diff"]);
    assertCommandsExist(found, "gitlab-ci.yml");
  });
});

describe("the cdktf CLI the pipelines and docs call", () => {
  it("is a pinned dependency of the project (so `npx cdktf` runs it, at the version of the cdktf library)", () => {
    const deps = { ...PACKAGE.dependencies, ...PACKAGE.devDependencies };
    assert.ok(deps["cdktf-cli"], "package.json has no cdktf-cli: `npx cdktf diff|deploy` would not find the cdktf command (add cdktf-cli to devDependencies)");
    assert.equal(deps["cdktf-cli"], deps.cdktf, "cdktf-cli and cdktf at the same version");
  });
});

describe("pipeline tools", () => {
  it("pin Terraform >= 1.11 in both files, as the stacks' required_version demands", () => {
    for (const file of ["github-actions.yml", "gitlab-ci.yml"]) {
      const version = /TERRAFORM_VERSION: "(\d+)\.(\d+)\.(\d+)"/.exec(read(file));
      assert.ok(version, `${file} pins TERRAFORM_VERSION`);
      assert.ok(Number(version[1]) > 1 || Number(version[2]) >= 11, `${file}: Terraform ${version.slice(1).join(".")} < 1.11`);
    }
  });

  it("GitLab checks the SHA-256 of every downloaded zip before using it, and refuses to run without the sums", () => {
    const doc = parse(read("gitlab-ci.yml")) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const script = (doc[".aws"].before_script as string[]).join("\n");
    const downloads = [...script.matchAll(/curl -fsSLo (\S+)/g)].map((m) => m[1]);
    assert.deepEqual(downloads, ["/tmp/terraform.zip", "/tmp/awscli.zip"]);
    for (const zip of downloads) {
      const check = script.indexOf(`${zip}" | sha256sum -c -`);
      const use = script.indexOf(`unzip`, script.indexOf(`curl -fsSLo ${zip}`));
      assert.ok(check > 0 && check < use, `${zip} is checked before it is unzipped`);
    }
    assert.match(script, /test -n "\$TERRAFORM_SHA256" && test -n "\$AWSCLI_SHA256" \|\| \{[^}]*exit 1; \}/);
    assert.doesNotMatch(script, /awscli-exe-linux-x86_64\.zip/, "a pinned AWS CLI version, not the moving latest zip");
  });
});

describe("example pipelines and day-2 changes", () => {
  for (const file of ["github-actions.yml", "gitlab-ci.yml"]) {
    const text = readFileSync(join(ROOT, "examples", "pipelines", file), "utf8");
    it(`${file}: the change-request job shows each node's configuration diff; the deploy goes one site at a time and waits for convergence`, () => {
      assert.match(text, /npx imaging-lb diff --git "(origin\/\$\{\{ github\.base_ref \}\}|\$base)" "\$file"/);
      assert.match(text, /npx imaging-lb diff --git HEAD~1 "\$file"/, "the deploy refuses a change that replaces a whole pair (exit 3)");
      const deploy = text.indexOf('npx cdktf deploy "$stack"');
      const status = text.indexOf('npx imaging-lb status "$file" --wait');
      assert.ok(deploy > 0 && status > deploy, "each site's deploy is followed by its status --wait, inside the per-site loop");
      assert.doesNotMatch(text, /cdktf deploy \$STACKS|cdktf deploy \$\(cat stacks\.txt\)/, "no deploy of every stack at once");
    });
  }
});
