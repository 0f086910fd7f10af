-- luv (libuv): the loop drives the client. Callbacks fire from the loop,
-- h:spawn runs a coroutine in which nb.await resumes from the loop, and
-- a uv timer keeps ticking throughout.
local nb = require "nanobanana"
local loop = require "nanobanana.loop"
local uv = require "luv"

local client = nb.new()
local h = loop.luv(client, uv)

local ticks = 0
local ticker = uv.new_timer()
ticker:start(100, 100, function() ticks = ticks + 1 end)

client:start("A paper boat on a puddle", {
  output = "boat.jpg",           -- the default model sends JPEG
  on_done = function(res, err) print("boat:", res and res.images[1].path or tostring(err)) end,
})
h:spawn(function()
  local res = assert(nb.await(client:start("A kite over a beach", { imageConfig = { aspectRatio = "3:2" } })))
  local ext = res.images[1]:extension() -- "jpg" from the default model
  assert(res.images[1]:save("kite." .. ext))
  local edit = assert(nb.await(client:start("Make the kite red", { images = { res.images[1] } })))
  assert(edit.images[1]:save("kite-red." .. ext))
  print(string.format("kite.%s, kite-red.%s (the timer ticked %d times meanwhile)", ext, ext, ticks))
  ticker:close()
  h:stop()                       -- nothing left: uv.run() returns
end)
uv.run()
client:close()
