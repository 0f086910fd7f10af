-- nanobanana: how long one client:poll() call takes while N transfers are in
-- flight. Starts N requests with client:start(prompt, {output=...}) and
-- calls client:poll() in a loop until all are done, timing every call with
-- nanobanana.core.now().
--   lua5.4 nb_poll.lua BASE_URL MODEL PROMPT OUTDIR N
-- Prints "polls=<count> max_ms=<> p99_ms=<> p50_ms=<> elapsed=<s>".
local nb = require "nanobanana"
local core = require "nanobanana.core"

local base_url, model, prompt, outdir = arg[1], arg[2], arg[3], arg[4]
local n = tonumber(arg[5])
local now = core.now
local t0 = now()
local c = nb.new { base_url = base_url, api_key = "test-key", retries = 0, timeout = 600, model = model }
local reqs = {}
for i = 1, n do
  reqs[i] = c:start(prompt, { output = string.format("%s/poll-%d.png", outdir, i) })
end
local durs, k = {}, 0
local function all_done()
  for i = 1, n do if reqs[i].state == "running" then return false end end
  return true
end
repeat
  local a = now()
  c:poll()
  local d = now() - a
  k = k + 1
  durs[k] = d
until all_done()
local elapsed = now() - t0
for i = 1, n do
  if reqs[i].state ~= "done" then
    local _, err = reqs[i]:result()
    io.stderr:write(string.format("request %d %s: %s\n", i, reqs[i].state, tostring(err)))
    os.exit(1)
  end
end
table.sort(durs)
local function pct(p) return durs[math.max(1, math.ceil(p * k))] * 1000 end
io.write(string.format("polls=%d max_ms=%.3f p99_ms=%.3f p50_ms=%.3f elapsed=%.6f\n",
  k, durs[k] * 1000, pct(0.99), pct(0.50), elapsed))
