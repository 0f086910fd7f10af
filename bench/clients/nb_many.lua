-- nanobanana: N requests on one client with generate_many, each with
-- output=OUTDIR/nb-<i>.png.
--   lua5.4 nb_many.lua BASE_URL MODEL PROMPT OUTDIR N CONCURRENCY
local nb = require "nanobanana"
local core = require "nanobanana.core"

local base_url, model, prompt, outdir = arg[1], arg[2], arg[3], arg[4]
local n, conc = tonumber(arg[5]), tonumber(arg[6])
local t0 = core.now()
local c = nb.new { base_url = base_url, api_key = "test-key", retries = 0, timeout = 600, model = model }
local list = {}
for i = 1, n do list[i] = { prompt, { output = string.format("%s/nb-%d.png", outdir, i) } } end
local out = c:generate_many(list, { concurrency = conc })
for i = 1, n do
  if nb.is_error(out[i]) or not out[i] then
    io.stderr:write(string.format("request %d failed: %s\n", i, tostring(out[i])))
    os.exit(1)
  end
end
io.write(string.format("elapsed=%.6f\n", core.now() - t0))
