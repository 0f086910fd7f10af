--- nanobanana inside Neovim: one client per editor, driven by the editor's
-- own event loop (vim.loop, i.e. libuv) through nanobanana.loop. Nothing
-- blocks: the request runs on the library's worker thread, the loop wakes
-- when the client's fd turns readable, and the callbacks (progress, done)
-- run through vim.schedule, where the editor's API may be called.
--
--   require("nanobanana_nvim").setup {
--     dir = vim.fn.getcwd(),                -- where images are written
--     model = nil, image_size = nil,        -- e.g. "gemini-3-pro-image", "2K"
--     aspect_ratio = nil,                   -- e.g. "16:9"
--     client = {},                          -- options for nanobanana.new (api_key, base_url, ...)
--   }
--   :NanoBanana A watercolour fox in the snow
local nb = require "nanobanana"
local loop = require "nanobanana.loop"

local M = {
  config = { dir = nil, model = nil, image_size = nil, aspect_ratio = nil, client = {} },
  messages = {}, -- every message shown, in order (also handy for tests)
}

local client, handle
local count = 0

local function say(text, level)
  M.messages[#M.messages + 1] = text
  if level then
    vim.notify("nanobanana: " .. text, level)
  else
    vim.api.nvim_echo({ { "nanobanana: " .. text } }, false, {})
  end
end

local function ensure_client()
  if client then return client end
  client = nb.new(M.config.client)
  handle = loop.luv(client, vim.loop) -- callbacks through vim.schedule (the adapter's default in Neovim)
  M.handle = handle -- handle.steps, handle.max_step: what the client took from the editor's loop
  vim.api.nvim_create_autocmd("VimLeavePre", { callback = M.shutdown })
  return client
end

function M.setup(opts)
  for k, v in pairs(opts or {}) do
    if M.config[k] == nil and k ~= "dir" and k ~= "model" and k ~= "image_size" and k ~= "aspect_ratio" then
      error("nanobanana_nvim.setup: unknown option " .. tostring(k))
    end
    M.config[k] = v
  end
end

local function kib(n) return string.format("%.0f KiB", (n or 0) / 1024) end

--- Starts one generation; returns the request at once.
function M.generate(prompt)
  local c = ensure_client()
  count = count + 1
  local dir = M.config.dir or vim.fn.getcwd()
  local path = string.format("%s/nanobanana-%s-%d.png", dir, os.date("%Y%m%d-%H%M%S"), count)
  local n = count
  local image_config = (M.config.image_size or M.config.aspect_ratio)
    and { imageSize = M.config.image_size, aspectRatio = M.config.aspect_ratio } or nil
  local req = c:start(prompt, {
    model = M.config.model,
    imageConfig = image_config,
    output = path,
    on_progress = function(p)
      if p.phase == "done" then return end
      local got = p.download_total > 0 and string.format("%s of %s", kib(p.downloaded), kib(p.download_total))
        or kib(p.downloaded)
      say(string.format("#%d %s %s (%.1f s)", n, p.phase, got, p.elapsed))
    end,
    on_done = function(res, err)
      if not res then return say(string.format("#%d failed: %s", n, tostring(err)), vim.log.levels.ERROR) end
      local img = res.images[1]
      local final = img.path
      if img.mimeType == "image/jpeg" then -- the bytes decide the extension
        final = img.path:gsub("%.png$", ".jpg")
        os.rename(img.path, final)
      end
      M.last_path = final
      say(string.format("#%d wrote %s (%dx%d, %s, %.1f s)", n, final, img.width or 0, img.height or 0,
        img.mimeType, res.elapsed), vim.log.levels.INFO)
    end,
  })
  say(string.format("#%d started: %s", n, prompt))
  return req
end

--- Detaches from the loop and closes the client (on VimLeavePre).
function M.shutdown()
  if handle then handle:stop() end
  if client then client:close() end
  handle, client, M.handle = nil, nil, nil
end

return M
