/**
 * The cloud-init bootstrap renderer: targeted assertions named by behaviour — on the values the renderer
 * passes (bootstrap.env), and on what the scripts (lib/shell/*.sh, the same on every node) write and run when
 * run for real in the sandbox of test/helpers/bootstrap-sandbox.ts — plus the real `cloud-init schema` on the
 * cloud-config, `shellcheck` on every script it ships, and `haproxy -dW -c` on the realistic configuration
 * used for the size budget.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import {
  BootstrapSpecError,
  USER_DATA_LIMIT_BYTES,
  decodeUserData,
  encodeUserData,
  renderUserData,
  renderUserDataFiles,
  subnetRouter,
  type BootstrapSpec,
} from "../lib/bootstrap";
import { imagingLbAgentLauncher, imagingLbAgentLoader } from "../lib/agent/embedded.generated";
import { NODE_CONTRACT, renderContractEnv } from "../lib/contract/node-contract";
import { agentFiles } from "../lib/node/bundle";
import { BOOTSTRAP_PATHS, renderBootstrapEnv } from "../lib/bootstrap/scripts";
import { resolveBootstrapSpec } from "../lib/bootstrap/bootstrap-spec";
import * as shell from "../lib/shell/embedded.generated";
import { makeSandbox, runBootstrap } from "./helpers/bootstrap-sandbox";
import { startFakeImds } from "./helpers/fake-imds";
import { haproxyCheck } from "./helpers/haproxy";
import { makeSelfSignedPem, requireTool, tempDir } from "./helpers/tools";

const ETH0 = { name: "eth0", role: "internal", deviceIndex: 0, subnetCidr: "10.20.1.0/24" } as const;
const ETH1 = { name: "eth1", role: "external", deviceIndex: 1, subnetCidr: "10.20.2.0/24" } as const;

/** Hex of a DICOM A-ASSOCIATE-RQ (Verification, Implicit VR LE) from `LBHEALTH` to `called`. */
function associateRq(called: string): string {
  const ae = (s: string): string => Buffer.from(s.padEnd(16, " ")).toString("hex");
  const item = (type: string, body: string): string => type + "00" + (body.length / 2).toString(16).padStart(4, "0") + body;
  const uid = (type: string, value: string): string => item(type, Buffer.from(value).toString("hex"));
  const presentation = item("20", "01000000" + uid("30", "1.2.840.10008.1.1") + uid("40", "1.2.840.10008.1.2"));
  const user = item("50", item("51", "00004000"));
  const body = "00010000" + ae(called) + ae("LBHEALTH") + "00".repeat(32) + uid("10", "1.2.840.10008.3.1.1.1") + presentation + user;
  return "0100" + (body.length / 2).toString(16).padStart(8, "0") + body;
}

