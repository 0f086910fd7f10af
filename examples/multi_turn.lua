-- Multi-turn editing with a chat: each turn sends the history, the model's
-- turns exactly as received (thought signatures included).
--   lua5.4 examples/multi_turn.lua [out-dir]
-- Uses GOOGLE_API_KEY or GEMINI_API_KEY, and GOOGLE_GEMINI_BASE_URL if set.
local nb = require "nanobanana"

local dir = arg[1] or "."
local client = nb.new()
local chat = client:chat { model = "gemini-3-pro-image-preview", imageConfig = { aspectRatio = "4:3" } }

local turns = { "A cozy reading nook by a window", "Make it night time", "Add a sleeping cat on the chair" }
for i, prompt in ipairs(turns) do
  local res, err = chat:send(prompt)
  if not res then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  local path = string.format("%s/nook-%d.jpg", dir, i)
  assert(res.images[1]:save(path))
  print(string.format("turn %d: %s -> %s (%dx%d)", i, prompt, path, res.images[1].width, res.images[1].height))
end

-- the conversation as wire JSON (images as base64): save it, resume it later
local f = assert(io.open(dir .. "/nook-chat.json", "wb"))
f:write(assert(chat:to_json()))
f:close()
print(string.format("history: %d contents saved to %s/nook-chat.json", #chat.history, dir))
client:close()
