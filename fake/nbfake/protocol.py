"""The HTTP layer: keep-alive handler, body reading, writing with cut/stall
faults, the threaded server."""

import http.server
import socket
import socketserver
import ssl
import struct
import sys
import time
import traceback
import zlib

from .app import Ctx
from .errors import ApiError, JSON_TYPE, MSG_INTERNAL, bad_request
from .files import Dropped
from .reply import Reply, render_plain
from .util import STOP

# ---------------------------------------------------------------------------
# HTTP layer
# ---------------------------------------------------------------------------


DRAIN_LIMIT = 4 << 30     # oversized bodies up to this are read and dropped


class ClientGone(Exception):
    """The client closed the connection while we were reading."""


class BodyReader:
    """A Content-Length body read in big pieces by the application."""

    def __init__(self, rfile, length):
        self.rfile = rfile
        self.length = length
        self.left = length

    def readinto(self, view):
        """Fill (part of) view; 0 at the end of the body."""
        if self.left <= 0:
            return 0
        want = min(len(view), self.left)
        n = self.rfile.readinto(view[:want])
        if not n:
            raise ClientGone()
        self.left -= n
        return n

    def discard(self):
        """Read and drop what is left of the body."""
        buf = memoryview(bytearray(1 << 20))
        while self.left > 0:
            self.readinto(buf)


