/**
 * Unit tests of the DICOM C-ECHO health check: PDU bytes against PS3.8 / PS3.7, AE title rules, the exact
 * HAProxy directive list, and how its expect patterns behave on replies (whole, in pieces, failing).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ABORT_PDU,
  IMPLEMENTATION_CLASS_UID,
  IMPLEMENTATION_VERSION_NAME,
  RELEASE_REQUEST_PDU,
  associateRequestPdu,
  cEchoRequestPdu,
  dicomTcpCheckDirectives,
} from "../lib/haproxy/dicom-check";
import { aeTitleProblem } from "../lib/config/dicom-ae-title";

const hex = (text: string): string => Buffer.from(text, "ascii").toString("hex");

interface Item {
  readonly type: number;
  readonly value: Buffer;
}

/** Splits A-ASSOCIATE items / sub-items: type, reserved, 2-byte big-endian length, value. */
function parseItems(bytes: Buffer): Item[] {
  const items: Item[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    assert.ok(offset + 4 <= bytes.length, `item header cut at offset ${offset}`);
    assert.equal(bytes[offset + 1], 0x00, "item reserved byte");
    const length = bytes.readUInt16BE(offset + 2);
    assert.ok(offset + 4 + length <= bytes.length, `item 0x${bytes[offset].toString(16)} overruns its parent`);
    items.push({ type: bytes[offset], value: bytes.subarray(offset + 4, offset + 4 + length) });
    offset += 4 + length;
  }
  return items;
}

interface Element {
  readonly tag: string;
  readonly value: Buffer;
}

/** Splits an Implicit VR Little Endian data set into elements keyed "gggg,eeee". */
function parseImplicitLe(bytes: Buffer): Element[] {
  const elements: Element[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const group = bytes.readUInt16LE(offset);
    const element = bytes.readUInt16LE(offset + 2);
    const length = bytes.readUInt32LE(offset + 4);
    const tag = `${group.toString(16).padStart(4, "0")},${element.toString(16).padStart(4, "0")}`;
    elements.push({ tag, value: bytes.subarray(offset + 8, offset + 8 + length) });
    offset += 8 + length;
  }
  assert.equal(offset, bytes.length, "elements end exactly at the end of the command");
  return elements;
}

/** The regex of the `tcp-check expect ... rbinary <regex> comment ...` directive at `index`. */
function rbinaryPattern(directives: readonly string[], index: number): RegExp {
  const match = /\brbinary (\S+) comment /.exec(directives[index]);
  assert.ok(match, `directive ${index} is an rbinary expect: ${directives[index]}`);
  return new RegExp(match[1]);
}

/** The hex dump HAProxy matches rbinary patterns against (upper-case, like its dump_binary()). */
const dump = (buffer: Buffer): string => buffer.toString("hex").toUpperCase();

/** A C-ECHO-RSP as a P-DATA-TF, the way a DICOM SCP answers (status in implicit VR LE). */
function cEchoResponse(status: number, extraElements: Buffer = Buffer.alloc(0)): Buffer {
  const element = (tag: [number, number], value: Buffer): Buffer => {
    const header = Buffer.alloc(8);
    header.writeUInt16LE(tag[0], 0);
    header.writeUInt16LE(tag[1], 2);
    header.writeUInt32LE(value.length, 4);
    return Buffer.concat([header, value]);
  };
  const us = (n: number): Buffer => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(n);
    return b;
  };
  const body = Buffer.concat([
    element([0, 0x0002], Buffer.from("1.2.840.10008.1.1\0", "ascii")),
    element([0, 0x0100], us(0x8030)),
    element([0, 0x0120], us(1)),
    element([0, 0x0800], us(0x0101)),
    element([0, 0x0900], us(status)),
    extraElements,
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length);
  const command = Buffer.concat([element([0, 0], groupLength), body]);
  const pdv = Buffer.alloc(6);
  pdv.writeUInt32BE(command.length + 2, 0);
  pdv[4] = 0x01;
  pdv[5] = 0x03;
  const header = Buffer.alloc(6);
  header[0] = 0x04;
  header.writeUInt32BE(pdv.length + command.length, 2);
  return Buffer.concat([header, pdv, command]);
}

