--- Error objects: every runtime failure is `nil, err` with err one of these.
-- Fields: kind, message, status (HTTP), code ("RESOURCE_EXHAUSTED"...),
-- details, retry_after (seconds), attempts, and for blocked/no_image:
-- finishReason, finishMessage, blockReason, text.
local M = {}

M.KINDS = {
  network = true, timeout = true, stall = true, tls = true, http = true, api = true,
  blocked = true, no_image = true, invalid_response = true, too_large = true,
  cancelled = true, io = true,
  memory = true, -- out of memory (not retried)
  config = true, -- the caller's setup: a URL or proxy libcurl rejects (not retried)
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

--- Replaces every secret (≥ 8 chars) found in s by "***".
local function scrub_string(s, secrets)
  if type(s) ~= "string" or not secrets then return s end
  for i = 1, #secrets do
    local sec = secrets[i]
    if #sec >= 8 then
      local out, pos = {}, 1
      while true do
        local a, b = s:find(sec, pos, true)
        if not a then break end
        out[#out + 1] = s:sub(pos, a - 1)
        out[#out + 1] = "***"
        pos = b + 1
      end
      if #out > 0 then out[#out + 1] = s:sub(pos); s = table.concat(out) end
    end
  end
  return s
end
M.scrub_string = scrub_string

--- Deep scrub of tables of strings (copies, depth-limited).
local function scrub(v, secrets, depth)
  depth = depth or 0
  if type(v) == "string" then return scrub_string(v, secrets) end
  if type(v) ~= "table" or depth > 20 or getmetatable(v) ~= nil then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = scrub(x, secrets, depth + 1) end
  return out
end
M.scrub = scrub

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
