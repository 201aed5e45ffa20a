/**
 * Three nodes behind NLBs (ha.vipMode nlb): the bundled examples/agfa-ei-nlb.yaml (lb-a in eu-west-1a,
 * lb-b in eu-west-1b) with a third node lb-c in eu-west-1c, subnets of its own, and its address of each VIP.
 * Shared by the unit tests, the HAProxy validation matrix and the apply matrix.
 */

/** Adds lb-c (eu-west-1c, 10.50.21.0/24 internal, 10.50.22.0/24 external) to the parsed agfa-ei-nlb example. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function addThirdZone(doc: Record<string, any>): void {
  doc.loadBalancer.nodes["lb-c"] = {
    internalAddress: "10.50.21.10",
    externalAddress: "10.50.22.10",
    internalSubnet: { cidr: "10.50.21.0/24", availabilityZone: "eu-west-1c" },
    externalSubnet: { cidr: "10.50.22.0/24", availabilityZone: "eu-west-1c" },
  };
  doc.vips.web.nlb["lb-c"] = { address: "10.50.22.100", target: "10.50.22.20" };
  doc.vips.core.nlb["lb-c"] = { address: "10.50.22.101", target: "10.50.22.21" };
}
