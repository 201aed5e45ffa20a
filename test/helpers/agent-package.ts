/**
 * The agent's Python package exactly as a bundle carries it (lib/node/bundle.ts agentFiles), written
 * below a folder of its own: put that folder on PYTHONPATH (or IMAGING_LB_AGENT_LIB) to run it.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agentFiles } from "../../lib/node/bundle";

/** Writes `<root>/imaging_lb_agent/*.py` (the launcher, which is no module, is left out); returns `root`. */
export function installAgentPackage(root: string): string {
  for (const file of agentFiles()) {
    if (!file.path.includes("/imaging_lb_agent/")) continue;
    const target = join(root, "imaging_lb_agent", file.path.split("/imaging_lb_agent/")[1]);
    mkdirSync(join(target, ".."), { recursive: true });
    writeFileSync(target, file.content);
  }
  return root;
}
