--- Small helpers the Lua layer shares (one copy of each): table copies and
-- the wire's two spellings of a field (the API takes camelCase and
-- snake_case alike, so a part read back may carry either).
local M = {}

--- A shallow copy of t (nil gives an empty table).
function M.copy(t)
  local o = {}
  for k, v in pairs(t or {}) do o[k] = v end
  return o
end

--- The key of a wire part's inline image, "inlineData" or "inline_data",
-- or nil when the part has none.
function M.blob_key(part)
  return (part.inlineData ~= nil and "inlineData") or (part.inline_data ~= nil and "inline_data") or nil
end

--- A part's inline image table (inlineData / inline_data), or nil.
function M.blob_of(part)
  local key = M.blob_key(part)
  return key and part[key]
end

--- An inline image's declared MIME type (mimeType / mime_type), or nil.
function M.mime_type(blob) return blob.mimeType or blob.mime_type end

--- A part's thought signature (thoughtSignature / thought_signature), or nil.
function M.signature(part) return part.thoughtSignature or part.thought_signature end

--- Edit distance of a and b, letters compared without case ("did you mean" hints).
function M.distance(a, b)
  local la, lb = #a, #b
  local prev, cur = {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    for j = 1, lb do
      local cost = a:sub(i, i):lower() == b:sub(j, j):lower() and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[lb]
end

return M
