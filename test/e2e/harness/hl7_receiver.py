"""MLLP receiver for the imaging-lb e2e harness.

Accepts HL7 v2 messages framed with MLLP (0x0B ... 0x1C 0x0D), answers each with an ACK whose MSA-1 is
the configured code (AA by default) and MSA-2 the sender's MSH-10, and appends one JSON line per event to
the log file: {"event": "listening"|"connect"|"message"|"close", "peer": ..., "peerPort": ..., ...}.
Runs with the system Python and Debian's python3-hl7 (``import hl7``).

Usage: hl7_receiver.py --port 2310 --log FILE [--bind 0.0.0.0] [--name srv1] [--ack-code AA]
"""

import argparse
import json
import socket
import threading
import time

import hl7

START = b"\x0b"
END = b"\x1c\x0d"


class EventLog:
    """Thread-safe JSON-lines writer."""

    def __init__(self, path, name):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._name = name

    def write(self, **event):
        event["server"] = self._name
        event["time"] = time.time()
        with self._lock:
            self._file.write(json.dumps(event) + "\n")
            self._file.flush()


def ack_for(raw, ack_code):
    """Returns (control id, message type, ACK text) for one HL7 message (segments separated by CR)."""
    message = hl7.parse(raw)
    control_id = str(message.segment("MSH")[10])
    message_type = str(message.segment("MSH")[9])
    return control_id, message_type, str(message.create_ack(ack_code))


def serve_connection(conn, peer, log, ack_code):
    log.write(event="connect", peer=peer[0], peerPort=peer[1])
    buffer = b""
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buffer += chunk
            while True:
                start = buffer.find(START)
                end = buffer.find(END, start + 1)
                if start < 0 or end < 0:
                    break
                raw = buffer[start + 1:end].decode("utf-8", errors="replace")
                buffer = buffer[end + len(END):]
                try:
                    control_id, message_type, ack = ack_for(raw.replace("\n", "\r").strip("\r"), ack_code)
                except Exception as error:  # a malformed message gets logged, not acknowledged
                    log.write(event="error", peer=peer[0], peerPort=peer[1], error=str(error), raw=raw)
                    continue
                conn.sendall(START + ack.encode("utf-8") + END)
                log.write(event="message", peer=peer[0], peerPort=peer[1], controlId=control_id,
                          messageType=message_type, ackCode=ack_code, raw=raw)
    except OSError as error:
        log.write(event="error", peer=peer[0], peerPort=peer[1], error=str(error))
    finally:
        conn.close()
        log.write(event="close", peer=peer[0], peerPort=peer[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--name", default="mllp")
    parser.add_argument("--ack-code", default="AA", choices=["AA", "AE", "AR"])
    args = parser.parse_args()

    log = EventLog(args.log, args.name)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((args.bind, args.port))
    server.listen(64)
    log.write(event="listening", bind=args.bind, port=args.port)
    while True:
        conn, peer = server.accept()
        threading.Thread(target=serve_connection, args=(conn, peer, log, args.ack_code), daemon=True).start()


if __name__ == "__main__":
    main()
