/**
 * An MLLP (HL7 v2 over TCP) client with Node's `net`. {@link mllpExchange} runs in the current process;
 * run as a script (`node mllp-client.js '<json MllpRequest>'`) it prints the {@link MllpResult} as JSON,
 * which is how `hl7.ts` runs it inside a network namespace.
 */
import { connect, type Socket } from "node:net";

/** One MLLP conversation: connect, optionally stay idle, send each message and wait for its ACK. */
export interface MllpRequest {
  readonly host: string;
  readonly port: number;
  /** HL7 messages, segments separated by `\r`. */
  readonly messages: readonly string[];
  /** Hold the connection idle this long after connecting, before the first message. @default 0 */
  readonly idleBeforeSendMs?: number;
  /** Pause between messages. @default 0 */
  readonly pauseBetweenMs?: number;
  /** Limit for connecting and for each ACK. @default 10000 */
  readonly timeoutMs?: number;
}

/** What happened. `error` is set (and `acks` may be short) when something failed. */
export interface MllpResult {
  /** The ACK messages received, in order (MLLP framing removed). */
  readonly acks: string[];
  /** Local address/port of the connection (as the LB saw it). */
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly connectMs: number | undefined;
  readonly durationMs: number;
  /** e.g. `connection closed by peer after 5003 ms (idle)`. */
  readonly error: string | undefined;
}

const START = 0x0b;
const END = Buffer.from([0x1c, 0x0d]);

/** Frames `message` for MLLP: `<VT> message <FS><CR>`. */
export function mllpFrame(message: string): Buffer {
  return Buffer.concat([Buffer.from([START]), Buffer.from(message, "utf8"), END]);
}

/** Runs one MLLP conversation from this process. Never throws: failures are reported in `error`. */
export function mllpExchange(request: MllpRequest): Promise<MllpResult> {
  const started = Date.now();
  const timeoutMs = request.timeoutMs ?? 10_000;
  const acks: string[] = [];
  let socket: Socket | undefined;
  let localAddress: string | undefined;
  let localPort: number | undefined;
  let connectMs: number | undefined;
  let buffer = Buffer.alloc(0);
  let phase = "connect";
  let closed = false;
  let wake: (() => void) | undefined;
  let failure: string | undefined;

  const finish = (): MllpResult => {
    socket?.destroy();
    return { acks, localAddress, localPort, connectMs, durationMs: Date.now() - started, error: failure };
  };
  /** Waits until `ready()` or the socket closes / `ms` pass; returns false on the latter. */
  const waitFor = (ready: () => boolean, ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (ready()) done(true);
        else if (closed) done(false);
      };
      const timer = setTimeout(() => done(false), ms);
      const done = (value: boolean): void => {
        clearTimeout(timer);
        wake = undefined;
        resolve(value);
      };
      wake = check;
      check();
    });
  const takeFrame = (): string | undefined => {
    const start = buffer.indexOf(START);
    const end = buffer.indexOf(END, start + 1);
    if (start < 0 || end < 0) return undefined;
    const frame = buffer.subarray(start + 1, end).toString("utf8");
    buffer = buffer.subarray(end + END.length);
    return frame;
  };

  return (async () => {
    socket = connect({ host: request.host, port: request.port });
    let connected = false;
    socket.on("connect", () => {
      connected = true;
      connectMs = Date.now() - started;
      localAddress = socket?.localAddress;
      localPort = socket?.localPort;
      wake?.();
    });
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      wake?.();
    });
    socket.on("error", (error) => {
      failure ??= `${phase}: ${error.message}`;
    });
    socket.on("close", () => {
      closed = true;
      wake?.();
    });

    if (!(await waitFor(() => connected, timeoutMs))) {
      failure ??= `${phase}: not connected to ${request.host}:${request.port} within ${timeoutMs} ms`;
      return finish();
    }
    if ((request.idleBeforeSendMs ?? 0) > 0) {
      phase = "idle";
      const idleStart = Date.now();
      await waitFor(() => false, request.idleBeforeSendMs ?? 0);
      if (closed) {
        failure ??= `connection closed by peer after ${Date.now() - idleStart} ms (idle)`;
        return finish();
      }
    }
    for (const [index, message] of request.messages.entries()) {
      if (index > 0 && (request.pauseBetweenMs ?? 0) > 0) await waitFor(() => false, request.pauseBetweenMs ?? 0);
      phase = `message ${index + 1}`;
      if (closed) {
        failure ??= `${phase}: connection closed before sending`;
        return finish();
      }
      socket.write(mllpFrame(message));
      let ack: string | undefined;
      const got = await waitFor(() => (ack = takeFrame()) !== undefined, timeoutMs);
      if (!got || ack === undefined) {
        failure ??= `${phase}: ${closed ? "connection closed" : `no ACK within ${timeoutMs} ms`}`;
        return finish();
      }
      acks.push(ack);
    }
    socket.end();
    return finish();
  })();
}

if (require.main === module) {
  const request = JSON.parse(process.argv[2] ?? "{}") as MllpRequest;
  void mllpExchange(request).then((result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exitCode = result.error === undefined ? 0 : 1;
  });
}
