/**
 * A long DICOM association for drain tests: associate (Verification SOP Class), send a C-ECHO every
 * `pauseMs` for `echoes` times on the same association, then release. Run as a script
 * (`node dicom-session.js '<json DicomSessionRequest>'`) it prints the {@link DicomSessionResult} as JSON,
 * which is how {@link dicomSession} runs it inside a namespace. The PDUs come from the product's own
 * DICOM health-check builder (`lib/haproxy/dicom-check.ts`), which is unit-tested byte by byte.
 */
import { existsSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { associateRequestPdu, cEchoRequestPdu, RELEASE_REQUEST_PDU } from "../../../lib/haproxy/dicom-check";
import type { Topology } from "./netns";

/** One long association. */
export interface DicomSessionRequest {
  readonly host: string;
  readonly port: number;
  readonly calledAet: string;
  /** @default "ILBLONG" */
  readonly callingAet?: string;
  /** Number of C-ECHOs on the association. */
  readonly echoes: number;
  /** Pause before each C-ECHO. */
  readonly pauseMs: number;
  /** Limit for each answer. @default 10000 */
  readonly timeoutMs?: number;
}

/** What happened; `error` is set when the association did not complete. */
export interface DicomSessionResult {
  /** C-ECHOs answered with status 0000. */
  readonly echoesOk: number;
  readonly released: boolean;
  readonly durationMs: number;
  readonly error: string | undefined;
}

/** Reads whole PDUs (6-byte header with a big-endian length) from a socket. */
class PduReader {
  private buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private closed = false;

  constructor(socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  /** The next PDU, or throws on close / timeout. */
  async next(timeoutMs: number): Promise<{ type: number; body: Buffer }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buffer.length >= 6) {
        const length = this.buffer.readUInt32BE(2);
        if (this.buffer.length >= 6 + length) {
          const type = this.buffer[0];
          const body = this.buffer.subarray(6, 6 + length);
          this.buffer = this.buffer.subarray(6 + length);
          return { type, body };
        }
      }
      if (this.closed) throw new Error("connection closed");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no PDU within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }
}

/**
 * The Status (0000,0900) of a C-ECHO-RSP carried in a P-DATA-TF body, or undefined if absent. The command
 * set is walked element by element (implicit VR little endian): a byte search for the tag also matched a
 * message id of 521 (bytes 09 02) followed by the next tag.
 */
function echoStatus(body: Buffer): number | undefined {
  if (body.length < 6) return undefined;
  const end = Math.min(body.length, 4 + body.readUInt32BE(0)); // PDV item: length, context id, control header
  for (let at = 6; at + 8 <= end; ) {
    const group = body.readUInt16LE(at);
    const element = body.readUInt16LE(at + 2);
    const length = body.readUInt32LE(at + 4);
    if (group === 0x0000 && element === 0x0900 && length === 2 && at + 10 <= end) return body.readUInt16LE(at + 8);
    at += 8 + length;
  }
  return undefined;
}

/** Runs one long association from this process. Never throws: failures are reported in `error`. */
export async function runDicomSession(request: DicomSessionRequest): Promise<DicomSessionResult> {
  const started = Date.now();
  const timeoutMs = request.timeoutMs ?? 10_000;
  let echoesOk = 0;
  let released = false;
  const socket = connect({ host: request.host, port: request.port });
  socket.on("error", () => undefined);
  const reader = new PduReader(socket);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
      setTimeout(() => reject(new Error(`not connected within ${timeoutMs} ms`)), timeoutMs).unref();
    });
    socket.write(associateRequestPdu(request.calledAet, request.callingAet ?? "ILBLONG"));
    const ac = await reader.next(timeoutMs);
    if (ac.type !== 0x02) throw new Error(`expected A-ASSOCIATE-AC (02), got PDU type ${ac.type.toString(16)}`);
    for (let i = 1; i <= request.echoes; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, request.pauseMs));
      socket.write(cEchoRequestPdu(i));
      const rsp = await reader.next(timeoutMs);
      if (rsp.type !== 0x04) throw new Error(`echo ${i}: expected P-DATA-TF (04), got PDU type ${rsp.type.toString(16)}`);
      const status = echoStatus(rsp.body);
      if (status !== 0) throw new Error(`echo ${i}: C-ECHO-RSP status ${String(status)}`);
      echoesOk += 1;
    }
    socket.write(RELEASE_REQUEST_PDU);
    const rp = await reader.next(timeoutMs);
    if (rp.type !== 0x06) throw new Error(`expected A-RELEASE-RP (06), got PDU type ${rp.type.toString(16)}`);
    released = true;
    return { echoesOk, released, durationMs: Date.now() - started, error: undefined };
  } catch (error) {
    return { echoesOk, released, durationMs: Date.now() - started, error: (error as Error).message };
  } finally {
    socket.destroy();
  }
}

/**
 * Runs a long association ({@link runDicomSession}) from `host`'s namespace and returns its result.
 *
 * @example
 * const long = dicomSession(topo, "client1", { host: vip, port: 104, calledAet: "EI_CORE", echoes: 10, pauseMs: 500 });
 */
export async function dicomSession(topology: Topology, host: string, request: DicomSessionRequest): Promise<DicomSessionResult> {
  const script = join(__dirname, "dicom-session.js");
  if (!existsSync(script)) throw new Error(`${script} is missing: build first (npx tsc -p tsconfig.json)`);
  const limitMs = request.echoes * (request.pauseMs + (request.timeoutMs ?? 10_000)) + 2 * (request.timeoutMs ?? 10_000) + 5000;
  const run = await topology.exec(host, process.execPath, [script, JSON.stringify(request)], { timeoutMs: limitMs });
  const line = run.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as DicomSessionResult;
  } catch {
    throw new Error(`${run.command}: no result (code ${String(run.code)}, timed out: ${String(run.timedOut)}): ${run.stdout}${run.stderr}`);
  }
}

if (require.main === module) {
  const request = JSON.parse(process.argv[2] ?? "{}") as DicomSessionRequest;
  void runDicomSession(request).then((result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exitCode = result.error === undefined ? 0 : 1;
  });
}
