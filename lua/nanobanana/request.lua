--- Requests: one call's lifecycle on its client's engine — attempts,
-- retries, building the result (with output= placed), finishing, waiting,
-- cancelling, and nb.await. Stream plumbing is mixed in from
-- nanobanana.stream.
local core = require "nanobanana.core"
local errors = require "nanobanana.errors"
local models = require "nanobanana.models"
local image = require "nanobanana.image"
local options = require "nanobanana.options"
local result = require "nanobanana.result"
local util = require "nanobanana.util"

local M = {}

local Request = { __name = "nanobanana.Request" }
Request.__index = Request
M.Request = Request
for k, f in pairs(require "nanobanana.stream") do Request[k] = f end

local function new_progress()
  return { phase = "connecting", uploaded = 0, upload_total = 0, downloaded = 0, download_total = 0,
           elapsed = 0, attempt = 1 }
end

-- A request object of client c for call options opts (checked by the
-- caller against options.CALL), not yet started.
function M.new(c, opts, level)
  level = (level or 1) + 1
  if opts.output ~= nil and (opts.output == "" or opts.output:sub(-1) == "/") then
    options.fail(level, "output must be a file path")
  end
  for _, k in ipairs { "timeout", "connect_timeout", "stall_timeout" } do
    if opts[k] ~= nil and opts[k] < 0 then options.fail(level, "%s must not be negative", k) end
  end
  if opts.retries ~= nil and (opts.retries < 0 or opts.retries % 1 ~= 0) then
    options.fail(level, "retries must be a whole number >= 0")
  end
  return setmetatable({
    state = "running", progress = new_progress(), attempts = 0, model = opts.model or c.options.model,
    _client = c, _t0 = core.now(), _on_done = opts.on_done, _on_progress = opts.on_progress,
    _output = opts.output, _retries = opts.retries or c.options.retries,
  }, Request)
end

function Request:_attempt()
  local c = self._client
  if self._stream then self._chunks, self._stream_err = {}, nil end
  self.attempts = self.attempts + 1
  self.progress.attempt = self.attempts
  self.progress.phase = "connecting"
  local x, err = c:_start_xfer(self._spec)
  if not x then return self:_finish(nil, err) end
  self._xfer = x
  c._by_xfer[x] = self
end

-- Only transport failures and the retry statuses are retried; local
-- failures (config, memory, io, too_large, ...) never are.
function M.retryable(err)
  if err.kind == "network" or err.kind == "stall" or err.kind == "timeout" then return true end
  return (err.kind == "api" or err.kind == "http") and result.RETRY_STATUS[err.status] == true
end

