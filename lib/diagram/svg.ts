/**
 * The layout as a standalone SVG drawing, laid out by hand in five columns:
 * clients | VIPs (client side) | load balancer node(s) | server side | real servers.
 * Subnets are shaded bands behind the columns: one band in one-arm; in two-arm the external band
 * (eth1, VIPs) and the internal band (eth0) meet in the middle of the nodes. Sizes come from the text
 * (a fixed per-character width estimate), so the same environment always gives the same bytes.
 */
import { ResolvedEnvironment, usesTproxy } from "../config/model";
import { DiagramNode, DiagramServer, DiagramSubnet, DiagramTopology, DiagramVip, diagramTopology, serverServicesText } from "./topology";

const SANS = "Helvetica, Arial, sans-serif";
const MONO = "Menlo, Consolas, 'DejaVu Sans Mono', monospace";
/** Generous per-character width estimates (px) so text never overflows its box. */
const HEADING_SIZE = 14;
const HEADING_CHAR = 8.6;
const DETAIL_SIZE = 12;
const DETAIL_CHAR = 7.3;
const HEADING_LINE = 20;
const DETAIL_LINE = 17;
const PAD = 12;
const MARGIN = 24;
const GAP = 96;
const BOX_GAP = 24;
const PAIR_GAP = 64;

const COLORS = {
  text: "#1a202c",
  muted: "#4a5568",
  wire: "#4a5568",
  vrrp: "#c53030",
  clients: { fill: "#f7fafc", stroke: "#4a5568" },
  vip: { fill: "#fff4e0", stroke: "#c05621" },
  node: { fill: "#e3effc", stroke: "#2b6cb0" },
  server: { fill: "#e6f6ea", stroke: "#2f855a" },
  subnet: { fill: "#f4f6f8", stroke: "#a0aec0" },
  external: { fill: "#fdf7ee", stroke: "#d6a662" },
  internal: { fill: "#eef5fb", stroke: "#7fa7cc" },
} as const;

/** Escapes text for XML character data and attribute values. */
/** `items` joined with ", ", `perLine` to a line. */
function wrapList(items: readonly string[], perLine: number): string[] {
  const lines: string[] = [];
  for (let i = 0; i < items.length; i += perLine) lines.push(items.slice(i, i + perLine).join(", "));
  return lines;
}

export function xmlEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

const r = (n: number) => Math.round(n);

/** A detail line: plain text, or columns (each at a fixed character offset) for aligned tables. */
type Line = string | { readonly columns: ReadonlyArray<readonly [offsetChars: number, text: string]>; readonly chars: number };

interface Box {
  readonly heading: string;
  readonly tag?: string;
  readonly lines: readonly Line[];
  readonly colors: { readonly fill: string; readonly stroke: string };
  readonly minWidth: number;
}

