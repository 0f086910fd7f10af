--- Images: raw bytes or a file, never base64. Inputs built by nb.image /
-- `images = {...}`, and outputs in results, are the same type, so a model
-- turn replays from its decoded bytes (or from its file).
--
-- An image comes in one of three forms (fields `size`, `mimeType`,
-- `width`, `height` in all of them):
--   - a decoded result kept in C memory (a nanobanana.Blob in `_blob`):
--     `img.data` becomes a Lua string the first time it is read (one copy;
--     the C memory is released at once and the string kept in the field);
--     `img:save()`, `img.size`, sniffing and a replay in a chat read the
--     C memory directly and never make that string;
--   - bytes in a Lua string (`data`): nb.image{ data = ... }, or a result
--     whose data was read;
--   - a file (`path`): nb.image "a.png", or a result written with output=.
local core = require "nanobanana.core"
local errors = require "nanobanana.errors"

local M = {}

local Image = { __name = "nanobanana.Image" }
M.Image = Image

-- img.data of a blob-backed image: made on first read, then a plain field
function Image.__index(self, k)
  if k == "data" then
    local blob = rawget(self, "_blob")
    if blob == nil then return nil end
    local data = blob:take() -- one copy; the blob's C memory is let go here
    rawset(self, "data", data)
    rawset(self, "_blob", nil)
    return data
  end
  return Image[k]
end

function M.is_image(x) return getmetatable(x) == Image end

function Image:__tostring()
  return string.format("nanobanana.Image (%s%s, %s)", tostring(self.mimeType),
    (self.width and self.height) and string.format(" %dx%d", self.width, self.height) or "",
    self.path and ("file " .. self.path) or (tostring(self.size) .. " bytes"))
end

-- The bytes without making a Lua string when they are still in C memory:
-- the Blob or the string (nil for a file-backed image).
function Image:_bytes_ref()
  return rawget(self, "data") or rawget(self, "_blob")
end

-- file name extensions of the types the library recognises, and back
local EXT = { ["image/png"] = "png", ["image/jpeg"] = "jpg", ["image/webp"] = "webp",
              ["image/gif"] = "gif", ["image/heic"] = "heic", ["image/heif"] = "heif" }
local TYPE_OF_EXT = { jpeg = "image/jpeg" }
for mime, ext in pairs(EXT) do TYPE_OF_EXT[ext] = mime end

--- The MIME type a file name extension stands for ("jpg", "JPEG", "png", ...), or nil.
function M.type_of_extension(ext) return ext and TYPE_OF_EXT[ext:lower()] end

--- The file name extension for the image's real type, without the dot:
-- "png", "jpg", "webp", "gif", "heic" or "heif"; nil when the type is not
-- one of those. Gemini 3 models send JPEG, so a name made as
-- `"otter." .. img:extension()` says what the file holds.
-- @treturn string|nil
function Image:extension() return EXT[self.mimeType] end

--- The bytes: `img.data` (reads the file for file-backed images).
function Image:bytes()
  local data = self.data
  if data then return data end
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
  local bytes = self:_bytes_ref()
  if bytes then ok, msg = core.write_atomic(path, bytes) -- straight from C memory when unread
  elseif self.path == path then ok = true
  else ok, msg = core.copy_atomic(self.path, path) end
  if not ok then return nil, errors.new("io", { message = msg }) end
  return true
end

--- The blob segment the request encoder sends for this image. A Blob's
-- bytes are sent from C memory: the segment holds a reference of its own
-- (Blob:share), so every attempt of the request can send them even if
-- img.data is read meanwhile; the request drops it when it finishes.
function Image:_segment()
  local data, blob = rawget(self, "data"), rawget(self, "_blob")
  if data then return { b64 = data } end
  if blob then return { b64 = blob:share() } end
  return { file = self.path }
end

--- Lets go of the references a request body's segments hold (see
-- Image:_segment) when the request is finished; a transfer still running
-- keeps a reference of its own.
function M.release_segments(body)
  for _, s in ipairs(body or {}) do
    if type(s) == "table" and type(s.b64) == "userdata" then s.b64:close() end
  end
end

--- The image's bytes as base64 text (a chat's to_json), encoded from the C
-- memory when they are still there.
-- @treturn string @treturn[2] nil, err (kind "io": the file is unreadable)
function Image:_base64()
  local bytes = self:_bytes_ref()
  if not bytes then
    local err
    bytes, err = self:bytes()
    if not bytes then return nil, err end
  end
  return core.b64encode(bytes)
end

-- An image from bytes: a Lua string, or a nanobanana.Blob (a decoded
-- result, kept in C memory until img.data is read).
local function from_bytes(bytes, mime, declared)
  local sniffed, w, h = core.sniff(bytes)
  local img = { mimeType = sniffed or declared or mime, declaredMimeType = declared, width = w, height = h }
  if type(bytes) == "string" then
    img.data, img.size = bytes, #bytes
  else
    img._blob, img.size = bytes, bytes:size()
  end
  return setmetatable(img, Image)
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
