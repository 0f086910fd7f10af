--- Option checking: names, types and per-model values. Every failure here is
-- a programming error and raises, with a "did you mean" hint for names.
local models = require "nanobanana.models"
local util = require "nanobanana.util"

local M = {}

local function distance(a, b)
  if math.abs(#a - #b) > 3 then return 99 end -- (far apart: no hint)
  return util.distance(a, b)
end

local function suggest(name, known)
  local best, bestd
  for k in pairs(known) do
    local d = distance(name, k)
    if not bestd or d < bestd or (d == bestd and k < best) then best, bestd = k, d end
  end
  if best and bestd <= math.max(2, math.floor(#name / 3)) then return best end
end
M.suggest = suggest

local function fail(level, fmt, ...)
  error("nanobanana: " .. string.format(fmt, ...), level + 1)
end
M.fail = fail

-- name -> expected type(s)
M.CLIENT = {
  api_key = "string", base_url = "string", api_version = "string", auth = "string",
  model = "string", headers = "table", timeout = "number", connect_timeout = "number",
  stall_timeout = "number", retries = "number", max_retry_delay = "number",
  retry_base_delay = "number", proxy = "string", ca_file = "string", ca_path = "string",
  max_response_bytes = "number", poll_budget = "number",
  -- service (nanobanana.vertex, escape hatches)
  validate = "boolean", vertex = "table|boolean", access_token = "string", token = "function",
  token_command = "table",
}

M.CALL = {
  imageConfig = "table", images = "table", contents = "table", generationConfig = "table",
  systemInstruction = "table|string", safetySettings = "table", tools = "table",
  toolConfig = "table", cachedContent = "string", model = "string", output = "string",
  on_progress = "function", on_done = "function", on_event = "function", stream = "boolean",
  timeout = "number", retries = "number",
  connect_timeout = "number", stall_timeout = "number",
  -- escape hatches: validate = false skips check_model; extra merges into the body's top level
  validate = "boolean", extra = "table",
}

M.AUTH = { ["x-goog-api-key"] = true, bearer = true, none = true }

local function type_ok(v, want)
  local t = type(v)
  for w in want:gmatch("[^|]+") do
    if t == w then return true end
    if w == "function" and t == "table" and getmetatable(v) and getmetatable(v).__call then return true end
  end
  return false
end

--- Checks a table of options against a schema; raises on the first problem.
function M.check(opts, schema, what, level)
  level = (level or 1) + 1
  if opts == nil then return end
  if type(opts) ~= "table" then fail(level, "%s must be a table, got %s", what, type(opts)) end
  for k, v in pairs(opts) do
    if type(k) ~= "string" then fail(level, "%s: option names must be strings", what) end
    local want = schema[k]
    if not want then
      local hint = suggest(k, schema)
      fail(level, "unknown option '%s' in %s%s", k, what, hint and (" (did you mean '" .. hint .. "'?)") or "")
    end
    if not type_ok(v, want) then
      fail(level, "option '%s' must be a %s, got %s", k, want:gsub("|", " or "), type(v))
    end
  end
end

local function list(t) return table.concat(t, ", ") end

-- imageConfig fields only Vertex AI takes (the Gemini API rejects them)
M.VERTEX_ONLY = { personGeneration = true, prominentPeople = true, imageOutputOptions = true,
                  outputMimeType = true, outputCompressionQuality = true }

--- Per-model checks of a request (only for models nanobanana knows), and
-- Vertex-only imageConfig fields outside Vertex (for every model). Skipped
-- altogether with validate = false.
function M.check_model(model_id, genconf, nimages, level, vertex)
  level = (level or 1) + 1
  local ic = genconf and genconf.imageConfig
  if ic ~= nil and type(ic) ~= "table" then fail(level, "imageConfig must be a table") end
  if ic and not vertex then
    for k in pairs(ic) do
      if M.VERTEX_ONLY[k] then
        fail(level, "imageConfig.%s is a Vertex AI field: the Gemini API rejects it (use vertex = {...}, or validate = false)", k)
      end
    end
  end
  local m = models[model_id]
  if not m then return end
  if ic then
    local ratio, size = ic.aspectRatio, ic.imageSize
    if ratio ~= nil and not m.takes_ratio[ratio] then
      fail(level, "%s does not take aspectRatio %q (it takes %s)", model_id, tostring(ratio), list(m.aspect_ratios))
    end
    if size ~= nil then
      if #m.image_sizes == 0 then
        fail(level, "%s does not take imageSize (it makes one size per aspect ratio); remove imageSize", model_id)
      elseif not m.takes_size[size] then
        local hint = ""
        if type(size) == "string" and m.takes_size[size:upper()] then hint = " (sizes use an uppercase K: " .. size:upper() .. ")" end
        fail(level, "%s does not take imageSize %q (it takes %s)%s", model_id, tostring(size), list(m.image_sizes), hint)
      end
    end
  end
  if genconf then
    local cc = genconf.candidateCount
    if cc ~= nil and cc ~= 1 then
      fail(level, "candidateCount must be 1: image models make one candidate (ask again for more images)")
    end
    if genconf.thinkingConfig ~= nil and not m.thinking then
      fail(level, "%s is not a thinking model: remove thinkingConfig", model_id)
    end
  end
  if nimages and nimages > m.max_images then
    fail(level, "%s takes at most %d reference images, got %d", model_id, m.max_images, nimages)
  end
end

-- ---------------------------------------------------------------- wire safety
-- What may reach the wire: header names and values, model ids, base and
-- proxy URLs. Everything here raises (a programming error) before a byte is
-- sent, so nothing the caller did not mean can be smuggled into a request.

-- headers nanobanana (or libcurl) owns: a caller's value would split or
-- redirect the request
M.RESERVED_HEADERS = {
  host = true, ["content-length"] = true, ["transfer-encoding"] = true, connection = true,
}

--- A header value (a key, a token, a headers= value): no CR, LF or NUL.
-- what names it in the message (never the value: it may be a secret).
function M.check_header_value(value, what, level)
  level = (level or 1) + 1
  if type(value) ~= "string" then fail(level, "%s must be a string", what) end
  if value:find("\r", 1, true) or value:find("\n", 1, true) or value:find("\0", 1, true) then fail(level, "%s contains CR, LF or NUL", what) end
  return value
end

--- A header name: an HTTP token (RFC 9110 tchar), not one nanobanana owns.
function M.check_header_name(name, level)
  level = (level or 1) + 1
  if type(name) ~= "string" or not name:match("^[%w!#$%%&'*+.^_`|~-]+$") then
    fail(level, "header name %q is not an HTTP token", tostring(name))
  end
  if M.RESERVED_HEADERS[name:lower()] then
    fail(level, "headers may not set %s (nanobanana and libcurl set it)", name)
  end
  return name
end

--- A model id stays inside its path segment: an optional models/ or
-- tunedModels/ prefix, then letters, digits, '.', '_' and '-' only (no '/',
-- '?', '#', '%', spaces or control bytes).
function M.check_model_id(model, level)
  level = (level or 1) + 1
  if type(model) ~= "string" then fail(level, "model must be a string") end
  local id = model:match("^models/(.*)$") or model:match("^tunedModels/(.*)$") or model
  if not id:match("^[%w][%w._-]*$") then
    fail(level, "model %q is not a model id (letters, digits, '.', '_', '-', after an optional models/ or tunedModels/)", model)
  end
  return model
end

local function bad_url_chars(s) return s:find("[%c%s\\]") ~= nil end

-- an IPv6 literal (without brackets or zone): hex groups, one "::" at
-- most, an IPv4 tail allowed
local function ipv6_ok(h)
  local groups = 0
  local v4 = h:match(":(%d+%.[%d.]*)$")
  if v4 then
    local a, b, c, d = v4:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if not a or tonumber(a) > 255 or tonumber(b) > 255 or tonumber(c) > 255 or tonumber(d) > 255 then return false end
    h = h:sub(1, #h - #v4)
    if h:sub(-2) ~= "::" then h = h:sub(1, -2) end -- "...:1.2.3.4": the ':' belongs to the tail
    groups = 2
  end
  local head, tail = h:match("^(.-)::(.*)$")
  local parts = head and { head, tail } or { h }
  if head and tail:find("::", 1, true) then return false end
  for _, part in ipairs(parts) do
    if part ~= "" then
      for g in (part .. ":"):gmatch("([^:]*):") do
        if not g:match("^%x%x?%x?%x?$") then return false end
        groups = groups + 1
      end
    end
  end
  if head then return groups <= 7 end
  return groups == 8
end

-- a host name: dot-separated labels of letters, digits, '-' and '_' (1..63
-- characters each, 253 in all; one trailing dot allowed)
local function hostname_ok(h)
  local name = h:gsub("%.$", "")
  if name == "" or #name > 253 then return false end
  for label in (name .. "."):gmatch("([^.]*)%.") do
    if #label < 1 or #label > 63 or not label:match("^[%w_-]+$") then return false end
  end
  return true
end

-- host, port of an authority "host[:port]" (IPv6 in brackets), or nil when
-- it is not one (the port, when given, is 1..65535)
local function host_port(auth)
  local host, port = auth:match("^%[([%x:.]+)%]:?(%d*)$")
  if host then
    if not ipv6_ok(host) then return nil end
  else
    host, port = auth:match("^([%w._-]+):?(%d*)$")
    if not host or not hostname_ok(host) then return nil end
  end
  if auth:sub(-1) == ":" then return nil end
  if port ~= "" and (tonumber(port) < 1 or tonumber(port) > 65535) then return nil end
  return host, port
end

-- (the messages never repeat a URL: it may carry a key in its query or
-- a password in its userinfo)

--- base_url: http(s)://host[:port][/path], no query, fragment, userinfo,
-- spaces or control bytes. Returns scheme, host (lowercase).
function M.check_base_url(url, level)
  level = (level or 1) + 1
  local scheme, auth = url:match("^(%a[%w+.-]*)://([^/]*)")
  scheme = scheme and scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    fail(level, "base_url must start with http:// or https://")
  end
  if bad_url_chars(url) then fail(level, "base_url contains a space, a control byte or a backslash") end
  if url:find("[?#]") then fail(level, "base_url may not have a query or a fragment (? or #)") end
  if auth:find("@", 1, true) then
    fail(level, "base_url may not carry credentials (user:password@): pass the key as api_key or in headers")
  end
  local host = host_port(auth)
  if not host then
    fail(level, "base_url must be scheme://host[:port][/path] (port 1..65535)")
  end
  return scheme, host:lower()
end

M.PROXY_SCHEMES = { http = true, https = true, socks4 = true, socks4a = true, socks5 = true, socks5h = true }

--- proxy: scheme://[user[:password]@]host[:port][/] with a scheme libcurl
-- takes. Returns the password (a secret to scrub) or nil, and the URL with
-- the password shown as ***.
function M.check_proxy(url, level)
  level = (level or 1) + 1
  local scheme, auth, rest = url:match("^(%a[%w+.-]*)://([^/]*)(.*)$")
  if not scheme or not M.PROXY_SCHEMES[scheme:lower()] then
    fail(level, "proxy must be scheme://host[:port] with scheme http, https, socks4, socks4a, socks5 or socks5h")
  end
  if bad_url_chars(url) or url:find("[?#]") or (rest ~= "" and rest ~= "/") then
    fail(level, "proxy must be scheme://host[:port] (no path, query, spaces or control bytes)")
  end
  local userinfo, hp = auth:match("^(.*)@([^@]*)$")
  if not host_port(hp or auth) then
    fail(level, "proxy must be scheme://host[:port]")
  end
  local password = userinfo and userinfo:match("^[^:]*:(.+)$")
  if not password then return nil, url end
  return password, scheme .. "://" .. userinfo:match("^[^:]*") .. ":***@" .. hp .. rest
end

return M
