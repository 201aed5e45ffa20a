/**
 * Everything rendered for one load balancer node: its machine (`machine.ts`: the cloud-init user data) and
 * the configuration bundle the agent applies (`bundle.ts`: haproxy.cfg, and in a pair keepalived.conf and
 * the takeover script). Pure: the CLI prints these artifacts; the constructs take the machine and the
 * bundle each from its own file.
 */
import { ConfigBundle, ConfigBundleOptions, nodeBundle, BUNDLE_PATHS } from "./bundle";
import { ResolvedEnvironment } from "../config/model";
import { NodeMachine, nodeMachine } from "./machine";

export interface NodeArtifacts extends NodeMachine {
  /** The configuration bundle (applied in place by the agent; never replaces the instance). */
  readonly bundle: ConfigBundle;
  readonly haproxyConfig: string;
  /** HA pair only. */
  readonly keepalivedConf?: string;
  /** HA pair only: run by keepalived's notify_master. */
  readonly takeoverScript?: string;
}

/**
 * Renders the artifacts of node `nodeName` of `env`: the machine at once, the bundle (and the files read
 * from it) when first read, once, so that reading the user data renders no haproxy.cfg.
 */
export function nodeArtifacts(env: ResolvedEnvironment, nodeName: string, options: ConfigBundleOptions = {}): NodeArtifacts {
  const machine = nodeMachine(env, nodeName);
  let bundle: ConfigBundle | undefined;
  const content = (path: string) => (bundle ??= nodeBundle(env, nodeName, options)).files.find((f) => f.path === path)?.content;
  return {
    node: machine.node,
    bootstrap: machine.bootstrap,
    userData: machine.userData,
    get userDataBase64() {
      return machine.userDataBase64;
    },
    get bundle() {
      return (bundle ??= nodeBundle(env, nodeName, options));
    },
    get haproxyConfig() {
      return content(BUNDLE_PATHS.haproxyConfig)!;
    },
    get keepalivedConf() {
      return content(BUNDLE_PATHS.keepalivedConf);
    },
    get takeoverScript() {
      return content(BUNDLE_PATHS.takeoverScript);
    },
  };
}
