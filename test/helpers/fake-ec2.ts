/**
 * SIMULATED AWS services for tests: a simulated EC2 Query API endpoint and a simulated IMDSv2 service,
 * each a Node `http` server on 127.0.0.1 at a random port. Neither is AWS: they implement just enough of
 * the wire protocols for the real AWS CLI and curl to talk to them, and record every request so tests can
 * assert the exact API calls a script made.
 *
 * - EC2 Query API: form-encoded POST bodies (`Action=...&Version=...&...`) are parsed and recorded; the
 *   answer is a minimal `<{Action}Response>` XML document, or an EC2 error document when a failure is
 *   scripted. Signatures are not checked.
 * - IMDSv2: `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` issues a token; every
 *   `GET /latest/meta-data/...` must carry it in `X-aws-ec2-metadata-token`, or gets 401 (IMDSv1 refused).
 */
import { createServer, IncomingMessage, Server, ServerResponse } from "node:http";
import { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";

/** One recorded call to the simulated EC2 API. */
export interface RecordedEc2Call {
  /** The `Action` parameter, e.g. `AssignPrivateIpAddresses`. */
  readonly action: string;
  /** Every other form parameter except `Action` and `Version`, e.g. `{ NetworkInterfaceId: "eni-1" }`. */
  readonly params: Readonly<Record<string, string>>;
  /** The HTTP status the simulated API answered with. */
  readonly status: number;
}

/** A failure the simulated EC2 API answers with instead of success. */
export interface SimulatedEc2Failure {
  /** HTTP status, e.g. 503. */
  readonly status: number;
  /** EC2 error code, e.g. `Unavailable` or `UnauthorizedOperation`. */
  readonly code: string;
}

const EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/";

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** SIMULATED EC2 Query API endpoint (not AWS) that records calls and can fail on request. */
export class SimulatedEc2Api {
  /** Every call received, in order, failed ones included. */
  public readonly calls: RecordedEc2Call[] = [];
  private readonly scripted: SimulatedEc2Failure[] = [];

  private constructor(
    private readonly server: Server,
    /** Base URL, e.g. `http://127.0.0.1:41234`, for `--endpoint-url` / `AWS_ENDPOINT_URL_EC2`. */
    public readonly url: string,
  ) {}

  /** Starts a simulated EC2 API on 127.0.0.1 at a random port. */
  public static async start(): Promise<SimulatedEc2Api> {
    const server = createServer();
    const api = new SimulatedEc2Api(server, await listen(server));
    server.on("request", (req: IncomingMessage, res: ServerResponse) => void api.handle(req, res));
    return api;
  }

  /** The next `failures.length` calls fail with these answers, in order; later calls succeed. */
  public failNext(...failures: SimulatedEc2Failure[]): void {
    this.scripted.push(...failures);
  }

  /** Forgets recorded calls and scripted failures. */
  public reset(): void {
    this.calls.length = 0;
    this.scripted.length = 0;
  }

  /** Stops the server. */
  public async close(): Promise<void> {
    await close(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const form = new URLSearchParams(req.method === "POST" ? body : (req.url ?? "").replace(/^[^?]*\??/, ""));
    const action = form.get("Action") ?? "";
    const params: Record<string, string> = {};
    for (const [key, value] of form) {
      if (key !== "Action" && key !== "Version") {
        params[key] = value;
      }
    }
    const requestId = randomBytes(8).toString("hex");
    const failure = this.scripted.shift();
    if (failure !== undefined || action === "") {
      const { status, code } = failure ?? { status: 400, code: "MissingAction" };
      this.calls.push({ action, params, status });
      res.writeHead(status, { "Content-Type": "text/xml;charset=UTF-8" });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code>` +
          `<Message>simulated ${code} failure</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
      );
      return;
    }
    this.calls.push({ action, params, status: 200 });
    res.writeHead(200, { "Content-Type": "text/xml;charset=UTF-8" });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_XMLNS}">` +
        `<requestId>${requestId}</requestId>${successFields(action, params)}</${action}Response>`,
    );
  }
}

