#!/usr/bin/env python3
"""Self-test of fake/gemini_server.py (stdlib only).

Starts the server on port 0 in a subprocess, exercises the main paths,
validation, auth, signatures, SSE and several faults, then stops it with
SIGTERM.  Run: python3 fake/test_fake_server.py
"""

import base64
import gzip
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "gemini_server.py")
KEY = "test-key"
FLASH25 = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image-preview"
FLASH31 = "gemini-3.1-flash-image-preview"


class Server:
    """A fake server subprocess."""

    def __init__(self, *args):
        self.tmp = tempfile.mkdtemp(prefix="nbfake-")
        port_file = os.path.join(self.tmp, "port")
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "--port", "0", "--port-file", port_file,
             "--quiet"] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError("server did not start: %r %s" % (
                line, self.proc.stderr.read()))
        self.url = line.split("listening on ", 1)[1].strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        with open(port_file) as f:
            assert int(f.read()) == self.port

    def stop(self):
        """SIGTERM; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(10)
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return code


def http_call(base, path, body=None, headers=None, method=None, timeout=30):
    """(status, headers, body bytes) without raising on HTTP errors."""
    data = body if isinstance(body, (bytes, type(None))) else \
        json.dumps(body).encode()
    req = urllib.request.Request(base + path, data, headers or {},
                                 method=method or ("POST" if data is not None
                                                   else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def gen_path(model, stream=False, prefix="/v1beta"):
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return "%s/models/%s:%s" % (prefix, model, method)


def prompt(text, **gen):
    body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if gen:
        body["generationConfig"] = gen
    return body


def parts_of(resp):
    return resp["candidates"][0]["content"].get("parts", [])


def images_of(resp):
    return [(p, base64.b64decode(p["inlineData"]["data"]))
            for p in parts_of(resp) if "inlineData" in p]


# --- independent image checks -----------------------------------------------

def check_png(data):
    """Verify signature, chunk CRCs and IDAT size; return (w, h)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, [], None, None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        payload = data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        assert zlib.crc32(kind + payload) == crc, "bad CRC in %r" % kind
        if kind == b"IHDR":
            width, height = struct.unpack(">II", payload[:8])
            assert payload[8:10] == b"\x08\x02", "expect 8-bit RGB"
        elif kind == b"IDAT":
            idat.append(payload)
        pos += 12 + length
        if kind == b"IEND":
            break
    assert pos == len(data), "trailing bytes after IEND"
    raw = zlib.decompress(b"".join(idat))
    assert len(raw) == height * (3 * width + 1), "IDAT size mismatch"
    return width, height


def check_jpeg(data, decode_scan=True):
    """Parse JFIF segments, optionally Huffman-decode the whole scan.

    Returns (w, h).  The scan decoder handles any baseline table set, so it
    checks the encoder's bit stream independently of how it was produced.
    """
    assert data[:3] == b"\xff\xd8\xff", "not a JPEG"
    pos, tables, comps, width, height, seen = 2, {}, [], None, None, []
    while True:
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        seglen = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        seg = data[pos + 4:pos + 2 + seglen]
        seen.append(marker)
        if marker == 0xC0:
            height, width = struct.unpack(">HH", seg[1:5])
            comps = [seg[6 + 3 * i] for i in range(seg[5])]
        elif marker == 0xC4:
            k = 0
            while k < len(seg):
                cls_id, counts = seg[k], seg[k + 1:k + 17]
                vals = seg[k + 17:k + 17 + sum(counts)]
                codes, code, v = {}, 0, 0
                for length in range(1, 17):
                    for _ in range(counts[length - 1]):
                        codes[format(code, "0%db" % length)] = vals[v]
                        code, v = code + 1, v + 1
                    code <<= 1
                tables[cls_id] = codes
                k += 17 + sum(counts)
        pos += 2 + seglen
        if marker == 0xDA:
            sel = [(seg[1 + 2 * i + 1] >> 4, seg[1 + 2 * i + 1] & 15)
                   for i in range(seg[0])]
            break
    assert seen[:1] == [0xE0] and 0xDB in seen and 0xC0 in seen, seen
    assert data[-2:] == b"\xff\xd9", "missing EOI"
    if not decode_scan:
        return width, height
    scan = data[pos:-2].replace(b"\xff\x00", b"\xff")
    bits = bin(int.from_bytes(b"\x01" + scan, "big"))[3:]
    at = 0

    def symbol(table):
        nonlocal at
        for length in range(1, 17):
            sym = table.get(bits[at:at + length])
            if sym is not None:
                at += length
                return sym
        raise AssertionError("bad Huffman code at bit %d" % at)

    blocks = -(-width // 8) * -(-height // 8)
    for _ in range(blocks):
        for dc_id, ac_id in sel[:len(comps)]:
            size = symbol(tables[dc_id])     # DC size category...
            at += size                       # ...then its extra bits
            k = 1
            while k < 64:
                rs = symbol(tables[0x10 | ac_id])
                if rs == 0:
                    break
                k += (rs >> 4) + 1
                at += rs & 15
    rest = bits[at:]
    assert len(rest) < 8 and set(rest) <= {"1"}, "scan has %d extra bits" % \
        len(rest)
    return width, height


def tiny_png():
    """A valid 2x2 PNG for upload tests."""
    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))
    raw = b"\x00" + b"\xff\x00\x00" * 2 + b"\x00" + b"\x00\xff\x00" * 2
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# --- tests ----------------------------------------------------------------------

