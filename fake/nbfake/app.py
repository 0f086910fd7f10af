"""Request handling (transport-independent): routing, the generate handler,
the /_nb/ control endpoints."""

import json
import re
import time
import urllib.parse

from .answer import Generator
from .errors import (ApiError, JSON_TYPE, MSG_BAD_KEY, MSG_NO_CREDS,
                     MSG_UNAUTH, SSE_TYPE, bad_request)
from .faults import (FAULTS, Fault, HTML_502, error_for_fault,
                     echo_key, fault_from_prompt, raw_last_user_text,
                     request_credential, vertex_like_error)
from .models import MODELS
from .reply import JsonBody, Reply, render_plain
from .sse import truncate_json, render_answer
from .state import State, summarize_body
from .util import B64Memo, STOP, json_preview, parse_bytes, parse_seconds
from .validate import REQUEST, normalize, validate

# ---------------------------------------------------------------------------
# Request handling (transport-independent)
# ---------------------------------------------------------------------------

GENERATE_RE = re.compile(
    r"^(?P<prefix>.*?)(?:/(?P<version>v1beta|v1alpha|v1))?/models/"
    r"(?P<model>(?:models/)?[^/:]+):"
    r"(?P<method>generateContent|streamGenerateContent)$")


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
        if name == "echo_key":
            echo_key(ans, request_credential(ctx))
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
            reply.pieces = truncate_json(pieces, sse)
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
