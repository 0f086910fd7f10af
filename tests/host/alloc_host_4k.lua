-- Run by tests/host/alloc_host.c (scripts/test.d/45-alloc-host.sh): one 4K
-- generation against the fake server (started with --noise-bytes 24M), the
-- image kept in memory, its size read and the image saved to OUT, all
-- without the image passing through the Lua state's (capped) allocator.
--   alloc_host CAP_MIB alloc_host_4k.lua BASE_URL OUT
-- luacheck: globals AFTER_SWAP
local base_url, out = ...
local nb = require "nanobanana"

local held = {} -- what AFTER_SWAP drops
local client = nb.new { base_url = base_url, api_key = "test-key", retries = 0 }
held.res = assert(client:generate("nanobanana alloc host", {
  model = "gemini-3-pro-image-preview", imageConfig = { imageSize = "4K" } }))
local img = held.res.images[1]
assert(img.size == 24 * 1024 * 1024, "size " .. tostring(img.size))
assert(rawget(img, "data") == nil, "data made")
assert(img:save(out))
assert(rawget(img, "data") == nil, "data made by save")
io.write("alloc_host_4k: ", img.mimeType, " ", img.size, " bytes saved\n")

img = nil -- luacheck: ignore img

-- after the host swapped its allocator: the client and the image go
function AFTER_SWAP()
  client:close()
  held.res = nil
  collectgarbage("collect")
  local t = {}
  for i = 1, 1000 do t[i] = ("x"):rep(i) end -- the Lua state works on the new allocator
  assert(#t[1000] == 1000)
end
