"""countTokens: ``POST {prefix}/{v}/models/{m}:countTokens`` (Gemini API) and
``.../publishers/google/models/{m}:countTokens`` (Vertex AI, through vertex).

The body is ``{"contents": [...]}`` or ``{"generateContentRequest": {"model":
"models/{m}", ...}}`` (one of the two, as the real service requires).  The
answer is ``{"totalTokens", "promptTokensDetails"}``, counted the way the
generate answers' ``usageMetadata.promptTokenCount`` is (text: 4 characters
a token; an image: 258 tokens, 1120 for Gemini 3 models).
"""

import re

from .auth import check_auth
from .errors import ApiError, bad_request
from .models import MODELS
from .reply import Reply
from .util import B64Memo
from .validate import REQUEST, normalize, validate

COUNT_RE = re.compile(
    r"^(?P<prefix>.*?)(?:/(?P<version>v1beta|v1alpha|v1))?/models/"
    r"(?P<model>(?:models/)?[^/:]+):countTokens$")


def not_found(model_id, version):
    return ApiError(404, "models/%s is not found for API version %s, or is "
                    "not supported for countTokens. Call ListModels to see "
                    "the list of available models and their supported "
                    "methods." % (model_id, version or "v1beta"))


VERTEX_KEYS = ("contents", "systemInstruction", "tools", "generationConfig")


def count(app, body, model_id, version, vertex=False):
    """The countTokens answer for a parsed body (raises ApiError). Vertex
    takes contents with systemInstruction, tools and generationConfig
    beside them, not generateContentRequest."""
    spec = None if model_id in app.retired else MODELS.get(model_id)
    if spec is None:
        raise not_found(model_id, version)
    if not isinstance(body, dict):
        raise bad_request("Invalid JSON payload received.", violation=False)
    if vertex:
        from .vertex import REQUEST_VERTEX
        req = normalize(body, {k: REQUEST_VERTEX[k] for k in VERTEX_KEYS}, "",
                        "CountTokensRequest")
        if "contents" not in req:
            raise bad_request("contents is required.", violation=False)
        return _tokens(app, req, spec, model_id)
    unknown = [k for k in body if k not in ("contents",
                                            "generateContentRequest")]
    if unknown:
        raise bad_request('Invalid JSON payload received. Unknown name "%s":'
                          ' Cannot find field.' % unknown[0])
    if ("contents" in body) == ("generateContentRequest" in body):
        raise bad_request("Exactly one of contents and "
                          "generateContentRequest must be set.",
                          violation=False)
    if "contents" in body:
        req = normalize({"contents": body["contents"]}, REQUEST, "",
                        "CountTokensRequest")
    else:
        inner = body["generateContentRequest"]
        if not isinstance(inner, dict):
            raise bad_request("generateContentRequest must be an object.",
                              violation=False)
        inner = dict(inner)
        name = inner.pop("model", None)
        if name not in ("models/" + model_id, model_id):
            raise bad_request("generateContentRequest.model must be "
                              "models/%s (got %r)." % (model_id, name),
                              violation=False)
        req = normalize(inner, REQUEST, "generate_content_request",
                        "GenerateContentRequest")
    return _tokens(app, req, spec, model_id)


def _tokens(app, req, spec, model_id):
    plan = validate(req, spec, model_id, B64Memo())
    app.files.check_references(req)
    images = plan.input_images + sum(
        1 for c in req.get("contents") or [] for p in c.get("parts") or []
        if "fileData" in p)
    chars = plan.text_chars + sum(
        len(p.get("text", "")) for p in
        (req.get("systemInstruction") or {}).get("parts") or []
        if isinstance(p.get("text"), str))
    text = max(1, -(-chars // 4))
    img = images * (1120 if spec.gemini3 else 258)
    details = [{"modality": "TEXT", "tokenCount": text}]
    if img:
        details.append({"modality": "IMAGE", "tokenCount": img})
    return {"totalTokens": text + img, "promptTokensDetails": details}


class CountTokens:
    """The Gemini API countTokens route."""

    def __init__(self, app):
        self.app = app

    def route(self, ctx):
        m = COUNT_RE.match(ctx.path)
        if not m or ctx.method != "POST":
            return None
        return lambda: Reply.json(count(self.app, self.app.json_body(ctx),
                                        m.group("model").replace(
                                            "models/", "", 1),
                                        m.group("version")))

    def auth(self, ctx):
        check_auth(ctx, self.app.cfg)

    @staticmethod
    def error_reply(err):
        return Reply.error(err)
