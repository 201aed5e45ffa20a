/**
 * Seeded fuzzing of the environment loader with mutants of the three bundled examples.
 *
 * Each mutant either fails with a ConfigError whose every problem is well formed (file name, non-empty
 * message, no stack text, no "undefined" / "[object Object]"), or loads, renders and passes the real
 * `haproxy -dW -c -f`. Anything else (a crash, a renderer exception, a config haproxy rejects) is a
 * failure printed with the seed, the mutant number, the mutations and the mutant itself.
 *
 * Deterministic: FUZZ_SEED (default below) picks the mutants, FUZZ_COUNT how many (default 300);
 * FUZZ_ONLY=<n> replays mutant n of a seed alone. Every mutant draws from its own generator seeded by
 * (seed, n), so a replay needs only those two numbers.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { ConfigError } from "../lib/config/errors";
import { loadEnvironment, parseEnvironment } from "../lib/load/load";
import { ResolvedEnvironment } from "../lib/config/model";
import { renderHaproxy } from "../lib/haproxy/build";
import { haproxyCheck } from "./helpers/haproxy";
import { makeSelfSignedPem, tempDir } from "./helpers/tools";

const DEFAULT_SEED = 0x1a6e5eed;
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : DEFAULT_SEED;
const COUNT = process.env.FUZZ_COUNT !== undefined ? Number(process.env.FUZZ_COUNT) : 300;
const ONLY = process.env.FUZZ_ONLY !== undefined ? Number(process.env.FUZZ_ONLY) : undefined;
for (const [name, value] of [["FUZZ_SEED", SEED], ["FUZZ_COUNT", COUNT], ["FUZZ_ONLY", ONLY ?? 0]] as const) {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a whole number >= 0, got ${JSON.stringify(process.env[name])}`);
}

const EXAMPLES = join(__dirname, "..", "..", "examples");
const EXAMPLE_FILES = ["agfa-ei-one-arm.yaml", "agfa-ei-two-arm.yaml", "agfa-ei-ha-pair.yaml"];
const STATS_ENV = { IMAGING_LB_STATS_PASSWORD: "fuzz-password" };

// --- a small seeded generator (mulberry32) ----------------------------------------------------------

type Rng = () => number;

function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The generator of mutant `n`: independent of every other mutant, so one can be replayed alone. */
const mutantRng = (seed: number, n: number): Rng => mulberry32(Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(n + 1, 0xc2b2ae35));

const int = (rng: Rng, n: number) => Math.floor(rng() * n);
const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)];

// --- values ---------------------------------------------------------------------------------------

const NUMBERS = [0, -1, 1, 2, 7, 80, 104, 443, 8404, 65535, 65536, 70000, 2 ** 31, 2 ** 53 + 2, 1e308, -1e308, 1.5, -0.0001, 255, 256, 1024];
const STRINGS = [
  "", " ", "ümlaut", "日本語", "🩻", "%{", "%[src]", "${HOME}", "$(reboot)", '"', "'", "a\nb", "line\r\nbreak", "\\", "#", "a b",
  "x".repeat(300), "-", "0x1F", "1e3", "null", "~", "yes", "on", "10.0.0.1", "10.0.0.0/8", "eu-west-1a", "5s", "lb-a", "web", ":",
  "- a", "*a", "&a", "!!str", "{}", "[]", "\t", "\u0000", "\u202e", "ei-core-1", "/path", "EI_CORE", "A\\B", "\u00a0",
];
const DURATIONS = ["1ms", "500ms", "1s", "3s", "5s", "30s", "10m", "1h", "24h", "2d"];

function randomScalar(rng: Rng): unknown {
  switch (int(rng, 4)) {
    case 0:
      return pick(rng, NUMBERS);
    case 1:
      return pick(rng, STRINGS);
    case 2:
      return rng() < 0.5;
    default:
      return null;
  }
}

function randomValue(rng: Rng, depth = 0): unknown {
  const roll = int(rng, depth > 1 ? 4 : 6);
  if (roll === 4) return Array.from({ length: int(rng, 3) }, () => randomValue(rng, depth + 1));
  if (roll === 5) return Object.fromEntries(Array.from({ length: int(rng, 3) }, () => [pick(rng, ["a", "type", "port", "x-y", "Z"]), randomValue(rng, depth + 1)]));
  return randomScalar(rng);
}

