/**
 * DICOM application health check for HAProxy, without forking an external checker.
 *
 * HAProxy's `tcp-check` sends the DICOM Upper Layer PDUs byte by byte (`send-binary`) and matches the
 * server's answers (`expect rbinary`, a regular expression over the hex dump of the receive buffer). The
 * PDUs are built here from PS3.8 (Upper Layer) and PS3.7 (DIMSE) so that every byte can be unit tested.
 *
 * Two variants:
 * - `"c-echo"`: A-ASSOCIATE-RQ → A-ASSOCIATE-AC → C-ECHO-RQ → C-ECHO-RSP with Status 0000 → A-RELEASE-RQ →
 *   A-RELEASE-RP. Proves that the DICOM application accepts this load balancer and answers a DIMSE request.
 * - `"associate"`: A-ASSOCIATE-RQ → A-ASSOCIATE-AC or -RJ → A-ABORT. Only proves that a DICOM application
 *   answers on the port: no DIMSE request, and a server that rejects these AE titles still passes.
 *
 * Pure functions: nothing here imports cdktf or constructs.
 */
import { AE_TITLE_LENGTH, aeTitleProblem } from "../config/dicom-ae-title";

/** Which DICOM exchange the health check performs. */
export type DicomCheckVariant = "c-echo" | "associate";

/** Options of {@link dicomTcpCheckDirectives}. */
export interface DicomCheckOptions {
  /** Called AE title: the PACS server's AE title. 1-16 chars, DICOM AE VR rules. */
  readonly calledAeTitle: string;
  /**
   * Calling AE title the LB uses so the PACS can recognise checks.
   * @default "LBHEALTH"
   */
  readonly callingAeTitle?: string;
  /**
   * "c-echo": associate, C-ECHO, expect status 0000, release. "associate": accept AC or RJ, then A-ABORT.
   * @default "c-echo"
   */
  readonly variant?: DicomCheckVariant;
  /**
   * Check each of these ports in turn, one association each (a server is UP only when all pass).
   * @default [] — one association on the server line's check port
   */
  readonly ports?: readonly number[];
}

/** DICOM Application Context Name (PS3.7 Annex A.2.1). */
export const DICOM_APPLICATION_CONTEXT_UID = "1.2.840.10008.3.1.1.1";
/** Verification SOP Class, the abstract syntax of C-ECHO (PS3.4 Annex A). */
export const VERIFICATION_SOP_CLASS_UID = "1.2.840.10008.1.1";
/** Implicit VR Little Endian, the default DICOM transfer syntax (PS3.5 Section 10.1). */
export const IMPLICIT_VR_LITTLE_ENDIAN_UID = "1.2.840.10008.1.2";
/**
 * Implementation Class UID sent in the A-ASSOCIATE-RQ user information: a fixed UID under the
 * UUID-derived root 2.25 (PS3.5 Annex B.2), generated once for imaging-lb.
 */
export const IMPLEMENTATION_CLASS_UID = "2.25.150200836763930426505202112329105585345";
/** Implementation Version Name sent in the A-ASSOCIATE-RQ user information (1-16 characters). */
export const IMPLEMENTATION_VERSION_NAME = "IMAGING-LB-0.1";
/** Maximum PDU length this check announces it can receive. */
export const MAX_PDU_LENGTH = 16384;
/** Presentation context id of the only presentation context proposed (odd, 1-255). */
export const PRESENTATION_CONTEXT_ID = 1;
/** Calling AE title used when none is given. */
export const DEFAULT_CALLING_AE_TITLE = "LBHEALTH";
/** Message ID of the C-ECHO-RQ sent by the health check. */
export const C_ECHO_MESSAGE_ID = 1;

/** A-RELEASE-RQ PDU (type 0x05, length 4, 4 reserved bytes), PS3.8 Section 9.3.6. */
export const RELEASE_REQUEST_PDU: Buffer = Buffer.from("05000000000400000000", "hex");
/** A-ABORT PDU (type 0x07) with source 0 (DICOM UL service-user) and reason 0, PS3.8 Section 9.3.8. */
export const ABORT_PDU: Buffer = Buffer.from("07000000000400000000", "hex");

