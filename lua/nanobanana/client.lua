--- Clients and requests: one libcurl multi engine per client drives every
-- request; the blocking calls are "start, then wait" on that same engine.
-- User callbacks (on_progress, on_done) run only inside poll()/wait(), on
-- the caller's Lua state, never inside libcurl.
local core = require "nanobanana.core"
local errors = require "nanobanana.errors"
local image = require "nanobanana.image"
local json = require "nanobanana.json"
local options = require "nanobanana.options"
local result = require "nanobanana.result"
local wire = require "nanobanana.wire"

local M = {}

M.DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
M.DEFAULTS = {
  api_version = "v1beta", model = "gemini-2.5-flash-image",
  timeout = 600, connect_timeout = 30, stall_timeout = 120,
  retries = 2, max_retry_delay = 60, retry_base_delay = 1, poll_budget = 0.001,
  max_response_bytes = 512 * 1024 * 1024,
}

local Client = { __name = "nanobanana.Client" }
Client.__index = Client
M.Client = Client

local Request = { __name = "nanobanana.Request" }
Request.__index = Request
M.Request = Request

-- secrets live here, not on the client table, so no dump of a client shows them
local private = setmetatable({}, { __mode = "k" })

local function trim(s)
  if type(s) ~= "string" then return nil end
  s = s:match("^%s*(.-)%s*$")
  if s == "" then return nil end
  return s
end

local function env_key()
  return trim(os.getenv("GOOGLE_API_KEY")) or trim(os.getenv("GEMINI_API_KEY"))
end

