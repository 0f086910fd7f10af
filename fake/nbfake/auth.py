"""Auth: API keys (x-goog-api-key, ?key=, Authorization: Bearer) for the
Gemini API; the echo_auth fault's error."""

import re

from .errors import ApiError, MSG_BAD_KEY, MSG_NO_CREDS, MSG_UNAUTH


def check_auth(ctx, cfg):
    """Accept x-goog-api-key, Authorization: Bearer or ?key= (one of them)."""
    if cfg.no_auth:
        return
    goog = ctx.headers.get("x-goog-api-key", "").strip()
    authz = ctx.headers.get("authorization", "").strip()
    if goog and authz:
        raise unauthenticated()
    if authz:
        match = re.match(r"(?i)bearer\s+(\S+)\s*$", authz)
        if not match:
            raise unauthenticated()
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


def unauthenticated():
    return ApiError(401, MSG_UNAUTH, details=[{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED", "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com",
                     "method": "google.ai.generativelanguage.v1beta."
                               "GenerativeService.GenerateContent"}}])


def echo_auth_error(ctx):
    """400 whose message repeats the credentials (tests secret scrubbing)."""
    seen = ["%s: %s" % (h, ctx.headers[h]) for h in ("x-goog-api-key",
                                                     "authorization")
            if h in ctx.headers]
    if "key" in ctx.query:
        seen.append("key=%s" % ctx.query["key"])
    return ApiError(400, "%s The request carried: %s." % (
        MSG_BAD_KEY, "; ".join(seen) or "no credentials"))
