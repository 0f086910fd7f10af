--- Vertex AI: endpoints and access tokens. A client made with
-- nb.new{ vertex = { project =, location = }, access_token | token |
-- token_command } (or GOOGLE_GENAI_USE_VERTEXAI with GOOGLE_CLOUD_PROJECT /
-- GOOGLE_CLOUD_LOCATION) sends
--   {base}/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:{method}
-- with Authorization: Bearer <token>; with vertex = true and an API key and
-- no project it is express mode: {base}/v1/publishers/google/models/{m}:{method}
-- with x-goog-api-key. base_url (or GOOGLE_VERTEX_BASE_URL) replaces the
-- aiplatform host. Tokens are fetched before the first request, again
-- when less than 60 s remain, and once after a 401; every token is scrubbed
-- like the key.
local core = require "nanobanana.core"
local errors = require "nanobanana.errors"
local options = require "nanobanana.options"

local M = {}

M.REFRESH_MARGIN = 60      -- seconds left at which a token is refreshed
M.COMMAND_LIFETIME = 3000  -- a token_command token is trusted this long (gcloud's last 3600 s)

local function trim(s)
  if type(s) ~= "string" then return nil end
  s = s:match("^%s*(.-)%s*$")
  return s ~= "" and s or nil
end

local function env_true(name)
  local v = trim(os.getenv(name))
  return v ~= nil and (v:lower() == "true" or v == "1")
end

--- Whether nb.new(opts) makes a Vertex AI client.
function M.wanted(opts)
  if opts.vertex ~= nil then return opts.vertex ~= false end
  return env_true("GOOGLE_GENAI_USE_VERTEXAI")
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- the token provider: function() -> token, expires_in | nil, message
local function provider(opts, level)
  local n = (opts.access_token and 1 or 0) + (opts.token and 1 or 0) + (opts.token_command and 1 or 0)
  if n > 1 then options.fail(level, "give one of access_token, token and token_command") end
  if opts.access_token then
    local tok = trim(opts.access_token)
    if not tok then options.fail(level, "access_token is empty") end
    if tok:find("[\r\n]") then options.fail(level, "access_token has a forbidden character") end
    return function() return tok, nil end, true
  end
  if opts.token then return opts.token end
  if opts.token_command then
    local argv = opts.token_command
    if #argv == 0 then
      options.fail(level, "token_command is a list of strings, e.g. { \"gcloud\", \"auth\", \"print-access-token\" }")
    end
    local parts = {}
    for i, a in ipairs(argv) do
      if type(a) ~= "string" then options.fail(level, "token_command[%d] must be a string", i) end
      parts[i] = shell_quote(a)
    end
    -- the exit status comes back on a last line of its own (Lua 5.1's
    -- popen close does not report it)
    local cmd = table.concat(parts, " ") .. '; printf "\\n%d" "$?"'
    return function()
      local p = io.popen(cmd, "r")
      if not p then return nil, "cannot run token_command" end
      local out = p:read("*a") or ""
      p:close()
      local body, code = out:match("^(.*)\n(%d+)$")
      if code ~= "0" then
        return nil, "token_command failed" .. (code and (" (exit " .. code .. ")") or "")
      end
      if not trim(body) then return nil, "token_command printed no token" end
      out = body
      return trim(out), M.COMMAND_LIFETIME
    end
  end
end

--- Sets up client c (options o, private p) for Vertex AI from nb.new's opts.
function M.setup(c, o, p, opts, key, level)
  level = (level or 1) + 1
  local v = type(opts.vertex) == "table" and opts.vertex or {}
  for k in pairs(v) do
    if k ~= "project" and k ~= "location" then
      options.fail(level, "unknown vertex field '%s' (want project, location)", tostring(k))
    end
  end
  local project = v.project or trim(os.getenv("GOOGLE_CLOUD_PROJECT"))
  local location = v.location or trim(os.getenv("GOOGLE_CLOUD_LOCATION")) or "global"
  for _, s in ipairs { project or "x", location } do
    if type(s) ~= "string" or not s:match("^[%w][%w%-%._]*$") then
      options.fail(level, "vertex project and location are names like \"my-project\" and \"us-central1\" (got %q)",
        tostring(s))
    end
  end
  local get, static = provider(opts, level)
  local state = { project = project, location = location, get = get, static = static }
  if not get then
    if project or not key then
      options.fail(level, "Vertex AI needs an access token (access_token, token or token_command)"
        .. (project and "" or ", or an express-mode api_key"))
    end
    state.express = true
  elseif not project then
    options.fail(level, "Vertex AI with a token needs a project (vertex = { project = ... } or GOOGLE_CLOUD_PROJECT)")
  end
  if opts.base_url == nil then
    local env = trim(os.getenv("GOOGLE_VERTEX_BASE_URL"))
    if env then o.base_url = (env:gsub("/+$", ""))
    elseif state.express or location == "global" then o.base_url = "https://aiplatform.googleapis.com"
    else o.base_url = "https://" .. location .. "-aiplatform.googleapis.com" end
    if not o.base_url:match("^https?://") then
      options.fail(level, "GOOGLE_VERTEX_BASE_URL must start with http:// or https:// (got %q)", o.base_url)
    end
    o.host = o.base_url:match("^https?://%[?([^/%]:]+)"):lower()
  end
  if opts.api_version == nil then o.api_version = "v1" end
  o.auth = state.express and "x-goog-api-key" or "bearer"
  o.vertex = { project = project, location = location, express = state.express or false }
  p.vertex = state
  c._vertex = true
end

--- The URL for model and method on Vertex AI.
function M.url(c, model, method)
  local o = c.options
  local ver = o.api_version ~= "" and ("/" .. o.api_version) or ""
  local m = model:gsub("^publishers/google/models/", ""):gsub("^models/", "")
  local path = "/publishers/google/models/" .. m .. ":" .. (method or "generateContent")
  if o.vertex.express then return o.base_url .. ver .. path end
  return o.base_url .. ver .. "/projects/" .. o.vertex.project .. "/locations/" .. o.vertex.location .. path
end

--- The Authorization header line for a Vertex request (refreshing the
-- token when needed, or when force), or nil, err (kind "io"); nil alone
-- when forced with an access_token string (nothing to refresh).
function M.auth_header(_, p, force)
  local st = p.vertex
  local now = core.now()
  -- (the attempt after a 401 sends the token fetched for it as it is,
  -- however short its life)
  local due = st.expires and st.expires - now < M.REFRESH_MARGIN and not st.fresh
  st.fresh = nil
  if force or not st.token or due then
    if force and st.static then return nil end -- an access_token string cannot be refreshed
    local tok, exp = st.get()
    if type(tok) ~= "string" or trim(tok) == nil then
      return nil, errors.new("io",
        { message = "no Vertex AI access token: " .. tostring(exp or "the token source gave none") }, p.secrets)
    end
    tok = trim(tok)
    if tok:find("[\r\n]") then error("nanobanana: the access token has a forbidden character", 0) end
    if exp ~= nil and type(exp) ~= "number" then
      error("nanobanana: token() must return token, expires_in (seconds)", 0)
    end
    st.token, st.expires, st.fresh = tok, exp and (now + exp) or nil, force or nil
    local known = false
    for _, s in ipairs(p.secrets) do if s == tok then known = true end end
    if not known then p.secrets[#p.secrets + 1] = tok end
  end
  return "Authorization: Bearer " .. st.token
end

--- After a 401: a fresh token (forced), which the next attempt's headers
-- carry. true, or nil, err (nil alone: no fresh token to be had).
function M.reauth(c, p)
  if p.vertex.express then return nil end -- an API key: nothing to refresh
  local line, err = M.auth_header(c, p, true)
  if not line then return nil, err end
  return true
end

return M
