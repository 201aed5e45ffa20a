/**
 * CI's time is known: `npm test` runs scripts/test-stages.sh, whose stages cover every test file, and
 * `.ci/run` prints the wall and CPU time of each stage (its own install and synth, npm test's stages) at
 * its end — also when a stage fails or the run is interrupted. The stage machinery (scripts/lib/stages.sh)
 * and .ci/run are run for real here with stub stages (bash; a stub `npm` on PATH for .ci/run).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { requireTool, tempDir } from "./helpers/tools";

const ROOT = join(__dirname, "..", "..");
const LIB = join(ROOT, "scripts", "lib", "stages.sh");
const STAGES = join(ROOT, "scripts", "test-stages.sh");
const CI = join(ROOT, ".ci", "run");
const SCRIPTS = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `bash -c script` in `cwd` and waits (optionally sending SIGTERM once `killWhen` appears on stderr). */
function bash(script: string, cwd: string, env: NodeJS.ProcessEnv = {}, killWhen?: RegExp): Promise<Run> {
  return new Promise((done) => {
    const child = spawn("bash", ["-c", script], { cwd, env: { ...process.env, IMAGING_LB_STAGE_LOG: "", ...env }, detached: true });
    let stdout = "";
    let stderr = "";
    let killed = false;
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
      if (killWhen && !killed && killWhen.test(stderr)) {
        killed = true;
        child.kill("SIGTERM");
      }
    });
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

/** The rows of the stage table: name → result. */
function table(stderr: string): Map<string, string> {
  const after = stderr.split("== stage times")[1];
  assert.ok(after !== undefined, `no stage table in:\n${stderr}`);
  const rows = new Map<string, string>();
  for (const line of after.split("\n").slice(2)) {
    const m = /^(\S+)\s+(ok|FAILED \(\d+\)|not run)\s+(\S+)\s+(\S+)\s+(\S+)$/.exec(line);
    if (m) rows.set(m[1], m[2]);
  }
  assert.match(after, /^whole run\s+\d+:\d\d$/m, after);
  return rows;
}

const tmp = tempDir("ci-stages");
after(() => tmp.cleanup());

describe("npm test: the stages and what they run", () => {
  it("npm test is scripts/test-stages.sh; every test:* script builds, then runs its stage", () => {
    assert.equal(SCRIPTS.test, "scripts/test-stages.sh");
    const list = spawnSync(STAGES, ["--list"], { encoding: "utf8" });
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(list.stdout.trim().split("\n"), ["build+lint", "unit", "e2e", "e2e-haproxy-3.0", "agent", "node-22-24", "apply", "boot"]);
    const byScript: Record<string, string> = {
      "test:unit": "unit",
      "test:node": "node-22-24",
      "test:e2e": "e2e",
      "test:e2e:haproxy-3.0": "e2e-haproxy-3.0",
      "test:agent": "agent",
      "test:apply": "apply",
      "test:boot": "boot",
    };
    for (const [script, stage] of Object.entries(byScript)) assert.equal(SCRIPTS[script], `npm run build && scripts/test-stages.sh ${stage}`, script);
    const unknown = spawnSync(STAGES, ["nope"], { encoding: "utf8" });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no stage named 'nope' \(stages: build\+lint unit e2e e2e-haproxy-3\.0 agent node-22-24 apply boot\)/);
  });

  it("every test file is in a stage: unit, e2e, apply and boot by folder, the HAProxy 3.0 list by name", () => {
    const text = readFileSync(STAGES, "utf8");
    assert.match(text, /^unit\(\) \{ node --test [^\n]*dist\/test\/\*\.test\.js; \}$/m);
    assert.match(text, /^e2e\(\) \{ node --test --test-concurrency=1 dist\/test\/e2e\/\*\.e2e\.js; \}$/m);
    assert.match(text, /^apply\(\) \{ node --test [^\n]*dist\/test\/terraform-apply\/\*\.apply\.js; \}$/m);
    assert.match(text, /^boot\(\) \{ node --test [^\n]*dist\/test\/boot\/two-arm\.boot\.js; \}$/m);
    assert.match(text, /^node_22_24\(\) \{ scripts\/test-node-versions\.sh; \}$/m);
    assert.match(text, /^build_lint\(\) \{ npm run build && npm run lint; \}$/m);
    const list = /E2E_HAPROXY_30=\(\n([\s\S]*?)\n\)/.exec(text)?.[1] ?? "";
    const files = list.split("\n").map((l) => l.trim());
    assert.ok(files.length >= 10, list);
    for (const file of files) {
      const source = file.replace(/^dist\//, "").replace(/\.js$/, ".ts");
      assert.ok(existsSync(join(ROOT, source)), `${file}: no ${source}`);
    }
    // The folders the stages glob hold every test source (a new kind of test needs a new stage).
    const kinds = readdirSync(join(ROOT, "test"), { withFileTypes: true }).filter((d) => d.isFile() && /\.ts$/.test(d.name));
    for (const file of kinds) assert.match(file.name, /\.test\.ts$/, `test/${file.name} is not run by the unit stage`);
    assert.ok(existsSync(join(ROOT, "test", "boot", "two-arm.boot.ts")));
  });

  it("the README's Tests section names every stage (its own and .ci/run's)", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const paragraph = readme.split("\n\n").find((p) => p.startsWith("**Stages, and how long they take.**")) ?? "";
    assert.ok(paragraph.includes("`scripts/test-stages.sh`"), "the README says where the stages are");
    const named = new Set([...paragraph.matchAll(/`([^`]+)`/g)].map((m) => m[1]));
    const list = spawnSync(STAGES, ["--list"], { encoding: "utf8" }).stdout.trim().split("\n");
    for (const stage of [...list, "install", "synth", "synth-no-terraform", "bench-synth"]) assert.ok(named.has(stage), `README: stage \`${stage}\` is not named`);
  });

  it("the scripts pass shellcheck", () => {
    const shellcheck = requireTool("shellcheck", "shellcheck");
    const run = spawnSync(shellcheck, ["-x", "--severity=style", CI, STAGES, LIB], { encoding: "utf8", cwd: ROOT });
    assert.equal(run.status, 0, run.stdout + run.stderr);
  });
});

