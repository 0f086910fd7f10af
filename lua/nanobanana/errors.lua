--- Error objects: every runtime failure is `nil, err` with err one of these.
-- Fields: kind, message, status (HTTP), code ("RESOURCE_EXHAUSTED"...),
-- details, retry_after (seconds), attempts, and for blocked/no_image:
-- finishReason, finishMessage, blockReason, text.
local M = {}

M.KINDS = {
  network = true, timeout = true, stall = true, tls = true, http = true, api = true,
  blocked = true, no_image = true, invalid_response = true, too_large = true,
  cancelled = true, io = true,
  -- local failures (never retried, never "network"): config = a setting
  -- libcurl refused (a malformed proxy or URL), memory = out of memory
  config = true, memory = true,
}

local Error = { __name = "nanobanana.Error" }
Error.__index = Error
M.Error = Error

function Error:__tostring()
  local head = "nanobanana: " .. self.kind
  if self.status and self.status ~= 0 then head = head .. " " .. self.status end
  if self.code then head = head .. " " .. tostring(self.code) end
  local s = head .. ": " .. tostring(self.message)
  if self.attempts and self.attempts > 1 then s = s .. " (after " .. self.attempts .. " attempts)" end
  return s
end

-- Secrets travel as a scrubber: a function that scrubs one string, holding
-- the secrets in its upvalues, so no table anyone can reach lists them.

local function replace_all(s, sec)
  local out, pos = {}, 1
  while true do
    local a, b = s:find(sec, pos, true)
    if not a then break end
    out[#out + 1] = s:sub(pos, a - 1)
    out[#out + 1] = "***"
    pos = b + 1
  end
  if #out == 0 then return s end
  out[#out + 1] = s:sub(pos)
  return table.concat(out)
end

--- A scrubber for a list of secrets: f(s) -> s with every secret of 8 or
-- more characters replaced by "***" (shorter ones are too short to scrub
-- safely). The list is live: a secret appended later (a token refreshed)
-- is scrubbed from then on.
function M.scrubber(list)
  list = list or {}
  return function(s)
    if type(s) ~= "string" then return s end
    for i = 1, #list do
      local sec = list[i]
      if #sec >= 8 then s = replace_all(s, sec) end
    end
    return s
  end
end

--- Replaces every secret found in s by "***" (secrets: a scrubber, or a
-- list of strings).
local function scrub_string(s, secrets)
  if type(s) ~= "string" or not secrets then return s end
  if type(secrets) == "function" then return secrets(s) end
  return M.scrubber(secrets)(s)
end
M.scrub_string = scrub_string

--- Deep scrub of tables of strings (copies, depth-limited).
local function scrub(v, secrets, depth)
  depth = depth or 0
  if type(v) == "string" then return scrub_string(v, secrets) end
  if type(v) ~= "table" or depth > 20 or getmetatable(v) ~= nil then return v end
  local out = {}
  for k, x in pairs(v) do out[scrub_string(k, secrets)] = scrub(x, secrets, depth + 1) end
  return out
end
M.scrub = scrub

-- JSON arrays (json.array) are plain data too; any other metatable (an
-- image) is left alone
local json_array_mt = require("nanobanana.json").array_mt

--- Scrubs a decoded response in place, at any depth: every string value
-- and key of plain tables and JSON arrays (tables with another metatable,
-- such as images, whose bytes are not scrubbed, are left alone). Returns v.
function M.scrub_in_place(v, secrets, depth)
  depth = depth or 0
  if not secrets or type(v) ~= "table" or depth > 200 then return v end
  local mt = getmetatable(v)
  if mt ~= nil and mt ~= json_array_mt then return v end
  local f = type(secrets) == "function" and secrets or M.scrubber(secrets)
  local rekey
  for k, x in pairs(v) do
    local tx = type(x)
    if tx == "string" then
      local y = f(x)
      if y ~= x then v[k] = y end -- (assigning an existing key while traversing is allowed)
    elseif tx == "table" then
      M.scrub_in_place(x, f, depth + 1)
    end
    if type(k) == "string" and f(k) ~= k then
      rekey = rekey or {}
      rekey[#rekey + 1] = k
    end
  end
  for _, k in ipairs(rekey or {}) do
    local x = v[k]
    v[k] = nil
    v[f(k)] = x
  end
  return v
end

--- New error. fields.message required; secrets is the list to scrub.
function M.new(kind, fields, secrets)
  assert(M.KINDS[kind], "unknown error kind " .. tostring(kind))
  local e = {}
  for k, v in pairs(fields or {}) do e[k] = scrub(v, secrets) end
  e.kind = kind
  e.message = e.message or kind
  return setmetatable(e, Error)
end

function M.is_error(x) return getmetatable(x) == Error end

return M
