-- Image to image: edit one or more reference images.
--   lua5.4 examples/image_to_image.lua in.png ["prompt"] [out.png]
local nb = require "nanobanana"

local input = assert(arg[1], "usage: image_to_image.lua in.png [prompt] [out.png]")
local prompt = arg[2] or "add a rainbow"
local out = arg[3] or "edited.png"

local client = nb.new()
local res, err = client:generate(prompt, {
  images = { input },                 -- paths, {data=bytes, mimeType=...} or nb.image(...)
  imageConfig = { aspectRatio = "4:3" },
})
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
assert(res.images[1]:save(out))     -- atomic: temp file + rename
print(string.format("wrote %s: %s %dx%d", out, res.images[1].mimeType, res.images[1].width, res.images[1].height))
