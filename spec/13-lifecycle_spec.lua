-- The engine's lifecycle as a guest in the host's process: close(), __gc and
-- __close never wait for the worker; an idle client holds no thread and no
-- socket; dropped clients cannot pile up threads or fds; a client used in a
-- forked child fails at once and leaves the parent's connections alone;
-- local failures have kinds of their own and are not retried. Counts of
-- threads and fds are read in child processes (/proc/self/task, /proc/self/fd),
-- where no other spec's client is alive. Bounds are generous (valgrind).
local core = require "nanobanana.core"
local fake = require "helpers.fake"

local SLOW = os.getenv("NB_SLOW") ~= nil
local ROOT = os.getenv("NB_ROOT") or "."
-- the interpreter running this suite (lua5.4, the TSan host, ...)
local LUA = (arg and arg[-1] and not arg[-1]:match("^%-")) and arg[-1] or "lua5.4"
local CORE = package.searchpath("nanobanana.core", package.cpath)
local BUILD = CORE and CORE:match("^(.*)nanobanana/core%.[^/]+$") or "build/"

local PRELUDE = string.format([[
package.path = %q .. "/lua/?.lua;" .. %q .. "/lua/?/init.lua;" .. package.path
package.cpath = %q
local PID = io.open("/proc/self/stat"):read("*n")
local function count(dir) local n = 0; local p = io.popen("ls " .. dir); for _ in p:lines() do n = n + 1 end; p:close(); return n end
function threads() return count("/proc/" .. PID .. "/task") end
function fds() return count("/proc/" .. PID .. "/fd") - 1 end -- less the ls pipe
local SLEEPER
function sleep(s)
  local core = require "nanobanana.core"
  SLEEPER = SLEEPER or core.engine() -- (its fd is opened once, before any count)
  local t = core.now() + s
  while core.now() < t do SLEEPER:perform(5) end
end
sleep(0)
]], ROOT, ROOT, package.cpath)

-- runs a Lua script in a child process (shell prefix optional): its output
local function run(script, prefix, interp)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(PRELUDE, script)
  f:close()
  -- (keeps LD_PRELOAD: an ASan-built core needs its runtime in the child)
  local p = assert(io.popen(string.format("%s %s %s 2>&1", prefix or "", interp or LUA, name)))
  local out = p:read("*a")
  p:close()
  os.remove(name)
  return out
end

