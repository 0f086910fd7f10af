"""Batch API: jobs whose state advances over time, inline and file input,
inline and file output (a JSONL results file with real images).

Routes (Gemini API auth):

- ``POST {prefix}/{v}/models/{m}:batchGenerateContent`` with
  ``{"batch": {"displayName", "inputConfig": {"requests": {"requests":
  [{"request": {...}, "metadata": {...}}]}} | {"fileName": "files/..."}}}``
  → the job (an Operation: ``name``, ``metadata`` with ``state``,
  ``batchStats``, ``output`` ..., ``done``).
- ``GET {v}/batches/{id}``, ``GET {v}/batches?pageSize=&pageToken=``
  (``{"operations": [...], "nextPageToken"}``), ``POST {v}/batches/{id}:cancel``,
  ``DELETE {v}/batches/{id}``.

A job is ``BATCH_STATE_PENDING`` for one step (``--batch-step-ms``, default
300 ms), ``BATCH_STATE_RUNNING`` for another, then ``SUCCEEDED`` — or
``FAILED`` / ``EXPIRED`` when a ``batch_failed`` / ``batch_expired`` fault is
queued when it is created or marked in its displayName.  Each item is
validated and answered like a generate request (a ``[[fault:...]]`` marker in
an item's prompt applies to that item; an error fault or an invalid request
becomes that item's ``error``).  Inline input is answered inline
(``output.inlinedResponses.inlinedResponses``, request order); file input gets
``output.responsesFile = "files/batch-{id}"``, a generated file whose
``:download?alt=media`` is JSONL: one ``{"key", "response"}`` or
``{"key", "error"}`` line per input line, in input order.
"""

import base64
import json
import re
import threading
import time

from .auth import check_auth
from .errors import ApiError, bad_request
from .faults import error_for_fault, fault_from_prompt
from .files import file_record, not_found as file_not_found, rfc3339
from .models import MODELS
from .reply import JsonBody, Reply
from .answer import answer_object
from .util import B64Memo, random_id
from .validate import REQUEST, normalize, validate

CREATE_RE = re.compile(
    r"^(?P<prefix>.*?)/(?P<version>v1beta|v1alpha|v1)/models/"
    r"(?P<model>(?:models/)?[^/:]+):batchGenerateContent$")
BATCHES_RE = re.compile(
    r"^(?P<prefix>.*?)/(?P<version>v1beta|v1alpha|v1)/batches"
    r"(?:/(?P<id>[^/:]+)(?P<cancel>:cancel)?)?$")
BATCH_FAULTS = {"batch_failed": "BATCH_STATE_FAILED",
                "batch_expired": "BATCH_STATE_EXPIRED"}
TERMINAL = ("BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED",
            "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED")
TYPE = ("type.googleapis.com/google.ai.generativelanguage.v1main."
        "GenerateContentBatch")


class Item:
    """One request of a job: its key, metadata and plan or error."""

    def __init__(self, key, metadata):
        self.key = key
        self.metadata = metadata
        self.plan = None
        self.fault = None
        self.error = None


class Job:
    def __init__(self, jid, model, display, items, file_input, end, step,
                 base, version):
        self.id = jid
        self.model = model
        self.display = display
        self.items = items
        self.file_input = file_input
        self.end_state = end
        self.step = step
        self.t0 = time.time()
        self.cancelled_at = None
        self.base = base
        self.version = version

    def state(self, now=None):
        now = time.time() if now is None else now
        if self.cancelled_at is not None:
            return "BATCH_STATE_CANCELLED"
        age = now - self.t0
        if age < self.step:
            return "BATCH_STATE_PENDING"
        if age < 2 * self.step:
            return "BATCH_STATE_RUNNING"
        return self.end_state


