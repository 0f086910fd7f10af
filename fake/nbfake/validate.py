"""Request validation: the JSON schema (camelCase, unknown names, types) and the
semantic checks of a generateContent request (per-model ratios, sizes, images,
thinking, signatures)."""

import re

from .errors import (ApiError, MSG_BAD_IMAGE, MSG_EMPTY_TEXT, MSG_INTERNAL,
                     SKIP_SIGNATURE, bad_request, unknown_field)
from .models import INPUT_MIME_TYPES
from .state import SIGNATURES
from .util import B64Memo, json_preview, sniff_image, to_camel, to_snake

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
            if part.get("text") == "" and "thoughtSignature" not in part:
                raise bad_request(MSG_EMPTY_TEXT, violation=False)


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
    """At most spec.max_images images in the turn being sent (our wording).

    The real limit's scope is not documented; earlier turns of a
    conversation do not count here (a chat keeps its references)."""
    count = 0
    for content in contents:
        if content.get("role", "user") in ("user", None, ""):
            count += sum(1 for p in content.get("parts") or []
                         if "inlineData" in p or "fileData" in p)
    plan.input_images_user = count
    last = contents[-1] if contents else {}
    if last.get("role", "user") in ("user", None, ""):
        count = sum(1 for p in last.get("parts") or []
                    if "inlineData" in p or "fileData" in p)
    else:
        count = 0
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
