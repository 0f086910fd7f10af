-- Run by tests/host/alloc_host.c (scripts/test.d/45-alloc-host.sh): one 4K
-- generation against the fake server (started with --noise-bytes 24M), the
-- image kept in memory, its size read and the image saved to OUT, all
-- without the image passing through the Lua state's (capped) allocator.
--   alloc_host CAP_MIB alloc_host_4k.lua BASE_URL OUT
-- luacheck: globals AFTER_SWAP host_refused host_mark host_set_cap
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
assert(host_refused() == 0, "the cap was hit: Lua needed more memory than the cap")
host_mark() -- the peak so far: the 4K generation, its size and its save
io.write("alloc_host_4k: ", img.mimeType, " ", img.size, " bytes saved\n")

-- img.data needs image-sized Lua memory: under the cap the copy fails with
-- Lua's memory error and the image keeps its bytes in C memory
local ok, err = pcall(function() return img.data end)
assert(not ok and tostring(err):find("not enough memory"), tostring(err))
assert(host_refused() > 0)
assert(rawget(img, "data") == nil and img.size == 24 * 1024 * 1024)
host_set_cap(160) -- room for data, and for reading the file back to compare
local data = img.data
assert(#data == img.size)
local f = assert(io.open(out, "rb"))
assert(f:read("*a") == data, "data differs from the saved file")
f:close()
data = nil -- luacheck: ignore data
io.write("alloc_host_4k: data under the cap failed cleanly, then matched the file\n")

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