/** The action-specific part of a minimal successful answer. */
function successFields(action: string, params: Record<string, string>): string {
  switch (action) {
    case "AssignPrivateIpAddresses": {
      const items = Object.keys(params)
        .filter((key) => key.startsWith("PrivateIpAddress."))
        .map((key) => `<item><privateIpAddress>${params[key]}</privateIpAddress></item>`)
        .join("");
      return (
        `<networkInterfaceId>${params.NetworkInterfaceId ?? ""}</networkInterfaceId>` +
        `<assignedPrivateIpAddressesSet>${items}</assignedPrivateIpAddressesSet>`
      );
    }
    case "AssociateAddress":
      return `<return>true</return><associationId>eipassoc-0${randomBytes(8).toString("hex")}</associationId>`;
    default:
      return "<return>true</return>";
  }
}

/** One request the simulated IMDS received. */
export interface RecordedImdsRequest {
  /** HTTP method. */
  readonly method: string;
  /** Request path, e.g. `/latest/meta-data/network/interfaces/macs/`. */
  readonly path: string;
  /** The HTTP status answered (401 for a request without a valid token). */
  readonly status: number;
}

/** SIMULATED IMDSv2 service (not AWS): tokens required, serves the network-interface tree. */
export class SimulatedImds {
  /** Every request received, in order. */
  public readonly requests: RecordedImdsRequest[] = [];
  private readonly tokens = new Set<string>();

  private constructor(
    private readonly server: Server,
    /** Base URL, e.g. `http://127.0.0.1:41235`, for `IMAGING_LB_IMDS_URL`. */
    public readonly url: string,
    private readonly interfaces: Readonly<Record<string, string>>,
  ) {}

  /**
   * Starts a simulated IMDS on 127.0.0.1 at a random port.
   * @param interfaces MAC address (lower case) → ENI id, e.g. `{ "02:00:00:00:00:01": "eni-0123456789abcdef0" }`
   */
  public static async start(interfaces: Readonly<Record<string, string>>): Promise<SimulatedImds> {
    const server = createServer();
    const imds = new SimulatedImds(server, await listen(server), interfaces);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => void imds.handle(req, res));
    return imds;
  }

  /** Requests that were refused for lack of a valid token (IMDSv1-style). */
  public get unauthorized(): RecordedImdsRequest[] {
    return this.requests.filter((r) => r.status === 401);
  }

  /** Stops the server. */
  public async close(): Promise<void> {
    await close(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await readBody(req);
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const answer = (status: number, text: string): void => {
      this.requests.push({ method: req.method ?? "", path, status });
      res.writeHead(status, { "Content-Type": "text/plain" });
      res.end(text);
    };
    if (path === "/latest/api/token") {
      const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
      if (req.method !== "PUT") {
        answer(405, "token requests must use PUT");
      } else if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) {
        answer(400, "missing or invalid X-aws-ec2-metadata-token-ttl-seconds");
      } else {
        const token = randomBytes(24).toString("base64url");
        this.tokens.add(token);
        answer(200, token);
      }
      return;
    }
    const token = req.headers["x-aws-ec2-metadata-token"];
    if (typeof token !== "string" || !this.tokens.has(token)) {
      answer(401, "");
      return;
    }
    if (req.method !== "GET") {
      answer(405, "");
      return;
    }
    const macsPrefix = "/latest/meta-data/network/interfaces/macs/";
    if (path === macsPrefix) {
      answer(200, Object.keys(this.interfaces).map((mac) => `${mac}/`).join("\n"));
      return;
    }
    const match = path.startsWith(macsPrefix) ? /^([0-9a-f:]{17})\/interface-id$/.exec(path.slice(macsPrefix.length)) : null;
    const eni = match?.[1] === undefined ? undefined : this.interfaces[match[1]];
    if (eni !== undefined) {
      answer(200, eni);
      return;
    }
    answer(404, "");
  }
}