describe("lifecycle", function()
  local server
  fake.suite(nil, nil, function(s) server = s end)
  local function client(extra) return fake.client(server, extra) end

  it("close(), __gc and __close return at once with 8 x 4K in flight", function()
    local worst, gc_took = 0, nil
    for _, how in ipairs { "close", "gc", "__close" } do
      local c = client()
      local reqs = {}
      for i = 1, 8 do reqs[i] = c:start("otter [[fault:huge:24M]] " .. i) end
      -- wait until the bodies are coming in
      local t0 = core.now()
      while core.now() - t0 < 20 do
        c:poll()
        local moving = 0
        for i = 1, 8 do if reqs[i].state == "running" and reqs[i].progress.downloaded > 0 then moving = moving + 1 end end
        if moving >= 4 then break end
        c._engine:perform(5)
      end
      local t = core.now()
      if how == "close" then
        c:close()
      elseif how == "gc" then
        c, reqs = nil, nil
        collectgarbage()
      else
        c._engine:close() -- what __close and __gc run
      end
      local took = core.now() - t
      if how == "gc" then gc_took = took else worst = math.max(worst, took) end
      if c and how == "__close" then c:close() end
      if reqs then
        -- a body can be complete by the time close() runs (LuaJIT is quick): that one is a
        -- result; every other one is cancelled, and most were still coming in
        local cancelled = 0
        for i = 1, 8 do
          local res, err = reqs[i]:result()
          if res then
            assert.are.equal("done", reqs[i].state)
          else
            assert.are.equal("cancelled", err.kind)
            cancelled = cancelled + 1
          end
        end
        assert.is_true(cancelled >= 4, how .. ": only " .. cancelled .. " of 8 were in flight")
      end
    end
    -- a generous bound (the measured figure is in bench/, section lifecycle)
    assert.is_true(worst < (SLOW and 0.5 or 0.05), "close took " .. worst .. " s")
    -- a full collection also walks the whole Lua heap: a looser bound
    assert.is_true(gc_took < (SLOW and 2 or 0.5), "dropping + collectgarbage() took " .. gc_took .. " s")
  end)

  it("an idle client holds no thread and no socket; the next request starts them again", function()
    local out = run(string.format([==[
      local client = require "nanobanana.client"
      client.ENGINE_IDLE = 0.3
      local nb = require "nanobanana"
      local t0, f0 = threads(), fds()
      local c = nb.new { base_url = %q, api_key = "test-key", retries = 0 }
      f0 = fds() -- with the client's own pollfd (an eventfd; a pipe's two ends elsewhere)
      local r1 = assert(c:generate("otter one"))
      local t1, f1 = threads(), fds()
      sleep(0.3)
      local t2, f2 = threads(), fds()
      local limit = require("nanobanana.core").now() + %s
      while (t2 > t0 or f2 > f0) and require("nanobanana.core").now() < limit do
        sleep(0.1)
        t2, f2 = threads(), fds()
      end
      local r2 = assert(c:generate("otter two"))
      print(t0, f0, t1, f1, t2, f2, r1.http.new_connections, r2.http.new_connections)
    ]==], server.url, SLOW and 5 or 2))
    local t0, f0, t1, f1, t2, f2, n1, n2 = out:match("^(%d+)%s+(%d+)%s+(%d+)%s+(%d+)%s+(%d+)%s+(%d+)%s+(%d+)%s+(%d+)")
    assert.is_not_nil(t0, out)
    t0, f0, t1, f1, t2, f2 = tonumber(t0), tonumber(f0), tonumber(t1), tonumber(f1), tonumber(t2), tonumber(f2)
    assert.is_true(t1 > t0, "a worker while busy") -- (a TSan host adds its own thread)
    assert.is_true(f1 >= f0 + 1, "a connection while busy")
    assert.are.equal(t1 - 1, t2, "no worker once idle")
    assert.is_true(f2 <= f0 and f2 <= f1 - 2, string.format("fds %d before, %d busy, %d idle", f0, f1, f2))
    assert.are.equal("1", n1)
    assert.are.equal("1", n2) -- a new connection: the idle worker closed the old one
  end)

  it("2,000 clients dropped without close() under ulimit -n 1024: threads and fds stay bounded", function()
    local n = SLOW and 300 or 2000
    local out = run(string.format([==[
      local nb = require "nanobanana"
      local max_t, max_f = 0, 0
      for i = 1, %d do
        local c = nb.new { base_url = %q, api_key = "test-key", retries = 0 }
        c:start("otter " .. i)
        c:poll()
        c = nil
        if i %% 50 == 0 then
          collectgarbage()
          max_t = math.max(max_t, threads())
          max_f = math.max(max_f, fds())
        end
      end
      collectgarbage()
      sleep(0.5)
      print(max_t, max_f, threads(), fds())
    ]==], n, server.url), "ulimit -n 1024 &&")
    local mt, mf, t, f = out:match("^(%d+)%s+(%d+)%s+(%d+)%s+(%d+)")
    assert.is_not_nil(mt, out)
    mt, mf, t, f = tonumber(mt), tonumber(mf), tonumber(t), tonumber(f)
    assert.is_true(mt <= 120, "threads peaked at " .. mt)
    assert.is_true(mf <= 600, "fds peaked at " .. mf)
    assert.is_true(t <= 2, "threads at the end: " .. t)
    -- (valgrind and the sanitizers keep descriptors of their own in the child)
    local slack = os.getenv("NB_SLOW") and 4 or 0
    assert.is_true(f <= 8 + slack, "fds at the end: " .. f)
  end)

  it("a client whose engine cannot be made (fd table full) raises a clear error", function()
    local out = run(string.format([==[
      local nb = require "nanobanana"
      local hold = {}
      while true do local f = io.open("/proc/self/stat") if not f then break end hold[#hold + 1] = f end
      local ok, err = pcall(nb.new, { base_url = %q, api_key = "test-key" })
      for _, f in ipairs(hold) do f:close() end
      print(ok, err)
    ]==], server.url), "ulimit -n 64 &&")
    assert.matches("^false\t.*cannot create the client's engine: too many open files", out)
  end)

  it("EMFILE while connecting says so", function()
    local out = run(string.format([==[
      local nb = require "nanobanana"
      local c = nb.new { base_url = %q, api_key = "test-key", retries = 0 }
      assert(c:generate("otter warm")) -- the worker runs, its connection kept alive
      local r, e = c:generate("otter [[fault:reset]]")  -- the kept connection breaks
      local hold = {}
      while true do local f = io.open("/proc/self/stat") if not f then break end hold[#hold + 1] = f end
      local r2, e2 = c:generate("otter again") -- a new socket cannot be made
      for _, f in ipairs(hold) do f:close() end
      print(e and e.kind, e2 and e2.kind, e2 and e2.message)
    ]==], server.url), "ulimit -n 64 &&")
    assert.matches("network\tnetwork\ttoo many open files", out)
  end)

  it("a client used in a forked child fails at once, saying so; the parent keeps working", function()
    local host = BUILD .. "fork_host"
    assert.is_truthy(io.open(host), "no " .. host)
    local out = run(string.format([==[
      local nb = require "nanobanana"
      local core = require "nanobanana.core"
      local c = nb.new { base_url = %q, api_key = "test-key", retries = 0 }
      assert(c:generate("otter before"))          -- a kept-alive connection
      local req = c:start("otter [[fault:slow_headers:0.8]] in flight")
      c:poll()
      local pid = fork()
      if pid == 0 then
        local t0 = core.now()
        local r, e = req:wait()
        local r2, e2 = c:generate("otter in the child")
        io.write(string.format("child %%s %%s %%s|%%s %%s %%.3f\n", tostring(r), e.kind, e.message, e2.kind,
          tostring(e2.message:find("fork") ~= nil), core.now() - t0))
        c = nil
        collectgarbage() -- the parent's engine, collected in the child: touches nothing
        _exit(0) -- (what the child holds of the parent's is leaked by design: no leak report)
      end
      local status = waitpid(pid)
      local res = assert(req:wait())
      local res2 = assert(c:generate("otter after"))
      print("parent", status, #res.images, res2.http.new_connections)
    ]==], server.url), nil, host)
    local child = out:match("child ([^\n]*)")
    assert.is_not_nil(child, out)
    local r, kind, msg, kind2, says, took = child:match("^(%S+) (%S+) (.-)|(%S+) (%S+) (%S+)$")
    assert.are.equal("nil", r)
    assert.are.equal("network", kind)
    assert.matches("fork", msg)
    assert.are.equal("network", kind2)
    assert.are.equal("true", says)
    assert.is_true(tonumber(took) < 0.5, "the child waited " .. took .. " s")
    assert.matches("parent%s+0%s+1%s+0", out) -- the parent's kept connection survived the child
    -- the child sent nothing: only the parent's three requests reached the server
    local reqs = server:requests()
    assert.are.equal(3, #reqs)
  end)

  it("local failures are not network failures: what libcurl rejects is kind config (C side)", function()
    -- nb.new validates proxy and base_url first; the engine classifies what
    -- reaches libcurl anyway (errors.lua: config is never retried)
    local e = core.engine()
    local function outcome(spec)
      spec.headers = spec.headers or { "x-goog-api-key: test-key" }
      spec.body = spec.body or { "{}" }
      local x = assert(e:start(spec))
      while not x:done() do e:perform(20) end
      local n = e:next_done()
      while n and n ~= x do n = e:next_done() end
      local r = x:result()
      x:close()
      return r
    end
    local url = server.url .. "/v1beta/models/gemini-2.5-flash-image:generateContent"
    for _, proxy in ipairs { "http://[::1", "htp://127.0.0.1:1", "http://127.0.0.1:99999", "socks9://x" } do
      local r = outcome { url = url, proxy = proxy }
      assert.are.equal("config", r.kind, proxy .. ": " .. r.message)
    end
    for _, bad in ipairs { "http://127.0.0.1:99999/x", "ftp://127.0.0.1/x", "http://127.0.0.1:1/a b" } do
      local r = outcome { url = bad }
      assert.are.equal("config", r.kind, bad .. ": " .. r.message)
    end
    -- a proxy that does not resolve is the network's business
    assert.are.equal("network", outcome { url = url, proxy = "http://nb-proxy.invalid:8080" }.kind)
    e:close()
    local errors = require "nanobanana.errors"
    assert.is_true(errors.KINDS.config and errors.KINDS.memory)
  end)

  it("timeouts of math.huge, NaN and 0 are clamped, not undefined behaviour", function()
    for _, v in ipairs { math.huge, 0 / 0, 0, 1e300 } do
      local x = assert(core.engine():start {
        url = server.url .. "/v1beta/models/gemini-2.5-flash-image:generateContent",
        headers = { "x-goog-api-key: test-key", "Content-Type: application/json" },
        body = { '{"contents":[{"parts":[{"text":"otter"}]}]}' },
        timeout = v, connect_timeout = v, stall = v, max_bytes = v,
      })
      x:close()
    end
    assert.has_no.errors(function() core.engine(0 / 0):close() end) -- clamped too
  end)

  it("start() reads its spec raw (no metamethod runs) and pins the strings it keeps", function()
    local e = core.engine()
    local url = server.url .. "/v1beta/models/gemini-2.5-flash-image:generateContent"
    -- a field behind __index is not seen: the string it would make is never borrowed
    local spec = setmetatable({ headers = { "x-goog-api-key: test-key" }, body = { "{}" } },
      { __index = function(_, k) if k == "url" then return url .. string.rep("/", 0) end end })
    assert.has_error(function() e:start(spec) end)
    -- strings that only the spec table held survive a collection during start
    local x = assert(e:start { url = url .. "", headers = { "x-goog-api-key: " .. "test-key" },
      body = { '{"contents":[{"parts":[{"text":"' .. "otter" .. '"}]}]}' }, proxy = nil,
      blob_dir = "/tmp" .. "" })
    collectgarbage()
    while not x:done() do e:perform(20) end
    assert.are.equal("ok", x:result().kind)
    x:close()
    e:close()
  end)

  it("an Xfer closed while running lets go of its pinned body at once", function()
    local e = core.engine()
    local body = string.rep("x", 64 * 1024 * 1024) .. tostring(core.now()) -- a fresh 64 MiB string
    local x = assert(e:start {
      url = server.url .. "/v1beta/models/gemini-2.5-flash-image:generateContent",
      headers = { "x-goog-api-key: test-key" }, body = { body },
    })
    body = nil -- luacheck: ignore 311 (the string is dropped)
    collectgarbage()
    local before = collectgarbage("count")
    x:close() -- x stays referenced: only its pins go
    collectgarbage()
    local after = collectgarbage("count")
    assert.is_true(before - after > 60 * 1024, string.format("%.0f KiB -> %.0f KiB", before, after))
    assert.is_truthy(tostring(x):find("closed"))
    e:close()
  end)

  it("the worker takes no signal (started with signals blocked)", function()
    local out = run(string.format([==[
      local nb = require "nanobanana"
      local c = nb.new { base_url = %q, api_key = "test-key", retries = 0 }
      local req = c:start("otter [[fault:slow_headers:0.5]]")
      c:poll()
      local pid = io.open("/proc/self/stat"):read("*n")
      local ls = io.popen("ls /proc/" .. pid .. "/task")
      for tid in ls:lines() do
        if tonumber(tid) ~= pid then
          for line in io.lines("/proc/" .. pid .. "/task/" .. tid .. "/status") do
            local m = line:match("^SigBlk:%%s*(%%x+)")
            if m then print("worker", m) end
          end
        end
      end
      ls:close()
      assert(req:wait())
    ]==], server.url))
    local mask = out:match("worker%s+(%x+)")
    assert.is_not_nil(mask, out)
    -- the host's signals are never delivered to it: HUP, INT, USR1, PIPE,
    -- ALRM, TERM, CHLD (every signal is blocked; a TSan host keeps SIGSYS)
    local m = tonumber(mask:sub(-8), 16)
    for _, sig in ipairs { 1, 2, 10, 13, 14, 15, 17 } do -- (no & before 5.3)
      assert.is_true(math.floor(m / 2 ^ (sig - 1)) % 2 == 1, "signal " .. sig .. " not blocked: " .. mask)
    end
  end)
end)
