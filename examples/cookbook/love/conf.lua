function love.conf(t)
  t.window.title = "nanobanana cookbook"
  t.modules.audio, t.modules.sound = false, false
end
