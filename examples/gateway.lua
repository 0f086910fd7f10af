-- A gateway that speaks the Gemini protocol with a Bearer key and a path
-- prefix (as in the seed page: https://gateway.example/v1/v1beta/models/...).
--   NB_GATEWAY_URL=https://gateway.example/v1 NB_GATEWAY_KEY=sk-... lua5.4 examples/gateway.lua
local nb = require "nanobanana"

local client = nb.new {
  base_url = os.getenv("NB_GATEWAY_URL") or "https://gateway.example/v1",
  api_key = os.getenv("NB_GATEWAY_KEY"),
  auth = "bearer",                    -- the default for any non-Google host
  model = "gemini-3-pro-image-preview",
}
local res, err = client:generate("A cute baby sea otter", {
  imageConfig = { aspectRatio = "16:9", imageSize = "2K" },
})
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
local img = res.images[1]
assert(img:save("gateway-otter.jpg"))
print(string.format("wrote gateway-otter.jpg: %s %dx%d, %d tokens", img.mimeType, img.width, img.height,
  res.usageMetadata and res.usageMetadata.totalTokenCount or 0))
