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

local function encode_string(s)
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

--- Encodes v. is_blob(x) tells which tables are blobs; each blob becomes a
-- segment of its own: blob_segment(x) returns {b64=bytes} or {file=path}.
-- Returns the array of body segments (strings and blob segments); without
-- blobs, one string in it (see M.encode_text).
function M.encode(v, is_blob, blob_segment)
  local segs, buf, nbuf = {}, {}, 0
  local function put(s) nbuf = nbuf + 1; buf[nbuf] = s end
  local function flush()
    if nbuf > 0 then segs[#segs + 1] = concat(buf, "", 1, nbuf); nbuf = 0 end
  end
  local seen = {}
  local function enc(x, key, depth)
    local tx = type(x)
    if tx == "string" then put(encode_string(x))
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

--- JSON text of v (no blobs in it).
function M.encode_text(v) return concat(M.encode(v)) end

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
