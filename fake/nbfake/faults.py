"""Fault injection: the catalogue, prompt markers, the errors faults produce."""

import re

from .errors import ApiError, MSG_INTERNAL, MSG_OVERLOADED
from .util import fmt_duration, parse_seconds

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
    "echo_key": "200 with the image, whose text part, thought text, "
                "finishMessage and a nested candidate field "
                "(citationMetadata) carry the credential received; two "
                "more text parts carry it split in two",
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


def request_credential(ctx):
    """The key or token a request carried ("" if none)."""
    auth = ctx.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        auth = auth[7:]
    return (ctx.headers.get("x-goog-api-key") or auth
            or ctx.query.get("key") or "")


def echo_key(ans, credential):
    """The echo_key fault: the credential goes into every string field a
    client returns (tests secret scrubbing in results and stream events)."""
    said = "Your credential is %s." % credential
    found = False
    for chunk in ans.chunks:
        for part in chunk:
            if isinstance(part.get("text"), str):
                part["text"] += " " + said
                found = True
    if not found:
        ans.chunks.insert(0, [{"text": said}])
    # and split in two across adjacent text parts (two stream events): only
    # the joined text (res.text, a stream's merge) holds it whole
    last = max(i for i, chunk in enumerate(ans.chunks)
               if any(isinstance(p.get("text"), str) and not p.get("thought")
                      for p in chunk)) if any(
        isinstance(p.get("text"), str) and not p.get("thought")
        for chunk in ans.chunks for p in chunk) else -1
    half = len(credential) // 2
    ans.chunks[last + 1:last + 1] = [[{"text": " Split: " + credential[:half]}],
                                     [{"text": credential[half:] + "."}]]
    ans.finish_message = "Finished for %s" % credential
    ans.extra_candidate = {"citationMetadata": {"citationSources": [
        {"uri": "https://example.com/?key=%s" % credential,
         "title": {"nested": [credential]}}]}}
