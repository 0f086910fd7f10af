-- Streaming: the model's thoughts, text and images as they arrive.
--   lua5.4 examples/stream.lua ["prompt"] [out.jpg]
-- Uses GOOGLE_API_KEY or GEMINI_API_KEY, and GOOGLE_GEMINI_BASE_URL if set.
local nb = require "nanobanana"

local prompt = arg[1] or "A lighthouse on a cliff at dawn"
local out = arg[2] or "lighthouse.jpg"

local client = nb.new()
local res, err = client:stream(prompt, {
  model = "gemini-3-pro-image-preview",
  generationConfig = { thinkingConfig = { includeThoughts = true } },
  output = out,                        -- the final image goes straight to the file
}, function(ev)
  if ev.image then
    local what = ev.type == "thought" and "thought image" or "image"
    print(string.format("[%s] %s %dx%d", what, ev.image.mimeType, ev.image.width, ev.image.height))
  else
    print(string.format("[%s] %s", ev.type, ev.text))
  end
end)
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
print(string.format("wrote %s after %d events (%s)", out, res.chunks, res.finishReason))
client:close()