describe("associateRequestPdu", () => {
  const pdu = associateRequestPdu("ORTHANC", "LBHEALTH");

  it("is an A-ASSOCIATE-RQ whose PDU length field equals the body length", () => {
    assert.equal(pdu[0], 0x01);
    assert.equal(pdu[1], 0x00);
    assert.equal(pdu.readUInt32BE(2), pdu.length - 6);
  });

  it("announces protocol version 1 followed by two reserved bytes", () => {
    assert.equal(pdu.readUInt16BE(6), 0x0001);
    assert.equal(pdu.readUInt16BE(8), 0x0000);
  });

  it("puts the called then the calling AE title, each space-padded to 16 bytes", () => {
    assert.equal(pdu.subarray(10, 26).toString("ascii"), "ORTHANC         ");
    assert.equal(pdu.subarray(26, 42).toString("ascii"), "LBHEALTH        ");
  });

  it("accepts a 16-character AE title without padding it", () => {
    const full = associateRequestPdu("ABCDEFGHIJKLMNOP", "LBHEALTH");
    assert.equal(full.subarray(10, 26).toString("ascii"), "ABCDEFGHIJKLMNOP");
  });

  it("leaves 32 reserved zero bytes before the variable items", () => {
    assert.deepEqual(pdu.subarray(42, 74), Buffer.alloc(32));
  });

  it("carries the application context, one presentation context and user information, in that order", () => {
    const items = parseItems(pdu.subarray(74));
    assert.deepEqual(items.map((i) => i.type), [0x10, 0x20, 0x50]);
    assert.equal(items[0].value.toString("ascii"), "1.2.840.10008.3.1.1.1");
  });

  it("proposes presentation context 1: Verification SOP Class with Implicit VR Little Endian only", () => {
    const context = parseItems(pdu.subarray(74))[1].value;
    assert.deepEqual(context.subarray(0, 4), Buffer.from([0x01, 0x00, 0x00, 0x00]));
    const subItems = parseItems(context.subarray(4));
    assert.deepEqual(subItems.map((i) => i.type), [0x30, 0x40]);
    assert.equal(subItems[0].value.toString("ascii"), "1.2.840.10008.1.1");
    assert.equal(subItems[1].value.toString("ascii"), "1.2.840.10008.1.2");
  });

  it("sends UIDs in association items unpadded (odd lengths stay odd)", () => {
    const items = parseItems(pdu.subarray(74));
    assert.equal(items[0].value.length, 21);
    assert.equal(parseItems(items[1].value.subarray(4))[0].value.length, 17);
  });

  it("announces max PDU length 16384, the implementation class UID and version name in user information", () => {
    const userInfo = parseItems(parseItems(pdu.subarray(74))[2].value);
    assert.deepEqual(userInfo.map((i) => i.type), [0x51, 0x52, 0x55]);
    assert.equal(userInfo[0].value.length, 4);
    assert.equal(userInfo[0].value.readUInt32BE(0), 16384);
    assert.equal(userInfo[1].value.toString("ascii"), IMPLEMENTATION_CLASS_UID);
    assert.equal(userInfo[2].value.toString("ascii"), IMPLEMENTATION_VERSION_NAME);
  });

  it("uses a valid UID under the UUID-derived root 2.25 and a version name of at most 16 characters", () => {
    assert.match(IMPLEMENTATION_CLASS_UID, /^2\.25\.[1-9][0-9]*$/);
    assert.ok(IMPLEMENTATION_CLASS_UID.length <= 64);
    assert.ok(BigInt(IMPLEMENTATION_CLASS_UID.slice(5)) < 2n ** 128n, "a UUID is 128 bits");
    assert.ok(IMPLEMENTATION_VERSION_NAME.length >= 1 && IMPLEMENTATION_VERSION_NAME.length <= 16);
  });

  it("rejects invalid AE titles with the value and the rule", () => {
    assert.throws(() => associateRequestPdu("ORTHANC\\X", "LBHEALTH"), /called AE title: expected 1-16 .*"ORTHANC\\\\X"/);
    assert.throws(() => associateRequestPdu("ORTHANC", ""), /calling AE title: expected 1-16 .*got ""/);
  });
});

