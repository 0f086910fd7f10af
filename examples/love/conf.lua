-- LÖVE 11.4 configuration of the nanobanana example. No sound: the app
-- makes none, and the self-test runs under Xvfb where there is no audio
-- device. vsync is off so that frame times measure the app, not the
-- display; main.lua paces the loop at 60 Hz itself.
function love.conf(t)
  t.identity = "nanobanana-love"
  t.version = "11.4"
  t.window.title = "nanobanana in LÖVE"
  t.window.width = 800
  t.window.height = 600
  t.window.vsync = 0
  t.modules.audio = false
  t.modules.sound = false
  t.modules.joystick = false
  t.modules.physics = false
  t.modules.video = false
end
