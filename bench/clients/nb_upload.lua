-- nanobanana benchmark client: one resumable upload (Files API, 8 MiB chunks).
--   lua5.4 nb_upload.lua BASE_URL FILE
-- Prints "sha256Hash=<base64> elapsed=<s>".
local nb = require "nanobanana"
local core = require "nanobanana.core"

local base_url, path = arg[1], arg[2]
local t0 = core.now()
local c = nb.new { base_url = base_url, api_key = "test-key", retries = 0, timeout = 600 }
local file, err = c:upload(path, { mimeType = "application/octet-stream" })
if not file then
  io.stderr:write("nanobanana error: " .. tostring(err) .. "\n")
  os.exit(1)
end
io.write(string.format("sha256Hash=%s elapsed=%.6f\n", file.sha256Hash, core.now() - t0))
