--- Clients: options, endpoints and headers, starting calls, closing.
-- One libcurl multi engine per client drives every request; the blocking
-- calls are "start, then wait" on that same engine. The request lifecycle
-- lives in nanobanana.request, stream plumbing in nanobanana.stream, engine
-- driving (poll, callbacks) in nanobanana.engine, generate_many in
-- nanobanana.many. User callbacks run only inside poll()/wait(), on the
-- caller's Lua state, never inside libcurl.
local core = require "nanobanana.core"
local image = require "nanobanana.image"
local json = require "nanobanana.json"
local options = require "nanobanana.options"
local request = require "nanobanana.request"
local wire = require "nanobanana.wire"

local M = {}

M.DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
M.DEFAULTS = {
  api_version = "v1beta", model = "gemini-2.5-flash-image",
  timeout = 600, connect_timeout = 30, stall_timeout = 120,
  retries = 2, max_retry_delay = 60, retry_base_delay = 1, poll_budget = 0.001,
  max_response_bytes = 512 * 1024 * 1024, zero_copy = true,
}

-- seconds an engine's worker thread (and its connections) stay with nothing
-- in flight; internal (the specs shorten it)
M.ENGINE_IDLE = 3

local Client = { __name = "nanobanana.Client" }
Client.__index = Client
M.Client = Client
for _, mixin in ipairs { "nanobanana.engine", "nanobanana.many" } do
  for k, f in pairs(require(mixin)) do Client[k] = f end
end

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

--- nb.new(opts): see README "Options". The option values are readable as
-- client.options (client.options.timeout, ...).
function M.new(opts, level)
  level = (level or 1) + 1
  options.check(opts, options.CLIENT, "nb.new options", level)
  opts = opts or {}
  local self = setmetatable({}, Client)
  local o = {}
  for k, v in pairs(M.DEFAULTS) do o[k] = v end
  for _, k in ipairs { "model", "api_version", "timeout", "connect_timeout", "stall_timeout", "retries",
                       "max_retry_delay", "retry_base_delay", "max_response_bytes", "proxy", "ca_file", "ca_path",
                       "poll_budget", "zero_copy" } do
    if opts[k] ~= nil then o[k] = opts[k] end
  end
  for _, k in ipairs { "timeout", "connect_timeout", "stall_timeout", "max_retry_delay", "retry_base_delay",
                       "max_response_bytes", "poll_budget" } do
    if o[k] < 0 then options.fail(level, "%s must not be negative", k) end
  end
  if o.retries < 0 or o.retries % 1 ~= 0 then options.fail(level, "retries must be a whole number >= 0") end

  local base = opts.base_url or trim(os.getenv("GOOGLE_GEMINI_BASE_URL")) or M.DEFAULT_BASE_URL
  local scheme, host = base:match("^(https?)://%[?([^/%]:]+)")
  if not scheme then options.fail(level, "base_url must start with http:// or https:// (got %q)", base) end
  o.base_url = base:gsub("/+$", "")
  o.host = host:lower()

  local auth = opts.auth or (is_google_host(o.host) and "x-goog-api-key" or "bearer")
  if not options.AUTH[auth] then
    local hint = options.suggest(auth, options.AUTH)
    options.fail(level, "auth must be \"x-goog-api-key\", \"bearer\" or \"none\" (got %q)%s", auth,
      hint and (", did you mean \"" .. hint .. "\"?") or "")
  end
  o.auth = auth
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

  self.options = o
  self._engine = core.engine(M.ENGINE_IDLE)
  self._reqs = {}      -- unfinished requests (keeps them alive when user code drops them)
  self._by_xfer = {}   -- transfer -> request
  self._evreqs = {}    -- streaming requests with events to fire
  self._qhead, self._qtail = nil, nil -- finished requests whose on_done is due
  return self
end

function Client:__tostring()
  local o = self.options
  return string.format("nanobanana.Client (%s, model %s, auth %s)", o.base_url, o.model, o.auth)
end

function Client:_secrets() return private[self].secrets end

--- The URL for a model and method (default "generateContent").
function Client:url(model, method)
  local o = self.options
  local path = model
  if not (model:match("^models/") or model:match("^tunedModels/")) then path = "models/" .. model end
  local ver = o.api_version ~= "" and ("/" .. o.api_version) or ""
  return o.base_url .. ver .. "/" .. path .. ":" .. (method or "generateContent")
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
  local auth = self.options.auth
  if auth == "x-goog-api-key" then h[#h + 1] = "x-goog-api-key: " .. p.key
  elseif auth == "bearer" then h[#h + 1] = "Authorization: Bearer " .. p.key end
  for _, line in ipairs(p.headers) do h[#h + 1] = line end
  return h
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

-- A request of this client for call options opts (checked), not yet started.
function Client:_new_request(opts, level)
  level = (level or 1) + 1
  if self._closed then options.fail(level, "this client is closed") end
  return request.new(self, opts, level)
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
  local o = self.options
  local timeout = opts.timeout or o.timeout
  req._spec = {
    url = stream and (self:url(model, "streamGenerateContent") .. "?alt=sse") or self:url(model),
    stream = stream or nil, headers = self:_headers(timeout), body = segs,
    timeout = timeout, connect_timeout = opts.connect_timeout or o.connect_timeout,
    stall = opts.stall_timeout or o.stall_timeout, max_bytes = o.max_response_bytes,
    proxy = o.proxy, ca_file = o.ca_file, ca_path = o.ca_path,
    blob_dir = opts.output and dirname(opts.output) or nil,
    flush_blobs = false, progress = opts.on_progress ~= nil or nil,
  }
  if opts.output then -- an existing file will be replaced: see transport.h flush_blobs
    local f = io.open(opts.output, "rb")
    if f then f:close(); req._spec.flush_blobs = true end
  end
  req:_attempt()
  return req
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

M.await = request.await
M.Request = request.Request

return M
