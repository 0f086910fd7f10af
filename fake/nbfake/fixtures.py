"""Images: a deterministic pattern, PNG and JPEG encoders, noise PNGs, the image cache."""

import binascii
import collections
import hashlib
import math
import random
import struct
import threading
import zlib

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
