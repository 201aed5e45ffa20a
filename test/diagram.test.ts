/**
 * Layout drawings: the SVG is well-formed XML and names every node, VIP, service port and server of
 * each example; the Mermaid text is exact for small environments; both are deterministic; the
 * `diagram` command picks the format from the file extension and reports wrong usage with exit 2.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { diagramCommand } from "../lib/cli/commands/diagram";
import { ConfigError } from "../lib/config/errors";
import { loadEnvironment, parseEnvironment } from "../lib/load/load";
import { ResolvedEnvironment } from "../lib/config/model";
import { spawnSync } from "node:child_process";
import { renderMermaid, renderMermaidMarkdown, renderSvg } from "../lib/diagram";
import { environment, resolve } from "./helpers/env";
import { requireTool, tempDir } from "./helpers/tools";

const ROOT = join(__dirname, "..", "..");
const EXAMPLES = readdirSync(join(ROOT, "examples"))
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .map((f) => join("examples", f));

/** The parsed document: every text node (entities decoded) and every element name, in order. */
interface XmlDoc {
  readonly root: string;
  readonly elements: string[];
  readonly texts: string[];
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decode(text: string, where: number): string {
  return text.replace(/&([^;]*);?/g, (m, name: string) => {
    if (!m.endsWith(";")) throw new Error(`bare '&' at ${where}`);
    if (name in ENTITIES) return ENTITIES[name];
    const num = /^#(\d+)$/.exec(name) ?? /^#x([0-9a-fA-F]+)$/.exec(name);
    if (num) return String.fromCodePoint(parseInt(num[1], name.startsWith("#x") ? 16 : 10));
    throw new Error(`unknown entity &${name}; at ${where}`);
  });
}

/**
 * A small XML 1.0 well-formedness checker (no DTDs): one root element, properly nested and closed
 * tags, quoted and unique attributes, no '<' in attribute values, only the predefined and numeric
 * entities, nothing but comments and processing instructions outside the root.
 */
function parseXml(xml: string): XmlDoc {
  const NAME = /^[A-Za-z_:][A-Za-z0-9_.:-]*/;
  const stack: string[] = [];
  const elements: string[] = [];
  const texts: string[] = [];
  let root = "";
  let closedRoot = false;
  let i = 0;
  if (xml.startsWith("<?xml")) {
    const end = xml.indexOf("?>");
    if (end < 0) throw new Error("unterminated XML declaration");
    i = end + 2;
  }
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    if (text.trim() !== "") {
      if (stack.length === 0) throw new Error(`text outside the root element at ${i}: ${JSON.stringify(text.slice(0, 40))}`);
      texts.push(decode(text, i));
    }
    if (lt < 0) break;
    i = lt;
    if (xml.startsWith("<!--", i)) {
      const end = xml.indexOf("-->", i + 4);
      if (end < 0) throw new Error(`unterminated comment at ${i}`);
      if (xml.slice(i + 4, end).includes("--")) throw new Error(`'--' inside a comment at ${i}`);
      i = end + 3;
      continue;
    }
    if (xml.startsWith("<?", i)) {
      const end = xml.indexOf("?>", i);
      if (end < 0) throw new Error(`unterminated processing instruction at ${i}`);
      i = end + 2;
      continue;
    }
    if (xml.startsWith("<!", i)) throw new Error(`DOCTYPE/CDATA not expected at ${i}`);
    if (xml.startsWith("</", i)) {
      const name = NAME.exec(xml.slice(i + 2))?.[0];
      const end = xml.indexOf(">", i);
      if (!name || end < 0 || xml.slice(i + 2 + name.length, end).trim() !== "") throw new Error(`malformed end tag at ${i}`);
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> at ${i} closes <${open ?? "nothing"}>`);
      if (stack.length === 0) closedRoot = true;
      i = end + 1;
      continue;
    }
    const name = NAME.exec(xml.slice(i + 1))?.[0];
    if (!name) throw new Error(`malformed start tag at ${i}`);
    if (closedRoot || (stack.length === 0 && root !== "")) throw new Error(`second root element <${name}> at ${i}`);
    if (root === "") root = name;
    elements.push(name);
    let j = i + 1 + name.length;
    const seen = new Set<string>();
    for (;;) {
      const ws = /^\s*/.exec(xml.slice(j))?.[0].length ?? 0;
      j += ws;
      if (xml.startsWith("/>", j)) {
        j += 2;
        if (stack.length === 0) closedRoot = true;
        break;
      }
      if (xml[j] === ">") {
        j += 1;
        stack.push(name);
        break;
      }
      if (ws === 0) throw new Error(`expected whitespace before an attribute in <${name}> at ${j}`);
      const attr = /^([A-Za-z_:][A-Za-z0-9_.:-]*)\s*=\s*("[^"<]*"|'[^'<]*')/.exec(xml.slice(j));
      if (!attr) throw new Error(`malformed attribute in <${name}> at ${j}: ${JSON.stringify(xml.slice(j, j + 30))}`);
      if (seen.has(attr[1])) throw new Error(`duplicate attribute ${attr[1]} in <${name}> at ${j}`);
      seen.add(attr[1]);
      decode(attr[2].slice(1, -1), j);
      j += attr[0].length;
    }
    i = j;
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join("> <")}>`);
  if (root === "") throw new Error("no root element");
  return { root, elements, texts };
}

/** Every string a reader must find in the drawing of `env`. */
function expectedNames(env: ResolvedEnvironment): string[] {
  const names = [env.name];
  for (const n of env.nodes) names.push(n.name, n.internalAddress, ...(n.externalAddress ? [n.externalAddress] : []));
  for (const v of env.vips) names.push(v.name, v.address);
  for (const s of env.services) names.push(s.name);
  for (const s of env.services) for (const m of s.members) names.push(m.name, m.address);
  return [...new Set(names)];
}

function portsOf(env: ResolvedEnvironment): number[] {
  return env.services.flatMap((s) => [...s.frontendPorts, ...(s.tls.redirectHttpPort ? [s.tls.redirectHttpPort] : [])]);
}

describe("the XML checker used here", () => {
  it("accepts a well-formed document and rejects broken ones", () => {
    assert.equal(parseXml('<?xml version="1.0"?><!-- c --><a x="1"><b y=\'2\'/>t &amp; &#60;</a>').root, "a");
    for (const bad of ["<a><b></a></b>", "<a>", "<a></a><b/>", '<a x="1" x="2"/>', "<a>&nope;</a>", "<a>x & y</a>", '<a x="<"/>', "<a x=1/>", "text<a/>"]) {
      assert.throws(() => parseXml(bad), Error, bad);
    }
  });
});

describe("renderSvg", () => {
  for (const file of EXAMPLES) {
    it(`${file}: valid XML naming every node, VIP, service, port and server`, () => {
      const env = loadEnvironment(join(ROOT, file));
      const svg = renderSvg(env);
      const doc = parseXml(svg);
      assert.equal(doc.root, "svg");
      assert.match(svg, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n/);
      assert.match(svg, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/);
      const all = doc.texts.join("\n");
      assert.ok(doc.texts[0].startsWith(`${env.name}:`), "the <title> names the environment");
      for (const name of expectedNames(env)) assert.ok(all.includes(name), `${name} is in the drawing`);
      const words = new Set(all.split(/[^0-9]+/));
      for (const port of portsOf(env)) assert.ok(words.has(String(port)), `port ${port} is in the drawing`);
      const cidrs = env.network.layout === "two-arm" ? [env.network.internal.cidr, env.network.external.cidr] : [env.network.subnet.cidr];
      for (const cidr of cidrs) assert.ok(all.includes(cidr), `subnet ${cidr} is in the drawing`);
      for (const cidr of env.access.clientCidrs) assert.ok(all.includes(cidr), `client CIDR ${cidr} is in the drawing`);
      if (env.network.layout === "two-arm") {
        assert.ok(all.includes("external subnet (eth1)") && all.includes("internal subnet (eth0)"));
      }
      if (env.nodes.length === 2 && env.ha?.vipMode === "nlb") {
        // Both nodes active behind the NLBs: each labelled with its availability zone, the peers' link instead of VRRP.
        for (const n of env.nodes) assert.ok(doc.texts.includes(n.internalSubnet.availabilityZone), `${n.name} is labelled with its zone`);
        assert.ok(doc.texts.includes("Network Load Balancers, both zones"));
        assert.match(all, /HAProxy peers \(TCP 10000\)/);
        assert.doesNotMatch(all, /VRRP/);
      } else if (env.nodes.length === 2) {
        assert.ok(doc.texts.includes("primary") && doc.texts.includes("secondary"), "the pair is labelled primary/secondary");
        assert.match(all, /VRRP unicast \(IP protocol 112\)/);
      } else {
        assert.doesNotMatch(all, /VRRP/);
      }
      assert.equal(renderSvg(loadEnvironment(join(ROOT, file))), svg, "deterministic");
    });
  }

  it("does not depend on the order of the file's entries", () => {
    const a = environment({ servers: { s1: { address: "10.20.1.21" }, s2: { address: "10.20.1.22" } } });
    const b = environment({ servers: null });
    b.servers = { s2: { address: "10.20.1.22" }, s1: { address: "10.20.1.21" } };
    assert.equal(renderSvg(resolve(b)), renderSvg(resolve(a)));
    assert.equal(renderMermaid(resolve(b)), renderMermaid(resolve(a)));
  });

  it("escapes text: an AE title with XML/Mermaid metacharacters", () => {
    const env = resolve(environment({ servers: { s1: { address: "10.20.1.21", aeTitle: `A&B<"x'>` } } }));
    const svg = renderSvg(env);
    const doc = parseXml(svg);
    assert.ok(doc.texts.includes(`AE title A&B<"x'>`));
    assert.ok(svg.includes("AE title A&amp;B&lt;&quot;x&apos;&gt;"));
    assert.ok(renderMermaid(env).includes(`"s1<br/>10.20.1.21<br/>AE A#amp;B#lt;#quot;x'#gt;<br/>all services"`));
  });

  it("marks servers outside the server-side subnet as routed and keeps the band off them", () => {
    const env = resolve(environment({ servers: { s2: { address: "10.20.5.22" } } }));
    const texts = parseXml(renderSvg(env)).texts;
    assert.ok(texts.includes("10.20.5.22  (routed)"));
    assert.ok(texts.includes("10.20.1.21"));
  });
});

describe("renderMermaid", () => {
  it("two-arm, single load balancer: exact text", () => {
    assert.equal(
      renderMermaid(resolve(environment())),
      `---
title: "test-env: two-arm, single load balancer, eu-west-1"
---
%% generated by imaging-lb diagram from environment 'test-env'
flowchart LR
  clients(["clients<br/>10.0.0.0/8"])
  subgraph subnet_external["external subnet (eth1) 10.20.2.0/24 · eu-west-1a"]
    vip_main["VIP main<br/>10.20.2.100<br/>app tcp: 2000"]
    eth1_lb_a["lb-a eth1<br/>10.20.2.10"]
  end
  subgraph subnet_internal["internal subnet (eth0) 10.20.1.0/24 · eu-west-1a"]
    node_lb_a[["lb-a<br/>HAProxy<br/>eth0 10.20.1.10<br/>stats :8404 ← 10.99.0.0/24"]]
    srv_s1["s1<br/>10.20.1.21<br/>all services"]
    srv_s2["s2<br/>10.20.1.22<br/>all services"]
  end
  subgraph nat["public subnet (NAT gateway) 10.20.0.0/24 · eu-west-1a"]
    egress[/"NAT gateway<br/>package mirrors, AWS APIs<br/>TCP 80, 443"/]
  end
  clients --> vip_main
  vip_main --> eth1_lb_a
  eth1_lb_a --- node_lb_a
  node_lb_a --> srv_s1
  node_lb_a --> srv_s2
  node_lb_a -.-> egress
  classDef vip fill:#fff4e0,stroke:#c05621,color:#1a202c
  classDef lb fill:#e3effc,stroke:#2b6cb0,color:#1a202c
  classDef iface fill:#edf2f7,stroke:#4a5568,color:#1a202c
  classDef server fill:#e6f6ea,stroke:#2f855a,color:#1a202c
  classDef client fill:#f7fafc,stroke:#4a5568,color:#1a202c
  class vip_main vip
  class node_lb_a lb
  class eth1_lb_a iface
  class srv_s1,srv_s2 server
  class clients,egress client
`,
    );
  });

  it("one-arm HA pair with port translation and a routed server: exact text", () => {
    const env = resolve(
      environment({
        network: { layout: "one-arm", internal: null, external: null, subnet: { cidr: "10.20.1.0/24", availabilityZone: "eu-west-1a" } },
        loadBalancer: {
          nodes: { "lb-a": { internalAddress: "10.20.1.10", externalAddress: null }, "lb-b": { internalAddress: "10.20.1.11" } },
          ha: { vipMode: "secondary-ip", virtualRouterId: 7 },
        },
        vips: { main: { address: "10.20.1.100" } },
        services: { app: { frontendPorts: [80], backendPort: 8080 }, mllp: { frontendPorts: [2575] } },
        servers: { s1: { address: "10.20.1.21" }, s2: { address: "10.20.5.22", services: { mllp: { backup: true }, app: {} } }, s3: { address: "10.20.1.23", services: { mllp: {} } } },
      }),
    );
    assert.equal(
      renderMermaid(env),
      `---
title: "test-env: one-arm, HA pair (secondary-ip), eu-west-1"
---
%% generated by imaging-lb diagram from environment 'test-env'
flowchart LR
  clients(["clients<br/>10.0.0.0/8"])
  subgraph subnet_subnet["subnet (eth0) 10.20.1.0/24 · eu-west-1a"]
    vip_main["VIP main<br/>10.20.1.100<br/>app tcp: 80 → 8080<br/>mllp tcp: 2575"]
    node_lb_a[["lb-a (primary)<br/>HAProxy<br/>eth0 10.20.1.10<br/>stats :8404 ← 10.99.0.0/24"]]
    node_lb_b[["lb-b (secondary)<br/>HAProxy<br/>eth0 10.20.1.11<br/>stats :8404 ← 10.99.0.0/24"]]
    srv_s1["s1<br/>10.20.1.21<br/>all services"]
    srv_s3["s3<br/>10.20.1.23<br/>mllp"]
  end
  subgraph routed["servers on other subnets (routed)"]
    srv_s2["s2<br/>10.20.5.22<br/>all services; backup for mllp"]
  end
  subgraph nat["public subnet (NAT gateway) 10.20.0.0/24 · eu-west-1a"]
    egress[/"NAT gateway<br/>package mirrors, AWS APIs<br/>TCP 80, 443"/]
  end
  clients --> vip_main
  vip_main --> node_lb_a
  vip_main -.-> node_lb_b
  node_lb_a --> srv_s1
  node_lb_a --> srv_s2
  node_lb_a --> srv_s3
  node_lb_b -.-> srv_s1
  node_lb_b -.-> srv_s2
  node_lb_b -.-> srv_s3
  node_lb_a -.-> egress
  node_lb_b -.-> egress
  node_lb_a -.-|"VRRP unicast, IP protocol 112, vrid 7"| node_lb_b
  classDef vip fill:#fff4e0,stroke:#c05621,color:#1a202c
  classDef lb fill:#e3effc,stroke:#2b6cb0,color:#1a202c
  classDef iface fill:#edf2f7,stroke:#4a5568,color:#1a202c
  classDef server fill:#e6f6ea,stroke:#2f855a,color:#1a202c
  classDef client fill:#f7fafc,stroke:#4a5568,color:#1a202c
  class vip_main vip
  class node_lb_a,node_lb_b lb
  class srv_s1,srv_s2,srv_s3 server
  class clients,egress client
`,
    );
  });

  for (const file of EXAMPLES) {
    it(`${file}: names every node, VIP, service, port and server`, () => {
      const env = loadEnvironment(join(ROOT, file));
      const text = renderMermaid(env);
      for (const name of expectedNames(env)) assert.ok(text.includes(name), `${name} is in the Mermaid text`);
      const words = new Set(text.split(/[^0-9]+/));
      for (const port of portsOf(env)) assert.ok(words.has(String(port)), `port ${port}`);
      assert.equal(renderMermaid(loadEnvironment(join(ROOT, file))), text, "deterministic");
    });
  }

  it("renderMermaidMarkdown wraps the text in a mermaid fence", () => {
    const env = resolve(environment());
    assert.equal(renderMermaidMarkdown(env), `\`\`\`mermaid\n${renderMermaid(env)}\`\`\`\n`);
  });
});

/**
 * A route-table HA pair across availability zones (adopted VPC): lb-b has its own subnets in eu-west-1b,
 * and the VIPs are overlay addresses outside the VPC CIDR.
 */
function routeTablePair(): ResolvedEnvironment {
  return resolve(
    environment({
      network: {
        vpcId: "vpc-0a1b2c3d4e5f60718",
        natSubnet: null,
        internal: { subnetId: "subnet-0a1b2c3d4e5f60711" },
        external: { subnetId: "subnet-0a1b2c3d4e5f60712" },
      },
      loadBalancer: {
        nodes: {
          "lb-a": { internalAddress: "10.20.1.10", externalAddress: "10.20.2.10" },
          "lb-b": {
            internalAddress: "10.20.11.10",
            externalAddress: "10.20.12.10",
            internalSubnet: { cidr: "10.20.11.0/24", availabilityZone: "eu-west-1b", subnetId: "subnet-0a1b2c3d4e5f60721" },
            externalSubnet: { cidr: "10.20.12.0/24", availabilityZone: "eu-west-1b", subnetId: "subnet-0a1b2c3d4e5f60722" },
          },
        },
        ha: { vipMode: "route-table", routeTableIds: ["rtb-0a1b2c3d4e5f60711"] },
      },
      vips: { main: { address: "192.168.100.10" } },
      servers: { s1: { address: "10.20.1.21" }, s2: { address: "10.20.11.22" } },
    }),
  );
}

interface Rect {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

/** The subnet bands of a drawing, by id (`subnet-<key>`), and the overlay group. */
function bands(svg: string): Map<string, Rect> {
  const out = new Map<string, Rect>();
  for (const m of svg.matchAll(/<g class="(?:subnet|overlay)" id="([^"]+)">\n<rect x="(-?\d+)" y="(-?\d+)" width="(\d+)" height="(\d+)"/g)) {
    out.set(m[1], { x: +m[2], y: +m[3], w: +m[4], h: +m[5] });
  }
  return out;
}

/** The boxes of a class (vip, node, server, egress-box), by their heading. */
function boxes(svg: string, cls: string): Map<string, Rect> {
  const out = new Map<string, Rect>();
  for (const m of svg.matchAll(new RegExp(`<g class="${cls}">\\n<rect x="(-?\\d+)" y="(-?\\d+)" width="(\\d+)" height="(\\d+)"[^\\n]*\\n<text[^>]*>([^<]*)</text>`, "g"))) {
    out.set(m[5], { x: +m[1], y: +m[2], w: +m[3], h: +m[4] });
  }
  return out;
}

const inside = (inner: Rect, outer: Rect) => inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.w <= outer.x + outer.w && inner.y + inner.h <= outer.y + outer.h;
const overlaps = (a: Rect, b: Rect) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

describe("drawing a route-table pair across availability zones", () => {
  it("SVG: each node inside its own subnets' bands and no other's; the overlay VIP in no subnet band", () => {
    const svg = renderSvg(routeTablePair());
    parseXml(svg);
    const b = bands(svg);
    const n = boxes(svg, "node");
    assert.deepEqual([...b.keys()].sort(), ["overlay-vips", "subnet-external", "subnet-internal", "subnet-lb-b-external", "subnet-lb-b-internal"]);
    assert.deepEqual([...n.keys()], ["lb-a", "lb-b"]);
    const [a, bNode] = [n.get("lb-a")!, n.get("lb-b")!];
    // A node box spans both halves of its two-arm bands: it overlaps exactly its own two.
    for (const [node, own] of [[a, ["subnet-external", "subnet-internal"]], [bNode, ["subnet-lb-b-external", "subnet-lb-b-internal"]]] as const) {
      const hit = [...b.entries()].filter(([id, r]) => id.startsWith("subnet-") && overlaps(node, r)).map(([id]) => id).sort();
      assert.deepEqual(hit, [...own].sort());
      const union = own.map((id) => b.get(id)!);
      const box = { x: Math.min(...union.map((r) => r.x)), y: Math.min(...union.map((r) => r.y)), w: 0, h: 0 };
      const right = Math.max(...union.map((r) => r.x + r.w));
      const bottom = Math.max(...union.map((r) => r.y + r.h));
      assert.ok(inside(node, { ...box, w: right - box.x, h: bottom - box.y }), "the node lies within its bands");
    }
    const vip = boxes(svg, "vip").get("VIP main")!;
    for (const [id, r] of b) {
      if (id.startsWith("subnet-")) assert.ok(!overlaps(vip, r), `the overlay VIP is not drawn in ${id}`);
    }
    assert.ok(inside(vip, b.get("overlay-vips")!), "the VIP is in the overlay group");
    const texts = parseXml(svg).texts;
    assert.ok(texts.includes("lb-b external subnet (eth1)") && texts.includes("10.20.12.0/24 · eu-west-1b"));
    assert.ok(texts.includes("lb-b internal subnet (eth0)") && texts.includes("10.20.11.0/24 · eu-west-1b"));
    assert.ok(texts.includes("overlay VIPs, outside VPC 10.20.0.0/16") && texts.includes("routes in rtb-0a1b2c3d4e5f60711"));
    assert.ok(texts.includes("in 10.20.11.0/24 · eu-west-1b"), "a server says which node subnet holds it");
  });

  it("Mermaid: each node inside its own subnets' group; the overlay VIP in no subnet, saying what it is", () => {
    const text = renderMermaid(routeTablePair());
    const groups = new Map<string, string[]>();
    let current: string | undefined;
    for (const line of text.split("\n")) {
      const open = /^ {2}subgraph (\S+?)\[/.exec(line);
      if (open) {
        current = open[1];
        groups.set(current, []);
        assert.doesNotMatch(line, /<br\/>/, "a subgraph title is one line (Mermaid hides a second one)");
      } else if (line === "  end") current = undefined;
      else if (current) groups.get(current)!.push(line.trim().split(/[[(]/)[0]);
    }
    // One subgraph per node (its subnets in its availability zone): two adjacent ones per node make
    // Mermaid's layout draw one over the other (seen rendered in chromium).
    assert.deepEqual([...groups.keys()], ["subnets_lb_a", "subnets_lb_b"], "the VIP is in no subnet group");
    assert.deepEqual(groups.get("subnets_lb_a"), ["eth1_lb_a", "node_lb_a", "srv_s1"]);
    assert.deepEqual(groups.get("subnets_lb_b"), ["eth1_lb_b", "node_lb_b", "srv_s2"]);
    assert.match(text, /subgraph subnets_lb_a\["lb-a: external 10\.20\.2\.0\/24 \(eth1\), internal 10\.20\.1\.0\/24 \(eth0\) · eu-west-1a"\]/);
    assert.match(text, /subgraph subnets_lb_b\["lb-b: external 10\.20\.12\.0\/24 \(eth1\), internal 10\.20\.11\.0\/24 \(eth0\) · eu-west-1b"\]/);
    assert.match(text, /\n {4}vip_main\["VIP main<br\/>192\.168\.100\.10<br\/>overlay, outside VPC 10\.20\.0\.0\/16<br\/>routes in rtb-0a1b2c3d4e5f60711<br\/>/);
    assert.match(text, /\n {2}egress\[\/"egress of the VPC<br\/>its own NAT, proxy or endpoints/);
  });
});

describe("drawing details", () => {
  it("the VRRP line never runs through its label", () => {
    for (const env of [loadEnvironment(join(ROOT, "examples", "agfa-ei-ha-pair.yaml")), routeTablePair()]) {
      const svg = renderSvg(env);
      const group = /<g class="vrrp">\n<line x1="(\d+)"[^\n]*\n((?:<text[^\n]*\n)+)<\/g>/.exec(svg);
      assert.ok(group, "a VRRP group");
      const lineX = Number(group[1]);
      for (const t of group[2].trim().split("\n")) {
        const x = Number(/ x="(\d+)"/.exec(t)![1]);
        const end = / text-anchor="end"/.test(t);
        const chars = [.../>([^<]*)</.exec(t)![1]].length;
        // 11 px monospace: at most 7 px per character.
        const [from, to] = end ? [x - chars * 7, x] : [x, x + chars * 7];
        assert.ok(to < lineX || from > lineX, `label ${t} spans ${from}-${to}, across the line at x=${lineX}`);
      }
    }
  });

  it("shows the stats port with its admin networks, and the NAT gateway in its public subnet (created VPC with one) or the VPC endpoints (a baked image without)", () => {
    for (const file of EXAMPLES) {
      const env = loadEnvironment(join(ROOT, file));
      const svgTexts = parseXml(renderSvg(env)).texts;
      const stats = `stats+metrics :${env.admin.statsPort} ← ${env.access.adminCidrs.join(", ")}`;
      assert.ok(svgTexts.includes(stats), `${file}: ${stats}`);
      const mermaid = renderMermaid(env);
      assert.ok(mermaid.includes(`stats :${env.admin.statsPort} ← ${env.access.adminCidrs.join(", ")}`));
      for (const n of env.nodes) assert.ok(mermaid.includes(`  ${`node_${n.name.replace(/[^A-Za-z0-9]/g, "_")}`} -.-> egress\n`));
      if (env.network.natSubnet === undefined) {
        assert.equal(env.loadBalancer.image, "baked", `${file}: the examples without a NAT subnet are baked`);
        assert.ok(svgTexts.includes("VPC endpoints, no internet") && !svgTexts.some((t) => t.includes("NAT gateway")), `${file}: the endpoints, no NAT gateway`);
        assert.ok(svgTexts.includes("ec2, ec2messages, kms, monitoring"), `${file}: the endpoints' services`);
        assert.ok(mermaid.includes(`egress[/"VPC endpoints, no internet<br/>ec2, ec2messages, kms, monitoring, s3, secretsmanager, ssm, ssmmessages<br/>TCP 443"/]`), mermaid);
        continue;
      }
      assert.ok(svgTexts.includes("NAT gateway") && svgTexts.includes("public subnet (NAT gateway)"), `${file}: the NAT gateway`);
      assert.ok(svgTexts.includes(`${env.network.natSubnet!.cidr} · ${env.network.natSubnet!.availabilityZone}`));
      assert.ok(mermaid.includes(`subgraph nat["public subnet (NAT gateway) ${env.network.natSubnet!.cidr} · ${env.network.natSubnet!.availabilityZone}"]`));
    }
  });

  it("every example and the route-table pair render to PNG with librsvg (rsvg-convert)", () => {
    const rsvg = requireTool("rsvg-convert", "librsvg2-bin");
    const dir = tempDir("diagram-png");
    try {
      const drawings: Array<[string, ResolvedEnvironment]> = [...EXAMPLES.map((f): [string, ResolvedEnvironment] => [f, loadEnvironment(join(ROOT, f))]), ["route-table pair", routeTablePair()]];
      for (const [name, env] of drawings) {
        const svg = join(dir.path, "d.svg");
        writeFileSync(svg, renderSvg(env));
        const run = spawnSync(rsvg, [svg], { maxBuffer: 64 * 1024 * 1024 });
        assert.equal(run.status, 0, `${name}: ${run.stderr}`);
        assert.deepEqual([...run.stdout.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${name}: a PNG`);
        const width = run.stdout.readUInt32BE(16);
        assert.equal(width, Number(/<svg [^>]*width="(\d+)"/.exec(renderSvg(env))![1]), `${name}: drawn at the SVG's size`);
      }
    } finally {
      dir.cleanup();
    }
  });
});

describe("imaging-lb diagram (command)", () => {
  let dir: { path: string; cleanup: () => void };
  let envFile: string;
  before(() => {
    dir = tempDir("diagram");
    envFile = join(dir.path, "site.yaml");
    writeFileSync(envFile, stringify(environment()));
  });
  after(() => dir.cleanup());

  function run(...args: string[]) {
    let out = "";
    let err = "";
    const code = diagramCommand.run(args, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  }
  const env = () => parseEnvironment(readFileSync(envFile, "utf8"), envFile);

  it("has the usage the CLI prints", () => {
    assert.match(diagramCommand.usage, /^imaging-lb diagram <env\.yaml> --out <file\.svg\|file\.mmd/);
    assert.ok(diagramCommand.summary.length > 0 && diagramCommand.help.length > 0);
  });

  for (const [ext, render] of [
    [".svg", renderSvg],
    [".mmd", renderMermaid],
    [".md", renderMermaidMarkdown],
  ] as const) {
    it(`--out *${ext}: writes that format and says so`, () => {
      const out = join(dir.path, "drawings", `site${ext}`);
      const r = run(envFile, "--out", out);
      assert.equal(r.code, 0, r.err);
      assert.equal(readFileSync(out, "utf8"), render(env()));
      assert.match(r.out, new RegExp(`^wrote .*site\\${ext}: \\w+ drawing of test-env \\(two-arm, single load balancer, 1 VIP, 1 service\\)\\n$`));
    });
  }

  it("without --out: --format to stdout, Mermaid by default", () => {
    assert.equal(run(envFile, "--format", "svg").out, renderSvg(env()));
    assert.equal(run(envFile, "--format", "markdown").out, renderMermaidMarkdown(env()));
    assert.equal(run(envFile).out, renderMermaid(env()));
  });

  it("wrong usage: exit 2 with the reason and the usage on stderr, nothing written", () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /expected one environment file, got 0/],
      [[envFile, envFile], /expected one environment file, got 2/],
      [[envFile, "--format", "png"], /--format: expected svg, mermaid or markdown, got "png"/],
      [[envFile, "--out", join(dir.path, "x.png")], /cannot tell the format from ".*x\.png"/],
      [[envFile, "--out", join(dir.path, "y.svg"), "--format", "mermaid"], /--format mermaid disagrees with the extension/],
      [[envFile, "--bogus"], /unknown option --bogus \(its options: --out, --format\)/],
    ];
    for (const [args, message] of cases) {
      const r = run(...args);
      assert.equal(r.code, 2, args.join(" "));
      assert.equal(r.out, "");
      assert.match(r.err, message);
      assert.match(r.err, /^imaging-lb diagram: .*\nusage: imaging-lb diagram /);
    }
    assert.equal(existsSync(join(dir.path, "x.png")) || existsSync(join(dir.path, "y.svg")), false);
  });

  it("an unknown extension is fine with --format", () => {
    const out = join(dir.path, "drawing.txt");
    assert.equal(run(envFile, "--out", out, "--format", "mermaid").code, 0);
    assert.equal(readFileSync(out, "utf8"), renderMermaid(env()));
  });

  it("an invalid environment file throws the loader's ConfigError (the CLI exits 1)", () => {
    assert.throws(() => run(join(dir.path, "missing.yaml"), "--out", join(dir.path, "z.svg")), ConfigError);
    assert.equal(existsSync(join(dir.path, "z.svg")), false);
  });
});
