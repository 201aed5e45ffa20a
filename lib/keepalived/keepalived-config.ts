/**
 * keepalived.conf for one node of an imaging-lb HA pair on AWS.
 *
 * AWS has no multicast and ignores gratuitous ARP, so the pair speaks **unicast VRRP** (security groups must
 * allow IP protocol 112 between the two nodes, or both become MASTER) and the floating addresses are moved in
 * the EC2 API by the `notify_master` script (see `notify-script.ts` and `lib/shell/imaging-lb-vip-takeover.sh`).
 *
 * The virtual addresses are still listed in `virtual_ipaddress`: keepalived then adds them (as /32) to the OS
 * interface when the node becomes MASTER and removes them when it becomes BACKUP or FAULT or stops, which is the
 * OS half of a VIP move; the EC2 half (secondary private IP, Elastic IP or route-table entry) is the notify
 * script's. The notify script reads the addresses' presence as "this node is still MASTER" and stands down
 * when they are gone; only its manual `--force` run adds them itself. keepalived's gratuitous ARPs
 * are harmless on AWS (the VPC ignores them). `keepalived -t` also rejects an instance without a virtual
 * address, so at least one is required.
 *
 * Failover timers (see docs/failover-drill.md for the measured figures):
 * - **HAProxy dies** (killed, crashed, stopped): `vrrp_track_process` hears the last HAProxy process exit from
 *   the kernel at once; the node enters FAULT, removes the addresses from its interface and sends a
 *   priority-0 advert, and the peer becomes MASTER after its skew time, `(256 - priority) / 256` adverts
 *   (0.3 s at 0.5 s adverts). Having given the addresses up, the failing node no longer refuses connections
 *   to them (no RST): it drops them, so a client's SYN is retransmitted and lands on the new MASTER.
 * - **The node dies**: the peer waits three adverts plus its skew time (1.8 s at 0.5 s adverts). Sub-second
 *   adverts need VRRPv3, which every supported keepalived speaks (2.2.7 on Debian 12 and AL2023, 2.2.8 on
 *   Ubuntu 24.04, 2.3 on Debian 13).
 * - **A busy node must not flap**: the VRRP process runs at nice -20 and locked in memory, and nothing is
 *   forked for the process check; the loopback HTTP probe (an HAProxy alive but not answering) runs every 3 s
 *   and faults the node after three failures.
 * - **The primary recovers** (with preempt): it takes MASTER back only after `preempt_delay` (10 s), so a
 *   restarted HAProxy can load and pass its probe first, and a short-lived `haproxy -c` on a node whose
 *   HAProxy is down (which briefly ends its FAULT: keepalived counts a process from the moment it takes the
 *   name) never moves the VIPs.
 * - **Both nodes were MASTER** (VRRP cut between them): when they hear each other again the lower one returns
 *   to BACKUP, sending one last advert first (`higher_prio_send_advert`), and on hearing it
 *   `notify_master_rx_lower_pri` reruns the takeover on the higher one, which takes the addresses back in EC2
 *   (keepalived issue 950's case). Without that last advert the higher one hears nothing if its own advert
 *   crossed first, and EC2 keeps the addresses on the node that yielded.
 *
 * Pure function of its input: imports nothing from cdktf, constructs or the file system.
 */
import { HA_DEFAULTS, HEALTH_URL } from "../config/model";
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

/**
 * How keepalived watches HAProxy: the process itself (`vrrp_track_process`: the kernel's process events tell
 * keepalived at once when the last HAProxy process exits; nothing is forked) and, at a slower cadence, a
 * loopback HTTP probe that catches an HAProxy whose processes live but no longer answer.
 */