function assertAeTitle(role: string, title: string): void {
  const problem = aeTitleProblem(title);
  if (problem !== undefined) {
    throw new Error(
      `DICOM health check ${role} AE title: expected ${problem}, got ${JSON.stringify(title)}; ` +
        `use the AE title configured on the PACS`,
    );
  }
}

function uint16be(value: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value);
  return out;
}

function uint32be(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

/** A PDU: type, reserved byte, 4-byte big-endian length of the body, body (PS3.8 Section 9.3.1). */
function pdu(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, 0x00]), uint32be(body.length), body]);
}

/** An A-ASSOCIATE item or sub-item: type, reserved byte, 2-byte big-endian length, value. */
function item(type: number, value: Buffer): Buffer {
  if (value.length > 0xffff) throw new Error(`item 0x${type.toString(16)} too long: ${value.length} bytes`);
  return Buffer.concat([Buffer.from([type, 0x00]), uint16be(value.length), value]);
}

/** An AE title field of the A-ASSOCIATE-RQ: 16 bytes, padded with spaces. */
function aeTitleField(title: string): Buffer {
  return Buffer.from(title.padEnd(AE_TITLE_LENGTH, " "), "ascii");
}

/**
 * Builds the A-ASSOCIATE-RQ PDU (PS3.8 Section 9.3.2): protocol version 1, the AE titles padded to 16
 * bytes, the DICOM application context, one presentation context (id 1: Verification SOP Class with
 * Implicit VR Little Endian) and user information (maximum PDU length 16384, implementation class UID
 * and version name). UIDs in A-ASSOCIATE items are not padded (PS3.8 Annex F).
 *
 * @throws Error when an AE title breaks the DICOM AE rules (see {@link aeTitleProblem}).
 */
export function associateRequestPdu(calledAeTitle: string, callingAeTitle: string): Buffer {
  assertAeTitle("called", calledAeTitle);
  assertAeTitle("calling", callingAeTitle);
  const fixedFields = Buffer.concat([
    uint16be(0x0001), // protocol version
    Buffer.alloc(2), // reserved
    aeTitleField(calledAeTitle),
    aeTitleField(callingAeTitle),
    Buffer.alloc(32), // reserved
  ]);
  const applicationContext = item(0x10, Buffer.from(DICOM_APPLICATION_CONTEXT_UID, "ascii"));
  const presentationContext = item(
    0x20,
    Buffer.concat([
      Buffer.from([PRESENTATION_CONTEXT_ID, 0x00, 0x00, 0x00]), // id, 3 reserved bytes
      item(0x30, Buffer.from(VERIFICATION_SOP_CLASS_UID, "ascii")),
      item(0x40, Buffer.from(IMPLICIT_VR_LITTLE_ENDIAN_UID, "ascii")),
    ]),
  );
  const userInformation = item(
    0x50,
    Buffer.concat([
      item(0x51, uint32be(MAX_PDU_LENGTH)),
      item(0x52, Buffer.from(IMPLEMENTATION_CLASS_UID, "ascii")),
      item(0x55, Buffer.from(IMPLEMENTATION_VERSION_NAME, "ascii")),
    ]),
  );
  return pdu(0x01, Buffer.concat([fixedFields, applicationContext, presentationContext, userInformation]));
}

/** A data element in Implicit VR Little Endian: group, element, 4-byte length, value (PS3.5 7.1.3). */
function implicitElement(group: number, element: number, value: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(element, 2);
  header.writeUInt32LE(value.length, 4);
  return Buffer.concat([header, value]);
}

function uint16le(value: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16LE(value);
  return out;
}

/** A UID value padded with one NUL to an even length (PS3.5 Section 9.1). */
function uidValue(uid: string): Buffer {
  const bytes = Buffer.from(uid, "ascii");
  return bytes.length % 2 === 0 ? bytes : Buffer.concat([bytes, Buffer.from([0x00])]);
}

