-- nanobanana: how long one client:poll() call takes while N transfers are in
-- flight. Starts N requests with client:start(prompt, {output=...}) and
-- calls client:poll() in a loop until all are done, timing every call with
-- nanobanana.core.now().
--   lua5.4 nb_poll.lua BASE_URL MODEL PROMPT OUTDIR N [MODE]
-- MODE:
--   1khz (default): a real loop. After each timed poll() the loop waits
--     about 1 ms, untimed (1 kHz, 16x the rate of a 60 Hz game loop). Lua has
--     no sleep, so the wait is c._engine:perform(1): an internal call that
--     waits up to 1 ms on the engine's condition variable and returns early
--     when a transfer finishes. It is NOT part of any timed figure.
--   busy: the old tight loop, poll() after poll() with no wait. On a 2-core
--     machine that loop competes for the CPUs with the engine's worker
--     thread and the fake server, so the OS preempting the loop in the
--     middle of a call (or, in a VM, the host taking the vCPU away) shows
--     up as "poll duration".
-- Around each timed call (outside the timing) the loop reads this thread's
-- run-queue wait from /proc/thread-self/schedstat (2nd field, ns: time spent
-- runnable but not running), so for the slowest call it can say how much of
-- it the thread spent waiting for a CPU rather than running nanobanana.
-- Prints "mode=<> polls=<count> max_ms=<> p99_ms=<> p50_ms=<> elapsed=<s>
-- loop_hz=<polls/s> max_finished=<requests that finished in the slowest
-- call> max_rq_ms=<run-queue wait inside the slowest call>
-- max_ex_rq_ms=<largest call duration minus its run-queue wait>"
-- (the last two only when schedstat is readable).
local nb = require "nanobanana"
local core = require "nanobanana.core"

local base_url, model, prompt, outdir = arg[1], arg[2], arg[3], arg[4]
local n = tonumber(arg[5])
local mode = arg[6] or "1khz"
if mode ~= "1khz" and mode ~= "busy" then
  io.stderr:write("nb_poll.lua: MODE must be 1khz or busy\n")
  os.exit(2)
end
local busy = mode == "busy"
local now = core.now

-- this thread's run-queue wait in ns (nil when schedstat is unavailable)
local ss = io.open("/proc/thread-self/schedstat", "r")
if ss then ss:setvbuf("no") end
local function rq_wait()
  if not ss then return nil end
  ss:seek("set", 0)
  local line = ss:read("*l")
  local v = line and tonumber(line:match("^%d+%s+(%d+)"))
  if not v then ss:close(); ss = nil end
  return v
end
rq_wait()

local t0 = now()
local c = nb.new { base_url = base_url, api_key = "test-key", retries = 0, timeout = 600, model = model }
local reqs = {}
for i = 1, n do
  reqs[i] = c:start(prompt, { output = string.format("%s/poll-%d.png", outdir, i) })
end
local durs, k = {}, 0
local max_d, max_rq, max_ex = -1, nil, 0 -- slowest call, its run-queue wait, max of (call - its wait)
local function running()
  local r = 0
  for i = 1, n do if reqs[i].state == "running" then r = r + 1 end end
  return r
end
local left, max_fin = n, 0 -- requests still running; how many finished in the slowest call
while true do
  local w0 = rq_wait()
  local a = now()
  c:poll()
  local d = now() - a
  local w1 = rq_wait()
  local now_left = running()
  k = k + 1
  durs[k] = d
  if d > max_d then max_d, max_fin = d, left - now_left end
  left = now_left
  if w0 and w1 then
    local rq = (w1 - w0) / 1e9
    if d - rq > max_ex then max_ex = d - rq end
    if d == max_d then max_rq = rq end
  end
  if left == 0 then break end
  if not busy then
    -- the loop's sleep, untimed: waits up to 1 ms (returns early when a
    -- transfer finishes); stands in for the rest of a real program's loop
    c._engine:perform(1)
  end
end
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
io.write(string.format("mode=%s polls=%d max_ms=%.3f p99_ms=%.3f p50_ms=%.3f elapsed=%.6f loop_hz=%.0f max_finished=%d",
  mode, k, durs[k] * 1000, pct(0.99), pct(0.50), elapsed, k / elapsed, max_fin))
if max_rq then
  io.write(string.format(" max_rq_ms=%.3f max_ex_rq_ms=%.3f", max_rq * 1000, max_ex * 1000))
end
io.write("\n")
