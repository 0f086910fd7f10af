function love.conf(t) t.modules.audio, t.modules.sound = false, false end
