/**
 * SIMULATED EC2 instance metadata service (IMDSv2) for the bootstrap sandbox tests. It is NOT AWS: a
 * Node http server on 127.0.0.1 (random port) that serves only what the imaging-lb bootstrap reads,
 * with IMDSv2's token rule (PUT /latest/api/token with a TTL header first; every GET must carry the
 * token, or gets 401). ENIs can be attached later to simulate EC2 hot-plugging eth1 after boot.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One simulated ENI. */
export interface FakeEni {
  readonly mac: string;
  /** IMDS `device-number` (the attachment's device index). */
  readonly deviceNumber: number;
  /** `local-ipv4s`, primary first. */
  readonly localIpv4s: readonly string[];
  /** `subnet-ipv4-cidr-block`. */
  readonly subnetCidr: string;
  /** `interface-id` (the ENI id, e.g. of a moto ENI). @default not served */
  readonly interfaceId?: string;
  /**
   * Listed from the start; `false` until {@link FakeImds.attach} (hot-plug).
   * @default true
   */
  readonly attached?: boolean;
  /**
   * Hot-plug deterministically: the ENI is attached right after the `macs/` listing has been served this
   * many times without it (so the client has seen it missing).
   * @default never (only {@link FakeImds.attach})
   */
  readonly attachAfterListings?: number;
}

/** Options of {@link startFakeImds}. */
export interface FakeImdsOptions {
  /** Listen on this Unix socket instead of 127.0.0.1 (the boot tests relay 169.254.169.254:80 to it). */
  readonly socketPath?: string;
  /**
   * Serve SIMULATED instance-role credentials under `iam/security-credentials/` (for the AWS CLI against
   * moto, which accepts any key).
   */
  readonly roleName?: string;
  /** Listen on this 127.0.0.1 port (e.g. one that refused connections until now). @default a random port */
  readonly port?: number;
  /** SIMULATED fault: the first N connections are reset (TCP RST) before any answer. @default 0 */
  readonly resetFirstConnections?: number;
  /**
   * Instance tags served under `tags/instance/` (EC2 serves them when the instance's metadata options allow
   * instance metadata tags). Changeable while running (`tags` of the returned object).
   * @default none (404, as with instance metadata tags disabled)
   */
  readonly tags?: Record<string, string>;
}

/** A running SIMULATED IMDSv2. */
export interface FakeImds {
  /** Base URL for `IMAGING_LB_IMDS_URL`, e.g. `http://127.0.0.1:41234` (`unix:<path>` with `socketPath`). */
  readonly url: string;
  /** Every request, in order. */
  readonly requests: ReadonlyArray<{ readonly method: string; readonly path: string; readonly status: number }>;
  /** GETs refused because they carried no valid token. */
  unauthorized(): number;
  /** Simulates EC2 attaching the ENI with this MAC (it appears in `macs/`). */
  attach(mac: string): void;
  /** The instance tags served (mutable: a tag changed in place). */
  readonly tags: Record<string, string>;
  close(): Promise<void>;
}