describe("scripts/lib/stages.sh: timed stages, a table at the end", () => {
  const runner = (body: string) => `set -euo pipefail\nsource '${LIB}'\nstages_begin\n${body}\n`;

  it("times each stage (wall, CPU) and prints the table at exit; a failure stops the run, later stages are listed as not run", async () => {
    const run = await bash(
      runner(`stage busy bash -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo busy-out'
stage_start beside sleep 1
stage quick true
stage_wait beside
stage broken bash -c 'exit 3' || { stages_not_run later last; exit 1; }
stage never true`),
      tmp.path,
    );
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /^busy-out$/m, "a stage's output is passed through");
    const rows = table(run.stderr);
    assert.deepEqual([...rows.entries()], [["busy", "ok"], ["quick", "ok"], ["beside", "ok"], ["broken", "FAILED (3)"], ["later", "not run"], ["last", "not run"]]);
    assert.match(run.stderr, /== stage broken: FAILED \(exit 3\) after \d+\.\d s/);
    const busy = /^busy\s+ok\s+(\d+):(\d\d)\s+(\d+):(\d\d)\s+[\d.]+$/m.exec(run.stderr);
    assert.ok(busy, run.stderr);
  });

  it("a stage's CPU time counts its processes (a child that spins until it has used 1.6 s of CPU)", async () => {
    const spin = "python3 -c 'import time\nwhile time.process_time() < 1.6: pass'";
    const run = await bash(runner(`stage spin bash -c "${spin}"`), tmp.path);
    assert.equal(run.code, 0, run.stderr);
    const m = /^spin\s+ok\s+(\d+):(\d\d)\s+(\d+):(\d\d)/m.exec(run.stderr);
    assert.ok(m, run.stderr);
    const cpu = Number(m[3]) * 60 + Number(m[4]);
    assert.ok(cpu >= 2 && cpu <= 60, `the table rounds 1.6 s and a little more to 0:02, it says ${cpu} s:\n${run.stderr}`);
  });

  it("a nested runner (npm test under .ci/run) adds its stages to the outer table, which the outer runner prints once", async () => {
    const inner = join(tmp.path, "inner.sh");
    writeFileSync(inner, runner("stage inner-a true\nstage inner-b true"));
    const run = await bash(runner(`stage outer true\nbash '${inner}'\nstage outer-end true`), tmp.path);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr.split("== stage times").length, 2, `one table:\n${run.stderr}`);
    assert.deepEqual([...table(run.stderr).keys()], ["outer", "inner-a", "inner-b", "outer-end"]);
  });

  it("an interrupted run (SIGTERM) still prints the stages so far, and ends a background stage's processes", async () => {
    const marker = `${(Date.now() % 100000) + 100000}.5`; // a sleep no other process runs
    const run = await bash(runner(`stage first true\nstage_start beside sleep ${marker}\nstage hanging sleep 30`), tmp.path, {}, /== stage hanging: sleep 30/);
    assert.notEqual(run.code, 0);
    const rows = table(run.stderr);
    assert.equal(rows.get("first"), "ok");
    const left = spawnSync("pgrep", ["-f", `^sleep ${marker}$`], { encoding: "utf8" });
    assert.equal(left.stdout.trim(), "", "the background stage's sleep was ended");
  });
});

