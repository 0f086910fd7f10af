--- Stream plumbing for requests (mixed into nanobanana.request): each SSE
-- event the engine decoded becomes a response chunk kept for the merge, its
-- parts queued as on_event events, which the client fires inside poll().
local result = require "nanobanana.result"

local M = {}

-- One decoded response of a stream: kept for the merge, its parts queued as
-- events (fired by poll()).
function M:_add_chunk(decoded)
  self._chunks[#self._chunks + 1] = decoded
  if self._on_event then
    local q = self._evq
    for _, e in ipairs(result.events(decoded)) do q[#q + 1] = e end
    self._client._evreqs[self] = true
  end
end

-- Takes the events the engine has for this stream (all of them when wait).
function M:_pull_events(x, wait)
  local c = self._client
  local secrets = c:_secrets()
  while true do
    local sk, ev = x:next_event(wait)
    if not sk then return end
    local decoded, err = result.decode(sk, 200, nil, secrets)
    if decoded then decoded, err = result.check_shape(decoded, 200, secrets) end
    if decoded then
      decoded, err = result.materialize(decoded, function(i, part) return self:_take_blob(ev, i, part) end, secrets)
    end
    ev:close()
    if decoded then
      if not self._stream_err then self:_add_chunk(decoded) end
    else
      self._stream_err = self._stream_err or err -- the first error stands
    end
  end
end

-- Stream events not fired yet are dropped (the request was cancelled).
function M:_drop_events()
  if self._evq then
    self._evq = {}
    self._client._evreqs[self] = nil
  end
end

return M
