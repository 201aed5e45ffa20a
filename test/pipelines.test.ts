/**
 * The example pipelines (examples/pipelines/): both parse as YAML with the structure their CI system
 * requires; the deploy applies the saved plans of the plan job of the same run and commit, one site at a
 * time; a change to the package plans every site; the plan and deploy jobs assume different roles whose
 * trust policies match exactly the OIDC claims GitHub and GitLab issue to those jobs; every third-party
 * action is pinned by commit SHA and every downloaded tool is checked against its SHA-256; the scripts
 * pass shellcheck and refuse what they must (run for real here, Terraform replaced by a recorder; the real
 * Terraform run is test/terraform-apply/pipeline-plan.apply.ts).
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { diagramCommand } from "../lib/cli/commands/diagram";
import { initCommand } from "../lib/cli/commands/init";
import { ENVIRONMENTS_VAR } from "../main";
import { githubSub, gitlabSub, mayAssume, stringLike, TrustPolicy } from "./helpers/oidc-trust";
import { requireTool, tempDir } from "./helpers/tools";

const ROOT = join(__dirname, "..", "..");
const PIPELINES = join(ROOT, "examples", "pipelines");
const BIN = join(ROOT, "dist", "lib", "cli", "main.js");
const read = (file: string) => readFileSync(join(PIPELINES, file), "utf8");
const PACKAGE = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};
const SCRIPTS = readdirSync(PIPELINES).filter((f) => f.endsWith(".sh")).sort();
const scriptText = SCRIPTS.map((f) => read(f));
const policy = (file: string) => JSON.parse(read(file)) as TrustPolicy;

/** The CLI's commands, as `imaging-lb --help` lists them, plus the ones this change adds. */
function cliCommands(): Set<string> {
  const run = spawnSync(process.execPath, [BIN, "--help"], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  const listed = run.stdout.split("commands:\n")[1]?.split("\n\n")[0] ?? "";
  const names = listed.split("\n").map((l) => /^ {2}(\S+)/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  assert.ok(names.includes("validate"), `--help lists commands:\n${run.stdout}`);
  const added = [diagramCommand, initCommand].map((c) => c.usage.split(" ")[1]);
  return new Set([...names, ...added]);
}

interface Invocations {
  readonly imagingLb: string[];
  readonly npmRun: string[];
  readonly cdktf: string[];
  readonly pipelineScripts: string[];
}

/** Every `imaging-lb <cmd>`, `npm run <script>`, `cdktf <cmd>` and examples/pipelines script in shell text. */
function invocations(scripts: readonly string[]): Invocations {
  const all = (re: RegExp) => scripts.flatMap((s) => [...s.matchAll(re)].map((m) => m[1]));
  return {
    imagingLb: all(/npx imaging-lb ([a-z][a-z-]*)/g),
    npmRun: all(/npm run ([A-Za-z0-9:_-]+)/g),
    cdktf: all(/npx cdktf ([a-z-]+)/g),
    pipelineScripts: all(/examples\/pipelines\/([a-z-]+\.sh)/g),
  };
}
/** `imaging-lb` subcommands the scripts call through their IMAGING_LB array. */
const scriptCommands = (text: string) => [...text.matchAll(/"\$\{imaging_lb\[@\]\}" ([a-z][a-z-]*)/g)].map((m) => m[1]);

function assertCommandsExist(found: Invocations, where: string): void {
  const commands = cliCommands();
  for (const c of found.imagingLb) assert.ok(commands.has(c), `${where}: imaging-lb ${c} is not a command (have ${[...commands].join(", ")})`);
  for (const s of found.npmRun) assert.ok(s in PACKAGE.scripts, `${where}: npm run ${s}: no such script in package.json`);
  for (const s of found.pipelineScripts) assert.ok(SCRIPTS.includes(s), `${where}: examples/pipelines/${s} does not exist`);
}

/** A GitHub Actions step, as far as the tests read it. */
interface Step {
  readonly name?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly if?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly with?: Readonly<Record<string, unknown>>;
}
const withOf = (s: Step) => s.with ?? {};
interface Job {
  readonly if?: string;
  readonly needs?: string | string[];
  readonly environment?: string | { readonly name: string };
  readonly permissions?: Record<string, string>;
  readonly env?: Record<string, string>;
  readonly steps?: Step[];
  readonly "runs-on"?: string;
}

/** A GitLab CI job (or template, or `default`), as far as the tests read it. */
interface GitlabJob {
  readonly stage?: string;
  readonly script?: string[];
  readonly before_script?: string[];
  readonly extends?: string;
  readonly needs?: Array<string | { readonly job: string; readonly artifacts?: boolean }>;
  readonly rules?: Array<{ readonly if: string }>;
  readonly variables?: Record<string, string>;
  readonly environment?: { readonly name: string };
  readonly artifacts?: { readonly paths?: string[]; readonly expose_as?: string };
  readonly id_tokens?: Record<string, { readonly aud: string }>;
}

/**
 * GitHub's `if:` for the forms used here: `github.event_name|github.ref (==|!=) 'literal'` joined by
 * `&&` (binding tighter) and `||`. Anything else fails the test (extend the evaluator with the workflow).
 */
function githubIf(expression: string, context: { readonly event: string; readonly ref: string }): boolean {
  return expression.split("||").some((conjunction) =>
    conjunction.split("&&").every((term) => {
      const m = /^\s*github\.(event_name|ref)\s*(==|!=)\s*'([^']*)'\s*$/.exec(term);
      if (!m) throw new Error(`if: ${JSON.stringify(term)} is not a form this test evaluates`);
      const actual = m[1] === "event_name" ? context.event : context.ref;
      return m[2] === "==" ? actual === m[3] : actual !== m[3];
    }),
  );
}

/** GitLab's `rules: - if:` for the forms used here: `$VAR == "literal"` and `$VAR == $VAR`. */
function gitlabIf(expression: string, variables: Readonly<Record<string, string | undefined>>): boolean {
  const m = /^\s*\$(\w+)\s*==\s*(?:"([^"]*)"|\$(\w+))\s*$/.exec(expression);
  if (!m) throw new Error(`rules if: ${JSON.stringify(expression)} is not a form this test evaluates`);
  const left = variables[m[1]];
  const right = m[2] ?? variables[m[3]];
  return left !== undefined && right !== undefined && left === right;
}

