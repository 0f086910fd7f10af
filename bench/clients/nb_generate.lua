-- nanobanana benchmark client: one generateContent request.
--   lua5.4 nb_generate.lua MODE BASE_URL MODEL PROMPT OUT [IMAGE...]
-- MODE:
--   memory       generate() with the image returned in memory, then
--                res.images[1]:save(OUT) (written from C memory: data never read)
--   memory-data  the same, but res.images[1].data is read (the Lua string is
--                made) and written to OUT with io.open/write
--   output       generate() with output=OUT (streamed straight to the file)
--   req-strings  IMAGEs read into Lua strings first, sent as
--                images = { {data=bytes, mimeType="image/png"}, ... }; output=OUT
--   req-paths    IMAGEs sent as file paths: images = { "a.png", ... }; output=OUT
-- Prints "elapsed=<s> downloaded=<wire bytes> uploaded=<bytes>" on success.
local nb = require "nanobanana"
local core = require "nanobanana.core"

local mode, base_url, model, prompt, out = arg[1], arg[2], arg[3], arg[4], arg[5]
if not out then
  io.stderr:write("usage: nb_generate.lua MODE BASE_URL MODEL PROMPT OUT [IMAGE...]\n")
  os.exit(2)
end

local t0 = core.now()
local c = nb.new { base_url = base_url, api_key = "test-key", retries = 0, timeout = 600 }
local opts = { model = model }
if mode == "output" then
  opts.output = out
elseif mode == "req-strings" or mode == "req-paths" then
  opts.output = out
  local images = {}
  for i = 6, #arg do
    if mode == "req-paths" then
      images[#images + 1] = arg[i]
    else
      local f = assert(io.open(arg[i], "rb"))
      images[#images + 1] = { data = f:read("*a"), mimeType = "image/png" }
      f:close()
    end
  end
  opts.images = images
elseif mode ~= "memory" and mode ~= "memory-data" then
  io.stderr:write("unknown mode " .. tostring(mode) .. "\n")
  os.exit(2)
end

local req = c:start(prompt, opts)
local res, err = req:wait()
if not res then
  io.stderr:write("nanobanana error: " .. tostring(err) .. "\n")
  os.exit(1)
end
if mode == "memory-data" then
  local data = res.images[1].data
  local f = assert(io.open(out, "wb"))
  assert(f:write(data))
  assert(f:close())
elseif mode == "memory" then
  local ok, serr = res.images[1]:save(out)
  if not ok then
    io.stderr:write("save failed: " .. tostring(serr) .. "\n")
    os.exit(1)
  end
end
io.write(string.format("elapsed=%.6f downloaded=%d uploaded=%d\n", core.now() - t0,
  math.tointeger(req.progress.downloaded) or 0, math.tointeger(req.progress.uploaded) or 0))
