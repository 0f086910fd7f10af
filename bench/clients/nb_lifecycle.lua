-- nanobanana: the engine as a guest in a host's event loop.
--   lua5.4 nb_lifecycle.lua BASE_URL MODEL ROUNDS
-- 1. idle/wake: ROUNDS times, 8 requests to a slow server ([[fault:
--    slow_headers:3]]: the answer comes after 3 s); the host loop waits on
--    client:pollfd() in the kernel (LuaSocket's socket.select: select(2))
--    and calls poll() when it is readable. CPU time of the whole process
--    (os.clock(): every thread, the engine's worker included) over the
--    wait from the first poll to the first wake, against the wall time of
--    that wait; and, for every request that ended while the loop waited in
--    select, the wake latency: the instant select returned minus the
--    instant its transfer ended (the engine's own end time:
--    progress.elapsed from the request's start). Requests that ended while
--    the loop was inside poll() are counted apart (busy_n).
-- 2. close: ROUNDS times, 8 x 4K ([[fault:huge:24M]]) in flight, bodies
--    coming in: how long client:close() takes, and dropping the client +
--    collectgarbage() (its __gc).
-- Prints one line: key=value pairs (times in ms).
local nb = require "nanobanana"
local core = require "nanobanana.core"
local socket = require "socket"

local base_url, model, rounds = arg[1], arg[2], tonumber(arg[3] or "3")

local function pct(list, p)
  table.sort(list)
  return list[math.max(1, math.ceil(#list * p))]
end

local cpu_share, wakes, idle_wall, busy = {}, {}, 0, 0
for r = 1, rounds do
  local c = nb.new { base_url = base_url, api_key = "test-key", model = model, retries = 0 }
  local reqs = {}
  for i = 1, 8 do reqs[i] = c:start("otter [[fault:slow_headers:3]] " .. r .. "-" .. i) end
  c:poll()
  local c0, w0 = os.clock(), core.now()
  local first = true
  local left = 8
  local ended = {}
  while left > 0 do
    local entered = core.now()
    socket.select({ c }, nil, 10)
    local woke = core.now()
    if first then
      cpu_share[#cpu_share + 1] = (os.clock() - c0) / (woke - w0)
      idle_wall = idle_wall + (woke - w0)
      first = false
    end
    for i = 1, 8 do
      local x = reqs[i]._xfer
      if x and not ended[i] then
        local p = x:progress()
        while p.phase == nil do p = x:progress() end -- the worker held its lock at that instant
        if p.phase == "done" then
          ended[i] = true
          local t_end = reqs[i]._t0 + p.elapsed
          -- a transfer that ended while the host was in poll() (not waiting)
          -- is counted apart: the fd was readable when select was entered
          if t_end >= entered then wakes[#wakes + 1] = woke - t_end else busy = busy + 1 end
        end
      end
    end
    left = c:poll()
  end
  c:close()
end

local closes, gcs = {}, {}
for r = 1, rounds * 2 do
  local c = nb.new { base_url = base_url, api_key = "test-key", model = model, retries = 0 }
  local reqs = {}
  for i = 1, 8 do reqs[i] = c:start("otter [[fault:huge:24M]] " .. i) end
  local t0 = core.now()
  while core.now() - t0 < 60 do
    c:poll()
    local moving = 0
    for i = 1, 8 do if reqs[i].progress.downloaded > 0 then moving = moving + 1 end end
    if moving >= 8 then break end
    c._engine:perform(2)
  end
  local t = core.now()
  if r % 2 == 1 then
    c:close()
    closes[#closes + 1] = core.now() - t
  else
    c, reqs = nil, nil
    collectgarbage()
    gcs[#gcs + 1] = core.now() - t
  end
end

local function ms(v) return string.format("%.3f", v * 1000) end
print(string.format("busy_n=%d idle_cpu_pct=%.2f idle_wall_s=%.1f wake_n=%d wake_p50_ms=%s wake_max_ms=%s " ..
  "close_n=%d close_p50_ms=%s close_max_ms=%s gc_n=%d gc_p50_ms=%s gc_max_ms=%s",
  busy, 100 * pct(cpu_share, 1), idle_wall, #wakes, ms(pct(wakes, 0.5)), ms(pct(wakes, 1)),
  #closes, ms(pct(closes, 0.5)), ms(pct(closes, 1)), #gcs, ms(pct(gcs, 0.5)), ms(pct(gcs, 1))))
