--- JSON for requests: a small encoder that knows the wire's list fields.
-- Responses are decoded by lua-cjson; requests are encoded here because the
-- request must (1) send wire lists as JSON arrays even when empty, (2) leave
-- image blobs out of the text, as separate body segments the C core
-- base64-encodes while uploading, and (3) not escape "/" (cjson 2.1.0 does).
local M = {}

local type, pairs, next, tostring = type, pairs, next, tostring
local concat, format, byte = table.concat, string.format, string.byte
local math_type = math.type or function(v) return v % 1 == 0 and "integer" or "float" end

--- Marks a table as a JSON array (so an empty one encodes as []).
M.array_mt = { __name = "nanobanana.json.array" }
function M.array(t) return setmetatable(t or {}, M.array_mt) end

--- Keys whose values the wire defines as lists.
M.LIST_KEYS = {
  contents = true, parts = true, safetySettings = true, safety_settings = true,
  tools = true, responseModalities = true, response_modalities = true,
  stopSequences = true, stop_sequences = true, functionDeclarations = true,
  function_declarations = true, allowedFunctionNames = true, allowed_function_names = true,
  images = true,
}

local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
              ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function esc_char(c) return ESC[c] or format("\\u%04x", byte(c)) end

-- JSON text is UTF-8 (RFC 8259 §8.1): the offset of the first byte of s
-- that does not begin a well-formed UTF-8 sequence (Unicode Table 3-7: no
-- overlong forms, no surrogates, nothing past U+10FFFF), or nil
local function bad_utf8(s)
  local find = string.find
  local i = find(s, "[\128-\255]")
  while i do
    local c, lo, hi = byte(s, i), 0x80, 0xBF -- lo..hi: the second byte's range
    local len -- continuation bytes
    if c < 0xC2 or c > 0xF4 then return i -- a continuation byte, C0, C1, F5..FF
    elseif c <= 0xDF then len = 1
    elseif c == 0xE0 then len, lo = 2, 0xA0
    elseif (c >= 0xE1 and c <= 0xEC) or c == 0xEE or c == 0xEF then len = 2
    elseif c == 0xED then len, hi = 2, 0x9F
    elseif c == 0xF0 then len, lo = 3, 0x90
    elseif c >= 0xF1 and c <= 0xF3 then len = 3
    else len, hi = 3, 0x8F end -- F4
    local c2 = byte(s, i + 1)
    if not c2 or c2 < lo or c2 > hi then return i end
    for k = 2, len do
      local ck = byte(s, i + k)
      if not ck or ck < 0x80 or ck > 0xBF then return i end
    end
    i = find(s, "[\128-\255]", i + len + 1)
  end
  return nil
end
M.bad_utf8 = bad_utf8

--- A JSON string; raises (level 0) when s is not UTF-8. what names it in
-- the message (a field name).
local function encode_string(s, what)
  local bad = bad_utf8(s)
  if bad then
    error(format("nanobanana: %s is not UTF-8 (byte %d is 0x%02X): JSON text must be UTF-8; "
      .. "convert it first", what and ("field " .. what) or "a string", bad, byte(s, bad)), 0)
  end
  return '"' .. s:gsub('[%c"\\]', esc_char) .. '"'
end
M.encode_string = encode_string

local function encode_number(v)
  if v ~= v or v == math.huge or v == -math.huge then
    error("nanobanana: cannot encode " .. tostring(v) .. " as JSON", 0)
  end
  if math_type(v) == "integer" then return format("%d", v) end
  if v == math.floor(v) and v >= -2^53 and v <= 2^53 then return format("%.0f", v) end
  local s = format("%.14g", v)
  if tonumber(s) ~= v then s = format("%.17g", v) end
  return s
end

local function is_sequence(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then return false end
    count = count + 1
  end
  return count == n
end

-- the body segments of v (see M.encode); raises at level 0
local function encode(v, is_blob, blob_segment)
  local segs, buf, nbuf = {}, {}, 0
  local function put(s) nbuf = nbuf + 1; buf[nbuf] = s end
  local function flush()
    if nbuf > 0 then segs[#segs + 1] = concat(buf, "", 1, nbuf); nbuf = 0 end
  end
  local seen = {}
  local function enc(x, key, depth)
    local tx = type(x)
    if tx == "string" then put(encode_string(x, key))
    elseif tx == "number" then put(encode_number(x))
    elseif tx == "boolean" then put(x and "true" or "false")
    elseif tx == "nil" then put("null")
    elseif tx == "table" then
      if is_blob and is_blob(x) then
        put('"'); flush()
        segs[#segs + 1] = blob_segment(x)
        put('"')
        return
      end
      if depth > 100 then error("nanobanana: table nested too deeply for JSON", 0) end
      if seen[x] then error("nanobanana: cycle in a table given as JSON", 0) end
      seen[x] = true
      local arrayish = getmetatable(x) == M.array_mt or (key and M.LIST_KEYS[key] and next(x) == nil)
        or is_sequence(x)
      if arrayish then
        put("[")
        for i = 1, #x do
          if i > 1 then put(",") end
          enc(x[i], nil, depth + 1)
        end
        put("]")
      else
        -- sorted keys: the same request always gives the same bytes
        local keys = {}
        for k in pairs(x) do
          if type(k) ~= "string" then
            error("nanobanana: JSON object keys must be strings (got " .. type(k) .. ")", 0)
          end
          keys[#keys + 1] = k
        end
        table.sort(keys)
        put("{")
        for i, k in ipairs(keys) do
          if i > 1 then put(",") end
          put(encode_string(k)); put(":")
          enc(x[k], k, depth + 1)
        end
        put("}")
      end
      seen[x] = nil
    elseif x == M.null then put("null")
    else
      error("nanobanana: cannot encode a " .. tx .. " as JSON", 0)
    end
  end
  enc(v, nil, 0)
  flush()
  return segs
end

-- Encodes v; with level, a value JSON cannot hold (a string that is not
-- UTF-8, NaN, a cycle, ...) raises at that level (the caller's line), not
-- from inside the encoder.
local function encode_at(level, v, is_blob, blob_segment)
  if not level then return encode(v, is_blob, blob_segment) end
  local ok, segs = pcall(encode, v, is_blob, blob_segment)
  if not ok then error(segs, type(segs) == "string" and segs:match("^nanobanana: ") and level + 1 or 0) end
  return segs
end

--- Encodes v. is_blob(x) tells which tables are blobs; each blob becomes a
-- segment of its own: blob_segment(x) returns {b64=bytes} or {file=path}.
-- Returns the array of body segments (strings and blob segments); without
-- blobs, one string in it (see M.encode_text). A value JSON cannot hold
-- raises: at level (the caller's caller's line) when given.
function M.encode(v, is_blob, blob_segment, level)
  local segs = encode_at(level and level + 1, v, is_blob, blob_segment) -- not a tail call (error levels)
  return segs
end

--- JSON text of v (no blobs in it); raises as M.encode does.
function M.encode_text(v, level)
  return concat(encode_at(level and level + 1, v))
end

local ok_cjson, cjson = pcall(require, "cjson.safe")
if not ok_cjson then cjson = require("cjson").new() end
M.null = (cjson.null)

--- Decodes JSON text (lua-cjson). Returns value or nil, message.
function M.decode(s)
  local v, err = cjson.decode(s)
  if v == nil and err then return nil, err end
  return v
end

return M
