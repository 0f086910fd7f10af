--- Service calls (Files, Batch, countTokens): requests made of one or more
-- JSON/HTTP exchanges on the client's engine, each answered by a step
-- function, with the same retries, progress, on_done, wait/cancel and error
-- kinds as generate (they are nanobanana.request objects whose transfer
-- handling is replaced). Also client:count_tokens.
local core = require "nanobanana.core"
local errors = require "nanobanana.errors"
local image = require "nanobanana.image"
local json = require "nanobanana.json"
local options = require "nanobanana.options"
local request = require "nanobanana.request"
local result = require "nanobanana.result"
local wire = require "nanobanana.wire"

local M = {}

--- A step returns this when it started the request's next exchange.
M.AGAIN = {}

-- call options of service requests
M.OPTS = {
  on_progress = "function", on_done = "function", timeout = "number", retries = "number",
  connect_timeout = "number", stall_timeout = "number",
}

--- The value of response header name (lowercase) in a raw header block.
function M.header(raw, name)
  for line in (raw or ""):gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k and k:lower() == name then return v end
  end
end

local retryable = request.retryable
M.retryable = retryable

-- (req._value is the result while _finish runs: an internal _on_finish
-- hook reads it there)
local function finish(req, v, err)
  if err then return req:_finish(nil, err) end
  req._value = v
  req:_finish({}) -- (sets attempts/elapsed on a throwaway table)
  req._res = v
end
M.finish = finish

-- Schedules the next try of req after err (backoff as for generate), or
-- returns false when its retries are spent.
function M.retry_later(req, err)
  local o = req._client.options
  req._failures = (req._failures or 0) + 1
  if req._failures > req._retries or req.state ~= "running" then return false end
  local delay = err.retry_after
  if delay and delay > o.max_retry_delay then return false end
  delay = delay or math.random() * math.min(30, o.retry_base_delay * 2 ^ (req._failures - 1))
  req._retry_at = core.now() + delay
  req.progress.phase = "retrying"
  return true
end

local function on_xfer_done(req, x)
  local c = req._client
  local secrets = c:_secrets()
  req._xfer = nil
  x:progress(req.progress)
  if req._adjust_progress then req:_adjust_progress() end
  local r = x:result()
  local err
  if r.kind ~= "ok" then
    err = errors.new(r.kind, { message = r.message, status = r.status ~= 0 and r.status or nil }, secrets)
  elseif r.status < 200 or r.status >= 300 then
    err = result.http_error(r.status, r.body, r.headers, secrets)
  end
  if not err then
    local v, e = req._step(req, r, x)
    if v == M.AGAIN then return end
    if v ~= nil then return finish(req, v) end
    err = e
  end
  if err.status == 401 and c._vertex and not req._reauthed and req.state == "running" then
    req._reauthed = true -- Vertex AI: once, with a fresh token
    local ok, aerr = c:_reauth()
    if ok then
      req._retry_at = core.now()
      return
    end
    err = aerr or err
  end
  err.attempts = req.attempts
  if req._on_fail then
    local handled = req._on_fail(req, err)
    if handled then return end
  elseif err.retry ~= false and retryable(err) and M.retry_later(req, err) then
    return
  end
  finish(req, nil, err)
end

--- A new service request of client c (call options checked against
-- M.OPTS); step(req, r, x) answers each finished 2xx exchange.
function M.new(c, opts, level, step, what)
  level = (level or 1) + 1
  options.check(opts, M.OPTS, "call options", level)
  local req = c:_new_request(opts or {}, level)
  if opts then -- the per-call transfer options
    req._timeout, req._connect_timeout, req._stall = opts.timeout, opts.connect_timeout, opts.stall_timeout
  end
  req.model = what or "service"
  req._step = step
  req._on_xfer_done = on_xfer_done
  return req
end

--- Sets req's next exchange (method, url, extra headers, body segments)
-- without starting it: true, or nil, err (a token that cannot be had).
function M.prepare(req, method, url, headers, body)
  local c = req._client
  local o = c.options
  c._reqs[req] = true
  req._spec = { -- (the key and token are added per attempt: client:_start_xfer)
    url = url, method = method, extra_headers = headers, body = body,
    timeout = req._timeout or o.timeout, connect_timeout = req._connect_timeout or o.connect_timeout,
    stall = req._stall or o.stall_timeout, max_bytes = o.max_response_bytes,
    ca_file = o.ca_file, ca_path = o.ca_path, empty_ok = true,
  }
  return true
end

--- Starts req's next exchange now (see M.prepare); returns M.AGAIN, for a
-- step to return.
function M.send(req, method, url, headers, body)
  local ok, err = M.prepare(req, method, url, headers, body)
  if not ok then
    finish(req, nil, err)
    return M.AGAIN
  end
  req:_attempt()
  return M.AGAIN
end

