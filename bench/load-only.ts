/**
 * Attribution baseline of the synth benchmark: only what main.js does before cdktf is loaded (load,
 * validate and resolve the environment files of IMAGING_LB_ENVIRONMENTS, render each node's artifacts),
 * so `main.js − load-only` is the cost of the constructs and synthesis.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { nodeArtifacts } from "../lib/node/artifacts";
import { loadEnvironment } from "../lib/load/load";

const entry = process.env.IMAGING_LB_ENVIRONMENTS ?? join(__dirname, "..", "..", "examples");
const files = statSync(entry).isDirectory()
  ? readdirSync(entry)
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => join(entry, f))
  : [entry];
for (const file of files) {
  const env = loadEnvironment(file);
  for (const node of env.nodes) {
    // The bundle and the encoded user data are rendered when read (the stack renders both).
    const artifacts = nodeArtifacts(env, node.name);
    void artifacts.bundle;
    void artifacts.userDataBase64;
  }
}
