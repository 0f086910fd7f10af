#!/usr/bin/env python3
"""nanobanana fake Gemini server.

A local stand-in for Google's Gemini native image generation API
(``models/{model}:generateContent`` and ``:streamGenerateContent``), used by
the nanobanana test suite, the offline demo, the benchmark harness and the
official-SDK interoperability test.  Python 3 standard library only.

It validates requests like the real service (unknown fields, roles, MIME
types, base64, per-model ratios and sizes, thought signatures, auth), answers
with real images (PNG for gemini-2.5-flash-image; JPEG bytes declared as
``image/png`` for the Gemini 3 models, as the real service does), streams
over SSE, and injects faults on demand (control queue or ``[[fault:NAME]]``
markers in the prompt).  See fake/README.md for the full contract.

It binds loopback addresses only.
"""

import argparse
import base64
import binascii
import collections
import hashlib
import http.server
import json
import math
import os
import random
import re
import signal
import socket
import socketserver
import ssl
import struct
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import zlib

# ---------------------------------------------------------------------------
# Protocol constants
# ---------------------------------------------------------------------------

TROUBLESHOOTING = "https://developers.generativeai.google/guide/troubleshooting"
MSG_INTERNAL = ("An internal error has occurred. Please retry or report in "
                + TROUBLESHOOTING)
MSG_BAD_IMAGE = ("Unable to process input image. Please retry or report in "
                 + TROUBLESHOOTING)
MSG_NO_CREDS = ("Method doesn't allow unregistered callers (callers without "
                "established identity). Please use API Key or other form of "
                "API consumer identity to call this API.")
MSG_BAD_KEY = "API key not valid. Please pass a valid API key."
MSG_UNAUTH = ("Request had invalid authentication credentials. Expected OAuth 2 "
              "access token, login cookie or other valid authentication "
              "credential.")
MSG_OVERLOADED = "The model is overloaded. Please try again later."
SKIP_SIGNATURE = "skip_thought_signature_validator"

STATUS_NAMES = {
    200: "OK", 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
    402: "RESOURCE_EXHAUSTED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 408: "DEADLINE_EXCEEDED", 409: "ABORTED",
    413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
    500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

RATIOS_10 = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9",
             "21:9"]
RATIOS_14 = RATIOS_10 + ["1:4", "4:1", "1:8", "8:1"]

# api-facts.md §2.1 pixel tables.  Ratio -> (w, h) per size.
_DIMS_2_5 = {
    "1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832),
    "3:4": (864, 1184), "4:3": (1184, 864), "4:5": (896, 1152),
    "5:4": (1152, 896), "9:16": (768, 1344), "16:9": (1344, 768),
    "21:9": (1536, 672),
}
_DIMS_3_1K = {
    "1:1": (1024, 1024), "1:4": (512, 2048), "1:8": (384, 3072),
    "2:3": (848, 1264), "3:2": (1264, 848), "3:4": (896, 1200),
    "4:1": (2048, 512), "4:3": (1200, 896), "4:5": (928, 1152),
    "5:4": (1152, 928), "8:1": (3072, 384), "9:16": (768, 1376),
    "16:9": (1376, 768), "21:9": (1584, 672),
}
_DIMS_3_512 = {
    "1:1": (512, 512), "1:4": (256, 1024), "1:8": (192, 1536),
    "2:3": (424, 632), "3:2": (632, 424), "3:4": (448, 600),
    "4:1": (1024, 256), "4:3": (600, 448), "4:5": (464, 576),
    "5:4": (576, 464), "8:1": (1536, 192), "9:16": (384, 688),
    "16:9": (688, 384),
    # The doc prints 792x168, an obvious typo (that is 33:7); we use 792x336.
    "21:9": (792, 336),
}


def _scaled(table, factor):
    """Return the 1K table scaled by an integer factor (2K = x2, 4K = x4)."""
    return {r: (w * factor, h * factor) for r, (w, h) in table.items()}


class ModelSpec:
    """What one image model accepts and how it answers."""

    def __init__(self, name, ratios, sizes, dims, image_tokens, max_images,
                 gemini3):
        self.name = name
        self.ratios = ratios          # accepted aspectRatio strings
        self.sizes = sizes            # accepted imageSize strings (None: none)
        self.dims = dims              # size -> ratio -> (w, h)
        self.image_tokens = image_tokens  # size -> output image tokens
        self.max_images = max_images  # max input images in user turns
        self.gemini3 = gemini3        # thinking, signatures, JPEG output


def _build_models():
    """Build the model table (preview and stable ids share the rules)."""
    pro_dims = {"1K": {r: _DIMS_3_1K[r] for r in RATIOS_10}}
    pro_dims["2K"] = _scaled(pro_dims["1K"], 2)
    pro_dims["4K"] = _scaled(pro_dims["1K"], 4)
    flash31_dims = {"512": dict(_DIMS_3_512), "1K": dict(_DIMS_3_1K),
                    "2K": _scaled(_DIMS_3_1K, 2), "4K": _scaled(_DIMS_3_1K, 4)}
    specs = [
        ModelSpec("gemini-2.5-flash-image", RATIOS_10, None,
                  {"1K": _DIMS_2_5}, {"1K": 1290}, 3, False),
        ModelSpec("gemini-3-pro-image-preview", RATIOS_10, ["1K", "2K", "4K"],
                  pro_dims, {"1K": 1120, "2K": 1120, "4K": 2000}, 14, True),
        ModelSpec("gemini-3.1-flash-image-preview", RATIOS_14,
                  ["512", "1K", "2K", "4K"], flash31_dims,
                  {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520}, 14, True),
    ]
    models = {s.name: s for s in specs}
    models["gemini-3-pro-image"] = models["gemini-3-pro-image-preview"]
    models["gemini-3.1-flash-image"] = models["gemini-3.1-flash-image-preview"]
    return models


MODELS = _build_models()

INPUT_MIME_TYPES = {"image/png", "image/jpeg", "image/webp", "image/heic",
                    "image/heif"}

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


# ---------------------------------------------------------------------------
# Images: a deterministic pattern, a PNG encoder, a baseline JPEG encoder and
# an incompressible "noise" PNG, plus a cache.
# ---------------------------------------------------------------------------


class Pattern:
    """A deterministic picture derived from a seed string.

    The picture is made of flat 8x8 blocks: a two-axis gradient (separable,
    so the JPEG encoder can reuse one row of entropy code for every row) with
    a bright disc.  Colours and disc position come from SHA-256 of the seed.
    """

    def __init__(self, seed):
        h = hashlib.sha256(seed.encode("utf-8", "replace")).digest()
        self.base = [20 + h[i] % 56 for i in range(3)]            # 20..75
        self.amp_u = [h[3 + i] % 91 for i in range(3)]            # 0..90
        self.amp_v = [h[6 + i] % 91 for i in range(3)]
        self.flip_u = [bool(h[9 + i] & 1) for i in range(3)]
        self.flip_v = [bool(h[12 + i] & 1) for i in range(3)]
        self.cx = 0.25 + h[15] / 255 * 0.5
        self.cy = 0.25 + h[16] / 255 * 0.5
        self.radius = 0.12 + h[17] / 255 * 0.13
        disc = [160 + h[18] % 96, 150 + h[19] % 100, 40 + h[20] % 120]
        rot = h[21] % 3
        self.disc_rgb = tuple(disc[rot:] + disc[:rot])

    def _terms(self, n, amp, flip):
        """Per-block RGB contribution along one axis (n blocks)."""
        out = []
        for k in range(n):
            t = k / (n - 1) if n > 1 else 0.0
            out.append(tuple(a * ((1 - t) if f else t)
                             for a, f in zip(amp, flip)))
        return out

    def u_terms(self, bw):
        """Horizontal RGB terms (floats) for bw block columns."""
        return self._terms(bw, self.amp_u, self.flip_u)

    def v_terms(self, bh):
        """Vertical RGB terms (floats, base included) for bh block rows."""
        return [tuple(b + c for b, c in zip(self.base, t))
                for t in self._terms(bh, self.amp_v, self.flip_v)]

    def disc_span(self, j, bw, bh):
        """Block columns (x0, x1) covered by the disc in block row j."""
        scale = min(bw, bh)
        cxb, cyb, rb = self.cx * bw, self.cy * bh, self.radius * scale
        dy = j + 0.5 - cyb
        if dy * dy > rb * rb:
            return None
        half = math.sqrt(rb * rb - dy * dy)
        x0 = max(0, math.ceil(cxb - half - 0.5))
        x1 = min(bw - 1, math.floor(cxb + half - 0.5))
        return (x0, x1) if x0 <= x1 else None


