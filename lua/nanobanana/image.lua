--- Images (blobs): raw bytes or a file, never base64. Inputs built by
-- nb.image / `images = {...}`, and outputs in results, are the same type, so
-- a model turn replays from its decoded bytes (or from its file).
local core = require "nanobanana.core"
local errors = require "nanobanana.errors"

local M = {}

local Image = { __name = "nanobanana.Image" }
Image.__index = Image
M.Image = Image

function M.is_image(x) return getmetatable(x) == Image end

function Image:__tostring()
  local size = self.data and #self.data or self.size
  return string.format("nanobanana.Image (%s%s, %s)", tostring(self.mimeType),
    (self.width and self.height) and string.format(" %dx%d", self.width, self.height) or "",
    self.path and ("file " .. self.path) or (tostring(size) .. " bytes"))
end

--- The bytes (reads the file for file-backed images).
function Image:bytes()
  if self.data then return self.data end
  local d, err = core.read_file(self.path) -- (regular files only: never blocks; close-on-exec)
  if not d then return nil, errors.new("io", { message = err }) end
  return d
end

--- Writes the image to path atomically (temp file beside it + rename): on
-- failure no partial file is left and an existing file is untouched.
-- @treturn true @treturn[2] nil, err (kind "io")
function Image:save(path)
  if type(path) ~= "string" or path == "" then
    error("nanobanana: image:save(path) needs a file path", 2)
  end
  local ok, msg
  if self.data then ok, msg = core.write_atomic(path, self.data)
  elseif self.path == path then ok = true
  else ok, msg = core.copy_atomic(self.path, path) end
  if not ok then return nil, errors.new("io", { message = msg }) end
  return true
end

--- The blob segment the request encoder sends for this image.
function Image:_segment()
  if self.data then return { b64 = self.data } end
  return { file = self.path }
end

local function from_bytes(data, mime, declared)
  local sniffed, w, h = core.sniff(data)
  return setmetatable({ data = data, mimeType = sniffed or declared or mime,
    declaredMimeType = declared, width = w, height = h }, Image)
end
M.from_bytes = from_bytes

local function from_file(path, declared)
  local sniffed, w, h, size = core.sniff_file(path)
  if sniffed == false then return nil, errors.new("io", { message = w }) end
  return setmetatable({ path = path, mimeType = sniffed or declared, declaredMimeType = declared,
    width = w, height = h, size = size }, Image)
end
M.from_file = from_file

--- nb.image("a.png") | nb.image{ path = "a.png" } | nb.image{ data = bytes, mimeType = "image/jpeg" }
-- @treturn Image @treturn[2] nil, err (kind "io": unreadable or not an image)
function M.new(spec, level)
  level = (level or 1) + 1
  if M.is_image(spec) then return spec end
  if type(spec) == "string" then spec = { path = spec } end
  if type(spec) ~= "table" then
    error("nanobanana: an image is a path, {path=...}, {data=bytes, mimeType=...} or nb.image(...), got " .. type(spec), level)
  end
  for k in pairs(spec) do
    if k ~= "path" and k ~= "data" and k ~= "mimeType" then
      error("nanobanana: unknown image field '" .. tostring(k) .. "' (want path, data, mimeType)", level)
    end
  end
  if spec.mimeType ~= nil and type(spec.mimeType) ~= "string" then
    error("nanobanana: image mimeType must be a string", level)
  end
  if spec.data ~= nil then
    if type(spec.data) ~= "string" then error("nanobanana: image data must be a string of bytes", level) end
    if spec.path ~= nil then error("nanobanana: give an image either data or path, not both", level) end
    local img = from_bytes(spec.data, nil, spec.mimeType)
    if not img.mimeType then
      error("nanobanana: cannot tell the type of these image bytes; pass mimeType", level)
    end
    img.declaredMimeType = nil
    img.mimeType = spec.mimeType or img.mimeType
    return img
  end
  if type(spec.path) ~= "string" then error("nanobanana: image needs data or path", level) end
  local img, err = from_file(spec.path, spec.mimeType)
  if not img then return nil, err end
  if not img.mimeType then
    return nil, errors.new("io", { message = spec.path .. " is not an image nanobanana recognises (png, jpeg, webp, gif, heic, heif); pass mimeType" })
  end
  img.mimeType = spec.mimeType or img.mimeType
  img.declaredMimeType = nil
  return img
end

return M
