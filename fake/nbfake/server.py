"""Command line: options, TLS, the port file, main()."""

import argparse
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading

from .app import App, Config
from .protocol import FakeServer
from .util import STOP, parse_bytes

# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

ALLOWED_HOSTS = {"127.0.0.1": ("127.0.0.1", socket.AF_INET),
                 "localhost": ("127.0.0.1", socket.AF_INET),
                 "::1": ("::1", socket.AF_INET6),
                 "[::1]": ("::1", socket.AF_INET6)}


def _size_arg(text):
    """argparse type: a byte count with optional K/M/G suffix (0 allowed)."""
    if str(text).strip() == "0":
        return 0
    value = parse_bytes(text, None)
    if value is None:
        raise argparse.ArgumentTypeError("not a byte count: %r" % text)
    return value


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="nanobanana fake Gemini image server (loopback only)")
    p.add_argument("--host", default="127.0.0.1",
                   help="127.0.0.1 (default), ::1 or localhost")
    p.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    p.add_argument("--port-file", help="write the port here (atomically)")
    p.add_argument("--api-key", action="append", dest="api_keys",
                   help='accepted key (repeatable; default "test-key")')
    p.add_argument("--no-auth", action="store_true",
                   help="accept any or no credentials")
    p.add_argument("--latency-ms", type=float, default=0.0,
                   help="sleep before answering each valid generate request")
    p.add_argument("--gzip", action="store_true",
                   help="gzip bodies when the client accepts gzip")
    p.add_argument("--tls-cert", help="PEM certificate chain (enables TLS)")
    p.add_argument("--tls-key", help="PEM private key")
    p.add_argument("--noise-bytes", type=_size_arg, default=0,
                   help="final images become incompressible PNGs of this "
                        "size (K/M/G suffixes allowed)")
    p.add_argument("--no-record", action="store_true",
                   help="do not keep the request log")
    p.add_argument("--quiet", action="store_true", help="no request logging")
    p.add_argument("--max-body-bytes", type=_size_arg, default=100 << 20,
                   help="largest request body (default 100 MiB)")
    p.add_argument("--idle-timeout", type=float, default=120.0,
                   help="seconds a connection may stay silent")
    p.add_argument("--batch-step-ms", type=float, default=300.0,
                   help="how long a batch job stays PENDING, then RUNNING")
    return p.parse_args(argv)


def write_port_file(path, port):
    """Write the port number atomically (temp file + rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".port-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def make_server(args, cfg):
    """Bind, listen and (optionally) wrap with TLS."""
    host, family = ALLOWED_HOSTS[args.host]
    server = FakeServer((host, args.port), App(cfg), family)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    return server


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.host not in ALLOWED_HOSTS:
        sys.stderr.write("refusing to bind %r: loopback only (127.0.0.1, ::1,"
                         " localhost)\n" % args.host)
        return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        sys.stderr.write("--tls-cert and --tls-key go together\n")
        return 2
    cfg = Config(keys=args.api_keys or ["test-key"], no_auth=args.no_auth,
                 latency=max(0.0, args.latency_ms) / 1000.0,
                 gzip_enabled=args.gzip, noise_bytes=args.noise_bytes,
                 record=not args.no_record, quiet=args.quiet,
                 max_body=args.max_body_bytes or (100 << 20),
                 idle_timeout=args.idle_timeout if args.idle_timeout > 0
                 else None,
                 batch_step=max(0.0, args.batch_step_ms) / 1000.0)
    try:
        server = make_server(args, cfg)
    except (OSError, ssl.SSLError) as exc:
        sys.stderr.write("cannot start: %s\n" % exc)
        return 1
    port = server.server_address[1]
    host = ALLOWED_HOSTS[args.host][0]
    url = "%s://%s:%d" % ("https" if args.tls_cert else "http",
                          "[::1]" if ":" in host else host, port)
    if args.port_file:
        write_port_file(args.port_file, port)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: STOP.set())
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        print("nanobanana fake gemini listening on %s" % url, flush=True)
    except OSError:
        pass
    while not STOP.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
