/**
 * Live test of the DICOM health check: real HAProxy runs the rendered tcp-check rules against real DICOM
 * servers on loopback (DCMTK storescp, Orthanc; a storescp frozen with SIGSTOP is a hung PACS whose kernel
 * still accepts connections), plus small simulated SCPs (labelled as such) for the cases no real server
 * produces on demand: a reply that arrives in pieces, a C-ECHO failure status, an A-ABORT.
 * Server states are read from HAProxy's runtime API (`show stat` over the stats socket).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { dicomTcpCheckDirectives, type DicomCheckOptions } from "../lib/haproxy/dicom-check";
import { haproxyCheck } from "./helpers/haproxy";
import { requireTool, tempDir } from "./helpers/tools";

const LOOPBACK = "127.0.0.1";
/**
 * How long every server may take to reach its expected state. Settled servers end the wait at once (about
 * 2 s on a quiet machine); the margin is for a loaded one, where one of these checks once still showed its
 * start-up state when a 12 s wait ended.
 */
const SETTLE_DEADLINE_MS = 30_000;
/** AE titles with characters HAProxy treats specially in a quoted argument or a line: " $ # ' */
const ODD_CALLED_AE = 'PACS"${X}';
const ODD_CALLING_AE = "LB'#1";

// ------------------------------------------------------------------------------------------ processes

interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  output: string;
}

function startChild(name: string, command: string, args: string[], cwd: string): Child {
  const child: Child = { name, process: spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] }), output: "" };
  child.process.stdout?.on("data", (d: Buffer) => (child.output += d.toString()));
  child.process.stderr?.on("data", (d: Buffer) => (child.output += d.toString()));
  child.process.on("error", (err) => (child.output += `\nspawn error: ${err.message}`));
  return child;
}

async function stopChild(child: Child): Promise<void> {
  const proc = child.process;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 3_000);
  await exited;
  clearTimeout(timer);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP port free on loopback right now (listen on 0, read it, close). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ host: LOOPBACK, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Polls until `port` accepts connections, failing with the child's output after the deadline. */
async function waitForPort(port: number, child: Child, deadlineMs = 8_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (child.process.exitCode !== null) throw new Error(`${child.name} exited early:\n${child.output}`);
    if (await canConnect(port)) return;
    await sleep(50);
  }
  throw new Error(`${child.name} did not listen on ${port} within ${deadlineMs} ms:\n${child.output}`);
}

// ------------------------------------------------------------------------------------- runtime API

/** Sends one command to HAProxy's runtime API on a unix socket and returns the answer. */
function runtimeApi(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let answer = "";
    socket.setEncoding("utf8");
    socket.setTimeout(2_000, () => socket.destroy(new Error(`runtime API timeout on '${command}'`)));
    socket.once("connect", () => socket.end(`${command}\n`));
    socket.on("data", (chunk: string) => (answer += chunk));
    socket.once("end", () => resolve(answer));
    socket.once("error", reject);
  });
}

/** Splits one CSV line of `show stat`: a field holding a quote or comma is quoted, quotes doubled. */
function csvFields(line: string): string[] {
  const fields: string[] = [];
  const pattern = /("(?:[^"]|"")*"|[^,]*)(,|$)/g;
  for (let match = pattern.exec(line); match !== null; match = pattern.exec(line)) {
    const raw = match[1];
    fields.push(raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw);
    if (match[2] === "") break;
  }
  return fields;
}

interface ServerState {
  readonly status: string;
  readonly checkStatus: string;
  readonly lastCheck: string;
  /** A check is running now: HAProxy then shows the previous result, but not yet its description. */
  readonly checking: boolean;
}

