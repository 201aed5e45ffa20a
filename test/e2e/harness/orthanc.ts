/**
 * A real Orthanc (DICOM + REST server, Debian package `orthanc`) in a topology host, with a generated
 * configuration and throwaway storage. Measured on the dev box (Orthanc 1.10.1): REST answers ~0.2 s after
 * start, ~32 MB RSS when idle, a graceful stop (SIGTERM) takes ~2.5 s. Several instances run side by side
 * (one per namespace, each on the standard ports).
 *
 * Every HTTP request's peer address is appended to `http-peers.log` by a Lua `IncomingHttpRequestFilter`,
 * and Orthanc records each stored instance's peer as the `RemoteIP` metadata: both let tests assert SNAT.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireTool } from "../../helpers/tools";
import type { NsProcess, Topology } from "./netns";
import { pollUntil } from "./wait";

/** Options of {@link startOrthanc}. */
export interface OrthancOptions {
  /** Topology host (namespace) to run in. */
  readonly host: string;
  /** Orthanc's `Name` (shown in `/system`). @default the host name */
  readonly name?: string;
  /** The DICOM AE title (`DicomAet`). @default "ORTHANC" */
  readonly aet?: string;
  /** @default 8042 */
  readonly httpPort?: number;
  /** @default 104 */
  readonly dicomPort?: number;
  /** Reject associations whose called AE title is not {@link aet} (`DicomCheckCalledAet`). @default false */
  readonly checkCalledAet?: boolean;
  /**
   * Accept C-ECHO/C-STORE only from these calling AE titles (any host). When unset, any calling AET is
   * accepted (`DicomAlwaysAllowEcho/Store`). @default undefined (accept all)
   */
  readonly acceptedCallingAets?: readonly string[];
  /** Require HTTP basic auth with this user. @default undefined (no authentication) */
  readonly user?: { readonly username: string; readonly password: string };
  /** Pass `--verbose` (association details in the log). @default false */
  readonly verbose?: boolean;
  /** How long to wait for the REST API after start. @default 15000 */
  readonly startTimeoutMs?: number;
}

/** `GET /statistics`. */
export interface OrthancStatistics {
  readonly CountInstances: number;
  readonly CountPatients: number;
  readonly CountSeries: number;
  readonly CountStudies: number;
  readonly TotalDiskSizeMB: number;
}

/** One stored instance with the metadata Orthanc recorded when it was received. */
export interface StoredInstance {
  /** Orthanc's id. */
  readonly id: string;
  readonly sopInstanceUid: string;
  /** Peer address of the association that stored it (the LB's address behind a SNAT proxy). */
  readonly remoteIp: string | undefined;
  readonly remoteAet: string | undefined;
  readonly calledAet: string | undefined;
}

/** A configured Orthanc; start it with {@link start} (or use {@link startOrthanc}). */
export class OrthancServer {
  readonly host: string;
  readonly aet: string;
  readonly httpPort: number;
  readonly dicomPort: number;
  /** Directory with the config, storage, index and logs of this instance. */
  readonly dir: string;
  readonly configFile: string;
  /** Where the Lua filter appends `METHOD URI PEER` per HTTP request. */
  readonly httpPeersFile: string;
  /** Where the Lua filter appends one JSON object per HTTP request: method, uri, peer, headers. */
  readonly httpRequestsFile: string;
  private process: NsProcess | undefined;
  private starts = 0;

  constructor(
    private readonly topology: Topology,
    private readonly options: OrthancOptions,
  ) {
    this.host = options.host;
    this.aet = options.aet ?? "ORTHANC";
    this.httpPort = options.httpPort ?? 8042;
    this.dicomPort = options.dicomPort ?? 104;
    this.dir = join(topology.workDir, `orthanc-${options.host}-${this.httpPort}`);
    this.configFile = join(this.dir, "orthanc.json");
    this.httpPeersFile = join(this.dir, "http-peers.log");
    this.httpRequestsFile = join(this.dir, "http-requests.jsonl");
    mkdirSync(join(this.dir, "storage"), { recursive: true });
    writeFileSync(join(this.dir, "http-peers.lua"), luaPeerLogger(this.httpPeersFile, this.httpRequestsFile));
    writeFileSync(this.configFile, `${JSON.stringify(this.config(), null, 2)}\n`);
  }

