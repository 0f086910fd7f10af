--- Option checking: names, types and per-model values. Every failure here is
-- a programming error and raises, with a "did you mean" hint for names.
local models = require "nanobanana.models"

local M = {}

local function distance(a, b)
  local la, lb = #a, #b
  if math.abs(la - lb) > 3 then return 99 end
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
}

M.CALL = {
  imageConfig = "table", images = "table", contents = "table", generationConfig = "table",
  systemInstruction = "table|string", safetySettings = "table", tools = "table",
  toolConfig = "table", cachedContent = "string", model = "string", output = "string",
  on_progress = "function", on_done = "function", on_event = "function", stream = "boolean",
  timeout = "number", retries = "number",
  connect_timeout = "number", stall_timeout = "number",
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

--- Per-model checks of a request (only for models nanobanana knows).
function M.check_model(model_id, genconf, nimages, level)
  level = (level or 1) + 1
  local m = models[model_id]
  if not m then return end
  local ic = genconf and genconf.imageConfig
  if ic ~= nil and type(ic) ~= "table" then fail(level, "imageConfig must be a table") end
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

return M
