/**
 * Where the modeline of a new environment file points: the JSON Schema shipped with this package,
 * relative to the new file, so editors find it both in this repository and under node_modules.
 */
import { existsSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { STARTER_SCHEMA_PATH } from "./starter";

/** The package's `schema/environment.schema.json`, found by walking up from this module; undefined if absent. */
export function packageSchemaFile(from: string = __dirname): string | undefined {
  let dir = resolve(from);
  for (;;) {
    const candidate = join(dir, "schema", "environment.schema.json");
    if (existsSync(candidate) && existsSync(join(dir, "package.json"))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * The schema path to write in the modeline of `file`: relative to the file's folder, with `/`
 * separators. Falls back to {@link STARTER_SCHEMA_PATH} when the schema file cannot be found.
 */
export function schemaPathFor(file: string, schemaFile: string | undefined = packageSchemaFile()): string {
  if (schemaFile === undefined) return STARTER_SCHEMA_PATH;
  return relative(dirname(resolve(file)), schemaFile).split(sep).join("/");
}