/** A value of another type than `value` (string for a number, list for a mapping, ...). */
function otherType(rng: Rng, value: unknown): unknown {
  const kind = (v: unknown) => (Array.isArray(v) ? "list" : v === null ? "null" : typeof v);
  for (let i = 0; i < 20; i++) {
    const v = randomValue(rng);
    if (kind(v) !== kind(value)) return v;
  }
  return typeof value === "string" ? 1 : "x";
}

// --- the tree ---------------------------------------------------------------------------------------

type Tree = Record<string, unknown>;
type Path = Array<string | number>;
type Container = Record<string | number, unknown>;

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Every path in the tree (maps and lists included), depth first. */
function paths(node: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [];
  if (Array.isArray(node)) node.forEach((v, i) => out.push([...prefix, i], ...paths(v, [...prefix, i])));
  else if (isMap(node)) for (const [k, v] of Object.entries(node)) out.push([...prefix, k], ...paths(v, [...prefix, k]));
  return out;
}

const leafPaths = (tree: Tree) => paths(tree).filter((p) => !isMap(get(tree, p)) && !Array.isArray(get(tree, p)));
const mapPaths = (tree: Tree): Path[] => [[], ...paths(tree).filter((p) => isMap(get(tree, p)))];

function get(tree: unknown, path: Path): unknown {
  let cur = tree;
  for (const seg of path) cur = (cur as Container)?.[seg];
  return cur;
}

function parentOf(tree: Tree, path: Path): Container {
  return get(tree, path.slice(0, -1)) as Container;
}

/** Sets `path`, creating mappings on the way (replacing scalars that stand in the way). */
function setPath(tree: Tree, path: Path, value: unknown): void {
  let cur: Container = tree;
  for (const seg of path.slice(0, -1)) {
    if (typeof cur[seg] !== "object" || cur[seg] === null) cur[seg] = {};
    cur = cur[seg] as Container;
  }
  cur[path[path.length - 1]] = value;
}

const show = (path: Path) => path.join(".") || "(root)";

/** Control characters as \xNN, so a failing mutant prints (and copies) cleanly. */
const visible = (text: string) =>
  text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);

// --- mutations ------------------------------------------------------------------------------------

const PRESET_SERVICES = ["xero", "xero-xtend", "core", "dicom", "hl7"];