def rgb_to_ycc_linear(rgb):
    """Linear part of the JFIF RGB->YCbCr transform (no +128 offsets)."""
    r, g, b = rgb
    return (0.299 * r + 0.587 * g + 0.114 * b,
            -0.168736 * r - 0.331264 * g + 0.5 * b,
            0.5 * r - 0.418688 * g - 0.081312 * b)


def _png_chunk(kind, payload):
    """One PNG chunk (length, type, data, CRC)."""
    crc = zlib.crc32(payload, zlib.crc32(kind))
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(
        ">I", crc)


def _png_ihdr(width, height):
    return _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0,
                                           0, 0))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_png(width, height, pattern):
    """Encode the pattern as an 8-bit RGB PNG of exactly width x height."""
    bw, bh = -(-width // 8), -(-height // 8)
    us, vs = pattern.u_terms(bw), pattern.v_terms(bh)
    disc_px = bytes(pattern.disc_rgb) * 8
    rows = []
    for j in range(bh):
        v = vs[j]
        blocks = [bytes(min(255, max(0, round(v[c] + u[c]))) for c in range(3))
                  * 8 for u in us]
        span = pattern.disc_span(j, bw, bh)
        if span:
            blocks[span[0]:span[1] + 1] = [disc_px] * (span[1] - span[0] + 1)
        line = b"\x00" + b"".join(blocks)[:width * 3]
        rows.append(line * min(8, height - 8 * j))
    idat = zlib.compress(b"".join(rows), 6)
    return b"".join([PNG_SIGNATURE, _png_ihdr(width, height),
                     _png_chunk(b"IDAT", idat), _png_chunk(b"IEND", b"")])


# --- baseline JPEG (DC-only, flat 8x8 blocks) ------------------------------

# Standard luminance DC table (ITU T.81 Annex K.3): code lengths 1..16, values.
_DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
_DC_VALS = list(range(12))
# AC table holding only EOB (symbol 0x00, one 1-bit code "0"): every block is
# flat, so every block's AC part is just EOB.
_AC_BITS = [1] + [0] * 15
_AC_VALS = [0]


def _huffman_codes(bits, vals):
    """Canonical Huffman codes (symbol -> bit string) from BITS/HUFFVAL."""
    codes, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[vals[k]] = format(code, "0%db" % length)
            code += 1
            k += 1
        code <<= 1
    return codes


def _dc_code_table():
    """Bit string for every DC difference -255..255, followed by AC EOB."""
    dc = _huffman_codes(_DC_BITS, _DC_VALS)
    eob = _huffman_codes(_AC_BITS, _AC_VALS)[0]
    table = {}
    for diff in range(-255, 256):
        cat = abs(diff).bit_length()
        extra = ""
        if cat:
            val = diff if diff > 0 else diff + (1 << cat) - 1
            extra = format(val, "0%db" % cat)
        table[diff] = dc[cat] + extra + eob
    return table


_DC_CODES = _dc_code_table()


def _jpeg_headers(width, height):
    """SOI, APP0 (JFIF), DQT, SOF0, DHT and SOS segments."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\x00" + bytes([8] * 64)   # DC step 8: DC value = level - 128
    sof = struct.pack(">BHHB", 8, height, width, 3) + bytes(
        [1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0])
    dht = (b"\x00" + bytes(_DC_BITS) + bytes(_DC_VALS)
           + b"\x10" + bytes(_AC_BITS) + bytes(_AC_VALS))
    sos = bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0])

    def seg(marker, payload):
        size = struct.pack(">H", len(payload) + 2)
        return b"\xff" + bytes([marker]) + size + payload
    return b"".join([b"\xff\xd8", seg(0xE0, app0), seg(0xDB, dqt),
                     seg(0xC0, sof), seg(0xC4, dht), seg(0xDA, sos)])


def encode_jpeg(width, height, pattern):
    """Encode the pattern as a baseline JFIF JPEG of exactly width x height.

    Every 8x8 block is flat, so only DC coefficients are coded (AC = EOB).
    Because the gradient is separable, DC differences inside a block row are
    the same for every row: the entropy code of one row is built once and
    sliced; only the first block and the disc boundaries are coded per row.
    """
    bw, bh = -(-width // 8), -(-height // 8)
    ucols = [rgb_to_ycc_linear(t) for t in pattern.u_terms(bw)]
    vrows = [rgb_to_ycc_linear(t) for t in pattern.v_terms(bh)]
    yu = [tuple(round(c) for c in t) for t in ucols]
    yv = [(round(t[0]), round(t[1] + 128), round(t[2] + 128)) for t in vrows]
    dl = rgb_to_ycc_linear(pattern.disc_rgb)
    disc = (round(dl[0]), round(dl[1] + 128), round(dl[2] + 128))
    codes = _DC_CODES

    def code3(value, prev):
        return (codes[value[0] - prev[0]] + codes[value[1] - prev[1]]
                + codes[value[2] - prev[2]])

    row_codes = [code3(yu[k], yu[k - 1]) for k in range(1, bw)]
    offsets = [0] * (bw + 1)
    for k in range(2, bw + 1):
        offsets[k] = offsets[k - 1] + len(row_codes[k - 2])
    row_tail = "".join(row_codes)
    zero_run = codes[0] * 3

    out = []
    prev = (128, 128, 128)   # DC predictor 0 == level 128
    for j in range(bh):
        vj = yv[j]

        def grad(i, vj=vj):
            u = yu[i]
            return (u[0] + vj[0], u[1] + vj[1], u[2] + vj[2])
        span = pattern.disc_span(j, bw, bh)
        if span is None:
            segments = [(0, bw - 1, False)]
        else:
            segments = [s for s in ((0, span[0] - 1, False),
                                    (span[0], span[1], True),
                                    (span[1] + 1, bw - 1, False))
                        if s[0] <= s[1]]
        for a, b, is_disc in segments:
            first = disc if is_disc else grad(a)
            out.append(code3(first, prev))
            if is_disc:
                out.append(zero_run * (b - a))
                prev = disc
            else:
                out.append(row_tail[offsets[a + 1]:offsets[b + 1]])
                prev = grad(b)
    bits = "".join(out)
    bits += "1" * (-len(bits) % 8)
    scan = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
    scan = scan.replace(b"\xff", b"\xff\x00")
    return _jpeg_headers(width, height) + scan + b"\xff\xd9"


# --- incompressible PNG -----------------------------------------------------

def _stored_deflate(raw):
    """zlib stream of raw bytes in stored (level 0) deflate blocks."""
    view = memoryview(raw)
    pieces = [b"\x78\x01"]
    total = len(raw)
    pos = 0
    while True:
        n = min(65535, total - pos)
        last = pos + n >= total
        pieces.append(struct.pack("<BHH", 1 if last else 0, n, n ^ 0xFFFF))
        pieces.append(view[pos:pos + n])
        pos += n
        if last:
            break
    pieces.append(struct.pack(">I", zlib.adler32(raw)))
    return pieces


def noise_png_size(width, height):
    """Exact file size of a noise PNG (without padding chunk)."""
    raw = height * (3 * width + 1)
    blocks = max(1, -(-raw // 65535))
    return 8 + 25 + 12 + (2 + raw + 5 * blocks + 4) + 12


def encode_noise_png(target, seed):
    """Incompressible RGB PNG of exactly ``target`` bytes when possible.

    Random pixel bytes (deterministic from ``seed``) in stored zlib blocks;
    width 1024 (smaller for small targets); height chosen to fit, and a
    private ancillary chunk ``nbPd`` of random bytes pads to the exact size.
    """
    rng = random.Random(seed)
    width = 1024 if target >= 3 * 1024 * 64 else max(
        1, int(math.sqrt(max(1, target) / 3)))
    row = 3 * width + 1
    height = max(1, (target - noise_png_size(width, 0)) // (row + 1))
    while height > 1 and noise_png_size(width, height) > target:
        height -= 1
    pad = target - noise_png_size(width, height)
    if 0 < pad < 12 and height > 1:
        height -= 1
        pad = target - noise_png_size(width, height)
    raw = bytearray(rng.randbytes(height * row))
    raw[0::row] = bytes(height)               # filter type 0 on every row
    zpieces = _stored_deflate(raw)
    zlen = sum(len(p) for p in zpieces)
    crc = zlib.crc32(b"IDAT")
    for piece in zpieces:
        crc = zlib.crc32(piece, crc)
    pieces = [PNG_SIGNATURE, _png_ihdr(width, height),
              struct.pack(">I", zlen) + b"IDAT"] + zpieces
    pieces.append(struct.pack(">I", crc))
    if pad >= 12:
        pieces.append(_png_chunk(b"nbPd", rng.randbytes(pad - 12)))
    pieces.append(_png_chunk(b"IEND", b""))
    return b"".join(pieces), width, height


class Image:
    """An encoded image with its base64 text and digest (immutable)."""

    __slots__ = ("data", "b64", "sha256", "width", "height", "mime")

    def __init__(self, data, width, height, mime):
        self.data = data
        self.b64 = binascii.b2a_base64(data, newline=False)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.width = width
        self.height = height
        self.mime = mime

    @property
    def size(self):
        return len(self.data) + len(self.b64)


class ImageCache:
    """Thread-safe LRU cache of images, bounded in bytes.

    Concurrent requests for the same key wait for the first builder instead
    of encoding the same picture several times.
    """

    def __init__(self, max_bytes=1 << 30):
        self.max_bytes = max_bytes
        self.items = collections.OrderedDict()
        self.total = 0
        self.lock = threading.Lock()
        self.building = {}

    def get(self, key, build):
        """Return the cached image for key, building it with build()."""
        while True:
            with self.lock:
                if key in self.items:
                    self.items.move_to_end(key)
                    return self.items[key]
                event = self.building.get(key)
                if event is None:
                    event = self.building[key] = threading.Event()
                    break
            event.wait()
        try:
            image = build()
            with self.lock:
                self.items[key] = image
                self.total += image.size
                while self.total > self.max_bytes and len(self.items) > 1:
                    _, old = self.items.popitem(last=False)
                    self.total -= old.size
            return image
        finally:
            with self.lock:
                self.building.pop(key, None)
            event.set()


IMAGES = ImageCache()


def pattern_image(kind, width, height, seed):
    """Cached gradient image: kind "png" or "jpeg"."""
    def build():
        pat = Pattern(seed)
        if kind == "png":
            return Image(encode_png(width, height, pat), width, height,
                         "image/png")
        return Image(encode_jpeg(width, height, pat), width, height,
                     "image/jpeg")
    return IMAGES.get((kind, width, height, seed), build)


def noise_image(target, seed):
    """Cached incompressible PNG of about ``target`` bytes."""
    def build():
        data, width, height = encode_noise_png(target, seed)
        return Image(data, width, height, "image/png")
    return IMAGES.get(("noise", target, seed), build)


# ---------------------------------------------------------------------------
# Google-shaped errors
# ---------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer: HTTP code, Google status name, message, details."""

    def __init__(self, code, message, status=None, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_NAMES.get(code, "UNKNOWN")
        self.details = details
        self.headers = headers or []

    def body(self):
        """The ``{"error": {...}}`` object."""
        err = {"code": self.code, "message": self.message,
               "status": self.status}
        if self.details:
            err["details"] = self.details
        return {"error": err}


def bad_request(message, field=None, violation=True):
    """400 INVALID_ARGUMENT, optionally with a BadRequest field violation."""
    details = None
    if violation:
        fv = {"description": message}
        if field:
            fv = {"field": field, "description": message}
        details = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [fv]}]
    return ApiError(400, message, details=details)


