-- Text to image.
--   lua5.4 examples/text_to_image.lua ["prompt"] [out.png]
-- Uses GOOGLE_API_KEY or GEMINI_API_KEY, and GOOGLE_GEMINI_BASE_URL if set.
local nb = require "nanobanana"

local prompt = arg[1] or "A cute baby sea otter"
local out = arg[2] or "sea-otter.png"

local client = nb.new()
local res, err = client:generate(prompt, {
  imageConfig = { aspectRatio = "4:3" },
  output = out,                       -- streamed straight to the file
})
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
local img = res.images[1]
print(string.format("wrote %s: %s %dx%d (%s)", out, img.mimeType, img.width, img.height, res.modelVersion))