/** Changes that keep a file valid more often than not: other enum values, plausible settings. */
const TWEAKS: ReadonlyArray<(rng: Rng, tree: Tree) => [Path, unknown]> = [
  (rng) => [["services", pick(rng, PRESET_SERVICES), "enabled"], rng() < 0.5],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "balance"], pick(rng, ["leastconn", "roundrobin", "source", "active-backup"])],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "mode"], pick(rng, ["http", "tcp"])],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "persistence", "type"], pick(rng, ["none", "source-ip", "cookie", "cookie-source"])],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "persistence", "timeout"], pick(rng, DURATIONS)],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "healthCheck", "type"], pick(rng, ["tcp", "tls", "http", "dicom-echo", "none"])],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "healthCheck", "interval"], pick(rng, DURATIONS)],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "healthCheck", "fall"], int(rng, 5) + 1],
  (rng) => [["services", "xero", "healthCheck", "path"], `/${pick(rng, STRINGS)}`],
  (rng) => [["services", "xero", "healthCheck", "host"], pick(rng, ["ei.example.org", "localhost", pick(rng, STRINGS)])],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "clientAddress"], pick(rng, ["snat", "forwarded-for", "tproxy", "source"])],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "tcpKeepalive"], rng() < 0.5],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "maxConnections"], pick(rng, [1, 100, 10000, 1000000, 0, -5])],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "timeouts", pick(rng, ["connect", "client", "server", "queue", "check", "httpRequest", "tunnel"])], pick(rng, DURATIONS)],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "description"], pick(rng, STRINGS)],
  (rng) => [["services", pick(rng, ["xero", "xero-xtend"]), "requestHeaders", "set", pick(rng, ["X-Site", "X-Test"])], pick(rng, STRINGS)],
  (rng) => [["services", pick(rng, ["xero", "xero-xtend"]), "responseHeaders", "delete"], [pick(rng, ["Server", "X-Powered-By"])]],
  (rng) => [["services", pick(rng, ["xero", "xero-xtend"]), "persistence", "cookieName"], pick(rng, ["SERVERID", "EI_LB", pick(rng, STRINGS)])],
  (rng) => [["services", pick(rng, ["xero", "xero-xtend"]), "tls", "hsts"], rng() < 0.5],
  (rng) => [["services", pick(rng, ["xero", "xero-xtend"]), "tls", "mode"], pick(rng, ["none", "terminate", "reencrypt", "passthrough"])],
  (rng) => [["services", "dicom", "healthCheck", "calledAeTitle"], pick(rng, ["EI_CORE", "PACS", "A", "SIXTEEN_CHARS_AE", pick(rng, STRINGS)])],
  (rng) => [["services", "dicom", "healthCheck", "variant"], pick(rng, ["c-echo", "associate"])],
  (rng) => [["services", pick(rng, PRESET_SERVICES), "backendPort"], pick(rng, [80, 8080, 104, 11112, 65535])],
  (rng, tree) => [["servers", pick(rng, Object.keys((tree.servers as object) ?? { "ei-core-1": 1 })), "weight"], int(rng, 257)],
  (rng, tree) => [["servers", pick(rng, Object.keys((tree.servers as object) ?? { "ei-core-1": 1 })), "aeTitle"], pick(rng, ["EI_CORE", pick(rng, STRINGS)])],
  (rng, tree) => [["servers", pick(rng, Object.keys((tree.servers as object) ?? { "ei-core-1": 1 })), "services"], { [pick(rng, PRESET_SERVICES)]: { backup: rng() < 0.5 } }],
  (rng) => [["servers", "ei-core-9"], { address: pick(rng, ["10.20.1.29", "10.30.1.29", "192.168.7.9"]) }],
  (rng) => [["vips", pick(rng, ["web", "core"]), "elasticIp"], rng() < 0.5],
  (rng) => [["admin", "statsUser"], pick(rng, ["admin", "ops", pick(rng, STRINGS)])],
  (rng) => [["admin", "statsPort"], pick(rng, [8404, 9000, 443, 104, 1])],
  (rng) => [["admin", "prometheus"], rng() < 0.5],
  (rng) => [["admin", "cloudWatchLogGroup"], pick(rng, ["/imaging-lb/haproxy", pick(rng, STRINGS)])],
  (rng) => [["tags", pick(rng, ["Owner", "cost-center", pick(rng, STRINGS)])], pick(rng, STRINGS)],
  (rng) => [["loadBalancer", "os"], pick(rng, ["ubuntu-24.04", "al2023"])],
  (rng) => [["loadBalancer", "haproxy", "source"], pick(rng, ["distribution", "ppa"])],
  (rng) => [["loadBalancer", "ha", "vipMode"], pick(rng, ["secondary-ip", "elastic-ip", "route-table"])],
  (rng) => [["loadBalancer", "ha", "preempt"], rng() < 0.5],
  (rng) => [["network", "layout"], pick(rng, ["one-arm", "two-arm"])],
];

type TreeMutation = (rng: Rng, tree: Tree) => string | undefined;

const tweak: TreeMutation = (rng, tree) => {
  const [path, value] = pick(rng, TWEAKS)(rng, tree);
  setPath(tree, path, value);
  return `${show(path)} = ${JSON.stringify(value)}`;
};

const TREE_MUTATIONS: ReadonlyArray<[string, TreeMutation]> = [
  ["delete", (rng, tree) => {
    const all = paths(tree);
    if (all.length === 0) return undefined;
    const path = pick(rng, all);
    const parent = parentOf(tree, path);
    if (Array.isArray(parent)) parent.splice(path[path.length - 1] as number, 1);
    else delete parent[path[path.length - 1]];
    return `delete ${show(path)}`;
  }],
  ["other type", (rng, tree) => {
    const path = pick(rng, paths(tree));
    if (!path) return undefined;
    const value = otherType(rng, get(tree, path));
    parentOf(tree, path)[path[path.length - 1]] = value;
    return `${show(path)} = ${JSON.stringify(value)}`;
  }],
  ["number", (rng, tree) => {
    const path = pick(rng, leafPaths(tree));
    if (!path) return undefined;
    const value = rng() < 0.5 ? pick(rng, NUMBERS) : Math.round((rng() - 0.5) * 2 ** int(rng, 60));
    parentOf(tree, path)[path[path.length - 1]] = value;
    return `${show(path)} = ${value}`;
  }],
  ["string", (rng, tree) => {
    const path = pick(rng, leafPaths(tree));
    if (!path) return undefined;
    const value = pick(rng, STRINGS);
    parentOf(tree, path)[path[path.length - 1]] = value;
    return `${show(path)} = ${JSON.stringify(value)}`;
  }],
  ["swap", (rng, tree) => {
    const leaves = leafPaths(tree);
    if (leaves.length < 2) return undefined;
    const a = pick(rng, leaves);
    const b = pick(rng, leaves);
    const va = get(tree, a);
    parentOf(tree, a)[a[a.length - 1]] = get(tree, b);
    parentOf(tree, b)[b[b.length - 1]] = va;
    return `swap ${show(a)} <-> ${show(b)}`;
  }],
  ["unknown key", (rng, tree) => {
    const at = pick(rng, mapPaths(tree));
    const key = pick(rng, ["foo", "nmae", "servers2", "healthcheck", "Mode", "x_y", "ünknown", "1", "enabled "]);
    (get(tree, at) as Container)[key] = randomValue(rng);
    return `add ${show([...at, key])}`;
  }],
  ["tweak", tweak],
  ["tweak", tweak], // twice: about a quarter of the mutations keep the file plausible, so many mutants stay valid
];

