"""Small helpers shared by every module (parsing, base64, ids, the stop event)."""

import base64
import binascii
import hashlib
import json
import math
import os
import re
import threading

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def to_camel(name):
    """snake_case -> camelCase (camelCase names are returned unchanged)."""
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def to_snake(name):
    """camelCase -> snake_case, as Google prints field paths."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def json_preview(value, limit=60):
    """Short JSON rendering of a value for error messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_seconds(arg, default):
    """Parse a non-negative number of seconds (fractions allowed)."""
    try:
        value = float(arg)
    except (TypeError, ValueError):
        return default
    if not math.isfinite(value) or value < 0:
        return default
    return value


def parse_bytes(arg, default):
    """Parse a byte count such as ``1048576``, ``512K``, ``64M``, ``1G``."""
    if arg is None or str(arg).strip() == "":
        return default
    text = str(arg).strip().upper().rstrip("IB")
    mult = 1
    if text and text[-1] in "KMG":
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[text[-1]]
        text = text[:-1]
    try:
        value = int(float(text) * mult)
    except (TypeError, ValueError, OverflowError):
        return default
    return value if 0 < value <= (4 << 30) else default


def fmt_duration(seconds):
    """Protobuf Duration JSON (``"2s"``, ``"0.2s"``)."""
    if float(seconds).is_integer():
        return "%ds" % int(seconds)
    return ("%.3f" % seconds).rstrip("0") + "s"


def random_id(nbytes=16):
    """Random URL-safe id, like Google's responseId."""
    return base64.urlsafe_b64encode(os.urandom(nbytes)).decode().rstrip("=")


def decode_b64_lenient(text):
    """Decode standard or URL-safe base64 (padding optional).

    Returns bytes, or None when the text is not valid base64.  Whitespace,
    mixed alphabets and stray characters are rejected.
    """
    if not isinstance(text, str):
        return None
    if "-" in text or "_" in text:
        if "+" in text or "/" in text:
            return None
        text = text.translate(_URLSAFE_TO_STD)
    body = text.rstrip("=")
    if len(text) - len(body) > 2:
        return None
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    try:
        return binascii.a2b_base64(padded, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    except TypeError:               # Python < 3.11: no strict_mode
        if not _B64_RE.fullmatch(padded):
            return None
        return binascii.a2b_base64(padded)


_URLSAFE_TO_STD = str.maketrans("-_", "+/")
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class B64Memo:
    """Per-request cache of base64 decodes and digests.

    A request's image strings are decoded once even though the log summary,
    validation and the image seed all need them.  Keyed by object identity;
    the memo keeps the strings alive, so ids are not reused meanwhile.
    """

    def __init__(self):
        self.items = {}

    def decode(self, text):
        """decode_b64_lenient(text), memoised."""
        hit = self.items.get(id(text))
        if hit is None:
            hit = self.items[id(text)] = [text, decode_b64_lenient(text), None]
        return hit[1]

    def sha256(self, text):
        """Hex SHA-256 of the decoded bytes (None when not base64)."""
        data = self.decode(text)
        hit = self.items[id(text)]
        if hit[2] is None and data is not None:
            hit[2] = hashlib.sha256(data).hexdigest()
        return hit[2]


def sniff_image(data):
    """Return the MIME type of image bytes from their magic, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (
            b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1",
            b"msf1", b"avif"):
        return "image/heic"
    return None



STOP = threading.Event()     # set on SIGTERM/SIGINT; wakes every sleep
