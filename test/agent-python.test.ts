/**
 * The node agent's Python unit tests (test/agent-python/test_*.py: the decisions, the contract checks, SigV4,
 * atomic writes), run against the package exactly as a bundle carries it (lib/agent/imaging_lb_agent with
 * the rendered contract.json), with the `python3` on PATH. Also: every module parses as Python 3.9 (Amazon
 * Linux 2023's), so no newer syntax reaches a node.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { agentFiles } from "../lib/node/bundle";
import { installAgentPackage } from "./helpers/agent-package";
import { requireTool, tempDir } from "./helpers/tools";

const REPO = join(__dirname, "..", "..");

const folders: Array<ReturnType<typeof tempDir>> = [];
after(() => folders.forEach((folder) => folder.cleanup()));

/** The agent package as a bundle carries it, in a folder of its own (removed after the file's tests). */
const installPackage = (): string => {
  const folder = tempDir("agent-python");
  folders.push(folder);
  return installAgentPackage(folder.path);
};

describe("the node agent's Python unit tests", () => {
  it("pass (python3 -m unittest)", () => {
    requireTool("python3", "python3");
    const packageDir = installPackage();
    const run = spawnSync("python3", ["-m", "unittest", "discover", "-s", join(REPO, "test", "agent-python"), "-p", "test_*.py", "-v"], {
      encoding: "utf8",
      env: { ...process.env, PYTHONPATH: packageDir, PYTHONDONTWRITEBYTECODE: "1" },
      timeout: 120_000,
    });
    const output = `${run.stdout}${run.stderr}`;
    assert.equal(run.status, 0, output);
    const ran = /Ran (\d+) tests?/.exec(output);
    assert.ok(ran && Number(ran[1]) >= 40, `expected the whole Python suite to run:\n${output}`);
  });

  it("every module is Python 3.9 syntax (Amazon Linux 2023)", () => {
    const packageDir = installPackage();
    const check = spawnSync(
      "python3",
      ["-c", "import ast, glob, sys\nfor f in sorted(glob.glob(sys.argv[1] + '/imaging_lb_agent/*.py')):\n    ast.parse(open(f).read(), f, feature_version=(3, 9))\nprint('ok')", packageDir],
      { encoding: "utf8" },
    );
    assert.equal(check.status, 0, check.stderr);
  });
});

describe("the launcher and the contract", () => {
  it("every file of the agent's package is one the node contract allows (an agent already in place refuses any other)", async () => {
    const { NODE_CONTRACT } = await import("../lib/contract/node-contract");
    const allowed = NODE_CONTRACT.bundleFiles.filter((f) => f.kind === "agent-module" || f.kind === "agent-launcher");
    for (const file of agentFiles()) {
      assert.ok(allowed.some((f) => new RegExp(f.pattern).test(file.path) && f.mode === file.mode), `${file.path} (${file.mode}) matches no agent entry of the contract`);
    }
  });

  it("the launcher's two paths are the contract's (it runs on nodes without contract.env: 0.2 nodes)", async () => {
    const { imagingLbAgentLauncher } = await import("../lib/agent/embedded.generated");
    const { NODE_CONTRACT } = await import("../lib/contract/node-contract");
    assert.match(imagingLbAgentLauncher, new RegExp(`^STATE="\\$ROOT${NODE_CONTRACT.paths.stateDir}"$`, "m"));
    assert.match(imagingLbAgentLauncher, new RegExp(`^PACKAGE=${NODE_CONTRACT.paths.agentPackageDir.slice(1)}$`, "m"));
    assert.match(imagingLbAgentLauncher, new RegExp(`"\\$ROOT${NODE_CONTRACT.paths.loader}"`));
  });
});