/** A realistic ~200-line haproxy.cfg for AGFA EI behind a two-arm HA pair (IP literals only). */
function realisticHaproxyConfig(certPath: string): string {
  const servers = (prefix: string, port: number, extra = "check"): string[] =>
    [1, 2, 3].map((n) => `    server ${prefix}${n} 10.20.1.${20 + n}:${port} ${extra}`);
  const tcpService = (name: string, port: number, timeout: string, check: string[], extra = "check inter 10s"): string[] => [
    `frontend ${name}`,
    `    mode tcp`,
    `    bind 10.20.2.100:${port}`,
    `    option tcplog`,
    `    timeout client ${timeout}`,
    `    default_backend ${name}`,
    ``,
    `backend ${name}`,
    `    mode tcp`,
    `    balance leastconn`,
    `    option tcpka`,
    `    timeout server ${timeout}`,
    `    source 10.20.1.10`,
    `    stick-table type ip size 200k expire 60m peers lbpeers`,
    `    stick on src`,
    ...check,
    ...servers(name.replace(/[^a-z]/g, ""), port, extra),
    ``,
  ];
  const dicomCheck = [
    `    option tcp-check`,
    `    tcp-check connect`,
    `    tcp-check send-binary ${associateRq("EI_CORE")}`,
    `    tcp-check expect rbinary ^02`,
    `    tcp-check send-binary 05000000000400000000`,
    `    tcp-check expect rbinary ^06`,
  ];
  const lines = [
    "# imaging-lb: prod/lb-a, AGFA Enterprise Imaging (example)",
    "global",
    "    log /dev/log local0",
    "    chroot /var/lib/haproxy",
    "    user haproxy",
    "    group haproxy",
    "    localpeer lb-a",
    "    maxconn 20000",
    "    stats socket /run/haproxy/admin.sock mode 660 level admin expose-fd listeners",
    "    stats timeout 30s",
    "    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
    "    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets",
    "    tune.ssl.default-dh-param 2048",
    "",
    "defaults",
    "    log global",
    "    option dontlognull",
    "    option redispatch",
    "    retries 3",
    "    timeout connect 5s",
    "    timeout client 10m",
    "    timeout server 10m",
    "    timeout http-request 30s",
    "    timeout tunnel 1h",
    "    timeout check 10s",
    "",
    "peers lbpeers",
    "    peer lb-a 10.20.1.10:10000",
    "    peer lb-b 10.20.1.11:10000",
    "",
    "listen stats",
    "    mode http",
    "    bind 10.20.1.10:8404",
    "    stats enable",
    "    stats uri /stats",
    "    stats refresh 10s",
    "    stats admin if LOCALHOST",
    "",
    "frontend xero_http",
    "    mode http",
    "    bind 10.20.2.100:80",
    "    option httplog",
    "    http-request redirect scheme https code 301",
    "",
    "frontend xero_https",
    "    mode http",
    `    bind 10.20.2.100:443 ssl crt ${certPath} alpn h2,http/1.1`,
    "    option httplog",
    "    option forwardfor",
    "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
    "    http-request del-header X-Powered-By",
    "    http-response del-header Server",
    "    acl xtend path_beg /xtend /ImpaxEE/xtend",
    "    use_backend xero_xtend if xtend",
    "    default_backend xero",
    "",
    "backend xero",
    "    mode http",
    "    balance leastconn",
    "    cookie SERVERID insert indirect nocache httponly secure",
    "    stick-table type ip size 200k expire 60m peers lbpeers",
    "    stick on src",
    "    option httpchk",
    "    http-check send meth GET uri /ImpaxEE/health ver HTTP/1.1 hdr Host xero.example.org",
    "    http-check expect status 200-399",
    "    source 10.20.1.10",
    "    server web1 10.20.1.21:443 ssl verify none check cookie web1",
    "    server web2 10.20.1.22:443 ssl verify none check cookie web2",
    "    server web3 10.20.1.23:443 ssl verify none check cookie web3",
    "    server sorry 10.20.1.99:8080 backup",
    "",
    "backend xero_xtend",
    "    mode http",
    "    balance leastconn",
    "    cookie SERVERID insert indirect nocache httponly secure",
    "    option httpchk",
    "    http-check send meth GET uri /xtend/health ver HTTP/1.1 hdr Host xero.example.org",
    "    http-check expect status 200-399",
    "    source 10.20.1.10",
    "    server xtend1 10.20.1.31:443 ssl verify none check cookie xtend1",
    "    server xtend2 10.20.1.32:443 ssl verify none check cookie xtend2",
    "",
    ...tcpService("core_4447", 4447, "1h", []),
    ...tcpService("core_7443", 7443, "1h", [], "check check-ssl verify none inter 10s"),
    ...tcpService("core_9080", 9080, "1h", []),
    ...tcpService("core_10124", 10124, "1h", []),
    ...tcpService("dicom_104", 104, "1h", dicomCheck),
    ...tcpService("dicom_110", 110, "1h", dicomCheck),
    ...tcpService("hl7_2310", 2310, "24h", []),
    ...tcpService("hl7_2311", 2311, "24h", []),
  ];
  return lines.join("\n") + "\n";
}

function spec(overrides: Partial<BootstrapSpec> = {}): BootstrapSpec {
  return {
    envName: "prod",
    nodeName: "lb-a",
    region: "eu-central-1",
    interfaces: [ETH0, ETH1],
    configStore: { prefix: "prod" },
    nonlocalBind: true,
    tproxy: false,
    ...overrides,
  };
}

/** The `write_files` entries of rendered user data. */
function writtenFiles(userData: string): Array<{ path: string; content: string }> {
  return (parse(userData) as { write_files: Array<{ path: string; content: string }> }).write_files;
}

/** The `write_files` entry at `path` of rendered user data. */
function fileAt(userData: string, path: string): string | undefined {
  return writtenFiles(userData).find((f) => f.path === path)?.content;
}

const oneArm = (o: Partial<BootstrapSpec> = {}): BootstrapSpec => spec({ interfaces: [ETH0], ...o });

const MACS = ["0a:00:00:00:00:01", "0a:00:00:00:00:02"];
/** The primary address the SIMULATED IMDS gives an ENI of `subnetCidr` (a /24 here): its .10. */
const primary = (subnetCidr: string): string => subnetCidr.replace(/\.0\/\d+$/, ".10");