local function is_google_host(host)
  return host == "googleapis.com" or host:sub(-#".googleapis.com") == ".googleapis.com"
end

--- nb.new(opts): see README "Options".
function M.new(opts, level)
  level = (level or 1) + 1
  options.check(opts, options.CLIENT, "nb.new options", level)
  opts = opts or {}
  local self = setmetatable({}, Client)
  for k, v in pairs(M.DEFAULTS) do self[k] = v end
  for _, k in ipairs { "model", "api_version", "timeout", "connect_timeout", "stall_timeout", "retries",
                       "max_retry_delay", "retry_base_delay", "max_response_bytes", "proxy", "ca_file", "ca_path",
                       "poll_budget" } do
    if opts[k] ~= nil then self[k] = opts[k] end
  end
  for _, k in ipairs { "timeout", "connect_timeout", "stall_timeout", "max_retry_delay", "retry_base_delay",
                       "max_response_bytes", "poll_budget" } do
    if self[k] < 0 then options.fail(level, "%s must not be negative", k) end
  end
  if self.retries < 0 or self.retries % 1 ~= 0 then options.fail(level, "retries must be a whole number >= 0") end

  local base = opts.base_url or trim(os.getenv("GOOGLE_GEMINI_BASE_URL")) or M.DEFAULT_BASE_URL
  local scheme, host = base:match("^(https?)://%[?([^/%]:]+)")
  if not scheme then options.fail(level, "base_url must start with http:// or https:// (got %q)", base) end
  self.base_url = base:gsub("/+$", "")
  self.host = host:lower()

  local auth = opts.auth or (is_google_host(self.host) and "x-goog-api-key" or "bearer")
  if not options.AUTH[auth] then
    local hint = options.suggest(auth, options.AUTH)
    options.fail(level, "auth must be \"x-goog-api-key\", \"bearer\" or \"none\" (got %q)%s", auth,
      hint and (", did you mean \"" .. hint .. "\"?") or "")
  end
  self.auth = auth
  local key = opts.api_key ~= nil and trim(opts.api_key) or (opts.api_key == nil and env_key() or nil)
  if auth ~= "none" and not key then
    options.fail(level, "no API key: pass api_key, or set GOOGLE_API_KEY or GEMINI_API_KEY (or use auth = \"none\")")
  end

  local secrets, headers = {}, {}
  if key and auth ~= "none" then secrets[#secrets + 1] = key end
  for name, value in pairs(opts.headers or {}) do
    if type(name) ~= "string" or type(value) ~= "string" then
      options.fail(level, "headers must map header names to string values")
    end
    if name:find("[\r\n:]") or value:find("[\r\n]") then
      options.fail(level, "header %q has a forbidden character", name)
    end
    local lname = name:lower()
    if (lname == "authorization" or lname == "x-goog-api-key") then
      if auth ~= "none" then
        options.fail(level, "headers may set %s only with auth = \"none\" (nanobanana sets it from api_key)", name)
      end
      secrets[#secrets + 1] = value
      local bearer = value:match("^[Bb]earer%s+(.+)$")
      if bearer then secrets[#secrets + 1] = bearer end
    end
    headers[#headers + 1] = name .. ": " .. value
  end
  table.sort(headers)
  private[self] = { key = key, secrets = secrets, headers = headers }

  self._engine = core.engine()
  self._reqs = {}      -- unfinished requests (keeps them alive when user code drops them)
  self._by_xfer = {}   -- transfer -> request
  self._evreqs = {}    -- streaming requests with events to fire
  self._qhead, self._qtail = nil, nil -- finished requests whose on_done is due
  return self
end

function Client:__tostring()
  return string.format("nanobanana.Client (%s, model %s, auth %s)", self.base_url, self.model, self.auth)
end

function Client:_secrets() return private[self].secrets end

--- The URL for a model and method.
function Client:url(model, method)
  local path = model
  if not (model:match("^models/") or model:match("^tunedModels/")) then path = "models/" .. model end
  local ver = self.api_version ~= "" and ("/" .. self.api_version) or ""
  return self.base_url .. ver .. "/" .. path .. ":" .. (method or "generateContent")
end

function Client:_headers(timeout)
  local p = private[self]
  local h = {
    "Content-Type: application/json",
    "User-Agent: nanobanana/" .. core.version,
    "x-goog-api-client: nanobanana/" .. core.version,
    "Expect:",
  }
  if timeout and timeout > 0 then h[#h + 1] = "X-Server-Timeout: " .. math.ceil(timeout) end
  if self.auth == "x-goog-api-key" then h[#h + 1] = "x-goog-api-key: " .. p.key
  elseif self.auth == "bearer" then h[#h + 1] = "Authorization: Bearer " .. p.key end
  for _, line in ipairs(p.headers) do h[#h + 1] = line end
  return h
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

-- ---------------------------------------------------------------- requests

local function new_progress()
  return { phase = "connecting", uploaded = 0, upload_total = 0, downloaded = 0, download_total = 0,
           elapsed = 0, attempt = 1 }
end

-- A request object for call options opts (validated), not yet started.
function Client:_new_request(opts, level)
  level = (level or 1) + 1
  if self._closed then options.fail(level, "this client is closed") end
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
    state = "running", progress = new_progress(), attempts = 0, model = opts.model or self.model,
    _client = self, _t0 = core.now(), _on_done = opts.on_done, _on_progress = opts.on_progress,
    _output = opts.output, _retries = opts.retries or self.retries,
  }, Request)
end

-- on_finish(req, res, err), internal: runs when the request finishes, before
-- its on_done is queued (the chat appends its history there).
function Client:_start(prompt, opts, level, on_finish)
  level = (level or 1) + 1
  options.check(opts, options.CALL, "call options", level)
  opts = opts or {}
  local req = self:_new_request(opts, level)
  local model = req.model
  req._on_finish = on_finish

  local stream = opts.stream or (opts.stream == nil and opts.on_event ~= nil)
  if opts.on_event ~= nil and not stream then options.fail(level, "on_event needs stream = true") end
  if stream then
    req._stream, req._on_event, req._chunks, req._evq = true, opts.on_event, {}, {}
  end

  local body, nimg = wire.build(prompt, opts, level)
  if not body then
    req:_finish(nil, nimg)
    return req
  end
  options.check_model(model, body.generationConfig, nimg, level)
  local segs = json.encode(body, image.is_image, function(img) return img:_segment() end)
  self._reqs[req] = true -- only now: a call that raised above leaves nothing behind
  local timeout = opts.timeout or self.timeout
  req._spec = {
    url = stream and (self:url(model, "streamGenerateContent") .. "?alt=sse") or self:url(model),
    stream = stream or nil, headers = self:_headers(timeout), body = segs,
    timeout = timeout, connect_timeout = opts.connect_timeout or self.connect_timeout,
    stall = opts.stall_timeout or self.stall_timeout, max_bytes = self.max_response_bytes,
    proxy = self.proxy, ca_file = self.ca_file, ca_path = self.ca_path,
    blob_dir = opts.output and dirname(opts.output) or nil,
    flush_blobs = false,
  }
  if opts.output then -- an existing file will be replaced: see transport.h flush_blobs
    local f = io.open(opts.output, "rb")
    if f then f:close(); req._spec.flush_blobs = true end
  end
  req:_attempt()
  return req
end

function Request:_attempt()
  local c = self._client
  if self._stream then self._chunks, self._stream_err = {}, nil end
  self.attempts = self.attempts + 1
  self.progress.attempt = self.attempts
  self.progress.phase = "connecting"
  local x, kind, msg = c._engine:start(self._spec)
  if not x then
    return self:_finish(nil, errors.new(kind, { message = msg }, c:_secrets()))
  end
  self._xfer = x
  c._by_xfer[x] = self
end

local function retryable(err)
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
  else
    res, err = self:_result(x, r, secrets)
  end
  if res then res.http = { version = r.http_version, new_connections = r.new_connections } end
  if err then
    err.attempts = self.attempts
    -- a stream is retried only before its first event arrived
    local fresh = not (self._stream and #self._chunks > 0)
    if self.state == "running" and fresh and retryable(err) and self.attempts <= self._retries then
      local delay = err.retry_after
      if delay and delay > c.max_retry_delay then
        return self:_finish(nil, err)
      end
      if not delay then
        delay = math.random() * math.min(30, c.retry_base_delay * 2 ^ (self.attempts - 1))
      end
      self._retry_at = core.now() + delay
      self.progress.phase = "retrying"
      return
    end
  end
  return self:_finish(res, err)
end

-- ---------------------------------------------------------------- streams

-- Blob i of a response or of a stream event (src: the Xfer or the Event),
-- for result.materialize. In memory it is a Blob (C memory); with output= every blob
-- is a temp file: the first final image stays there (moved into place at the
-- end, or deleted by _finish), any other is read into memory now (src
-- deletes its files when it is closed).
function Request:_take_blob(src, i, part)
  local v, how = src:blob(i)
  if how ~= "file" then return v, how end
  local blob = part.inlineData or part.inline_data
  local mime = blob.mimeType or blob.mime_type
  if not self._kept and part.thought ~= true and type(mime) == "string" and mime:sub(1, 6) == "image/" then
    src:keep_file(i)
    self._kept = v
    return v, how
  end
  local f, ferr = io.open(v, "rb")
  if not f then return ferr, nil end
  local bytes = f:read("*a")
  f:close()
  return bytes, "data"
end

-- One decoded response of a stream: kept for the merge, its parts queued as
-- events (fired by poll()).
function Request:_add_chunk(decoded)
  self._chunks[#self._chunks + 1] = decoded
  if self._on_event then
    local q = self._evq
    for _, e in ipairs(result.events(decoded)) do q[#q + 1] = e end
    self._client._evreqs[self] = true
  end
end

-- Takes the events the engine has for this stream (all of them when wait).
function Request:_pull_events(x, wait)
  local c = self._client
  local secrets = c:_secrets()
  while true do
    local sk, ev = x:next_event(wait)
    if not sk then return end
    local decoded, err = result.decode(sk, 200, nil, secrets)
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
        local ok, merr = result.materialize(d, take, secrets)
        if not ok then return nil, merr end
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

-- Fires the queued stream events (inside poll()), in order, one request at
-- a time; an error in on_event reaches poll's caller, the queue stays sound.
function Client:_fire_events()
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

function Request:_finish(res, err)
  if self._finished then return end
  local c = self._client
  self._finished = true
  self._retry_at = nil
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
  if self._on_done then
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
  if self._evq then -- stream events not fired yet are dropped with the request
    self._evq = {}
    self._client._evreqs[self] = nil
  end
  local x = self._xfer
  if x then
    self._xfer = nil
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

function Request:await() return M.await(self) end

function Request:__tostring()
  return string.format("nanobanana.Request (%s, %s)", self.model, self.state)
end

-- ---------------------------------------------------------------- engine driving

function Client:_next_retry()
  local t
  for req in pairs(self._reqs) do
    if req._retry_at and (not t or req._retry_at < t) then t = req._retry_at end
  end
  return t
end

-- budget (seconds): stop handling finished transfers once it is spent; the
-- rest stay queued in the engine for the next call (poll() keeps frames short)
function Client:_collect(budget)
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

local function progress_changed(p, last)
  return p.phase ~= last.phase or p.uploaded ~= last.uploaded or p.downloaded ~= last.downloaded
      or p.upload_total ~= last.upload_total or p.download_total ~= last.download_total
end

--- Drives every transfer without blocking and fires due callbacks.
-- @treturn integer number of unfinished requests
function Client:poll()
  if self._closed then return 0 end
  self._engine:perform(0)
  self:_collect(self.poll_budget)
  local live = {}
  for req in pairs(self._reqs) do live[#live + 1] = req end
  for _, req in ipairs(live) do
    if req._xfer then
      req._xfer:progress(req.progress)
      req.progress.elapsed = core.now() - req._t0
    end
    local cb = req._on_progress
    if cb and not req._finished then
      local last = req._last_progress or {}
      if progress_changed(req.progress, last) then
        local p = req.progress
        req._last_progress = { phase = p.phase, uploaded = p.uploaded, downloaded = p.downloaded,
                               upload_total = p.upload_total, download_total = p.download_total }
        cb(p)
      end
    end
  end
  self:_fire_events()
  self:_fire_done()
  local n = 0
  for _ in pairs(self._reqs) do n = n + 1 end
  return n
end

function Client:_fire_done()
  while self._qhead do
    local req = self._qhead
    self._qhead = req._qnext
    if not self._qhead then self._qtail = nil end
    req._qnext = nil
    req._on_done(req:result()) -- an error here reaches poll's caller; the queue is consistent
  end
end

--- Starts a generation and returns at once (see README "Non-blocking use").
function Client:start(prompt, opts) return self:_start(prompt, opts, 2) end

--- One blocking call: start, then wait.
function Client:generate(prompt, opts) return self:_start(prompt, opts, 2):wait() end

--- One blocking streamed call: on_event(ev) fires for every part as it
-- arrives (ev.type "text" | "thought" | "image", ev.text or ev.image,
-- ev.part); returns the merged result.
function Client:stream(prompt, opts, on_event)
  if on_event ~= nil and type(on_event) ~= "function" then
    error("nanobanana: stream(prompt, opts, on_event): on_event must be a function", 2)
  end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.stream = true
  if on_event then o.on_event = on_event end
  return self:_start(prompt, o, 2):wait()
end

--- client:chat(opts) -> a multi-turn conversation (nanobanana.chat).
function Client:chat(opts) return require("nanobanana.chat").new(self, opts, 2) end

--- Runs many generations with at most `concurrency` in flight.
-- list items: a prompt string, or { prompt, opts }. Returns an array of
-- results or error objects, in order.
function Client:generate_many(list, mopts)
  if type(list) ~= "table" then error("nanobanana: generate_many(list, opts) needs a list", 2) end
  options.check(mopts, { concurrency = "number" }, "generate_many options", 2)
  local conc = (mopts and mopts.concurrency) or 4
  if conc < 1 or conc % 1 ~= 0 then error("nanobanana: concurrency must be a whole number >= 1", 2) end
  local out, inflight, nexti, n = {}, {}, 1, #list
  local function launch()
    local i = nexti
    nexti = nexti + 1
    local item, prompt, opts = list[i], nil, nil
    if type(item) == "string" then prompt = item
    elseif type(item) == "table" then prompt, opts = item[1] or item.prompt, item[2] or item.opts
    else error("nanobanana: generate_many: item " .. i .. " must be a prompt or {prompt, opts}", 3) end
    inflight[#inflight + 1] = { i = i, req = self:_start(prompt, opts, 3) }
  end
  while nexti <= n and #inflight < conc do launch() end
  while #inflight > 0 do
    self:poll()
    local still = {}
    for _, f in ipairs(inflight) do
      if f.req._finished then
        local res, err = f.req:result()
        out[f.i] = res or err
      else
        still[#still + 1] = f
      end
    end
    inflight = still
    while nexti <= n and #inflight < conc do launch() end
    if #inflight > 0 and #still == #inflight then
      local ms = 100
      local nr = self:_next_retry()
      if nr then ms = math.min(ms, math.max(1, (nr - core.now()) * 1000)) end
      self._engine:perform(math.max(1, math.floor(ms)))
    end
  end
  return out
end

--- Cancels everything in flight and frees the engine. on_done callbacks of
-- the cancelled requests fire here. Idempotent.
function Client:close()
  if self._closed then return end
  local live = {}
  for req in pairs(self._reqs) do live[#live + 1] = req end
  for _, req in ipairs(live) do req:cancel() end
  self._closed = true
  self._engine:close()
  self:_fire_done()
end
Client.__close = Client.close

--- Inside a coroutine: yields req until it has finished, then its result.
-- Outside one: req:wait().
function M.await(req)
  if getmetatable(req) ~= Request then error("nanobanana: await(req) needs a request from client:start", 2) end
  local co, main = coroutine.running()
  if co and not main and (not coroutine.isyieldable or coroutine.isyieldable()) then
    while not req._finished do coroutine.yield(req) end
    return req:result()
  end
  return req:wait()
end

return M
