/** The real-network e2e harness: topologies, Orthanc, MLLP peers, DICOM data and clients, HAProxy. */
export * from "./wait";
export * from "./ns-process";
export * from "./netns";
export * from "./topologies";
export * from "./orthanc";
export * from "./hl7";
export * from "./mllp-client";
export * from "./dicom";
export * from "./haproxy";
export * from "./curl";
export * from "./product";
export * from "./dicom-session";
export * from "./testbed";
export * from "./keepalived";
export * from "./agent-node";
export * from "./failover";
