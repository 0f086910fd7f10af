-- Text to image.
--   lua5.4 examples/text_to_image.lua ["prompt"] [NAME] [MODEL]
-- Writes NAME.<ext>, the extension from the image's real type (Gemini 3
-- models send JPEG: sea-otter.jpg). Uses GOOGLE_API_KEY or GEMINI_API_KEY,
-- and GOOGLE_GEMINI_BASE_URL if set.
local nb = require "nanobanana"

local prompt = arg[1] or "A cute baby sea otter"
local name = (arg[2] or "sea-otter"):gsub("%.%a+$", "") -- an extension given is replaced

local client = nb.new { model = arg[3] } -- nil: the default model
local res, err = client:generate(prompt, { imageConfig = { aspectRatio = "4:3" } })
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
local img = res.images[1]               -- its bytes are still in C memory...
local out = name .. "." .. (img:extension() or "img")
local ok, serr = img:save(out)          -- ...and written from there (atomic: temp file + rename)
if not ok then
  io.stderr:write(tostring(serr), "\n")
  os.exit(1)
end
print(string.format("wrote %s: %s %dx%d (%s)", out, img.mimeType, img.width, img.height, res.modelVersion))
