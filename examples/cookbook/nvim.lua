-- Neovim (vim.loop is luv): generate from a command without blocking the
-- editor. The adapter runs the callbacks through vim.schedule, so they may
-- call vim.api. (examples/nvim is the same idea as a plugin.)
local nb = require "nanobanana"
local loop = require "nanobanana.loop"

local client = nb.new()
local handle = loop.luv(client, vim.loop)
vim.api.nvim_create_autocmd("VimLeavePre", { callback = function() handle:stop(); client:close() end })

vim.api.nvim_create_user_command("Imagine", function(cmd)
  local path = vim.fn.getcwd() .. "/imagine.jpg" -- the default model sends JPEG
  client:start(cmd.args, {
    output = path,
    on_progress = function(p) vim.api.nvim_echo({ { "imagine: " .. p.phase } }, false, {}) end,
    on_done = function(res, err)
      if not res then return vim.notify("imagine: " .. tostring(err), vim.log.levels.ERROR) end
      vim.g.imagine_last = res.images[1].path
      vim.notify("imagine: wrote " .. res.images[1].path)
    end,
  })
end, { nargs = "+" })