/** Starts a SIMULATED IMDSv2 on 127.0.0.1 with a random port. */
export async function startFakeImds(enis: readonly FakeEni[], options: FakeImdsOptions = {}): Promise<FakeImds> {
  const attached = new Set(enis.filter((e) => e.attached !== false).map((e) => e.mac));
  const tags: Record<string, string> = { ...(options.tags ?? {}) };
  const tokens = new Set<string>();
  let listings = 0;
  const requests: Array<{ method: string; path: string; status: number }> = [];

  const reply = (req: IncomingMessage, res: ServerResponse, status: number, body: string): void => {
    requests.push({ method: req.method ?? "", path: req.url ?? "", status });
    res.writeHead(status, { "content-type": "text/plain", "x-imaging-lb-test": "SIMULATED IMDSv2" });
    res.end(body);
  };

  const server = createServer((req, res) => {
    const path = req.url ?? "";
    if (path === "/latest/api/token") {
      const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
      if (req.method !== "PUT") return reply(req, res, 405, "token: PUT only\n");
      if (!(ttl >= 1 && ttl <= 21600)) return reply(req, res, 400, "token: TTL header 1-21600 required\n");
      const token = randomBytes(16).toString("hex");
      tokens.add(token);
      return reply(req, res, 200, token);
    }
    const token = req.headers["x-aws-ec2-metadata-token"];
    if (req.method !== "GET") return reply(req, res, 405, "GET only\n");
    if (typeof token !== "string" || !tokens.has(token)) return reply(req, res, 401, "");

    if (path === "/latest/meta-data/identity-credentials/ec2/info") {
      return reply(req, res, 200, JSON.stringify({ Code: "Success", LastUpdated: "2026-11-28T00:00:00Z", AccountId: "123456789012" }, null, 2));
    }
    const roleName = options.roleName;
    if (roleName !== undefined && path === "/latest/meta-data/iam/security-credentials/") return reply(req, res, 200, roleName);
    if (roleName !== undefined && path === `/latest/meta-data/iam/security-credentials/${roleName}`) {
      const now = new Date();
      return reply(req, res, 200, JSON.stringify({
        Code: "Success", Type: "AWS-HMAC", LastUpdated: now.toISOString(),
        AccessKeyId: "ASIASIMULATEDTEST", SecretAccessKey: "simulated-secret-key", Token: "simulated-session-token",
        Expiration: new Date(now.getTime() + 6 * 3600_000).toISOString(),
      }));
    }
    const tagPrefix = "/latest/meta-data/tags/instance";
    if (options.tags !== undefined && (path === tagPrefix || path === `${tagPrefix}/`)) return reply(req, res, 200, Object.keys(tags).join("\n"));
    if (options.tags !== undefined && path.startsWith(`${tagPrefix}/`)) {
      const value = tags[decodeURIComponent(path.slice(tagPrefix.length + 1))];
      return value === undefined ? reply(req, res, 404, "") : reply(req, res, 200, value);
    }
    const prefix = "/latest/meta-data/network/interfaces/macs/";
    if (!path.startsWith(prefix)) return reply(req, res, 404, "");
    const rest = path.slice(prefix.length);
    if (rest === "") {
      listings += 1;
      const listed = enis.filter((e) => attached.has(e.mac)).map((e) => `${e.mac}/`);
      reply(req, res, 200, listed.join("\n"));
      for (const e of enis) if (e.attachAfterListings === listings) attached.add(e.mac);
      return;
    }
    const [mac, field] = rest.split("/");
    const eni = enis.find((e) => e.mac === mac && attached.has(e.mac));
    if (eni === undefined) return reply(req, res, 404, "");
    switch (field) {
      case "device-number":
        return reply(req, res, 200, String(eni.deviceNumber));
      case "local-ipv4s":
        return reply(req, res, 200, eni.localIpv4s.join("\n"));
      case "subnet-ipv4-cidr-block":
        return reply(req, res, 200, eni.subnetCidr);
      case "mac":
        return reply(req, res, 200, eni.mac);
      case "interface-id":
        return eni.interfaceId === undefined ? reply(req, res, 404, "") : reply(req, res, 200, eni.interfaceId);
      default:
        return reply(req, res, 404, "");
    }
  });

  let resets = options.resetFirstConnections ?? 0;
  server.on("connection", (socket) => {
    if (resets > 0) {
      resets -= 1;
      socket.resetAndDestroy();
    }
  });
  let url: string;
  if (options.socketPath !== undefined) {
    const socketPath = options.socketPath;
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    url = `unix:${socketPath}`;
  } else {
    await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  return {
    url,
    requests,
    unauthorized: () => requests.filter((r) => r.status === 401).length,
    attach: (mac) => {
      attached.add(mac);
    },
    tags,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