interface Boot {
  /** The content of a file the bootstrap wrote (path on the node), undefined when it wrote none. */
  readonly file: (path: string) => string | undefined;
  /** The host-changing commands it ran, in order (paths below the sandbox root as on the node). */
  readonly commands: string[];
  readonly stderr: string;
}

let sandboxes: { path: string; cleanup: () => void } | undefined;
const boots = new Map<string, Promise<Boot>>();
/**
 * Runs the bootstrap rendered from `s` for real in the sandbox (stubbed host commands, a SIMULATED IMDSv2
 * with every ENI of the spec attached), once per spec.
 */
function boot(s: BootstrapSpec): Promise<Boot> {
  const key = JSON.stringify(s);
  let run = boots.get(key);
  if (run === undefined) {
    run = (async () => {
      sandboxes ??= tempDir("bootstrap-runs");
      const dir = join(sandboxes.path, String(boots.size));
      const sb = makeSandbox(dir, renderUserData(s), "/dev/null");
      const imds = await startFakeImds(
        s.interfaces.map((e) => ({ mac: MACS[e.deviceIndex], deviceNumber: e.deviceIndex, localIpv4s: [primary(e.subnetCidr)], subnetCidr: e.subnetCidr })),
      );
      try {
        const r = await runBootstrap(sb, imds.url);
        assert.equal(r.code, 0, r.stderr);
        const file = (path: string): string | undefined => (existsSync(join(sb.root, path)) ? readFileSync(join(sb.root, path), "utf8") : undefined);
        return { file, commands: r.commands.map((c) => c.split(sb.root).join("")), stderr: r.stderr };
      } finally {
        await imds.close();
      }
    })();
    boots.set(key, run);
  }
  return run;
}

/** Variants covering every branch of the renderer. */
const VARIANTS: Record<string, BootstrapSpec> = {
  "ubuntu two-arm ppa tproxy cloudwatch keepalived": spec({
    haproxy: { source: "ppa", version: "3.2" },
    tproxy: true,
    cloudWatchLogGroup: "/imaging-lb/prod",
    extraServices: ["keepalived"],
    systemUsers: ["keepalived_script"],
  }),
  "ubuntu one-arm distribution, adopted bucket": oneArm({ nonlocalBind: false, configStore: { bucket: "hospital-lb-config", prefix: "prod" } }),
  "al2023 two-arm tproxy cloudwatch": spec({ os: "al2023", tproxy: true, cloudWatchLogGroup: "/imaging-lb/prod" }),
  "al2023 one-arm pinned": oneArm({ os: "al2023", haproxy: { source: "distribution", version: "3.0" } }),
};