  /** The generated configuration (written to {@link configFile}). */
  config(): Record<string, unknown> {
    const accepted = this.options.acceptedCallingAets;
    const modalities: Record<string, unknown> = {};
    for (const aet of accepted ?? []) {
      modalities[aet.toLowerCase()] = { AET: aet, Host: "127.0.0.1", Port: 104, AllowEcho: true, AllowStore: true };
    }
    const user = this.options.user;
    return {
      Name: this.options.name ?? this.options.host,
      StorageDirectory: join(this.dir, "storage"),
      IndexDirectory: join(this.dir, "storage"),
      StorageCompression: false,
      HttpServerEnabled: true,
      HttpPort: this.httpPort,
      RemoteAccessAllowed: true,
      // Explicit: when unset and RemoteAccessAllowed is true, Orthanc turns authentication on by itself.
      AuthenticationEnabled: user !== undefined,
      RegisteredUsers: user ? { [user.username]: user.password } : {},
      DicomServerEnabled: true,
      DicomAet: this.aet,
      DicomPort: this.dicomPort,
      DicomCheckCalledAet: this.options.checkCalledAet ?? false,
      DicomAlwaysAllowEcho: accepted === undefined,
      DicomAlwaysAllowStore: accepted === undefined,
      DicomCheckModalityHost: false,
      DicomModalities: modalities,
      UnknownSopClassAccepted: false,
      Plugins: [],
      LuaScripts: [join(this.dir, "http-peers.lua")],
      SaveJobs: false,
      StableAge: 1,
      OrthancExplorerEnabled: false,
      WebDavEnabled: false,
      HttpCompressionEnabled: false,
      // Close idle associations quickly instead of holding them for DICOM's default of minutes.
      DicomScpTimeout: 30,
      ConcurrentJobs: 1,
      HttpThreadsCount: 10,
      DicomThreadsCount: 4,
    };
  }

  /** The running process (throws before {@link start}). */
  get proc(): NsProcess {
    if (!this.process) throw new Error(`Orthanc on ${this.host} was never started`);
    return this.process;
  }

  /** Starts Orthanc and waits until `GET /system` answers 200. Returns the wait in milliseconds. */
  async start(): Promise<number> {
    if (this.process?.running) throw new Error(`Orthanc on ${this.host} is already running (pid ${this.process.pid})`);
    const orthanc = requireTool("Orthanc", "orthanc");
    this.starts += 1;
    const args = [...(this.options.verbose ? ["--verbose"] : []), this.configFile];
    const started = Date.now();
    const proc = this.topology.spawn(this.host, orthanc, args, { logFile: join(this.dir, `orthanc-${this.starts}.log`), cwd: this.dir });
    this.process = proc;
    await pollUntil(
      `Orthanc REST on ${this.host}:${this.httpPort}`,
      async () => {
        proc.assertRunning();
        return (await this.rest("/system")).status === 200;
      },
      { timeoutMs: this.options.startTimeoutMs ?? 15_000, intervalMs: 50 },
    );
    return Date.now() - started;
  }

  /** Graceful stop (SIGTERM; SIGKILL after `graceMs`). */
  async stop(graceMs = 10_000): Promise<void> {
    await this.process?.stop(graceMs);
  }

  /** Immediate SIGKILL (a crashed server). */
  async kill(): Promise<void> {
    await this.process?.kill();
  }

  /** Stops (gracefully) and starts again with the same configuration and storage. */
  async restart(): Promise<number> {
    await this.stop();
    return this.start();
  }

  /** A REST call from inside the server's namespace (127.0.0.1). */
  async rest(path: string, options: { method?: string; body?: string } = {}): Promise<{ status: number; body: string }> {
    const user = this.options.user;
    const headers = user ? [`Authorization: Basic ${Buffer.from(`${user.username}:${user.password}`).toString("base64")}`] : [];
    return this.topology.http(this.host, `http://127.0.0.1:${this.httpPort}${path}`, { ...options, headers, timeoutMs: 10_000 });
  }

  /** A REST call that must answer 2xx; returns the parsed JSON body. */
  async restJson<T>(path: string, options: { method?: string; body?: string } = {}): Promise<T> {
    const response = await this.rest(path, options);
    if (response.status < 200 || response.status > 299) {
      throw new Error(`Orthanc ${this.host} ${options.method ?? "GET"} ${path}: HTTP ${response.status}: ${response.body.slice(0, 500)}`);
    }
    return JSON.parse(response.body) as T;
  }