const github = parse(read("github-actions.yml")) as { on: Record<string, unknown>; jobs: Record<string, Job>; env: Record<string, string> };
const gitlabRaw = parse(read("gitlab-ci.yml")) as Record<string, unknown>;
const GITLAB_RESERVED = new Set(["workflow", "stages", "variables", "default", "include", "image", "services", "cache", "before_script", "after_script"]);
/** GitLab jobs and templates (`.aws`) and `default`: every mapping that is not a global keyword's value. */
const gitlab = Object.fromEntries(Object.entries(gitlabRaw).filter(([k]) => k === "default" || !GITLAB_RESERVED.has(k))) as Record<string, GitlabJob>;
const gitlabJobs = Object.entries(gitlab).filter(([k]) => k !== "default" && !k.startsWith("."));
const gitlabJob = (name: string): GitlabJob => gitlab[name] ?? assert.fail(`no job ${name}`);
/** A GitLab job with its `extends` template merged in (one level, as used here; variables merged). */
const expanded = (job: GitlabJob): GitlabJob => {
  const base = job.extends ? gitlab[job.extends] : {};
  return { ...base, ...job, variables: { ...base.variables, ...job.variables } };
};
/** The shell text of every GitHub step. */
const githubStepsText = Object.values(github.jobs).flatMap((j) => (j.steps ?? []).map((s) => s.run ?? ""));
/** The shell text of every GitLab job and template, one string per job (its lines run in one shell). */
const gitlabScriptText = Object.values(gitlab).map((j) => [...(j.before_script ?? []), ...(j.script ?? [])].join("\n"));