def unknown_field(name, path):
    """Unknown JSON field, worded as Google's JSON->proto parser does."""
    where = " at '%s'" % path if path else ""
    return bad_request('Invalid JSON payload received. Unknown name "%s"%s: '
                       "Cannot find field." % (name, where), path or None)


# ---------------------------------------------------------------------------
# Request schema (JSON -> camelCase, unknown names and JSON types checked)
# ---------------------------------------------------------------------------

PROTO_NS = "type.googleapis.com/google.ai.generativelanguage.v1beta."


class F:
    """A field in the request schema."""

    def __init__(self, kind, fields=None, repeated=False, msg=None):
        self.kind = kind          # string|bool|int|float|enum|message|any
        self.fields = fields      # for messages: dict of camelName -> F
        self.repeated = repeated
        self.msg = msg            # proto message name, for messages


STR, BOOL, INT, NUM, ENUM, ANY = (F("string"), F("bool"), F("int"),
                                  F("float"), F("enum"), F("any"))

BLOB = {"mimeType": STR, "data": F("bytes"), "displayName": STR}
FILE_DATA = {"mimeType": STR, "fileUri": STR, "displayName": STR}
PART_DATA_FIELDS = ("text", "inlineData", "fileData", "functionCall",
                    "functionResponse", "executableCode",
                    "codeExecutionResult")
PART = {
    "text": STR, "inlineData": F("message", BLOB, msg="Blob"),
    "fileData": F("message", FILE_DATA, msg="FileData"), "thought": BOOL,
    "thoughtSignature": F("bytes"), "functionCall": ANY,
    "functionResponse": ANY, "executableCode": ANY,
    "codeExecutionResult": ANY, "videoMetadata": ANY, "partMetadata": ANY,
    "mediaResolution": ANY,
}
CONTENT = {"role": STR, "parts": F("message", PART, True, "Part")}
IMAGE_CONFIG = {"aspectRatio": STR, "imageSize": STR}
THINKING_CONFIG = {"includeThoughts": BOOL, "thinkingBudget": INT,
                   "thinkingLevel": ENUM}
GENERATION_CONFIG = {
    "stopSequences": F("string", repeated=True), "responseMimeType": STR,
    "responseSchema": ANY, "responseJsonSchema": ANY,
    "responseModalities": F("enum", repeated=True), "candidateCount": INT,
    "maxOutputTokens": INT, "temperature": NUM, "topP": NUM, "topK": INT,
    "seed": INT, "presencePenalty": NUM, "frequencyPenalty": NUM,
    "responseLogprobs": BOOL, "logprobs": INT,
    "enableEnhancedCivicAnswers": BOOL, "speechConfig": ANY,
    "thinkingConfig": F("message", THINKING_CONFIG, msg="ThinkingConfig"),
    "imageConfig": F("message", IMAGE_CONFIG, msg="ImageConfig"),
    "mediaResolution": ENUM,
}
REQUEST = {
    "contents": F("message", CONTENT, True, "Content"),
    "systemInstruction": F("message", CONTENT, msg="Content"),
    "safetySettings": F("any", repeated=True),
    "tools": F("any", repeated=True),
    "toolConfig": ANY, "cachedContent": STR,
    "generationConfig": F("message", GENERATION_CONFIG,
                          msg="GenerationConfig"),
    "serviceTier": ANY, "labels": ANY,
}

_SCALAR_TYPES = {"string": "TYPE_STRING", "bool": "TYPE_BOOL",
                 "int": "TYPE_INT32", "float": "TYPE_FLOAT",
                 "enum": "TYPE_ENUM", "bytes": "TYPE_BYTES"}


