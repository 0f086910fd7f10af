-- Runs the LÖVE recipe (examples/cookbook/love/main.lua) under Xvfb: notes
-- every texture the recipe makes, and once one exists and a few frames have
-- shown it, saves a screenshot to NB_SHOT and quits (0 if a texture of the
-- expected size NB_WANT = "WxH" was made, else 1; 1 after 30 s).
local made
local newImage = love.graphics.newImage
love.graphics.newImage = function(...)
  local img = newImage(...)
  made = img
  return img
end
dofile(assert(os.getenv("NB_RECIPE")))
local update, frames, t0 = love.update, 0, nil
function love.update(dt)
  t0 = t0 or love.timer.getTime()
  update(dt)
  if made then frames = frames + 1 end
  if frames == 5 then
    love.graphics.captureScreenshot(function(d)
      local f = assert(io.open(os.getenv("NB_SHOT"), "wb")); f:write(d:encode("png"):getString()); f:close()
      local size = string.format("%dx%d", made:getDimensions())
      print("cookbook love: texture " .. size)
      love.event.quit(size == os.getenv("NB_WANT") and 0 or 1)
    end)
  elseif love.timer.getTime() - t0 > 30 then
    print("cookbook love: no texture"); love.event.quit(1)
  end
end