/** `show stat` as a map "backend/server" → state (frontends and backend totals left out). */
async function serverStates(socketPath: string): Promise<Map<string, ServerState>> {
  const lines = (await runtimeApi(socketPath, "show stat")).split("\n").filter((l) => l.trim() !== "");
  const header = lines[0].replace(/^# /, "").split(",");
  const column = (name: string): number => {
    const index = header.indexOf(name);
    assert.ok(index >= 0, `show stat has a '${name}' column`);
    return index;
  };
  const [px, sv, status, checkStatus, lastChk] = ["pxname", "svname", "status", "check_status", "last_chk"].map(column);
  const states = new Map<string, ServerState>();
  for (const line of lines.slice(1)) {
    const fields = csvFields(line);
    if (fields[sv] === "FRONTEND" || fields[sv] === "BACKEND") continue;
    states.set(`${fields[px]}/${fields[sv]}`, {
      status: fields[status],
      // "* L7OK": a check is running now; the last result follows the star.
      checkStatus: fields[checkStatus].replace(/^\* /, ""),
      lastCheck: fields[lastChk],
      checking: fields[checkStatus].startsWith("* "),
    });
  }
  return states;
}

// ---------------------------------------------------------------------------- simulated DICOM SCPs

function pduBytes(type: number, body: Buffer): Buffer {
  const header = Buffer.alloc(6);
  header[0] = type;
  header.writeUInt32BE(body.length, 2);
  return Buffer.concat([header, body]);
}

function itemBytes(type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header[0] = type;
  header.writeUInt16BE(value.length, 2);
  return Buffer.concat([header, value]);
}

/** An A-ASSOCIATE-AC accepting presentation context 1 with Implicit VR Little Endian. */
function associateAccept(request: Buffer): Buffer {
  const fixed = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00]), request.subarray(10, 42), Buffer.alloc(32)]);
  const userInfo = Buffer.concat([
    itemBytes(0x51, Buffer.from([0x00, 0x00, 0x40, 0x00])),
    itemBytes(0x52, Buffer.from("2.25.1", "ascii")),
    itemBytes(0x55, Buffer.from("SIMULATED", "ascii")),
  ]);
  return pduBytes(
    0x02,
    Buffer.concat([
      fixed,
      itemBytes(0x10, Buffer.from("1.2.840.10008.3.1.1.1", "ascii")),
      itemBytes(0x21, Buffer.concat([Buffer.from([0x01, 0x00, 0x00, 0x00]), itemBytes(0x40, Buffer.from("1.2.840.10008.1.2", "ascii"))])),
      itemBytes(0x50, userInfo),
    ]),
  );
}

/** A C-ECHO-RSP command (implicit VR LE) with `status`, in a P-DATA-TF on presentation context 1. */
function cEchoResponse(status: number, messageId: number): Buffer {
  const element = (elementNumber: number, value: Buffer): Buffer => {
    const header = Buffer.alloc(8);
    header.writeUInt16LE(elementNumber, 2);
    header.writeUInt32LE(value.length, 4);
    return Buffer.concat([header, value]);
  };
  const us = (n: number): Buffer => Buffer.from([n & 0xff, n >> 8]);
  const body = Buffer.concat([
    element(0x0002, Buffer.from("1.2.840.10008.1.1\0", "ascii")),
    element(0x0100, us(0x8030)),
    element(0x0120, us(messageId)),
    element(0x0800, us(0x0101)),
    element(0x0900, us(status)),
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length);
  const command = Buffer.concat([element(0x0000, groupLength), body]);
  const pdvLength = Buffer.alloc(4);
  pdvLength.writeUInt32BE(command.length + 2);
  return pduBytes(0x04, Buffer.concat([pdvLength, Buffer.from([0x01, 0x03]), command]));
}

/** `bytes` cut into pieces of `size` bytes (the last one shorter). */
function split(bytes: Buffer, size: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) pieces.push(bytes.subarray(offset, offset + size));
  return pieces;
}

interface SimulatedScpBehaviour {
  /** Status of the C-ECHO-RSP. */
  readonly status: number;
  /** Send the A-ASSOCIATE-AC in two writes 200 ms apart and the C-ECHO-RSP 7 bytes at a time, 20 ms apart. */
  readonly inPieces: boolean;
  /** Answer the A-ASSOCIATE-RQ with an A-ABORT (source 2: service provider) instead. @default false */
  readonly abort?: boolean;
}

