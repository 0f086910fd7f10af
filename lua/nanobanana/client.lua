--- Clients: options, endpoints and headers, starting calls, closing.
-- One libcurl multi engine per client drives every request; the blocking
-- calls are "start, then wait" on that same engine. The request lifecycle
-- lives in nanobanana.request, stream plumbing in nanobanana.stream, engine
-- driving (poll, callbacks) in nanobanana.engine, generate_many in
-- nanobanana.many. User callbacks run only inside poll()/wait(), on the
-- caller's Lua state, never inside libcurl.
local core = require "nanobanana.core"
local errors = require "nanobanana.errors"
local image = require "nanobanana.image"
local json = require "nanobanana.json"
local options = require "nanobanana.options"
local request = require "nanobanana.request"
local util = require "nanobanana.util"
local vertex = require "nanobanana.vertex"
local wire = require "nanobanana.wire"

local M = {}

M.DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
M.DEFAULTS = {
  api_version = "v1beta", model = "gemini-3.1-flash-image",
  timeout = 600, connect_timeout = 30, stall_timeout = 120,
  retries = 2, max_retry_delay = 60, retry_base_delay = 1, poll_budget = 0.001,
  max_response_bytes = 512 * 1024 * 1024,
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

-- Methods whose modules load on their first use: a script that never
-- uploads or batches does not compile the Files and Batch code (nor the
-- service layer they share), a third of the Lua that `require "nanobanana"`
-- would load. The first lookup of a name copies the module's methods onto
-- Client; later lookups find them there. (spec/26 checks that every method
-- of these modules is listed here.)
M.LAZY = {
  ["nanobanana.files"] = { "start_upload", "upload", "file", "files", "delete_file" },
  ["nanobanana.batch"] = { "batch", "start_batch", "batch_job", "batches" },
}
local lazy_module = {}
for mod, names in pairs(M.LAZY) do
  for _, name in ipairs(names) do lazy_module[name] = mod end
end
setmetatable(Client, { __index = function(_, name)
  local mod = lazy_module[name]
  if not mod then return nil end
  local m = require(mod)
  for _, k in ipairs(M.LAZY[mod]) do rawset(Client, k, m[k]) end
  return rawget(Client, name)
end })

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
  local o = util.copy(M.DEFAULTS)
  for _, k in ipairs { "model", "api_version", "timeout", "connect_timeout", "stall_timeout", "retries",
                       "max_retry_delay", "retry_base_delay", "max_response_bytes", "proxy", "ca_file", "ca_path",
                       "poll_budget", "validate" } do
    if opts[k] ~= nil then o[k] = opts[k] end
  end
  for _, k in ipairs { "timeout", "connect_timeout", "stall_timeout", "max_retry_delay", "retry_base_delay",
                       "max_response_bytes", "poll_budget" } do
    if o[k] < 0 then options.fail(level, "%s must not be negative", k) end
  end
  if o.retries < 0 or o.retries % 1 ~= 0 then options.fail(level, "retries must be a whole number >= 0") end

  local base = opts.base_url or trim(os.getenv("GOOGLE_GEMINI_BASE_URL")) or M.DEFAULT_BASE_URL
  local _, host = options.check_base_url(base, level)
  o.base_url = base:gsub("/+$", "")
  o.host = host
  if not o.api_version:match("^[%w._-]*$") then
    options.fail(level, "api_version %q is not a version (letters, digits, '.', '_', '-')", o.api_version)
  end
  options.check_model_id(o.model, level)
  local proxy, proxy_secret = o.proxy, nil
  if proxy ~= nil then
    proxy_secret, o.proxy = options.check_proxy(proxy, level) -- o.proxy: readable without its password
  end

  local auth = opts.auth or (is_google_host(o.host) and "x-goog-api-key" or "bearer")
  if not options.AUTH[auth] then
    local hint = options.suggest(auth, options.AUTH)
    options.fail(level, "auth must be \"x-goog-api-key\", \"bearer\" or \"none\" (got %q)%s", auth,
      hint and (", did you mean \"" .. hint .. "\"?") or "")
  end
  o.auth = auth
  local key = opts.api_key ~= nil and trim(opts.api_key) or (opts.api_key == nil and env_key() or nil)
  local vx = vertex.wanted(opts)
  local token_source = opts.access_token or opts.token or opts.token_command
  if token_source and not vx then
    options.fail(level, "access_token, token and token_command are for Vertex AI (add vertex = { project = ... })")
  end
  if auth ~= "none" and not key and not vx then -- (Vertex AI: checked by vertex.setup)
    options.fail(level, "no API key: pass api_key, or set GOOGLE_API_KEY or GEMINI_API_KEY (or use auth = \"none\")")
  end

  if key then options.check_header_value(key, "api_key", level) end
  local secrets, headers, overrides = {}, {}, {}
  if key and auth ~= "none" then secrets[#secrets + 1] = key end
  if proxy_secret then secrets[#secrets + 1] = proxy_secret end
  for name, value in pairs(opts.headers or {}) do
    if type(name) ~= "string" or type(value) ~= "string" then
      options.fail(level, "headers must map header names to string values")
    end
    options.check_header_name(name, level)
    options.check_header_value(value, "the value of header " .. name, level)
    local lname = name:lower()
    if (lname == "authorization" or lname == "x-goog-api-key") then
      if auth ~= "none" then
        options.fail(level, "headers may set %s only with auth = \"none\" (nanobanana sets it from api_key)", name)
      end
      secrets[#secrets + 1] = value
      local bearer = value:match("^[Bb]earer%s+(.+)$")
      if bearer then secrets[#secrets + 1] = bearer end
    end
    -- "Name;" is libcurl's way to send an empty header ("Name:" would remove it)
    headers[#headers + 1] = value == "" and (name .. ";") or (name .. ": " .. value)
    overrides[lname] = true
  end
  table.sort(headers)
  private[self] = { key = key, secrets = secrets, scrub = errors.scrubber(secrets), headers = headers,
                    overrides = overrides, proxy = proxy }

  self.options = o
  if vx then vertex.setup(self, o, private[self], opts, key, level) end
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

-- The client's scrubber (errors.scrubber): a function that removes its
-- secrets from a string, passed where results and errors are built; it
-- holds them in upvalues, so it does not reveal them.
function Client:_secrets() return private[self].scrub end

-- A secret learnt after nb.new (a token a provider hands out): checked as a
-- header value (no CR, LF, NUL: raises) and scrubbed from then on.
function Client:_add_secret(value, what)
  options.check_header_value(value, what or "token", 2)
  local list = private[self].secrets
  for i = 1, #list do if list[i] == value then return value end end
  list[#list + 1] = value
  return value
end

--- The URL for a model and method (default "generateContent").
function Client:url(model, method)
  if self._vertex then return vertex.url(self, model, method) end
  local o = self.options
  options.check_model_id(model, 2)
  if method ~= nil and not tostring(method):match("^%a+$") then options.fail(2, "method must be a method name") end
  local path = model
  if not (model:match("^models/") or model:match("^tunedModels/")) then path = "models/" .. model end
  local ver = o.api_version ~= "" and ("/" .. o.api_version) or ""
  return o.base_url .. ver .. "/" .. path .. ":" .. (method or "generateContent")
end

-- the request headers of one attempt (a local, not a method: it holds the key)
-- extra: "Name: value" lines of the call (no secrets) that replace ours
local function attempt_headers(self, timeout, extra)
  local p = private[self]
  local base = {
    "Content-Type: application/json",
    "User-Agent: nanobanana/" .. core.version,
    "x-goog-api-client: nanobanana/" .. core.version,
    "Expect:",
  }
  if timeout and timeout > 0 then base[#base + 1] = "X-Server-Timeout: " .. math.ceil(timeout) end
  local h = {}
  for _, line in ipairs(base) do -- a headers= entry of the same name replaces ours (sent once)
    if not p.overrides[line:match("^[^:]+"):lower()] then h[#h + 1] = line end
  end
  local auth = self.options.auth
  if self._vertex and auth == "bearer" then
    local line, err = vertex.auth_header(self, p)
    if not line then return nil, err end
    h[#h + 1] = line
  elseif auth == "x-goog-api-key" then h[#h + 1] = "x-goog-api-key: " .. p.key
  elseif auth == "bearer" then h[#h + 1] = "Authorization: Bearer " .. p.key end
  for _, line in ipairs(p.headers) do h[#h + 1] = line end
  for _, line in ipairs(extra or {}) do
    local name = line:match("^([^:;]+)"):lower()
    for i = #h, 1, -1 do
      if h[i]:match("^([^:;]+)"):lower() == name then table.remove(h, i) end
    end
    h[#h + 1] = line
  end
  return h
end

-- Starts one attempt of spec on the engine: the headers (with the key) and
-- the proxy (with its password) are added to a copy here and live on only
-- in C, so no Lua table of the request or client holds a secret.
-- spec.extra_headers: the call's own header lines. Returns the transfer, or
-- nil, err (a token that cannot be had, or a transfer that cannot start).
function Client:_start_xfer(spec)
  local p = private[self]
  local s = util.copy(spec)
  local h, herr = attempt_headers(self, spec.timeout, spec.extra_headers)
  if not h then return nil, herr end
  s.headers, s.extra_headers = h, nil
  s.proxy = p.proxy
  local x, kind, msg = self._engine:start(s)
  if not x then return nil, errors.new(kind, { message = msg }, p.scrub) end
  return x
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

-- A request of this client for call options opts (checked), not yet started.
function Client:_new_request(opts, level)
  level = (level or 1) + 1
  if self._closed then options.fail(level, "this client is closed") end
  local req = request.new(self, opts, level) -- not a tail call (error levels)
  return req
end

-- on_finish(req, res, err), internal: runs when the request finishes, before
-- its on_done is queued (the chat appends its history there).
function Client:_start(prompt, opts, level, on_finish)
  return self:_launch(self:_prepare(prompt, opts, (level or 1) + 1, on_finish))
end

-- Sends a prepared request (one that did not fail already).
function Client:_launch(req)
  if req._finished then return req end
  self._reqs[req] = true
  req._t0 = core.now()
  req:_attempt()
  return req
end

-- A request checked and built, not sent: everything that raises raises
-- here; a runtime failure (an unreadable image, an output= directory that
-- cannot be written) gives a request that has failed already.
function Client:_prepare(prompt, opts, level, on_finish)
  level = (level or 1) + 1
  options.check(opts, options.CALL, "call options", level)
  opts = opts or {}
  local req = self:_new_request(opts, level)
  local model = req.model
  options.check_model_id(model, level)
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
  local validate = opts.validate
  if validate == nil then validate = self.options.validate end
  if validate ~= false then options.check_model(model, body.generationConfig, nimg, level, self._vertex ~= nil) end
  local output, replaces
  if opts.output then
    -- only a regular file (or nothing yet) is written; a symlink's target
    -- is (the link stays a link); a device, FIFO, socket or directory is
    -- kind io at once, untouched, before anything is sent; so is a
    -- directory that cannot be written (a paid image must have somewhere to go)
    local ok, msg = core.output_target(opts.output)
    if ok then output, replaces = ok, msg; ok, msg = core.dir_writable(dirname(output)) end
    if not ok then
      req:_finish(nil, errors.new("io", { message = msg }, self:_secrets()))
      return req
    end
    req._output = output
  end
  local segs = json.encode(body, image.is_image, function(img) return img:_segment() end, level)
  local o = self.options
  local timeout = opts.timeout or o.timeout
  req._spec = {
    url = stream and (self:url(model, "streamGenerateContent") .. "?alt=sse") or self:url(model),
    stream = stream or nil, body = segs, -- headers (secrets) are added per attempt: _start_xfer
    timeout = timeout, connect_timeout = opts.connect_timeout or o.connect_timeout,
    stall = opts.stall_timeout or o.stall_timeout, max_bytes = o.max_response_bytes,
    ca_file = o.ca_file, ca_path = o.ca_path,
    blob_dir = output and dirname(output) or nil,
    flush_blobs = replaces == true, -- an existing file will be replaced: see transport.h flush_blobs
    progress = opts.on_progress ~= nil or nil, -- progress wakes pollfd()
  }
  return req
end

--- Starts a generation and returns at once (see README "Non-blocking use").
function Client:start(prompt, opts)
  local req = self:_start(prompt, opts, 2) -- not a tail call: errors name the caller's line
  return req
end

--- One blocking call: start, then wait.
function Client:generate(prompt, opts) return self:_start(prompt, opts, 2):_run() end

--- One blocking streamed call: on_event(ev) fires for every part as it
-- arrives (ev.type "text" | "thought" | "image", ev.text or ev.image,
-- ev.part); returns the merged result.
function Client:stream(prompt, opts, on_event)
  if on_event ~= nil and type(on_event) ~= "function" then
    error("nanobanana: stream(prompt, opts, on_event): on_event must be a function", 2)
  end
  local o = util.copy(opts)
  o.stream = true
  if on_event then o.on_event = on_event end
  return self:_start(prompt, o, 2):_run()
end

--- client:count_tokens(prompt, opts) -> the wire answer ({ totalTokens,
-- ... }) | nil, err; the same prompt and options as generate (images too).
function Client:count_tokens(prompt, opts)
  return require("nanobanana.service").start_count_tokens(self, prompt, opts, 2):_run()
end

--- client:start_count_tokens(prompt, opts) -> request (non-blocking count_tokens).
function Client:start_count_tokens(prompt, opts)
  local req = require("nanobanana.service").start_count_tokens(self, prompt, opts, 2) -- (error levels)
  return req
end

-- Vertex AI, after a 401: the spec's token replaced by a fresh one.
function Client:_reauth() return vertex.reauth(self, private[self]) end

--- client:chat(opts) -> a multi-turn conversation (nanobanana.chat).
function Client:chat(opts)
  local chat = require("nanobanana.chat").new(self, opts, 2) -- not a tail call (error levels)
  return chat
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

M.await = request.await
M.Request = request.Request

return M