describe("cEchoRequestPdu", () => {
  const pdu = cEchoRequestPdu(1);

  it("is a P-DATA-TF whose PDU length field equals the body length", () => {
    assert.equal(pdu[0], 0x04);
    assert.equal(pdu[1], 0x00);
    assert.equal(pdu.readUInt32BE(2), pdu.length - 6);
  });

  it("holds one PDV on presentation context 1 with message control header 0x03 (command, last fragment)", () => {
    assert.equal(pdu.readUInt32BE(6), pdu.length - 10);
    assert.equal(pdu[10], 0x01);
    assert.equal(pdu[11], 0x03);
  });

  it("encodes the C-ECHO-RQ command set in implicit VR little endian with a correct group length", () => {
    const elements = parseImplicitLe(pdu.subarray(12));
    assert.deepEqual(elements.map((e) => e.tag), ["0000,0000", "0000,0002", "0000,0100", "0000,0110", "0000,0800"]);
    assert.equal(elements[0].value.length, 4);
    assert.equal(elements[0].value.readUInt32LE(0), pdu.length - 12 - 12);
    assert.equal(elements[2].value.readUInt16LE(0), 0x0030);
    assert.equal(elements[3].value.readUInt16LE(0), 1);
    assert.equal(elements[4].value.readUInt16LE(0), 0x0101);
  });

  it("pads the affected SOP class UID with one NUL to an even length", () => {
    const uid = parseImplicitLe(pdu.subarray(12))[1].value;
    assert.equal(uid.length, 18);
    assert.equal(uid.toString("ascii"), "1.2.840.10008.1.1\0");
  });

  it("is exactly 80 bytes for any message id, which is written little-endian", () => {
    assert.equal(pdu.length, 80);
    const other = cEchoRequestPdu(0x1234);
    assert.equal(other.length, 80);
    assert.equal(parseImplicitLe(other.subarray(12))[3].value.toString("hex"), "3412");
  });

  it("rejects message ids outside an unsigned short", () => {
    assert.throws(() => cEchoRequestPdu(65536), /expected an integer from 0 to 65535, got 65536/);
    assert.throws(() => cEchoRequestPdu(-1), /got -1/);
    assert.throws(() => cEchoRequestPdu(1.5), /got 1.5/);
  });
});

describe("release and abort PDUs", () => {
  it("A-RELEASE-RQ is type 0x05 with length 4 and four reserved bytes", () => {
    assert.equal(RELEASE_REQUEST_PDU.toString("hex"), "05000000000400000000");
  });

  it("A-ABORT is type 0x07 with length 4, source 0 and reason 0", () => {
    assert.equal(ABORT_PDU.toString("hex"), "07000000000400000000");
  });
});

describe("aeTitleProblem", () => {
  const rule = /^1-16 characters from the DICOM default character repertoire/;

  it("accepts ordinary titles, 16 characters, and inner or leading spaces", () => {
    for (const ok of ["ORTHANC", "A", "ABCDEFGHIJKLMNOP", "EI CORE 01", " PACS", "o'brien-1.2_x"]) {
      assert.equal(aeTitleProblem(ok), undefined, JSON.stringify(ok));
    }
  });

  it("rejects a title longer than 16 characters", () => {
    assert.match(aeTitleProblem("ABCDEFGHIJKLMNOPQ") ?? "", rule);
  });

  it("rejects the empty title and a title of only spaces", () => {
    assert.match(aeTitleProblem("") ?? "", rule);
    assert.match(aeTitleProblem("    ") ?? "", rule);
  });

  it("rejects a backslash", () => {
    assert.match(aeTitleProblem("PACS\\1") ?? "", rule);
  });

  it("rejects control characters, DEL and characters outside ASCII", () => {
    for (const bad of ["PACS\n", "PA\tCS", "\u001bPACS", "PACS\u007f", "PACSÄ"]) {
      assert.match(aeTitleProblem(bad) ?? "", rule, JSON.stringify(bad));
    }
  });

  it("says what is allowed", () => {
    assert.equal(
      aeTitleProblem(""),
      "1-16 characters from the DICOM default character repertoire (printable ASCII), " +
        "no backslash or control characters, not only spaces",
    );
  });
});

