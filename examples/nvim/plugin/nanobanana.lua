-- :NanoBanana {prompt} — generate an image without blocking the editor.
-- The work is in lua/nanobanana_nvim/ (loaded on first use).
if vim.g.loaded_nanobanana then return end
vim.g.loaded_nanobanana = true

vim.api.nvim_create_user_command("NanoBanana", function(cmd)
  require("nanobanana_nvim").generate(cmd.args)
end, { nargs = "+", desc = "Generate an image with nanobanana (Gemini); the path is reported when it is written" })