--- The id in a resource name given by the caller ("files/abc" or "abc",
-- prefix "files/"): letters, digits, "-", "_" or "." only, so that it can
-- never leave its path segment; raises (naming what) otherwise.
function M.resource_id(name, prefix, what, level)
  level = level + 1
  if type(name) ~= "string" or name == "" then options.fail(level, "a %s is a string like \"%sabc\"", what, prefix) end
  local id = name:sub(1, #prefix) == prefix and name:sub(#prefix + 1) or name
  if id == "" or id:find("[^%w%-_.]") or id == "." or id == ".." then options.fail(level, "not a %s: %q", what, name) end
  return id
end

-- cjson gives floats for every number; integral ones become integers
local function integers(v, depth)
  if depth > 64 or type(v) ~= "table" then return v end
  for k, x in pairs(v) do
    if type(x) == "number" and math.tointeger and x == math.floor(x) and x >= -2^53 and x <= 2^53 then
      v[k] = math.tointeger(x)
    elseif type(x) == "table" then integers(x, depth + 1) end
  end
  return v
end

--- The decoded JSON object of a 2xx exchange, or nil, err (invalid_response,
-- api for an {"error": ...} answer). With operation = true, a top-level
-- "error" is a field of the answer (a long-running operation's status).
function M.decode(req, r, operation)
  local secrets = req._client:_secrets()
  if r.body == "" then return {} end
  if operation then
    local d, derr = json.decode(r.body)
    if type(d) ~= "table" then
      return nil, errors.new("invalid_response",
      { message = "response is not a JSON object: " .. tostring(derr), status = r.status }, secrets)
    end
    return errors.scrub(integers(d, 0), secrets)
  end
  local d, err = result.decode(r.body, r.status, r.headers, secrets)
  if not d then return nil, err end
  return errors.scrub(d, secrets)
end

--- The base URL with the API version: "{base_url}/{api_version}".
function M.api(c)
  local o = c.options
  return o.base_url .. (o.api_version ~= "" and ("/" .. o.api_version) or "")
end

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(ch) return string.format("%%%02X", ch:byte()) end))
end
M.urlencode = urlencode

--- "?pageSize=..&pageToken=.." from { page_size, page_token } (checked).
function M.page_query(opts, what, level)
  level = (level or 1) + 1
  options.check(opts, { page_size = "number", page_token = "string" }, what, level)
  opts = opts or {}
  local q = {}
  if opts.page_size then
    if opts.page_size < 1 or opts.page_size % 1 ~= 0 then
      options.fail(level, "page_size must be a whole number >= 1")
    end
    q[#q + 1] = "pageSize=" .. string.format("%d", opts.page_size)
  end
  if opts.page_token then q[#q + 1] = "pageToken=" .. urlencode(opts.page_token) end
  return #q > 0 and ("?" .. table.concat(q, "&")) or ""
end

-- ----------------------------------------------------------------- countTokens

--- The countTokens body for a generate body (the Gemini API takes
-- {contents} alone, or {generateContentRequest} with the model inside it;
-- Vertex takes contents beside systemInstruction, tools, generationConfig).
local function count_body(body, model, vertex)
  if vertex then
    return { contents = body.contents, systemInstruction = body.systemInstruction,
             tools = body.tools, generationConfig = body.generationConfig }
  end
  local only_contents = true
  for k in pairs(body) do if k ~= "contents" then only_contents = false end end
  if only_contents then return { contents = body.contents } end
  local inner = { model = model:match("^models/") and model or ("models/" .. model) }
  for k, v in pairs(body) do inner[k] = v end
  return { generateContentRequest = inner }
end

local COUNT_OPTS = {}
for k, v in pairs(options.CALL) do COUNT_OPTS[k] = v end
for _, k in ipairs { "output", "on_event", "stream" } do COUNT_OPTS[k] = nil end

--- client:start_count_tokens(prompt, opts): the non-blocking form.
function M.start_count_tokens(c, prompt, opts, level)
  level = (level or 1) + 1
  options.check(opts, COUNT_OPTS, "count_tokens options", level)
  opts = opts or {}
  local model = opts.model or c.options.model
  local body, nimg = wire.build(prompt, opts, level)
  local sopts = { on_progress = opts.on_progress, on_done = opts.on_done, timeout = opts.timeout,
                  retries = opts.retries, connect_timeout = opts.connect_timeout, stall_timeout = opts.stall_timeout }
  local req = M.new(c, sopts, level, function(rq, r)
    local d, err = M.decode(rq, r)
    if not d then return nil, err end
    return d
  end)
  req.model = model
  if not body then
    finish(req, nil, nimg)
    return req
  end
  local validate = opts.validate
  if validate == nil then validate = c.options.validate end
  if validate ~= false then options.check_model(model, body.generationConfig, nimg, level, c._vertex ~= nil) end
  local segs = json.encode(count_body(body, model, c._vertex ~= nil), image.is_image,
                           function(img) return img:_segment() end, level)
  M.send(req, nil, c:url(model, "countTokens"), nil, segs)
  return req
end

return M