describe("npm test's plan: the e2e suites alone, the boot test beside the Node 22/24 runs and the applies", () => {
  /**
   * A copy of scripts/test-stages.sh and its library over stubs: `node`, `npm` and test-node-versions.sh
   * log when each stage's command starts and ends; STUB_FAIL names one to fail.
   */
  function planTree(name: string): { root: string; log: string; env: NodeJS.ProcessEnv } {
    const root = join(tmp.path, name);
    mkdirSync(join(root, "scripts", "lib"), { recursive: true });
    mkdirSync(join(root, "bin"));
    copyFileSync(STAGES, join(root, "scripts", "test-stages.sh"));
    copyFileSync(LIB, join(root, "scripts", "lib", "stages.sh"));
    const log = join(root, "commands.log");
    const stub = (what: string) => `#!/usr/bin/env bash
args="$*"
${what}
case "$args" in
  *boot*) id=boot ;; *terraform-apply*) id=apply ;; *test/agent/*) id=agent ;; *e2e/product-web*) id=e2e-3.0 ;; *e2e/*) id=e2e ;;
  *test-node-versions*|node-versions) id=node-22-24 ;; *"run lint"*) id=lint ;; *"run build"*) id=build ;; *) id=unit ;;
esac
echo "start $id" >> '${log}'
# node-22-24 and apply end once the boot test has started, and the boot test once apply has ended (each
# waits at most 30 s): the log shows them overlapping only if they run side by side.
wait_for() { for _ in $(seq 300); do grep -qx "$1" '${log}' && return; sleep 0.1; done; }
case $id in boot) wait_for "end apply" ;; node-22-24|apply) wait_for "start boot" ;; esac
echo "end $id" >> '${log}'
if [ "\${STUB_FAIL:-}" = "$id" ]; then exit 4; fi
`;
    const files: Record<string, string> = {
      "bin/node": stub(""),
      "bin/npm": stub(""),
      "scripts/test-node-versions.sh": stub("args=node-versions"),
      "scripts/haproxy-3.0.sh": "#!/usr/bin/env bash\necho 'HAProxy version 3.0.99 (stub)'\n",
    };
    for (const [rel, text] of Object.entries(files)) {
      writeFileSync(join(root, rel), text);
      chmodSync(join(root, rel), 0o755);
    }
    chmodSync(join(root, "scripts", "test-stages.sh"), 0o755);
    return { root, log, env: { PATH: `${join(root, "bin")}:${process.env.PATH}` } };
  }

  it("runs every stage; the boot test starts after the e2e suites and runs beside node-22-24 and apply", async () => {
    const { root, log, env } = planTree("plan-green");
    const run = await bash("scripts/test-stages.sh", root, env);
    assert.equal(run.code, 0, run.stderr);
    const events = readFileSync(log, "utf8").trim().split("\n");
    const at = (event: string) => events.indexOf(event);
    for (const [a, b] of [["end build", "start lint"], ["end unit", "start e2e"], ["end e2e", "start e2e-3.0"], ["end e2e-3.0", "start agent"], ["end agent", "start boot"]]) {
      assert.ok(at(a) >= 0 && at(a) < at(b), `${a} before ${b}:\n${events.join("\n")}`);
    }
    assert.ok(at("end agent") < at("start node-22-24") && at("end node-22-24") < at("start apply"), `node-22-24, then apply:\n${events.join("\n")}`);
    assert.ok(at("start boot") < at("end node-22-24") && at("start apply") < at("end boot"), `boot beside node-22-24 and apply:\n${events.join("\n")}`);
    assert.deepEqual(
      [...table(run.stderr).entries()].sort(),
      [["agent", "ok"], ["apply", "ok"], ["boot", "ok"], ["build+lint", "ok"], ["e2e", "ok"], ["e2e-haproxy-3.0", "ok"], ["node-22-24", "ok"], ["unit", "ok"]],
    );
  });

  it("a failing apply fails npm test; the boot test beside it is waited for and reported", async () => {
    const { root, env } = planTree("plan-apply-red");
    const run = await bash("scripts/test-stages.sh", root, { ...env, STUB_FAIL: "apply" });
    assert.equal(run.code, 1, run.stderr);
    const rows = table(run.stderr);
    assert.equal(rows.get("apply"), "FAILED (4)");
    assert.equal(rows.get("boot"), "ok");
  });

  it("a failing e2e suite stops the run: nothing after it starts", async () => {
    const { root, log, env } = planTree("plan-e2e-red");
    const run = await bash("scripts/test-stages.sh", root, { ...env, STUB_FAIL: "e2e" });
    assert.equal(run.code, 1, run.stderr);
    assert.deepEqual(readFileSync(log, "utf8").match(/^start .*/gm), ["start build", "start lint", "start unit", "start e2e"]);
    assert.deepEqual([...table(run.stderr).entries()], [
      ["build+lint", "ok"], ["unit", "ok"], ["e2e", "FAILED (4)"], ["e2e-haproxy-3.0", "not run"], ["agent", "not run"], ["node-22-24", "not run"], ["apply", "not run"], ["boot", "not run"],
    ]);
  });
});

