"""Shared state: the request log, the fault queue, issued thought signatures."""

import base64
import collections
import os
import threading

from .util import to_camel

# ---------------------------------------------------------------------------
# Shared state: request log, fault queue, issued thought signatures
# ---------------------------------------------------------------------------


class Signatures:
    """Thought signatures issued by this process (bounded, thread-safe)."""

    def __init__(self, limit=1_000_000):
        self.items = collections.OrderedDict()
        self.limit = limit
        self.lock = threading.Lock()

    def issue(self):
        """A new opaque signature (base64 of 48 random bytes)."""
        sig = base64.b64encode(os.urandom(48)).decode()
        with self.lock:
            self.items[sig] = True
            if len(self.items) > self.limit:
                self.items.popitem(last=False)
        return sig

    def known(self, sig):
        with self.lock:
            return sig in self.items


SIGNATURES = Signatures()


class State:
    """Request log and fault queue, shared by all handler threads."""

    def __init__(self, record=True):
        self.record = record
        self.lock = threading.Lock()
        self.log = []
        self.faults = collections.deque()
        self.seq = 0

    def add_record(self, rec):
        """Append a record when its request arrives (filled in later)."""
        if not self.record:
            return
        with self.lock:
            self.seq += 1
            rec["seq"] = self.seq
            self.log.append(rec)

    def records(self):
        """Shallow copies: handler threads replace values, never add keys."""
        with self.lock:
            return [dict(r) for r in self.log]

    def last(self):
        with self.lock:
            return dict(self.log[-1]) if self.log else None

    def reset(self):
        with self.lock:
            self.log.clear()
            self.faults.clear()

    def push_faults(self, faults):
        with self.lock:
            self.faults.extend(faults)
            return len(self.faults)

    def pop_fault(self):
        with self.lock:
            return self.faults.popleft() if self.faults else None

    def pop_fault_if(self, pred):
        """The first queued fault if pred(fault) holds (popped), else None."""
        with self.lock:
            if self.faults and pred(self.faults[0]):
                return self.faults.popleft()
            return None

    def queued(self):
        with self.lock:
            return list(self.faults)


def summarize_body(body, memo):
    """Copy of a request body with every inlineData.data summarised."""
    if isinstance(body, list):
        return [summarize_body(v, memo) for v in body]
    if not isinstance(body, dict):
        return body
    out = {}
    for key, value in body.items():
        if (to_camel(key) == "inlineData" and isinstance(value, dict)):
            value = dict(value)
            if isinstance(value.get("data"), str):
                text = value["data"]
                data = memo.decode(text)
                value["data"] = ({"sha256": memo.sha256(text),
                                  "bytes": len(data), "b64_chars": len(text)}
                                 if data is not None else
                                 {"invalid": True, "b64_chars": len(text),
                                  "head": text[:40]})
            out[key] = value
        else:
            out[key] = summarize_body(value, memo)
    return out
