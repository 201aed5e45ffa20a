/**
 * The documentation stays true: the committed environment reference equals what the generator makes
 * from the schema today, every `imaging-lb <command>`, `npm run <script>` and `cdktf <command>` in
 * README.md, docs/ and the pipelines README exists, and every relative link points at a file (and
 * heading) that exists.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { diagramCommand } from "../lib/cli/commands/diagram";
import { initCommand } from "../lib/cli/commands/init";
import { loadEnvironment, parseEnvironment } from "../lib/load/load";
import { pairFiles } from "../lib/node/ha-pair";
import { environmentJsonSchema } from "../lib/config/schema";
import { nlbDetectionSeconds, nlbListeners } from "../lib/plan/nlb";
import { NLB_HEALTH_CHECK } from "../lib/config/nlb-limits";
import { presetServices, REFERENCE_FILE, referenceRows, renderEnvironmentReference } from "../scripts/env-reference";
import { environment, resolve } from "./helpers/env";

const ROOT = join(__dirname, "..", "..");
const DOCS = readdirSync(join(ROOT, "docs"))
  .filter((f) => f.endsWith(".md"))
  .sort()
  .map((f) => join("docs", f));
const PAGES = ["README.md", ...DOCS, join("examples", "pipelines", "README.md")];
const SCRIPTS = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
const CDKTF_SUBCOMMANDS = new Set(["synth", "diff", "deploy", "destroy", "list", "output"]);

/** The CLI's commands as `imaging-lb --help` lists them (live), plus the diagram and init modules'. */
function cliCommands(): Set<string> {
  const run = spawnSync(process.execPath, [join(ROOT, "dist", "lib", "cli", "main.js"), "--help"], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  const listed = run.stdout.split("commands:\n")[1]?.split("\n\n")[0] ?? "";
  const names = listed.split("\n").map((l) => /^ {2}(\S+)/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  assert.ok(names.length > 0, run.stdout);
  return new Set([...names, ...[diagramCommand, initCommand].map((c) => c.usage.split(" ")[1])]);
}

/** The code of a Markdown page: fenced blocks and inline code spans (prose mentions are not commands). */
function codeOf(markdown: string): string[] {
  const code: string[] = [];
  const prose = markdown.replace(/^```[^\n]*\n([\s\S]*?)^```$/gm, (_, block: string) => {
    code.push(block);
    return "";
  });
  for (const m of prose.matchAll(/`([^`\n]+)`/g)) code.push(m[1]);
  return code;
}

const read = (page: string) => readFileSync(join(ROOT, page), "utf8");

describe("docs/environment-reference.md", () => {
  it("is the generator's output for the current schema (regenerate: npm run build && node dist/scripts/env-reference.js --write)", () => {
    assert.equal(read(REFERENCE_FILE), renderEnvironmentReference());
  });

  it("has a row for every field of the schema, with the defaults the schema declares", () => {
    const rows = new Map(referenceRows().map((r) => [r.path, r]));
    const schema = environmentJsonSchema() as { properties: Record<string, unknown>; required: string[] };
    for (const key of Object.keys(schema.properties)) assert.ok(rows.has(key), key);
    for (const key of schema.required) assert.equal(rows.get(key)?.required, true, `${key} is required`);
    for (const path of ["network.subnet.cidr", "network.external.cidr", "loadBalancer.nodes.<name>.internalAddress", "services.<name>.healthCheck.calledAeTitle", "services.<name>.rewrites[].match", "servers.<name>.services.<name>.weight"]) {
      assert.ok(rows.has(path), path);
    }
    assert.equal(rows.get("loadBalancer.instanceType")?.defaultValue, "`c6i.large`");
    assert.equal(rows.get("admin.statsPort")?.defaultValue, "`8404`");
    assert.equal(rows.get("stateBackend.key")?.defaultValue, "imaging-lb/<name>.tfstate");
    assert.match(rows.get("network.layout")?.type ?? "", /one of `one-arm`, `two-arm`/);
  });
  it("states each default once: a field with a schema default does not repeat it as @default in its description", () => {
    const repeated: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (node === null || typeof node !== "object") return;
      const field = node as Record<string, unknown>;
      if ("default" in field && typeof field.description === "string" && field.description.includes("@default")) repeated.push(path);
      for (const [key, value] of Object.entries(field)) walk(value, `${path}/${key}`);
    };
    walk(environmentJsonSchema(), "");
    assert.deepEqual(repeated, []);
  });
});

describe("commands named in the documentation exist", () => {
  const commands = cliCommands();
  for (const page of PAGES) {
    it(page, () => {
      const items = codeOf(read(page));
      const code = items.join("\n");
      const used = {
        // Each code block or span on its own: a span `imaging-lb` (the namespace) followed by the next one is no command.
        imagingLb: items.flatMap((item) => [...item.matchAll(/(?:^|[\s(;&|])imaging-lb\s+([a-z][a-z-]*)/gm)].map((m) => m[1])),
        npmRun: [...code.matchAll(/npm run ([A-Za-z0-9:_-]+(?:\.[A-Za-z0-9:_-]+)*)/g)].map((m) => m[1]),
        cdktf: [...code.matchAll(/npx cdktf ([a-z-]+)/g)].map((m) => m[1]),
      };
      for (const c of used.imagingLb) assert.ok(commands.has(c), `${page}: imaging-lb ${c}: not a command (have ${[...commands].join(", ")})`);
      for (const s of used.npmRun) assert.ok(s in SCRIPTS, `${page}: npm run ${s}: no such script in package.json`);
      for (const c of used.cdktf) assert.ok(CDKTF_SUBCOMMANDS.has(c), `${page}: cdktf ${c}: not a cdktf-cli command`);
    });
  }

  it("the recipes cover the commands they are about", () => {
    const all = DOCS.map((d) => codeOf(read(d)).join("\n")).join("\n");
    for (const needle of ["imaging-lb validate", "npx cdktf diff", "npx cdktf deploy", "set server", "state drain", "show servers state", "imaging-lb-agent", "systemctl stop haproxy", "ip proto 112"]) {
      assert.ok(all.includes(needle), needle);
    }
  });
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as '-'. */
const anchor = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");

describe("relative links in the documentation resolve", () => {
  for (const page of PAGES) {
    it(page, () => {
      const text = read(page);
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/.test(target)) continue;
        const [file, hash] = target.split("#");
        const path = file === "" ? join(ROOT, page) : join(ROOT, dirname(page), file);
        assert.ok(existsSync(path), `${page}: link ${target}: no such file`);
        if (hash && path.endsWith(".md")) {
          const anchors = [...readFileSync(path, "utf8").matchAll(/^#+ (.*)$/gm)].map((h) => anchor(h[1]));
          assert.ok(anchors.includes(hash), `${page}: link ${target}: no heading #${hash} (have ${anchors.join(", ")})`);
        }
      }
    });
  }
});