-- the output= file: the first final image moves into place, atomically (a
-- file it replaces is deleted by the engine's worker, off this thread)
local function place_output(engine, res, path)
  local first = res.images[1]
  local ok, msg = engine:replace_file(first.path, path)
  if not ok then return nil, msg end
  first.path = path
  return true
end

-- The engine finished transfer x of this request: retry, or finish.
function Request:_on_xfer_done(x)
  local c = self._client
  local secrets = c:_secrets()
  self._xfer = nil
  x:progress(self.progress)
  local r = x:result()
  if self._stream then self:_pull_events(x, true) end -- every event the engine has, first
  local res, err
  if self._stream_err then
    err = self._stream_err
  elseif r.kind ~= "ok" then
    err = errors.new(r.kind, { message = r.message, status = r.status ~= 0 and r.status or nil }, secrets)
  elseif not r.skeleton and not r.sse then
    err = result.http_error(r.status, r.body, r.headers, secrets)
    if err.status == 404 then models._hint_error(err, self.model) end
  else
    res, err = self:_result(x, r, secrets)
  end
  if res then res.http = { version = r.http_version, new_connections = r.new_connections } end
  if err and err.status == 401 and c._vertex and not self._reauthed and self.state == "running" then
    self._reauthed = true -- Vertex AI: once, with a fresh token
    local ok, aerr = c:_reauth()
    if ok then
      self._retry_at = core.now()
      return
    end
    err = aerr or err
  end
  if err then
    err.attempts = self.attempts
    -- a stream is retried only before its first event arrived
    local fresh = not (self._stream and #self._chunks > 0)
    if self.state == "running" and fresh and M.retryable(err) and self.attempts <= self._retries then
      local delay = err.retry_after
      local o = c.options
      if delay and delay > o.max_retry_delay then
        return self:_finish(nil, err)
      end
      if not delay then
        delay = math.random() * math.min(30, o.retry_base_delay * 2 ^ (self.attempts - 1))
      end
      self._retry_at = core.now() + delay
      self.progress.phase = "retrying"
      return
    end
  end
  return self:_finish(res, err)
end

-- Blob i of a response or of a stream event (src: the Xfer or the Event),
-- for result.materialize. In memory it is a Blob (C memory); with output= every blob
-- is a temp file: the first final image stays there (moved into place at the
-- end, or deleted by _finish), any other is read into memory now (src
-- deletes its files when it is closed). holder._kept names the kept file
-- (a request, or a batch result line).
function M.take_blob(src, i, part, holder)
  local v, how = src:blob(i)
  if how ~= "file" then return v, how end
  local blob = util.blob_of(part)
  local mime = blob and util.mime_type(blob)
  if not holder._kept and part.thought ~= true and type(mime) == "string" and mime:sub(1, 6) == "image/" then
    src:keep_file(i)
    holder._kept = v
    return v, how
  end
  local bytes, ferr = core.read_file(v)
  if not bytes then return ferr, nil end
  return bytes, "data"
end

function Request:_take_blob(src, i, part) return M.take_blob(src, i, part, self) end

-- The result of a finished 2xx transfer: its response, or a stream's
-- responses merged; with output=, the first final image moved into place.
function Request:_result(x, r, secrets)
  local function take(i, part) return self:_take_blob(x, i, part) end
  local decoded, err
  if not (self._stream and r.sse) then -- (an SSE stream's events were taken as they came)
    decoded, err = result.decode(r.body, r.status, r.headers, secrets)
    if not decoded then return nil, err end
    if self._stream then
      -- plain JSON instead of SSE (some gateways): one response, or an array of them
      for _, d in ipairs(decoded[1] ~= nil and decoded or { decoded }) do
        if type(d) ~= "table" then
          return nil, errors.new("invalid_response", { message = "a stream item is not a JSON object", status = r.status }, secrets)
        end
        local ok, ierr = result.check_shape(d, r.status, secrets)
        if ok then ok, ierr = result.materialize(d, take, secrets) end
        if not ok then return nil, ierr end
        self:_add_chunk(d)
      end
    else
      decoded, err = result.materialize(decoded, take, secrets)
      if not decoded then return nil, err end
    end
  end
  if self._stream then
    if #self._chunks == 0 then
      return nil, errors.new("invalid_response", { message = "the stream ended without a response", status = r.status }, secrets)
    end
    decoded = result.merge(self._chunks)
  end
  local res, rerr = result.from_response(decoded, r.status, secrets)
  if not res then return nil, rerr end
  if self._stream then res.chunks = #self._chunks end
  if self._output then
    if res.images[1].path ~= self._kept then -- the kept file is not the first image: cannot happen
      return nil, errors.new("io", { message = "the output image was not kept" }, secrets)
    end
    local ok, msg = place_output(self._client._engine, res, self._output)
    if not ok then return nil, errors.new("io", { message = tostring(msg) }, secrets) end
    self._kept = nil
  end
  return res
end

function Request:_finish(res, err)
  if self._finished then return end
  local c = self._client
  self._finished = true
  self._retry_at = nil
  if self._spec then image.release_segments(self._spec.body) end -- images' C memory it held
  self._spec = nil
  if self._kept then -- an output= image that will not be placed
    os.remove(self._kept)
    self._kept = nil
  end
  self.progress.elapsed = core.now() - self._t0
  self.progress.phase = "done"
  if res then
    res.attempts = self.attempts
    res.elapsed = self.progress.elapsed
    self.state = "done"
  else
    err.attempts = err.attempts or self.attempts
    self.state = err.kind == "cancelled" and "cancelled" or "failed"
  end
  self._res, self._err = res, err
  c._reqs[self] = nil
  if self._on_finish then self._on_finish(self, res, err) end
  if self._on_done or self._on_progress then -- on_progress gets its last call ("done") first
    if c._qtail then c._qtail._qnext = self else c._qhead = self end
    c._qtail = self
  end
end

--- res | nil, err once finished; false while still running.
function Request:result()
  if not self._finished then return false end
  if self._res then return self._res end
  return nil, self._err
end

--- Cancels the request; on_done fires (with kind "cancelled") on the next poll/wait.
function Request:cancel()
  if self._finished then return end
  self:_drop_events()
  local x = self._xfer
  if x then
    self._xfer = nil
    x:drop_files() -- output= temp files go now, not when poll() frees x
    x:cancel() -- the engine drops the transfer; poll() then frees it
  end
  self:_finish(nil, errors.new("cancelled", { message = "cancelled" }))
end

--- Blocks until finished (or timeout seconds): res | nil, err; false on timeout.
function Request:wait(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    error("nanobanana: wait(timeout) takes seconds >= 0", 2)
  end
  local c = self._client
  local deadline = timeout and core.now() + timeout
  while true do
    c:poll()
    if self._finished then return self:result() end
    local now = core.now()
    if deadline and now >= deadline then return false end
    local ms = 250
    if deadline then ms = math.min(ms, (deadline - now) * 1000) end
    local next_retry = c:_next_retry()
    if next_retry then ms = math.min(ms, (next_retry - now) * 1000) end
    c._engine:perform(math.max(1, math.floor(ms)))
  end
end

-- The blocking form of a call that made this request itself (generate,
-- stream, chat:send, upload, ...): req:wait(). When a callback raises in it
-- (this request's or another's), nobody is left to take this request's
-- result: it is cancelled, none of its callbacks fires again, and the error
-- goes on to the caller.
function Request:_run()
  local ok, res, err = pcall(self.wait, self)
  if ok then
    if res then return res end -- (one value, as wait gives it: assert(client:generate(...)) passes one on)
    return res, err
  end
  self:_abandon()
  error(res, 0)
end

-- Cancelled with its callbacks dropped (its queued events and on_done too).
function Request:_abandon()
  self._on_done, self._on_progress, self._on_event = nil, nil, nil
  self:cancel()
  self:_drop_events()
end

--- Inside a coroutine: yields req until it has finished, then its result.
-- Outside one: req:wait().
function M.await(req)
  if getmetatable(req) ~= Request then error("nanobanana: await(req) needs a request from client:start", 2) end
  local co, main = coroutine.running()
  if co and not main and (not coroutine.isyieldable or coroutine.isyieldable()) then
    local lp = rawget(req._client, "_loop") -- a loop adapter (nanobanana.loop) may own the yields
    if lp then return lp:await(req) end
    while not req._finished do coroutine.yield(req) end
    return req:result()
  end
  return req:wait()
end

--- req:await(): nb.await(req).
function Request:await() return M.await(self) end

function Request:__tostring()
  return string.format("nanobanana.Request (%s, %s)", self.model, self.state)
end

return M
