-- A plain script: one blocking call, the image streamed to a file.
local nb = require "nanobanana"

local client = nb.new()          -- GEMINI_API_KEY / GOOGLE_API_KEY, GOOGLE_GEMINI_BASE_URL
local res, err = client:generate("A red fox in fresh snow, watercolour", {
  imageConfig = { aspectRatio = "16:9" },
  output = "fox.jpg",             -- the default model sends JPEG (img:extension() says so)
})
if not res then error(tostring(err)) end
local img = res.images[1]
print(string.format("fox.jpg: %s %dx%d in %.2f s", img.mimeType, img.width, img.height, res.elapsed))
