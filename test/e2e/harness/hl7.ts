/**
 * HL7 v2 over MLLP in a topology: a receiver per server (`hl7_receiver.py`, system Python + python3-hl7)
 * that ACKs every message and logs what it saw, and a client run inside a client namespace
 * (`mllp-client.ts` under Node).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { SYSTEM_PYTHON } from "../../helpers/tools";
import type { MllpRequest, MllpResult } from "./mllp-client";
import type { NsProcess, Topology } from "./netns";
import { pollUntil } from "./wait";

/** One line of the receiver's log. */
export interface MllpEvent {
  readonly event: "listening" | "connect" | "message" | "close" | "error";
  readonly server: string;
  readonly time: number;
  /** Peer address the receiver saw (the LB's server-side address behind a SNAT proxy). */
  readonly peer?: string;
  readonly peerPort?: number;
  /** MSH-10 of a received message. */
  readonly controlId?: string;
  /** MSH-9 of a received message. */
  readonly messageType?: string;
  readonly ackCode?: string;
  readonly raw?: string;
  readonly error?: string;
}

/** Options of {@link startMllpReceiver}. */
export interface MllpReceiverOptions {
  /** Topology host to run in. */
  readonly host: string;
  /** @default 2310 */
  readonly port?: number;
  /** Name written in every log line. @default the host name */
  readonly name?: string;
  /** MSA-1 of every ACK. @default "AA" */
  readonly ackCode?: "AA" | "AE" | "AR";
  /** @default 10000 */
  readonly startTimeoutMs?: number;
}

/** A running MLLP receiver. */
export interface MllpReceiver {
  readonly host: string;
  readonly port: number;
  readonly process: NsProcess;
  /** JSON-lines log of every event. */
  readonly logFile: string;
  /** Every event logged so far. */
  events(): MllpEvent[];
  /** Only the `message` events. */
  messages(): MllpEvent[];
  /** Stops the receiver. */
  stop(): Promise<void>;
}

/** Finds a file of the source tree (`test/e2e/harness/<name>`) from the compiled `dist/` location too. */
function sourceFile(name: string): string {
  let dir = __dirname;
  for (let i = 0; i < 8; i += 1) {
    for (const candidate of [join(dir, name), join(dir, "test", "e2e", "harness", name)]) {
      if (existsSync(candidate)) return candidate;
    }
    dir = dirname(dir);
  }
  throw new Error(`cannot find test/e2e/harness/${name} above ${__dirname}`);
}

let hl7Checked = false;
/** Throws unless the system Python can `import hl7` (Debian package python3-hl7). */
export function requirePythonHl7(): void {
  if (hl7Checked) return;
  const probe = spawnSync(SYSTEM_PYTHON, ["-c", "import hl7"], { encoding: "utf8" });
  if (probe.status !== 0) {
    throw new Error(
      `${SYSTEM_PYTHON} cannot import hl7: install the Debian packages 'python3' and 'python3-hl7' (.ci/run installs them); ` +
        `${probe.stderr?.trim() ?? probe.error?.message ?? ""}`,
    );
  }
  hl7Checked = true;
}

/**
 * Starts an MLLP receiver in `options.host` listening on all addresses, and waits until it listens.
 *
 * @example
 * const rx = await startMllpReceiver(topo, { host: "srv1" });
 * // ... send ...
 * assert.equal(rx.messages()[0].peer, "198.51.100.10");
 */
export async function startMllpReceiver(topology: Topology, options: MllpReceiverOptions): Promise<MllpReceiver> {
  requirePythonHl7();
  const port = options.port ?? 2310;
  const name = options.name ?? options.host;
  const logFile = join(topology.workDir, `mllp-${options.host}-${port}.jsonl`);
  const script = sourceFile("hl7_receiver.py");
  const proc = topology.spawn(
    options.host,
    SYSTEM_PYTHON,
    ["-u", script, "--port", String(port), "--log", logFile, "--name", name, "--ack-code", options.ackCode ?? "AA"],
    { logFile: join(topology.workDir, `mllp-${options.host}-${port}.out`) },
  );
  const events = (): MllpEvent[] => {
    if (!existsSync(logFile)) return [];
    return readFileSync(logFile, "utf8")
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as MllpEvent);
  };
  await pollUntil(
    `MLLP receiver on ${options.host}:${port}`,
    () => {
      proc.assertRunning();
      return events().some((e) => e.event === "listening");
    },
    { timeoutMs: options.startTimeoutMs ?? 10_000 },
  );
  return {
    host: options.host,
    port,
    process: proc,
    logFile,
    events,
    messages: () => events().filter((e) => e.event === "message"),
    stop: () => proc.stop(2000),
  };
}

/** Fields of {@link buildHl7Message}. */
export interface Hl7MessageFields {
  /** MSH-10, echoed in the ACK's MSA-2. */
  readonly controlId: string;
  /** MSH-9. @default "ADT^A01" */
  readonly messageType?: string;
  /** @default "ILBTEST" */
  readonly sendingApplication?: string;
  /** @default "EI" */
  readonly receivingApplication?: string;
  /** PID-3. @default "PID-" + controlId */
  readonly patientId?: string;
}

/** A minimal HL7 v2.5 message (MSH, EVN, PID), segments separated by `\r`. */
export function buildHl7Message(fields: Hl7MessageFields): string {
  const now = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return [
    `MSH|^~\\&|${fields.sendingApplication ?? "ILBTEST"}|LAB|${fields.receivingApplication ?? "EI"}|HOSP|${now}||${fields.messageType ?? "ADT^A01"}|${fields.controlId}|P|2.5`,
    `EVN|A01|${now}`,
    `PID|1||${fields.patientId ?? `PID-${fields.controlId}`}^^^HOSP^MR||TEST^PATIENT||19700101|O`,
  ].join("\r");
}

/** MSA-1 (code) and MSA-2 (control id of the acknowledged message) of an ACK. */
export function parseAck(ack: string): { code: string | undefined; controlId: string | undefined } {
  const msa = ack.split(/\r\n?|\n/).find((segment) => segment.startsWith("MSA|"));
  const fields = msa?.split("|") ?? [];
  return { code: fields[1], controlId: fields[2] };
}

/**
 * Runs an MLLP conversation from `host`'s namespace (connect, optional idle hold, each message → ACK).
 * Returns the result even on failure (see `error`); the overall limit is the idle time plus the per-step
 * timeouts.
 *
 * @example
 * const result = await sendHl7(topo, "client1", { host: vip, port: 2310, messages: [buildHl7Message({ controlId: "C1" })] });
 * assert.equal(parseAck(result.acks[0]).code, "AA");
 */
export async function sendHl7(topology: Topology, host: string, request: MllpRequest): Promise<MllpResult> {
  const script = join(__dirname, "mllp-client.js");
  if (!existsSync(script)) throw new Error(`${script} is missing: build first (npx tsc -p tsconfig.json)`);
  const stepMs = request.timeoutMs ?? 10_000;
  const limitMs = (request.idleBeforeSendMs ?? 0) + (request.pauseBetweenMs ?? 0) * request.messages.length + stepMs * (request.messages.length + 1) + 5000;
  const run = await topology.exec(host, process.execPath, [script, JSON.stringify(request)], { timeoutMs: limitMs });
  const line = run.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as MllpResult;
  } catch {
    throw new Error(`${run.command}: no result (code ${String(run.code)}, timed out: ${String(run.timedOut)}): ${run.stdout}${run.stderr}`);
  }
}
