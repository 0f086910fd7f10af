-- Runs the Neovim recipe headless: loads examples/cookbook/nvim.lua, runs
-- :Imagine, waits (on a timer, never blocking) for vim.g.imagine_last, and
-- quits with :qa (success) or :cq (no image within 30 s).
local root = assert(os.getenv("NB_ROOT"))
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = assert(os.getenv("NB_LUA_CPATH")) .. ";" .. package.cpath
dofile(root .. "/examples/cookbook/nvim.lua")
vim.cmd("Imagine A fox made of autumn leaves")
local t0 = vim.loop.now()
local w = vim.loop.new_timer()
w:start(20, 20, vim.schedule_wrap(function()
  local path = vim.g.imagine_last
  if path or vim.loop.now() - t0 > 30000 then
    w:stop(); w:close()
    local f = path and io.open(path, "rb")
    local head = f and f:read(8) or ""
    local ok = head == "\137PNG\r\n\26\n" or head:sub(1, 3) == "\255\216\255" -- PNG or JPEG
    if f then f:close() end
    io.stdout:write(ok and ("cookbook nvim: " .. path .. "\n") or "cookbook nvim: no image\n")
    vim.cmd(ok and "qa!" or "cq! 1")
  end
end))