type TextMutation = (rng: Rng, text: string) => [string, string];

const TEXT_MUTATIONS: ReadonlyArray<TextMutation> = [
  (rng, text) => {
    const at = int(rng, text.length);
    return [text.slice(0, at), `truncate at ${at}`];
  },
  (rng, text) => {
    const at = int(rng, text.length + 1);
    const byte = int(rng, 256);
    return [text.slice(0, at) + String.fromCharCode(byte) + text.slice(at), `insert char 0x${byte.toString(16)} at ${at}`];
  },
  (rng, text) => {
    const colons = [...text.matchAll(/:/g)].map((m) => m.index);
    if (colons.length === 0) return [text, "no colon"];
    const at = pick(rng, colons);
    return [text.slice(0, at) + text.slice(at + 1), `remove colon at ${at}`];
  },
  (rng, text) => {
    const lines = text.split("\n");
    const i = int(rng, lines.length);
    lines.splice(i, 0, lines[i]);
    return [lines.join("\n"), `duplicate line ${i + 1}`];
  },
  (rng, text) => {
    const lines = text.split("\n");
    const i = int(rng, lines.length);
    lines[i] = rng() < 0.5 ? `  ${lines[i]}` : lines[i].replace(/^ {1,2}/, "");
    return [lines.join("\n"), `re-indent line ${i + 1}`];
  },
  (rng, text) => {
    const lines = text.split("\n");
    const i = int(rng, lines.length);
    lines.splice(i, 1);
    return [lines.join("\n"), `delete line ${i + 1}`];
  },
];

interface Mutant {
  readonly n: number;
  readonly example: string;
  readonly ops: string[];
  readonly text: string;
  /** Raw bytes to load from a file instead of the text (a byte that is not UTF-8). */
  readonly bytes?: Buffer;
}

function makeMutant(n: number, sources: ReadonlyMap<string, string>): Mutant {
  const rng = mutantRng(SEED, n);
  const example = pick(rng, EXAMPLE_FILES);
  const original = sources.get(example)!;
  const ops: string[] = [];
  const roll = rng();
  let text: string;
  if (roll < 0.15) {
    text = original; // text mutations of the hand-written file (comments, flow mappings)
  } else {
    const tree = parse(original) as Tree;
    const count = 1 + int(rng, 3);
    for (let i = 0; i < count; i++) {
      const [name, mutate] = pick(rng, TREE_MUTATIONS);
      const op = mutate(rng, tree);
      if (op) ops.push(`${name}: ${op}`);
    }
    text = stringify(tree);
  }
  if (roll < 0.15 || rng() < 0.15) {
    const [mutated, op] = pick(rng, TEXT_MUTATIONS)(rng, text);
    text = mutated;
    ops.push(`text: ${op}`);
  }
  if (rng() < 0.03) {
    const bytes = Buffer.from(text, "utf8");
    const at = int(rng, bytes.length + 1);
    const byte = 0x80 + int(rng, 0x80);
    ops.push(`bytes: insert 0x${byte.toString(16)} at ${at}`);
    return { n, example, ops, text, bytes: Buffer.concat([bytes.subarray(0, at), Buffer.from([byte]), bytes.subarray(at)]) };
  }
  return { n, example, ops, text };
}

// --- the check --------------------------------------------------------------------------------------

const FILE = "mutant.yaml";

interface Outcome {
  readonly kind: "rejected" | "valid" | "failure";
  readonly detail?: string;
}

