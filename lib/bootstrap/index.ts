/** The cloud-init bootstrap of a load balancer node: spec, scripts, user data. */
export * from "./bootstrap-spec";
export * from "./scripts";
export * from "./user-data";