interface Placed extends Box {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

const lineChars = (l: Line) => (typeof l === "string" ? [...l].length : l.chars);
const headingWidth = (b: Box) => [...b.heading].length * HEADING_CHAR + (b.tag ? [...b.tag].length * DETAIL_CHAR + 18 : 0);
const boxWidth = (b: Box) => r(Math.max(b.minWidth, headingWidth(b), ...b.lines.map((l) => lineChars(l) * DETAIL_CHAR)) + 2 * PAD);
const boxHeight = (b: Box) => PAD + HEADING_LINE + b.lines.length * DETAIL_LINE + PAD - 4;
/** The y of the middle of detail line `i` of a placed box. */
const lineMid = (b: Placed, i: number) => b.y + PAD + HEADING_LINE + i * DETAIL_LINE + DETAIL_LINE / 2 - 2;

function text(x: number, y: number, content: string, opts: { size: number; family: string; weight?: string; fill?: string; anchor?: string; halo?: boolean }): string {
  const attrs = [
    `x="${r(x)}"`,
    `y="${r(y)}"`,
    `font-family="${xmlEscape(opts.family)}"`,
    `font-size="${opts.size}"`,
    ...(opts.weight ? [`font-weight="${opts.weight}"`] : []),
    `fill="${opts.fill ?? COLORS.text}"`,
    ...(opts.anchor ? [`text-anchor="${opts.anchor}"`] : []),
    ...(opts.halo ? ['stroke="#ffffff"', 'stroke-width="4"', 'paint-order="stroke"', 'stroke-linejoin="round"'] : []),
  ];
  return `<text ${attrs.join(" ")}>${xmlEscape(content)}</text>`;
}

function drawBox(b: Placed, cls: string): string[] {
  const out = [
    `<g class="${cls}">`,
    `<rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="8" fill="${b.colors.fill}" stroke="${b.colors.stroke}" stroke-width="1.5"/>`,
    text(b.x + PAD, b.y + PAD + 14, b.heading, { size: HEADING_SIZE, family: SANS, weight: "bold" }),
  ];
  if (b.tag) {
    const tx = b.x + PAD + [...b.heading].length * HEADING_CHAR + 10;
    out.push(text(tx, b.y + PAD + 14, b.tag, { size: DETAIL_SIZE, family: SANS, fill: b.colors.stroke, weight: "bold" }));
  }
  b.lines.forEach((l, i) => {
    const y = lineMid(b, i) + 4;
    if (typeof l === "string") {
      out.push(text(b.x + PAD, y, l, { size: DETAIL_SIZE, family: MONO }));
    } else {
      for (const [offset, content] of l.columns) {
        out.push(text(b.x + PAD + offset * DETAIL_CHAR, y, content, { size: DETAIL_SIZE, family: MONO }));
      }
    }
  });
  out.push("</g>");
  return out;
}

/** A wire: a horizontal-tangent cubic curve from (x1,y1) to (x2,y2). */
function wire(x1: number, y1: number, x2: number, y2: number, dashed: boolean, arrow: boolean): string {
  const dx = Math.max(24, (x2 - x1) / 2);
  const d = `M${r(x1)},${r(y1)} C${r(x1 + dx)},${r(y1)} ${r(x2 - dx)},${r(y2)} ${r(x2)},${r(y2)}`;
  const attrs = [
    `d="${d}"`,
    'fill="none"',
    `stroke="${COLORS.wire}"`,
    'stroke-width="1.5"',
    ...(dashed ? ['stroke-dasharray="6 4"'] : []),
    ...(arrow ? ['marker-end="url(#arrow)"'] : []),
  ];
  return `<path ${attrs.join(" ")}/>`;
}

/** Places boxes in a column starting at x, centred vertically on the content area. */
function column(boxes: readonly Box[], x: number, top: number, height: number, gap: number): Placed[] {
  const w = Math.max(0, ...boxes.map(boxWidth));
  const total = boxes.reduce((sum, b) => sum + boxHeight(b), 0) + gap * Math.max(0, boxes.length - 1);
  let y = top + (height - total) / 2;
  return boxes.map((b) => {
    const placed = { ...b, x: r(x), y: r(y), w, h: boxHeight(b) };
    y += placed.h + gap;
    return placed;
  });
}

const columnHeight = (boxes: readonly Box[], gap: number) => boxes.reduce((sum, b) => sum + boxHeight(b), 0) + gap * Math.max(0, boxes.length - 1);

function vipBox(v: DiagramVip): Box {
  const nameW = Math.max(0, ...v.services.map((s) => [...s.name].length)) + 2;
  const modeW = 6;
  const lines: Line[] = v.nlb ? v.nlb.map((z) => `${z.availabilityZone}  ${z.address}`) : [`${v.address}${v.elasticIp ? " + Elastic IP" : ""}`];
  for (const s of v.services) {
    lines.push({ columns: [[0, s.name], [nameW, s.mode], [nameW + modeW, s.portText]], chars: nameW + modeW + [...s.portText].length });
    for (const route of s.routes) lines.push({ columns: [[nameW, `↳ ${route}`]], chars: nameW + 2 + [...route].length });
  }
  if (v.services.length === 0) lines.push("(no service)");
  if (v.nlb) return { heading: `NLB ${v.name}`, tag: "internal", lines, colors: COLORS.vip, minWidth: 180 };
  return { heading: `VIP ${v.name}`, ...(v.elasticIp ? { tag: "EIP" } : {}), lines, colors: COLORS.vip, minWidth: 180 };
}

function nodeBox(n: DiagramNode, t: DiagramTopology): Box {
  const pair = t.nodes.length >= 2;
  const lines: Line[] = [t.nlb ? "HAProxy L7 SNAT, active" : pair ? "HAProxy L7 SNAT + keepalived" : "HAProxy L7 SNAT"];
  if (t.layout === "two-arm") {
    lines.push(`eth1 ${n.clientInterface.address}  external`);
    lines.push(`eth0 ${n.serverInterface.address}  internal`);
  } else {
    lines.push(`eth0 ${n.serverInterface.address}`);
  }
  lines.push(`stats${t.stats.prometheus ? "+metrics" : ""} :${t.stats.port} ← ${t.stats.adminCidrs.join(", ")}`);
  if (t.nlb) {
    const targets = t.vips.flatMap((v) => (v.nlb ?? []).filter((z) => z.node === n.name).map((z) => `${v.name} ${z.target}`));
    if (targets.length > 0) lines.push(`NLB targets: ${targets.join(", ")}`);
  }
  return { heading: n.name, ...(pair ? { tag: t.nlb ? n.serverSubnet.availabilityZone : n.role } : {}), lines, colors: COLORS.node, minWidth: 230 };
}

function serverBox(s: DiagramServer, allServices: readonly string[], t: DiagramTopology): Box {
  const lines: Line[] = [`${s.address}${s.onServerSubnet ? "" : "  (routed)"}`];
  // Across availability zones the bands are drawn per node and do not reach the servers: say where each is.
  if (t.crossAz && s.subnet) lines.push(`in ${s.subnet.cidr} · ${s.subnet.availabilityZone}`);
  if (s.aeTitle !== undefined) lines.push(`AE title ${s.aeTitle}`);
  lines.push(serverServicesText(s, allServices));
  return { heading: s.name, lines, colors: COLORS.server, minWidth: 150 };
}

/** Row (detail line index) of a node box's client-side and server-side interface lines. */
const clientRow = () => 1;
const serverRow = (t: DiagramTopology) => (t.layout === "two-arm" ? 2 : 1);

/** A band's label, with a white halo: drawn over the wires that cross the band, it stays readable. */
function bandLabel(x: number, y: number, heading: string, detail: string): string[] {
  return [
    text(x + 12, y + 20, heading, { size: 13, family: SANS, weight: "bold", fill: COLORS.muted, halo: true }),
    text(x + 12, y + 37, detail, { size: DETAIL_SIZE, family: MONO, fill: COLORS.muted, halo: true }),
  ];
}

/**
 * Renders the environment's layout as a standalone SVG document (UTF-8, valid XML): a title with the
 * environment name, the subnets as bands with their CIDRs, the VIPs with their services and ports,
 * the node(s) with eth0/eth1 addresses (an HA pair: primary and secondary, a VRRP link, dashed wires
 * for the secondary's path after a failover), the real servers with their addresses, and the clients.
 *
 * @example
 * writeFileSync("st-mary.svg", renderSvg(loadEnvironment("sites/st-mary.yaml")));
 */
export function renderSvg(env: ResolvedEnvironment): string {
  const t = diagramTopology(env);
  const allServices = env.services.map((s) => s.name);
  const pair = t.nodes.length >= 2; // a VRRP pair, or two or three nodes behind NLBs

  const clientBoxes: Box[] = [{ heading: "Clients", lines: [...t.clientCidrs], colors: COLORS.clients, minWidth: 120 }];
  const vipBoxes = t.vips.map(vipBox);
  const nodeBoxes = t.nodes.map((n) => nodeBox(n, t));
  const serverBoxes = t.servers.map((s) => serverBox(s, allServices, t));

  const subnetHeading = (key: string) => t.subnets.find((s) => s.key === key);
  const labelWidth = (s: { label: string; cidr: string; availabilityZone: string }) =>
    Math.max([...s.label].length * 8, [...`${s.cidr} · ${s.availabilityZone}`].length * DETAIL_CHAR) + 24;
  const bandLabelWidth = (key: string) => {
    const s = subnetHeading(key);
    return s ? labelWidth(s) : 0;
  };
  // Bands that hold the VIP column: not in route-table mode (overlay VIPs lie outside the VPC) nor
  // across availability zones (each node's subnets are drawn around that node only).
  const vipsInBand = !t.overlayVips && !t.crossAz;
  const perNodeBands = t.crossAz;

  // Columns, left to right.
  const wClients = Math.max(0, ...clientBoxes.map(boxWidth));
  const overlayLabel = t.overlayVips
    ? [`overlay VIPs${t.vpcCidr ? `, outside VPC ${t.vpcCidr}` : ""}`, `routes in ${t.ha?.routeTableIds.join(", ") ?? ""}`]
    : t.nlb
      ? [`Network Load Balancers, ${t.nodes.length === 2 ? "both" : "all"} zones`, `cross-zone ${t.nlb.crossZone ? "on" : "off"} · drain ${t.nlb.drainSeconds} s`]
      : [];
  const wVip = Math.max(
    0,
    ...vipBoxes.map(boxWidth),
    vipsInBand ? (t.layout === "two-arm" ? bandLabelWidth("external") - 40 : bandLabelWidth("subnet") - 40) : 0,
    ...overlayLabel.map((l) => [...l].length * DETAIL_CHAR - 8),
  );
  const wNode = Math.max(0, ...nodeBoxes.map(boxWidth));
  const wServer = Math.max(0, ...serverBoxes.map(boxWidth));
  // Left of the nodes: room for the client-side band's label when the band starts at the nodes.
  const named = (n: DiagramNode, sub: DiagramSubnet) => ({ ...sub, label: sub.label.startsWith(`${n.name} `) ? sub.label : `${n.name} ${sub.label}` });
  const clientLabel = Math.max(0, ...t.nodes.map((n) => labelWidth(named(n, n.clientSubnet))));
  const serverLabel = Math.max(0, ...t.nodes.map((n) => labelWidth(named(n, n.serverSubnet))));
  const leftOfNodes = vipsInBand ? 24 : t.layout === "two-arm" ? Math.max(24, clientLabel - wNode / 2 + 12) : 24;
  const xClients = MARGIN;
  const xVip = xClients + wClients + GAP;
  const xNode = xVip + wVip + Math.max(GAP, leftOfNodes + 56);
  const nodeMid = xNode + wNode / 2;
  const allOnSubnet = !perNodeBands && t.servers.every((s) => s.onServerSubnet);
  // The server side: wide enough for wires and for the internal band's label.
  const serverSide = Math.max(GAP * 1.25, t.layout === "two-arm" ? bandLabelWidth("internal") - wNode / 2 + 36 : 0, perNodeBands ? serverLabel - (t.layout === "two-arm" ? wNode / 2 : wNode) + 72 : 0);
  const xServer = r(xNode + wNode + serverSide);

  const titleTop = 36;
  const bandTop = 76;
  const contentTop = bandTop + 56;
  // Per-node bands need room for their labels above each node.
  const pairGap = perNodeBands ? PAIR_GAP + 56 : PAIR_GAP;
  const contentHeight = Math.max(
    columnHeight(clientBoxes, BOX_GAP),
    columnHeight(vipBoxes, BOX_GAP),
    columnHeight(nodeBoxes, pairGap),
    columnHeight(serverBoxes, BOX_GAP),
  );
  const bandBottom = contentTop + contentHeight + 24;

  const clients = column(clientBoxes, xClients, contentTop, contentHeight, BOX_GAP);
  const vips = column(vipBoxes, xVip, contentTop, contentHeight, BOX_GAP);
  const nodes = column(nodeBoxes, xNode, contentTop, contentHeight, pairGap);
  const servers = column(serverBoxes, xServer, contentTop, contentHeight, BOX_GAP);

  const bandLeft = xVip - 24;
  const serversRight = xServer + wServer + 16;
  const out: string[] = [];
  /** Band and overlay labels: drawn after the wires, over them. */
  const labels: string[] = [];

  // Subnet bands.
  const drawBand = (x1: number, x2: number, y1: number, y2: number, colors: { fill: string; stroke: string }, s: { key: string; label: string; cidr: string; availabilityZone: string }) => {
    out.push(`<g class="subnet" id="subnet-${xmlEscape(s.key)}">`);
    out.push(`<rect x="${r(x1)}" y="${r(y1)}" width="${r(x2 - x1)}" height="${r(y2 - y1)}" rx="10" fill="${colors.fill}" stroke="${colors.stroke}" stroke-width="1.5" stroke-dasharray="8 5"/>`);
    out.push("</g>");
    labels.push(`<g class="subnet-label">`, ...bandLabel(x1, y1, s.label, `${s.cidr} · ${s.availabilityZone}`), "</g>");
  };
  const band = (x1: number, x2: number, colors: { fill: string; stroke: string }, key: string) => {
    const s = subnetHeading(key);
    if (s) drawBand(x1, x2, bandTop, bandBottom, colors, s);
  };
  let right: number;
  const firstBandLeft = vipsInBand ? bandLeft : xNode - leftOfNodes;
  if (perNodeBands) {
    // Each node in its own subnets (another availability zone): bands around that node only.
    right = xNode + wNode + Math.max(24, serverLabel - (t.layout === "two-arm" ? wNode / 2 : wNode) + 24);
    nodes.forEach((n, i) => {
      const node = t.nodes[i];
      const y1 = n.y - 48;
      const y2 = n.y + n.h + 12;
      // Name the node in every band: the layout's subnets are this node's too.
      const mine = <T extends { label: string }>(sub: T): T => (sub.label.startsWith(`${node.name} `) ? sub : { ...sub, label: `${node.name} ${sub.label}` });
      if (t.layout === "two-arm") {
        drawBand(firstBandLeft, nodeMid, y1, y2, COLORS.external, mine(node.clientSubnet));
        drawBand(nodeMid, right, y1, y2, COLORS.internal, mine(node.serverSubnet));
      } else {
        drawBand(firstBandLeft, right, y1, y2, COLORS.subnet, mine(node.serverSubnet));
      }
    });
  } else {
    switch (t.layout) {
      case "one-arm":
        right = allOnSubnet ? serversRight : xNode + wNode + serverSide / 2;
        band(firstBandLeft, right, COLORS.subnet, "subnet");
        break;
      case "two-arm":
        right = allOnSubnet ? serversRight : xServer - 24;
        band(firstBandLeft, nodeMid, COLORS.external, "external");
        band(nodeMid, right, COLORS.internal, "internal");
        break;
    }
  }
  if (t.overlayVips || t.nlb) {
    // Route-table mode: the VIPs are addresses outside the VPC, reached through the clients' route tables.
    // nlb mode: each VIP is an NLB with an address in every node's zone, in front of every node.
    const x1 = xVip - 16;
    const x2 = xVip + wVip + 16;
    out.push('<g class="overlay" id="overlay-vips">');
    out.push(`<rect x="${r(x1)}" y="${bandTop}" width="${r(x2 - x1)}" height="${bandBottom - bandTop}" rx="10" fill="#ffffff" stroke="${COLORS.vip.stroke}" stroke-width="1.5" stroke-dasharray="2 4"/>`);
    out.push("</g>");
    labels.push('<g class="overlay-label">', ...bandLabel(x1, bandTop, overlayLabel[0], overlayLabel[1]), "</g>");
  }

  // Wires (under the boxes). The secondary's paths are dashed: used after a failover.
  out.push('<g class="wires">');
  const c = clients[0];
  for (const v of vips) out.push(wire(c.x + c.w, c.y + c.h / 2, v.x, v.y + 12 + HEADING_LINE / 2, false, true));
  for (const v of vips) {
    nodes.forEach((n, i) => out.push(wire(v.x + v.w, v.y + 12 + HEADING_LINE / 2, n.x, lineMid(n, clientRow()), t.nodes[i].role === "secondary" && !t.nlb, true)));
  }
  nodes.forEach((n, i) => {
    for (const s of servers) out.push(wire(n.x + n.w, lineMid(n, serverRow(t)), s.x, s.y + 12 + HEADING_LINE / 2, t.nodes[i].role === "secondary" && !t.nlb, true));
  });
  out.push("</g>");
  out.push(...labels.splice(0));

  // VRRP between the pair; behind NLBs the peers link between each node and the next (every node syncs with every other).
  for (const [i, a] of (pair && t.ha ? nodes.slice(0, -1) : []).entries()) {
    const b = nodes[i + 1];
    // The line runs near the boxes' left edge; its label stands beside it, never on it.
    // Per-node bands: the line runs where no band label is (the bands' border, or the boxes' right part).
    const x = r(!perNodeBands ? a.x + 28 : t.layout === "two-arm" ? nodeMid : a.x + a.w - 20);
    const y1 = a.y + a.h;
    const y2 = b.y;
    const mid = perNodeBands ? (y1 + y2) / 2 - 22 : (y1 + y2) / 2;
    const labelX = perNodeBands && t.layout === "one-arm" ? x - 10 : x + 10;
    const anchor = perNodeBands && t.layout === "one-arm" ? { anchor: "end" } : {};
    out.push('<g class="vrrp">');
    out.push(`<line x1="${x}" y1="${y1}" x2="${x}" y2="${y2}" stroke="${COLORS.vrrp}" stroke-width="2" stroke-dasharray="4 3"/>`);
    if (t.nlb) {
      out.push(text(labelX, mid - 3, "HAProxy peers (TCP 10000)", { size: 11, family: MONO, fill: COLORS.vrrp, halo: true, ...anchor }));
      out.push(text(labelX, mid + 11, nodes.length === 2 ? "stick tables, both ways" : "stick tables, all nodes", { size: 11, family: MONO, fill: COLORS.vrrp, halo: true, ...anchor }));
    } else {
      out.push(text(labelX, mid - 3, "VRRP unicast (IP protocol 112)", { size: 11, family: MONO, fill: COLORS.vrrp, halo: true, ...anchor }));
      out.push(text(labelX, mid + 11, `vrid ${t.ha?.virtualRouterId} · VIPs: ${t.ha?.vipMode}`, { size: 11, family: MONO, fill: COLORS.vrrp, halo: true, ...anchor }));
    }
    out.push("</g>");
  }

  // Boxes.
  out.push(...drawBox(c, "clients"));
  for (const v of vips) out.push(...drawBox(v, "vip"));
  nodes.forEach((n, i) => {
    out.push(...drawBox(n, "node"));
    // Interface ports on the box edges: client side (left) and server side (right).
    const left = t.nodes[i].clientInterface.device;
    const rightDev = t.nodes[i].serverInterface.device;
    out.push(`<rect x="${n.x - 5}" y="${r(lineMid(n, clientRow()) - 5)}" width="10" height="10" fill="${COLORS.node.stroke}"><title>${left}</title></rect>`);
    out.push(`<rect x="${n.x + n.w - 5}" y="${r(lineMid(n, serverRow(t)) - 5)}" width="10" height="10" fill="${COLORS.node.stroke}"><title>${rightDev}</title></rect>`);
  });
  for (const s of servers) out.push(...drawBox(s, "server"));

  // Egress: the NAT gateway in its public subnet (created VPC), the VPC endpoints (a baked image without an
  // internet path), or the adopted VPC's own egress.
  const egressTop = bandBottom + 20;
  const egressLines = ["package mirrors, AWS APIs", "TCP 80, 443 from every node's eth0"];
  const egressBox: Box =
    t.egress.kind === "nat"
      ? { heading: "NAT gateway", lines: egressLines, colors: COLORS.clients, minWidth: 200 }
      : t.egress.kind === "endpoints"
        ? { heading: "VPC endpoints, no internet", lines: [...wrapList(t.egress.services, 4), "TCP 443 from every node's eth0"], colors: COLORS.clients, minWidth: 200 }
        : { heading: "egress of the VPC", lines: ["its own NAT, proxy or endpoints", ...egressLines], colors: COLORS.clients, minWidth: 200 };
  const wEgress = boxWidth(egressBox);
  const egressBandPad = t.egress.kind === "nat" ? 16 : 0;
  // Right of the nodes, so the wires from their eth0 ports enter the box from the left, under the band label.
  const egressX = r(xNode + wNode + 56);
  const egressBoxTop = egressTop + (t.egress.kind === "nat" ? 48 : 0);
  const egress: Placed = { ...egressBox, x: egressX, y: egressBoxTop, w: wEgress, h: boxHeight(egressBox) };
  const egressBottom = egress.y + egress.h + egressBandPad;
  out.push('<g class="egress">');
  if (t.egress.kind === "nat") {
    const s = t.egress.subnet;
    const bw = Math.max(wEgress + 2 * egressBandPad, labelWidth(s));
    drawBand(egress.x - egressBandPad, egress.x - egressBandPad + bw, egressTop, egressBottom, COLORS.subnet, s);
    out.push(...labels.splice(0));
  }
  nodes.forEach((n, i) => {
    const x1 = n.x + n.w;
    const y1 = lineMid(n, serverRow(t));
    const x2 = egress.x;
    const y2 = egress.y + egress.h / 2 + (i - (nodes.length - 1) / 2) * 10;
    out.push(`<path d="M${r(x1)},${r(y1)} C${r(x1 + 24 + 8 * i)},${r(y1)} ${r(x1 + 24 + 8 * i)},${r(y2)} ${r(x2)},${r(y2)}" fill="none" stroke="${COLORS.muted}" stroke-width="1.2" stroke-dasharray="2 3" marker-end="url(#arrow)"/>`);
  });
  out.push(...drawBox(egress, "egress-box"));
  out.push("</g>");

  // Column captions under the bands.
  const captionY = egressBottom + 22;
  const caption = (x: number, w: number, label: string) => text(x + w / 2, captionY, label, { size: 12, family: SANS, fill: COLORS.muted, anchor: "middle" });
  out.push('<g class="captions">');
  out.push(caption(xClients, wClients, "clients"));
  out.push(
    caption(
      xVip,
      wVip,
      t.nlb
        ? "VIPs: an NLB each, one address per zone"
        : t.overlayVips
          ? `VIPs routed to the active node's ${t.layout === "two-arm" ? "eth1" : "eth0"}`
          : t.layout === "two-arm"
            ? "client side: VIPs on eth1"
            : "VIPs on eth0",
    ),
  );
  out.push(caption(xNode, wNode, t.nlb ? `load balancers, one per zone, ${nodes.length === 2 ? "both" : "all"} active` : pair ? "load balancers (HA pair)" : "load balancer"));
  if (t.servers.length > 0) out.push(caption(xServer, wServer, "real servers"));
  out.push("</g>");

  // Legend.
  const legendY = captionY + 30;
  out.push('<g class="legend">');
  out.push(`<line x1="${MARGIN}" y1="${legendY - 4}" x2="${MARGIN + 36}" y2="${legendY - 4}" stroke="${COLORS.wire}" stroke-width="1.5"/>`);
  const legend = usesTproxy(env)
    ? "traffic (SNAT; tproxy services show servers the client's address)"
    : "traffic (servers see the load balancer's address: SNAT)";
  out.push(text(MARGIN + 44, legendY, legend, { size: 12, family: SANS, fill: COLORS.muted }));
  const legendEnd = MARGIN + 44 + r(legend.length * 7) + 24;
  if (pair && !t.nlb) {
    out.push(`<line x1="${legendEnd}" y1="${legendY - 4}" x2="${legendEnd + 36}" y2="${legendY - 4}" stroke="${COLORS.wire}" stroke-width="1.5" stroke-dasharray="6 4"/>`);
    out.push(text(legendEnd + 44, legendY, "after a failover", { size: 12, family: SANS, fill: COLORS.muted }));
  }
  out.push("</g>");

  const summary = `imaging-lb · ${t.summary}`;
  const width = r(Math.max(serversRight, right, xServer + wServer, egress.x + egress.w + egressBandPad, egress.x - egressBandPad + (t.egress.kind === "nat" ? labelWidth(t.egress.subnet) : 0), MARGIN + [...t.name].length * 12, MARGIN + summary.length * 7, legendEnd + 160) + MARGIN);
  const height = legendY + 20;
  const title = `${t.name}: imaging-lb load balancer layout`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<!-- generated by imaging-lb diagram from environment '${xmlEscape(t.name)}' -->`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="title desc">`,
    `<title id="title">${xmlEscape(title)}</title>`,
    `<desc id="desc">${xmlEscape(`${t.summary}; VIPs ${t.vips.map((v) => `${v.name} ${v.nlb ? v.nlb.map((z) => z.address).join(" ") : v.address}`).join(", ")}; nodes ${t.nodes.map((n) => n.name).join(", ")}; servers ${t.servers.map((s) => s.name).join(", ")}`)}</desc>`,
    "<defs>",
    `<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${COLORS.wire}"/></marker>`,
    "</defs>",
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    text(MARGIN, titleTop, t.name, { size: 20, family: SANS, weight: "bold" }),
    text(MARGIN, titleTop + 22, summary, { size: 13, family: SANS, fill: COLORS.muted }),
    ...out,
    "</svg>",
    "",
  ].join("\n");
}