class Handler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler; every failure becomes a JSON answer."""

    protocol_version = "HTTP/1.1"
    server_version = "scaffolding on HTTPServer2"
    sys_version = ""
    default_request_version = "HTTP/1.0"   # error replies keep a status line

    def version_string(self):
        return self.server_version

    def setup(self):
        self.timeout = self.server.app.cfg.idle_timeout
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    # --- entry points -------------------------------------------------------

    def do_POST(self):
        self._handle()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_POST

    def do_HEAD(self):
        self._handle(head=True)

    def handle_expect_100(self):
        """Refuse an over-limit body before the client sends it."""
        length = self._content_length()
        if length is not None and length > self.server.app.cfg.max_body \
                and not self._streamed():
            self._send_safely(Reply.error(self._too_large()), close=True)
            return False
        return super().handle_expect_100()

    def _handle(self, head=False):
        app = self.server.app
        try:
            if self._streamed():
                self._handle_streamed(head)
                return
            try:
                ctx = Ctx(self.command, self.path, self._header_dict(),
                          self._read_body())
            except ClientGone:
                self.close_connection = True
                return
            except ApiError as err:       # unreadable/oversized body
                self._send_safely(Reply.error(err), close=True, head=head)
                return
            if ctx.path.startswith("/_nb/") or ctx.path == "/_nb":
                try:
                    reply = app.handle_control(ctx)
                except ApiError as err:
                    reply = Reply.error(err)
            else:
                reply, _ = app.handle_request(ctx)
        except Exception as exc:   # a bug: answer 500, keep serving
            if not app.cfg.quiet:
                traceback.print_exc()
            reply = Reply.error(ApiError(500, "%s (fake server: %s: %s)" % (
                MSG_INTERNAL, type(exc).__name__, exc)))
            reply.close = True
        self._send_safely(reply, head=head)

    def _streamed(self):
        """A request whose body the application reads itself (uploads)."""
        ctx = Ctx(self.command, self.path, {}, b"")
        return self.server.app.streams(self.command, ctx.path, ctx.query)

    def _handle_streamed(self, head):
        app = self.server.app
        length = self._content_length()
        if length is None or length < 0:
            chunked = "chunked" in self.headers.get("Transfer-Encoding",
                                                    "").lower()
            self._send_safely(Reply.error(bad_request(
                "Upload chunks need a Content-Length.", violation=False)),
                close=True, head=head)
            if chunked:
                self.close_connection = True
            return
        reader = BodyReader(self.rfile, length)
        ctx = Ctx(self.command, self.path, self._header_dict(), b"")
        try:
            reply, _ = app.handle_stream(ctx, reader)
        except Dropped:
            self._cut("reset")
            return
        except ClientGone:
            self.close_connection = True
            return
        except Exception as exc:   # a bug: answer 500, keep serving
            if not app.cfg.quiet:
                traceback.print_exc()
            reply = Reply.error(ApiError(500, "%s (fake server: %s: %s)" % (
                MSG_INTERNAL, type(exc).__name__, exc)))
            reply.close = True
        try:
            reader.discard()
        except ClientGone:
            self.close_connection = True
            return
        self._send_safely(reply, head=head)

    # --- reading ---------------------------------------------------------

    def _header_dict(self):
        out = {}
        for name, value in self.headers.items():
            key = name.lower()
            out[key] = out[key] + ", " + value if key in out else value
        return out

    def _content_length(self):
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return None
        try:
            lengths = {int(v.strip()) for v in values}
        except ValueError:
            return -1
        return lengths.pop() if len(lengths) == 1 else -1

    def _too_large(self):
        return bad_request("Request payload size exceeds the limit: %d bytes."
                           % self.server.app.cfg.max_body, violation=False)

    def _read_body(self):
        """The request body (Content-Length or chunked; gzip decoded)."""
        limit = self.server.app.cfg.max_body
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self._read_chunked(limit)
        else:
            length = self._content_length()
            if length is None:
                return b""
            if length < 0:
                raise bad_request("Invalid Content-Length.", violation=False)
            if length > limit:
                self._discard(length)
                raise self._too_large()
            body = self._read_exact(length)
        if self.headers.get("Content-Encoding", "").lower().strip() == "gzip":
            try:
                inflater = zlib.decompressobj(31)
                body = inflater.decompress(body, limit + 1)
            except zlib.error:
                raise bad_request("Invalid gzip request body.",
                                  violation=False) from None
            if len(body) > limit:
                raise self._too_large()
        return body

    def _read_exact(self, n):
        data = self.rfile.read(n) if n else b""
        if len(data) != n:
            raise ClientGone()
        return data

    def _discard(self, n):
        """Read and drop n body bytes, so the client can read our 400.

        Closing with unread input would make the kernel send RST, which can
        destroy the answer before the client reads it.  Bounded at 4 GiB.
        """
        if n > DRAIN_LIMIT:
            return
        while n > 0:
            got = self.rfile.read(min(n, 1 << 20))
            if not got:
                return
            n -= len(got)

    def _read_chunked(self, limit):
        pieces, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise ClientGone()
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise bad_request("Invalid chunked encoding.",
                                  violation=False) from None
            if size < 0:
                raise bad_request("Invalid chunked encoding.", violation=False)
            if size == 0:
                while self.rfile.readline(8192).strip():   # trailers
                    pass
                if pieces is None:
                    raise self._too_large()
                return b"".join(pieces)
            total += size
            if total > limit:
                pieces = None         # keep reading, drop the data
            if pieces is None:
                self._discard(size + 2)
                continue
            pieces.append(self._read_exact(size))
            self._read_exact(2)

    # --- writing ---------------------------------------------------------

    def _send_safely(self, reply, close=False, head=False):
        """Send a reply; a vanished client just ends the connection."""
        if close:
            reply.close = True
        try:
            self._send(reply, head)
        except (OSError, ValueError):
            self.close_connection = True

    def _send(self, reply, head):
        gz = (self.server.app.cfg.gzip and reply.pieces and "gzip" in
              self.headers.get("Accept-Encoding", "").lower())
        wire = (self._stream_wire(reply.pieces, gz) if reply.stream
                else self._plain_wire(reply.pieces, gz))
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.server.app.cfg.gzip:
            self.send_header("Vary", "Origin, X-Origin, Referer, "
                             "Accept-Encoding")
        if gz:
            self.send_header("Content-Encoding", "gzip")
        if reply.stream:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length",
                             str(sum(len(p) for p in wire)))
        self.send_header("X-Content-Type-Options", "nosniff")
        if reply.close or reply.cut:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self._write_body(wire, reply)

    @staticmethod
    def _plain_wire(pieces, gz):
        if not gz:
            return pieces
        comp = zlib.compressobj(1, zlib.DEFLATED, 31)
        out = [comp.compress(p) for p in pieces] + [comp.flush()]
        return [p for p in out if p]

    @staticmethod
    def _stream_wire(events, gz):
        """Chunked framing, one chunk per SSE event (gzip: sync-flushed)."""
        comp = zlib.compressobj(1, zlib.DEFLATED, 31) if gz else None
        wire = []
        for event in events:
            if comp:
                event = [comp.compress(b"".join(event))
                         + comp.flush(zlib.Z_SYNC_FLUSH)]
            size = sum(len(p) for p in event)
            if size:
                wire += [b"%x\r\n" % size] + list(event) + [b"\r\n"]
        if comp:
            tail = comp.flush()
            wire += [b"%x\r\n" % len(tail), tail, b"\r\n"]
        wire.append(b"0\r\n\r\n")
        return wire

    def _write_body(self, wire, reply):
        """Write the body, applying stall / truncate / reset / trickle faults."""
        if reply.trickle:
            self._trickle(b"".join(wire), reply.trickle)
            return
        total = sum(len(p) for p in wire)
        cut_at = None
        if reply.cut:
            wanted = reply.cut[1]
            cut_at = total // 2 if wanted is None else wanted
            cut_at = max(0, min(cut_at, total - 1))
        stall_at, stall_for = reply.stall or (None, 0)
        if stall_at is not None:
            stall_at = min(stall_at, total // 2)
        sent = 0
        for piece in wire:
            view = memoryview(piece)
            while len(view):
                end = len(view)
                if cut_at is not None:
                    end = min(end, cut_at - sent)
                if stall_at is not None and sent < stall_at:
                    end = min(end, stall_at - sent)
                if end > 0:
                    self.wfile.write(view[:end])
                    sent += end
                    view = view[end:]
                if cut_at is not None and sent >= cut_at:
                    self._cut(reply.cut[0])
                    return
                if stall_at is not None and sent >= stall_at:
                    stall_at = None
                    STOP.wait(stall_for)

    def _trickle(self, data, seconds, slices=40):
        """The body in equal slices spread over ``seconds``."""
        step = max(1, -(-len(data) // slices))
        for off in range(0, len(data), step):
            if off:
                STOP.wait(seconds / slices)
            self.wfile.write(data[off:off + step])

    def _cut(self, kind):
        """End the connection mid-body: FIN (truncated) or RST (reset)."""
        self.close_connection = True
        sock = self.connection
        if kind == "reset":
            time.sleep(0.05)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            sock.close()
        else:
            sock.shutdown(socket.SHUT_WR)

    # --- errors from http.server and logging ---------------------------------

    def send_error(self, code, message=None, explain=None):
        """Protocol-level errors (bad request line, ...) as Google JSON."""
        self.log_error("code %d, message %s", code, message)
        self.close_connection = True
        body = render_plain(ApiError(code, message or "Bad request.").body())
        try:
            self.send_response(code, message)
            self.send_header("Content-Type", JSON_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204,
                                                                       304):
                self.wfile.write(body)
        except (OSError, ValueError):
            pass

    def log_message(self, fmt, *args):
        if not self.server.app.cfg.quiet:
            sys.stderr.write("%s - %s\n" % (self.address_string(),
                                            fmt % args))


class FakeServer(http.server.ThreadingHTTPServer):
    """Threaded server with daemon threads and quiet connection errors."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, app, family=socket.AF_INET):
        self.address_family = family
        self.app = app
        super().__init__(address, Handler)

    def server_bind(self):
        # Skip HTTPServer.server_bind's getfqdn() (a DNS lookup).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ssl.SSLError, ValueError)):
            return
        if not self.app.cfg.quiet:
            super().handle_error(request, client_address)
