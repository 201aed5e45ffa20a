/** The CDKTF constructs of imaging-lb (the only layer that touches cdktf). Re-exports only. */
export * from "./guardrails";
export * from "./imaging-lb-stack";
export * from "./instance-role";
export * from "../plan/interface-plan";
export * from "./load-balancer-node";
export * from "./network";
export * from "./network-load-balancers";
export * from "./security-groups";
export * from "../plan/security-rules";
export * from "./config-store";
export * from "./monitoring";
