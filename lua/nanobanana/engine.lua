--- Engine driving (mixed into the Client class): poll() collects what the
-- engine's worker finished, starts due retries, reports progress, and fires
-- the callbacks (on_progress, on_event, on_done) on the caller's Lua state.
local core = require "nanobanana.core"
local errors = require "nanobanana.errors"

local M = {}

-- The earliest retry time of this client's requests, or nil.
function M:_next_retry()
  local t
  for req in pairs(self._reqs) do
    if req._retry_at and (not t or req._retry_at < t) then t = req._retry_at end
  end
  return t
end

-- budget (seconds): stop handling finished transfers once it is spent; the
-- rest stay queued in the engine for the next call (poll() keeps frames short)
function M:_collect(budget)
  local eng = self._engine
  local t0 = budget and core.now()
  local handled = 0
  while true do
    if budget and handled > 0 and core.now() - t0 >= budget then break end
    local x = eng:next_done()
    if not x then break end
    handled = handled + 1
    local req = self._by_xfer[x]
    self._by_xfer[x] = nil
    if req and req._xfer == x then req:_on_xfer_done(x) end
    x:close() -- frees its buffers and any temp file nobody kept
  end
  local now = core.now()
  local due = {}
  for req in pairs(self._reqs) do
    if req._retry_at and now >= req._retry_at then due[#due + 1] = req end
    if req._stream and req._xfer then req:_pull_events(req._xfer, false) end
  end
  for _, req in ipairs(due) do
    req._retry_at = nil
    req:_attempt()
  end
end

-- In a forked child: every request fails at once (its transfer is the
-- parent's, and is left alone); start() refuses new ones the same way.
function M:_fail_forked()
  local live = {}
  for req in pairs(self._reqs) do live[#live + 1] = req end
  for _, req in ipairs(live) do
    if req._xfer then self._by_xfer[req._xfer] = nil; req._xfer = nil end
    req:_finish(nil, errors.new("network", {
      message = "this client was made before fork(): it cannot be used in the forked child; make a new client there",
    }))
  end
end

-- on_progress: a phase change at once, moving byte counts about 10 times a
-- second (the engine wakes a blocking wait at most every 0.1 s for them)
local PROGRESS_EVERY = 0.08

local function progress_due(p, last, now)
  if p.phase ~= last.phase then return true end
  local moved = p.uploaded ~= last.uploaded or p.downloaded ~= last.downloaded
      or p.upload_total ~= last.upload_total or p.download_total ~= last.download_total
  return moved and now - last.t >= PROGRESS_EVERY
end

--- Drives every transfer without blocking and fires due callbacks.
-- @treturn integer number of unfinished requests
function M:poll()
  if self._closed then return 0 end
  if self._engine:forked() then self:_fail_forked() end
  self._engine:perform(0)
  self:_collect(self.options.poll_budget)
  local live = {}
  for req in pairs(self._reqs) do live[#live + 1] = req end
  for _, req in ipairs(live) do
    if req._xfer then
      req._xfer:progress(req.progress)
      if req._adjust_progress then req:_adjust_progress() end -- (multi-exchange service calls)
      req.progress.elapsed = core.now() - req._t0
    end
    local cb = req._on_progress
    if cb and not req._finished then
      local now = core.now()
      local last = req._last_progress or { t = -math.huge }
      if progress_due(req.progress, last, now) then
        local p = req.progress
        req._last_progress = { phase = p.phase, uploaded = p.uploaded, downloaded = p.downloaded,
                               upload_total = p.upload_total, download_total = p.download_total, t = now }
        cb(p)
      end
    end
  end
  self:_fire_events()
  self:_fire_done()
  if not self._closed then self._engine:settle() end -- the fd is quiet until there is new work
  local n = 0
  for _ in pairs(self._reqs) do n = n + 1 end
  return n
end

--- The pollable protocol (cqueues' pollfd/events/timeout; LuaSocket's
-- getfd/dirty): an fd that is readable whenever poll() has something to do
-- (a transfer finished, a stream event arrived, progress moved for a request
-- with on_progress: about 10 Hz), quiet otherwise; poll() drains it.
-- @treturn integer fd (-1 once the client is closed)
function M:pollfd()
  if self._closed then return -1 end
  return self._engine:pollfd()
end

--- The events to wait for on pollfd(): "r".
function M.events() return "r" end

--- Seconds until poll() must run even if the fd stays quiet (a retry timer,
-- callbacks already due), or nil when only the fd can bring work.
-- @treturn number|nil
function M:timeout()
  if self._qhead or next(self._evreqs) then return 0 end
  local t = self:_next_retry()
  if not t then return nil end
  local dt = t - core.now()
  return dt > 0 and dt or 0
end

-- LuaSocket's select: client:getfd() is pollfd()
M.getfd = M.pollfd

--- LuaSocket's select: true when poll() has work the fd does not show
-- (timeout() == 0).
function M:dirty() return self:timeout() == 0 end

-- Fires the queued stream events (inside poll()), in order, one request at
-- a time; an error in on_event reaches poll's caller, the queue stays sound.
function M:_fire_events()
  while true do
    local req = next(self._evreqs)
    if not req then return end
    local q = req._evq
    if #q == 0 then
      self._evreqs[req] = nil
    else
      local ev = table.remove(q, 1)
      if #q == 0 then self._evreqs[req] = nil end
      req._on_event(ev)
    end
  end
end

-- Fires the last on_progress (phase "done") and then on_done of the
-- finished requests, in finishing order.
function M:_fire_done()
  while self._qhead do
    local req = self._qhead
    if req._on_progress and not req._told_done then
      req._told_done = true
      req._on_progress(req.progress) -- an error here reaches poll's caller; on_done fires on the next one
    end
    self._qhead = req._qnext
    if not self._qhead then self._qtail = nil end
    req._qnext = nil
    if req._on_done then
      req._on_done(req:result()) -- an error here reaches poll's caller; the queue is consistent
    end
  end
end

return M
