"""Replies: JSON rendering with base64 blobs spliced in, the Reply the HTTP layer sends."""

import json
import re

from .errors import JSON_TYPE
from .util import random_id

class JsonBody:
    """Renders JSON with large base64 blobs spliced in as raw bytes.

    Blobs are referenced by placeholder strings so that a cached 30 MB
    base64 text is never re-escaped by the json module.
    """

    _NONCE = random_id(6)
    _SPLIT = re.compile(r"\\u0000NB%s:(\d+)\\u0000" % re.escape(_NONCE))

    def __init__(self):
        self.blobs = []

    def blob(self, data):
        """Placeholder for base64 bytes ``data``."""
        self.blobs.append(data)
        return "\x00NB%s:%d\x00" % (self._NONCE, len(self.blobs) - 1)

    def render(self, obj, compact=False):
        """List of byte pieces: JSON text with the blobs spliced in."""
        if compact:
            text = json.dumps(obj, ensure_ascii=False, separators=(",", ": "))
        else:
            text = json.dumps(obj, ensure_ascii=False, indent=2)
        chunks = self._SPLIT.split(text)
        pieces = []
        for i, chunk in enumerate(chunks):
            if i % 2:
                pieces.append(self.blobs[int(chunk)])
            elif chunk:
                pieces.append(chunk.encode("utf-8", "replace"))
        return pieces


def render_plain(obj):
    """Pretty JSON bytes (no blobs)."""
    return json.dumps(obj, ensure_ascii=False, indent=2).encode("utf-8",
                                                                "replace")


class Reply:
    """Everything the HTTP writer needs to send one answer."""

    def __init__(self, status, pieces, content_type=JSON_TYPE, headers=(),
                 stream=False):
        self.status = status
        self.pieces = pieces            # body pieces; events when stream
        self.content_type = content_type
        self.headers = list(headers)
        self.stream = stream            # chunked transfer, one chunk/event
        self.cut = None                 # ("truncate"|"reset", nbytes|None)
        self.stall = None               # (offset, seconds)
        self.trickle = None             # seconds the body is spread over
        self.close = False

    @classmethod
    def error(cls, err):
        return cls(err.code, [render_plain(err.body())], headers=err.headers)

    @classmethod
    def json(cls, obj, status=200):
        return cls(status, [json.dumps(obj).encode()])
