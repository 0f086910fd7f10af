"""Streaming: a generate answer as SSE events (or a JSON array without alt=sse)."""


from .answer import answer_object
from .util import random_id

def render_answer(ans, plan, body, stream, sse):
    """Reply pieces for an Answer: one JSON document or SSE events."""
    response_id = random_id(12)
    if not stream:
        return body.render(answer_object(ans, plan, response_id))
    chunks = ans.chunks if ans.has_candidate and ans.chunks else [None]
    objs = [answer_object(ans, plan, response_id, parts=chunk,
                          final=(i == len(chunks) - 1))
            for i, chunk in enumerate(chunks)]
    if not sse:   # no alt=sse: one JSON array of the chunk objects
        pieces = [b"["]
        for i, obj in enumerate(objs):
            if i:
                pieces.append(b",\r\n")
            pieces.extend(body.render(obj))
        pieces.append(b"]")
        return pieces
    return [[b"data: "] + body.render(obj, compact=True) + [b"\r\n\r\n"]
            for obj in objs]




def truncate_json(pieces, sse):
    """Cut the JSON text in half but keep the HTTP message complete."""
    if not sse:
        whole = b"".join(pieces)
        return [whole[:max(1, len(whole) // 2)]]
    last = b"".join(pieces[-1])[len(b"data: "):-4]
    return pieces[:-1] + [[b"data: ", last[:max(1, len(last) // 2)],
                           b"\r\n\r\n"]]