describe("the documentation says what the product does", () => {
  const cli = (...args: string[]) => {
    const run = spawnSync(process.execPath, [join(ROOT, "dist", "lib", "cli", "main.js"), ...args], { cwd: ROOT, encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    return run.stdout;
  };

  it("failover-drill.md: the timers it names are the rendered keepalived.conf's, and the times it derives follow from them", () => {
    // The example pair, with preempt on (the default) so that the preempt delay is rendered too.
    const example = read(join("examples", "agfa-ei-ha-pair.yaml"));
    assert.match(example, /^ {4}preempt: false\b/m);
    const env = parseEnvironment(example.replace(/^ {4}preempt: false\b/m, "    preempt: true"), "examples/agfa-ei-ha-pair.yaml (preempt: true)");
    const conf = (role: "primary" | "secondary"): string => {
      const files = pairFiles(env, env.nodes.find((n) => n.role === role)!);
      assert.ok(files);
      return files.keepalivedConf;
    };
    const primary = conf("primary");
    const secondary = conf("secondary");
    const lines = new Set(primary.split("\n").map((l) => l.trim()));
    const drill = read(join("docs", "failover-drill.md"));
    const timers = drill.split("## Timers")[1]?.split("\n## ")[0] ?? "";
    const settings = [...timers.matchAll(/`([a-z_]+(?: [^`]+)?)`/g)].map((m) => m[1]).filter((c) => /^(version|advert_int|process|quorum|interval|fall|timeout|preempt_delay|vrrp_priority|vrrp_no_swap|vrrp_track_process)\b/.test(c));
    assert.ok(settings.length >= 10, `the Timers table names the settings: ${settings.join(", ")}`);
    for (const setting of settings) assert.ok(lines.has(setting) || new RegExp(`^${setting} `, "m").test(primary), `keepalived.conf has \`${setting}\``);
    const health = /vrrp_script imaging_lb_haproxy_health \{[^}]*script "([^"]+)"[^}]*interval (\d+)[^}]*timeout (\d+)[^}]*fall (\d+)/.exec(primary);
    assert.ok(health, primary);
    const url = /http:\/\/\S+/.exec(health[1])?.[0] ?? "";
    assert.ok(url && drill.includes(url), `the drill names the probed URL ${url}`);
    assert.match(drill.replace(/\s+/g, " "), new RegExp(`\\(every ${health[2]} s, ${health[4]} failures\\)`));
    // The derived times: master-down = (3 + (256 - priority) / 256) adverts; skew = (256 - priority) / 256 adverts.
    const advert = Number(/^ {4}advert_int ([\d.]+)$/m.exec(primary)?.[1]);
    const priority = (c: string): number => Number(/^ {4}priority (\d+)$/m.exec(c)?.[1]);
    const s = (x: number): string => `${Math.round(x * 10) / 10} s`;
    const down = (c: string): string => s((3 + (256 - priority(c)) / 256) * advert);
    const skew = (c: string): string => s(((256 - priority(c)) / 256) * advert);
    assert.ok(timers.includes(`declares a silent MASTER dead after ${down(secondary)}, the primary after ${down(primary)}`), `master-down ${down(secondary)} / ${down(primary)}`);
    assert.ok(timers.includes(`takes over after ${skew(secondary)}, the primary after ${skew(primary)}`), `skew ${skew(secondary)} / ${skew(primary)}`);
    assert.ok(timers.includes(`one every ${s(advert)}`));
    assert.ok(timers.includes(`${Number(/^ {4}preempt_delay ([\d.]+)$/m.exec(primary)?.[1])} s after it is healthy again`));
    assert.doesNotMatch(drill.split("## What a failover costs")[0], /pidof|pgrep/, "how it works names no process-lookup command (0.2.0's are only compared with)");
  });

  it("multi-az-nlb.md: the health check, the detection time, the drain, the idle timeouts and the example are the product's", () => {
    const page = read(join("docs", "multi-az-nlb.md")).replace(/\s+/g, " ");
    const h = NLB_HEALTH_CHECK;
    assert.ok(page.includes(`HTTP GET of \`${h.path}\` on port ${h.port}`), "the page names the health page");
    assert.ok(page.includes(`interval ${h.intervalSeconds} s, timeout ${h.timeoutSeconds} s, ${h.unhealthyThreshold} failures to go unhealthy, ${h.healthyThreshold} successes`), "the page states the check's settings");
    const detection = nlbDetectionSeconds();
    assert.ok(page.includes(`Detection takes ${detection.best} to ${detection.worst} s`), `the page states the detection time the settings give (${detection.best}-${detection.worst} s)`);
    const example = loadEnvironment(join(ROOT, "examples", "agfa-ei-nlb.yaml"));
    assert.equal(example.ha?.vipMode, "nlb");
    assert.ok(page.includes(`default ${example.ha?.nlb?.drainSeconds} s`), "the drain default is the example's (the loader's default)");
    const idle = Object.fromEntries(nlbListeners(example).map((l) => [l.service, l.idleTimeoutSeconds]));
    assert.ok(page.includes(`${idle.dicom} s for DICOM and the core ports, ${idle["xero-xtend"]} s for the viewer (its tunnel timeout), ${idle.hl7} s for HL7`), `the idle timeouts the page states are the derived ones: ${JSON.stringify(idle)}`);
    assert.ok(page.includes("npx imaging-lb init --layout two-arm --nlb"), "the starter command");
    assert.ok(read("README.md").includes("| `nlb` |"), "README's HA table has the mode");
  });

  it("drain-a-server.md: socat, which the recipes use, is installed by the bootstrap (and the page says so)", () => {
    const userData = cli("render", "user-data", "examples/agfa-ei-one-arm.yaml");
    assert.match(userData, /\bsocat\b/, "the user data installs socat");
    const page = read(join("docs", "drain-a-server.md"));
    assert.match(page, /socat`, which the bootstrap installs on every node/);
    assert.doesNotMatch(page, /does not install|apt-get install -y socat|dnf install -y socat/);
  });

  it("environment-reference.md types the KMS key fields as KMS key ARNs and the secrets as secret ARNs", () => {
    const rows = new Map(referenceRows().map((r) => [r.path, r]));
    for (const path of ["tls.certificates.<name>.kmsKeyArn", "admin.statsPasswordKmsKeyArn"]) assert.match(rows.get(path)?.type ?? "", /^KMS key ARN/, path);
    for (const path of ["tls.certificates.<name>.secretArn", "admin.statsPasswordSecretArn"]) assert.equal(rows.get(path)?.type, "Secrets Manager secret ARN", path);
  });

  it("environment-reference.md: the called AE title default is the loader's (shared aeTitle, else ANY-SCP; required when they differ)", () => {
    const row = referenceRows().find((r) => r.path === "services.<name>.healthCheck.calledAeTitle");
    assert.match(row?.defaultValue ?? "", /aeTitle all the service's servers share, else ANY-SCP/);
    assert.match(row?.description ?? "", /required when the service's servers have different aeTitle values/);
    const dicom = (servers: Record<string, unknown>) =>
      environment({ services: { app: { healthCheck: { type: "dicom-echo" } } }, servers: { s1: null, s2: null, ...servers } });
    assert.equal(resolve(dicom({ a: { address: "10.20.1.21", aeTitle: "PACS" }, b: { address: "10.20.1.22", aeTitle: "PACS" } })).services[0].healthCheck.calledAeTitle, "PACS");
    assert.equal(resolve(dicom({ a: { address: "10.20.1.21" }, b: { address: "10.20.1.22" } })).services[0].healthCheck.calledAeTitle, "ANY-SCP");
    assert.throws(() => resolve(dicom({ a: { address: "10.20.1.21", aeTitle: "PACS1" }, b: { address: "10.20.1.22", aeTitle: "PACS2" } })), /missing calledAeTitle/);
  });

  it("environment-reference.md lists the preset's services with the loader's defaults, and says Xtend replaces xero", () => {
    const reference = read(REFERENCE_FILE);
    assert.match(reference, /\n`xero-xtend` replaces `xero` \(the same VIP and ports\): to use it, enable `xero-xtend` and disable `xero`\.\n/);
    const hl7 = presetServices().find((s) => s.name === "hl7")!;
    assert.ok(reference.includes(`| \`hl7\` | yes | core | 2310, 2311 | tcp, leastconn | source-ip 24h | tcp on every port every ${hl7.healthCheck.interval}, fall ${hl7.healthCheck.fall}, rise ${hl7.healthCheck.rise} |`));
  });

  for (const example of ["agfa-ei-one-arm.yaml", "agfa-ei-two-arm.yaml", "agfa-ei-ha-pair.yaml", "agfa-ei-nlb.yaml", "agfa-ei-baked.yaml"]) {
    it(`imaging-lb expand examples/${example}: every default written out (fall/rise, connect/check timeouts, check port), and it renders the same haproxy.cfg`, () => {
      const file = join("examples", example);
      const expanded = parse(cli("expand", file)) as { services: Record<string, Record<string, Record<string, unknown>>> };
      const env = loadEnvironment(join(ROOT, file));
      for (const s of env.services) {
        const own = expanded.services[s.name];
        assert.equal(own.healthCheck.fall, s.healthCheck.fall, `${s.name} fall`);
        assert.equal(own.healthCheck.rise, s.healthCheck.rise, `${s.name} rise`);
        assert.equal(own.healthCheck.interval, s.healthCheck.interval, `${s.name} interval`);
        if (s.routes.length === 0) assert.equal(own.healthCheck.port, s.healthCheck.port, `${s.name} check port`);
        for (const t of ["connect", "client", "server", "queue", "check"] as const) assert.equal(own.timeouts[t], s.timeouts[t], `${s.name} timeouts.${t}`);
      }
      assert.equal(expanded.services.hl7.healthCheck.port, undefined, "HL7 is checked on every port it serves (no single check port)");
      const dir = mkdtempSync(join(tmpdir(), "imaging-lb-expand-"));
      try {
        const again = join(dir, example);
        writeFileSync(again, stringify(expanded));
        const strip = (cfg: string) => cfg.replace(/^#.*\n/gm, "");
        assert.equal(strip(cli("render", "haproxy", again)), strip(cli("render", "haproxy", file)));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("scripts/install-test-tools.sh stops nothing by name, and lists the packages the tests use", () => {
    const script = read(join("scripts", "install-test-tools.sh"));
    const code = script.split("\n").filter((l) => !/^\s*#/.test(l)).map((l) => l.replace(/\s#.*$/, "")).join("\n");
    assert.doesNotMatch(code, /\b(pkill|killall)\b/);
    for (const pkg of ["librsvg2-bin", "util-linux", "haproxy", "keepalived", "openssl"]) assert.match(script, new RegExp(`\\n  ${pkg} +#`), pkg);
    assert.match(code, /policy-rc\.d/);
  });
});
