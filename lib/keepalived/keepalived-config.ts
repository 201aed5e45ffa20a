/**
 * keepalived.conf for one node of an imaging-lb HA pair on AWS.
 *
 * AWS has no multicast and ignores gratuitous ARP, so the pair speaks **unicast VRRP** (security groups must
 * allow IP protocol 112 between the two nodes, or both become MASTER) and the floating addresses are moved in
 * the EC2 API by the `notify_master` script (see `notify-script.ts`).
 *
 * The virtual addresses are still listed in `virtual_ipaddress`: keepalived then adds them (as /32) to the OS
 * interface when the node becomes MASTER and removes them when it becomes BACKUP or FAULT or stops, which is the
 * OS half of a VIP move; the EC2 half (secondary private IP, Elastic IP or route-table entry) is the notify
 * script's. The notify script reads the addresses' presence as "this node is still MASTER" and stands down
 * when they are gone; only its manual `--force` run adds them itself. keepalived's gratuitous ARPs
 * are harmless on AWS (the VPC ignores them). `keepalived -t` also rejects an instance without a virtual
 * address, so at least one is required.
 *
 * Pure function of its input: imports nothing from cdktf, constructs or the file system.
 */
import {
  IssueList,
  checkAbsolutePath,
  checkEnvName,
  checkInteger,
  checkInterfaceName,
  checkIpv4,
  checkIpv4List,
} from "./validation";

/**
 * The VRRP authentication placeholder that the boot script replaces with the real password (from Secrets
 * Manager or SSM), so the secret never reaches Terraform state. Exactly 8 characters: VRRP PASS
 * authentication uses at most 8, and `keepalived -t` rejects a longer `auth_pass`.
 */
export const VRRP_AUTH_PASS_PLACEHOLDER = "__VRRP__";

/** Where the pair's VRRP health checks look at HAProxy. */
export interface HaproxyCheckSpec {
  /**
   * Seconds between two runs of each check.
   * @default 2
   */
  readonly intervalSeconds?: number;
  /**
   * Consecutive failures before the check is failed.
   * @default 2
   */
  readonly fall?: number;
  /**
   * Consecutive successes before a failed check is healthy again.
   * @default 2
   */
  readonly rise?: number;
  /**
   * Priority change while the check fails. 0 puts the instance into FAULT (it gives up MASTER and never takes
   * it), which is what a load balancer without a working HAProxy should do; a negative value instead lowers
   * the priority by that much (it must then drop below the peer's priority to cause a failover).
   * @default 0
   */
  readonly weight?: number;
  /**
   * Absolute command line that succeeds while an HAProxy process runs (run as `scriptUser`).
   * Not `pidof`: on Debian and Ubuntu it is a link to killall5, which keepalived runs under its real name,
   * where it does not act as pidof and always fails (the node would never leave FAULT).
   * @default "/usr/bin/pgrep -x haproxy"
   */
  readonly processCommand?: string;
  /**
   * Local HTTP URL that answers 2xx while HAProxy is healthy (e.g. a frontend with `monitor-uri` or
   * `http-request return status 200` bound to 127.0.0.1), probed with curl; `null` tracks the process only.
   * **(inferred default; the haproxy.cfg renderer must expose the same URL)**
   * @default "http://127.0.0.1:8404/healthz"
   */
  readonly healthUrl?: string | null;
  /**
   * Seconds the HTTP probe may take (curl `--max-time`). The vrrp_script's timeout is one more, for curl's own
   * start-up, or the check interval when that is longer: a probe that ends before the next one is due is not
   * late (on a loaded or slow CPU starting curl alone takes a large part of a second).
   * @default 2
   */
  readonly healthTimeoutSeconds?: number;
}

