#!/usr/bin/env python3
"""A raw capture server: records the exact bytes of every HTTP request.

Tests that must see precisely what reaches the wire (request line, header
lines, body, byte for byte) point the client here instead of at the fake
Gemini server, which parses and normalises what it receives.

    python3 fake/capture.py --dir DIR [--port 0] [--port-file PATH]

It binds 127.0.0.1 only. Request N (1, 2, ...) is written to DIR/N.req
exactly as received: everything up to the blank line after the headers,
then the body as framed by Content-Length, or the chunked body with its
chunk framing (then the file holds the raw chunks). The file is written to
DIR/.N.tmp and renamed when the request is complete, so a reader never sees
half a request. Every request gets the same answer: 200 with a valid
generateContent response whose one part is a 1x1 PNG (inlineData), and
Connection: close. SIGTERM stops it (exit 0). Standard library only.
"""

import argparse
import base64
import json
import os
import signal
import socket
import struct
import sys
import threading
import zlib


def tiny_png():
    """A valid 1x1 RGB PNG (one white pixel)."""
    def chunk(kind, data):
        body = kind + data
        return (struct.pack(">I", len(data)) + body
                + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\xff\xff")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


PNG = tiny_png()
RESPONSE_BODY = json.dumps({
    "candidates": [{
        "content": {"role": "model", "parts": [{"inlineData": {
            "mimeType": "image/png",
            "data": base64.b64encode(PNG).decode()}}]},
        "finishReason": "STOP", "index": 0}],
    "modelVersion": "capture", "responseId": "capture-1",
}).encode()
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8"
            b"\r\nContent-Length: " + str(len(RESPONSE_BODY)).encode()
            + b"\r\nConnection: close\r\n\r\n" + RESPONSE_BODY)
MAX_REQUEST = 64 << 20


class Capture:
    """Accept loop plus one thread per connection."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.lock = threading.Lock()
        self.count = 0

    def _next(self):
        with self.lock:
            self.count += 1
            return self.count

    def save(self, data):
        n = self._next()
        tmp = os.path.join(self.out_dir, ".%d.tmp" % n)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.out_dir, "%d.req" % n))

    @staticmethod
    def read_request(conn):
        """The raw bytes of one request (b"" if the peer sent nothing)."""
        data = b""
        while b"\r\n\r\n" not in data:
            got = conn.recv(65536)
            if not got:
                return data
            data += got
            if len(data) > MAX_REQUEST:
                return data
        head, _, rest = data.partition(b"\r\n\r\n")
        length, chunked = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    length = 0
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        body = rest
        if chunked:
            while not (body.endswith(b"0\r\n\r\n") or len(body) > MAX_REQUEST):
                got = conn.recv(65536)
                if not got:
                    break
                body += got
        else:
            while len(body) < min(length, MAX_REQUEST):
                got = conn.recv(65536)
                if not got:
                    break
                body += got
        return head + b"\r\n\r\n" + body

    def handle(self, conn):
        try:
            conn.settimeout(30)
            data = self.read_request(conn)
            if data:
                self.save(data)
                conn.sendall(RESPONSE)
        except OSError:
            pass
        finally:
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            conn.close()

    def serve(self, sock):
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=self.handle, args=(conn,),
                             daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help="where N.req files go")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(64)
    port = sock.getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print("nanobanana capture listening on http://127.0.0.1:%d" % port,
          flush=True)
    try:
        Capture(args.dir).serve(sock)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
