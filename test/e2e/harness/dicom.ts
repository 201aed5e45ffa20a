/**
 * DICOM test data and clients: a small DICOM Part 10 writer (Secondary Capture, 8-bit monochrome,
 * Explicit VR Little Endian) that makes instances of a chosen size with unique UIDs, and wrappers for
 * DCMTK's `echoscu` / `storescu` run inside a topology host.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { requireTool } from "../../helpers/tools";
import type { Topology } from "./netns";

/** Secondary Capture Image Storage. */
export const SECONDARY_CAPTURE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7";
const EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1";
/** UUID-derived UID root (2.25) for our implementation class UID; fixed so files are reproducible. */
const IMPLEMENTATION_CLASS_UID = "2.25.329800735698586629295641978511506172918";
const IMPLEMENTATION_VERSION = "IMAGING_LB_1";
/** Largest pixel payload the writer supports: 65534 rows × 8192 columns of 8-bit pixels. */
const MAX_PIXEL_BYTES = 65534 * 8192;

/** A new globally unique UID: `2.25.<128-bit random UUID as decimal>` (PS3.5 B.2). */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, "")}`).toString()}`;
}

type Vr = "AE" | "CS" | "DA" | "IS" | "LO" | "OB" | "PN" | "SH" | "TM" | "UI" | "UL" | "US";
const LONG_VRS = new Set<Vr>(["OB"]);