export interface HaproxyCheckSpec {
  /**
   * The process name keepalived tracks (`/proc/<pid>/comm`, at most 15 characters): the instance is healthy
   * while at least one such process runs. HAProxy's master-worker reload keeps the master and forks a new
   * worker, so a reload never drops the count to zero; a killed, crashed or stopped HAProxy does at once.
   * keepalived must run in the initial network and PID namespaces (as it does under systemd): the kernel
   * reports process events nowhere else. A process counts from the moment it takes the name, so a short-lived
   * `haproxy -c` (a reload's or the agent's validation) briefly ends a FAULT that a dead HAProxy caused: the
   * node is then BACKUP, and {@link KeepalivedNodeSpec.preemptDelaySeconds} keeps it from taking MASTER.
   * @default "haproxy"
   */
  readonly processName?: string;
  /**
   * Seconds between two runs of the HTTP probe.
   * @default 3
   */
  readonly intervalSeconds?: number;
  /**
   * Consecutive failed HTTP probes before the probe is failed. Three: a node starved for a few seconds (a
   * starting AWS CLI on a small or emulated CPU) does not fault for a probe that merely started late.
   * @default 3
   */
  readonly fall?: number;
  /**
   * Consecutive successful HTTP probes before a failed probe is healthy again.
   * @default 2
   */
  readonly rise?: number;
  /**
   * Priority change while the process is missing or the probe fails. 0 puts the instance into FAULT (it gives
   * up MASTER and never takes it), which is what a load balancer without a working HAProxy should do; a
   * negative value instead lowers the priority by that much (it must then drop below the peer's priority to
   * cause a failover).
   * @default 0
   */
  readonly weight?: number;
  /**
   * Local HTTP URL that answers 2xx while HAProxy is healthy (e.g. a frontend with `monitor-uri` or
   * `http-request return status 200` bound to 127.0.0.1), probed with curl; `null` tracks the process only.
   * The default is the loopback health endpoint the haproxy.cfg renderer exposes (`HEALTH_URL`).
   * @default "http://127.0.0.1:8405/healthz"
   */
  readonly healthUrl?: string | null;
  /**
   * Seconds the HTTP probe may take (curl `--max-time`). The vrrp_script's timeout is one more, for curl's own
   * start-up, or the probe interval when that is longer: a probe that ends before the next one is due is not
   * late (on a loaded or slow CPU starting curl alone takes a large part of a second).
   * @default 3
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
   * Seconds between VRRP adverts. The instance speaks VRRPv3 (RFC 5798), whose adverts may come every
   * 0.1-40 s in steps of 0.01 s; with {@link authPass} it speaks VRRPv2, which knows whole seconds only
   * (1-255). The BACKUP declares the MASTER dead after three missed adverts plus its skew time,
   * `(3 + (256 - priority) / 256) * advertIntervalSeconds`: 1.8 s at 0.5 s and the secondary's priority 100.
   * Both nodes must speak the same VRRP version.
   * @default 0.5 (1 with authPass)
   */
  readonly advertIntervalSeconds?: number;
  /**
   * VRRP priority, 1-254; the higher one wins.
   * @default 150 for the primary, 100 for the secondary
   */
  readonly priority?: number;
  /**
   * Whether a recovered primary takes MASTER back, after {@link preemptDelaySeconds}. `false` renders
   * `nopreempt`, so the VIPs move only when the current MASTER fails. Both nodes start as BACKUP either way
   * (keepalived requires it for `nopreempt` and `preempt_delay`); the higher priority wins the first election.
   * @default true
   */
  readonly preempt?: boolean;
  /**
   * With {@link preempt}: seconds a recovered primary stays BACKUP before it takes MASTER back
   * (`preempt_delay`). A restarted HAProxy gets time to load its configuration and pass the health probe
   * before the VIPs move again, and a node whose HAProxy is down does not take the VIPs while a short-lived
   * `haproxy -c` runs on it.
   * @default 10
   */
  readonly preemptDelaySeconds?: number;
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
   * Absolute path of a script keepalived runs as root when this node, MASTER, hears a lower-priority MASTER
   * (`notify_master_rx_lower_pri`): the two nodes had lost each other (VRRP cut between them, or the peer
   * briefly starved), both became MASTER, and the peer's takeover moved the addresses in EC2 to itself. The
   * lower one now returns to BACKUP without running anything, so this node must take the addresses back;
   * `null` renders nothing.
   * @default notifyMasterScript (the takeover is idempotent and stands down when the node is not MASTER)
   */
  readonly notifyMasterRxLowerPriScript?: string | null;
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
  advertIntervalSeconds: HA_DEFAULTS.advertIntervalSeconds,
  /** The default with `authPass`, which needs VRRPv2 (whole seconds). */
  vrrp2AdvertIntervalSeconds: 1,
  primaryPriority: 150,
  secondaryPriority: 100,
  preempt: HA_DEFAULTS.preempt,
  preemptDelaySeconds: 10,
  scriptUser: "keepalived_script",
  /** `vrrp_priority`: the nice value of keepalived's VRRP process (adverts on time on a busy node). */
  vrrpNice: -20,
  check: {
    processName: "haproxy",
    intervalSeconds: 3,
    fall: 3,
    rise: 2,
    weight: 0,
    healthUrl: HEALTH_URL,
    healthTimeoutSeconds: 3,
  },
} as const;