describe("examples/pipelines/github-actions.yml", () => {
  it("is a workflow: on, jobs with runs-on and steps that each use an action or run a command", () => {
    assert.deepEqual(Object.keys(github.on).sort(), ["pull_request", "push", "workflow_dispatch"]);
    assert.deepEqual(Object.keys(github.jobs), ["validate", "plan", "deploy"]);
    for (const [id, job] of Object.entries(github.jobs)) {
      assert.equal(typeof job["runs-on"], "string", `${id}.runs-on`);
      const steps = job.steps as Array<Record<string, unknown>>;
      assert.ok(Array.isArray(steps) && steps.length > 0, `${id}.steps`);
      for (const [i, step] of steps.entries()) assert.ok((typeof step.uses === "string") !== (typeof step.run === "string"), `${id}.steps[${i}] has exactly one of uses/run`);
      for (const need of [job.needs ?? []].flat()) assert.ok(need in github.jobs, `${id} needs ${need}`);
    }
  });

  it("runs on a change to the sites and to the package itself (what environments.sh treats as a package change)", () => {
    const watched = read("environments.sh").match(/^package_paths=\(([^)]*)\)/m)?.[1].split(/\s+/).filter(Boolean).map((p) => p.replace(/'/g, "")) ?? assert.fail("package_paths");
    for (const event of ["pull_request", "push"]) {
      const paths = (github.on[event] as { paths: string[] }).paths;
      for (const path of ["sites/**", ...watched.filter((p) => p !== ".gitlab-ci.yml")]) assert.ok(paths.includes(path), `on.${event}.paths has ${path}`);
    }
  });

  it("selects environments with IMAGING_LB_ENVIRONMENTS (what the app reads), default sites/*.yaml", () => {
    assert.equal(ENVIRONMENTS_VAR, "IMAGING_LB_ENVIRONMENTS");
    assert.match(github.env[ENVIRONMENTS_VAR], /vars\.IMAGING_LB_ENVIRONMENTS \|\| 'sites\/\*\.yaml'/);
  });

  it("the plan job synthesizes what environments.sh selects, saves the plans and uploads them for this commit; on a pull request it posts the plan", () => {
    const plan = github.jobs.plan;
    const steps = plan.steps ?? [];
    const runs = steps.map((s) => s.run ?? "").join("\n");
    assert.match(runs, /IMAGING_LB_ENVIRONMENTS="\$\(examples\/pipelines\/environments\.sh "\$BASE"\)"\n\s*export IMAGING_LB_ENVIRONMENTS[\s\S]*npm run synth/);
    assert.match(runs, /examples\/pipelines\/plan-sites\.sh --base "\$BASE" --out plans/);
    assert.equal(plan.env?.BASE, "${{ github.event.pull_request.base.sha || github.event.before || 'HEAD~1' }}");
    const checkout = steps.find((s) => String(s.uses).startsWith("actions/checkout@"));
    assert.equal(withOf(checkout ?? {})["fetch-depth"], 0, "the base commit is in the clone");
    const upload = steps.find((s) => String(s.uses).startsWith("actions/upload-artifact@"));
    assert.deepEqual(withOf(upload ?? {}), { name: "plans-${{ github.sha }}", path: "plans/", "if-no-files-found": "error", "retention-days": 30 });
    assert.ok(steps.some((s) => (s.run ?? "").includes('head -c 900000 plans/plan.txt') && (s.run ?? "").includes("GITHUB_STEP_SUMMARY")), "the plan is in the run the reviewers approve");
    const comment = steps.find((s) => String(s.uses).startsWith("actions/github-script@"));
    assert.equal(comment?.if, "github.event_name == 'pull_request'");
    assert.match(String(withOf(comment ?? {}).script), /readFileSync\("plans\/plan\.txt"[\s\S]*createComment/);
  });

  it("the deploy job (production) downloads that artifact of this run and applies it with apply-sites.sh for this commit; it never plans", () => {
    const deploy = github.jobs.deploy;
    assert.deepEqual(deploy.needs, ["validate", "plan"]);
    assert.equal(deploy.environment, "production");
    const steps = deploy.steps ?? [];
    const download = steps.find((s) => String(s.uses).startsWith("actions/download-artifact@"));
    assert.deepEqual(withOf(download ?? {}), { name: "plans-${{ github.sha }}", path: "plans" }, "no run-id: the artifact of this run");
    const apply = steps.findIndex((s) => s.run === 'examples/pipelines/apply-sites.sh --expect-commit "$GITHUB_SHA" --plans plans');
    assert.ok(apply > steps.indexOf(download!), "applies after the download");
    const text = steps.map((s) => s.run ?? "").join("\n");
    assert.doesNotMatch(text, /terraform plan|cdktf (deploy|diff)|plan-sites/, "the deploy never plans");
    assert.ok(steps.some((s) => String(s.uses).startsWith("actions/upload-artifact@") && withOf(s).path === "outputs.json"));
  });

  it("calls only commands and scripts that exist", () => {
    const found = invocations(githubStepsText);
    assert.deepEqual([...new Set(found.imagingLb)].sort(), ["diagram", "validate"]);
    assert.deepEqual([...new Set(found.npmRun)], ["synth"]);
    assert.deepEqual([...new Set(found.pipelineScripts)].sort(), ["apply-sites.sh", "environments.sh", "plan-sites.sh"]);
    assertCommandsExist(found, "github-actions.yml");
  });
});

describe("examples/pipelines/gitlab-ci.yml", () => {
  const stages = gitlabRaw.stages as string[];
  const variables = gitlabRaw.variables as Record<string, { readonly value: string }>;

  it("is a pipeline: stages, and every job has a known stage and a script of strings", () => {
    assert.deepEqual(stages, ["validate", "plan", "deploy"]);
    assert.deepEqual(gitlabJobs.map(([k]) => k), ["validate", "plan", "deploy"]);
    for (const [name, job] of gitlabJobs) {
      assert.ok(stages.includes(String(job.stage)), `${name}.stage`);
      const full = expanded(job);
      for (const key of ["script", "before_script"] as const) {
        const lines: unknown = full[key] ?? gitlab.default?.[key];
        assert.ok(Array.isArray(lines) && lines.length > 0, `${name}.${key}`);
        for (const line of lines) assert.equal(typeof line, "string", `${name}.${key}: every entry is a string (got ${JSON.stringify(line)})`);
      }
      if (job.extends) assert.ok(job.extends in gitlab, `${name} extends ${job.extends}`);
      for (const need of job.needs ?? []) assert.ok(gitlabJobs.some(([k]) => k === (typeof need === "string" ? need : need.job)), `${name} needs ${JSON.stringify(need)}`);
    }
  });

  it("selects environments with IMAGING_LB_ENVIRONMENTS, default sites/*.yaml", () => {
    assert.equal(variables[ENVIRONMENTS_VAR].value, "sites/*.yaml");
  });

  it("plans on merge requests and the default branch, saving the plans as the job's artifact", () => {
    const plan = gitlabJob("plan");
    assert.deepEqual(plan.rules, [{ if: '$CI_PIPELINE_SOURCE == "merge_request_event"' }, { if: "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" }]);
    assert.deepEqual(plan.script, [
      'BASE="${CI_MERGE_REQUEST_DIFF_BASE_SHA:-$CI_COMMIT_BEFORE_SHA}"',
      'IMAGING_LB_ENVIRONMENTS="$(examples/pipelines/environments.sh "$BASE")"',
      "export IMAGING_LB_ENVIRONMENTS",
      "npm run synth",
      'examples/pipelines/plan-sites.sh --base "$BASE" --out plans',
      "cat plans/plan.txt",
    ]);
    assert.equal(plan.variables?.GIT_DEPTH, "0");
    assert.deepEqual(plan.artifacts, { expose_as: "terraform plan", paths: ["plans/"], expire_in: "30 days" });
  });

  it("the deploy (production, default branch) takes the plan job's artifact through needs and applies it for this commit", () => {
    const deploy = gitlabJob("deploy");
    assert.deepEqual(deploy.rules, [{ if: "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" }]);
    assert.deepEqual(deploy.needs, [{ job: "plan", artifacts: true }]);
    assert.equal(deploy.environment?.name, "production");
    assert.deepEqual(deploy.script, ['examples/pipelines/apply-sites.sh --expect-commit "$CI_COMMIT_SHA" --plans plans']);
    assert.deepEqual(deploy.artifacts?.paths, ["outputs.json"]);
    const aws = gitlabJob(".aws");
    assert.ok(aws.before_script?.some((l) => l.includes("aws sts assume-role-with-web-identity") && l.includes('--role-arn "$AWS_ROLE_ARN"') && l.includes('--web-identity-token "$AWS_ID_TOKEN"')));
  });

  it("calls only commands and scripts that exist", () => {
    const found = invocations(gitlabScriptText);
    assert.deepEqual([...new Set(found.imagingLb)].sort(), ["diagram", "validate"]);
    assert.deepEqual([...new Set(found.npmRun)], ["synth"]);
    assert.deepEqual([...new Set(found.pipelineScripts)].sort(), ["apply-sites.sh", "environments.sh", "plan-sites.sh"]);
    assertCommandsExist(found, "gitlab-ci.yml");
  });
});

describe("separate roles whose OIDC trust matches exactly the jobs that use them", () => {
  const GITHUB_ISSUER = "token.actions.githubusercontent.com";
  const GITLAB_ISSUER = "gitlab.com";
  const REPO = "OWNER/REPO";
  const PROJECT = "GROUP/PROJECT";
  const githubPolicies: Record<string, TrustPolicy> = { AWS_PLAN_ROLE_ARN: policy("iam-trust-github-plan.json"), AWS_DEPLOY_ROLE_ARN: policy("iam-trust-github-deploy.json") };
  const gitlabPolicies: Record<string, TrustPolicy> = { AWS_PLAN_ROLE_ARN: policy("iam-trust-gitlab-plan.json"), AWS_DEPLOY_ROLE_ARN: policy("iam-trust-gitlab-deploy.json") };

  it("the IAM condition matcher: StringEquals exact, StringLike with * and ?, all keys, any value, unknown claims refused", () => {
    assert.ok(stringLike("ref:*", "ref:"));
    assert.ok(stringLike("a?c", "abc"));
    assert.ok(!stringLike("a?c", "ac"));
    assert.ok(!stringLike("repo:o/r:*", "repo:o/rx:pull_request"));
    assert.ok(stringLike("a.b", "a.b") && !stringLike("a.b", "axb"), "dots are literal");
    const p = (condition: Record<string, Record<string, string | string[]>>): TrustPolicy => ({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { Federated: "arn:aws:iam::ACCOUNT_ID:oidc-provider/idp" }, Action: "sts:AssumeRoleWithWebIdentity", Condition: condition }],
    });
    const token = { issuer: "idp", aud: "sts.amazonaws.com", sub: "x:1" };
    assert.ok(mayAssume(p({ StringEquals: { "idp:aud": "sts.amazonaws.com", "idp:sub": ["x:2", "x:1"] } }), token));
    assert.ok(!mayAssume(p({ StringEquals: { "idp:aud": "sts.amazonaws.com", "idp:sub": "X:1" } }), token), "case-sensitive");
    assert.ok(!mayAssume(p({ StringEquals: { "idp:aud": "other" }, StringLike: { "idp:sub": "x:*" } }), token), "every operator must hold");
    assert.ok(!mayAssume(p({ StringEquals: { "idp:aud": "sts.amazonaws.com" } }), { ...token, issuer: "other-idp" }), "another provider");
    assert.throws(() => mayAssume(p({ StringEquals: { "idp:environment": "production" } }), token), /IAM does not offer the claim 'environment'/);
    assert.throws(() => mayAssume(p({ StringNotEquals: { "idp:sub": "x" } }), token), /not modelled/);
  });

  it("GitHub: every job that uses a role can assume it, with the sub GitHub issues to that job; the deploy role refuses pull requests and the plan job", () => {
    const runs = [
      { event: "pull_request", ref: "refs/pull/7/merge" },
      { event: "push", ref: "refs/heads/main" },
      { event: "workflow_dispatch", ref: "refs/heads/main" },
      { event: "workflow_dispatch", ref: "refs/heads/feature" },
    ];
    const used: Record<string, Set<string>> = {};
    for (const run of runs) {
      for (const [id, job] of Object.entries(github.jobs)) {
        if (job.if !== undefined && !githubIf(job.if, run)) continue;
        const needs = [job.needs ?? []].flat();
        if (needs.some((n) => github.jobs[n].if !== undefined && !githubIf(github.jobs[n].if!, run))) continue;
        const aws = (job.steps ?? []).find((s) => String(s.uses).startsWith("aws-actions/configure-aws-credentials@"));
        if (!aws) continue;
        assert.equal(job.permissions?.["id-token"], "write", `${id} may request an OIDC token`);
        const roleVar = /^\$\{\{ vars\.(\w+) \}\}$/.exec(String(withOf(aws)["role-to-assume"]))?.[1] ?? assert.fail(`${id}: role-to-assume is a repository variable`);
        (used[id] ??= new Set()).add(roleVar);
        const environment = typeof job.environment === "object" ? job.environment.name : job.environment;
        const token = { issuer: GITHUB_ISSUER, aud: String(withOf(aws).audience ?? "sts.amazonaws.com"), sub: githubSub({ repository: REPO, ...run, environment }) };
        const own = githubPolicies[roleVar] ?? assert.fail(`${id}: ${roleVar} has no trust policy in examples/pipelines`);
        assert.ok(mayAssume(own, token), `${id} on ${run.event} ${run.ref} (sub ${token.sub}) cannot assume its role ${roleVar}`);
        for (const [other, otherPolicy] of Object.entries(githubPolicies)) {
          if (other !== roleVar) assert.ok(!mayAssume(otherPolicy, token), `${id} on ${run.event} (sub ${token.sub}) could also assume ${other}`);
        }
        if (run.event === "pull_request") assert.ok(!mayAssume(githubPolicies.AWS_DEPLOY_ROLE_ARN, token), "the deploy role is not assumable from a pull_request job");
      }
    }
    assert.deepEqual(Object.fromEntries(Object.entries(used).map(([k, v]) => [k, [...v]])), { plan: ["AWS_PLAN_ROLE_ARN"], deploy: ["AWS_DEPLOY_ROLE_ARN"] });
    // The subs as GitHub documents them (environment wins over the event and ref).
    assert.equal(githubSub({ repository: REPO, event: "push", ref: "refs/heads/main", environment: "production" }), "repo:OWNER/REPO:environment:production");
    assert.ok(!mayAssume(githubPolicies.AWS_DEPLOY_ROLE_ARN, { issuer: GITHUB_ISSUER, aud: "sts.amazonaws.com", sub: "repo:OWNER/REPO:ref:refs/heads/main" }), "not main's plan job");
    assert.ok(!mayAssume(githubPolicies.AWS_DEPLOY_ROLE_ARN, { issuer: GITHUB_ISSUER, aud: "sts.amazonaws.com", sub: "repo:OTHER/REPO:environment:production" }), "not another repository");
    assert.ok(!mayAssume(githubPolicies.AWS_PLAN_ROLE_ARN, { issuer: GITHUB_ISSUER, aud: "https://github.com/OWNER", sub: "repo:OWNER/REPO:pull_request" }), "only the STS audience");
    // What IAM cannot see: a pull request that edits the workflow to name `production` gets that sub;
    // GitHub's deployment-branch rule on the environment is what stops it, so the README requires it.
    assert.ok(mayAssume(githubPolicies.AWS_DEPLOY_ROLE_ARN, { issuer: GITHUB_ISSUER, aud: "sts.amazonaws.com", sub: githubSub({ repository: REPO, event: "pull_request", ref: "refs/pull/7/merge", environment: "production" }) }));
    assert.match(read("README.md"), /deployment branches[^.]*\bmain\b/i);
  });

  it("GitLab: every job that uses a role can assume it; the deploy role refuses merge request pipelines", () => {
    const aud = gitlabJob(".aws").id_tokens?.AWS_ID_TOKEN.aud ?? assert.fail("id_tokens.AWS_ID_TOKEN.aud");
    const workflow = (gitlabRaw.workflow as { rules: Array<{ if: string }> }).rules;
    const pipelines = [
      { CI_PIPELINE_SOURCE: "merge_request_event", CI_COMMIT_REF_NAME: "feature", CI_DEFAULT_BRANCH: "main" },
      { CI_PIPELINE_SOURCE: "push", CI_COMMIT_BRANCH: "main", CI_COMMIT_REF_NAME: "main", CI_DEFAULT_BRANCH: "main" },
      { CI_PIPELINE_SOURCE: "web", CI_COMMIT_BRANCH: "main", CI_COMMIT_REF_NAME: "main", CI_DEFAULT_BRANCH: "main" },
      { CI_PIPELINE_SOURCE: "push", CI_COMMIT_BRANCH: "feature", CI_COMMIT_REF_NAME: "feature", CI_DEFAULT_BRANCH: "main" },
    ];
    const used: Record<string, Set<string>> = {};
    for (const vars of pipelines) {
      if (!workflow.some((r) => gitlabIf(r.if, vars))) continue;
      for (const [name, job] of gitlabJobs) {
        if (job.rules && !job.rules.some((r) => gitlabIf(r.if, vars))) continue;
        const full = expanded(job);
        if (!full.id_tokens) continue;
        const roleVar = /^\$(\w+)$/.exec(full.variables?.AWS_ROLE_ARN ?? "")?.[1] ?? assert.fail(`${name}: AWS_ROLE_ARN is set from a CI/CD variable`);
        (used[name] ??= new Set()).add(roleVar);
        const token = { issuer: GITLAB_ISSUER, aud, sub: gitlabSub(PROJECT, vars.CI_COMMIT_REF_NAME) };
        const own = gitlabPolicies[roleVar] ?? assert.fail(`${name}: ${roleVar} has no trust policy`);
        assert.ok(mayAssume(own, token), `${name} in a ${vars.CI_PIPELINE_SOURCE} pipeline (sub ${token.sub}) cannot assume ${roleVar}`);
        if (vars.CI_PIPELINE_SOURCE === "merge_request_event") assert.ok(!mayAssume(gitlabPolicies.AWS_DEPLOY_ROLE_ARN, token), "the deploy role is not assumable from a merge request pipeline");
      }
    }
    assert.deepEqual(Object.fromEntries(Object.entries(used).map(([k, v]) => [k, [...v]])), { plan: ["AWS_PLAN_ROLE_ARN"], deploy: ["AWS_DEPLOY_ROLE_ARN"] });
    assert.ok(!mayAssume(gitlabPolicies.AWS_DEPLOY_ROLE_ARN, { issuer: GITLAB_ISSUER, aud, sub: gitlabSub(PROJECT, "main", "tag") }), "not a tag named main");
    assert.ok(!mayAssume(gitlabPolicies.AWS_DEPLOY_ROLE_ARN, { issuer: GITLAB_ISSUER, aud, sub: gitlabSub("GROUP/OTHER", "main") }), "not another project");
    assert.ok(!mayAssume(gitlabPolicies.AWS_PLAN_ROLE_ARN, { issuer: GITLAB_ISSUER, aud, sub: gitlabSub("GROUP/PROJECT-FORK", "feature") }), "not a look-alike project path");
    // What IAM cannot see: GitLab's `environment` and `ref_protected` claims are not condition keys, so any
    // job of the default branch (the plan job there too) matches the deploy role; branch protection is the guard.
    assert.ok(mayAssume(gitlabPolicies.AWS_DEPLOY_ROLE_ARN, { issuer: GITLAB_ISSUER, aud, sub: gitlabSub(PROJECT, "main") }));
    assert.match(read("README.md"), /`ref_protected`/);
  });

  it("the plan role's permissions read, take the state lock file, and never write the state", () => {
    const permissions = JSON.parse(read("iam-plan-permissions.json")) as { Statement: Array<{ Effect: string; Action: string | string[]; Resource: string | string[] }> };
    const allowed = (action: string, resource: string) =>
      !permissions.Statement.some((s) => s.Effect === "Deny" && [s.Action].flat().some((a) => stringLike(a, action)) && [s.Resource].flat().some((r) => stringLike(r, resource))) &&
      permissions.Statement.some((s) => s.Effect === "Allow" && [s.Action].flat().some((a) => stringLike(a, action)) && [s.Resource].flat().some((r) => stringLike(r, resource)));
    const state = "arn:aws:s3:::STATE_BUCKET/imaging-lb/st-mary.tfstate";
    assert.ok(allowed("s3:GetObject", state));
    assert.ok(allowed("s3:ListBucket", "arn:aws:s3:::STATE_BUCKET"));
    for (const action of ["s3:PutObject", "s3:DeleteObject", "s3:GetObject"]) assert.ok(allowed(action, `${state}.tflock`), `${action} on the lock file: a plan takes the lock`);
    for (const action of ["s3:PutObject", "s3:DeleteObject"]) assert.ok(!allowed(action, state), `${action} on the state`);
    assert.ok(allowed("ec2:DescribeInstances", "*"));
    for (const action of ["ec2:RunInstances", "ec2:TerminateInstances", "iam:PutRolePolicy", "iam:PassRole", "s3:PutObject", "ssm:PutParameter"]) {
      assert.ok(!allowed(action, "*") && !allowed(action, "arn:aws:s3:::imaging-lb-st-mary-123456789012/x"), `${action} is not allowed`);
    }
  });
});