describe(".ci/run: the README's commands as stages, the table at the end", () => {
  /** A copy of .ci/run and the stage library in a tree of stubs: npm logs its arguments. */
  function stubTree(name: string, testStages: string): { root: string; calls: string } {
    const root = join(tmp.path, name);
    mkdirSync(join(root, ".ci"), { recursive: true });
    mkdirSync(join(root, "scripts", "lib"), { recursive: true });
    mkdirSync(join(root, "bin"));
    copyFileSync(CI, join(root, ".ci", "run"));
    copyFileSync(LIB, join(root, "scripts", "lib", "stages.sh"));
    const calls = join(root, "calls.log");
    const files: Record<string, string> = {
      "scripts/install-test-tools.sh": `#!/usr/bin/env bash\necho install-test-tools >> '${calls}'\n`,
      "scripts/test-stages.sh": `#!/usr/bin/env bash\nset -euo pipefail\nsource "$(dirname "$0")/lib/stages.sh"\nstages_begin\n${testStages}\n`,
      "bin/npm": `#!/usr/bin/env bash\necho "npm $*" >> '${calls}'\nif [ "$1" = test ]; then exec scripts/test-stages.sh; fi\n`,
    };
    for (const [rel, text] of Object.entries(files)) {
      writeFileSync(join(root, rel), text);
      chmodSync(join(root, rel), 0o755);
    }
    chmodSync(join(root, ".ci", "run"), 0o755);
    return { root, calls };
  }

  it("installs (npm ci + the test tools), synthesizes, runs npm test, and prints every stage's time", async () => {
    const { root, calls } = stubTree("green", "stage unit true\nstage e2e true");
    const run = await bash(".ci/run", root, { PATH: `${join(root, "bin")}:${process.env.PATH}` });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(readFileSync(calls, "utf8").trim().split("\n"), ["npm ci --no-audit --no-fund", "install-test-tools", "npm run synth", "npm run synth", "npm run bench:synth", "npm test"]);
    assert.deepEqual([...table(run.stderr).entries()], [["install", "ok"], ["synth", "ok"], ["synth-no-terraform", "ok"], ["bench-synth", "ok"], ["unit", "ok"], ["e2e", "ok"]]);
  });

  it("a failing npm test stage fails CI, and the table is still printed with the stage marked", async () => {
    const { root } = stubTree("red", "stage unit true\nstage e2e bash -c 'exit 7' || { stages_not_run apply; exit 1; }");
    const run = await bash(".ci/run", root, { PATH: `${join(root, "bin")}:${process.env.PATH}` });
    assert.notEqual(run.code, 0);
    assert.deepEqual([...table(run.stderr).entries()], [["install", "ok"], ["synth", "ok"], ["synth-no-terraform", "ok"], ["bench-synth", "ok"], ["unit", "ok"], ["e2e", "FAILED (7)"], ["apply", "not run"]]);
  });
});
