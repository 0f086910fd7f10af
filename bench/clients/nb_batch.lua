-- nanobanana benchmark client: a batch of N generations (JSONL file input),
-- waited for, its results streamed with output_dir (one file per image).
--   lua5.4 nb_batch.lua BASE_URL MODEL PROMPT N OUT_DIR
-- Prints "rss100=<KiB> rss1000=<KiB> rss_last=<KiB> items=<n> ok=<n>
-- results_s=<s> elapsed=<s>" (VmRSS from /proc/self/status after the 100th,
-- the 1,000th and the last item).
local nb = require "nanobanana"
local core = require "nanobanana.core"

local base_url, model, prompt, n, dir = arg[1], arg[2], arg[3], tonumber(arg[4]), arg[5]
local function rss()
  local f = io.open("/proc/self/status")
  local kb = f:read("*a"):match("VmRSS:%s*(%d+)")
  f:close()
  return tonumber(kb)
end
local t0 = core.now()
local c = nb.new { base_url = base_url, api_key = "test-key", retries = 0, timeout = 600, model = model }
local items = {}
for i = 1, n do items[i] = prompt end
local job, err = c:batch(items, { input = "file", display_name = "bench" })
if not job then io.stderr:write("batch: " .. tostring(err) .. "\n"); os.exit(1) end
local ok, werr = job:wait { interval = 0.05, max_interval = 0.2 }
if not ok then io.stderr:write("wait: " .. tostring(werr) .. "\n"); os.exit(1) end
local t1 = core.now()
local count, good, r100, r1000 = 0, 0, -1, -1
for i, res, rerr in job:results { output_dir = dir } do
  count = count + 1
  if res then good = good + 1 else io.stderr:write("item " .. i .. ": " .. tostring(rerr) .. "\n") end
  if i == 100 then collectgarbage(); r100 = rss() end
  if i == 1000 then collectgarbage(); r1000 = rss() end
end
collectgarbage()
io.write(string.format("rss100=%d rss1000=%d rss_last=%d items=%d ok=%d results_s=%.6f elapsed=%.6f\n",
  r100, r1000, rss(), count, good, core.now() - t1, core.now() - t0))
