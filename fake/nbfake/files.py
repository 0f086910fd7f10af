"""Files API: resumable uploads, file metadata, list, delete, download.

Routes (each behind the usual auth, any path prefix before the version):

- ``POST {prefix}/upload/{v}/files`` with ``X-Goog-Upload-Protocol:
  resumable`` and ``X-Goog-Upload-Command: start``: a new upload session;
  the answer carries ``X-Goog-Upload-URL`` and ``X-Goog-Upload-Status:
  active`` and an empty body.
- ``POST`` to that URL (``?upload_id=...``) with ``X-Goog-Upload-Command``
  ``upload`` / ``upload, finalize`` / ``finalize`` / ``query`` and
  ``X-Goog-Upload-Offset``: the bytes are read in big chunks and hashed as
  they arrive (never kept whole unless the file is small); ``query`` answers
  ``X-Goog-Upload-Size-Received``; ``finalize`` answers ``{"file": File}``
  with ``X-Goog-Upload-Status: final``.  An offset that is not the size
  received so far is a 400 (status stays ``active``).
- ``GET {v}/files/{id}``, ``GET {v}/files?pageSize=&pageToken=``,
  ``DELETE {v}/files/{id}``, ``GET {v}/files/{id}:download?alt=media``
  (generated files only, e.g. batch results).

Upload faults (queued with POST /_nb/faults, applied to the next chunk):
``upload_drop`` (ARG bytes of the chunk are kept, default half, then the
connection is reset with no answer) and ``upload_lose`` (the whole chunk is
read, only ARG bytes of it are kept, default half, and the answer is 503
UNAVAILABLE: the client must ask what was received).
"""

import base64
import datetime
import hashlib
import json
import os
import re
import threading
import time
import urllib.parse

from .auth import check_auth
from .errors import ApiError, bad_request
from .reply import Reply
from .util import parse_bytes

KEEP_LIMIT = 64 << 20     # files up to this keep their bytes (batch input)
READ_CHUNK = 1 << 20
UPLOAD_FAULTS = ("upload_drop", "upload_lose")
FILE_MIME_OK = re.compile(
    r"^(image/(png|jpeg|webp|heic|heif|gif)|application/(json|jsonl|pdf|"
    r"octet-stream)|text/[a-z.+-]+|audio/[a-z0-9.+-]+|video/[a-z0-9.+-]+)$")

START_RE = re.compile(r"^(?P<prefix>.*?)/upload/(?P<version>v1beta|v1alpha|v1)"
                      r"/files$")
FILES_RE = re.compile(r"^(?P<prefix>.*?)/(?P<version>v1beta|v1alpha|v1)/files"
                      r"(?:/(?P<id>[^/:]+)(?P<download>:download)?)?$")


class Dropped(Exception):
    """The connection is to be reset (upload_drop)."""


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def new_id():
    return base64.b32encode(os.urandom(10)).decode().lower().rstrip("=")


class Upload:
    """One resumable upload session."""

    def __init__(self, meta, size, mime, prefix, version):
        self.meta = meta
        self.size = size
        self.mime = mime
        self.prefix = prefix
        self.version = version
        self.received = 0
        self.hash = hashlib.sha256()
        self.keep = bytearray() if size <= KEEP_LIMIT else None
        self.final = None
        self.lock = threading.Lock()