/** Everything that differs between the two keepalived.conf files of an HA pair. */
export interface KeepalivedNodeSpec {
  /** Environment name, used in `router_id` and the instance name, e.g. `prod`. */
  readonly envName: string;
  /** Which node of the pair this file is for. */
  readonly node: "primary" | "secondary";
  /** OS interface VRRP adverts are sent and received on, e.g. `eth0`. */
  readonly interfaceName: string;
  /** This node's address on `interfaceName` (`unicast_src_ip`). */
  readonly selfAddress: string;
  /** The other node's address (`unicast_peer`). */
  readonly peerAddress: string;
  /** VRRP router id, 1-255, the same on both nodes and unique among VRRP pairs sharing the subnet. */
  readonly virtualRouterId: number;
  /**
   * The floating IPv4 addresses keepalived puts on `vipInterfaceName` (as /32) while MASTER: the secondary
   * private IPs (secondary-ip mode), the overlay VIPs (route-table mode) or the floating private IPs that the
   * Elastic IPs map to (elastic-ip mode). Must match the notify script's addresses.
   */
  readonly virtualAddresses: readonly string[];
  /**
   * OS interface the virtual addresses are added to (the client/VIP side, eth1 in a two-arm layout).
   * @default interfaceName
   */
  readonly vipInterfaceName?: string;
  /**
   * Seconds between VRRP adverts (VRRPv2: whole seconds). The peer declares this node dead after about
   * three missed adverts.
   * @default 1
   */
  readonly advertIntervalSeconds?: number;
  /**
   * VRRP priority, 1-254; the higher one wins.
   * @default 150 for the primary, 100 for the secondary
   */
  readonly priority?: number;
  /**
   * Whether a recovered primary takes MASTER back. `false` renders `nopreempt` and `state BACKUP` on both
   * nodes (keepalived requires BACKUP for nopreempt), so the VIPs move only when the current MASTER fails.
   * @default true
   */
  readonly preempt?: boolean;
  /**
   * VRRP PASS authentication, 1-8 characters of `[A-Za-z0-9_@%+=.,:/-]`; omitted renders no
   * `authentication` block. The password travels in clear text and only guards against accidental
   * cross-talk: the security group allowing protocol 112 between the two nodes is the real control.
   * Keep the real value out of Terraform state: pass {@link VRRP_AUTH_PASS_PLACEHOLDER} and let the boot
   * script replace it with a secret fetched by the instance role before keepalived starts.
   * @default no authentication
   */
  readonly authPass?: string;
  /** Absolute path of the VIP takeover script keepalived runs as root on becoming MASTER. */
  readonly notifyMasterScript: string;
  /**
   * Absolute path of a script run as root on becoming BACKUP.
   * @default none
   */
  readonly notifyBackupScript?: string;
  /**
   * Absolute path of a script run as root on entering FAULT.
   * @default none
   */
  readonly notifyFaultScript?: string;
  /**
   * Unprivileged user the health checks run as (`script_user`, with `enable_script_security`). The boot
   * script must create it (e.g. `useradd --system --no-create-home keepalived_script`).
   * @default "keepalived_script"
   */
  readonly scriptUser?: string;
  /**
   * The HAProxy checks (process alive, local HTTP health) tracked by the instance.
   * @default all HaproxyCheckSpec defaults
   */
  readonly haproxyCheck?: HaproxyCheckSpec;
}

/** The defaults applied by {@link renderKeepalivedConfig}, exported for documentation and tests. */
export const KEEPALIVED_DEFAULTS = {
  advertIntervalSeconds: 1,
  primaryPriority: 150,
  secondaryPriority: 100,
  preempt: true,
  scriptUser: "keepalived_script",
  check: {
    intervalSeconds: 2,
    fall: 2,
    rise: 2,
    weight: 0,
    processCommand: "/usr/bin/pgrep -x haproxy",
    healthUrl: "http://127.0.0.1:8404/healthz",
    healthTimeoutSeconds: 2,
  },
} as const;

const AUTH_PASS = /^[A-Za-z0-9_@%+=.,:/-]{1,8}$/;
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const SAFE_COMMAND = /^\/[A-Za-z0-9._+/-]+( [A-Za-z0-9._+:/=@%,-]+)*$/;
const LOCAL_HTTP_URL = /^http:\/\/(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost)(:\d{1,5})?(\/[A-Za-z0-9._~%/-]*)?$/;

/**
 * Renders keepalived.conf for one node of the pair; throws {@link HaSpecError} listing every invalid input.
 *
 * @example
 * renderKeepalivedConfig({
 *   envName: "prod", node: "primary", interfaceName: "eth0",
 *   selfAddress: "10.0.1.10", peerAddress: "10.0.1.11", virtualRouterId: 51,
 *   virtualAddresses: ["10.0.1.50"], notifyMasterScript: "/usr/local/sbin/imaging-lb-vip-takeover",
 * });
 */