/**
 * Builds the P-DATA-TF PDU (PS3.8 Section 9.3.5) carrying a C-ECHO-RQ command set (PS3.7 Section
 * 9.3.5) in Implicit VR Little Endian on presentation context 1: (0000,0000) command group length,
 * (0000,0002) Affected SOP Class UID = Verification, (0000,0100) Command Field = 0x0030,
 * (0000,0110) Message ID, (0000,0800) Command Data Set Type = 0x0101 (no data set). One PDV whose
 * message control header is 0x03 (command, last fragment).
 *
 * @param messageId 0-65535 (an unsigned short).
 */
export function cEchoRequestPdu(messageId: number): Buffer {
  if (!Number.isInteger(messageId) || messageId < 0 || messageId > 0xffff) {
    throw new Error(`C-ECHO-RQ message id: expected an integer from 0 to 65535, got ${messageId}`);
  }
  const elements = Buffer.concat([
    implicitElement(0x0000, 0x0002, uidValue(VERIFICATION_SOP_CLASS_UID)),
    implicitElement(0x0000, 0x0100, uint16le(0x0030)),
    implicitElement(0x0000, 0x0110, uint16le(messageId)),
    implicitElement(0x0000, 0x0800, uint16le(0x0101)),
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(elements.length);
  const command = Buffer.concat([implicitElement(0x0000, 0x0000, groupLength), elements]);
  const pdv = Buffer.concat([
    uint32be(command.length + 2), // PDV item length: context id + message control header + fragment
    Buffer.from([PRESENTATION_CONTEXT_ID, 0x03]),
    command,
  ]);
  return pdu(0x04, pdv);
}

// ---------------------------------------------------------------------------------------------------
// How HAProxy 2.6 runs these rules (src/tcpcheck.c), and what the patterns below are built for:
// - `expect rbinary` runs the regex over the UPPER-case hex dump of the whole receive buffer, so each
//   pattern is anchored with `^` and skips whole bytes only (`(..)*`): unanchored, a pattern could match
//   across a nibble boundary. `expect binary` is a byte search anywhere in the buffer.
// - A `send` empties the receive buffer. Consecutive expects share one buffer, and when one of them
//   waits for data the whole run of expects is evaluated again once more bytes arrive.
// - On a mismatch an expect waits for more data (until `timeout check`, or until the server closes)
//   unless `min-recv` is set: `min-recv N` makes the result conclusive once N bytes are buffered, which
//   is what a negated (`!`) expect needs to pass at all while the connection stays open.
// - So the A-ASSOCIATE-AC is accepted on its first byte (`min-recv 1`, fails fast on an -RJ), and any
//   tail of it still in flight lands in front of the C-ECHO-RSP: the C-ECHO patterns skip leading
//   bytes. The C-ECHO-RSP is first awaited up to the end of its Status value (waits across partial
//   reads), then the value is tested with `min-recv 0` (conclusive: a failure status fails at once).
//   The A-RELEASE-RP pattern skips leading bytes for the same reason.
// - HAProxy cuts the check description (`show stat` last_chk, logs) at about 128 characters, its own
//   prefix included, and escapes characters such as `>` and `"` in logs: comments stay short, plain.
// ---------------------------------------------------------------------------------------------------

/**
 * Regex body (after `^(..)*`) of a P-DATA-TF carrying a command fragment on presentation context 1:
 * type 04, reserved byte, 4-byte PDU length, 4-byte PDV length, context id 01, control header 03.
 */
const PDATA_COMMAND_HEADER = "04.{18}0103";
/** Status (0000,0900), VR US, length 2 in Implicit VR Little Endian, followed by its 2-byte value. */
const STATUS_ELEMENT_HEADER = "0000000902000000";

/** Escapes text for a double-quoted HAProxy argument (no variable expansion, no quote ending). */
function quoted(text: string): string {
  return `"${text.replace(/["$\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * Renders the HAProxy backend directives of a DICOM health check, in order, starting with
 * `option tcp-check`: one directive per string, no indentation. Each step carries a `comment "..."`
 * that HAProxy reports in the check result (`show stat` last_chk, the server-down log line) when that
 * step fails. The connect step uses the server line's options (`default`: check port, addr, check-ssl)
 * and closes with a FIN instead of a reset (`linger`), so the PACS logs no reset connection.
 *
 * Use with `check inter 10s` or longer (every check is an association in the PACS audit log) and a
 * `timeout check` of a few seconds: a server that stops answering mid-association fails by that timeout.
 *
 * @throws Error when an AE title breaks the DICOM AE rules (see {@link aeTitleProblem}).
 * @example
 * dicomTcpCheckDirectives({ calledAeTitle: "ORTHANC" })
 * // ["option tcp-check", "tcp-check connect default linger comment \"...\"", "tcp-check send-binary 0100...", ...]
 */
export function dicomTcpCheckDirectives(opts: DicomCheckOptions): string[] {
  const called = opts.calledAeTitle;
  const calling = opts.callingAeTitle ?? DEFAULT_CALLING_AE_TITLE;
  const variant: DicomCheckVariant = opts.variant ?? "c-echo";
  const associate = associateRequestPdu(called, calling).toString("hex");
  const ports: ReadonlyArray<number | undefined> = opts.ports?.length ? opts.ports : [undefined];
  return ["option tcp-check", ...ports.flatMap((port) => associationRules(variant, associate, called, calling, port))];
}

/** One association of the check: connect (to `port`, or the server line's check port), then the variant's exchange. */
function associationRules(variant: DicomCheckVariant, associate: string, called: string, calling: string, port: number | undefined): string[] {
  const on = port === undefined ? "" : ` on ${port}`;
  const opening = [
    `tcp-check connect ${port === undefined ? "default" : `port ${port}`} linger comment ${quoted(`TCP connect to the DICOM port${on}`)}`,
    `tcp-check send-binary ${associate} comment ${quoted(`sending A-ASSOCIATE-RQ ${calling} to ${called}${on}`)}`,
    // A silent or hung PACS fails here, by `timeout check` (L7TOUT): not to be mistaken for a reject.
    `tcp-check expect min-recv 1 rbinary ^0[237] comment ${quoted(`no answer to A-ASSOCIATE-RQ${on} (timeout, or not DICOM)`)}`,
  ];

  switch (variant) {
    case "c-echo":
      return [
        ...opening,
        `tcp-check expect min-recv 1 ! rbinary ^03 comment ${quoted(`A-ASSOCIATE-RJ: ${calling} to ${called}`)}`,
        `tcp-check expect min-recv 1 ! rbinary ^07 comment ${quoted(`A-ABORT: the PACS aborted ${calling} to ${called}`)}`,
        `tcp-check expect min-recv 1 rbinary ^02 comment ${quoted("no A-ASSOCIATE-AC (PDU type 02)")}`,
        `tcp-check send-binary ${cEchoRequestPdu(C_ECHO_MESSAGE_ID).toString("hex")} comment ` +
          quoted("sending C-ECHO-RQ"),
        `tcp-check expect rbinary ^(..)*${PDATA_COMMAND_HEADER}(..)*${STATUS_ELEMENT_HEADER}.... comment ` +
          quoted("no C-ECHO-RSP (P-DATA-TF with a Status)"),
        `tcp-check expect min-recv 0 rbinary ^(..)*${PDATA_COMMAND_HEADER}(..)*${STATUS_ELEMENT_HEADER}0000 ` +
          `comment ${quoted("C-ECHO-RSP Status is not 0000 (Success)")}`,
        `tcp-check send-binary ${RELEASE_REQUEST_PDU.toString("hex")} comment ${quoted("sending A-RELEASE-RQ")}`,
        `tcp-check expect rbinary ^(..)*06..00000004 comment ${quoted("no A-RELEASE-RP (PDU type 06)")}`,
      ];
    case "associate":
      return [
        ...opening,
        `tcp-check expect min-recv 1 ! rbinary ^07 comment ${quoted(`A-ABORT: the PACS aborted ${calling} to ${called}`)}`,
        `tcp-check send-binary ${ABORT_PDU.toString("hex")} comment ${quoted("sending A-ABORT")}`,
      ];
    default: {
      const unknown: never = variant;
      throw new Error(`DICOM health check variant: expected "c-echo" or "associate", got ${JSON.stringify(unknown)}`);
    }
  }
}
