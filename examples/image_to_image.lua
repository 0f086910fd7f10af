-- Image to image: edit one or more reference images.
--   lua5.4 examples/image_to_image.lua in.jpg ["prompt"] [NAME]
-- Writes NAME.<ext>, the extension from the image's real type.
local nb = require "nanobanana"

local input = assert(arg[1], "usage: image_to_image.lua in.jpg [prompt] [NAME]")
local prompt = arg[2] or "add a rainbow"
local name = (arg[3] or "edited"):gsub("%.%a+$", "")

local client = nb.new()
local res, err = client:generate(prompt, {
  images = { input },                 -- paths, {data=bytes, mimeType=...} or nb.image(...)
  imageConfig = { aspectRatio = "4:3" },
})
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
local img = res.images[1]
local out = name .. "." .. (img:extension() or "img")
assert(img:save(out))               -- atomic: temp file + rename
print(string.format("wrote %s: %s %dx%d", out, img.mimeType, img.width, img.height))
