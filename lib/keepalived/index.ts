/**
 * keepalived for the imaging-lb HA pair: keepalived.conf per node and the EC2 VIP takeover script.
 * Pure renderers; nothing here imports cdktf or constructs.
 */
export * from "./keepalived-config";
export * from "./notify-script";
export { HaSpecError } from "./validation";
