--- Builds the generateContent request body from a prompt and call options.
-- Wire names stay as on the wire; images become Image blobs that the JSON
-- encoder turns into body segments (base64 made by C while uploading).
local image = require "nanobanana.image"
local json = require "nanobanana.json"
local options = require "nanobanana.options"
local util = require "nanobanana.util"

local M = {}

local function is_list(t)
  return type(t) == "table" and (next(t) == nil or t[1] ~= nil)
end

--- Counts the images of the turn being sent (the last content, when it is
-- a user turn), for per-model limits: earlier turns of a history don't count.
local function count_user_images(contents)
  local n = 0
  local c = contents[#contents]
  if type(c) == "table" and c.role ~= "model" and type(c.parts) == "table" then
    for _, p in ipairs(c.parts) do
      if type(p) == "table" and (util.blob_key(p) or p.fileData or p.file_data) then n = n + 1 end
    end
  end
  return n
end

-- A file reference: a file table from client:upload/file/files, or
-- { fileUri = "https://...", mimeType = ... }. Returns its fileData, or nil.
local function file_ref(spec, level)
  level = level + 1
  if type(spec) ~= "table" or image.is_image(spec) then return nil end
  local uri = spec.fileUri or (getmetatable(spec) and getmetatable(spec).__name == "nanobanana.File" and spec.uri)
  if uri == nil then return nil end
  if type(uri) ~= "string" then options.fail(level, "fileUri must be a string") end
  for k in pairs(spec) do
    if getmetatable(spec) == nil and k ~= "fileUri" and k ~= "mimeType" then
      options.fail(level, "unknown file reference field '%s' (want fileUri, mimeType)", tostring(k))
    end
  end
  local mime = spec.mimeType
  if mime ~= nil and type(mime) ~= "string" then options.fail(level, "a file reference's mimeType must be a string") end
  return { mimeType = mime, fileUri = uri }
end

--- The parts of a user turn: the prompt's text, then the images as blobs.
-- Returns parts (possibly empty); nil, err (kind "io") when an image path
-- cannot be read. Raises on malformed arguments.
function M.user_parts(prompt, images, level)
  level = (level or 1) + 1
  local parts = {}
  if prompt ~= nil then
    if type(prompt) ~= "string" then options.fail(level, "the prompt must be a string, got %s", type(prompt)) end
    if prompt == "" then -- (the API answers 400: "... it has an empty text parameter")
      options.fail(level, "the prompt is empty (the API refuses an empty text part): give text, "
        .. "or nil to send images alone")
    end
    parts[1] = { text = prompt }
  end
  if images ~= nil then
    if not is_list(images) then options.fail(level, "images must be a list") end
    for i, spec in ipairs(images) do
      local fd = file_ref(spec, level)
      if fd then
        parts[#parts + 1] = { fileData = fd }
      else
        local img, err = image.new(spec, level)
        if not img then
          err.message = "images[" .. i .. "]: " .. err.message
          return nil, err
        end
        parts[#parts + 1] = { inlineData = { mimeType = img.mimeType, data = img } }
      end
    end
  end
  return parts
end

--- Returns body, image_count; or nil, err (kind "io") when an image path
-- cannot be read. Raises on malformed options.
function M.build(prompt, opts, level)
  level = (level or 1) + 1
  local body = {}
  local contents = {}
  if opts.contents ~= nil then
    if not is_list(opts.contents) then options.fail(level, "contents must be a list of content tables") end
    for i, c in ipairs(opts.contents) do
      if type(c) ~= "table" then options.fail(level, "contents[%d] must be a table", i) end
      contents[i] = c
    end
  end
  local parts, err = M.user_parts(prompt, opts.images, level)
  if not parts then return nil, err end
  if #parts > 0 then contents[#contents + 1] = { role = "user", parts = parts } end
  if #contents == 0 then options.fail(level, "nothing to send: give a prompt, images or contents") end
  body.contents = json.array(contents)

  local gc = opts.generationConfig
  if gc ~= nil then gc = util.copy(gc) end
  if opts.imageConfig ~= nil then
    if gc and (gc.imageConfig ~= nil or gc.image_config ~= nil) then
      options.fail(level, "give imageConfig either at the top level or inside generationConfig, not both")
    end
    gc = gc or {}
    gc.imageConfig = opts.imageConfig
  end
  if gc and gc.image_config ~= nil and gc.imageConfig == nil then
    gc.imageConfig, gc.image_config = gc.image_config, nil
  end
  if gc and next(gc) ~= nil then body.generationConfig = gc end

  local si = opts.systemInstruction
  if type(si) == "string" then si = { parts = { { text = si } } } end
  body.systemInstruction = si
  body.safetySettings = opts.safetySettings
  body.tools = opts.tools
  body.toolConfig = opts.toolConfig
  body.cachedContent = opts.cachedContent
  -- extra = {...}: fields set at the body's top level as given (new wire
  -- fields, e.g. serviceTier), replacing any built above
  for k, v in pairs(opts.extra or {}) do
    if type(k) ~= "string" then options.fail(level, "extra: field names must be strings") end
    body[k] = v
  end
  return body, count_user_images(contents)
end

return M
