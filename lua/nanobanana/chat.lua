--- Multi-turn conversations. A chat is a history of wire `contents` whose
-- images are blobs (nanobanana.image): each successful send appends the
-- user turn and the model turn exactly as received (every part, thought
-- signatures included), so signatures round-trip by construction. A failed
-- or cancelled send leaves the history as it was, so it can be sent again.
local core = require "nanobanana.core"
local image = require "nanobanana.image"
local json = require "nanobanana.json"
local options = require "nanobanana.options"
local util = require "nanobanana.util"
local wire = require "nanobanana.wire"

local M = {}

local Chat = { __name = "nanobanana.Chat" }
Chat.__index = Chat
M.Chat = Chat

-- call options a chat keeps as defaults for every send; `contents` is the
-- chat's own business
local CHAT_OPTS = { history = "string|table" }
for k, v in pairs(options.CALL) do
  if k ~= "contents" and k ~= "output" and k ~= "on_done" and k ~= "images" then CHAT_OPTS[k] = v end
end

-- per-send options: every call option but `contents`
local SEND_OPTS = {}
for k, v in pairs(options.CALL) do
  if k ~= "contents" then SEND_OPTS[k] = v end
end

-- tables merged field by field (chat default, then the send's fields)
local MERGED = { imageConfig = true, generationConfig = true }

local copy = util.copy

-- A wire part with its inlineData.data (base64 text) made a blob.
local function revive_part(p, where, level)
  if type(p) ~= "table" then options.fail(level, "%s must be a table", where) end
  local q = copy(p)
  local key = util.blob_key(p)
  if key then
    local d = p[key]
    if type(d) ~= "table" then options.fail(level, "%s.%s must be a table", where, key) end
    d = copy(d)
    if type(d.data) == "string" then
      local bytes, err = core.b64decode(d.data)
      if not bytes then options.fail(level, "%s.%s.data is not base64: %s", where, key, tostring(err)) end
      local mime = util.mime_type(d)
      local img = image.from_bytes(bytes, nil, mime)
      if not img.mimeType then
        options.fail(level, "%s.%s: cannot tell the image type; give mimeType", where, key)
      end
      d.data = img
    elseif not image.is_image(d.data) then
      options.fail(level, "%s.%s.data must be base64 text or an image", where, key)
    end
    q[key] = d
  end
  return q
end

--- A history (JSON text or a wire `contents` table) as the chat keeps it:
-- a fresh list whose images are blobs. Raises when it is malformed.
function M.revive(history, level)
  level = (level or 1) + 1
  if type(history) == "string" then
    local ok, decoded = pcall(require("cjson").decode, history)
    if not ok then options.fail(level, "chat history is not JSON: %s", tostring(decoded)) end
    history = decoded
  end
  -- to_json's wrapper, decoded or not
  if type(history) == "table" and history.contents ~= nil then history = history.contents end
  if type(history) ~= "table" then options.fail(level, "chat history must be JSON text or a list of contents") end
  if history[1] == nil then
    options.fail(level, "chat history has no turns (a list of contents, or to_json()'s text or its decoded table; "
      .. "omit history to start empty)")
  end
  local out = json.array()
  for i, c in ipairs(history) do
    local where = "history[" .. i .. "]"
    if type(c) ~= "table" then options.fail(level, "%s must be a table", where) end
    if c.role ~= "user" and c.role ~= "model" then
      options.fail(level, "%s.role must be \"user\" or \"model\" (got %s)", where, tostring(c.role))
    end
    if type(c.parts) ~= "table" then options.fail(level, "%s.parts must be a list", where) end
    local parts = json.array()
    for j, p in ipairs(c.parts) do parts[j] = revive_part(p, where .. ".parts[" .. j .. "]", level) end
    local nc = copy(c)
    nc.parts = parts
    out[i] = nc
  end
  return out
end

--- client:chat(opts): opts are call options kept as defaults for every send
-- (model, imageConfig, generationConfig, systemInstruction, ...) plus
-- `history` (JSON text from chat:to_json() or a wire contents table).
function M.new(client, opts, level)
  level = (level or 1) + 1
  options.check(opts, CHAT_OPTS, "chat options", level)
  local defaults = {}
  for k, v in pairs(opts or {}) do
    if k ~= "history" then defaults[k] = v end
  end
  local history = opts and opts.history ~= nil and M.revive(opts.history, level) or json.array()
  return setmetatable({ history = history, _client = client, _defaults = defaults }, Chat)
end

function Chat:__tostring()
  return string.format("nanobanana.Chat (%d turns%s)", #self.history, self._pending and ", sending" or "")
end

-- While options merge, imageConfig lives in one place: the top level (an
-- imageConfig inside generationConfig moves there; wire.build sends it in
-- generationConfig either way). t is a fresh copy, changed in place.
local function lift_image_config(t)
  local gc = t.generationConfig
  local ic = type(gc) == "table" and (gc.imageConfig or gc.image_config)
  if ic and t.imageConfig == nil then
    gc = copy(gc)
    gc.imageConfig, gc.image_config = nil, nil
    t.generationConfig = next(gc) ~= nil and gc or nil
    t.imageConfig = ic
  end
  return t
end

-- The options of one send: the chat's defaults, then the send's own.
function Chat:_options(opts)
  local o = lift_image_config(copy(self._defaults))
  for k, v in pairs(lift_image_config(copy(opts or {}))) do
    if MERGED[k] and type(v) == "table" and type(o[k]) == "table" then
      local m = copy(o[k])
      for kk, vv in pairs(v) do m[kk] = vv end
      o[k] = m
    else
      o[k] = v
    end
  end
  return o
end

--- chat:start(prompt, opts) -> request (non-blocking). The exchange joins
-- the history when the request succeeds (inside poll()/wait(), before its
-- on_done fires). One send at a time: a second one while the first is
-- running raises.
function Chat:start(prompt, opts)
  local req = self:_start(prompt, opts, 2) -- not a tail call: errors name the caller's line
  return req
end

function Chat:_start(prompt, opts, level)
  level = (level or 1) + 1
  if type(opts) == "table" and opts.contents ~= nil then options.fail(level, "a chat keeps its own contents") end
  options.check(opts, SEND_OPTS, "chat send options", level)
  if self._pending then options.fail(level, "this chat is still sending; wait for it (one send at a time)") end
  local o = self:_options(opts)
  local c = self._client
  local parts, err = wire.user_parts(prompt, o.images, level)
  if not parts then -- an image file cannot be read: a failed request, as generate gives
    local req = c:_new_request(o, level)
    req:_finish(nil, err)
    return req
  end
  if #parts == 0 then options.fail(level, "nothing to send: give a prompt or images") end
  local user = { role = "user", parts = json.array(parts) }
  local contents = json.array()
  for i, turn in ipairs(self.history) do contents[i] = turn end
  contents[#contents + 1] = user
  o.contents, o.images = contents, nil
  local req = c:_start(nil, o, level, function(r, res)
    if self._pending == r then self._pending = nil end
    if res then
      local h = self.history
      h[#h + 1] = user
      h[#h + 1] = res.content
    end
  end)
  if not req._finished then self._pending = req end
  return req
end

--- chat:send(prompt, opts) -> res | nil, err (blocking).
function Chat:send(prompt, opts)
  return self:_start(prompt, opts, 2):_run()
end

--- Forgets the last exchange (user turn and model turn); returns true, or
-- false when the history is empty.
function Chat:undo()
  if self._pending then error("nanobanana: this chat is still sending", 2) end
  local h = self.history
  if #h < 2 then return false end
  h[#h] = nil
  h[#h] = nil
  return true
end

--- The history in wire form (JSON text, images as base64), for
-- client:chat{ history = ... } later.
-- @treturn string @treturn[2] nil, err (kind "io": a file-backed image is unreadable)
function Chat:to_json()
  local segs = json.encode({ contents = self.history }, image.is_image, function(img) return img end)
  local out = {}
  for i, s in ipairs(segs) do
    if type(s) == "string" then
      out[i] = s
    else
      local b64, err = s:_base64() -- from the image's C memory when its data was never read
      if not b64 then return nil, err end
      out[i] = b64
    end
  end
  return table.concat(out)
end

return M
