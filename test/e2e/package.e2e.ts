/**
 * imaging-lb as a user installs it: `npm pack`, the tarball installed into a fresh folder next to the
 * peer dependencies (cdktf, constructs at the low end of its range, the AWS provider), a TypeScript
 * CDKTF app that composes ImagingLbStack with a stack of its own compiled against the package's types
 * and synthesized, the bin, and the README's links inside the installed package.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { tempDir } from "../helpers/tools";

const REPO = join(__dirname, "..", "..", "..");
const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
  name: string;
  version: string;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** The app from the README's "Use it as a library" section, with a stack of the user's own. */
const APP = `import { App, TerraformOutput, TerraformStack } from "cdktf";
import { Construct } from "constructs";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { S3Bucket } from "@cdktf/provider-aws/lib/s3-bucket";
import { ImagingLbStack, loadEnvironment, renderHaproxy } from "imaging-lb";

class SharedStack extends TerraformStack {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    new AwsProvider(this, "aws", { region: "eu-west-1" });
    const bucket = new S3Bucket(this, "logs", { bucket: "hospital-shared-logs" });
    new TerraformOutput(this, "logs_bucket", { value: bucket.bucket });
  }
}

const app = new App({ outdir: "cdktf.out" });
new SharedStack(app, "shared");
const env = loadEnvironment(require.resolve("imaging-lb/examples/agfa-ei-ha-pair.yaml"));
const lb = new ImagingLbStack(app, env.name, { environment: env });
lb.addDependency(app.node.findChild("shared") as TerraformStack);
console.log(renderHaproxy(env).split("\\n")[0]);
app.synth();
`;

describe("the published package (npm pack, installed into a fresh app)", () => {
  const work = tempDir("package");
  after(() => work.cleanup());

  it("installs next to the app's own cdktf, constructs and provider, type-checks and synthesizes with another stack", () => {
    const sh = (command: string, args: string[], cwd: string) => {
      const r = spawnSync(command, args, { cwd, encoding: "utf8", timeout: 600_000 });
      assert.equal(r.status, 0, `${command} ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };
    // dist/ is built by `npm test` before the e2e suite; --ignore-scripts packs it as it is.
    const packed = JSON.parse(sh("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", work.path], REPO)) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = packed[0].files.map((f) => f.path);
    for (const required of ["LICENSE", "CHANGELOG.md", "README.md", "package.json", "dist/lib/index.js", "dist/lib/index.d.ts", "dist/lib/cli/main.js", "dist/main.bundle.js", "dist/lib/app-launcher.js", "schema/environment.schema.json", "examples/agfa-ei-ha-pair.yaml", "docs/environment-reference.md"]) {
      assert.ok(files.includes(required), `${required} is published`);
    }
    assert.deepEqual(files.filter((f) => f.startsWith("dist/test/") || f.startsWith("dist/bench/") || f.endsWith(".v8-cache") || f.startsWith(".cache/")), [], "no tests, benchmarks or caches");
    assert.match(readFileSync(join(REPO, "LICENSE"), "utf8"), /Apache License\s+Version 2\.0, January 2004/);

    // A fresh app: the peers at the versions the project tests (constructs at the bottom of its range).
    const app = join(work.path, "app");
    mkdirSync(app);
    const constructsFloor = pkg.peerDependencies.constructs.replace(/^\^/, "");
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({
        name: "hospital-infra",
        private: true,
        dependencies: {
          "imaging-lb": `file:${join(work.path, packed[0].filename)}`,
          cdktf: pkg.devDependencies.cdktf,
          constructs: constructsFloor,
          "@cdktf/provider-aws": pkg.devDependencies["@cdktf/provider-aws"],
        },
      }),
    );
    sh("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], app);
    const installed = join(app, "node_modules", "imaging-lb");
    assert.equal((JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as { version: string }).version, pkg.version);
    assert.equal(existsSync(join(installed, "node_modules", "cdktf")), false, "no private copy of cdktf (a peer)");
    assert.equal(existsSync(join(installed, "node_modules", "constructs")), false, "no private copy of constructs (a peer)");
    assert.equal((JSON.parse(readFileSync(join(app, "node_modules", "constructs", "package.json"), "utf8")) as { version: string }).version, constructsFloor);

    // The README's app, in TypeScript, compiled against the installed package's types.
    writeFileSync(join(app, "main.ts"), APP);
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { target: "ES2022", module: "commonjs", strict: true, esModuleInterop: true, skipLibCheck: true, types: ["node"], typeRoots: [join(REPO, "node_modules", "@types")] }, files: ["main.ts"] }),
    );
    sh(join(REPO, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], app);
    const out = sh(process.execPath, ["main.js"], app);
    assert.match(out, /^# haproxy\.cfg for environment 'ei-ha-pair'/);
    const manifest = JSON.parse(readFileSync(join(app, "cdktf.out", "manifest.json"), "utf8")) as { stacks: Record<string, { dependencies: string[] }> };
    assert.deepEqual(Object.keys(manifest.stacks).sort(), ["ei-ha-pair", "shared"]);
    assert.deepEqual(manifest.stacks["ei-ha-pair"].dependencies, ["shared"]);
    const stack = JSON.parse(readFileSync(join(app, "cdktf.out", "stacks", "ei-ha-pair", "cdk.tf.json"), "utf8")) as { resource: Record<string, object> };
    assert.equal(Object.keys(stack.resource.aws_instance).length, 2, "the pair's two nodes");

    // The bin, and the README's relative links resolve inside the installed package.
    assert.equal(sh(join(app, "node_modules", ".bin", "imaging-lb"), ["--version"], app), `imaging-lb ${pkg.version}\n`);
    const readme = readFileSync(join(installed, "README.md"), "utf8");
    const links = [...readme.matchAll(/\]\(((?:docs|examples|schema)\/[^)#\s]+)/g)].map((m) => m[1]);
    assert.ok(links.length > 5, "the README links to docs, examples and the schema");
    for (const link of links) assert.ok(existsSync(join(installed, link)), `README link ${link} resolves in the installed package`);
    assert.ok(readdirSync(join(installed, "docs")).length > 0);
    assert.equal(realpathSync(dirname(require.resolve("cdktf/package.json", { paths: [installed] }))), realpathSync(join(app, "node_modules", "cdktf")), "the package uses the app's cdktf");
  });
});