class Batches:
    """The Batch API routes and the jobs."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.jobs = {}

    def reset(self):
        with self.lock:
            self.jobs.clear()

    def auth(self, ctx):
        check_auth(ctx, self.app.cfg)

    @staticmethod
    def error_reply(err):
        return Reply.error(err)

    def route(self, ctx):
        m = CREATE_RE.match(ctx.path)
        if m:
            if ctx.method != "POST":
                return None
            return lambda: self.create(ctx, m)
        m = BATCHES_RE.match(ctx.path)
        if not m:
            return None
        jid = m.group("id")
        if jid is None:
            return (lambda: self.list(ctx)) if ctx.method == "GET" else None
        if m.group("cancel"):
            return (lambda: self.cancel(jid)) if ctx.method == "POST" \
                else None
        if ctx.method == "GET":
            return lambda: self.get(jid)
        if ctx.method == "DELETE":
            return lambda: self.delete(jid)
        return None

    def control_list(self):
        with self.lock:
            return [{"name": "batches/" + j.id, "state": j.state(),
                     "items": len(j.items)} for j in self.jobs.values()]

    # --- create -------------------------------------------------------------

    def create(self, ctx, m):
        model_id = m.group("model").replace("models/", "", 1)
        spec = None if model_id in self.app.retired else MODELS.get(model_id)
        if spec is None:
            raise ApiError(404, "models/%s is not found for API version %s, "
                           "or is not supported for batchGenerateContent."
                           % (model_id, m.group("version")))
        body = self.app.json_body(ctx)
        batch = body.get("batch")
        if not isinstance(batch, dict):
            raise bad_request('Invalid JSON payload received. "batch" is '
                              'required.', violation=False)
        unknown = [k for k in batch if k not in (
            "displayName", "display_name", "inputConfig", "input_config",
            "priority", "model", "webhookConfig")]
        if unknown:
            raise bad_request('Invalid JSON payload received. Unknown name '
                              '"%s" at \'batch\': Cannot find field.'
                              % unknown[0])
        display = batch.get("displayName") or batch.get("display_name")
        if not isinstance(display, str) or not display:
            raise bad_request("batch.display_name is required.",
                              violation=False)
        source = batch.get("inputConfig") or batch.get("input_config") or {}
        if not isinstance(source, dict):
            raise bad_request("batch.input_config must be an object.",
                              violation=False)
        if "requests" in source:
            reqs = (source.get("requests") or {}).get("requests")
            if not isinstance(reqs, list) or not reqs:
                raise bad_request("batch.input_config.requests.requests must "
                                  "be a non-empty list.", violation=False)
            items = [self._item(i, r.get("request") if isinstance(r, dict)
                                else None,
                                r.get("metadata") if isinstance(r, dict)
                                else None, spec, model_id)
                     for i, r in enumerate(reqs)]
            file_input = False
        elif "fileName" in source or "file_name" in source:
            name = str(source.get("fileName") or source.get("file_name"))
            fid = name.replace("files/", "", 1)
            data = self.app.files.store.bytes_of(fid)
            if self.app.files.store.get(fid) is None:
                raise file_not_found(fid)
            if data is None:
                raise bad_request("The input file %s is too large for the "
                                  "fake server." % name, violation=False)
            items = []
            for i, line in enumerate(data.splitlines()):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    obj = None
                if not isinstance(obj, dict):
                    item = Item(None, None)
                    item.error = bad_request("Line %d of %s is not a JSON "
                                             "object." % (i + 1, name),
                                             violation=False)
                    items.append(item)
                    continue
                items.append(self._item(obj.get("key"), obj.get("request"),
                                        None, spec, model_id))
            if not items:
                raise bad_request("The input file %s has no requests."
                                  % name, violation=False)
            file_input = True
        else:
            raise bad_request("batch.input_config needs requests or "
                              "file_name.", violation=False)
        fault = self.app.state.pop_fault_if(
            lambda f: f.name in BATCH_FAULTS) or fault_from_prompt(display)
        end = BATCH_FAULTS.get(fault.name, "BATCH_STATE_SUCCEEDED") \
            if fault else "BATCH_STATE_SUCCEEDED"
        jid = random_id(9).lower().replace("_", "x").replace("-", "y")
        job = Job(jid, model_id, display, items, file_input, end,
                  self.app.cfg.batch_step, self.app.files.base_url(ctx)
                  + (m.group("prefix") or ""), m.group("version"))
        with self.lock:
            self.jobs[jid] = job
        return self._reply(job)

    def _item(self, key, request, metadata, spec, model_id):
        item = Item(key, metadata)
        try:
            if not isinstance(request, dict):
                raise bad_request("Each batch item needs a request object.",
                                  violation=False)
            request = dict(request)
            name = request.pop("model", None)
            if name not in (None, model_id, "models/" + model_id):
                raise bad_request("The request's model %s is not the "
                                  "batch's models/%s." % (name, model_id),
                                  violation=False)
            memo = B64Memo()
            req = normalize(request, REQUEST, "", "GenerateContentRequest")
            item.plan = validate(req, spec, model_id, memo)
            self.app.files.check_references(req)
            item.fault = fault_from_prompt(item.plan.prompt)
            if item.fault:
                item.error = error_for_fault(item.fault, model_id)
        except ApiError as err:
            item.error = err
        return item

    # --- answers ------------------------------------------------------------

    def _stats(self, job, state):
        n = len(job.items)
        failed = sum(1 for i in job.items if i.error is not None)
        stats = {"requestCount": str(n)}
        if state == "BATCH_STATE_SUCCEEDED":
            stats["successfulRequestCount"] = str(n - failed)
            if failed:
                stats["failedRequestCount"] = str(failed)
        elif state in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
            stats["pendingRequestCount"] = str(n)
        else:
            stats["failedRequestCount"] = str(n)
        return stats

    def _answer(self, item, body):
        """(field, value) of one item's output: response or error."""
        if item.error is not None:
            return "error", item.error.body()["error"]
        ans = self.app.gen.answer(item.plan, body, item.fault)
        return "response", answer_object(ans, item.plan, random_id(12))

    def _reply(self, job, with_output=True):
        state = job.state()
        now = time.time()
        meta = {"@type": TYPE, "model": "models/" + job.model,
                "displayName": job.display, "createTime": rfc3339(job.t0),
                "updateTime": rfc3339(now), "batchStats": self._stats(
                    job, state), "state": state,
                "name": "batches/" + job.id}
        done = state in TERMINAL
        body = JsonBody()
        if done:
            meta["endTime"] = rfc3339(min(now, job.t0 + 2 * job.step))
        if state == "BATCH_STATE_SUCCEEDED" and with_output:
            if job.file_input:
                meta["output"] = {"responsesFile": self._results_file(job)}
            else:
                out = []
                for item in job.items:
                    field, value = self._answer(item, body)
                    entry = {field: value}
                    if item.metadata is not None:
                        entry["metadata"] = item.metadata
                    out.append(entry)
                meta["output"] = {"inlinedResponses": {
                    "inlinedResponses": out}}
        op = {"name": "batches/" + job.id, "metadata": meta, "done": done}
        if state in ("BATCH_STATE_FAILED", "BATCH_STATE_EXPIRED"):
            op["error"] = {"code": 13 if state == "BATCH_STATE_FAILED"
                           else 4, "message": "The batch %s." % (
                               "failed" if state == "BATCH_STATE_FAILED"
                               else "expired before it could run")}
        return Reply(200, body.render(op))

    def _results_file(self, job):
        fid = "batch-" + job.id
        store = self.app.files.store
        if store.get(fid) is None:
            rec = file_record(fid, "batch-%s-results" % job.id,
                              "application/jsonl", 0, b"", job.base,
                              job.version, source="GENERATED")
            del rec["sizeBytes"], rec["sha256Hash"]
            store.add(fid, rec, producer=lambda: self._results(job))
        return "files/" + fid

    def _results(self, job):
        """The JSONL results file: one line per item, input order."""
        body = JsonBody()
        pieces = []
        for item in job.items:
            field, value = self._answer(item, body)
            line = {field: value}
            if item.key is not None:
                line["key"] = item.key
            pieces.append(body.render(line, compact=True))
            pieces.append([b"\n"])
        flat = [p for group in pieces for p in group]
        return Reply(200, flat, "application/octet-stream")

    # --- manage -------------------------------------------------------------

    def _job(self, jid):
        with self.lock:
            job = self.jobs.get(jid)
        if job is None:
            raise ApiError(404, "Batch batches/%s not found." % jid,
                           status="NOT_FOUND")
        return job

    def get(self, jid):
        return self._reply(self._job(jid))

    def cancel(self, jid):
        job = self._job(jid)
        if job.state() not in TERMINAL:
            job.cancelled_at = time.time()
        return Reply.json({})

    def delete(self, jid):
        self._job(jid)
        with self.lock:
            self.jobs.pop(jid, None)
        return Reply.json({})

    def list(self, ctx):
        try:
            size = max(1, min(int(ctx.query.get("pageSize") or 10), 100))
        except ValueError:
            raise bad_request("Invalid pageSize.", violation=False) from None
        token = ctx.query.get("pageToken", "")
        start = int(base64.urlsafe_b64decode(token + "==").decode()) \
            if token else 0
        with self.lock:
            jobs = sorted(self.jobs.values(), key=lambda j: -j.t0)
        page = jobs[start:start + size]
        ops = []
        for job in page:
            ops.append(json.loads(b"".join(self._reply(
                job, with_output=False).pieces)))
        out = {}
        if ops:
            out["operations"] = ops
        if start + size < len(jobs):
            out["nextPageToken"] = base64.urlsafe_b64encode(
                str(start + size).encode()).decode().rstrip("=")
        return Reply.json(out)