/**
 * SIMULATED DICOM SCP (not a real PACS): answers A-ASSOCIATE-RQ, C-ECHO-RQ and A-RELEASE-RQ with just
 * enough protocol to exercise HAProxy's partial reads and a failure status.
 */
async function startSimulatedScp(behaviour: SimulatedScpBehaviour): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((socket) => {
    let received = Buffer.alloc(0);
    let writes = Promise.resolve();
    /** Queues `pieces` as separate writes, `pauseMs` apart, after whatever was queued before. */
    const write = (pieces: Buffer[], pauseMs: number): void => {
      writes = writes.then(async () => {
        for (const [index, piece] of pieces.entries()) {
          if (socket.destroyed) return;
          if (index > 0) await sleep(pauseMs);
          socket.write(piece);
        }
      });
    };
    socket.on("error", () => socket.destroy());
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      while (received.length >= 6 && received.length >= 6 + received.readUInt32BE(2)) {
        const pdu = received.subarray(0, 6 + received.readUInt32BE(2));
        received = received.subarray(pdu.length);
        switch (pdu[0]) {
          case 0x01: {
            if (behaviour.abort) {
              write([Buffer.from("07000000000400000200", "hex")], 0);
              writes = writes.then(() => void socket.end());
              break;
            }
            const accept = associateAccept(pdu);
            // In pieces: the AC's first 10 bytes satisfy HAProxy's first expect, which then sends the
            // C-ECHO-RQ; the rest of the AC arrives 200 ms later, in front of the C-ECHO-RSP.
            write(behaviour.inPieces ? [accept.subarray(0, 10), accept.subarray(10)] : [accept], 200);
            break;
          }
          case 0x04: {
            const messageId = pdu.readUInt16LE(pdu.indexOf(Buffer.from([0x00, 0x00, 0x10, 0x01])) + 8);
            write(behaviour.inPieces ? split(cEchoResponse(behaviour.status, messageId), 7) : [cEchoResponse(behaviour.status, messageId)], 20);
            break;
          }
          case 0x05:
            write([Buffer.from("06000000000400000000", "hex")], 0);
            writes = writes.then(() => void socket.end());
            break;
          default:
            socket.destroy();
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  return { server, port: (server.address() as net.AddressInfo).port };
}

// ------------------------------------------------------------------------------------------- the test

describe("DICOM health check: real HAProxy against real DICOM servers on loopback", () => {
  const dir = tempDir("dicom-check");
  const children: Child[] = [];
  const simulated: net.Server[] = [];
  let haproxy: Child | undefined;
  let storescp: Child | undefined;
  let hung: Child | undefined;
  let config = "";
  const states = new Map<string, ServerState>();
  /** Why the setup failed (a missing tool, a server that did not start): every test then fails with it. */
  let setupError: unknown;
  /** The servers not in their expected state when the wait for them ended, and how long it was. */
  let unsettled = "";

  const expected: Record<string, "UP" | "DOWN"> = {
    "dicom_echo/storescp": "UP",
    "dicom_echo/orthanc": "UP",
    "dicom_echo/closed": "DOWN",
    "dicom_echo/storescp_refuse": "DOWN",
    "dicom_echo/simulated_pieces": "UP",
    "dicom_echo/simulated_failure": "DOWN",
    "dicom_echo/storescp_hung": "DOWN",
    "dicom_echo/simulated_abort": "DOWN",
    "dicom_echo_wrong_aet/orthanc": "DOWN",
    "dicom_associate/storescp": "UP",
    "dicom_associate/storescp_refuse": "UP",
    "dicom_associate/orthanc_wrong_aet": "UP",
    "dicom_associate/closed": "DOWN",
    "control_anchored/simulated_pieces": "DOWN",
    "control_anchored/storescp": "UP",
    "dicom_odd_titles/storescp": "UP",
    "dicom_odd_titles/storescp_refuse": "DOWN",
  };

  const describeStates = (): string =>
    unsettled +
    [...states].map(([name, s]) => `${name}: ${s.status} ${s.checkStatus} ${s.lastCheck}`).join("\n") +
    `\n--- haproxy output ---\n${haproxy?.output ?? ""}`;

  before(async () => {
    try {
      await setUp();
    } catch (error) {
      setupError = error;
    }
  });

  async function setUp(): Promise<void> {
    const haproxyBin = requireTool("haproxy", "haproxy");
    const storescpBin = requireTool("storescp", "dcmtk");
    const orthancBin = requireTool("Orthanc", "orthanc");

    const [storescpPort, refusePort, orthancPort, closedPort, hungPort] = [
      await freePort(), await freePort(), await freePort(), await freePort(), await freePort(),
    ];

    const storeDir = join(dir.path, "storescp");
    mkdirSync(storeDir);
    storescp = startChild("storescp", storescpBin, ["-v", "-dhl", "--aetitle", "STORESCP", "--output-directory", storeDir, String(storescpPort)], dir.path);
    const refuse = startChild("storescp --refuse", storescpBin, ["-v", "-dhl", "--refuse", String(refusePort)], dir.path);
    hung = startChild("storescp (hung)", storescpBin, ["--aetitle", "ORTHANC", String(hungPort)], dir.path);

    const orthancDir = join(dir.path, "orthanc");
    mkdirSync(orthancDir);
    writeFileSync(
      join(orthancDir, "orthanc.json"),
      JSON.stringify({
        Name: "imaging-lb-test",
        StorageDirectory: join(orthancDir, "db"),
        IndexDirectory: join(orthancDir, "db"),
        HttpServerEnabled: false,
        DicomServerEnabled: true,
        DicomAet: "ORTHANC",
        DicomPort: orthancPort,
        DicomCheckCalledAet: true,
        DicomAlwaysAllowEcho: true,
        RemoteAccessAllowed: false,
        Plugins: [],
      }),
    );
    const orthanc = startChild("Orthanc", orthancBin, [join(orthancDir, "orthanc.json")], orthancDir);
    children.push(storescp, refuse, orthanc, hung);

    const pieces = await startSimulatedScp({ status: 0x0000, inPieces: true });
    const failure = await startSimulatedScp({ status: 0x0110, inPieces: false });
    const aborting = await startSimulatedScp({ status: 0x0000, inPieces: false, abort: true });
    simulated.push(pieces.server, failure.server, aborting.server);

    await Promise.all([
      waitForPort(storescpPort, storescp),
      waitForPort(refusePort, refuse),
      waitForPort(orthancPort, orthanc),
      waitForPort(hungPort, hung),
    ]);
    // A hung PACS: the process is frozen, its listening socket still completes TCP handshakes.
    hung.process.kill("SIGSTOP");

    const backend = (name: string, check: DicomCheckOptions | string[], servers: Record<string, number>): string =>
      [
        `backend ${name}`,
        "    mode tcp",
        ...(Array.isArray(check) ? check : dicomTcpCheckDirectives(check)).map((d) => `    ${d}`),
        ...Object.entries(servers).map(
          ([server, port]) => `    server ${server} ${LOOPBACK}:${port} check inter 500ms fall 1 rise 1`,
        ),
      ].join("\n");
    const anchoredAtStart = dicomTcpCheckDirectives({ calledAeTitle: "ORTHANC" }).map((d) => d.replace("^(..)*04", "^04"));
    assert.equal(anchoredAtStart.filter((d) => d.includes("rbinary ^04.{18}")).length, 2);
    const socketPath = join(dir.path, "admin.sock");
    config = [
      "global",
      `    stats socket ${socketPath} level admin`,
      "",
      "defaults",
      "    mode tcp",
      "    timeout connect 1s",
      "    timeout client 10s",
      "    timeout server 10s",
      "    timeout check 3s",
      "",
      backend("dicom_echo", { calledAeTitle: "ORTHANC" }, {
        storescp: storescpPort,
        orthanc: orthancPort,
        closed: closedPort,
        storescp_refuse: refusePort,
        simulated_pieces: pieces.port,
        simulated_failure: failure.port,
        storescp_hung: hungPort,
        simulated_abort: aborting.port,
      }),
      "",
      backend("dicom_echo_wrong_aet", { calledAeTitle: "NOTORTHANC" }, { orthanc: orthancPort }),
      "",
      backend("dicom_associate", { calledAeTitle: "NOTORTHANC", variant: "associate" }, {
        storescp: storescpPort,
        storescp_refuse: refusePort,
        orthanc_wrong_aet: orthancPort,
        closed: closedPort,
      }),
      "",
      // Control: the C-ECHO-RSP patterns anchored at the buffer start, as a naive check would be.
      backend("control_anchored", anchoredAtStart, { simulated_pieces: pieces.port, storescp: storescpPort }),
      "",
      backend("dicom_odd_titles", { calledAeTitle: ODD_CALLED_AE, callingAeTitle: ODD_CALLING_AE }, {
        storescp: storescpPort,
        storescp_refuse: refusePort,
      }),
      "",
    ].join("\n");

    const checked = haproxyCheck(dir.path, config);
    assert.ok(checked.ok, `haproxy -dW -c rejected the configuration:\n${checked.output}\n${config}`);

    haproxy = startChild("haproxy", haproxyBin, ["-f", join(dir.path, "haproxy.cfg"), "-db"], dir.path);
    children.push(haproxy);

    // Poll until every server has a check result and the expected state, or the deadline passes.
    const end = Date.now() + SETTLE_DEADLINE_MS;
    for (;;) {
      if (haproxy.process.exitCode !== null) throw new Error(`haproxy exited:\n${haproxy.output}`);
      try {
        // Each server's last state read while no check of it was running: a snapshot taken during a check
        // has the result but an empty description (seen under load), which is not what HAProxy reports.
        for (const [name, state] of await serverStates(socketPath)) if (!state.checking || !states.has(name)) states.set(name, state);
      } catch {
        // the stats socket is not there yet
      }
      const waiting = Object.entries(expected).filter(([name, want]) => {
        const state = states.get(name);
        return !(state !== undefined && !state.checking && !["", "INI"].includes(state.checkStatus) && state.status.startsWith(want));
      });
      if (waiting.length === 0) break;
      if (Date.now() > end) {
        unsettled = `not in the expected state after ${SETTLE_DEADLINE_MS / 1000} s: ${waiting.map(([name, want]) => `${name} (expected ${want})`).join(", ")}\n`;
        break;
      }
      await sleep(100);
    }
  }

  after(async () => {
    hung?.process.kill("SIGCONT");
    await Promise.all(children.map(stopChild));
    await Promise.all(simulated.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    dir.cleanup();
  });

  const assertSetUp = (): void => {
    if (setupError !== undefined) throw setupError;
  };

  const assertServer = (name: string, status: "UP" | "DOWN", checkStatus: string, lastCheck?: RegExp): void => {
    assertSetUp();
    const state = states.get(name);
    assert.ok(state, `no server ${name} in show stat:\n${describeStates()}`);
    assert.equal(state.status, status, `${name} status\n${describeStates()}`);
    assert.equal(state.checkStatus, checkStatus, `${name} check status\n${describeStates()}`);
    if (lastCheck) assert.match(state.lastCheck, lastCheck, `${name} last check\n${describeStates()}`);
  };

  it("renders a configuration that haproxy -dW -c accepts", () => {
    assertSetUp();
    const checked = haproxyCheck(dir.path, config);
    assert.ok(checked.ok, checked.output);
    assert.match(config, /option tcp-check\n {4}tcp-check connect default linger/);
  });

  it("c-echo: storescp (DCMTK) answering C-ECHO is UP", () => {
    assertServer("dicom_echo/storescp", "UP", "L7OK");
  });

  it("c-echo: Orthanc with the right called AE title is UP", () => {
    assertServer("dicom_echo/orthanc", "UP", "L7OK");
  });

  it("c-echo: a closed port is DOWN at the connect step", () => {
    assertServer("dicom_echo/closed", "DOWN", "L4CON", /step 1 of tcp-check \(connect\)/);
  });

  it("c-echo: storescp --refuse (a real A-ASSOCIATE-RJ) is DOWN with the reject comment", () => {
    assertServer("dicom_echo/storescp_refuse", "DOWN", "L7RSP", /A-ASSOCIATE-RJ: LBHEALTH to ORTHANC/);
  });

  it("c-echo: Orthanc rejecting a wrong called AE title is DOWN", () => {
    assertServer("dicom_echo_wrong_aet/orthanc", "DOWN", "L7RSP", /A-ASSOCIATE-RJ: LBHEALTH to NOTORTHANC/);
  });

  it("c-echo: a reply in pieces (AC tail after the first match, C-ECHO-RSP 7 bytes at a time) is UP [simulated SCP]", () => {
    assertServer("dicom_echo/simulated_pieces", "UP", "L7OK");
  });

  it("control: patterns anchored at the buffer start fail on that reply in pieces, so the case above is real", () => {
    assertServer("control_anchored/storescp", "UP", "L7OK");
    assertServer("control_anchored/simulated_pieces", "DOWN", "L7TOUT", /at step 8 of tcp-check/);
  });

  it("c-echo: a hung PACS (storescp frozen by SIGSTOP) is DOWN by timeout, reported as no answer — not as a reject", () => {
    assertServer("dicom_echo/storescp_hung", "DOWN", "L7TOUT", /no answer to A-ASSOCIATE-RQ \(timeout, or not DICOM\)/);
    assert.doesNotMatch(states.get("dicom_echo/storescp_hung")?.lastCheck ?? "", /A-ASSOCIATE-RJ/);
  });

  it("c-echo: an A-ABORT answer is DOWN at once with the abort comment, not the reject one [simulated SCP]", () => {
    assertServer("dicom_echo/simulated_abort", "DOWN", "L7RSP", /A-ABORT: the PACS aborted LBHEALTH to ORTHANC/);
  });

  it("c-echo: C-ECHO-RSP status 0110 is DOWN at once, not by timeout [simulated SCP]", () => {
    assertServer("dicom_echo/simulated_failure", "DOWN", "L7RSP", /C-ECHO-RSP Status is not 0000/);
  });

  it("associate: storescp UP, a reject counts as alive (storescp --refuse, Orthanc wrong AE), closed port DOWN", () => {
    assertServer("dicom_associate/storescp", "UP", "L7OK");
    assertServer("dicom_associate/storescp_refuse", "UP", "L7OK");
    assertServer("dicom_associate/orthanc_wrong_aet", "UP", "L7OK");
    assertServer("dicom_associate/closed", "DOWN", "L4CON");
  });

  it("AE titles with quotes, dollar and hash signs reach the server and the comments intact", () => {
    assertServer("dicom_odd_titles/storescp", "UP", "L7OK");
    assertServer("dicom_odd_titles/storescp_refuse", "DOWN", "L7RSP", /A-ASSOCIATE-RJ: LB'#1 to PACS"\$\{X\}/);
  });

  it("storescp saw C-ECHO with a clean release and aborted associations, and logged no error", () => {
    assertSetUp();
    const log = storescp?.output ?? "";
    assert.match(log, /Received Echo Request \(MsgID 1\)/, log);
    assert.match(log, /Association Release/, log);
    assert.match(log, /Association Aborted/, log);
    assert.doesNotMatch(log, /^[EF]: /m, log);
    assert.equal(readFileSync(join(dir.path, "haproxy.cfg"), "utf8"), config);
  });
});
