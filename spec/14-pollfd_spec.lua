-- The pollable protocol: client:pollfd() is readable exactly when poll() has
-- work (a transfer finished, a stream event arrived, progress moved for a
-- request with on_progress), quiet otherwise, and drained by poll();
-- client:timeout() covers what the fd cannot show (retry timers, callbacks
-- already due). LuaSocket's select (getfd/dirty) and cqueues.poll take a
-- client as it is. Timing bounds are generous (valgrind runs these too).
local core = require "nanobanana.core"
local fake = require "helpers.fake"
local socket = require "socket"

local SLOW = os.getenv("NB_SLOW") ~= nil

local function readable(c, wait)
  local r = socket.select({ c }, nil, wait or 0)
  return r[1] == c
end

-- waits until the fd is readable (or `limit` seconds): seconds waited, or nil
local function wait_readable(c, limit)
  local t0 = core.now()
  if readable(c, limit) then return core.now() - t0 end
  return nil
end

local function fdinfo_flags(fd)
  local f = assert(io.open("/proc/self/fdinfo/" .. fd))
  local flags = f:read("*a"):match("flags:%s*(%d+)")
  f:close()
  return tonumber(flags, 8)
end

describe("pollfd", function()
  local server
  fake.suite(nil, nil, function(s) server = s end)
  local function client(extra) return fake.client(server, extra) end

  it("is an integer fd, close-on-exec and non-blocking; events() is \"r\"; -1 once closed", function()
    local c = client()
    local fd = c:pollfd()
    assert.are.equal("number", type(fd))
    assert.are.equal(math.type and "integer" or "number", math.type and math.type(fd) or "number")
    assert.is_true(fd >= 0)
    local flags = fdinfo_flags(fd)
    local function bit(v, b) return math.floor(v / b) % 2 == 1 end -- (no & before 5.3)
    assert.is_true(bit(flags, 0x800), "O_NONBLOCK")   -- 04000
    assert.is_true(bit(flags, 0x80000), "O_CLOEXEC")  -- 02000000
    assert.are.equal("r", c:events())
    assert.are.equal(fd, c:getfd())
    assert.is_nil(c:timeout())
    assert.is_false(c:dirty())
    assert.is_false(readable(c))
    c:close()
    assert.are.equal(-1, c:pollfd())
    assert.is_nil(io.open("/proc/self/fdinfo/" .. fd) and fdinfo_flags(fd) == flags and nil)
  end)

  it("stays quiet while 8 requests wait on a slow server, wakes when they finish, is drained by poll", function()
    local c = client()
    local reqs = {}
    local t0 = core.now()
    for i = 1, 8 do reqs[i] = c:start("otter [[fault:slow_headers:1.2]] " .. i) end
    c:poll()
    -- the server answers after 1.2 s: until then there is nothing to do
    assert.is_false(readable(c, 0.6), "readable while every request waits")
    assert.is_nil(c:timeout())
    local left = 8
    local first, idle_wakes = nil, 0
    while left > 0 do
      local waited = wait_readable(c, 10)
      assert.is_not_nil(waited, "the fd never became readable")
      first = first or core.now() - t0
      local before = left
      left = c:poll()
      -- every wake had work: poll() drained the fd, and it only becomes
      -- readable again when another transfer finishes (the worker may hold
      -- its lock at the instant poll() asks; then the next poll takes it)
      if left == before then idle_wakes = idle_wakes + 1 end
    end
    -- (a fd left readable without work would spin this loop hundreds of times)
    assert.is_true(idle_wakes <= 16, idle_wakes .. " wakes without work")
    assert.is_true(first >= 1.1, "woke at " .. first)
    if not SLOW then assert.is_true(first < 1.2 + 1.5, "woke at " .. first) end
    for i = 1, 8 do assert.is_truthy((reqs[i]:result())) end
    assert.is_false(readable(c, 0.1))
    c:close()
  end)

  it("becomes readable within a few ms of a transfer finishing", function()
    -- the request's own end time (C side) against the moment select returned
    local c = client()
    local worst = 0
    for i = 1, 5 do
      local req = c:start("otter [[fault:slow_headers:0.2]] " .. i)
      c:poll()
      assert.is_truthy(wait_readable(c, 10))
      local woke = core.now()
      local x = req._xfer
      local p = x:progress()
      while p.phase == nil do p = x:progress() end -- the worker held its lock at that instant
      assert.are.equal("done", p.phase)
      local ended = req._t0 + p.elapsed -- t0 of the first attempt: the same instant within microseconds
      worst = math.max(worst, woke - ended)
      while not req._finished do c:poll() end
      assert.is_truthy((req:result()))
    end
    if not SLOW then assert.is_true(worst < 0.05, "wake latency " .. worst) end
    c:close()
  end)

  it("stays readable while finished transfers are left for the next poll (poll_budget)", function()
    local c = client { poll_budget = 0 } -- one finished transfer per poll()
    for i = 1, 4 do c:start("otter " .. i) end
    local seen = 0
    while c:poll() > 0 do
      assert.is_truthy(wait_readable(c, 10))
      seen = seen + 1
    end
    assert.is_false(readable(c))
    assert.is_true(seen >= 1)
    c:close()
  end)

  it("becomes readable for each stream event, before the transfer is done", function()
    local c = client()
    local events = {}
    local req = c:start("otter [[fault:stall:0.8]]", {
      model = "gemini-3-pro-image-preview", stream = true,
      on_event = function(ev) events[#events + 1] = ev.type end,
    })
    c:poll()
    local got_before_done = false
    while not req._finished do
      assert.is_truthy(wait_readable(c, 10))
      c:poll()
      if #events > 0 and not req._finished then got_before_done = true end
    end
    assert.is_true(got_before_done, "no event before the end of the stream")
    assert.is_truthy((req:result()))
    c:close()
  end)

  it("progress wakes it (throttled, about 10 Hz) only for requests with on_progress", function()
    local c = client()
    -- a 64 MiB image takes a while through the scanner: progress moves all along
    local function run(with_progress)
      local calls = 0
      local req = c:start("otter [[fault:huge:64M]]", {
        on_progress = with_progress and function() calls = calls + 1 end or nil,
      })
      local wakes, t0 = 0, nil
      while not req._finished do
        assert.is_truthy(wait_readable(c, 20))
        wakes = wakes + 1
        c:poll()
        if req.progress.phase == "downloading" and not t0 then t0 = core.now() end
      end
      assert.is_truthy((req:result()))
      return wakes, calls, core.now() - (t0 or core.now())
    end
    run(false) -- the server makes (and caches) the image
    local quiet_wakes = run(false)
    local wakes, calls, download = run(true)
    assert.is_true(quiet_wakes <= 3, quiet_wakes .. " wakes without on_progress")
    assert.is_true(calls >= 1, "on_progress calls " .. calls)
    assert.is_true(wakes > quiet_wakes, wakes .. " wakes with on_progress, " .. quiet_wakes .. " without")
    assert.is_true(wakes <= download * 10 + 8, wakes .. " wakes in " .. download .. " s of download")
    c:close()
  end)

  it("timeout() reflects a retry timer; the fd stays quiet meanwhile", function()
    local c = client { retries = 1, retry_base_delay = 1 }
    server:faults { { name = "429", arg = "0.6" } }
    local req = c:start("otter retried")
    repeat -- the 429 arrives
      assert.is_truthy(wait_readable(c, 10))
      c:poll()
    until req.progress.phase == "retrying"
    local t = c:timeout()
    assert.is_not_nil(t)
    assert.is_true(t > 0.3 and t <= 0.6, "timeout " .. tostring(t))
    assert.is_false(c:dirty())
    assert.is_false(readable(c, t - 0.1), "readable during the retry delay")
    socket.sleep(c:timeout() or 0)
    assert.are.equal(0, c:timeout())
    assert.is_true(c:dirty())
    c:poll() -- starts the retry
    assert.is_nil(c:timeout())
    while not req._finished do
      assert.is_truthy(wait_readable(c, 10))
      c:poll()
    end
    local res = assert(req:result())
    assert.are.equal(2, res.attempts)
    c:close()
  end)

  it("timeout() is 0 while on_done callbacks are due without the fd (a cancel outside poll)", function()
    local c = client()
    local done
    local req = c:start("otter [[fault:slow_headers:5]]", { on_done = function(_, err) done = err end })
    req:cancel()
    assert.are.equal(0, c:timeout())
    assert.is_true(c:dirty())
    c:poll()
    assert.are.equal("cancelled", done.kind)
    assert.is_nil(c:timeout())
    c:close()
  end)

  it("socket.select and cqueues.poll take the client as it is", function()
    local has_cq, cqueues = pcall(require, "cqueues") -- (none for i386 here: that part is the loop spec's)
    local c = client()
    if has_cq then
      local req = c:start("otter [[fault:slow_headers:0.3]]")
      c:poll()
      local cq = cqueues.new()
      local woke
      cq:wrap(function()
        while not req._finished do
          local r = cqueues.poll(c)
          if r == c then woke = true end
          c:poll()
        end
      end)
      assert(cq:loop(10))
      assert.is_true(woke)
      assert.is_truthy((req:result()))
    end
    -- LuaSocket: the returned set is keyed by the client
    local req2 = c:start("otter [[fault:slow_headers:0.2]]")
    c:poll()
    local r = socket.select({ c }, nil, 10)
    assert.are.equal(c, r[1])
    assert.is_true(r[c] ~= nil)
    while not req2._finished do c:poll() end
    assert.is_truthy((req2:result()))
    c:close()
  end)
end)