  /** Number of stored instances (`GET /instances`). */
  async countInstances(): Promise<number> {
    return (await this.restJson<string[]>("/instances")).length;
  }

  /** `GET /statistics`. */
  async statistics(): Promise<OrthancStatistics> {
    return this.restJson<OrthancStatistics>("/statistics");
  }

  /** Every stored instance with its SOP Instance UID and reception metadata (RemoteIP, RemoteAET, CalledAET). */
  async storedInstances(): Promise<StoredInstance[]> {
    const found = await this.restJson<{ ID: string; MainDicomTags: { SOPInstanceUID?: string } }[]>("/tools/find", {
      method: "POST",
      body: JSON.stringify({ Level: "Instance", Query: {}, Expand: true }),
    });
    const result: StoredInstance[] = [];
    for (const instance of found) {
      const metadata = await this.restJson<Record<string, string>>(`/instances/${instance.ID}/metadata?expand`);
      result.push({
        id: instance.ID,
        sopInstanceUid: instance.MainDicomTags.SOPInstanceUID ?? "",
        remoteIp: metadata.RemoteIP,
        remoteAet: metadata.RemoteAET,
        calledAet: metadata.CalledAET,
      });
    }
    return result;
  }

  /** Deletes every stored instance (`DELETE /patients/<id>`), to reuse a server between tests. */
  async clear(): Promise<void> {
    for (const id of await this.restJson<string[]>("/patients")) await this.restJson(`/patients/${id}`, { method: "DELETE" });
  }

  /** Peer addresses of the HTTP requests Orthanc has served, in order (from the Lua filter). */
  httpPeers(): { method: string; uri: string; peer: string }[] {
    let text = "";
    try {
      text = readFileSync(this.httpPeersFile, "utf8");
    } catch {
      return [];
    }
    return text
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => {
        const [method = "", uri = "", peer = ""] = line.split(" ");
        return { method, uri, peer };
      });
  }

  /**
   * The HTTP requests Orthanc has served, in order, with the request headers as Orthanc saw them (names
   * lower-case), e.g. to assert `x-forwarded-for` behind the load balancer.
   */
  httpRequests(): OrthancHttpRequest[] {
    let text = "";
    try {
      text = readFileSync(this.httpRequestsFile, "utf8");
    } catch {
      return [];
    }
    return text
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as OrthancHttpRequest);
  }

  /** Resident memory of the Orthanc process in kB (VmRSS), or undefined when not running. */
  memoryKb(): number | undefined {
    if (!this.process?.running) return undefined;
    const status = readFileSync(`/proc/${this.process.pid}/status`, "utf8");
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return match ? Number(match[1]) : undefined;
  }
}

/** One HTTP request as Orthanc's Lua filter saw it (see {@link OrthancServer.httpRequests}). */
export interface OrthancHttpRequest {
  readonly method: string;
  readonly uri: string;
  /** The TCP peer (the LB's address behind a SNAT proxy). */
  readonly peer: string;
  /** Request headers, names lower-case. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * The Lua script that logs `METHOD URI PEER` (and a JSON line with the headers) for every HTTP request
 * and lets it through.
 */
function luaPeerLogger(file: string, jsonFile: string): string {
  return [
    "-- Generated by the imaging-lb e2e harness: record the peer address and headers of every HTTP request.",
    "function IncomingHttpRequestFilter(method, uri, ip, username, headers)",
    `  local f = io.open(${JSON.stringify(file)}, "a")`,
    "  if f then",
    '    f:write(method .. " " .. uri .. " " .. ip .. "\\n")',
    "    f:close()",
    "  end",
    `  local j = io.open(${JSON.stringify(jsonFile)}, "a")`,
    "  if j then",
    "    j:write(DumpJson({ method = method, uri = uri, peer = ip, headers = headers }, true) .. \"\\n\")",
    "    j:close()",
    "  end",
    "  return true",
    "end",
    "",
  ].join("\n");
}

/**
 * Configures and starts an Orthanc in `options.host`, resolving once its REST API answers.
 *
 * @example
 * const pacs = await startOrthanc(topo, { host: "srv1", aet: "PACS1" });
 * assert.equal(await pacs.countInstances(), 0);
 */
export async function startOrthanc(topology: Topology, options: OrthancOptions): Promise<OrthancServer> {
  const server = new OrthancServer(topology, options);
  await server.start();
  return server;
}