function checkProblems(err: ConfigError, file: string): string | undefined {
  if (err.problems.length === 0) return "ConfigError with no problems";
  for (const p of err.problems) {
    const bad =
      typeof p.file !== "string" || p.file !== file ? `file is ${JSON.stringify(p.file)}` :
      typeof p.message !== "string" || p.message.trim() === "" ? "empty message" :
      typeof p.path !== "string" ? `path is ${JSON.stringify(p.path)}` :
      /\n\s*at |at Object\./.test(p.message) ? "stack text in the message" :
      /\bundefined\b|\[object Object\]/.test(p.message) ? "'undefined' or '[object Object]' in the message" :
      p.line !== undefined && !(Number.isInteger(p.line) && p.line >= 1) ? `line is ${String(p.line)}` :
      p.column !== undefined && !(Number.isInteger(p.column) && p.column >= 1) ? `column is ${String(p.column)}` :
      undefined;
    if (bad) return `malformed problem (${bad}): ${JSON.stringify(p)}`;
  }
  return undefined;
}

describe(`environment loader fuzzing (FUZZ_SEED=${SEED}, ${ONLY !== undefined ? `FUZZ_ONLY=${ONLY}` : `${COUNT} mutants`})`, () => {
  let dir: { path: string; cleanup: () => void };
  const pems = new Set<string>();
  before(() => {
    dir = tempDir("config-fuzz");
  });
  after(() => dir.cleanup());

  function haproxyAccepts(env: ResolvedEnvironment): string | undefined {
    for (const c of env.certificates) {
      if (!pems.has(c.name)) {
        makeSelfSignedPem(dir.path, c.name);
        pems.add(c.name);
      }
    }
    const cfg = renderHaproxy(env, { certBase: dir.path });
    for (const node of env.nodes) {
      const result = haproxyCheck(dir.path, cfg, { localPeer: env.nodes.length === 2 ? node.name : undefined, env: STATS_ENV });
      if (!result.ok) return `haproxy -dW -c rejected the rendered config on ${node.name}:\n${result.output}\n--- haproxy.cfg ---\n${cfg}`;
    }
    return undefined;
  }

  function run(m: Mutant): Outcome {
    let env: ResolvedEnvironment;
    const file = m.bytes ? join(dir.path, FILE) : FILE;
    try {
      if (m.bytes) {
        writeFileSync(file, m.bytes);
        env = loadEnvironment(file);
      } else {
        env = parseEnvironment(m.text, FILE);
      }
    } catch (e) {
      if (!(e instanceof ConfigError)) return { kind: "failure", detail: `the loader threw something other than ConfigError:\n${e instanceof Error ? e.stack : String(e)}` };
      const bad = checkProblems(e, file);
      return bad ? { kind: "failure", detail: `${bad}\nall problems:\n${e.message}` } : { kind: "rejected" };
    }
    try {
      const bad = haproxyAccepts(env);
      return bad ? { kind: "failure", detail: bad } : { kind: "valid" };
    } catch (e) {
      return { kind: "failure", detail: `the loader accepted the file but rendering threw:\n${e instanceof Error ? e.stack : String(e)}` };
    }
  }

  it("every mutant is either rejected with well-formed problems or renders a config haproxy accepts", () => {
    const sources = new Map(EXAMPLE_FILES.map((f) => [f, readFileSync(join(EXAMPLES, f), "utf8")]));
    const numbers = ONLY !== undefined ? [ONLY] : Array.from({ length: COUNT }, (_, i) => i);
    const counts = { rejected: 0, valid: 0, failure: 0 };
    const failures: string[] = [];
    const started = Date.now();
    for (const n of numbers) {
      const m = makeMutant(n, sources);
      const outcome = run(m);
      counts[outcome.kind]++;
      if (outcome.kind === "failure") {
        const text = visible(m.text.length > 6000 ? `${m.text.slice(0, 6000)}\n... (${m.text.length} characters)` : m.text);
        failures.push(
          `FUZZ_SEED=${SEED} FUZZ_ONLY=${n} (from ${m.example}; ${m.ops.join("; ") || "no change"})\n${outcome.detail}\n--- mutant ---\n${text}`,
        );
      }
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `config fuzz: seed ${SEED}, ${numbers.length} mutants in ${seconds}s: ${counts.rejected} rejected with ConfigError, ` +
        `${counts.valid} valid and accepted by haproxy -dW -c, ${counts.failure} failures`,
    );
    if (failures.length > 0) {
      const shown = failures.slice(0, 5);
      assert.fail(`${failures.length} of ${numbers.length} mutants failed (first ${shown.length} below)\n\n${shown.join("\n\n==========\n\n")}`);
    }
    if (ONLY === undefined) {
      assert.ok(counts.valid >= Math.max(3, Math.floor(numbers.length / 20)), `only ${counts.valid} valid mutants reached haproxy`);
      assert.ok(counts.rejected >= Math.floor(numbers.length / 4), `only ${counts.rejected} mutants were rejected`);
    }
  });
});
