-- The decoding thread (love.thread): turns encoded image bytes into
-- ImageData off the main thread, so a 4K PNG or JPEG decode never costs a
-- frame. It receives { id, path = FILE } (the image was written there with
-- output=: nothing of it passes through the main thread) or
-- { id, bytes = STRING, name = NAME } (in memory: love.filesystem.newFileData
-- wraps the bytes, nothing touches the disk), and answers with
-- { id, imagedata = ImageData, sha256, bytes, decode_ms } (the
-- sha256 lets the self-test compare the bytes with what the server sent) or { id, error = MESSAGE }.
require "love.filesystem"
require "love.image"
require "love.data"
require "love.timer"

local jobs, results = ...

local function decode(job)
  local bytes, name = job.bytes, job.name or "image"
  if job.path then
    local f = assert(io.open(job.path, "rb"))
    bytes = f:read("*a")
    f:close()
    name = job.path
  end
  local sha = love.data.encode("string", "hex", love.data.hash("sha256", bytes))
  return love.image.newImageData(love.filesystem.newFileData(bytes, name)), sha, #bytes
end

while true do
  local job = jobs:demand()
  if job == "quit" then return end
  local t0 = love.timer.getTime()
  local ok, data, sha, n = pcall(decode, job)
  if ok then
    results:push { id = job.id, imagedata = data, sha256 = sha, bytes = n,
                   decode_ms = (love.timer.getTime() - t0) * 1000 }
  else
    results:push { id = job.id, error = tostring(data) }
  end
  collectgarbage()
end
