/**
 * `cdktf deploy <stack>` naming a stack the app did not synthesize: the app says why (the variable
 * naming the environment files is unset, or does not include that file). The command-line reading is
 * checked on argv arrays, and end to end with a parent process whose command line is a cdktf command
 * (a stand-in named `cdktf`, labelled as such: the real CLI would also run Terraform).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { missingStacksNote, stacksFromArgv } from "../lib/app/stack-request";

const LAUNCHER = join(__dirname, "..", "lib", "app-launcher.js");
const EXAMPLES = join(__dirname, "..", "..", "examples");

describe("stacks a cdktf command asks for", () => {
  it("reads them from cdktf's command line, whichever way cdktf was started", () => {
    assert.deepEqual(stacksFromArgv(["node", "/repo/node_modules/.bin/cdktf", "deploy", "ei-a", "ei-b", "--auto-approve"]), ["ei-a", "ei-b"]);
    assert.deepEqual(stacksFromArgv(["node", "/repo/node_modules/cdktf-cli/bundle/bin/cdktf", "diff", "ei-*"]), ["ei-*"]);
    assert.deepEqual(stacksFromArgv(["cdktf", "destroy", "--auto-approve", "ei-a"]), ["ei-a"]);
    assert.deepEqual(stacksFromArgv(["cdktf", "diff", "st-mary", "--output", "/tmp/out", "--parallelism=2"]), ["st-mary"]);
    assert.deepEqual(stacksFromArgv(["cdktf", "deploy"]), []);
    assert.equal(stacksFromArgv(["cdktf", "synth"]), undefined);
    assert.equal(stacksFromArgv(["node", "dist/lib/app-launcher.js"]), undefined);
  });

  it("says nothing when every requested stack is there (names or globs)", () => {
    assert.deepEqual(missingStacksNote(["ei-a", "ei-*"], ["ei-a", "ei-b"], "bundled examples", "IMAGING_LB_ENVIRONMENTS", undefined), []);
  });

  it("variable unset: says so, and what to set", () => {
    assert.deepEqual(missingStacksNote(["st-mary"], ["ei-one-arm", "ei-two-arm"], "bundled examples", "IMAGING_LB_ENVIRONMENTS", undefined), [
      "imaging-lb: cdktf asks for stack 'st-mary', which this run did not synthesize: IMAGING_LB_ENVIRONMENTS is unset, so the app read bundled examples (stacks ei-one-arm, ei-two-arm); set IMAGING_LB_ENVIRONMENTS to the environment file(s), e.g. IMAGING_LB_ENVIRONMENTS=sites/st-mary.yaml",
    ]);
  });

  it("variable set without the stack's file: says it does not include it", () => {
    assert.deepEqual(missingStacksNote(["st-mary"], ["st-anne"], "IMAGING_LB_ENVIRONMENTS", "IMAGING_LB_ENVIRONMENTS", "sites/st-anne.yaml"), [
      'imaging-lb: cdktf asks for stack \'st-mary\', which this run did not synthesize: IMAGING_LB_ENVIRONMENTS="sites/st-anne.yaml" does not include an environment file with name: st-mary (its files give the stacks st-anne); add that file to IMAGING_LB_ENVIRONMENTS',
    ]);
  });

  describe("end to end: the app under a process whose command line is `cdktf deploy <stack>` (a stand-in for the cdktf CLI)", () => {
    const dir = mkdtempSync(join(tmpdir(), "imaging-lb-stack-request-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    cpSync(join(EXAMPLES, "agfa-ei-one-arm.yaml"), join(dir, "one-arm.yaml"));
    // The stand-in: a script named `cdktf` that runs the app as cdktf.json's "app" command would.
    const standIn = join(dir, "cdktf");
    writeFileSync(standIn, `const r = require("node:child_process").spawnSync(process.execPath, [${JSON.stringify(LAUNCHER)}], { stdio: "inherit" }); process.exit(r.status ?? 1);\n`);
    const deploy = (stack: string, variable: string | undefined) => {
      const env: NodeJS.ProcessEnv = { ...process.env, CDKTF_OUTDIR: join(dir, "cdktf.out") };
      delete env.CDKTF_CONTEXT_JSON;
      if (variable === undefined) delete env.IMAGING_LB_ENVIRONMENTS;
      else env.IMAGING_LB_ENVIRONMENTS = variable;
      return spawnSync(process.execPath, [standIn, "deploy", stack], { cwd: dir, env, encoding: "utf8" });
    };

    it("the variable does not include the stack: the app's output (what cdktf shows) says so", () => {
      const r = deploy("st-mary", "one-arm.yaml");
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /\nimaging-lb: cdktf asks for stack 'st-mary', which this run did not synthesize: IMAGING_LB_ENVIRONMENTS="one-arm\.yaml" does not include an environment file with name: st-mary \(its files give the stacks ei-one-arm\)/);
    });

    it("the stack is there: no note", () => {
      const r = deploy("ei-one-arm", "one-arm.yaml");
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^imaging-lb: 1 stack synthesized/);
      assert.doesNotMatch(r.stdout, /cdktf asks for stack/);
    });
  });
});
