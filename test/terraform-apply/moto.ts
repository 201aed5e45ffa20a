/**
 * moto (the AWS API emulator, `python3 -m moto.server`) for the apply suite, the agent bed and the
 * notification tests: a server per caller, on a loopback port the kernel picks, started and stopped by the
 * test (by its pid, never by name).
 *
 * EMULATOR SETTING (not a code change): moto loads AWS managed policies only when asked
 * (MOTO_IAM_LOAD_MANAGED_POLICIES=true, {@link MOTO_ENVIRONMENT}); without them `AmazonSSMManagedInstanceCore`
 * does not exist and the role's attachment fails with NoSuchEntity, as it never would on AWS. The command
 * and setting are scripts/emulator-copy.ts's, which docs/try-with-an-emulator.md shows.
 */
import { ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { promisify } from "node:util";
import { MOTO_COMMAND, MOTO_ENVIRONMENT } from "../../scripts/emulator-copy";

const execFileAsync = promisify(execFile);

/** The Python that has moto and boto3: the first `python3` on PATH (the image's Python 3.11). */
export const MOTO_PYTHON = MOTO_COMMAND[0];

/** Fails loudly (never skips) when moto or boto3 is missing. */
export function requireMoto(): void {
  const probe = spawnSync(MOTO_PYTHON, ["-c", "import moto, boto3, flask; print(moto.__version__)"], { encoding: "utf8" });
  if (probe.status !== 0) {
    throw new Error(
      `moto is required for the apply suite and is not importable by '${MOTO_PYTHON}' (${(probe.stderr || probe.error?.message || "").trim().split("\n").pop()}): ` +
        "install it with `pip install 'moto[server]>=5.2,<6' boto3`; this suite fails rather than skips",
    );
  }
}

/** A free TCP port on 127.0.0.1 (bound and released; the server binds it right after). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** A running moto server. */
export interface Moto {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly port: number;
  /** Stops the server (SIGTERM to its pid, SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** The server's output so far (for failure messages). */
  log(): string;
  /**
   * For failure messages: what went wrong inside moto over the whole run (its 5xx answers with their times,
   * and every other line that is not a request's log line: tracebacks), kept whole however long the run,
   * then the tail of its log.
   */
  report(): string;
}

/**
 * Starts moto on a loopback port of its own and waits until it answers. moto binds port 0 and the port is
 * read from its "Running on" line: a port picked here, released and then bound by moto could be taken in
 * between (the apply suite starts several servers at once), and a second server failing on it would leave
 * its test talking to another test's moto. `env`: moto's own settings, e.g. INITIAL_NO_AUTH_ACTION_COUNT
 * (after that many requests moto checks every request's signature and IAM).
 */
export async function startMoto(env: Record<string, string> = {}): Promise<Moto> {
  requireMoto();
  const [python, ...args] = MOTO_COMMAND;
  const child: ChildProcess = spawn(python, [...args, "0"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...MOTO_ENVIRONMENT, ...env },
  });
  let output = "";
  let partialLine = "";
  const troubleLines: string[] = [];
  const keep = (chunk: Buffer) => {
    const text = chunk.toString();
    output = (output + text).slice(-20000);
    const lines = (partialLine + text).split("\n");
    partialLine = lines.pop() ?? "";
    for (const line of lines) {
      const request = REQUEST_LOG_LINE.exec(line);
      if ((request && request[1].startsWith("5")) || (!request && line.trim() !== "" && !STARTUP_LINE.test(line))) {
        if (troubleLines.length < 400) troubleLines.push(line);
      }
    }
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let stopping = false;
  const exited = new Promise<void>((done) =>
    child.once("exit", (code, signal) => {
      // An exit the test did not ask for is written into the log the failure messages quote.
      if (!stopping) output += `\n[moto exited unexpectedly: code ${String(code)}, signal ${String(signal)}, at ${new Date().toISOString()}]\n`;
      done();
    }),
  );
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    stopping = true;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 60_000;
  let port: number | undefined;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`moto exited (${String(child.exitCode ?? child.signalCode)}) before answering:\n${output}`);
    port ??= Number(RUNNING_ON.exec(output)?.[1]) || undefined;
    if (port !== undefined) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/moto-api/data.json`);
        if (response.ok) break;
      } catch {
        // bound, not answering yet
      }
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`moto did not answer within 60 s${port === undefined ? " (it printed no port)" : ` on port ${port}`}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop,
    log: () => output,
    report: () =>
      `moto, what went wrong:\n${troubleLines.length === 0 ? "(moto answered no request with a 5xx and printed no traceback)" : troubleLines.join("\n")}` +
      `\nmoto, the tail of its log:\n${output.slice(-1500)}`,
  };
}

/** werkzeug's line naming the bound address: ` * Running on http://127.0.0.1:44259`. */
const RUNNING_ON = /Running on http:\/\/127\.0\.0\.1:(\d+)/;
/** werkzeug's line for one request: `127.0.0.1 - - [date] "POST / HTTP/1.1" 200 -`; group 1 is the status. */
const REQUEST_LOG_LINE = /^\S+ - - \[[^\]]+\] "[^"]*" (\d{3}) /;
/** What moto prints once when it starts. */
const STARTUP_LINE = /Running on|Press CTRL\+C|WARNING: This is a development server|Serving Flask|Debug mode/;

/** Environment for AWS SDK/CLI clients talking to moto (static fake credentials, no real account). */
export function motoClientEnv(moto: Moto, region: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    AWS_SESSION_TOKEN: "testing",
    AWS_DEFAULT_REGION: region,
    AWS_REGION: region,
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: "/dev/null",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    AWS_PAGER: "",
  };
}

/**
 * Runs `script` (Python, boto3 against moto) with `input` as JSON on stdin and returns its stdout parsed as
 * JSON. Used to create what an environment adopts (VPC, subnets, route tables, Elastic IPs, KMS keys)
 * before the stack that adopts them is planned.
 */
export async function boto3(moto: Moto, region: string, script: string, input: unknown): Promise<unknown> {
  const child = execFileAsync(MOTO_PYTHON, ["-c", script], { env: motoClientEnv(moto, region), maxBuffer: 16 * 1024 * 1024 });
  child.child.stdin?.end(JSON.stringify(input));
  const { stdout } = await child;
  return JSON.parse(stdout);
}
