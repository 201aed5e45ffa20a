/**
 * Every rendered configuration passes the real `haproxy -dW -c -f` of this machine (Debian 12: HAProxy 2.6;
 * warnings are errors): the bundled examples on each node, and a matrix of option combinations. Throwaway
 * certificates stand in for the PEMs the bootstrap fetches from Secrets Manager.
 */
import { describeHaproxyValidation } from "./helpers/haproxy-matrix";
import { haproxyCheck } from "./helpers/haproxy";
import { makeSelfSignedPem, tempDir } from "./helpers/tools";

describeHaproxyValidation("haproxy -dW -c on rendered configurations", () => ({
  setUp: () => tempDir("haproxy-validate"),
  certBase: (dir) => dir,
  writePem: (dir, name) => void makeSelfSignedPem(dir, name),
  check: (dir, config, options) => haproxyCheck(dir, config, options),
}));