export function renderKeepalivedConfig(spec: KeepalivedNodeSpec): string {
  validate(spec);
  const d = KEEPALIVED_DEFAULTS;
  const check = { ...d.check, ...definedOnly(spec.haproxyCheck ?? {}) };
  const preempt = spec.preempt ?? d.preempt;
  const priority = spec.priority ?? (spec.node === "primary" ? d.primaryPriority : d.secondaryPriority);
  const vipInterface = spec.vipInterfaceName ?? spec.interfaceName;
  const state = preempt && spec.node === "primary" ? "MASTER" : "BACKUP";
  const instanceName = `imaging_lb_${spec.envName.replace(/-/g, "_")}`;
  const processScript = "imaging_lb_haproxy_process";
  const healthScript = "imaging_lb_haproxy_health";

  const lines: string[] = [
    `# Generated by imaging-lb: keepalived.conf for environment "${spec.envName}", ${spec.node} node.`,
    "# Do not edit by hand: the next deployment overwrites it.",
    "#",
    `# Unicast VRRP (AWS has no multicast): the security groups must allow IP protocol 112 between`,
    `# ${spec.selfAddress} and ${spec.peerAddress}, or both nodes become MASTER (split brain).`,
    `# keepalived adds the virtual addresses to ${vipInterface} while MASTER; ${spec.notifyMasterScript}`,
    "# moves them in the EC2 API (AWS ignores gratuitous ARP).",
    "",
    "global_defs {",
    `    router_id imaging-lb-${spec.envName}-${spec.node}`,
    "    enable_script_security",
    `    script_user ${spec.scriptUser ?? d.scriptUser}`,
    "}",
    "",
    `vrrp_script ${processScript} {`,
    `    script "${check.processCommand}"`,
    `    interval ${check.intervalSeconds}`,
    `    fall ${check.fall}`,
    `    rise ${check.rise}`,
    `    weight ${check.weight}`,
    "}",
    "",
  ];
  if (check.healthUrl !== null) {
    lines.push(
      `vrrp_script ${healthScript} {`,
      `    script "/usr/bin/curl --fail --silent --output /dev/null --max-time ${check.healthTimeoutSeconds} ${check.healthUrl}"`,
      `    interval ${check.intervalSeconds}`,
      `    timeout ${Math.max(check.healthTimeoutSeconds + 1, check.intervalSeconds)}`,
      `    fall ${check.fall}`,
      `    rise ${check.rise}`,
      `    weight ${check.weight}`,
      "}",
      "",
    );
  }
  lines.push(
    `vrrp_instance ${instanceName} {`,
    `    state ${state}`,
    `    interface ${spec.interfaceName}`,
    `    virtual_router_id ${spec.virtualRouterId}`,
    `    priority ${priority}`,
    `    advert_int ${spec.advertIntervalSeconds ?? d.advertIntervalSeconds}`,
  );
  if (!preempt) {
    lines.push("    nopreempt");
  }
  lines.push(
    `    unicast_src_ip ${spec.selfAddress}`,
    "    unicast_peer {",
    `        ${spec.peerAddress}`,
    "    }",
  );
  if (spec.authPass !== undefined) {
    lines.push("    authentication {", "        auth_type PASS", `        auth_pass ${spec.authPass}`, "    }");
  }
  lines.push("    virtual_ipaddress {");
  for (const address of spec.virtualAddresses) {
    lines.push(`        ${address}/32 dev ${vipInterface}`);
  }
  lines.push("    }", "    track_script {", `        ${processScript}`);
  if (check.healthUrl !== null) {
    lines.push(`        ${healthScript}`);
  }
  lines.push("    }", `    notify_master "${spec.notifyMasterScript}" root`);
  if (spec.notifyBackupScript !== undefined) {
    lines.push(`    notify_backup "${spec.notifyBackupScript}" root`);
  }
  if (spec.notifyFaultScript !== undefined) {
    lines.push(`    notify_fault "${spec.notifyFaultScript}" root`);
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

/** Copies `value` without its `undefined` properties, so spreading it over defaults keeps the defaults. */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function validate(spec: KeepalivedNodeSpec): void {
  const issues = new IssueList();
  checkEnvName(issues, "envName", spec.envName);
  if (spec.node !== "primary" && spec.node !== "secondary") {
    issues.add("node", '"primary" or "secondary"', spec.node);
  }
  checkInterfaceName(issues, "interfaceName", spec.interfaceName);
  if (spec.vipInterfaceName !== undefined) {
    checkInterfaceName(issues, "vipInterfaceName", spec.vipInterfaceName);
  }
  checkIpv4(issues, "selfAddress", spec.selfAddress);
  checkIpv4(issues, "peerAddress", spec.peerAddress);
  if (spec.selfAddress === spec.peerAddress) {
    issues.add("peerAddress", "the other node's address, different from selfAddress", spec.peerAddress);
  }
  checkInteger(issues, "virtualRouterId", spec.virtualRouterId, 1, 255);
  checkIpv4List(issues, "virtualAddresses", spec.virtualAddresses);
  for (const [index, address] of (spec.virtualAddresses ?? []).entries()) {
    if (address === spec.selfAddress || address === spec.peerAddress) {
      issues.add(
        `virtualAddresses[${index}]`,
        "a floating address, not a node's own address",
        address,
        "use an address that neither node has as its primary IP",
      );
    }
  }
  checkInteger(issues, "advertIntervalSeconds", spec.advertIntervalSeconds, 1, 255, true);
  checkInteger(issues, "priority", spec.priority, 1, 254, true);
  if (spec.preempt !== undefined && typeof spec.preempt !== "boolean") {
    issues.add("preempt", "true or false", spec.preempt);
  }
  if (spec.authPass !== undefined && (typeof spec.authPass !== "string" || !AUTH_PASS.test(spec.authPass))) {
    issues.add(
      "authPass",
      "1-8 characters of [A-Za-z0-9_@%+=.,:/-] (VRRP PASS authentication uses at most 8)",
      spec.authPass,
      `pass ${VRRP_AUTH_PASS_PLACEHOLDER} and replace it at boot to keep the secret out of Terraform state`,
    );
  }
  checkAbsolutePath(issues, "notifyMasterScript", spec.notifyMasterScript);
  if (spec.notifyBackupScript !== undefined) {
    checkAbsolutePath(issues, "notifyBackupScript", spec.notifyBackupScript);
  }
  if (spec.notifyFaultScript !== undefined) {
    checkAbsolutePath(issues, "notifyFaultScript", spec.notifyFaultScript);
  }
  if (spec.scriptUser !== undefined && (typeof spec.scriptUser !== "string" || !USER_NAME.test(spec.scriptUser))) {
    issues.add("scriptUser", "a Linux user name such as keepalived_script", spec.scriptUser);
  }
  if (spec.scriptUser === "root") {
    issues.add("scriptUser", "an unprivileged user", spec.scriptUser, "health checks must not run as root");
  }
  const check = spec.haproxyCheck ?? {};
  checkInteger(issues, "haproxyCheck.intervalSeconds", check.intervalSeconds, 1, 3600, true);
  checkInteger(issues, "haproxyCheck.fall", check.fall, 1, 100, true);
  checkInteger(issues, "haproxyCheck.rise", check.rise, 1, 100, true);
  checkInteger(issues, "haproxyCheck.weight", check.weight, -253, 0, true);
  checkInteger(issues, "haproxyCheck.healthTimeoutSeconds", check.healthTimeoutSeconds, 1, 60, true);
  if (check.processCommand !== undefined && !SAFE_COMMAND.test(check.processCommand)) {
    issues.add(
      "haproxyCheck.processCommand",
      "an absolute command with plain arguments, e.g. /usr/bin/pgrep -x haproxy",
      check.processCommand,
    );
  }
  if (check.healthUrl !== undefined && check.healthUrl !== null && !LOCAL_HTTP_URL.test(check.healthUrl)) {
    issues.add(
      "haproxyCheck.healthUrl",
      "a plain http:// URL on 127.0.0.0/8 or localhost, e.g. http://127.0.0.1:8404/healthz",
      check.healthUrl,
    );
  }
  issues.throwIfAny(`keepalived spec for ${String(spec.envName)}/${String(spec.node)}`);
}
