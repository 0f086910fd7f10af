-- A coroutine pipeline with nb.await, driven by a ten-line scheduler:
-- three sketches at once, each then edited into a painting. Each coroutine
-- reads top to bottom; nb.await(req) yields req until it is done. Between
-- rounds the scheduler sleeps in LuaSocket's select on the client (its
-- getfd/dirty), which wakes when a transfer has news: no busy loop.
local nb = require "nanobanana"
local socket = require "socket"

local client = nb.new()
local function sketch_then_paint(subject)
  local sketch = assert(nb.await(client:start("A pencil sketch of " .. subject)))
  local painting = assert(nb.await(client:start("Turn this sketch into an oil painting",
    { images = { sketch.images[1] } })))
  local img = painting.images[1]
  assert(img:save(subject:gsub("%W", "_") .. "." .. img:extension())) -- .jpg: what the model sent
  return subject
end

local tasks = {}
for _, subject in ipairs { "a lighthouse", "a cat on a windowsill", "a steam train" } do
  tasks[coroutine.create(sketch_then_paint)] = subject
end
-- the scheduler: resume each coroutine once its awaited request is done
local waiting = {}
for co, subject in pairs(tasks) do waiting[co] = select(2, assert(coroutine.resume(co, subject))) end
while next(waiting) do
  client:poll()
  for co, req in pairs(waiting) do
    if req.state ~= "running" then
      local ok, v = coroutine.resume(co)
      assert(ok, v)
      if coroutine.status(co) == "dead" then print("painted " .. v); waiting[co] = nil else waiting[co] = v end
    end
  end
  socket.select({ client }, nil, client:timeout() or 1)
end