def _scalar_ok(kind, value):
    """Whether a JSON scalar fits a proto scalar kind (proto3 JSON rules)."""
    if kind in ("string", "bytes"):
        return isinstance(value, str)
    if kind == "enum":
        return isinstance(value, (str, int)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "int":
        if isinstance(value, int):
            return -2 ** 63 <= value < 2 ** 64
        if isinstance(value, float):
            return value.is_integer()
        return isinstance(value, str) and re.fullmatch(r"-?\d{1,19}",
                                                       value) is not None
    if kind == "float":
        if isinstance(value, (int, float)):
            return True
        if isinstance(value, str):
            try:
                float(value)
                return True
            except ValueError:
                return value in ("NaN", "Infinity", "-Infinity")
    return False


def normalize(obj, fields, path, msg):
    """Check a JSON object against a message schema; return it camelCased.

    Raises ApiError for the first unknown name or JSON type mismatch, in
    document order, with Google's wording.  ``null`` values are dropped
    (proto3 treats them as unset).  Free-form fields (``any``) are kept as
    they are.
    """
    out = {}
    for key, value in obj.items():
        name = to_camel(key)
        spec = fields.get(name)
        if spec is None:
            raise unknown_field(key, path)
        if value is None:
            continue
        fpath = (path + "." if path else "") + to_snake(name)
        out[name] = _normalize_value(key, value, spec, path, fpath)
    if fields is PART:
        _check_oneof(out, path)
    return out


def _normalize_value(key, value, spec, path, fpath):
    """Normalise one field value (see normalize)."""
    where = " at '%s'" % path if path else ""
    if spec.repeated:
        if not isinstance(value, list):
            raise _bad_value(spec, fpath, value)
        return [_normalize_item(key, item, spec, path, "%s[%d]" % (fpath, i))
                for i, item in enumerate(value)]
    if isinstance(value, list) and spec.kind != "any":
        raise bad_request('Invalid JSON payload received. Unknown name "%s"%s:'
                          " Proto field is not repeating, cannot start list."
                          % (key, where), path or None)
    return _normalize_item(key, value, spec, path, fpath)


def _normalize_item(key, value, spec, path, fpath):
    """Normalise a single (non-list) value of a field."""
    if spec.kind == "any":
        return value
    if spec.kind == "message":
        if not isinstance(value, dict):
            raise _bad_value(spec, fpath, value)
        return normalize(value, spec.fields, fpath, spec.msg)
    if isinstance(value, dict):
        where = " at '%s'" % path if path else ""
        raise bad_request('Invalid JSON payload received. Unknown name "%s"%s:'
                          " Starting an object on a scalar field."
                          % (key, where), path or None)
    if value is None or not _scalar_ok(spec.kind, value):
        raise _bad_value(spec, fpath, value)
    return value


def _bad_value(spec, fpath, value):
    """``Invalid value at 'PATH' (TYPE), VALUE``."""
    kind = (PROTO_NS + spec.msg if spec.kind == "message"
            else _SCALAR_TYPES.get(spec.kind, "TYPE_MESSAGE"))
    return bad_request("Invalid value at '%s' (%s), %s"
                       % (fpath, kind, json_preview(value)), fpath)


def _check_oneof(part, path):
    """A part may set only one member of the ``data`` oneof."""
    seen = [k for k in PART_DATA_FIELDS if k in part]
    if len(seen) > 1:
        raise bad_request("Invalid JSON payload received. Oneof field 'data' "
                          "is already set. Cannot set '%s'" % seen[1], path)


# ---------------------------------------------------------------------------
# Semantic validation of a generateContent request
# ---------------------------------------------------------------------------


class Plan:
    """What a validated request asks for (used to build the answer)."""

    def __init__(self):
        self.model = None            # ModelSpec
        self.model_id = ""           # as requested in the path
        self.ratio = "1:1"
        self.size = "1K"
        self.width = self.height = 0
        self.want_text = True
        self.want_image = True
        self.include_thoughts = False
        self.prompt = ""             # text of the last user turn
        self.input_images = 0        # inline images in all turns
        self.input_images_user = 0
        self.text_chars = 0
        self.seed = ""


def validate(req, spec, model_id, memo=None):
    """Validate a normalised request, in the documented order.

    Returns a Plan or raises ApiError (first failure wins).
    """
    memo = memo or B64Memo()
    plan = Plan()
    plan.model, plan.model_id = spec, model_id
    contents = req.get("contents") or []
    _check_contents(contents)
    _check_inline_data(contents, plan, memo)
    _check_image_count(contents, spec, plan)
    gen = req.get("generationConfig") or {}
    image_cfg = gen.get("imageConfig") or {}
    thinking = gen.get("thinkingConfig")
    try:
        count = int(float(gen.get("candidateCount", 1)))
    except (TypeError, ValueError):
        count = 1
    if count > 1:
        raise bad_request("Multiple candidates is not enabled for models/%s"
                          % model_id, violation=False)
    if not spec.gemini3:
        _check_flash25(req, thinking, image_cfg, model_id)
    else:
        _check_thinking_level(thinking, spec)
    _choose_output(image_cfg, spec, model_id, plan)
    _check_modalities(gen.get("responseModalities"), plan)
    if spec.gemini3:
        plan.include_thoughts = bool((thinking or {}).get("includeThoughts"))
        _check_signatures(contents)
    _describe_prompt(contents, plan, memo)
    return plan


def _check_contents(contents):
    """contents present; roles valid; every content has parts."""
    if not contents:
        raise bad_request("* GenerateContentRequest.contents: contents is not "
                          "specified\n", violation=False)
    for content in contents:
        role = content.get("role")
        if role in (None, "") and len(contents) == 1:
            continue
        if role not in ("user", "model"):
            raise bad_request("Please use a valid role: user, model.",
                              violation=False)
    for i, content in enumerate(contents):
        parts = content.get("parts") or []
        if not parts:
            raise bad_request("* GenerateContentRequest.contents[%d].parts: "
                              "contents.parts must not be empty.\n" % i,
                              violation=False)
        for j, part in enumerate(parts):
            if not any(k in part for k in PART_DATA_FIELDS):
                raise bad_request(
                    "* GenerateContentRequest.contents[%d].parts[%d].data: "
                    "required oneof field 'data' must have one initialized "
                    "field\n" % (i, j), violation=False)


def _check_inline_data(contents, plan, memo):
    """MIME type, base64 and image magic of every inline image."""
    for i, content in enumerate(contents):
        for j, part in enumerate(content.get("parts") or []):
            blob = part.get("inlineData")
            if blob is None:
                continue
            mime = str(blob.get("mimeType", ""))
            if mime.lower() not in INPUT_MIME_TYPES:
                raise bad_request("Unsupported MIME type: %s" % mime,
                                  violation=False)
            text = blob.get("data", "")
            data = memo.decode(text)
            if data is None:
                field = "contents[%d].parts[%d].inline_data.data" % (i, j)
                raise bad_request(
                    "Invalid value at '%s' (TYPE_BYTES), Base64 decoding "
                    'failed for "%s"' % (field, text[:20]), field)
            if sniff_image(data) is None:
                raise bad_request(MSG_BAD_IMAGE, violation=False)
            plan.input_images += 1


def _check_image_count(contents, spec, plan):
    """At most spec.max_images images in user turns (our wording)."""
    count = 0
    for content in contents:
        if content.get("role", "user") in ("user", None, ""):
            count += sum(1 for p in content.get("parts") or []
                         if "inlineData" in p or "fileData" in p)
    plan.input_images_user = count
    if count > spec.max_images:
        raise bad_request("Too many images in the request: %d. The maximum "
                          "is %d." % (count, spec.max_images), violation=False)


def _check_flash25(req, thinking, image_cfg, model_id):
    """gemini-2.5-flash-image: no system instruction, thinking or size."""
    if "systemInstruction" in req:
        raise bad_request("Developer instruction is not enabled for models/%s"
                          % model_id, violation=False)
    if thinking is not None:
        raise bad_request("Thinking is not enabled for models/%s" % model_id,
                          violation=False)
    if "imageSize" in image_cfg:
        raise ApiError(500, MSG_INTERNAL)


def _check_thinking_level(thinking, spec):
    """3.1 Flash Image takes thinkingLevel minimal or high only."""
    level = (thinking or {}).get("thinkingLevel")
    if level is None or "3.1" not in spec.name:
        return
    if str(level).upper() not in ("MINIMAL", "HIGH"):
        raise bad_request("Thinking level %s is not supported for this model. "
                          "Please retry with other thinking level."
                          % str(level).upper(), violation=False)


def _choose_output(image_cfg, spec, model_id, plan):
    """Validate aspectRatio/imageSize and pick the output pixel size."""
    ratio = image_cfg.get("aspectRatio")
    if ratio is not None and ratio not in spec.ratios:
        raise bad_request("Unsupported aspect ratio: %s for model %s."
                          % (ratio, model_id), violation=False)
    size = image_cfg.get("imageSize")
    if size is not None and spec.sizes is not None and size not in spec.sizes:
        raise bad_request("Unsupported image size: %s for model %s."
                          % (size, model_id), violation=False)
    plan.ratio = ratio or "1:1"
    plan.size = size if spec.sizes else "1K"
    plan.size = plan.size or "1K"
    plan.width, plan.height = spec.dims[plan.size][plan.ratio]


def _check_modalities(modalities, plan):
    """responseModalities: TEXT/IMAGE, case-insensitive."""
    if not modalities:
        return
    wanted = set()
    for i, value in enumerate(modalities):
        name = str(value).upper()
        if name not in ("TEXT", "IMAGE", "AUDIO", "VIDEO",
                        "MODALITY_UNSPECIFIED"):
            field = "generation_config.response_modalities[%d]" % i
            raise bad_request("Invalid value at '%s' (%sGenerationConfig."
                              "Modality), %s" % (field, PROTO_NS,
                                                 json_preview(value)), field)
        if name in ("AUDIO", "VIDEO"):
            raise bad_request("Model does not support the requested response "
                              "modalities: %s" % name.lower(), violation=False)
        wanted.add(name)
    plan.want_text = "TEXT" in wanted
    plan.want_image = "IMAGE" in wanted
    if not wanted & {"TEXT", "IMAGE"}:
        plan.want_text, plan.want_image = True, True


def _check_signatures(contents):
    """Replayed model turns must carry signatures this process issued."""
    for n, content in enumerate(contents, 1):
        if content.get("role") != "model":
            continue
        for m, part in enumerate(content.get("parts") or [], 1):
            sig = part.get("thoughtSignature")
            if ("inlineData" in part and not part.get("thought")
                    and not sig):
                raise bad_request("Image part is missing a thought_signature "
                                  "in content position %d, part position %d."
                                  % (n, m), violation=False)
            if sig and sig != SKIP_SIGNATURE and not SIGNATURES.known(sig):
                raise bad_request("Thought signature is not valid.",
                                  violation=False)


def _describe_prompt(contents, plan, memo):
    """Prompt text (last user turn), token inputs and the image seed."""
    last_user = None
    for content in contents:
        if content.get("role", "user") in ("user", None, ""):
            last_user = content
        for part in content.get("parts") or []:
            if isinstance(part.get("text"), str):
                plan.text_chars += len(part["text"])
    texts, digests = [], []
    for part in (last_user or {}).get("parts") or []:
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        blob = part.get("inlineData")
        if blob is not None:
            digests.append(memo.sha256(blob.get("data", "")) or "")
    plan.prompt = "\n".join(texts)
    plan.seed = "|".join([plan.model.name, plan.ratio, plan.size,
                          plan.prompt] + digests)


# ---------------------------------------------------------------------------
# Shared state: request log, fault queue, issued thought signatures
# ---------------------------------------------------------------------------


class Signatures:
    """Thought signatures issued by this process (bounded, thread-safe)."""

    def __init__(self, limit=1_000_000):
        self.items = collections.OrderedDict()
        self.limit = limit
        self.lock = threading.Lock()

    def issue(self):
        """A new opaque signature (base64 of 48 random bytes)."""
        sig = base64.b64encode(os.urandom(48)).decode()
        with self.lock:
            self.items[sig] = True
            if len(self.items) > self.limit:
                self.items.popitem(last=False)
        return sig

    def known(self, sig):
        with self.lock:
            return sig in self.items


SIGNATURES = Signatures()


class State:
    """Request log and fault queue, shared by all handler threads."""

    def __init__(self, record=True):
        self.record = record
        self.lock = threading.Lock()
        self.log = []
        self.faults = collections.deque()
        self.seq = 0

    def add_record(self, rec):
        """Append a record when its request arrives (filled in later)."""
        if not self.record:
            return
        with self.lock:
            self.seq += 1
            rec["seq"] = self.seq
            self.log.append(rec)

    def records(self):
        """Shallow copies: handler threads replace values, never add keys."""
        with self.lock:
            return [dict(r) for r in self.log]

    def last(self):
        with self.lock:
            return dict(self.log[-1]) if self.log else None

    def reset(self):
        with self.lock:
            self.log.clear()
            self.faults.clear()

    def push_faults(self, faults):
        with self.lock:
            self.faults.extend(faults)
            return len(self.faults)

    def pop_fault(self):
        with self.lock:
            return self.faults.popleft() if self.faults else None

    def queued(self):
        with self.lock:
            return list(self.faults)


def summarize_body(body, memo):
    """Copy of a request body with every inlineData.data summarised."""
    if isinstance(body, list):
        return [summarize_body(v, memo) for v in body]
    if not isinstance(body, dict):
        return body
    out = {}
    for key, value in body.items():
        if (to_camel(key) == "inlineData" and isinstance(value, dict)):
            value = dict(value)
            if isinstance(value.get("data"), str):
                text = value["data"]
                data = memo.decode(text)
                value["data"] = ({"sha256": memo.sha256(text),
                                  "bytes": len(data), "b64_chars": len(text)}
                                 if data is not None else
                                 {"invalid": True, "b64_chars": len(text),
                                  "head": text[:40]})
            out[key] = value
        else:
            out[key] = summarize_body(value, memo)
    return out


# ---------------------------------------------------------------------------
# Answers: parts, usage, faults, rendering
# ---------------------------------------------------------------------------

JSON_TYPE = "application/json; charset=UTF-8"
SSE_TYPE = "text/event-stream"
FINISH_MESSAGE_SAFETY = (
    "Unable to show the generated image. The generated image may violate "
    "Google's Generative AI Prohibited Use policy. You will not be charged "
    "for blocked images. Try rephrasing the prompt. If you think this was a "
    "mistake, send feedback. Support code: 42876398")
FINISH_MESSAGE_PROHIBITED = (
    "The model output could not be generated. This output contains "
    "sensitive words that violate Google's Responsible AI practices. Try "
    "rephrasing the prompt. Support code: 42876398")
HTML_502 = """<!DOCTYPE html>
<html lang=en>
  <meta charset=utf-8>
  <meta name=viewport content="initial-scale=1, minimum-scale=1, width=device-width">
  <title>Error 502 (Server Error)!!1</title>
  <p><b>502.</b> <ins>That\u2019s an error.</ins>
  <p>The server encountered a temporary error and could not complete your request.<p>Please try again in 30 seconds.  <ins>That\u2019s all we know.</ins>
"""

# name -> one-line description (also served by GET /_nb/faults).
FAULTS = {
    "429": "429 RESOURCE_EXHAUSTED + QuotaFailure + RetryInfo "
           "(ARG: delay s, default 2)",
    "500": "500 INTERNAL",
    "503": "503 UNAVAILABLE 'The model is overloaded...'",
    "503_retry_after": "503 UNAVAILABLE + header Retry-After: ARG "
                       "(default 1)",
    "image_safety": "200, candidate without parts, IMAGE_SAFETY",
    "prohibited": "200, candidate without parts, IMAGE_PROHIBITED_CONTENT",
    "blocked_prompt": "200, no candidates, promptFeedback.blockReason SAFETY",
    "text_only": "200, one text part, finishReason STOP",
    "no_image": "200, candidate without parts, finishReason NO_IMAGE",
    "safety_with_image": "200, IMAGE_SAFETY but the final image is present",
    "unknown_finish": "200, finishReason SOMETHING_NEW with the image",
    "invalid_json": "200, complete message whose JSON is cut in half",
    "invalid_base64": "200, image data containing '*' characters",
    "truncated": "full Content-Length, ARG bytes (default half), then FIN",
    "reset": "ARG bytes (default half) of the body, then RST",
    "html_502": "502 with a Google HTML error page (text/html)",
    "empty_502": "502 with an empty body",
    "error_in_200": "200 whose body is a Google error (ARG: code, "
                    "default 500)",
    "vertex_error": "ARG status (default 429), error in a 1-element array",
    "stall": "headers + ~1 KB, sleep ARG s (default 30), then the rest",
    "slow_headers": "sleep ARG s (default 30), then answer normally",
    "escaped": "success whose base64 writes every '/' as '\\/'",
    "huge": "success with a noise PNG of ARG bytes (default 64M)",
    "no_candidates": "200, {\"usageMetadata\": {...}} only",
    "not_json_200": "200 text/plain 'OK'",
    "no_sse": "a stream request with alt=sse answered as one without it: "
              "one JSON array of the chunks (as some gateways do)",
    "echo_auth": "400 whose message echoes the credentials received "
                 "(works with any key)",
}
FAULT_MARKER = re.compile(r"\[\[fault:([A-Za-z0-9_]+)(?::([^\]]*))?\]\]")


class Fault:
    """A fault to inject: name and optional argument string."""

    def __init__(self, name, arg=None):
        self.name = name
        self.arg = None if arg in (None, "") else str(arg)

    def to_json(self):
        return {"name": self.name, "arg": self.arg}


def raw_last_user_text(body):
    """Texts of the last user turn of an unvalidated body ("" if none)."""
    contents = body.get("contents") if isinstance(body, dict) else None
    last = None
    for content in contents if isinstance(contents, list) else []:
        if isinstance(content, dict) and content.get("role") in (
                None, "", "user"):
            last = content
    parts = last.get("parts") if last else None
    return "\n".join(p["text"] for p in (parts if isinstance(parts, list)
                                          else [])
                     if isinstance(p, dict) and isinstance(p.get("text"),
                                                           str))


def fault_from_prompt(prompt):
    """First known ``[[fault:NAME(:ARG)]]`` marker in the prompt, or None."""
    for match in FAULT_MARKER.finditer(prompt):
        if match.group(1) in FAULTS:
            return Fault(match.group(1), match.group(2))
    return None


def vertex_like_error(code):
    """An ApiError for a status code, with a generic message."""
    messages = {
        429: ("Resource exhausted. Please try again later. Please refer to "
              "https://cloud.google.com/vertex-ai/generative-ai/docs/"
              "error-code-429 for more details."),
        500: MSG_INTERNAL, 503: MSG_OVERLOADED,
        400: "Request contains an invalid argument.",
        403: "Permission denied.", 404: "Requested entity was not found.",
    }
    return ApiError(code, messages.get(code, "Error %d." % code))


def error_for_fault(fault, model_id):
    """ApiError for the pure error faults (None for the others)."""
    name = fault.name
    if name == "429":
        delay = parse_seconds(fault.arg, 2.0)
        msg = ("You exceeded your current quota, please check your plan and "
               "billing details. For more information on this error, head to: "
               "https://ai.google.dev/gemini-api/docs/rate-limits. To monitor "
               "your current usage, head to: https://ai.dev/usage?tab=rate-"
               "limit. \n* Quota exceeded for metric: generativelanguage."
               "googleapis.com/generate_content_free_tier_requests, limit: 10,"
               " model: %s\nPlease retry in %ss." % (model_id, float(delay)))
        details = [
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
             "violations": [{
                 "quotaMetric": "generativelanguage.googleapis.com/"
                                "generate_content_free_tier_requests",
                 "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-"
                            "FreeTier",
                 "quotaDimensions": {"location": "global", "model": model_id},
                 "quotaValue": "10"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo",
             "retryDelay": fmt_duration(delay)},
        ]
        return ApiError(429, msg, details=details)
    if name == "500":
        return ApiError(500, MSG_INTERNAL)
    if name == "503":
        return ApiError(503, MSG_OVERLOADED)
    if name == "503_retry_after":
        return ApiError(503, MSG_OVERLOADED,
                        headers=[("Retry-After", fault.arg or "1")])
    return None


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
        self.close = False

    @classmethod
    def error(cls, err):
        return cls(err.code, [render_plain(err.body())], headers=err.headers)

    @classmethod
    def json(cls, obj, status=200):
        return cls(status, [json.dumps(obj).encode()])


class Answer:
    """A generated (or faulted) model answer before rendering."""

    def __init__(self):
        self.chunks = []            # parts grouped per SSE event
        self.finish_reason = "STOP"
        self.finish_message = None
        self.prompt_feedback = None
        self.has_candidate = True
        self.usage_only = False
        self.usage = {}
        self.images = []            # record entries for images sent


class Generator:
    """Builds answers for validated requests (images, text, signatures)."""

    def __init__(self, noise_bytes=0):
        self.noise_bytes = noise_bytes

    def final_image(self, plan, huge=None):
        """The final image: pattern PNG/JPEG, or noise PNG when configured."""
        if huge:
            return noise_image(huge, "huge:%d" % huge)
        if self.noise_bytes:
            # Not seeded by the prompt: benchmarks with distinct prompts
            # still hit the cache instead of encoding N-MB images each time.
            return noise_image(self.noise_bytes, "noise|%s|%s|%s" % (
                plan.model.name, plan.ratio, plan.size))
        kind = "jpeg" if plan.model.gemini3 else "png"
        return pattern_image(kind, plan.width, plan.height, plan.seed)

    @staticmethod
    def draft_image(plan):
        """The interim 'thought' image: half-size JPEG."""
        return pattern_image("jpeg", max(8, plan.width // 2),
                             max(8, plan.height // 2), plan.seed + "|draft")

    def answer(self, plan, body, fault=None):
        """Build the Answer for a plan, applying content faults."""
        name = fault.name if fault else None
        ans = Answer()
        if name in ("image_safety", "prohibited", "no_image"):
            ans.finish_reason = {"image_safety": "IMAGE_SAFETY",
                                 "prohibited": "IMAGE_PROHIBITED_CONTENT",
                                 "no_image": "NO_IMAGE"}[name]
            if name != "no_image":
                ans.finish_message = (FINISH_MESSAGE_SAFETY
                                      if name == "image_safety"
                                      else FINISH_MESSAGE_PROHIBITED)
        elif name == "blocked_prompt":
            ans.has_candidate = False
            ans.prompt_feedback = {"blockReason": "SAFETY", "safetyRatings": [
                {"category": c, "probability": p} for c, p in (
                    ("HARM_CATEGORY_SEXUALLY_EXPLICIT", "NEGLIGIBLE"),
                    ("HARM_CATEGORY_HATE_SPEECH", "NEGLIGIBLE"),
                    ("HARM_CATEGORY_HARASSMENT", "NEGLIGIBLE"),
                    ("HARM_CATEGORY_DANGEROUS_CONTENT", "HIGH"))]}
        elif name == "no_candidates":
            ans.has_candidate = False
            ans.usage_only = True
        elif name == "text_only":
            ans.chunks = [[self._text_part(
                plan, "I can describe it instead: %s" % plan.prompt[:200],
                True)]]
        else:
            self._normal_chunks(plan, body, ans, fault)
            if name == "safety_with_image":
                ans.finish_reason = "IMAGE_SAFETY"
                ans.finish_message = FINISH_MESSAGE_SAFETY
            elif name == "unknown_finish":
                ans.finish_reason = "SOMETHING_NEW"
        ans.usage = self._usage(plan, ans)
        return ans

    def _normal_chunks(self, plan, body, ans, fault):
        """Thoughts (Gemini 3, includeThoughts), text, then the image."""
        name = fault.name if fault else None
        transform = None
        if name == "escaped":
            def transform(b64):
                return b64.replace(b"/", b"\\/")
        elif name == "invalid_base64":
            def transform(b64):
                mid = len(b64) // 2
                return b"**" + b64[2:mid] + b"*" + b64[mid + 1:]
        if plan.model.gemini3 and plan.include_thoughts:
            ans.chunks.append([{"text": self._thought_text(plan),
                                "thought": True}])
            draft = self.draft_image(plan)
            ans.chunks.append([self._image_part(body, ans, draft, True, None,
                                                None)])
        if plan.want_text or not plan.want_image:
            text = ("Here is your image." if plan.want_image else
                    "Here is a description of the image you asked for: %s"
                    % plan.prompt[:200])
            ans.chunks.append([self._text_part(plan, text, True)])
        if plan.want_image:
            huge = parse_bytes(fault.arg, 64 << 20) if name == "huge" else None
            image = self.final_image(plan, huge)
            sig = SIGNATURES.issue() if plan.model.gemini3 else None
            ans.chunks.append([self._image_part(body, ans, image, False, sig,
                                                transform)])

    @staticmethod
    def _text_part(plan, text, first):
        part = {"text": text}
        if plan.model.gemini3 and first:
            part["thoughtSignature"] = SIGNATURES.issue()
        return part

    @staticmethod
    def _thought_text(plan):
        return ("**Composing the scene**\n\nI'm planning a %s composition at "
                "%dx%d for the request: \"%s\". I'll sketch a quick draft "
                "first, then refine colours and lighting."
                % (plan.ratio, plan.width, plan.height, plan.prompt[:120]))

    @staticmethod
    def _image_part(body, ans, image, thought, sig, transform):
        """An inlineData part (declared image/png, as the service does)."""
        data = transform(image.b64) if transform else image.b64
        part = {"inlineData": {"mimeType": "image/png",
                               "data": body.blob(data)}}
        if thought:
            part["thought"] = True
        if sig:
            part["thoughtSignature"] = sig
        ans.images.append({
            "sha256": image.sha256, "bytes": len(image.data),
            "width": image.width, "height": image.height, "mime": image.mime,
            "declared": "image/png", "thought": thought,
            "thoughtSignature": sig})
        return part

    @staticmethod
    def _usage(plan, ans):
        """usageMetadata per api-facts §2.1 (input side approximated)."""
        text_in = max(1, -(-plan.text_chars // 4))
        img_in = plan.input_images * (1120 if plan.model.gemini3 else 258)
        prompt = text_in + img_in
        usage = {"promptTokenCount": prompt}
        details = [{"modality": "TEXT", "tokenCount": text_in}]
        if img_in:
            details.append({"modality": "IMAGE", "tokenCount": img_in})
        out_img = out_text = 0
        for chunk in ans.chunks:
            for part in chunk:
                if part.get("thought"):
                    continue
                if "inlineData" in part:
                    out_img += plan.model.image_tokens[plan.size]
                elif "text" in part:
                    out_text += max(1, -(-len(part["text"]) // 4))
        thoughts = 0
        if plan.model.gemini3 and ans.has_candidate:
            digest = hashlib.sha256(plan.seed.encode("utf-8", "replace"))
            thoughts = 100 + int(digest.hexdigest()[:4], 16) % 400
        if ans.chunks:
            usage["candidatesTokenCount"] = out_img + out_text
        usage["totalTokenCount"] = prompt + out_img + out_text + thoughts
        usage["promptTokensDetails"] = details
        cand = []
        if out_img:
            cand.append({"modality": "IMAGE", "tokenCount": out_img})
        if out_text:
            cand.append({"modality": "TEXT", "tokenCount": out_text})
        if cand:
            usage["candidatesTokensDetails"] = cand
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage


def answer_object(ans, plan, response_id, parts=None, final=True):
    """One GenerateContentResponse object (whole answer or one SSE event)."""
    if ans.usage_only:
        return {"usageMetadata": ans.usage}
    obj = {}
    if ans.has_candidate:
        if parts is None:
            parts = [p for chunk in ans.chunks for p in chunk]
        content = {"role": "model"}
        if parts:
            content = {"parts": parts, "role": "model"}
        cand = {"content": content}
        if final:
            cand["finishReason"] = ans.finish_reason
            if ans.finish_message:
                cand["finishMessage"] = ans.finish_message
        cand["index"] = 0
        obj["candidates"] = [cand]
    if ans.prompt_feedback:
        obj["promptFeedback"] = ans.prompt_feedback
    if final:
        obj["usageMetadata"] = ans.usage
    else:
        prompt = ans.usage["promptTokenCount"]
        obj["usageMetadata"] = {"promptTokenCount": prompt,
                                "totalTokenCount": prompt}
    obj["modelVersion"] = plan.model_id
    obj["responseId"] = response_id
    return obj


def render_answer(ans, plan, body, stream, sse):
    """Reply pieces for an Answer: one JSON document or SSE events."""
    response_id = random_id(12)
    if not stream:
        return body.render(answer_object(ans, plan, response_id))
    chunks = ans.chunks if ans.has_candidate and ans.chunks else [None]
    objs = [answer_object(ans, plan, response_id, parts=chunk,
                          final=(i == len(chunks) - 1))
            for i, chunk in enumerate(chunks)]
    if not sse:   # no alt=sse: one JSON array of the chunk objects
        pieces = [b"["]
        for i, obj in enumerate(objs):
            if i:
                pieces.append(b",\r\n")
            pieces.extend(body.render(obj))
        pieces.append(b"]")
        return pieces
    return [[b"data: "] + body.render(obj, compact=True) + [b"\r\n\r\n"]
            for obj in objs]


# ---------------------------------------------------------------------------
# Request handling (transport-independent)
# ---------------------------------------------------------------------------

GENERATE_RE = re.compile(
    r"^(?P<prefix>.*?)(?:/(?P<version>v1beta|v1alpha|v1))?/models/"
    r"(?P<model>(?:models/)?[^/:]+):"
    r"(?P<method>generateContent|streamGenerateContent)$")
STOP = threading.Event()     # set on SIGTERM/SIGINT; wakes every sleep


class Config:
    """Server options (from the command line)."""

    def __init__(self, keys=("test-key",), no_auth=False, latency=0.0,
                 gzip_enabled=False, noise_bytes=0, record=True, quiet=False,
                 max_body=100 << 20, idle_timeout=120.0):
        self.keys = set(keys)
        self.no_auth = no_auth
        self.latency = latency
        self.gzip = gzip_enabled
        self.noise_bytes = noise_bytes
        self.record = record
        self.quiet = quiet
        self.max_body = max_body
        self.idle_timeout = idle_timeout


class Ctx:
    """One HTTP request as the application sees it."""

    def __init__(self, method, target, headers, body):
        self.method = method
        split = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(split.path)
        self.query = dict(urllib.parse.parse_qsl(split.query,
                                                 keep_blank_values=True))
        self.headers = headers          # lowercased name -> value
        self.body = body


def check_auth(ctx, cfg):
    """Accept x-goog-api-key, Authorization: Bearer or ?key= (one of them)."""
    if cfg.no_auth:
        return
    goog = ctx.headers.get("x-goog-api-key", "").strip()
    authz = ctx.headers.get("authorization", "").strip()
    if goog and authz:
        raise _unauthenticated()
    if authz:
        match = re.match(r"(?i)bearer\s+(\S+)\s*$", authz)
        if not match:
            raise _unauthenticated()
        cred = match.group(1)
    else:
        cred = goog or ctx.query.get("key", "").strip()
    if not cred:
        raise ApiError(403, MSG_NO_CREDS)
    if cred not in cfg.keys:
        raise ApiError(400, MSG_BAD_KEY, details=[{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID", "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}}])


def _unauthenticated():
    return ApiError(401, MSG_UNAUTH, details=[{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED", "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com",
                     "method": "google.ai.generativelanguage.v1beta."
                               "GenerativeService.GenerateContent"}}])


def parse_body(raw):
    """(parsed JSON or None, ApiError or None) for a request body."""
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None, bad_request("Invalid JSON payload received. Unexpected "
                                 "token.", violation=False)
    if not isinstance(value, dict):
        return value, bad_request('Invalid JSON payload received. Unknown name'
                                  ' "": Root element must be a message.',
                                  violation=False)
    return value, None


class App:
    """Routes requests to the generate handler or the control endpoints."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.state = State(record=cfg.record)
        self.gen = Generator(cfg.noise_bytes)

    # --- generate ---------------------------------------------------------

    def handle_generate(self, ctx):
        """(Reply, record) for a non-control request."""
        parsed, perr = parse_body(ctx.body)
        memo = B64Memo()
        rec = self.new_record(ctx, parsed, perr, memo)
        self.state.add_record(rec)    # at arrival: a reset also drops it
        try:
            reply = self._generate(ctx, rec, parsed, perr, memo)
        except ApiError as err:
            rec["error"] = err.message
            reply = Reply.error(err)
        rec["status"] = reply.status
        return reply, rec

    def new_record(self, ctx, parsed, perr, memo):
        """The request-log entry (body summarised, images listed later)."""
        rec = {"method": ctx.method, "path": ctx.path, "prefix": None,
               "version": None, "model": None, "stream": False,
               "query": ctx.query, "headers": ctx.headers, "body": None,
               "status": None, "error": None, "fault": None,
               "fault_arg": None, "images": [], "seq": None,
               "time": time.time()}
        if self.cfg.record:
            if perr is None or parsed is not None:
                rec["body"] = summarize_body(parsed, memo)
            else:
                rec["body"] = {"raw": ctx.body[:2000].decode("utf-8",
                                                             "replace")}
        return rec

    def _generate(self, ctx, rec, parsed, perr, memo):
        match = GENERATE_RE.match(ctx.path)
        if not match or ctx.method != "POST":
            raise ApiError(404, "Method %s %s not found. The fake serves POST "
                           "{prefix}/{version}/models/{model}:generateContent "
                           "and :streamGenerateContent." % (ctx.method,
                                                             ctx.path))
        model_id = match.group("model")
        stream = match.group("method") == "streamGenerateContent"
        rec.update(prefix=match.group("prefix"),
                   version=match.group("version"), model=model_id,
                   stream=stream)
        try:
            check_auth(ctx, self.cfg)
        except ApiError:
            if self._echo_auth_wanted(parsed):
                rec["fault"] = "echo_auth"
                raise echo_auth_error(ctx) from None
            raise
        spec = MODELS.get(model_id)
        if spec is None:
            raise ApiError(404, "models/%s is not found for API version %s, "
                           "or is not supported for generateContent. Call "
                           "ListModels to see the list of available models "
                           "and their supported methods."
                           % (model_id, match.group("version") or "v1beta"))
        if perr:
            raise perr
        req = normalize(parsed, REQUEST, "", "GenerateContentRequest")
        plan = validate(req, spec, model_id, memo)
        fault = self.state.pop_fault() or fault_from_prompt(plan.prompt)
        if fault:
            rec["fault"], rec["fault_arg"] = fault.name, fault.arg
        if self.cfg.latency:
            STOP.wait(self.cfg.latency)
        sse = (stream and ctx.query.get("alt") == "sse"
               and not (fault and fault.name == "no_sse"))
        return self._reply(ctx, plan, fault, stream, sse, rec)

    def _echo_auth_wanted(self, parsed):
        """An echo_auth fault applies even to requests that fail auth."""
        queued = self.state.queued()
        if queued and queued[0].name == "echo_auth":
            self.state.pop_fault()
            return True
        fault = fault_from_prompt(raw_last_user_text(parsed))
        return fault is not None and fault.name == "echo_auth"

    def _reply(self, ctx, plan, fault, stream, sse, rec):
        """Build the Reply for a validated request and an optional fault."""
        name = fault.name if fault else None
        if name == "echo_auth":
            raise echo_auth_error(ctx)
        if name == "slow_headers":
            STOP.wait(parse_seconds(fault.arg, 30.0))
        err = error_for_fault(fault, plan.model_id) if fault else None
        if err:
            return Reply.error(err)
        if name == "html_502":
            return Reply(502, [HTML_502.encode()], "text/html; charset=UTF-8")
        if name == "empty_502":
            return Reply(502, [], "text/html; charset=UTF-8")
        if name == "not_json_200":
            return Reply(200, [b"OK"], "text/plain; charset=UTF-8")
        if name == "vertex_error":
            code = _status_arg(fault.arg, 429)
            wrapped = [vertex_like_error(code).body()]
            return Reply(code, [render_plain(wrapped)])
        body = JsonBody()
        ans = self.gen.answer(plan, body, fault)
        rec["images"] = ans.images
        pieces = render_answer(ans, plan, body, stream, sse)
        reply = Reply(200, pieces, SSE_TYPE if sse else JSON_TYPE,
                      stream=sse)
        if name == "error_in_200":
            error = render_plain(vertex_like_error(
                _status_arg(fault.arg, 500)).body())
            if sse:
                compact = json.dumps(vertex_like_error(_status_arg(
                    fault.arg, 500)).body(), separators=(",", ": ")).encode()
                reply.pieces = [pieces[0], [b"data: ", compact, b"\r\n\r\n"]]
            else:
                reply.pieces = [error]
            rec["images"] = []
        elif name == "invalid_json":
            reply.pieces = _truncate_json(pieces, sse)
        elif name in ("truncated", "reset"):
            reply.cut = (name, parse_bytes(fault.arg, None))
        elif name == "stall":
            reply.stall = (1024, parse_seconds(fault.arg, 30.0))
        return reply

    # --- control ------------------------------------------------------------

    def handle_control(self, ctx):
        """The /_nb/ endpoints (no auth)."""
        name = ctx.path[len("/_nb/"):].strip("/")
        routes = {("GET", "health"): lambda: {"ok": True},
                  ("GET", "requests"): self.state.records,
                  ("GET", "last"): self.state.last,
                  ("GET", "faults"): lambda: {
                      "queued": [f.to_json() for f in self.state.queued()],
                      "known": FAULTS},
                  ("POST", "reset"): self._reset,
                  ("POST", "faults"): lambda: self._queue_faults(ctx.body)}
        method = "GET" if ctx.method == "HEAD" else ctx.method
        route = routes.get((method, name))
        if route is None:
            if any(n == name for _, n in routes):
                raise ApiError(405, "Method %s not allowed on /_nb/%s."
                               % (ctx.method, name), status="INVALID_ARGUMENT")
            raise ApiError(404, "No control endpoint /_nb/%s." % name)
        return Reply.json(route())

    def _reset(self):
        self.state.reset()
        return {"ok": True}

    def _queue_faults(self, raw):
        """POST /_nb/faults: {"faults":[{"name":..,"arg":..}|"name", ...]}."""
        parsed, err = parse_body(raw)
        if err and not isinstance(parsed, list):
            raise err
        items = parsed
        if isinstance(parsed, dict):
            items = parsed.get("faults", [parsed] if "name" in parsed else [])
        if not isinstance(items, list):
            raise bad_request('"faults" must be a list.', violation=False)
        faults = []
        for item in items:
            if isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, dict) or str(item.get("name")) not in \
                    FAULTS:
                raise bad_request("Unknown fault %s. Known: %s" % (
                    json_preview(item), ", ".join(FAULTS)), violation=False)
            arg = item.get("arg")
            faults.append(Fault(str(item["name"]),
                                None if arg is None else str(arg)))
        return {"ok": True, "queued": self.state.push_faults(faults)}


def echo_auth_error(ctx):
    """400 whose message repeats the credentials (tests secret scrubbing)."""
    seen = ["%s: %s" % (h, ctx.headers[h]) for h in ("x-goog-api-key",
                                                     "authorization")
            if h in ctx.headers]
    if "key" in ctx.query:
        seen.append("key=%s" % ctx.query["key"])
    return ApiError(400, "%s The request carried: %s." % (
        MSG_BAD_KEY, "; ".join(seen) or "no credentials"))


def _status_arg(arg, default):
    """An HTTP status code from a fault argument (400..599)."""
    try:
        code = int(float(arg))
    except (TypeError, ValueError):
        return default
    return code if 400 <= code <= 599 else default


def _truncate_json(pieces, sse):
    """Cut the JSON text in half but keep the HTTP message complete."""
    if not sse:
        whole = b"".join(pieces)
        return [whole[:max(1, len(whole) // 2)]]
    last = b"".join(pieces[-1])[len(b"data: "):-4]
    return pieces[:-1] + [[b"data: ", last[:max(1, len(last) // 2)],
                           b"\r\n\r\n"]]


# ---------------------------------------------------------------------------
# HTTP layer
# ---------------------------------------------------------------------------


DRAIN_LIMIT = 4 << 30     # oversized bodies up to this are read and dropped


class ClientGone(Exception):
    """The client closed the connection while we were reading."""


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
        if length is not None and length > self.server.app.cfg.max_body:
            self._send_safely(Reply.error(self._too_large()), close=True)
            return False
        return super().handle_expect_100()

    def _handle(self, head=False):
        app = self.server.app
        try:
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
                reply, _ = app.handle_generate(ctx)
        except Exception as exc:   # a bug: answer 500, keep serving
            if not app.cfg.quiet:
                traceback.print_exc()
            reply = Reply.error(ApiError(500, "%s (fake server: %s: %s)" % (
                MSG_INTERNAL, type(exc).__name__, exc)))
            reply.close = True
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
        """Write the body, applying stall / truncate / reset faults."""
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
                 else None)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
