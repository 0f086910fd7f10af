-- LÖVE: poll once a frame in love.update; the finished image becomes a
-- texture straight from memory (love.filesystem.newFileData, no file).
-- (examples/love adds a decoding thread, progress bars, several requests.)
local nb = require "nanobanana"

local client, texture, status

function love.load()
  client = nb.new()
  status = "generating..."
  client:start("A pixel-art castle at sunset", {
    on_done = function(res, err)
      if not res then status = tostring(err); return end
      local bytes = res.images[1].data     -- the one copy into Lua, made here
      local data = love.image.newImageData(love.filesystem.newFileData(bytes, "castle.png"))
      texture = love.graphics.newImage(data)
      status = string.format("%dx%d", texture:getDimensions())
    end,
  })
end

function love.update() client:poll() end   -- never blocks

function love.draw()
  if texture then
    local s = math.min(800 / texture:getWidth(), 560 / texture:getHeight())
    love.graphics.draw(texture, 0, 40, 0, s, s)
  end
  love.graphics.print(status, 8, 8)
end

function love.quit() client:close() end
