/** Starter environment files (`imaging-lb init`). */
export { renderStarter, STARTER_NAME, STARTER_SCHEMA_PATH, CHANGE_ME } from "./starter";
export type { StarterOptions, StarterLayout, StarterPreset } from "./starter";
export { schemaPathFor, packageSchemaFile } from "./schema-path";