/** One Explicit VR Little Endian element header (+ value when given). */
function element(group: number, elementNo: number, vr: Vr, value: Buffer, declaredLength = value.length): Buffer {
  const long = LONG_VRS.has(vr);
  const header = Buffer.alloc(long ? 12 : 8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(elementNo, 2);
  header.write(vr, 4, "latin1");
  if (long) header.writeUInt32LE(declaredLength, 8);
  else header.writeUInt16LE(declaredLength, 6);
  return Buffer.concat([header, value]);
}

/** A text value padded to even length (UI with NUL, others with space). */
function text(vr: Vr, value: string): Buffer {
  const padded = value.length % 2 === 0 ? value : value + (vr === "UI" ? "\0" : " ");
  return Buffer.from(padded, "latin1");
}

function str(group: number, elementNo: number, vr: Vr, value: string): Buffer {
  return element(group, elementNo, vr, text(vr, value));
}

function us(group: number, elementNo: number, value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeUInt16LE(value, 0);
  return element(group, elementNo, "US", buffer);
}

/** Options of {@link generateDicomInstances}. */
export interface GenerateOptions {
  /** Output directory (created). */
  readonly dir: string;
  /** Number of instances. */
  readonly count: number;
  /**
   * Approximate file size in bytes (pixel data makes up the difference; at least 64×64 pixels; at most
   * 512 MiB). Use e.g. `50 * 1024 * 1024` for throughput benchmarks. @default 16384
   */
  readonly sizeBytes?: number;
  /** @default "ILB-TEST" */
  readonly patientId?: string;
  /** @default "TEST^IMAGING-LB" */
  readonly patientName?: string;
  /** All instances go into one series of one study. @default new UIDs */
  readonly studyInstanceUid?: string;
  readonly seriesInstanceUid?: string;
  /** File name prefix. @default "inst" */
  readonly prefix?: string;
}

/** A generated file. */
export interface GeneratedInstance {
  readonly path: string;
  readonly sopInstanceUid: string;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sizeBytes: number;
}

/** The pixel grid for a payload of about `pixels` bytes: even column count, rows ≤ 65534. */
function pixelGrid(pixels: number): { rows: number; columns: number } {
  const columns = pixels <= 1024 * 1024 ? 256 : 8192;
  return { rows: Math.max(64, Math.ceil(pixels / columns)), columns };
}

/**
 * Writes `count` valid DICOM Part 10 files (Secondary Capture, unique SOP Instance UIDs, one series) of
 * about `sizeBytes` each. Pixel content is pseudo-random (shared by all files of one call), so transfers
 * cannot be compressed away.
 *
 * @example
 * const files = generateDicomInstances({ dir: join(topo.workDir, "dicom"), count: 10 });
 */
export function generateDicomInstances(options: GenerateOptions): GeneratedInstance[] {
  const sizeBytes = options.sizeBytes ?? 16_384;
  if (!Number.isInteger(options.count) || options.count < 1) throw new Error(`count: expected an integer ≥ 1, got ${options.count}`);
  if (!Number.isFinite(sizeBytes) || sizeBytes > MAX_PIXEL_BYTES) {
    throw new Error(`sizeBytes: expected at most ${MAX_PIXEL_BYTES} (512 MiB), got ${sizeBytes}`);
  }
  mkdirSync(options.dir, { recursive: true });
  const study = options.studyInstanceUid ?? newUid();
  const series = options.seriesInstanceUid ?? newUid();
  const { rows, columns } = pixelGrid(Math.max(0, sizeBytes - 1024));
  const pixelBytes = rows * columns;
  // One chunk of random bytes repeated: cheap for 50 MB files, still incompressible enough for a link.
  const chunk = randomBytes(Math.min(pixelBytes, 1024 * 1024));
  const now = new Date();
  const date = now.toISOString().slice(0, 10).replace(/-/g, "");
  const time = now.toISOString().slice(11, 19).replace(/:/g, "");
  const result: GeneratedInstance[] = [];

  for (let i = 0; i < options.count; i += 1) {
    const sop = newUid();
    const meta = Buffer.concat([
      element(0x0002, 0x0001, "OB", Buffer.from([0x00, 0x01])),
      str(0x0002, 0x0002, "UI", SECONDARY_CAPTURE_SOP_CLASS),
      str(0x0002, 0x0003, "UI", sop),
      str(0x0002, 0x0010, "UI", EXPLICIT_VR_LITTLE_ENDIAN),
      str(0x0002, 0x0012, "UI", IMPLEMENTATION_CLASS_UID),
      str(0x0002, 0x0013, "SH", IMPLEMENTATION_VERSION),
    ]);
    const groupLength = Buffer.alloc(4);
    groupLength.writeUInt32LE(meta.length, 0);
    const dataset = Buffer.concat([
      str(0x0008, 0x0008, "CS", "DERIVED\\SECONDARY"),
      str(0x0008, 0x0016, "UI", SECONDARY_CAPTURE_SOP_CLASS),
      str(0x0008, 0x0018, "UI", sop),
      str(0x0008, 0x0020, "DA", date),
      str(0x0008, 0x0030, "TM", time),
      str(0x0008, 0x0050, "SH", `ILB${String(i + 1).padStart(6, "0")}`),
      str(0x0008, 0x0060, "CS", "OT"),
      str(0x0008, 0x0064, "CS", "WSD"),
      str(0x0008, 0x0090, "PN", ""),
      str(0x0010, 0x0010, "PN", options.patientName ?? "TEST^IMAGING-LB"),
      str(0x0010, 0x0020, "LO", options.patientId ?? "ILB-TEST"),
      str(0x0010, 0x0030, "DA", ""),
      str(0x0010, 0x0040, "CS", "O"),
      str(0x0020, 0x000d, "UI", study),
      str(0x0020, 0x000e, "UI", series),
      str(0x0020, 0x0010, "SH", "1"),
      str(0x0020, 0x0011, "IS", "1"),
      str(0x0020, 0x0013, "IS", String(i + 1)),
      str(0x0020, 0x0020, "CS", ""),
      us(0x0028, 0x0002, 1),
      str(0x0028, 0x0004, "CS", "MONOCHROME2"),
      us(0x0028, 0x0010, rows),
      us(0x0028, 0x0011, columns),
      us(0x0028, 0x0100, 8),
      us(0x0028, 0x0101, 8),
      us(0x0028, 0x0102, 7),
      us(0x0028, 0x0103, 0),
      element(0x7fe0, 0x0010, "OB", Buffer.alloc(0), pixelBytes),
    ]);
    const path = join(options.dir, `${options.prefix ?? "inst"}-${String(i + 1).padStart(5, "0")}.dcm`);
    const fd = openSync(path, "w");
    try {
      writeSync(fd, Buffer.concat([Buffer.alloc(128), Buffer.from("DICM", "latin1"), element(0x0002, 0x0000, "UL", groupLength), meta, dataset]));
      for (let written = 0; written < pixelBytes; written += chunk.length) {
        writeSync(fd, chunk, 0, Math.min(chunk.length, pixelBytes - written));
      }
    } finally {
      closeSync(fd);
    }
    const headerBytes = 132 + 12 + meta.length + dataset.length;
    result.push({ path, sopInstanceUid: sop, studyInstanceUid: study, seriesInstanceUid: series, sizeBytes: headerBytes + pixelBytes });
  }
  return result;
}

/** Where and as whom a DICOM client connects. */
export interface DicomPeer {
  /** Address (a VIP, or a server address). */
  readonly address: string;
  /** @default 104 */
  readonly port?: number;
  /** Called AE title. @default "ORTHANC" */
  readonly calledAet?: string;
  /** Calling AE title. @default "ILBTEST" */
  readonly callingAet?: string;
  /** Overall limit for the command. @default 30000 */
  readonly timeoutMs?: number;
}

/** The outcome of a DCMTK client run. */
export interface DicomToolResult {
  /** Exit code (0 = success), `null` if killed. */
  readonly code: number | null;
  /** stdout + stderr. */
  readonly output: string;
  readonly durationMs: number;
  readonly timedOut: boolean;
}

/** DCMTK's network timeouts (`-to` connect, `-ta` ACSE, `-td` DIMSE), in seconds, derived from the overall limit. */
function dcmtkArgs(peer: DicomPeer): string[] {
  const seconds = String(Math.max(1, Math.floor((peer.timeoutMs ?? 30_000) / 1000)));
  return ["-aet", peer.callingAet ?? "ILBTEST", "-aec", peer.calledAet ?? "ORTHANC", "-to", seconds, "-ta", seconds, "-td", seconds];
}

/**
 * C-ECHO with DCMTK `echoscu` from `host`'s namespace.
 *
 * @example
 * const echo = await echoscu(topo, "client1", { address: "203.0.113.100" });
 * assert.equal(echo.code, 0, echo.output);
 */
export async function echoscu(topology: Topology, host: string, peer: DicomPeer): Promise<DicomToolResult> {
  const tool = requireTool("echoscu", "dcmtk");
  const run = await topology.exec(host, tool, [...dcmtkArgs(peer), peer.address, String(peer.port ?? 104)], {
    timeoutMs: (peer.timeoutMs ?? 30_000) + 2000,
  });
  return { code: run.code, output: run.stdout + run.stderr, durationMs: run.durationMs, timedOut: run.timedOut };
}

/**
 * C-STORE of `files` in one association with DCMTK `storescu` from `host`'s namespace. Exit code 0 means
 * every file was stored with a success status.
 *
 * @example
 * const store = await storescu(topo, "client1", { address: vip, timeoutMs: 60_000 }, files.map((f) => f.path));
 */
export async function storescu(topology: Topology, host: string, peer: DicomPeer, files: readonly string[]): Promise<DicomToolResult> {
  const tool = requireTool("storescu", "dcmtk");
  if (files.length === 0) throw new Error("storescu: no files given");
  const run = await topology.exec(host, tool, [...dcmtkArgs(peer), peer.address, String(peer.port ?? 104), ...files], {
    timeoutMs: (peer.timeoutMs ?? 30_000) + 2000,
  });
  return { code: run.code, output: run.stdout + run.stderr, durationMs: run.durationMs, timedOut: run.timedOut };
}