describe("dicomTcpCheckDirectives", () => {
  // The A-ASSOCIATE-RQ for ORTHANC <- LBHEALTH, written out field by field.
  const associateRq = [
    "01", "00", "000000dd", // A-ASSOCIATE-RQ, reserved, length 221
    "0001", "0000", // protocol version 1, reserved
    hex("ORTHANC         "), hex("LBHEALTH        "),
    "00".repeat(32),
    "10", "00", "0015", hex("1.2.840.10008.3.1.1.1"),
    "20", "00", "002e", "01000000",
    "30", "00", "0011", hex("1.2.840.10008.1.1"),
    "40", "00", "0011", hex("1.2.840.10008.1.2"),
    "50", "00", "004a",
    "51", "00", "0004", "00004000",
    "52", "00", "002c", hex("2.25.150200836763930426505202112329105585345"),
    "55", "00", "000e", hex("IMAGING-LB-0.1"),
  ].join("");
  // The C-ECHO-RQ, message id 1, in a P-DATA-TF.
  const cEchoRq = [
    "04", "00", "0000004a", // P-DATA-TF, reserved, length 74
    "00000046", "01", "03", // PDV length 70, presentation context 1, command + last fragment
    "00000000", "04000000", "38000000", // (0000,0000) UL 4: group length 56
    "00000200", "12000000", hex("1.2.840.10008.1.1"), "00", // (0000,0002) UI 18
    "00000001", "02000000", "3000", // (0000,0100) US 0x0030
    "00001001", "02000000", "0100", // (0000,0110) US 1
    "00000008", "02000000", "0101", // (0000,0800) US 0x0101
  ].join("");

  it("renders the C-ECHO check for called ORTHANC / calling LBHEALTH, in order", () => {
    assert.deepEqual(dicomTcpCheckDirectives({ calledAeTitle: "ORTHANC", callingAeTitle: "LBHEALTH" }), [
      "option tcp-check",
      'tcp-check connect default linger comment "TCP connect to the DICOM port"',
      `tcp-check send-binary ${associateRq} comment "sending A-ASSOCIATE-RQ LBHEALTH to ORTHANC"`,
      'tcp-check expect min-recv 1 rbinary ^0[237] comment "no answer to A-ASSOCIATE-RQ (timeout, or not DICOM)"',
      'tcp-check expect min-recv 1 ! rbinary ^03 comment "A-ASSOCIATE-RJ: LBHEALTH to ORTHANC"',
      'tcp-check expect min-recv 1 ! rbinary ^07 comment "A-ABORT: the PACS aborted LBHEALTH to ORTHANC"',
      'tcp-check expect min-recv 1 rbinary ^02 comment "no A-ASSOCIATE-AC (PDU type 02)"',
      `tcp-check send-binary ${cEchoRq} comment "sending C-ECHO-RQ"`,
      "tcp-check expect rbinary ^(..)*04.{18}0103(..)*0000000902000000.... " +
        'comment "no C-ECHO-RSP (P-DATA-TF with a Status)"',
      "tcp-check expect min-recv 0 rbinary ^(..)*04.{18}0103(..)*00000009020000000000 " +
        'comment "C-ECHO-RSP Status is not 0000 (Success)"',
      'tcp-check send-binary 05000000000400000000 comment "sending A-RELEASE-RQ"',
      'tcp-check expect rbinary ^(..)*06..00000004 comment "no A-RELEASE-RP (PDU type 06)"',
    ]);
  });

  it("defaults to the c-echo variant with calling AE title LBHEALTH", () => {
    assert.deepEqual(
      dicomTcpCheckDirectives({ calledAeTitle: "ORTHANC" }),
      dicomTcpCheckDirectives({ calledAeTitle: "ORTHANC", callingAeTitle: "LBHEALTH", variant: "c-echo" }),
    );
  });

  it("renders the associate variant: accept AC or RJ, then abort", () => {
    assert.deepEqual(dicomTcpCheckDirectives({ calledAeTitle: "ORTHANC", variant: "associate" }), [
      "option tcp-check",
      'tcp-check connect default linger comment "TCP connect to the DICOM port"',
      `tcp-check send-binary ${associateRq} comment "sending A-ASSOCIATE-RQ LBHEALTH to ORTHANC"`,
      'tcp-check expect min-recv 1 rbinary ^0[237] comment "no answer to A-ASSOCIATE-RQ (timeout, or not DICOM)"',
      'tcp-check expect min-recv 1 ! rbinary ^07 comment "A-ABORT: the PACS aborted LBHEALTH to ORTHANC"',
      'tcp-check send-binary 07000000000400000000 comment "sending A-ABORT"',
    ]);
  });

  it("checks each given port with an association of its own, naming the port in the comments", () => {
    const one = dicomTcpCheckDirectives({ calledAeTitle: "ORTHANC" }).slice(1);
    const two = dicomTcpCheckDirectives({ calledAeTitle: "ORTHANC", ports: [104, 110] });
    assert.equal(two.length, 1 + 2 * one.length);
    assert.deepEqual(two.filter((d) => d.startsWith("tcp-check connect")), [
      'tcp-check connect port 104 linger comment "TCP connect to the DICOM port on 104"',
      'tcp-check connect port 110 linger comment "TCP connect to the DICOM port on 110"',
    ]);
    assert.ok(two.includes('tcp-check expect min-recv 1 rbinary ^0[237] comment "no answer to A-ASSOCIATE-RQ on 110 (timeout, or not DICOM)"'));
  });

  it("escapes double quotes and dollar signs of AE titles inside comments", () => {
    const directives = dicomTcpCheckDirectives({ calledAeTitle: 'PACS"1', callingAeTitle: "LB$HOME" });
    assert.match(directives[2], / comment "sending A-ASSOCIATE-RQ LB\\\$HOME to PACS\\"1"$/);
  });

  it("refuses invalid AE titles, naming the role, the value and the rule", () => {
    assert.throws(
      () => dicomTcpCheckDirectives({ calledAeTitle: "A-VERY-LONG-AE-TITLE" }),
      /called AE title: expected 1-16 characters .*got "A-VERY-LONG-AE-TITLE"/,
    );
    assert.throws(() => dicomTcpCheckDirectives({ calledAeTitle: "PACS", callingAeTitle: "   " }), /calling AE title/);
  });

  it("refuses an unknown variant", () => {
    assert.throws(
      () => dicomTcpCheckDirectives({ calledAeTitle: "PACS", variant: "c-find" as never }),
      /expected "c-echo" or "associate", got "c-find"/,
    );
  });
});

describe("expect patterns against DICOM replies (as HAProxy sees them: hex dump of the buffer)", () => {
  const directives = dicomTcpCheckDirectives({ calledAeTitle: "ORTHANC" });
  const answered = rbinaryPattern(directives, 3);
  const rejected = rbinaryPattern(directives, 4);
  const aborted = rbinaryPattern(directives, 5);
  const accepted = rbinaryPattern(directives, 6);
  const echoArrived = rbinaryPattern(directives, 8);
  const echoSuccess = rbinaryPattern(directives, 9);
  const releaseReply = rbinaryPattern(directives, 11);
  const associate = dicomTcpCheckDirectives({ calledAeTitle: "X", variant: "associate" });
  const associateAnswered = rbinaryPattern(associate, 3);
  const associateAborted = rbinaryPattern(associate, 4);

  const associateAc = Buffer.from("020000000010000100004f525448414e4320", "hex"); // first bytes of an AC
  const associateRj = Buffer.from("03000000000a00010102", "hex");
  const abort = Buffer.from("07000000000400000000", "hex");

  it("tells an A-ASSOCIATE-AC from an A-ASSOCIATE-RJ on the first byte", () => {
    assert.ok(accepted.test(dump(associateAc.subarray(0, 1))));
    assert.ok(!rejected.test(dump(associateAc.subarray(0, 1))));
    assert.ok(rejected.test(dump(associateRj)));
    assert.ok(!accepted.test(dump(associateRj)));
    assert.ok(!accepted.test(dump(abort)));
  });

  it("does not mistake a 02 later in the buffer for an A-ASSOCIATE-AC", () => {
    assert.ok(!accepted.test(dump(Buffer.from("0702", "hex"))));
    assert.ok(!accepted.test(dump(Buffer.from("2000", "hex"))), "nibble 2 then 0 is not byte 02");
  });

  it("the associate variant accepts AC and RJ but not A-ABORT", () => {
    for (const answer of [associateAc, associateRj]) {
      assert.ok(associateAnswered.test(dump(answer)) && !associateAborted.test(dump(answer)));
    }
    assert.ok(associateAnswered.test(dump(abort)) && associateAborted.test(dump(abort)), "an abort fails at the abort step");
  });

  it("tells an answer (AC, RJ, A-ABORT) from silence or another protocol, then a reject from an abort", () => {
    for (const answer of [associateAc, associateRj, abort]) assert.ok(answered.test(dump(answer.subarray(0, 1))));
    assert.ok(!answered.test(dump(Buffer.from("485454502f312e31", "hex"))), "HTTP/1.1 is not a DICOM answer");
    assert.ok(!answered.test(""), "nothing received: the step waits, then fails by timeout with its own comment");
    assert.ok(aborted.test(dump(abort)) && !rejected.test(dump(abort)));
    assert.ok(rejected.test(dump(associateRj)) && !aborted.test(dump(associateRj)));
  });

  it("matches a C-ECHO-RSP with status 0000", () => {
    const response = dump(cEchoResponse(0x0000));
    assert.ok(echoArrived.test(response));
    assert.ok(echoSuccess.test(response));
  });

  it("recognises a complete C-ECHO-RSP with a failure status and does not accept it", () => {
    for (const status of [0x0110, 0x0211, 0xc000, 0xa700]) {
      const response = dump(cEchoResponse(status));
      assert.ok(echoArrived.test(response), `status ${status.toString(16)} response is complete`);
      assert.ok(!echoSuccess.test(response), `status ${status.toString(16)} is not success`);
    }
  });

  it("keeps waiting (no match yet) on every prefix of a reply that arrives in pieces", () => {
    const response = cEchoResponse(0x0000);
    for (let cut = 0; cut < response.length; cut++) {
      assert.ok(!echoArrived.test(dump(response.subarray(0, cut))), `prefix of ${cut} bytes`);
    }
    assert.ok(echoArrived.test(dump(response)));
  });

  it("still matches when the tail of the A-ASSOCIATE-AC arrives in front of the C-ECHO-RSP", () => {
    const acTail = Buffer.from("5000003a5100000400004000520000", "hex");
    const response = dump(Buffer.concat([acTail, cEchoResponse(0x0000)]));
    assert.ok(echoArrived.test(response));
    assert.ok(echoSuccess.test(response));
    assert.ok(!echoSuccess.test(dump(Buffer.concat([acTail, cEchoResponse(0x0110)]))));
  });

  it("only matches the status element on a byte boundary", () => {
    // The bytes X0 00 00 00 90 20 00 00 00 00 0Y hold the status pattern shifted by one nibble.
    const shifted = Buffer.concat([cEchoResponse(0x0110), Buffer.from("1000000090200000000001", "hex")]);
    assert.ok(dump(shifted).includes("00000009020000000000"), "the nibble-shifted pattern is in the dump");
    assert.ok(!echoSuccess.test(dump(shifted)));
  });

  it("does not accept an A-ABORT in place of the C-ECHO-RSP", () => {
    assert.ok(!echoArrived.test(dump(abort)));
  });

  it("matches the A-RELEASE-RP", () => {
    assert.ok(releaseReply.test(dump(Buffer.from("06000000000400000000", "hex"))));
    assert.ok(!releaseReply.test(dump(Buffer.from("060000000004", "hex").subarray(0, 5))));
    assert.ok(!releaseReply.test(dump(abort)));
  });
});
