/**
 * The image recipe (issue 25): what it bakes covers what every node's bootstrap checks on a baked image, for
 * every OS and option; the rendered script is clean bash; its version follows its text. The recipe runs for
 * real in the boot test's disk image (test/boot).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { renderBootstrapEnv, resolveBootstrapSpec } from "../lib/bootstrap";
import { packageName } from "../lib/bootstrap/packages";
import { imageRecipe } from "../lib/image/recipe";
import { parseEnvironment } from "../lib/load/load";
import { machineSpec } from "../lib/node/machine";
import { requireTool, tempDir } from "./helpers/tools";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const EXAMPLES = join(__dirname, "..", "..", "examples");

/** Every example, on every OS, with CloudWatch Logs (and, two-arm, TProxy) on and off. */
function variants(): Array<[string, Json]> {
  const out: Array<[string, Json]> = [];
  for (const file of readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"))) {
    for (const os of ["ubuntu-24.04", "debian-13", "al2023"]) {
      for (const extras of [false, true]) {
        const doc = parse(readFileSync(join(EXAMPLES, file), "utf8")) as Json;
        doc.loadBalancer.os = os;
        if (extras) {
          if (doc.network.layout === "two-arm") doc.services = { ...(doc.services ?? {}), dicom: { ...(doc.services?.dicom ?? {}), clientAddress: "tproxy" } };
          doc.admin.cloudWatchLogGroup = "/imaging-lb/site";
        }
        out.push([`${file} ${os}${extras ? " logs (two-arm: tproxy)" : ""}`, doc]);
      }
    }
  }
  return out;
}

/** The PACKAGES of a node's bootstrap.env, by name. */
function checkedPackages(env: ReturnType<typeof parseEnvironment>, nodeIndex: number): string[] {
  const text = renderBootstrapEnv(resolveBootstrapSpec(machineSpec(env, env.nodes[nodeIndex])));
  const line = /^PACKAGES=\((.*)\)$/m.exec(text)?.[1] ?? "";
  return line.split(" ").filter(Boolean).map((p) => packageName(p.replace(/^'|'$/g, "")));
}

describe("image recipe", () => {
  it("bakes every package each node's bootstrap checks, on every OS, with every option", () => {
    let checked = 0;
    for (const [name, doc] of variants()) {
      const env = parseEnvironment(stringify(doc), `${name}.yaml`);
      const baked = new Set(imageRecipe(env).packages.packages.map(packageName));
      for (let i = 0; i < env.nodes.length; i++) {
        const missing = checkedPackages(env, i).filter((p) => !baked.has(p));
        assert.deepEqual(missing, [], `${name}, ${env.nodes[i].name}: the bootstrap checks packages the recipe does not bake`);
        checked++;
      }
      assert.deepEqual(imageRecipe(env).packages.snaps, env.loadBalancer.os === "ubuntu-24.04" ? ["aws-cli"] : [], name);
    }
    assert.equal(checked, 48, "5 examples × 3 OS × 2 option sets, one or two nodes each");
  });

  it("the rendered script passes shellcheck, values first and the recipe's body unchanged after them", () => {
    const shellcheck = requireTool("shellcheck", "shellcheck");
    const dir = tempDir("image-recipe");
    try {
      for (const os of ["ubuntu-24.04", "debian-13", "al2023"]) {
        const doc = parse(readFileSync(join(EXAMPLES, "agfa-ei-baked.yaml"), "utf8")) as Json;
        doc.loadBalancer.os = os;
        if (os === "ubuntu-24.04") doc.loadBalancer.haproxy = { source: "ppa", version: "3.2" };
        const recipe = imageRecipe(parseEnvironment(stringify(doc), "baked.yaml"));
        const file = join(dir.path, `${os}.sh`);
        writeFileSync(file, recipe.script);
        const run = spawnSync(shellcheck, ["--severity=style", file], { encoding: "utf8" });
        assert.equal(run.status, 0, `${os}: ${run.stdout}${run.stderr}`);
        assert.match(recipe.script, new RegExp(`^OS=${os}$`, "m"));
        assert.match(recipe.script, new RegExp(`^HAPROXY_SERIES=${recipe.haproxySeries.replace(".", "\\.")}$`, "m"));
        assert.match(recipe.script, new RegExp(`^RECIPE=${recipe.version.replace(/\./g, "\\.")}$`, "m"));
        if (os === "ubuntu-24.04") assert.match(recipe.script, /^HAPROXY_PPA=3\.2$/m);
        if (os === "al2023") assert.match(recipe.script, /^PACKAGES=\('haproxy-2\.8\.\*' /m, "AL2023: dnf's series spec, 2.8 by default");
      }
    } finally {
      dir.cleanup();
    }
  });

  it("its version is the HAProxy series and a number from its text: the same text, the same version", () => {
    const doc = parse(readFileSync(join(EXAMPLES, "agfa-ei-baked.yaml"), "utf8")) as Json;
    const a = imageRecipe(parseEnvironment(stringify(doc), "a.yaml"));
    doc.name = "other-site";
    const same = imageRecipe(parseEnvironment(stringify(doc), "b.yaml"));
    assert.equal(same.version, a.version, "another environment with the same OS and series bakes the same image");
    doc.admin.cloudWatchLogGroup = "/imaging-lb/site";
    const logs = imageRecipe(parseEnvironment(stringify(doc), "c.yaml"));
    assert.notEqual(logs.version, a.version);
    assert.match(a.version, /^3\.0\.\d{1,6}$/);
  });
});
