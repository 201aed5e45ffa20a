/**
 * The cloud-init bootstrap renderer: targeted text assertions named by behaviour, plus the real
 * `cloud-init schema` on the cloud-config, `shellcheck` on every script it ships, and `haproxy -dW -c`
 * on the realistic configuration used for the size budget.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
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
  after(() => work.cleanup());

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

  it("every script is strict bash: set -euo pipefail (the sourced library excepted)", () => {
    for (const f of renderUserDataFiles(VARIANTS["ubuntu two-arm ppa tproxy cloudwatch keepalived"])) {
      if (!f.path.startsWith("/usr/local/sbin/")) continue;
      assert.match(f.content, /^#!\/bin\/bash\n/, f.path);
      assert.match(f.content, /^set -euo pipefail$/m, f.path);
    }
  });

  it("points HAProxy's unit at the environment file the agent writes (secrets), and every haproxy -c loads it", () => {
    const text = renderUserData(spec());
    const bootstrap = fileAt(text, "/usr/local/sbin/imaging-lb-bootstrap") ?? "";
    assert.ok(bootstrap.includes("EnvironmentFile=-/etc/imaging-lb/haproxy.env"));
    assert.ok(bootstrap.includes("LimitNOFILE=1048576"), "file descriptors for the global maxconn");
  });

  it("configures a single node's VIPs as /32 addresses on their interface (netplan and networkd)", () => {
    const eth1 = { name: "eth1" as const, role: "external" as const, deviceIndex: 1 as const, subnetCidr: "10.0.2.0/24", addresses: ["10.0.2.100", "10.0.2.101"] };
    const ubuntu = renderUserData(spec({ interfaces: [ETH0, eth1] }));
    const network = fileAt(ubuntu, "/usr/local/sbin/imaging-lb-network") ?? "";
    assert.match(network, /set-name: eth1\n {6}dhcp4: true\n {6}dhcp6: false\n {6}addresses:\n {8}- 10\.0\.2\.100\/32\n {8}- 10\.0\.2\.101\/32\n/);
    const al = fileAt(renderUserData(spec({ os: "al2023", interfaces: [ETH0, eth1] })), "/usr/local/sbin/imaging-lb-network") ?? "";
    assert.match(al, /DHCP=ipv4\nAddress=10\.0\.2\.100\/32\nAddress=10\.0\.2\.101\/32\n/);
  });

  it("creates the system users other components need before starting their services", () => {
    const text = renderUserData(spec({ systemUsers: ["keepalived_script"], extraServices: ["keepalived"] }));
    const bootstrap = fileAt(text, "/usr/local/sbin/imaging-lb-bootstrap") ?? "";
    const steps = bootstrap.slice(bootstrap.lastIndexOf("\n}\n"));
    assert.ok(bootstrap.includes("id -u keepalived_script >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin keepalived_script"));
    assert.ok(steps.indexOf("create_system_users") < steps.indexOf("configure_agent"), "users exist before the agent starts keepalived");
  });

  it("carries the agent's launcher and the loader (no agent), writes where the configuration lives, starts the service, then runs one apply", () => {
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
    const bootstrap = fileAt(text, "/usr/local/sbin/imaging-lb-bootstrap") ?? "";
    assert.ok(bootstrap.includes('echo "imaging-lb-prod-$account"'), "the stack's bucket, named after the account IMDS reports");
    assert.ok(bootstrap.includes("PREFIX=prod\nNODE=lb-a\nENVIRONMENT=prod\nREGION=eu-central-1\n"));
    const first = bootstrap.indexOf('"$ROOT/usr/local/sbin/imaging-lb-agent" --once --boot || die');
    const service = bootstrap.indexOf("systemctl enable --now imaging-lb-agent.service");
    assert.ok(service > 0 && first > service, "the service is on before the first apply, so a failed one is retried");
    assert.match(bootstrap, /^Restart=always$/m);
    assert.doesNotMatch(bootstrap, /^OnUnitInactiveSec=/m, "no timer: one long-lived process");
    const adopted = fileAt(renderUserData(spec({ configStore: { bucket: "hospital-lb-config", prefix: "prod" } })), "/usr/local/sbin/imaging-lb-bootstrap") ?? "";
    assert.ok(adopted.includes("config_bucket() {\n  echo hospital-lb-config\n}"));
  });

  it("two-arm writes policy routing: a table per ENI, from-rules, default route via the subnet router", () => {
    const network = fileAt(renderUserData(spec()), "/usr/local/sbin/imaging-lb-network") ?? "";
    assert.ok(network.includes([
      "    eth1:",
      "      match:",
      '        macaddress: "@MAC@"',
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
      "        - from: @ADDRESS@/32",
      "          table: 1001",
      "          priority: 1011",
      "        - from: 10.20.2.0/24",
      "          table: 1001",
      "          priority: 1012",
    ].join("\n")), network);
    assert.match(network, /- to: 0\.0\.0\.0\/0\n {10}via: 10\.20\.1\.1\n {10}on-link: true\n {10}table: 1000/);
    // Waits (bounded) for the hot-plugged eth1; mac_of runs as a plain assignment, so an IMDS failure stops
    // the script (set -e) instead of reading as "not attached yet".
    assert.match(network, /while true; do\n  mac1="\$\(mac_of 1\)"\n  if \[ -n "\$mac1" \]; then break; fi\n/);
    assert.doesNotMatch(network, /\$\(mac_of [01]\)"? *\|\|/, "mac_of is never called after || (set -e would be off inside it)");
    const bootstrap = fileAt(renderUserData(spec()), "/usr/local/sbin/imaging-lb-bootstrap") ?? "";
    assert.ok(bootstrap.includes(
      'ACTION=="add", SUBSYSTEM=="net", DEVPATH!="/devices/virtual/*", RUN+="/usr/bin/systemctl --no-block start imaging-lb-network.service"',
    ));
  });

  it("one-arm names eth0 by MAC but writes no policy routing and no hot-plug rule", () => {
    const text = renderUserData(oneArm());
    const network = fileAt(text, "/usr/local/sbin/imaging-lb-network") ?? "";
    assert.match(network, /set-name: eth0/);
    for (const absent of ["routing-policy", "table:", "eth1", "mac_of 1"]) assert.ok(!network.includes(absent), absent);
    assert.ok(!text.includes("90-imaging-lb-eni.rules"));
    assert.ok(!text.includes("rp_filter"));
  });

  it("sets TProxy rules, forwarding and the networkd guard only with tproxy", () => {
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
    assert.match(withTproxy, /^ {6}net\.ipv4\.ip_forward = 1$/m);
    assert.match(withTproxy, /ManageForeignRoutingPolicyRules=no/);

    const without = renderUserData(spec({ tproxy: false }));
    for (const absent of ["DIVERT", "fwmark", "ip_forward", "imaging-lb-tproxy", "ManageForeign", "iptables"]) {
      assert.ok(!without.includes(absent), `${absent} without tproxy`);
    }
  });

  it("sets ip_nonlocal_bind with nonlocalBind or VIPs on eth1 (attached late), somaxconn always, a port range of different parity", () => {
    assert.match(renderUserData(spec({ nonlocalBind: true })), /^ {6}net\.ipv4\.ip_nonlocal_bind = 1$/m);
    const without = renderUserData(spec({ nonlocalBind: false }));
    assert.ok(!without.includes("ip_nonlocal_bind"));
    // A single two-arm node: its VIPs are static addresses of eth1, which may arrive after HAProxy started.
    const lateVips = renderUserData(spec({ nonlocalBind: false, interfaces: [ETH0, { ...ETH1, addresses: ["10.20.2.100"] }] }));
    assert.match(lateVips, /^ {6}net\.ipv4\.ip_nonlocal_bind = 1$/m);
    const range = /^ {6}net\.ipv4\.ip_local_port_range = (\d+) (\d+)$/m.exec(without);
    assert.ok(range !== null && Number(range[1]) % 2 !== Number(range[2]) % 2, "start and end of different parity (else the kernel warns)");
    assert.match(without, /^ {6}net\.core\.somaxconn = 8192$/m);
  });

  it("installs HAProxy from the vbernat PPA pinned to the series, or from the distribution", () => {
    const ppa = fileAt(renderUserData(spec({ haproxy: { source: "ppa", version: "3.2" } })), "/usr/local/sbin/imaging-lb-bootstrap") ?? "";
    assert.ok(ppa.includes('    retry "add-apt-repository" add-apt-repository -y ppa:vbernat/haproxy-3.2\n'));
    assert.ok(ppa.includes("Package: haproxy\nPin: version 3.2.*\nPin-Priority: 1001\n"));
    assert.ok(fileAt(renderUserData(spec({ haproxy: { source: "ppa" } })), "/usr/local/sbin/imaging-lb-bootstrap")?.includes("ppa:vbernat/haproxy-3.0"));

    const distro = fileAt(renderUserData(spec()), "/usr/local/sbin/imaging-lb-bootstrap") ?? "";
    assert.ok(!distro.includes("add-apt-repository") && !distro.includes("Pin:"));
    assert.ok(distro.includes('retry "apt-get install" apt-get install -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold haproxy\n'));
    assert.ok(distro.includes('    retry "snap install aws-cli" snap install aws-cli --classic\n'), "Ubuntu 24.04 has no awscli apt package");
    const debian = fileAt(renderUserData(spec({ os: "debian-13" })), "/usr/local/sbin/imaging-lb-bootstrap") ?? "";
    assert.ok(debian.includes("--force-confold haproxy awscli\n"), "Debian's AWS CLI comes from apt");
    assert.ok(!debian.includes("snap"), "no snap on Debian");
    assert.throws(() => renderUserData(spec({ os: "debian-13", haproxy: { source: "ppa" } })), /"ppa" is Ubuntu only, got os "debian-13"/);
    const pinned = fileAt(renderUserData(spec({ haproxy: { source: "distribution", version: "2.8" } })), "/usr/local/sbin/imaging-lb-bootstrap") ?? "";
    assert.ok(pinned.includes("Pin: version 2.8.*") && !pinned.includes("add-apt-repository"));

    const al = fileAt(renderUserData(spec({ os: "al2023", haproxy: { source: "distribution", version: "3.0" } })), "/usr/local/sbin/imaging-lb-bootstrap") ?? "";
    assert.ok(al.includes("  retry \"dnf install\" dnf install -y 'haproxy-3.0.*' awscli-2\n"));
    assert.ok(!al.includes("apt-get") && !al.includes("snap"));
  });

  it("carries no secret at all, not even a secret ARN: the agent reads those from the bundle", () => {
    const text = renderUserData(spec());
    assert.ok(!/BEGIN (CERTIFICATE|[A-Z ]*PRIVATE KEY)|arn:aws/.test(text));
  });

  it("sets the hostname to the node name (HAProxy peers need hostname == peer name)", () => {
    const text = renderUserData(spec({ nodeName: "lb-b" }));
    assert.match(text, /^hostname: lb-b\npreserve_hostname: false\n/m);
    assert.ok(text.includes("  hostnamectl set-hostname lb-b\n"));
  });

  it("keeps HAProxy logs in the journal, and ships them with the CloudWatch agent only when a group is set", () => {
    const plain = renderUserData(spec());
    assert.ok(plain.includes("BindReadOnlyPaths=-/dev/log:/var/lib/haproxy/dev/log"));
    assert.ok(!plain.includes("amazon-cloudwatch-agent"));
    const shipped = renderUserData(spec({ cloudWatchLogGroup: "/imaging-lb/prod" }));
    assert.ok(shipped.includes('"log_group_name": "/imaging-lb/prod"'));
    assert.ok(shipped.includes("ExecStart=/usr/bin/journalctl --unit=haproxy.service --follow --lines=0 --output=short-iso"));
    assert.ok(shipped.includes("s3://amazoncloudwatch-agent-eu-central-1/ubuntu/$(dpkg --print-architecture)/latest/amazon-cloudwatch-agent.deb"));
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