describe("pinned actions and checked downloads", () => {
  /** The pins, verified against the tags of each action's repository (git rev-parse <tag>^{commit}). */
  const VERIFIED: Record<string, { sha: string; tag: string }> = {
    "actions/checkout": { sha: "11d5960a326750d5838078e36cf38b85af677262", tag: "v4.4.0" },
    "actions/setup-node": { sha: "49933ea5288caeca8642d1e84afbd3f7d6820020", tag: "v4.4.0" },
    "actions/upload-artifact": { sha: "ea165f8d65b6e75b540449e92b4886f43607fa02", tag: "v4.6.2" },
    "actions/download-artifact": { sha: "d3f86a106a0bac45b974a628896c90dbdf5c8093", tag: "v4.3.0" },
    "aws-actions/configure-aws-credentials": { sha: "7474bc4690e29a8392af63c5b98e7449536d5c3a", tag: "v4.3.1" },
    "actions/github-script": { sha: "f28e40c7f34bde8b3046d885e986cb6290c5673b", tag: "v7.1.0" },
  };

  it("every `uses:` names a full 40-hex commit SHA with its release tag in a comment, the verified one", () => {
    const lines = read("github-actions.yml").split("\n").filter((l) => /^\s*(- )?uses:/.test(l));
    assert.ok(lines.length >= 10, "the workflow uses actions");
    for (const line of lines) {
      const m = /uses: ([\w.-]+\/[\w.-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$/.exec(line);
      assert.ok(m, `not pinned by commit SHA with a # vX.Y.Z comment: ${line.trim()}`);
      assert.deepEqual({ sha: m[2], tag: m[3] }, VERIFIED[m[1]], `${m[1]}: the pin is the verified commit of its tag`);
    }
    assert.ok(!lines.some((l) => l.includes("hashicorp/setup-terraform")), "setup-terraform checks no checksum: Terraform is downloaded and checked instead");
  });

  for (const [file, texts] of [["github-actions.yml", githubStepsText], ["gitlab-ci.yml", gitlabScriptText]] as const) {
    it(`${file}: every downloaded file is checked with sha256sum -c before it is unpacked`, () => {
      const joined = texts.join("\n");
      const downloads = [...joined.matchAll(/curl -fsSLo (\S+) /g)].map((m) => m[1].replace(/"/g, ""));
      assert.ok(downloads.length >= 1, "downloads Terraform");
      assert.doesNotMatch(joined, /\bwget\b|curl (?!-fsSLo )/, "every download goes through `curl -fsSLo FILE`");
      for (const text of texts) {
        for (const [, quoted] of text.matchAll(/curl -fsSLo (\S+) /g)) {
          const zip = quoted.replace(/"/g, "");
          const fetched = text.indexOf(`curl -fsSLo ${quoted}`);
          const checked = text.indexOf(`${zip}" | sha256sum -c -`, fetched);
          const used = text.indexOf("unzip", fetched);
          assert.ok(checked > fetched && used > checked, `${zip} is checked before it is unzipped`);
        }
      }
    });
  }

  it("Terraform >= 1.11 pinned in both files with the same SHA-256, and GitLab refuses to run without its sums", () => {
    const pins = ["github-actions.yml", "gitlab-ci.yml"].map((file) => {
      const text = read(file);
      const version = /TERRAFORM_VERSION: "(\d+)\.(\d+)\.(\d+)"/.exec(text) ?? assert.fail(`${file} pins TERRAFORM_VERSION`);
      assert.ok(Number(version[1]) > 1 || Number(version[2]) >= 11, `${file}: Terraform ${version.slice(1).join(".")} < 1.11`);
      const sum = /TERRAFORM_SHA256: "([0-9a-f]{64})"/.exec(text) ?? assert.fail(`${file} carries Terraform's SHA-256`);
      return `${version.slice(1).join(".")} ${sum[1]}`;
    });
    assert.equal(pins[0], pins[1]);
    assert.equal(pins[0], "1.11.4 1ce994251c00281d6845f0f268637ba50c0005657eb3cf096b92f753b42ef4dc", "terraform_1.11.4_linux_amd64.zip");
    const script = (gitlabJob(".aws").before_script ?? []).join("\n");
    assert.match(script, /test -n "\$TERRAFORM_SHA256" && test -n "\$AWSCLI_SHA256" \|\| \{[^}]*exit 1; \}/);
    assert.doesNotMatch(script, /awscli-exe-linux-x86_64\.zip/, "a pinned AWS CLI version, not the moving latest zip");
  });
});

describe("the pipeline scripts", () => {
  it("pass shellcheck", () => {
    const shellcheck = requireTool("shellcheck", "shellcheck");
    assert.deepEqual(SCRIPTS, ["apply-sites.sh", "environments.sh", "plan-sites.sh"]);
    const run = spawnSync(shellcheck, ["--severity=style", ...SCRIPTS.map((f) => join(PIPELINES, f))], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    for (const [i, text] of scriptText.entries()) assert.match(text, /^#!\/usr\/bin\/env bash\n[\s\S]*^set -euo pipefail$/m, SCRIPTS[i]);
  });

  it("call only imaging-lb commands that exist, and never deploy without a saved plan", () => {
    const commands = cliCommands();
    for (const [i, text] of scriptText.entries()) for (const c of scriptCommands(text)) assert.ok(commands.has(c), `${SCRIPTS[i]}: imaging-lb ${c}`);
    const apply = read("apply-sites.sh");
    assert.deepEqual(scriptCommands(apply), ["status"]);
    assert.deepEqual(scriptCommands(read("plan-sites.sh")), ["diff"]);
    assert.deepEqual([...apply.matchAll(/terraform -chdir="\$dir" (\w+)/g)].map((m) => m[1]), ["init", "apply", "output"]);
    assert.match(apply, /terraform -chdir="\$dir" apply -input=false -no-color -lock-timeout=5m tfplan;/);
    assert.match(read("plan-sites.sh"), /terraform -chdir="\$dir" plan -input=false -no-color -lock-timeout=5m -out=tfplan/);
  });

  describe("run for real (git, bash, the imaging-lb CLI; Terraform replaced by a recorder)", () => {
    let dir: { path: string; cleanup: () => void };
    let repo: string;
    let calls: string;
    let env: NodeJS.ProcessEnv;
    const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, encoding: "utf8", env }).trim();
    const commitAll = (message: string) => {
      git("add", "-A");
      git("commit", "-qm", message);
      return git("rev-parse", "HEAD");
    };
    const sh = (script: string, args: string[], extra: NodeJS.ProcessEnv = {}) => spawnSync(join(PIPELINES, script), args, { cwd: repo, encoding: "utf8", env: { ...env, ...extra } });
    const terraformCalls = () => (existsSync(calls) ? readFileSync(calls, "utf8").split("\n").filter(Boolean) : []);

    before(() => {
      dir = tempDir("pipeline-scripts");
      repo = join(dir.path, "repo");
      calls = join(dir.path, "terraform-calls.log");
      const shim = join(dir.path, "bin");
      mkdirSync(shim);
      // Records its arguments and fails: these tests must stop before Terraform, or show where they reach it.
      writeFileSync(join(shim, "terraform"), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${calls}'\nexit 97\n`);
      chmodSync(join(shim, "terraform"), 0o755);
      env = {
        ...process.env,
        PATH: `${shim}:${process.env.PATH}`,
        NODE_PATH: join(ROOT, "node_modules"),
        IMAGING_LB: `${process.execPath} ${BIN}`,
        GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.org", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.org",
      };
      mkdirSync(join(repo, "sites"), { recursive: true });
      mkdirSync(join(repo, "lib"));
      execFileSync("git", ["init", "-q", "-b", "main", repo]);
      const pair = parse(readFileSync(join(ROOT, "examples", "agfa-ei-ha-pair.yaml"), "utf8")) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      writeFileSync(join(repo, "sites", "a.yaml"), stringify({ ...pair, name: "site-a" }));
      writeFileSync(join(repo, "sites", "b.yaml"), stringify({ ...pair, name: "site-b" }));
      writeFileSync(join(repo, "lib", "x.ts"), "export const x = 1;\n");
      writeFileSync(join(repo, "package.json"), JSON.stringify({ name: "imaging-lb", version: "0.2.0" }));
    });
    after(() => dir.cleanup());

    it("environments.sh: a site change keeps the selection; lib/ or the package version plans every site; no base plans every site", () => {
      const first = commitAll("sites");
      appendFileSync(join(repo, "sites", "a.yaml"), "# a comment\n");
      const sitesOnly = commitAll("site a");
      const selected = { IMAGING_LB_ENVIRONMENTS: "sites/a.yaml" };
      let r = sh("environments.sh", [first], selected);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, "sites/a.yaml\n");

      writeFileSync(join(repo, "lib", "x.ts"), "export const x = 2;\n");
      const libChange = commitAll("renderer");
      r = sh("environments.sh", [sitesOnly], selected);
      assert.equal(r.stdout, "sites/*.yaml\n");
      assert.match(r.stderr, /the package itself changed since [0-9a-f]+; planning every site \(sites\/\*\.yaml\), not only 'sites\/a\.yaml':\n {2}lib\/x\.ts\n/);

      writeFileSync(join(repo, "package.json"), JSON.stringify({ name: "imaging-lb", version: "0.3.0" }));
      commitAll("version");
      r = sh("environments.sh", [libChange], selected);
      assert.equal(r.stdout, "sites/*.yaml\n");
      assert.match(r.stderr, /^ {2}package\.json$/m);

      for (const base of ["", "0000000000000000000000000000000000000000", "no-such-rev"]) {
        r = sh("environments.sh", base ? [base] : [], selected);
        assert.equal(r.status, 0);
        assert.equal(r.stdout, "sites/*.yaml\n", `base '${base}'`);
      }
      assert.deepEqual(terraformCalls(), []);
    });

    it("plan-sites.sh: a change replacing both nodes of a pair stops with exit 3 before anything is planned; one node goes on to Terraform", () => {
      // What `npm run synth` leaves: the manifest and each stack with its S3 backend.
      const out = join(repo, "cdktf.out");
      for (const stack of ["site-a", "site-b"]) {
        mkdirSync(join(out, "stacks", stack), { recursive: true });
        writeFileSync(join(out, "stacks", stack, "cdk.tf.json"), JSON.stringify({ terraform: { backend: { s3: { bucket: "b", key: `imaging-lb/${stack}.tfstate`, use_lockfile: true } } } }));
      }
      writeFileSync(join(out, "manifest.json"), JSON.stringify({ stacks: { "site-a": {}, "site-b": {} } }));
      writeFileSync(join(repo, ".gitignore"), "cdktf.out/\nplans/\n");
      const base = commitAll("ignore");
      const doc = parse(readFileSync(join(repo, "sites", "a.yaml"), "utf8")) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      doc.loadBalancer.nodes["lb-a"].generation = 2;
      doc.loadBalancer.nodes["lb-b"].generation = 2;
      writeFileSync(join(repo, "sites", "a.yaml"), stringify(doc));
      commitAll("both generations");
      let r = sh("plan-sites.sh", ["--base", base, "--out", "plans"]);
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stdout, /UNSAFE: both nodes of the HA pair are replaced/);
      assert.deepEqual(terraformCalls(), [], "nothing planned");

      doc.loadBalancer.nodes["lb-a"].generation = 1;
      writeFileSync(join(repo, "sites", "a.yaml"), stringify(doc));
      commitAll("one generation");
      r = sh("plan-sites.sh", ["--base", base, "--out", "plans"]);
      assert.equal(r.status, 97, `reaches terraform (the recorder exits 97):\n${r.stderr}`);
      assert.match(r.stdout, /^node lb-b: node replaced$/m);
      assert.deepEqual(terraformCalls(), [`-chdir=cdktf.out/stacks/site-a init -input=false -no-color`]);
      assert.equal(readFileSync(join(repo, "plans", "sites.tsv"), "utf8"), "site-a\tsites/a.yaml\nsite-b\tsites/b.yaml\n", "deploy order: by file name");
    });

    it("apply-sites.sh refuses plans of another commit, changed files and files SHA256SUMS does not list, before Terraform runs", () => {
      const plans = join(dir.path, "plans");
      mkdirSync(join(plans, "site-a"), { recursive: true });
      const files: Record<string, string> = { commit: "c0ffee\n", "sites.tsv": "site-a\tsites/a.yaml\n", "plan.txt": "Plan: 1 to add\n", "site-a/tfplan": "saved plan", "site-a/cdk.tf.json": "{}", "site-a/terraform.lock.hcl": "# lock\n" };
      for (const [name, content] of Object.entries(files)) writeFileSync(join(plans, name), content);
      execFileSync("sh", ["-c", "find . -type f ! -name SHA256SUMS -printf '%P\\n' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS"], { cwd: plans });
      const apply = (commit?: string) => sh("apply-sites.sh", [...(commit ? ["--expect-commit", commit] : []), "--plans", plans]);
      const before = terraformCalls().length;

      assert.equal(apply().status, 2, "--expect-commit is required");
      let r = apply("deadbeef");
      assert.equal(r.status, 1);
      assert.match(r.stderr, /the saved plans are for commit c0ffee, this deploy is for deadbeef; refusing/);

      writeFileSync(join(plans, "site-a", "tfplan"), "another plan");
      r = apply("c0ffee");
      assert.equal(r.status, 1);
      assert.match(r.stderr, /does not match its SHA256SUMS; refusing/);
      writeFileSync(join(plans, "site-a", "tfplan"), "saved plan");

      writeFileSync(join(plans, "site-a", "extra.tf.json"), "{}");
      r = apply("c0ffee");
      assert.equal(r.status, 1);
      assert.match(r.stderr, /holds files SHA256SUMS does not list; refusing/);
      assert.equal(terraformCalls().length, before, "Terraform never ran");

      execFileSync("rm", [join(plans, "site-a", "extra.tf.json")]);
      r = apply("c0ffee");
      assert.equal(r.status, 97, "intact plans for this commit go on to Terraform");
      assert.deepEqual(terraformCalls().slice(before), [`-chdir=${plans}/site-a init -input=false -no-color -lockfile=readonly`]);
    });

    it("apply-sites.sh goes one site at a time: init, apply the saved plan, outputs, status --wait, then the next site; a failing status stops it", () => {
      // Recorders that succeed: terraform (`output -json` prints one output) and imaging-lb (status).
      const bin = join(dir.path, "ok-bin");
      mkdirSync(bin);
      const log = join(dir.path, "sequence.log");
      writeFileSync(join(bin, "terraform"), `#!/bin/sh\nprintf 'terraform %s\\n' "$*" >> '${log}'\ncase "$*" in *" output -json") echo '{"instance_ids":{"value":{"lb-a":"i-0"},"type":"map","sensitive":false}}' ;; esac\n`);
      writeFileSync(join(bin, "imaging-lb"), `#!/bin/sh\nprintf 'imaging-lb %s\\n' "$*" >> '${log}'\n[ "$2" != "sites/fails.yaml" ]\n`);
      for (const f of ["terraform", "imaging-lb"]) chmodSync(join(bin, f), 0o755);
      const plans = join(dir.path, "plans-2");
      const files: Record<string, string> = { commit: "c0ffee\n", "sites.tsv": "site-a\tsites/a.yaml\nsite-b\tsites/b.yaml\n" };
      for (const stack of ["site-a", "site-b"]) Object.assign(files, { [`${stack}/tfplan`]: stack, [`${stack}/cdk.tf.json`]: "{}", [`${stack}/terraform.lock.hcl`]: "# lock\n" });
      for (const [name, content] of Object.entries(files)) {
        mkdirSync(join(plans, name, ".."), { recursive: true });
        writeFileSync(join(plans, name), content);
      }
      const sums = () => execFileSync("sh", ["-c", "find . -type f ! -name SHA256SUMS -printf '%P\\n' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS"], { cwd: plans });
      sums();
      const outputs = join(dir.path, "outputs.json");
      const okEnv = { PATH: `${bin}:${process.env.PATH}`, IMAGING_LB: join(bin, "imaging-lb"), OUTPUTS: outputs, STATUS_TIMEOUT: "60" };
      let r = sh("apply-sites.sh", ["--expect-commit", "c0ffee", "--plans", plans], okEnv);
      assert.equal(r.status, 0, r.stderr);
      const site = (stack: string, file: string) => [
        `terraform -chdir=${plans}/${stack} init -input=false -no-color -lockfile=readonly`,
        `terraform -chdir=${plans}/${stack} apply -input=false -no-color -lock-timeout=5m tfplan`,
        `terraform -chdir=${plans}/${stack} output -json`,
        `imaging-lb status ${file} --wait --timeout 60`,
      ];
      assert.deepEqual(readFileSync(log, "utf8").trim().split("\n"), [...site("site-a", "sites/a.yaml"), ...site("site-b", "sites/b.yaml")]);
      assert.deepEqual(JSON.parse(readFileSync(outputs, "utf8")), { "site-a": { instance_ids: { "lb-a": "i-0" } }, "site-b": { instance_ids: { "lb-a": "i-0" } } });
      assert.equal(readFileSync(join(plans, "site-a", ".terraform.lock.hcl"), "utf8"), "# lock\n", "init uses the plan's provider lock file");

      // A site that does not converge stops the deploy: the next site is not touched.
      writeFileSync(log, "");
      execFileSync("rm", ["-f", join(plans, "site-a", ".terraform.lock.hcl"), join(plans, "site-b", ".terraform.lock.hcl"), join(plans, "site-a", "outputs.json"), join(plans, "site-b", "outputs.json")]);
      writeFileSync(join(plans, "sites.tsv"), "site-a\tsites/fails.yaml\nsite-b\tsites/b.yaml\n");
      sums();
      r = sh("apply-sites.sh", ["--expect-commit", "c0ffee", "--plans", plans], okEnv);
      assert.notEqual(r.status, 0);
      assert.deepEqual(readFileSync(log, "utf8").trim().split("\n"), site("site-a", "sites/fails.yaml"));
    });
  });
});

describe("the cdktf CLI the docs call", () => {
  it("is a pinned dependency of the project (so `npx cdktf` runs it, at the version of the cdktf library)", () => {
    const deps = { ...PACKAGE.dependencies, ...PACKAGE.devDependencies };
    assert.ok(deps["cdktf-cli"], "package.json has no cdktf-cli: `npx cdktf diff|deploy` would not find the cdktf command (add cdktf-cli to devDependencies)");
    assert.equal(deps["cdktf-cli"], deps.cdktf, "cdktf-cli and cdktf at the same version");
  });
});