/** The range of VRRPv3 advert intervals accepted, in seconds (keepalived counts them in centiseconds). */
export const VRRP3_ADVERT_RANGE = { min: 0.1, max: 40 } as const;

const AUTH_PASS = /^[A-Za-z0-9_@%+=.,:/-]{1,8}$/;
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const PROCESS_NAME = /^[A-Za-z0-9._+-]{1,15}$/;
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
  const instanceName = `imaging_lb_${spec.envName.replace(/-/g, "_")}`;
  const processTrack = "imaging_lb_haproxy_process";
  const healthScript = "imaging_lb_haproxy_health";
  const version = spec.authPass === undefined ? 3 : 2;
  const rxLowerPri = spec.notifyMasterRxLowerPriScript === undefined ? spec.notifyMasterScript : spec.notifyMasterRxLowerPriScript;

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
    "    # Adverts on time on a busy node (reloads, the AWS CLI, CPU load): the VRRP process runs at the",
    "    # highest nice priority and is never swapped out. Scripts it starts run at normal priority.",
    `    vrrp_priority ${d.vrrpNice}`,
    "    vrrp_no_swap",
    "}",
    "",
    "# HAProxy's processes, from the kernel's process events: seen the moment the last one exits.",
    `vrrp_track_process ${processTrack} {`,
    `    process ${check.processName}`,
    "    quorum 1",
    `    weight ${check.weight}`,
    "}",
    "",
  ];
  if (check.healthUrl !== null) {
    lines.push(
      "# An HAProxy that runs but does not answer.",
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
    "    state BACKUP",
    `    interface ${spec.interfaceName}`,
    `    virtual_router_id ${spec.virtualRouterId}`,
    `    priority ${priority}`,
    `    version ${version}`,
    `    advert_int ${spec.advertIntervalSeconds ?? (version === 3 ? d.advertIntervalSeconds : d.vrrp2AdvertIntervalSeconds)}`,
  );
  lines.push(preempt ? `    preempt_delay ${spec.preemptDelaySeconds ?? d.preemptDelaySeconds}` : "    nopreempt");
  if (rxLowerPri !== null) {
    // After both nodes were MASTER, the one that yields first sends one advert of its own, so that the one that
    // stays always hears a lower-priority MASTER and reruns its takeover, whichever advert crossed first.
    lines.push("    higher_prio_send_advert");
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
  lines.push("    }", "    track_process {", `        ${processTrack}`, "    }");
  if (check.healthUrl !== null) {
    lines.push("    track_script {", `        ${healthScript}`, "    }");
  }
  lines.push(`    notify_master "${spec.notifyMasterScript}" root`);
  if (rxLowerPri !== null) {
    lines.push(`    notify_master_rx_lower_pri "${rxLowerPri}" root`);
  }
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

/** True for a number with at most two decimals (VRRPv3 counts advert intervals in centiseconds). */
function isCentiseconds(value: number): boolean {
  return Math.abs(Math.round(value * 100) - value * 100) < 1e-6;
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
  const advert = spec.advertIntervalSeconds;
  if (spec.authPass === undefined) {
    if (advert !== undefined && (typeof advert !== "number" || !(advert >= VRRP3_ADVERT_RANGE.min && advert <= VRRP3_ADVERT_RANGE.max) || !isCentiseconds(advert))) {
      issues.add("advertIntervalSeconds", `seconds from ${VRRP3_ADVERT_RANGE.min} to ${VRRP3_ADVERT_RANGE.max} in steps of 0.01 (VRRPv3), e.g. 0.5`, advert);
    }
  } else if (advert !== undefined && (typeof advert !== "number" || !Number.isInteger(advert) || advert < 1 || advert > 255)) {
    issues.add(
      "advertIntervalSeconds",
      "whole seconds 1-255: authPass needs VRRPv2, which has no sub-second adverts",
      advert,
      "leave authPass out (VRRPv3 has no authentication; the security group limiting protocol 112 to the two nodes is the control) or use a whole number",
    );
  }
  checkInteger(issues, "priority", spec.priority, 1, 254, true);
  if (spec.preempt !== undefined && typeof spec.preempt !== "boolean") {
    issues.add("preempt", "true or false", spec.preempt);
  }
  const preemptDelay = spec.preemptDelaySeconds;
  if (preemptDelay !== undefined && (typeof preemptDelay !== "number" || !(preemptDelay >= 0 && preemptDelay <= 1000))) {
    issues.add("preemptDelaySeconds", "seconds from 0 to 1000", preemptDelay);
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
  if (spec.notifyMasterRxLowerPriScript !== undefined && spec.notifyMasterRxLowerPriScript !== null) {
    checkAbsolutePath(issues, "notifyMasterRxLowerPriScript", spec.notifyMasterRxLowerPriScript);
  }
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
  if ("processCommand" in check) {
    issues.add(
      "haproxyCheck.processCommand",
      "no such field since imaging-lb 0.3 (keepalived tracks the HAProxy process itself, without running a command)",
      (check as { processCommand?: unknown }).processCommand,
      "remove it; haproxyCheck.processName names the process (default haproxy)",
    );
  }
  if (check.processName !== undefined && (typeof check.processName !== "string" || !PROCESS_NAME.test(check.processName))) {
    issues.add("haproxyCheck.processName", "a process name of 1-15 characters [A-Za-z0-9._+-] as in /proc/<pid>/comm, e.g. haproxy", check.processName);
  }
  checkInteger(issues, "haproxyCheck.intervalSeconds", check.intervalSeconds, 1, 3600, true);
  checkInteger(issues, "haproxyCheck.fall", check.fall, 1, 100, true);
  checkInteger(issues, "haproxyCheck.rise", check.rise, 1, 100, true);
  checkInteger(issues, "haproxyCheck.weight", check.weight, -253, 0, true);
  checkInteger(issues, "haproxyCheck.healthTimeoutSeconds", check.healthTimeoutSeconds, 1, 60, true);
  if (check.healthUrl !== undefined && check.healthUrl !== null && !LOCAL_HTTP_URL.test(check.healthUrl)) {
    issues.add(
      "haproxyCheck.healthUrl",
      "a plain http:// URL on 127.0.0.0/8 or localhost, e.g. http://127.0.0.1:8405/healthz",
      check.healthUrl,
    );
  }
  issues.throwIfAny(`keepalived spec for ${String(spec.envName)}/${String(spec.node)}`);
}
