--- Known models: what each takes (ratios, sizes, reference images,
-- thinking) and where it stands (GA or preview, release, shutdown date and
-- replacement as Google announced them). Unknown model ids pass through
-- unvalidated: new models and gateway aliases keep working. Also the hint
-- added to a 404 for a retired or misspelled model id.
local util = require "nanobanana.util"

local R10 = { "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9" }
local R14 = { "1:1", "1:4", "1:8", "2:3", "3:2", "3:4", "4:1", "4:3", "4:5", "5:4", "8:1",
              "9:16", "16:9", "21:9" }

local function dims(t)
  local out = {}
  for ratio, wh in pairs(t) do out[ratio] = { width = wh[1], height = wh[2] } end
  return out
end

local PRO_1K = { ["1:1"] = {1024,1024}, ["2:3"] = {848,1264}, ["3:2"] = {1264,848},
  ["3:4"] = {896,1200}, ["4:3"] = {1200,896}, ["4:5"] = {928,1152}, ["5:4"] = {1152,928},
  ["9:16"] = {768,1376}, ["16:9"] = {1376,768}, ["21:9"] = {1584,672} }
local function scale(t, f)
  local o = {}
  for k, v in pairs(t) do o[k] = { v[1] * f, v[2] * f } end
  return o
end
local FLASH31_EXTRA = {
  ["512"] = { ["1:1"] = {512,512}, ["1:4"] = {256,1024}, ["1:8"] = {192,1536}, ["2:3"] = {424,632},
    ["3:2"] = {632,424}, ["3:4"] = {448,600}, ["4:1"] = {1024,256}, ["4:3"] = {600,448},
    ["4:5"] = {464,576}, ["5:4"] = {576,464}, ["8:1"] = {1536,192}, ["9:16"] = {384,688},
    ["16:9"] = {688,384}, ["21:9"] = {792,336} },
}
local function flash31(_size, f) -- _size: the size name, for the reader
  local t = scale(PRO_1K, f)
  local extra = { ["1:4"] = {512,2048}, ["1:8"] = {384,3072}, ["4:1"] = {2048,512}, ["8:1"] = {3072,384} }
  for k, v in pairs(extra) do t[k] = { v[1] * f, v[2] * f } end
  return t
end

local pro = {
  name = "gemini-3-pro-image-preview", nickname = "Nano Banana Pro",
  aspect_ratios = R10, image_sizes = { "1K", "2K", "4K" }, default_size = "1K",
  max_images = 14, thinking = true, thought_signatures = true, grounding = true,
  pixels = { ["1K"] = dims(PRO_1K), ["2K"] = dims(scale(PRO_1K, 2)), ["4K"] = dims(scale(PRO_1K, 4)) },
}
local flash31m = {
  name = "gemini-3.1-flash-image-preview", nickname = "Nano Banana 2",
  aspect_ratios = R14, image_sizes = { "512", "1K", "2K", "4K" }, default_size = "1K",
  max_images = 14, thinking = true, thought_signatures = true, grounding = true,
  pixels = { ["512"] = dims(FLASH31_EXTRA["512"]), ["1K"] = dims(flash31("1K", 1)),
             ["2K"] = dims(flash31("2K", 2)), ["4K"] = dims(flash31("4K", 4)) },
}
local flash25 = {
  name = "gemini-2.5-flash-image", nickname = "Nano Banana",
  aspect_ratios = R10, image_sizes = {}, default_size = nil,
  max_images = 3, thinking = false, thought_signatures = false, grounding = false,
  pixels = { default = dims({ ["1:1"] = {1024,1024}, ["2:3"] = {832,1248}, ["3:2"] = {1248,832},
    ["3:4"] = {864,1184}, ["4:3"] = {1184,864}, ["4:5"] = {896,1152}, ["5:4"] = {1152,896},
    ["9:16"] = {768,1344}, ["16:9"] = {1344,768}, ["21:9"] = {1536,672} }) },
}

local function alias(m, name, extra)
  local a = util.copy(m)
  a.name = name
  for k, v in pairs(extra) do a[k] = v end
  return a
end

-- stage: "ga" | "preview"; released / shutdown: "YYYY-MM-DD" (shutdown: the
-- announced date, for 2.5 the earliest one); replacement: the id to move to.
local models = {
  ["gemini-2.5-flash-image"] = alias(flash25, "gemini-2.5-flash-image", {
    stage = "ga", shutdown = "2026-10-02", replacement = "gemini-3.1-flash-image" }),
  ["gemini-3-pro-image-preview"] = alias(pro, "gemini-3-pro-image-preview", {
    stage = "preview", shutdown = "2026-06-25", replacement = "gemini-3-pro-image" }),
  ["gemini-3.1-flash-image-preview"] = alias(flash31m, "gemini-3.1-flash-image-preview", {
    stage = "preview", shutdown = "2026-06-25", replacement = "gemini-3.1-flash-image" }),
  ["gemini-3-pro-image"] = alias(pro, "gemini-3-pro-image", {
    stage = "ga", released = "2026-05-28", nickname = "Nano Banana Pro" }),
  ["gemini-3.1-flash-image"] = alias(flash31m, "gemini-3.1-flash-image", {
    stage = "ga", released = "2026-05-28", nickname = "Nano Banana 2" }),
}

for _, m in pairs(models) do
  m.takes_ratio, m.takes_size = {}, {}
  for _, r in ipairs(m.aspect_ratios) do m.takes_ratio[r] = true end
  for _, s in ipairs(m.image_sizes) do m.takes_size[s] = true end
end

local distance = util.distance

-- The hint for a 404 naming model id (nil when there is nothing to say):
-- the replacement of a known retired id, else the closest known id.
local function hint(id)
  if type(id) ~= "string" then return nil end
  local bare = id:gsub("^models/", ""):gsub("^publishers/google/models/", "")
  local m = rawget(models, bare)
  if m then
    if m.replacement then
      if m.stage == "preview" then
        return string.format("%s was shut down on %s; use %s", bare, m.shutdown, m.replacement)
      end
      return string.format("%s's shutdown was announced for %s at the earliest; use %s", bare, m.shutdown,
        m.replacement)
    end
    return nil
  end
  local best, bestd
  for k in pairs(models) do
    local d = distance(bare, k)
    if not bestd or d < bestd or (d == bestd and k < best) then best, bestd = k, d end
  end
  if best and bestd <= math.max(3, math.floor(#bare / 3)) then
    local target = models[best].replacement or best
    return string.format("did you mean %s?", target)
  end
  local ga = {}
  for k, v in pairs(models) do if type(v) == "table" and v.stage == "ga" and not v.shutdown then ga[#ga + 1] = k end end
  table.sort(ga)
  return "known models: " .. table.concat(ga, ", ")
end

-- A 404 error for model id gets err.hint, and the hint at the end of its message.
local function hint_error(err, id)
  local h = hint(id)
  if h then
    err.hint = h
    err.message = tostring(err.message) .. " (" .. h .. ")"
  end
  return err
end

-- private helpers (not listed by pairs(nb.models))
return setmetatable(models, { __index = { _hint = hint, _hint_error = hint_error } })