class FileStore:
    """Uploaded and generated files (metadata; small files keep bytes)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.files = {}       # id -> File dict
        self.data = {}        # id -> bytes (small uploads, generated files)
        self.producers = {}   # id -> callable yielding bytes (generated)
        self.uploads = {}     # upload_id -> Upload

    def reset(self):
        with self.lock:
            self.files.clear()
            self.data.clear()
            self.producers.clear()
            self.uploads.clear()

    def add(self, fid, record, data=None, producer=None):
        with self.lock:
            self.files[fid] = record
            if data is not None:
                self.data[fid] = data
            if producer is not None:
                self.producers[fid] = producer

    def get(self, fid):
        with self.lock:
            return self.files.get(fid)

    def bytes_of(self, fid):
        with self.lock:
            return self.data.get(fid)


def not_found(fid):
    # the real service answers 403 for a file that is missing or not yours
    return ApiError(403, "You do not have permission to access the File %s "
                    "or it may not exist." % fid, status="PERMISSION_DENIED")


def file_record(fid, display, mime, size, digest, base, version,
                source="UPLOADED"):
    now = time.time()
    rec = {"name": "files/" + fid, "mimeType": mime,
           "sizeBytes": str(size), "createTime": rfc3339(now),
           "updateTime": rfc3339(now),
           "expirationTime": rfc3339(now + 48 * 3600),
           "sha256Hash": base64.b64encode(digest).decode(),
           "uri": "%s/%s/files/%s" % (base, version, fid),
           "state": "ACTIVE", "source": source}
    if display:
        rec["displayName"] = display
    if source == "GENERATED":
        rec["downloadUri"] = "%s/%s/files/%s:download?alt=media" % (
            base, version, fid)
    return rec


class Files:
    """The Files API routes of the App."""

    def __init__(self, app):
        self.app = app
        self.store = FileStore()

    # --- routing ------------------------------------------------------------

    def route(self, ctx):
        """A callable answering ctx, or None when it is not a Files path."""
        m = START_RE.match(ctx.path)
        if m and ctx.method == "POST":
            if "upload_id" in ctx.query:
                return None       # chunks are streamed: see stream_route
            return lambda: self.start(ctx, m)
        m = FILES_RE.match(ctx.path)
        if not m:
            return None
        fid = m.group("id")
        if fid is None:
            if ctx.method == "GET":
                return lambda: self.list(ctx)
            if ctx.method == "POST":
                raise ApiError(400, "Upload the bytes through /upload/"
                               "%s/files." % m.group("version"),
                               status="INVALID_ARGUMENT")
            return None
        if m.group("download"):
            if ctx.method != "GET":
                return None
            return lambda: self.download(ctx, fid)
        if ctx.method == "GET":
            return lambda: self.get(fid)
        if ctx.method == "DELETE":
            return lambda: self.delete(fid)
        return None

    def streams(self, method, path, query):
        """Whether this request's body is read by the handler (chunks)."""
        return (method == "POST" and "upload_id" in query
                and START_RE.match(path) is not None)

    # --- handlers -----------------------------------------------------------

    def base_url(self, ctx):
        host = ctx.headers.get("host", "127.0.0.1")
        return "http://%s" % host

    def start(self, ctx, m):
        h = ctx.headers
        if h.get("x-goog-upload-protocol", "").lower() != "resumable":
            raise bad_request("Only the resumable upload protocol is served "
                              "here (X-Goog-Upload-Protocol: resumable).",
                              violation=False)
        if h.get("x-goog-upload-command", "").lower() != "start":
            raise bad_request("X-Goog-Upload-Command must be start.",
                              violation=False)
        try:
            size = int(h.get("x-goog-upload-header-content-length", ""))
        except ValueError:
            raise bad_request("X-Goog-Upload-Header-Content-Length is "
                              "required.", violation=False) from None
        body = self.app.json_body(ctx)
        meta = body.get("file") if isinstance(body, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        mime = (h.get("x-goog-upload-header-content-type")
                or meta.get("mimeType") or meta.get("mime_type") or "")
        if not FILE_MIME_OK.match(mime):
            raise bad_request("Unsupported MIME type: %s" % (mime or "(none)"),
                              violation=False)
        if size < 0 or size > 2 << 30:
            raise bad_request("File size %d is out of range (2 GB at most)."
                              % size, violation=False)
        uid = new_id() + new_id()
        up = Upload(meta, size, mime, m.group("prefix"), m.group("version"))
        with self.store.lock:
            self.store.uploads[uid] = up
        # A request that came through a path prefix (a gateway) gets the
        # upload URL the real service would send: a host the gateway does not
        # rewrite, which the client must replace by its own base URL.
        if m.group("prefix"):
            base = "https://upload.gateway.invalid"
        else:
            base = self.base_url(ctx)
        url = "%s/upload/%s/files?upload_id=%s&upload_protocol=resumable" % (
            base, m.group("version"), uid)
        return Reply(200, [], "text/plain; charset=utf-8", headers=[
            ("X-Goog-Upload-Status", "active"), ("X-Goog-Upload-URL", url),
            ("X-Goog-Upload-Control-URL", url),
            ("X-Goog-Upload-Chunk-Granularity", str(8 << 20))])

    def chunk(self, ctx, reader, rec):
        """A POST to an upload URL; reader streams its body."""
        uid = ctx.query.get("upload_id", "")
        with self.store.lock:
            up = self.store.uploads.get(uid)
        if up is None:
            reader.discard()
            raise ApiError(404, "No upload session %s." % uid,
                           status="NOT_FOUND")
        cmds = [c.strip().lower() for c in
                ctx.headers.get("x-goog-upload-command", "").split(",")]
        with up.lock:
            if up.final is not None:
                reader.discard()
                return self._final_reply(up)
            if cmds == ["query"]:
                reader.discard()
                return Reply(200, [], "text/plain; charset=utf-8", headers=[
                    ("X-Goog-Upload-Status", "active"),
                    ("X-Goog-Upload-Size-Received", str(up.received))])
            if not set(cmds) <= {"upload", "finalize"} or not cmds:
                reader.discard()
                raise bad_request("X-Goog-Upload-Command must be upload, "
                                  "finalize, 'upload, finalize' or query.",
                                  violation=False)
            try:
                offset = int(ctx.headers.get("x-goog-upload-offset", ""))
            except ValueError:
                reader.discard()
                raise bad_request("X-Goog-Upload-Offset is required.",
                                  violation=False) from None
            if offset != up.received:
                reader.discard()
                rec["error"] = "offset %d, received %d" % (offset, up.received)
                return Reply.error(ApiError(
                    400, "Invalid request. The upload offset %d does not "
                    "match the %d bytes received." % (offset, up.received),
                    headers=[("X-Goog-Upload-Status", "active"),
                             ("X-Goog-Upload-Size-Received",
                              str(up.received))]))
            fault = self.app.state.pop_fault_if(
                lambda f: f.name in UPLOAD_FAULTS) if "upload" in cmds \
                else None
            if fault:
                rec["fault"], rec["fault_arg"] = fault.name, fault.arg
            keep_max = None
            if fault:
                keep_max = parse_bytes(fault.arg, None)
                if keep_max is None:
                    keep_max = reader.length // 2
            got = self._receive(up, reader, keep_max,
                                drop=fault is not None and
                                fault.name == "upload_drop")
            rec["chunk_bytes"] = got
            if fault:          # upload_lose: the answer is lost
                return Reply.error(ApiError(503, "The service is currently "
                                            "unavailable."))
            if up.received > up.size:
                raise bad_request("Received %d bytes, more than the %d "
                                  "announced." % (up.received, up.size),
                                  violation=False)
            if "finalize" not in cmds:
                return Reply(200, [], "text/plain; charset=utf-8", headers=[
                    ("X-Goog-Upload-Status", "active"),
                    ("X-Goog-Upload-Size-Received", str(up.received))])
            if up.received != up.size:
                raise bad_request("Finalized after %d of %d bytes." % (
                    up.received, up.size), violation=False)
            fid = new_id()
            display = up.meta.get("displayName") or up.meta.get(
                "display_name")
            base = self.base_url(ctx) + (up.prefix or "")
            up.final = file_record(fid, display, up.mime, up.size,
                                   up.hash.digest(), base, up.version)
            self.store.add(fid, up.final,
                           data=bytes(up.keep) if up.keep is not None
                           else None)
            rec["file"] = up.final["name"]
            return self._final_reply(up)

    @staticmethod
    def _final_reply(up):
        return Reply(200, [json.dumps(
            {"file": up.final}).encode()], headers=[
            ("X-Goog-Upload-Status", "final")])

    @staticmethod
    def _receive(up, reader, keep_max, drop):
        """Read the chunk, hashing it; keep at most keep_max bytes of it."""
        buf = bytearray(READ_CHUNK)
        view = memoryview(buf)
        got = 0
        while True:
            n = reader.readinto(view)
            if n <= 0:
                break
            take = n if keep_max is None else max(0, min(n, keep_max - got))
            if take:
                up.hash.update(view[:take])
                if up.keep is not None:
                    up.keep += view[:take]
                up.received += take
            got += n
            if keep_max is not None and got >= keep_max and drop:
                raise Dropped()
        return got

    def get(self, fid):
        rec = self.store.get(fid)
        if rec is None:
            raise not_found(fid)
        return Reply.json(rec)

    def delete(self, fid):
        with self.store.lock:
            if self.store.files.pop(fid, None) is None:
                raise not_found(fid)
            self.store.data.pop(fid, None)
            self.store.producers.pop(fid, None)
        return Reply.json({})

    def list(self, ctx):
        try:
            size = int(ctx.query.get("pageSize", "10") or 10)
        except ValueError:
            raise bad_request("Invalid pageSize.", violation=False) from None
        size = max(1, min(size, 100))
        token = ctx.query.get("pageToken", "")
        with self.store.lock:
            recs = [r for r in self.store.files.values()
                    if r.get("source") == "UPLOADED"]
        recs.sort(key=lambda r: (r["createTime"], r["name"]), reverse=True)
        start = 0
        if token:
            try:
                start = int(base64.urlsafe_b64decode(token + "==").decode())
            except (ValueError, UnicodeDecodeError):
                raise bad_request("Invalid page token.",
                                  violation=False) from None
        page = recs[start:start + size]
        out = {}
        if page:
            out["files"] = page
        if start + size < len(recs):
            out["nextPageToken"] = base64.urlsafe_b64encode(
                str(start + size).encode()).decode().rstrip("=")
        return Reply.json(out)

    def download(self, ctx, fid):
        rec = self.store.get(fid)
        if rec is None:
            raise not_found(fid)
        if ctx.query.get("alt") != "media":
            return Reply.json(rec)
        if rec.get("source") != "GENERATED":
            raise bad_request("Only generated files can be downloaded.",
                              violation=False)
        with self.store.lock:
            producer = self.store.producers.get(fid)
            data = self.store.data.get(fid)
        if producer is not None:
            return producer()
        return Reply(200, [data or b""], "application/octet-stream")

    # --- references in generate requests -----------------------------------

    def auth(self, ctx):
        check_auth(ctx, self.app.cfg)

    @staticmethod
    def error_reply(err):
        return Reply.error(err)

    def check_references(self, req):
        """Every fileData.fileUri naming one of our files must exist."""
        for content in req.get("contents") or []:
            for part in content.get("parts") or []:
                uri = (part.get("fileData") or {}).get("fileUri")
                if isinstance(uri, str):
                    self.check_reference(uri)

    def check_reference(self, uri):
        """A fileData.fileUri naming one of our files must exist."""
        parts = urllib.parse.urlsplit(uri)
        m = re.search(r"/files/([^/:?]+)$", parts.path)
        if not m or parts.scheme not in ("http", "https"):
            return
        host = parts.hostname or ""
        if host in ("127.0.0.1", "localhost", "::1") or host.endswith(
                "generativelanguage.googleapis.com"):
            if self.store.get(m.group(1)) is None:
                raise not_found(m.group(1))
