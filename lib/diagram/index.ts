/** Layout drawings of an environment: Mermaid text and a standalone SVG. */
export { renderMermaid, renderMermaidMarkdown, mermaidText } from "./mermaid";
export { renderSvg, xmlEscape } from "./svg";
export { diagramTopology, servicePortText, serverServicesText } from "./topology";
export type { DiagramTopology, DiagramVip, DiagramNode, DiagramServer, DiagramSubnet, DiagramServiceLine, DiagramInterface } from "./topology";