describe("bootstrap user data", () => {
  let work: { path: string; cleanup: () => void };
  before(() => {
    work = tempDir("bootstrap");
  });
  after(() => {
    work.cleanup();
    sandboxes?.cleanup();
  });

  it("is a valid cloud-config for every variant (cloud-init schema --config-file)", () => {
    const cloudInit = requireTool("cloud-init", "cloud-init");
    for (const [name, s] of Object.entries(VARIANTS)) {
      const file = join(work.path, `${name.replace(/\W+/g, "-")}.yaml`);
      writeFileSync(file, renderUserData(s));
      const run = spawnSync(cloudInit, ["schema", "--config-file", file], { encoding: "utf8" });
      assert.equal(run.status, 0, `${name}: ${run.stdout}${run.stderr}`);
      assert.match(run.stdout, /Valid cloud-config/);
    }
  });

  it("ships shell scripts that pass shellcheck, for every variant", () => {
    const shellcheck = requireTool("shellcheck", "shellcheck");
    for (const [name, s] of Object.entries(VARIANTS)) {
      const scripts = renderUserDataFiles(s).filter((f) => f.path.startsWith("/usr/local/"));
      assert.ok(scripts.length >= 3, name);
      const paths = scripts.map((f) => {
        const p = join(work.path, `${name.replace(/\W+/g, "-")}-${f.path.split("/").pop()}`);
        writeFileSync(p, f.content);
        return p;
      });
      const run = spawnSync(shellcheck, ["--severity=style", ...paths], { encoding: "utf8" });
      assert.equal(run.status, 0, `${name}:\n${run.stdout}${run.stderr}`);
    }
  });

  it("ships lib/shell's scripts as they are, the same on every node: the node's values are in bootstrap.env alone", () => {
    const shipped = new Set<string>(Object.values(shell));
    for (const [name, s] of Object.entries(VARIANTS)) {
      for (const f of renderUserDataFiles(s)) {
        if (f.path === BOOTSTRAP_PATHS.settings || f.path === "/usr/local/lib/imaging-lb/contract.env" || f.path.includes("imaging-lb-agent")) continue;
        assert.ok(shipped.has(f.content), `${name}: ${f.path} is a file of lib/shell`);
      }
      const env = fileAt(renderUserData(s), BOOTSTRAP_PATHS.settings) ?? "";
      assert.match(env, new RegExp(`^ENV_NAME=prod NODE_NAME=${s.nodeName} REGION=${s.region}$`, "m"), name);
    }
  });

  it("every file the scripts source or run is one the user data installs there (the paths agree)", () => {
    const installed = new Set(Object.values(BOOTSTRAP_PATHS));
    const dir = join(__dirname, "..", "..", "lib", "shell");
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".sh"))) {
      for (const [path] of readFileSync(join(dir, file), "utf8").matchAll(/\/usr\/local\/(?:lib\/imaging-lb|sbin)\/[\w.-]+/g)) {
        assert.ok(installed.has(path as never), `${file} names ${path}, which BOOTSTRAP_PATHS does not`);
      }
    }
    const env = renderBootstrapEnv(resolveBootstrapSpec(VARIANTS["ubuntu two-arm ppa tproxy cloudwatch keepalived"]));
    for (const [, name, path] of env.matchAll(/\b([A-Z_]+)=(\/\S+)/g)) {
      // IMAGE_MANIFEST is the baked image's own file (the recipe writes it), not one the user data installs.
      if (name !== "EXTRA_PATH" && name !== "CLOUDWATCH_LOG_GROUP" && name !== "IMAGE_MANIFEST") assert.ok(installed.has(path as never), `${name}=${path}`);
    }
  });

  it("lib/shell's files pass shellcheck as they are", () => {
    const shellcheck = requireTool("shellcheck", "shellcheck");
    const dir = join(__dirname, "..", "..", "lib", "shell");
    const files = readdirSync(dir).filter((f) => f.endsWith(".sh")).map((f) => join(dir, f));
    const run = spawnSync(shellcheck, ["--severity=style", ...files], { encoding: "utf8" });
    assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
  });

  it("every script is strict bash: set -euo pipefail (the sourced library excepted)", () => {
    for (const f of renderUserDataFiles(VARIANTS["ubuntu two-arm ppa tproxy cloudwatch keepalived"])) {
      if (!f.path.startsWith("/usr/local/sbin/")) continue;
      assert.match(f.content, /^#!\/bin\/bash\n/, f.path);
      assert.match(f.content, /^set -euo pipefail$/m, f.path);
    }
  });

  it("points HAProxy's unit at the environment file the agent writes (secrets), and every haproxy -c loads it", async () => {
    const unit = (await boot(spec())).file("/etc/systemd/system/haproxy.service.d/50-imaging-lb.conf") ?? "";
    assert.ok(unit.includes("EnvironmentFile=-/etc/imaging-lb/haproxy.env"));
    assert.ok(unit.includes("LimitNOFILE=1048576"), "file descriptors for the global maxconn");
  });

  it("configures a single node's VIPs as /32 addresses on their interface (netplan and networkd)", async () => {
    const eth1 = { name: "eth1" as const, role: "external" as const, deviceIndex: 1 as const, subnetCidr: "10.0.2.0/24", addresses: ["10.0.2.100", "10.0.2.101"] };
    const ubuntu = await boot(spec({ interfaces: [ETH0, eth1] }));
    const netplan = ubuntu.file("/etc/netplan/60-imaging-lb.yaml") ?? "";
    assert.match(netplan, /set-name: eth1\n {6}dhcp4: true\n {6}dhcp6: false\n {6}addresses:\n {8}- 10\.0\.2\.100\/32\n {8}- 10\.0\.2\.101\/32\n/);
    const al = (await boot(spec({ os: "al2023", interfaces: [ETH0, eth1] }))).file("/etc/systemd/network/10-imaging-lb-eth1.network") ?? "";
    assert.match(al, /DHCP=ipv4\nAddress=10\.0\.2\.100\/32\nAddress=10\.0\.2\.101\/32\n/);
  });

  it("creates the system users other components need before starting their services", async () => {
    const { commands } = await boot(spec({ systemUsers: ["keepalived_script"], extraServices: ["keepalived"] }));
    const check = commands.indexOf("id -u keepalived_script");
    const create = commands.indexOf("useradd --system --no-create-home --shell /usr/sbin/nologin keepalived_script");
    const agent = commands.indexOf("systemctl enable --now imaging-lb-agent.service");
    assert.ok(check >= 0 && create > check, commands.join("\n"));
    assert.ok(create < agent, "users exist before the agent starts keepalived");
  });

  it("carries the agent's launcher and the loader (no agent), writes where the configuration lives, starts the service, then runs one apply", async () => {
    const text = renderUserData(spec());
    assert.equal(fileAt(text, "/usr/local/sbin/imaging-lb-agent"), imagingLbAgentLauncher);
    assert.equal(fileAt(text, "/usr/local/sbin/imaging-lb-agent-loader"), imagingLbAgentLoader);
    assert.equal(fileAt(text, "/usr/local/lib/imaging-lb/contract.env"), renderContractEnv());
    // The agent itself comes with the bundle: the user data writes no file of its package, and no file it
    // writes carries any function of the package's modules (as the bundle carries them).
    const packageDir = `${NODE_CONTRACT.paths.agentPackageDir}/`;
    const modules = agentFiles().filter((f) => f.path.startsWith(packageDir) && f.path.endsWith(".py"));
    const definitions = new Set(modules.flatMap((m) => m.content.split("\n").filter((line) => /^\s*(async )?def \w+\(/.test(line)).map((line) => line.trim())));
    assert.ok(modules.length > 0 && definitions.size > 0, "the agent's package has modules and functions to look for");
    const written = writtenFiles(text);
    assert.deepEqual(written.filter((f) => f.path.startsWith(packageDir)).map((f) => f.path), []);
    for (const f of written) {
      const carried = f.content.split("\n").filter((line) => definitions.has(line.trim()));
      assert.deepEqual(carried, [], `${f.path} carries the agent's functions`);
    }
    assert.doesNotMatch(text, /^frontend |haproxy\.cfg: /m, "no configuration in the user data");
    const run = await boot(spec());
    const agentEnv = run.file("/etc/imaging-lb/agent.env") ?? "";
    assert.ok(agentEnv.includes("BUCKET=imaging-lb-prod-123456789012\n"), "the stack's bucket, named after the account IMDS reports");
    assert.ok(agentEnv.includes("PREFIX=prod\nNODE=lb-a\nENVIRONMENT=prod\nREGION=eu-central-1\n"));
    const bootstrap = fileAt(text, "/usr/local/sbin/imaging-lb-bootstrap") ?? "";
    assert.ok(bootstrap.includes('"$ROOT$AGENT" --once --boot || die'), "a failed first apply fails the bootstrap");
    const first = run.commands.indexOf("imaging-lb-agent --once --boot");
    const service = run.commands.indexOf("systemctl enable --now imaging-lb-agent.service");
    assert.ok(service > 0 && first > service, "the service is on before the first apply, so a failed one is retried");
    const unit = run.file("/etc/systemd/system/imaging-lb-agent.service") ?? "";
    assert.match(unit, /^Restart=always$/m);
    assert.doesNotMatch(unit, /^OnUnitInactiveSec=/m, "no timer: one long-lived process");
    const adopted = await boot(spec({ configStore: { bucket: "hospital-lb-config", prefix: "prod" } }));
    assert.ok(adopted.file("/etc/imaging-lb/agent.env")?.includes("BUCKET=hospital-lb-config\n"));
  });

  it("two-arm writes policy routing: a table per ENI, from-rules, default route via the subnet router", async () => {
    const run = await boot(spec());
    const netplan = run.file("/etc/netplan/60-imaging-lb.yaml") ?? "";
    assert.ok(netplan.includes([
      "    eth1:",
      "      match:",
      `        macaddress: "${MACS[1]}"`,
      "      set-name: eth1",
      "      dhcp4: true",
      "      dhcp6: false",
      "      dhcp4-overrides:",
      "        route-metric: 200",
      "        use-routes: false",
      "      routes:",
      "        - to: 10.20.2.0/24",
      "          scope: link",
      "          table: 1001",
      "        - to: 0.0.0.0/0",
      "          via: 10.20.2.1",
      "          on-link: true",
      "          table: 1001",
      "      routing-policy:",
      "        - from: 10.20.2.10/32",
      "          table: 1001",
      "          priority: 1011",
      "        - from: 10.20.2.0/24",
      "          table: 1001",
      "          priority: 1012",
    ].join("\n")), netplan);
    assert.match(netplan, /- to: 0\.0\.0\.0\/0\n {10}via: 10\.20\.1\.1\n {10}on-link: true\n {10}table: 1000/);
    // Waits (bounded) for the hot-plugged eth1; mac_of runs as a plain assignment, so an IMDS failure stops
    // the script (set -e) instead of reading as "not attached yet".
    const network = fileAt(renderUserData(spec()), "/usr/local/sbin/imaging-lb-network") ?? "";
    assert.match(network, /while true; do\n +mac1="\$\(mac_of 1\)"\n +if \[ -n "\$mac1" \]; then break; fi\n/);
    assert.doesNotMatch(network, /\$\(mac_of [01]\)"? *\|\|/, "mac_of is never called after || (set -e would be off inside it)");
    assert.ok(run.file("/etc/udev/rules.d/90-imaging-lb-eni.rules")?.includes(
      'ACTION=="add", SUBSYSTEM=="net", DEVPATH!="/devices/virtual/*", RUN+="/usr/bin/systemctl --no-block start imaging-lb-network.service"',
    ));
  });

  it("one-arm names eth0 by MAC but writes no policy routing and no hot-plug rule", async () => {
    const run = await boot(oneArm());
    const netplan = run.file("/etc/netplan/60-imaging-lb.yaml") ?? "";
    assert.match(netplan, /set-name: eth0/);
    for (const absent of ["routing-policy", "table:", "eth1"]) assert.ok(!netplan.includes(absent), absent);
    assert.doesNotMatch(run.stderr, /device-number 1/);
    assert.equal(run.file("/etc/udev/rules.d/90-imaging-lb-eni.rules"), undefined);
    assert.equal(run.file("/etc/systemd/system/imaging-lb-network.service"), undefined);
    assert.ok(!(run.file("/etc/sysctl.d/60-imaging-lb.conf") ?? "rp_filter").includes("rp_filter"));
  });

  it("sets TProxy rules, forwarding and the networkd guard only with tproxy", async () => {
    const withTproxy = renderUserData(spec({ tproxy: true }));
    const tproxy = fileAt(withTproxy, "/usr/local/sbin/imaging-lb-tproxy") ?? "";
    assert.ok(tproxy.includes([
      "append PREROUTING -p tcp -m socket -j DIVERT",
      "append DIVERT -j MARK --set-mark 1",
      "append DIVERT -j ACCEPT",
      'if [ -z "$(ip rule show fwmark 1 lookup 100)" ]; then',
      "  ip rule add fwmark 1 lookup 100",
      "fi",
      "ip route replace local 0.0.0.0/0 dev lo table 100",
    ].join("\n")));
    const on = await boot(spec({ tproxy: true }));
    assert.match(on.file("/etc/sysctl.d/60-imaging-lb.conf") ?? "", /^net\.ipv4\.ip_forward = 1$/m);
    assert.match(on.file("/etc/systemd/networkd.conf.d/60-imaging-lb.conf") ?? "", /ManageForeignRoutingPolicyRules=no/);
    assert.ok(on.commands.includes("systemctl enable imaging-lb-tproxy.service"));

    const without = renderUserData(spec({ tproxy: false }));
    for (const absent of ["DIVERT", "fwmark", "ManageForeign", "iptables", "/usr/local/sbin/imaging-lb-tproxy\n"]) {
      assert.ok(!without.includes(absent), `${absent} without tproxy`);
    }
    const off = await boot(spec({ tproxy: false }));
    assert.ok(!(off.file("/etc/sysctl.d/60-imaging-lb.conf") ?? "ip_forward").includes("ip_forward"), "ip_forward without tproxy");
    assert.equal(off.file("/etc/systemd/system/imaging-lb-tproxy.service"), undefined);
    assert.equal(off.file("/etc/systemd/networkd.conf.d/60-imaging-lb.conf"), undefined);
    assert.ok(!off.commands.some((c) => /tproxy|iptables|fwmark/.test(c)), off.commands.join("\n"));
  });

  it("sets ip_nonlocal_bind with nonlocalBind or VIPs on eth1 (attached late), somaxconn always, a port range of different parity", async () => {
    const sysctl = async (s: BootstrapSpec): Promise<string> => (await boot(s)).file("/etc/sysctl.d/60-imaging-lb.conf") ?? "";
    assert.match(await sysctl(spec({ nonlocalBind: true })), /^net\.ipv4\.ip_nonlocal_bind = 1$/m);
    const without = await sysctl(spec({ nonlocalBind: false }));
    assert.ok(!without.includes("ip_nonlocal_bind"));
    // A single two-arm node: its VIPs are static addresses of eth1, which may arrive after HAProxy started.
    const lateVips = await sysctl(spec({ nonlocalBind: false, interfaces: [ETH0, { ...ETH1, addresses: ["10.20.2.100"] }] }));
    assert.match(lateVips, /^net\.ipv4\.ip_nonlocal_bind = 1$/m);
    const range = /^net\.ipv4\.ip_local_port_range = (\d+) (\d+)$/m.exec(without);
    assert.ok(range !== null && Number(range[1]) % 2 !== Number(range[2]) % 2, "start and end of different parity (else the kernel warns)");
    assert.match(without, /^net\.core\.somaxconn = 8192$/m);
  });

  it("installs HAProxy from the vbernat PPA pinned to the series, or from the distribution", async () => {
    const PIN = "/etc/apt/preferences.d/imaging-lb-haproxy.pref";
    const ppa = await boot(spec({ haproxy: { source: "ppa", version: "3.2" } }));
    assert.ok(ppa.commands.includes("add-apt-repository -y ppa:vbernat/haproxy-3.2"));
    assert.ok(ppa.file(PIN)?.includes("Package: haproxy\nPin: version 3.2.*\nPin-Priority: 1001\n"));
    assert.ok((await boot(spec({ haproxy: { source: "ppa" } }))).commands.includes("add-apt-repository -y ppa:vbernat/haproxy-3.0"));

    const distro = await boot(spec());
    assert.ok(!distro.commands.some((c) => c.startsWith("add-apt-repository")) && distro.file(PIN) === undefined);
    assert.ok(distro.commands.includes("apt-get install -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold haproxy"));
    // The sandbox has an aws on PATH, so the snap is not installed there: the values say it would be.
    const ubuntuEnv = fileAt(renderUserData(spec()), BOOTSTRAP_PATHS.settings) ?? "";
    assert.match(ubuntuEnv, /^AWS_CLI_SNAP=1 EXTRA_PATH=\/snap\/bin$/m, "Ubuntu 24.04 has no awscli apt package");
    assert.ok((fileAt(renderUserData(spec()), BOOTSTRAP_PATHS.bootstrap) ?? "").includes('retry "snap install aws-cli" snap install aws-cli --classic\n'));
    const debian = await boot(spec({ os: "debian-13" }));
    assert.ok(debian.commands.some((c) => c.endsWith("--force-confold haproxy awscli")), "Debian's AWS CLI comes from apt");
    assert.ok(!debian.commands.some((c) => c.startsWith("snap")), "no snap on Debian");
    assert.match(fileAt(renderUserData(spec({ os: "debian-13" })), BOOTSTRAP_PATHS.settings) ?? "", /^AWS_CLI_SNAP=0 EXTRA_PATH=""$/m, "no snap on Debian");
    assert.throws(() => renderUserData(spec({ os: "debian-13", haproxy: { source: "ppa" } })), /"ppa" is Ubuntu only, got os "debian-13"/);
    const pinned = await boot(spec({ haproxy: { source: "distribution", version: "2.8" } }));
    assert.ok(pinned.file(PIN)?.includes("Pin: version 2.8.*") && !pinned.commands.some((c) => c.startsWith("add-apt-repository")));

    const al = await boot(spec({ os: "al2023", haproxy: { source: "distribution", version: "3.0" } }));
    assert.ok(al.commands.includes("dnf install -y haproxy-3.0.* awscli-2"), al.commands.join("\n"));
    assert.match(fileAt(renderUserData(spec({ os: "al2023", haproxy: { source: "distribution", version: "3.0" } })), BOOTSTRAP_PATHS.settings) ?? "", /^PACKAGES=\('haproxy-3\.0\.\*' awscli-2\)$/m);
    assert.ok(!al.commands.some((c) => c.startsWith("apt-get") || c.startsWith("snap")));
  });

  it("carries no secret at all, not even a secret ARN: the agent reads those from the bundle", () => {
    const text = renderUserData(spec());
    assert.ok(!/BEGIN (CERTIFICATE|[A-Z ]*PRIVATE KEY)|arn:aws/.test(text));
  });

  it("sets the hostname to the node name (HAProxy peers need hostname == peer name)", async () => {
    const text = renderUserData(spec({ nodeName: "lb-b" }));
    assert.match(text, /^hostname: lb-b\npreserve_hostname: false\n/m);
    assert.ok((await boot(spec({ nodeName: "lb-b" }))).commands.includes("hostnamectl set-hostname lb-b"));
  });

  it("keeps HAProxy logs in the journal, and ships them with the CloudWatch agent only when a group is set", async () => {
    const plain = renderUserData(spec());
    assert.ok((await boot(spec())).file("/etc/systemd/system/haproxy.service.d/50-imaging-lb.conf")?.includes("BindReadOnlyPaths=-/dev/log:/var/lib/haproxy/dev/log"));
    assert.ok(!plain.includes("amazon-cloudwatch-agent"));
    const shipped = await boot(spec({ cloudWatchLogGroup: "/imaging-lb/prod" }));
    assert.ok(shipped.file("/opt/aws/amazon-cloudwatch-agent/etc/imaging-lb.json")?.includes('"log_group_name": "/imaging-lb/prod"'));
    assert.ok(shipped.file("/etc/systemd/system/imaging-lb-haproxy-log.service")?.includes("ExecStart=/usr/bin/journalctl --unit=haproxy.service --follow --lines=0 --output=short-iso"));
    assert.ok(shipped.commands.some((c) => c.includes("s3://amazoncloudwatch-agent-eu-central-1/ubuntu/amd64/latest/amazon-cloudwatch-agent.deb")), shipped.commands.join("\n"));
  });

  it("fits EC2's 16 KB limit whatever the configuration (the largest variant, a realistic haproxy.cfg is not in it)", () => {
    const pem = makeSelfSignedPem(work.path, "xero.example.org");
    const checked = haproxyCheck(work.path, realisticHaproxyConfig(pem));
    assert.ok(checked.ok, checked.output);
    const text = renderUserData(VARIANTS["ubuntu two-arm ppa tproxy cloudwatch keepalived"]);
    const raw = Buffer.from(encodeUserData(text), "base64");
    console.log(`# largest user data: ${Buffer.byteLength(text)} bytes of text, ${raw.length} bytes encoded (limit ${USER_DATA_LIMIT_BYTES})`);
    assert.ok(raw.length <= USER_DATA_LIMIT_BYTES);
  });

  it("encodes plain base64 while the text fits, gzip beyond it, and refuses what cannot fit", () => {
    const small = "#cloud-config\nruncmd: []\n";
    assert.equal(encodeUserData(small), Buffer.from(small).toString("base64"));
    const large = "#cloud-config\n" + "# padding padding padding\n".repeat(1000);
    const encoded = Buffer.from(encodeUserData(large), "base64");
    assert.deepEqual([...encoded.subarray(0, 2)], [0x1f, 0x8b]);
    assert.equal(decodeUserData(encodeUserData(large)), large);
    assert.equal(encodeUserData(large), encodeUserData(large), "deterministic");
    const incompressible = "#cloud-config\n# " + randomBytes(20000).toString("base64") + "\n";
    assert.throws(() => encodeUserData(incompressible), /EC2 allows 16384/);
  });

  it("reports every spec problem at once, with path, value and what is allowed", () => {
    const err = (() => {
      try {
        renderUserData(spec({
          nodeName: "LB_A",
          region: "europe",
          haproxy: { source: "ppa", version: "3.1" },
          interfaces: [ETH0, { ...ETH1, deviceIndex: 0, subnetCidr: "10.20.2.7/24" }],
          configStore: { bucket: "Bad_Bucket", prefix: "prod" },
        }));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof BootstrapSpecError);
    assert.deepEqual(err.problems, [
      'nodeName: expected a lowercase DNS label (it becomes the hostname and the HAProxy peer name), got "LB_A"',
      'region: expected an AWS region such as eu-central-1, got "europe"',
      'haproxy.version: expected an HAProxy LTS series major.minor with an even minor, e.g. 2.8, 3.0, 3.2, got "3.1"',
      "interfaces[1].deviceIndex: expected 1 for eth1, got 0",
      'interfaces[1].subnetCidr: expected the network address (10.20.2.0/24), got "10.20.2.7/24"',
      'configStore.bucket: expected an S3 bucket name (3-63 of a-z 0-9 . -), got "Bad_Bucket"',
    ]);
    assert.throws(() => renderUserData(spec({ os: "al2023", haproxy: { source: "ppa" } })), /"ppa" is Ubuntu only/);
  });

  it("derives the VPC router as the subnet base + 1", () => {
    assert.equal(subnetRouter("10.20.2.0/24"), "10.20.2.1");
    assert.equal(subnetRouter("172.31.16.0/20"), "172.31.16.1");
  });
});
