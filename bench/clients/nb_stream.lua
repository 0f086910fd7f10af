-- nanobanana benchmark client: one streamed call (streamGenerateContent?alt=sse).
--   lua5.4 nb_stream.lua MODE BASE_URL MODEL PROMPT OUT
-- MODE: output (the final image streamed to OUT) | memory (in memory, then
-- res.images[1]:save(OUT)). Asks for thoughts (includeThoughts), so the
-- stream carries a thought text, a thought image, the text, the image;
-- output-bare / memory-bare ask for none (for models that do not think).
-- Prints "first_event=<s> elapsed=<s> events=<n>" (seconds since start).
local nb = require "nanobanana"
local core = require "nanobanana.core"

local mode, base_url, model, prompt, out = arg[1], arg[2], arg[3], arg[4], arg[5]
local t0 = core.now()
local c = nb.new { base_url = base_url, api_key = "test-key", retries = 0, timeout = 600 }
local first, events = nil, 0
local bare = mode:match("%-bare$") ~= nil
mode = mode:gsub("%-bare$", "")
local opts = { model = model }
if not bare then opts.generationConfig = { thinkingConfig = { includeThoughts = true } } end
if mode == "output" then opts.output = out end
local res, err = c:stream(prompt, opts, function()
  events = events + 1
  first = first or core.now() - t0
end)
if not res then
  io.stderr:write("nanobanana error: " .. tostring(err) .. "\n")
  os.exit(1)
end
if mode == "memory" then assert(res.images[1]:save(out)) end
io.write(string.format("first_event=%.6f elapsed=%.6f events=%d\n", first or -1, core.now() - t0, events))
