"""Google-shaped errors and the protocol's constant messages."""



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
# a part {"text": ""} (reported by users of generativelanguage.googleapis.com,
# e.g. github.com/glowingjade/obsidian-smart-composer/issues/218)
MSG_EMPTY_TEXT = ("Unable to submit request because it has an empty text "
                  "parameter. Add a value to the parameter and try again. "
                  "Learn more: https://cloud.google.com/vertex-ai/generative-ai"
                  "/docs/model-reference/gemini")
SKIP_SIGNATURE = "skip_thought_signature_validator"

STATUS_NAMES = {
    200: "OK", 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
    402: "RESOURCE_EXHAUSTED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 408: "DEADLINE_EXCEEDED", 409: "ABORTED",
    413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
    500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

JSON_TYPE = "application/json; charset=UTF-8"
SSE_TYPE = "text/event-stream"

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
