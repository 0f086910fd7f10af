"""Vertex AI: the publisher-model paths, OAuth access tokens, express mode.

- ``{prefix}/{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/models/
  {m}:{generateContent|streamGenerateContent|countTokens}`` needs
  ``Authorization: Bearer <token>`` with a token the fake knows and that has
  not expired (``ya29.test-token`` is always valid; more with
  ``POST /_nb/tokens {"add": {"tok": seconds}, "expire": ["tok"]}``).  An API
  key there is refused the way Vertex refuses it (401 CREDENTIALS_MISSING).
- ``{prefix}/{v1|v1beta1}/publishers/google/models/{m}:{method}`` is express
  mode: an API key (``x-goog-api-key``), no project or location.

Errors come back as Vertex often sends them: the Google error object in a
one-element JSON array.  The request schema adds the Vertex-only
``imageConfig`` fields (``personGeneration``, ``prominentPeople``,
``imageOutputOptions``), which the Gemini API rejects as unknown names.
"""

import re
import threading
import time

from .count_tokens import count
from .errors import ApiError, MSG_UNAUTH
from .reply import Reply, render_plain
from .validate import F, GENERATION_CONFIG, IMAGE_CONFIG, INT, REQUEST, STR

VERTEX_RE = re.compile(
    r"^(?P<prefix>.*?)/(?P<version>v1|v1beta1)/"
    r"(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?"
    r"publishers/google/models/(?P<model>[^/:]+):"
    r"(?P<method>generateContent|streamGenerateContent|countTokens)$")

DEFAULT_TOKEN = "ya29.test-token"

IMAGE_CONFIG_VERTEX = dict(IMAGE_CONFIG, personGeneration=STR,
                           prominentPeople=STR,
                           imageOutputOptions=F("message", {
                               "mimeType": STR, "compressionQuality": INT},
                               msg="ImageOutputOptions"))
GENERATION_CONFIG_VERTEX = dict(GENERATION_CONFIG, imageConfig=F(
    "message", IMAGE_CONFIG_VERTEX, msg="ImageConfig"))
REQUEST_VERTEX = dict(REQUEST, generationConfig=F(
    "message", GENERATION_CONFIG_VERTEX, msg="GenerationConfig"))

MSG_KEY_REFUSED = ("API keys are not supported by this API. Expected OAuth2 "
                   "access token or other authentication credentials that "
                   "assert a principal. See https://cloud.google.com/docs/"
                   "authentication")


def _info(reason):
    return [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
             "reason": reason, "domain": "googleapis.com",
             "metadata": {"service": "aiplatform.googleapis.com",
                          "method": "google.cloud.aiplatform.v1."
                                    "PredictionService.GenerateContent"}}]


class Target:
    """A Vertex generate route, as App.handle_generate takes it."""

    def __init__(self, vertex, m):
        self.vertex = vertex
        self.model = m.group("model")
        self.stream = m.group("method") == "streamGenerateContent"
        self.prefix, self.version = m.group("prefix"), m.group("version")
        self.project = m.group("project")
        self.schema = REQUEST_VERTEX

    def auth(self, ctx):
        self.vertex.check(ctx, express=self.project is None)

    @staticmethod
    def error_reply(err):
        return Vertex.error_reply(err)


class Vertex:
    """Vertex AI routes and the access tokens the fake accepts."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.tokens = {}
        self.reset()

    def reset(self):
        with self.lock:
            self.tokens = {DEFAULT_TOKEN: float("inf")}

    def control(self, body):
        """POST /_nb/tokens: {"add": {token: seconds}, "expire": [token]}."""
        if not isinstance(body, dict):
            body = {}
        now = time.time()
        with self.lock:
            for tok, secs in (body.get("add") or {}).items():
                self.tokens[str(tok)] = now + float(secs)
            for tok in body.get("expire") or []:
                if str(tok) in self.tokens:
                    self.tokens[str(tok)] = now - 1
            return {"ok": True, "tokens": len(self.tokens)}

    def check(self, ctx, express):
        h = ctx.headers
        authz = h.get("authorization", "").strip()
        key = h.get("x-goog-api-key", "").strip() or ctx.query.get("key", "")
        if express:
            if key in self.app.cfg.keys and not authz:
                return
            if not key and not authz:
                raise ApiError(401, MSG_KEY_REFUSED,
                               details=_info("CREDENTIALS_MISSING"))
            if authz:
                raise ApiError(401, MSG_UNAUTH,
                               details=_info("ACCESS_TOKEN_TYPE_UNSUPPORTED"))
            raise ApiError(400, "API key not valid. Please pass a valid API "
                           "key.", details=_info("API_KEY_INVALID"))
        m = re.match(r"(?i)bearer\s+(\S+)\s*$", authz)
        if not m:
            raise ApiError(401, MSG_KEY_REFUSED if key else
                           "Request is missing required authentication "
                           "credential. Expected OAuth 2 access token, login "
                           "cookie or other valid authentication credential.",
                           details=_info("CREDENTIALS_MISSING"))
        with self.lock:
            expiry = self.tokens.get(m.group(1))
        if expiry is None:
            raise ApiError(401, MSG_UNAUTH,
                           details=_info("ACCESS_TOKEN_TYPE_UNSUPPORTED"))
        if expiry <= time.time():
            raise ApiError(401, MSG_UNAUTH, details=_info(
                "ACCESS_TOKEN_EXPIRED"))

    # --- routing ------------------------------------------------------------

    def generate_target(self, ctx):
        m = VERTEX_RE.match(ctx.path)
        if not m or ctx.method != "POST" or m.group("method") == "countTokens":
            return None
        return Target(self, m)

    def route(self, ctx):
        m = VERTEX_RE.match(ctx.path)
        if not m or ctx.method != "POST":
            return None
        model = m.group("model")
        return lambda: Reply.json(count(self.app, self.app.json_body(ctx),
                                        model, m.group("version"),
                                        vertex=True))

    def auth(self, ctx):
        m = VERTEX_RE.match(ctx.path)
        self.check(ctx, express=m.group("project") is None)

    @staticmethod
    def error_reply(err):
        return Reply(err.code, [render_plain([err.body()])],
                     headers=err.headers)