class FakeServerTest(unittest.TestCase):
    """Main server: default options plus a small body limit."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server("--max-body-bytes", "4M")
        cls.base = cls.server.url

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, "server did not exit cleanly"

    def setUp(self):
        self.control("/_nb/reset", {})

    def control(self, path, body=None):
        status, _, data = http_call(self.base, path, body)
        self.assertEqual(status, 200, data)
        return json.loads(data)

    def gen(self, model, body, stream=False, headers=None, prefix="/v1beta",
            query=""):
        hdrs = {"x-goog-api-key": KEY, "Content-Type": "application/json"}
        hdrs.update(headers or {})
        return http_call(self.base, gen_path(model, stream, prefix) + query,
                         body, hdrs)

    def ok(self, model, body, **kw):
        status, headers, data = self.gen(model, body, **kw)
        self.assertEqual(status, 200, data[:500])
        self.assertTrue(headers["Content-Type"].startswith(
            "application/json"))
        return json.loads(data)

    def error(self, model, body, code, text=None, **kw):
        status, headers, data = self.gen(model, body, **kw)
        self.assertEqual(status, code, data[:500])
        self.assertEqual(headers["Content-Type"],
                         "application/json; charset=UTF-8")
        err = json.loads(data)["error"]
        self.assertEqual(err["code"], code)
        if text is not None:
            self.assertIn(text, err["message"])
        return err

    # --- happy paths -----------------------------------------------------------

    def test_health_and_log(self):
        self.assertEqual(self.control("/_nb/health"), {"ok": True})
        self.ok(FLASH25, prompt("log me"))
        log = self.control("/_nb/requests")
        self.assertEqual(len(log), 1)
        rec = log[0]
        self.assertEqual((rec["prefix"], rec["version"], rec["model"],
                          rec["stream"], rec["status"], rec["fault"]),
                         ("", "v1beta", FLASH25, False, 200, None))
        self.assertEqual(rec["headers"]["x-goog-api-key"], KEY)
        self.assertEqual(rec["images"][0]["mime"], "image/png")
        self.assertEqual(self.control("/_nb/last")["seq"], rec["seq"])
        self.control("/_nb/reset", {})
        self.assertEqual(self.control("/_nb/requests"), [])

    def test_record_at_arrival_and_reset_drops_in_flight(self):
        done = []
        worker = threading.Thread(target=lambda: done.append(
            self.gen(FLASH25, prompt("[[fault:slow_headers:1]]"))))
        worker.start()
        time.sleep(0.4)
        log = self.control("/_nb/requests")
        self.assertEqual([(r["status"], r["fault"]) for r in log],
                         [(None, "slow_headers")])
        self.control("/_nb/reset", {})
        worker.join(10)
        self.assertEqual(done[0][0], 200)
        self.assertEqual(self.control("/_nb/requests"), [])

    def test_flash25_png_exact_size_and_deterministic(self):
        resp = self.ok(FLASH25, prompt("A cute otter", imageConfig={
            "aspectRatio": "16:9"}))
        parts = parts_of(resp)
        self.assertEqual(parts[0], {"text": "Here is your image."})
        (part, data), = images_of(resp)
        self.assertEqual(part["inlineData"]["mimeType"], "image/png")
        self.assertEqual(check_png(data), (1344, 768))
        self.assertEqual(resp["candidates"][0]["finishReason"], "STOP")
        self.assertEqual(resp["modelVersion"], FLASH25)
        self.assertTrue(resp["responseId"])
        usage = resp["usageMetadata"]
        self.assertEqual(usage["candidatesTokensDetails"][0],
                         {"modality": "IMAGE", "tokenCount": 1290})
        self.assertEqual(usage["totalTokenCount"],
                         usage["promptTokenCount"]
                         + usage["candidatesTokenCount"])
        again = images_of(self.ok(FLASH25, prompt("A cute otter", imageConfig={
            "aspectRatio": "16:9"})))[0][1]
        other = images_of(self.ok(FLASH25, prompt("A cute cat", imageConfig={
            "aspectRatio": "16:9"})))[0][1]
        self.assertEqual(data, again)
        self.assertNotEqual(data, other)

    def test_image_only_modality(self):
        resp = self.ok(FLASH25, prompt("x", responseModalities=["Image"]))
        self.assertEqual([list(p) for p in parts_of(resp)], [["inlineData"]])
        resp = self.ok(FLASH25, prompt("x", responseModalities=["TEXT"]))
        self.assertEqual([list(p) for p in parts_of(resp)], [["text"]])

    def test_pro_thoughts_jpeg_and_signatures(self):
        resp = self.ok(PRO, prompt("A cozy nook", thinkingConfig={
            "includeThoughts": True}, imageConfig={"aspectRatio": "16:9",
                                                   "imageSize": "4K"}))
        parts = parts_of(resp)
        self.assertEqual(len(parts), 4)
        self.assertTrue(parts[0]["thought"] and parts[0]["text"].startswith(
            "**"))
        self.assertTrue(parts[1]["thought"])
        self.assertNotIn("thoughtSignature", parts[1])
        self.assertEqual(parts[2]["text"], "Here is your image.")
        self.assertIn("thoughtSignature", parts[2])
        self.assertIn("thoughtSignature", parts[3])
        (tp, thought), (fp, final) = images_of(resp)
        self.assertEqual(fp["inlineData"]["mimeType"], "image/png")
        self.assertEqual(check_jpeg(final, decode_scan=False), (5504, 3072))
        self.assertEqual(check_jpeg(thought), (2752, 1536))
        self.assertGreater(resp["usageMetadata"]["thoughtsTokenCount"], 0)
        self.assertEqual(resp["usageMetadata"]["candidatesTokensDetails"][0],
                         {"modality": "IMAGE", "tokenCount": 2000})

    def test_flash31_sizes(self):
        for ratio, size, dims in (("21:9", "512", (792, 336)),
                                  ("1:8", "1K", (384, 3072)),
                                  ("4:1", "2K", (4096, 1024))):
            resp = self.ok(FLASH31, prompt("x", imageConfig={
                "aspectRatio": ratio, "imageSize": size}))
            self.assertEqual(check_jpeg(images_of(resp)[0][1]), dims)

    def test_multiturn_signatures(self):
        first = prompt("A nook", imageConfig={"imageSize": "1K"})
        resp = self.ok(FLASH31, first)
        model_turn = resp["candidates"][0]["content"]
        history = first["contents"] + [model_turn,
                                       {"role": "user",
                                        "parts": [{"text": "at night"}]}]
        self.ok(FLASH31, {"contents": history})
        image_part = model_turn["parts"][1]
        sig = image_part.pop("thoughtSignature")
        self.error(FLASH31, {"contents": history}, 400,
                   "Image part is missing a thought_signature in content "
                   "position 2, part position 2.")
        image_part["thoughtSignature"] = base64.b64encode(b"x" * 48).decode()
        self.error(FLASH31, {"contents": history}, 400,
                   "Thought signature is not valid.")
        image_part["thoughtSignature"] = "skip_thought_signature_validator"
        self.ok(FLASH31, {"contents": history})
        image_part["thoughtSignature"] = sig
        # 2.5 Flash Image does not check signatures
        self.ok(FLASH25, {"contents": [
            {"role": "user", "parts": [{"text": "a"}]},
            {"role": "model", "parts": [{"inlineData": {
                "mimeType": "image/png",
                "data": base64.b64encode(tiny_png()).decode()}}]},
            {"role": "user", "parts": [{"text": "b"}]}]})

    def test_snake_case_urlsafe_and_log_summary(self):
        png = tiny_png() + b"\xfb\xff" * 10    # forces '-'/'_' in URL-safe
        b64 = base64.urlsafe_b64encode(png).decode().rstrip("=")
        self.assertTrue(set(b64) & set("-_"))
        self.ok(FLASH25, {"contents": [{"role": "user", "parts": [
            {"text": "edit"}, {"inline_data": {"mime_type": "image/png",
                                               "data": b64}}]}],
            "generation_config": {"response_modalities": ["IMAGE"],
                                  "image_config": {"aspect_ratio": "3:2"}}})
        rec = self.control("/_nb/last")
        summary = rec["body"]["contents"][0]["parts"][1]["inline_data"]["data"]
        self.assertEqual(summary["bytes"], len(png))
        self.assertEqual(summary["b64_chars"], len(b64))
        self.assertEqual(rec["images"][0]["width"], 1248)

    # --- auth --------------------------------------------------------------------

    def test_auth(self):
        body = prompt("x")
        self.error(FLASH25, body, 403, "unregistered callers",
                   headers={"x-goog-api-key": ""})
        err = self.error(FLASH25, body, 400, "API key not valid",
                         headers={"x-goog-api-key": "nope"})
        self.assertEqual(err["details"][0]["reason"], "API_KEY_INVALID")
        self.error(FLASH25, body, 401, "Expected OAuth 2 access token",
                   headers={"Authorization": "Bearer " + KEY})
        # gateway style: Bearer + /v1 prefix; query key; no version segment
        status, _, _ = http_call(self.base, gen_path(FLASH25, prefix="/v1/v1beta"),
                                 body, {"Authorization": "Bearer " + KEY})
        self.assertEqual(status, 200)
        self.assertEqual(self.control("/_nb/last")["prefix"], "/v1")
        status, _, _ = http_call(self.base, gen_path(FLASH25, prefix="")
                                 + "?key=" + KEY, body)
        self.assertEqual(status, 200)
        self.assertIsNone(self.control("/_nb/last")["version"])

    # --- validation ----------------------------------------------------------------

    def test_validation_errors(self):
        png64 = base64.b64encode(tiny_png()).decode()
        img = {"inlineData": {"mimeType": "image/png", "data": png64}}
        cases = [
            (FLASH25, b"{nope", 400, "Invalid JSON payload received. "
                                     "Unexpected token."),
            (FLASH25, b"[1]", 400, "Root element must be a message"),
            (FLASH25, {"contents": [], "size": 1}, 400,
             'Unknown name "size": Cannot find field.'),
            (FLASH25, {"contents": [{"parts": [{"text": "x"}]}],
                       "generationConfig": {"imageConfig": {"foo": 1}}}, 400,
             "Unknown name \"foo\" at 'generation_config.image_config': "
             "Cannot find field."),
            (FLASH25, {"contents": []}, 400, "contents is not specified"),
            (FLASH25, {"contents": [{"parts": [{"text": "x"}]},
                                    {"role": "bot", "parts": [{"text": "y"}]}]},
             400, "Please use a valid role: user, model."),
            (FLASH25, {"contents": [{"role": "user", "parts": []}]}, 400,
             "contents[0].parts: contents.parts must not be empty."),
            (FLASH25, {"contents": [{"role": "user", "parts": [{"text": ""}]}]},
             400, "Unable to submit request because it has an empty text "
                  "parameter."),
            (FLASH25, {"contents": [{"parts": [{"inlineData": {
                "mimeType": "image/bmp", "data": png64}}]}]}, 400,
             "Unsupported MIME type: image/bmp"),
            (FLASH25, {"contents": [{"parts": [{"text": "x"}, {"inlineData": {
                "mimeType": "image/png", "data": "not base64!!"}}]}]}, 400,
             "Invalid value at 'contents[0].parts[1].inline_data.data' "
             "(TYPE_BYTES), Base64 decoding failed for \"not base64!!\""),
            (FLASH25, {"contents": [{"parts": [{"inlineData": {
                "mimeType": "image/png", "data": "aGVsbG8="}}]}]}, 400,
             "Unable to process input image."),
            (FLASH25, {"contents": [{"parts": [{"text": "x"}] + [img] * 4}]},
             400, "Too many images in the request: 4. The maximum is 3."),
            (PRO, {"contents": [{"parts": [img] * 15}]}, 400,
             "Too many images in the request: 15. The maximum is 14."),
            (PRO, prompt("x", candidateCount=2), 400,
             "Multiple candidates is not enabled for models/" + PRO),
            (FLASH25, dict(prompt("x"), systemInstruction={
                "parts": [{"text": "s"}]}), 400,
             "Developer instruction is not enabled for models/" + FLASH25),
            (FLASH25, prompt("x", thinkingConfig={"includeThoughts": True}),
             400, "Thinking is not enabled for models/" + FLASH25),
            (FLASH25, prompt("x", imageConfig={"imageSize": "1K"}), 500,
             "An internal error has occurred."),
            (PRO, prompt("x", imageConfig={"aspectRatio": "8:1"}), 400,
             "Unsupported aspect ratio: 8:1 for model " + PRO + "."),
            (PRO, prompt("x", imageConfig={"imageSize": "512"}), 400,
             "Unsupported image size: 512 for model " + PRO + "."),
            (FLASH31, prompt("x", imageConfig={"imageSize": "1k"}), 400,
             "Unsupported image size: 1k"),
            ("gemini-9-image", prompt("x"), 404,
             "models/gemini-9-image is not found for API version v1beta"),
        ]
        for model, body, code, text in cases:
            with self.subTest(text=text):
                self.error(model, body, code, text)

    def test_stable_ids_and_oversize_body(self):
        self.ok("gemini-3-pro-image", prompt("x"))
        self.ok("gemini-3.1-flash-image", prompt("x", imageConfig={
            "aspectRatio": "1:4"}))
        big = b'{"contents":[{"parts":[{"text":"' + b"a" * (5 << 20) + b'"}]}]}'
        self.error(FLASH25, big, 400, "Request payload size exceeds the "
                                      "limit: 4194304 bytes.")

    def test_malformed_http_keeps_serving(self):
        for junk in (b"\x00\x01\x02 garbage\r\n\r\n",
                     b"POST /v1beta/models/x:generateContent HTTP/1.1\r\n"
                     b"Content-Length: zz\r\n\r\n",
                     b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", self.server.port),
                                          timeout=5) as sock:
                sock.sendall(junk)
                self.assertTrue(sock.recv(100).startswith(b"HTTP/1.1 4"))
        with socket.create_connection(("127.0.0.1", self.server.port)) as s:
            s.sendall(b"POST /v1beta/models/x:generateContent HTTP/1.1\r\n"
                      b"Content-Length: 100\r\n\r\nabc")   # then hang up
        self.error(FLASH25, b"[" * 100000, 400, "Unexpected token")
        self.assertEqual(self.control("/_nb/health"), {"ok": True})

    # --- streaming -------------------------------------------------------------

    def test_sse_stream(self):
        status, headers, data = self.gen(FLASH31, prompt("s", thinkingConfig={
            "includeThoughts": True}), stream=True)
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/event-stream")
        self.assertTrue(data.endswith(b"\r\n\r\n"))
        events = [json.loads(e[len(b"data: "):])
                  for e in data.split(b"\r\n\r\n") if e]
        self.assertEqual(len(events), 4)
        kinds = [(("img" if "inlineData" in p else "text"),
                  bool(p.get("thought")))
                 for e in events for p in parts_of(e)]
        self.assertEqual(kinds, [("text", True), ("img", True),
                                 ("text", False), ("img", False)])
        self.assertEqual(events[-1]["candidates"][0]["finishReason"], "STOP")
        self.assertNotIn("finishReason", events[0]["candidates"][0])
        self.assertIn("candidatesTokenCount", events[-1]["usageMetadata"])
        self.assertTrue(self.control("/_nb/last")["stream"])

    # --- faults ----------------------------------------------------------------

    def test_echo_auth(self):
        secret = "sk-not-registered-0123456789"
        err = self.error(FLASH25, prompt("x [[fault:echo_auth]]"), 400,
                         "x-goog-api-key: " + secret,
                         headers={"x-goog-api-key": secret})
        self.assertIn("API key not valid", err["message"])
        self.error(FLASH25, prompt("x [[fault:echo_auth]]"), 400,
                   "x-goog-api-key: " + KEY)
        self.control("/_nb/faults", {"faults": ["echo_auth"]})
        self.error(FLASH25, prompt("x"), 400, "Bearer " + secret,
                   headers={"x-goog-api-key": "",
                            "Authorization": "Bearer " + secret})
        self.assertEqual(self.control("/_nb/last")["fault"], "echo_auth")

    def test_fault_queue_is_fifo(self):
        self.control("/_nb/faults", {"faults": [{"name": "429", "arg": "0.2"},
                                                {"name": "503_retry_after",
                                                 "arg": 3}]})
        err = self.error(FLASH25, prompt("x"), 429, "Please retry in 0.2s.")
        types = {d["@type"].rsplit(".", 1)[1]: d for d in err["details"]}
        self.assertEqual(types["RetryInfo"]["retryDelay"], "0.2s")
        self.assertIn("violations", types["QuotaFailure"])
        status, headers, _ = self.gen(FLASH25, prompt("x"))
        self.assertEqual((status, headers["Retry-After"]), (503, "3"))
        self.ok(FLASH25, prompt("x"))
        status, _, _ = http_call(self.base, "/_nb/faults",
                                 {"faults": [{"name": "nope"}]})
        self.assertEqual(status, 400)

    def test_content_faults_by_marker(self):
        def ask(name):
            return self.gen(FLASH25, prompt("x [[fault:%s]]" % name))

        for name, reason in (("image_safety", "IMAGE_SAFETY"),
                             ("prohibited", "IMAGE_PROHIBITED_CONTENT"),
                             ("no_image", "NO_IMAGE")):
            resp = json.loads(ask(name)[2])
            cand = resp["candidates"][0]
            self.assertEqual(cand["content"], {"role": "model"})
            self.assertEqual(cand["finishReason"], reason)
        resp = json.loads(ask("blocked_prompt")[2])
        self.assertNotIn("candidates", resp)
        self.assertEqual(resp["promptFeedback"]["blockReason"], "SAFETY")
        resp = json.loads(ask("text_only")[2])
        self.assertEqual([list(p) for p in parts_of(resp)], [["text"]])
        resp = json.loads(ask("safety_with_image")[2])
        self.assertEqual(resp["candidates"][0]["finishReason"],
                         "IMAGE_SAFETY")
        self.assertEqual(len(images_of(resp)), 1)
        resp = json.loads(ask("unknown_finish")[2])
        self.assertEqual(resp["candidates"][0]["finishReason"],
                         "SOMETHING_NEW")
        self.assertEqual(list(json.loads(ask("no_candidates")[2])),
                         ["usageMetadata"])
        resp = json.loads(ask("candidates_object")[2])
        self.assertEqual(resp["candidates"]["finishReason"], "STOP")
        resp = json.loads(ask("array_200")[2])
        self.assertEqual(resp[0]["candidates"][0]["finishReason"], "STOP")
        status, _, data = ask("escaped")
        self.assertIn(b"\\/", data)
        check_png(images_of(json.loads(data))[0][1])
        data = ask("invalid_base64")[2]
        self.assertIn("*", parts_of(json.loads(data))[1]["inlineData"]["data"])
        status, _, data = ask("invalid_json")
        self.assertEqual(status, 200)
        self.assertRaises(ValueError, json.loads, data)
        status, _, data = ask("error_in_200")
        self.assertEqual((status, json.loads(data)["error"]["code"]),
                         (200, 500))
        status, headers, data = ask("not_json_200")
        self.assertEqual((status, data), (200, b"OK"))
        status, headers, data = ask("html_502")
        self.assertEqual(status, 502)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertEqual(ask("empty_502")[0:3:2], (502, b""))
        status, _, data = ask("vertex_error:503")
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(data)[0]["error"]["status"],
                         "UNAVAILABLE")
        resp = json.loads(ask("huge:100K")[2])
        (_, data), = images_of(resp)
        self.assertEqual(len(data), 102400)
        check_png(data)
        self.assertEqual(self.control("/_nb/last")["fault"], "huge")

    def test_sse_faults(self):
        status, _, data = self.gen(PRO, prompt("[[fault:image_safety]]"),
                                   stream=True)
        events = [e for e in data.split(b"\r\n\r\n") if e]
        self.assertEqual(len(events), 1)
        self.assertEqual(json.loads(events[0][6:])["candidates"][0][
            "finishReason"], "IMAGE_SAFETY")
        status, _, data = self.gen(PRO, prompt("[[fault:error_in_200]]"),
                                   stream=True)
        events = [e for e in data.split(b"\r\n\r\n") if e]
        self.assertIn("error", json.loads(events[-1][6:]))
        status, _, _ = self.gen(PRO, prompt("[[fault:500]]"), stream=True)
        self.assertEqual(status, 500)

    def raw_post(self, text):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port,
                                          timeout=20)
        conn.request("POST", gen_path(FLASH25), json.dumps(prompt(text)),
                     {"x-goog-api-key": KEY})
        return conn, conn.getresponse()

    def timed_post(self, text):
        """(seconds to the headers, seconds to the end, body) of a post."""
        start = time.time()
        conn, resp = self.raw_post(text)
        head = time.time() - start
        body = resp.read()
        conn.close()
        return head, time.time() - start, body

    def test_transport_faults(self):
        conn, resp = self.raw_post("[[fault:truncated]]")
        self.assertRaises(http.client.IncompleteRead, resp.read)
        conn.close()
        conn, resp = self.raw_post("[[fault:reset:100]]")
        with self.assertRaises((http.client.IncompleteRead, ConnectionError)):
            resp.read()
        conn.close()
        for fault, head_max, total_min in (("stall:1", 0.9, 1.0),
                                           ("trickle:0.5", 0.4, 0.45)):
            head, total, body = self.timed_post("[[fault:%s]]" % fault)
            self.assertLess(head, head_max)
            self.assertGreaterEqual(total, total_min)
            json.loads(body)
        head, _, body = self.timed_post("[[fault:slow_headers:0.5]]")
        self.assertGreaterEqual(head, 0.5)
        json.loads(body)
        self.assertEqual(self.control("/_nb/health"), {"ok": True})


class OptionsTest(unittest.TestCase):
    """--gzip, --noise-bytes, --latency-ms, --no-auth, --no-record, --host."""

    def test_gzip_noise_latency(self):
        server = Server("--gzip", "--noise-bytes", "2M", "--latency-ms", "200",
                        "--no-auth", "--no-record")
        try:
            start = time.time()
            status, headers, data = http_call(
                server.url, gen_path(PRO), prompt("noise"),
                {"Accept-Encoding": "gzip"})
            self.assertGreaterEqual(time.time() - start, 0.2)
            self.assertEqual((status, headers["Content-Encoding"]),
                             (200, "gzip"))
            resp = json.loads(gzip.decompress(data))
            (part, png), = images_of(resp)
            self.assertEqual(len(png), 2 << 20)
            self.assertEqual(check_png(png)[0], 1024)
            self.assertGreater(len(zlib.compress(png, 6)), len(png) * 0.99)
            status, _, data = http_call(server.url, "/_nb/requests")
            self.assertEqual(json.loads(data), [])
        finally:
            self.assertEqual(server.stop(), 0)

    def test_refuses_non_loopback(self):
        proc = subprocess.run([sys.executable, SERVER, "--host", "0.0.0.0"],
                              capture_output=True, text=True, timeout=20)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("loopback only", proc.stderr)

    @unittest.skipUnless(shutil.which("openssl"), "openssl not installed")
    def test_tls(self):
        import ssl
        tmp = tempfile.mkdtemp(prefix="nbfake-tls-")
        try:
            cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                            "-nodes", "-keyout", key, "-out", cert, "-days",
                            "1", "-subj", "/CN=127.0.0.1", "-addext",
                            "subjectAltName=IP:127.0.0.1"], check=True,
                           capture_output=True, timeout=60)
            server = Server("--tls-cert", cert, "--tls-key", key)
            try:
                self.assertTrue(server.url.startswith("https://"))
                ctx = ssl.create_default_context(cafile=cert)
                req = urllib.request.Request(
                    server.url + gen_path(FLASH25),
                    json.dumps(prompt("tls")).encode(),
                    {"x-goog-api-key": KEY})
                with urllib.request.urlopen(req, context=ctx,
                                            timeout=20) as resp:
                    check_png(images_of(json.loads(resp.read()))[0][1])
            finally:
                self.assertEqual(server.stop(), 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class ServiceTest(unittest.TestCase):
    """Files, Batch, Vertex AI, countTokens (one server, fast batch steps)."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server("--batch-step-ms", "100")
        cls.base = cls.server.url

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, "server did not exit cleanly"

    def setUp(self):
        http_call(self.base, "/_nb/reset", {})

    def call(self, path, body=None, headers=None, method=None):
        hdrs = {"x-goog-api-key": KEY}
        hdrs.update(headers or {})
        return http_call(self.base, path, body, hdrs, method)

    def start_upload(self, size, mime="application/octet-stream", prefix=""):
        status, headers, data = self.call(
            prefix + "/upload/v1beta/files", {"file": {"displayName": "d"}},
            {"X-Goog-Upload-Protocol": "resumable",
             "X-Goog-Upload-Command": "start",
             "X-Goog-Upload-Header-Content-Length": str(size),
             "X-Goog-Upload-Header-Content-Type": mime,
             "Content-Type": "application/json"})
        self.assertEqual(status, 200, data)
        self.assertEqual(headers["X-Goog-Upload-Status"], "active")
        return headers["X-Goog-Upload-URL"]

    def chunk(self, url, data, offset, command="upload"):
        path = url.split(str(self.server.port), 1)[1]
        return http_call(self.base, path, data, {
            "X-Goog-Upload-Command": command,
            "X-Goog-Upload-Offset": str(offset)})

    def test_resumable_upload_query_wrong_offset_and_lose(self):
        data = os.urandom(3 << 20)
        url = self.start_upload(len(data))
        status, headers, _ = self.chunk(url, data[:1 << 20], 0)
        self.assertEqual((status, headers["X-Goog-Upload-Size-Received"]),
                         (200, str(1 << 20)))
        status, headers, body = self.chunk(url, data[:10], 5)   # wrong offset
        self.assertEqual(status, 400, body)
        self.assertEqual(headers["X-Goog-Upload-Status"], "active")
        self.assertEqual(headers["X-Goog-Upload-Size-Received"], str(1 << 20))
        http_call(self.base, "/_nb/faults",
                  {"faults": [{"name": "upload_lose", "arg": "1000"}]})
        status, _, _ = self.chunk(url, data[1 << 20:2 << 20], 1 << 20)
        self.assertEqual(status, 503)
        status, headers, _ = self.chunk(url, b"", 0, "query")
        self.assertEqual(headers["X-Goog-Upload-Size-Received"],
                         str((1 << 20) + 1000))
        off = (1 << 20) + 1000
        status, headers, body = self.chunk(url, data[off:], off,
                                           "upload, finalize")
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["X-Goog-Upload-Status"], "final")
        f = json.loads(body)["file"]
        self.assertEqual(f["sizeBytes"], str(len(data)))
        self.assertEqual(base64.b64decode(f["sha256Hash"]),
                         hashlib.sha256(data).digest())
        status, _, body = self.call("/v1beta/" + f["name"])
        self.assertEqual(json.loads(body)["name"], f["name"])
        status, _, body = self.call("/v1beta/" + f["name"], method="DELETE")
        self.assertEqual((status, json.loads(body)), (200, {}))
        status, _, body = self.call("/v1beta/" + f["name"])
        self.assertEqual(status, 403)
        self.assertEqual(json.loads(body)["error"]["status"],
                         "PERMISSION_DENIED")

    def test_upload_drop_resets_the_connection(self):
        url = self.start_upload(4096)
        http_call(self.base, "/_nb/faults",
                  {"faults": [{"name": "upload_drop", "arg": "100"}]})
        path = url.split(str(self.server.port), 1)[1]
        sock = socket.create_connection(("127.0.0.1", self.server.port))
        sock.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n"
                      "X-Goog-Upload-Command: upload\r\n"
                      "X-Goog-Upload-Offset: 0\r\n\r\n" % path).encode()
                     + b"x" * 4096)
        try:
            got = sock.recv(100)
        except ConnectionResetError:
            got = b""
        sock.close()
        self.assertEqual(got, b"")
        status, headers, _ = self.chunk(url, b"", 0, "query")
        self.assertEqual(headers["X-Goog-Upload-Size-Received"], "100")

    def test_upload_url_for_a_gateway(self):
        url = self.start_upload(10, prefix="/gw")
        self.assertTrue(url.startswith(
            "https://upload.gateway.invalid/upload/v1beta/files?upload_id="))
        status, _, body = self.call("/upload/v1beta/files", {}, {
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": "1",
            "X-Goog-Upload-Header-Content-Type": "jsonl"})
        self.assertEqual(status, 400)
        self.assertIn("Unsupported MIME type: jsonl", body.decode())

    def test_batch_states_and_file_output(self):
        lines = b"".join(json.dumps({"key": k, "request": prompt(t)}).encode()
                         + b"\n" for k, t in (("a", "a cat"),
                                              ("b", "x [[fault:500]]")))
        url = self.start_upload(len(lines), "application/jsonl")
        status, _, body = self.chunk(url, lines, 0, "upload, finalize")
        name = json.loads(body)["file"]["name"]
        status, _, body = self.call(
            "/v1beta/models/gemini-2.5-flash-image:batchGenerateContent",
            {"batch": {"displayName": "t", "inputConfig": {"fileName": name}}})
        self.assertEqual(status, 200, body)
        job = json.loads(body)
        self.assertEqual(job["metadata"]["state"], "BATCH_STATE_PENDING")
        self.assertFalse(job["done"])
        time.sleep(0.12)
        _, _, body = self.call("/v1beta/" + job["name"])
        self.assertEqual(json.loads(body)["metadata"]["state"],
                         "BATCH_STATE_RUNNING")
        time.sleep(0.12)
        _, _, body = self.call("/v1beta/" + job["name"])
        done = json.loads(body)
        self.assertTrue(done["done"])
        self.assertEqual(done["metadata"]["state"], "BATCH_STATE_SUCCEEDED")
        self.assertEqual(done["metadata"]["batchStats"], {
            "requestCount": "2", "successfulRequestCount": "1",
            "failedRequestCount": "1"})
        out = done["metadata"]["output"]["responsesFile"]
        status, _, body = self.call("/v1beta/%s:download?alt=media" % out)
        self.assertEqual(status, 200)
        got = [json.loads(x) for x in body.splitlines()]
        self.assertEqual([g["key"] for g in got], ["a", "b"])
        png = images_of(got[0]["response"])[0][1]
        self.assertEqual(check_png(png), (1024, 1024))
        self.assertEqual(got[1]["error"]["code"], 500)

    def test_batch_failed_cancel_list_delete(self):
        http_call(self.base, "/_nb/faults", {"faults": ["batch_failed"]})
        body = {"batch": {"displayName": "x", "inputConfig": {"requests": {
            "requests": [{"request": prompt("x")}]}}}}
        path = "/v1beta/models/gemini-2.5-flash-image:batchGenerateContent"
        failed = json.loads(self.call(path, body)[2])
        other = json.loads(self.call(path, body)[2])
        self.assertEqual(self.call("/v1beta/%s:cancel" % other["name"],
                                   b"")[0], 200)
        time.sleep(0.25)
        got = json.loads(self.call("/v1beta/" + failed["name"])[2])
        self.assertEqual(got["metadata"]["state"], "BATCH_STATE_FAILED")
        self.assertIn("error", got)
        got = json.loads(self.call("/v1beta/" + other["name"])[2])
        self.assertEqual(got["metadata"]["state"], "BATCH_STATE_CANCELLED")
        listed = json.loads(self.call("/v1beta/batches?pageSize=1")[2])
        self.assertEqual(len(listed["operations"]), 1)
        self.assertIn("nextPageToken", listed)
        self.assertEqual(self.call("/v1beta/" + other["name"],
                                   method="DELETE")[0], 200)
        self.assertEqual(self.call("/v1beta/" + other["name"])[0], 404)
        status, _, data = self.call(path, {"batch": {"inputConfig": {}}})
        self.assertEqual(status, 400)

    def test_vertex_tokens_and_express(self):
        path = ("/v1/projects/p/locations/us-central1/publishers/google/"
                "models/gemini-3-pro-image:generateContent")
        tok = {"Authorization": "Bearer ya29.test-token"}
        status, _, body = http_call(self.base, path, prompt("x"), tok)
        self.assertEqual(status, 200, body)
        status, _, body = http_call(self.base, path, prompt("x"),
                                    {"x-goog-api-key": KEY})
        self.assertEqual(status, 401)
        self.assertIsInstance(json.loads(body), list)
        http_call(self.base, "/_nb/tokens", {"expire": ["ya29.test-token"]})
        status, _, body = http_call(self.base, path, prompt("x"), tok)
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(body)[0]["error"]["details"][0]["reason"],
                         "ACCESS_TOKEN_EXPIRED")
        express = "/v1/publishers/google/models/gemini-3-pro-image:" \
                  "generateContent"
        body = prompt("x")
        body["generationConfig"] = {"imageConfig": {
            "personGeneration": "ALLOW_NONE"}}
        status, _, data = http_call(self.base, express, body,
                                    {"x-goog-api-key": KEY})
        self.assertEqual(status, 200, data)
        status, _, data = self.call(gen_path("gemini-3-pro-image"), body)
        self.assertEqual(status, 400)
        self.assertIn('Unknown name "personGeneration"',
                      json.loads(data)["error"]["message"])

    def test_count_tokens(self):
        path = "/v1beta/models/gemini-3-pro-image:countTokens"
        status, _, body = self.call(path, {"contents": prompt("12345678")[
            "contents"]})
        self.assertEqual(json.loads(body)["totalTokens"], 2)
        inner = dict(prompt("12345678"), model="models/gemini-3-pro-image")
        status, _, body = self.call(path, {"generateContentRequest": inner})
        self.assertEqual((status, json.loads(body)["totalTokens"]), (200, 2))
        status, _, _ = self.call(path, {"contents": [],
                                        "generateContentRequest": inner})
        self.assertEqual(status, 400)
        http_call(self.base, "/_nb/retire",
                  {"models": ["gemini-3-pro-image"]})
        self.assertEqual(self.call(path, {"contents": prompt("x")[
            "contents"]})[0], 404)
        self.assertEqual(self.call(gen_path("gemini-3-pro-image"),
                                   prompt("x"))[0], 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
