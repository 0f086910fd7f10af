-- nanobanana.loop: the luv and cqueues adapters, end to end with the fake
-- server, on the real libraries from Debian's packages (lua-luv,
-- lua-cqueues). Each part is skipped, with the reason, when its library is
-- not installed for the running Lua.
local nb = require "nanobanana"
local core = require "nanobanana.core"
local loop = require "nanobanana.loop"
local fake = require "helpers.fake"

local has_luv, uv = pcall(require, "luv")
local has_cq, cqueues = pcall(require, "cqueues")

-- the sha256 the server logged for the final image of the request whose
-- prompt is `prompt`
local function served_sha(server, prompt)
  local sha
  for _, rec in ipairs(server:requests()) do
    if rec.body.contents[1].parts[1].text == prompt and rec.images and #rec.images > 0 then
      sha = rec.images[#rec.images].sha256
    end
  end
  return sha
end

-- Runs the luv loop until done() or limit seconds (a watchdog timer stops it).
local function run_uv(limit)
  local dog = uv.new_timer()
  local fired = false
  dog:start(math.floor((limit or 20) * 1000), 0, function() fired = true; uv.stop() end)
  dog:unref() -- the watchdog alone does not keep the loop alive
  uv.run()
  dog:close()
  uv.run("nowait") -- let the close callbacks run
  return not fired
end

describe("nanobanana.loop", function()
  local server, client

  setup(function() server = fake.start { "--latency-ms", "100" } end)
  teardown(function() server:stop() end)
  before_each(function()
    server:reset()
    client = nb.new { base_url = server.url, api_key = "test-key", retries = 0, retry_base_delay = 0.05 }
  end)
  after_each(function() client:close() end)

  it("rejects what is not a client, and a second adapter on one client", function()
    assert.has_error(function() loop.luv({}) end, "nanobanana.loop: needs a nanobanana client (with pollfd/timeout)")
    if not has_luv then return end
    local h = loop.luv(client, uv)
    assert.has_error(function() loop.luv(client, uv) end, "nanobanana.loop: this client is already attached to a loop")
    h:stop()
    loop.luv(client, uv):stop() -- attachable again once stopped
    uv.run("nowait")
  end)

  describe("luv", function()
    if not has_luv then
      it("is skipped", function() pending("lua-luv is not installed for " .. _VERSION) end)
      return
    end

    it("fires callbacks from the loop with no poll() by the user: plain calls, bytes intact", function()
      local h = loop.luv(client, uv)
      local got, prompts = {}, { "loop otter 1", "loop otter 2", "loop otter 3" }
      for i, p in ipairs(prompts) do
        client:start(p, { on_done = function(res, err)
          got[i] = res and fake.sha256(res.images[1].data) or tostring(err)
          if got[1] and got[2] and got[3] then h:stop() end
        end })
      end
      assert.is_true(run_uv(20))
      for i, p in ipairs(prompts) do assert.are.equal(served_sha(server, p), got[i]) end
    end)

    it("nb.await in h:spawn resumes from the loop; a pipeline of calls in order", function()
      local h = loop.luv(client, uv)
      local order = {}
      h:spawn(function(a, b)
        local r1 = assert(nb.await(client:start(a)))
        order[#order + 1] = fake.sha256(r1.images[1].data)
        local r2 = assert(client:start(b):await())
        order[#order + 1] = fake.sha256(r2.images[1].data)
        h:stop()
      end, "pipeline one", "pipeline two")
      assert.are.equal(0, #order) -- spawn returned at the first await
      assert.is_true(run_uv(20))
      assert.are.same({ served_sha(server, "pipeline one"), served_sha(server, "pipeline two") }, order)
      local reqs = server:requests()
      assert.are.equal(2, #reqs)
      assert.is_true(reqs[2].time >= reqs[1].time) -- the second started after the first finished
    end)

    it("streams: on_event fires from the loop, in order, before on_done", function()
      local h = loop.luv(client, uv)
      local seen = {}
      client:start("stream in a loop", {
        model = "gemini-3-pro-image-preview", stream = true,
        generationConfig = { thinkingConfig = { includeThoughts = true } },
        on_event = function(ev) seen[#seen + 1] = ev.type end,
        on_done = function(res, err)
          assert(res, tostring(err))
          seen[#seen + 1] = "done:" .. fake.sha256(res.images[1].data)
          h:stop()
        end,
      })
      assert.is_true(run_uv(20))
      assert.are.equal("done:" .. served_sha(server, "stream in a loop"), seen[#seen])
      assert.are.equal("image", seen[#seen - 1])
      assert.is_true(#seen >= 3) -- thoughts, then the final image
    end)

    it("retries on the loop's timer (a 429 asking for 0.3 s)", function()
      local c = nb.new { base_url = server.url, api_key = "test-key", retries = 1 }
      local h = loop.luv(c, uv)
      server:faults { { name = "429", arg = "0.3" } }
      local res, err, t0
      h:spawn(function()
        t0 = core.now()
        res, err = nb.await(c:start("retry in a loop"))
        h:stop()
      end)
      assert.is_true(run_uv(20))
      c:close()
      assert.is_nil(err)
      assert.are.equal(2, res.attempts)
      assert.is_true(core.now() - t0 >= 0.3)
      assert.are.equal(served_sha(server, "retry in a loop"), fake.sha256(res.images[1].data))
    end)

    it("cancel from a loop timer: nb.await returns kind cancelled at once, on_done once", function()
      local h = loop.luv(client, uv)
      local done, res, err, waited = 0, nil, nil, nil
      h:spawn(function()
        local req = client:start("slow [[fault:slow_headers:10]]", { on_done = function() done = done + 1 end })
        local tm = uv.new_timer()
        tm:start(100, 0, function() tm:close(); req:cancel() end)
        local t0 = core.now()
        res, err = nb.await(req)
        waited = core.now() - t0
        h:stop()
      end)
      assert.is_true(run_uv(5))
      assert.is_nil(res)
      assert.are.equal("cancelled", err.kind)
      assert.are.equal(1, done)
      assert.is_true(waited < 1, "waited " .. waited)
    end)

    it("errors come back as nil, err with their kind", function()
      local h = loop.luv(client, uv)
      local e1, e2
      h:spawn(function()
        local _, a = nb.await(client:start("boom [[fault:500]]"))
        local _, b = nb.await(client:start("page [[fault:html_502]]"))
        e1, e2 = a, b
        h:stop()
      end)
      assert.is_true(run_uv(20))
      assert.are.same({ "api", 500 }, { e1.kind, e1.status })
      assert.are.same({ "http", 502 }, { e2.kind, e2.status })
    end)

    it("runs poll and the coroutines through opts.schedule (vim.schedule in Neovim)", function()
      local queued, inside = 0, false
      local idle = uv.new_timer()
      local q = {}
      idle:start(1, 1, function() -- a stand-in for the editor's main loop: runs what was scheduled
        local fns = q; q = {}
        for _, fn in ipairs(fns) do inside = true; fn(); inside = false end
      end)
      local h = loop.luv(client, uv, { schedule = function(fn) queued = queued + 1; q[#q + 1] = fn end })
      local fired_inside
      h:spawn(function()
        local res = assert(nb.await(client:start("scheduled", { on_done = function() fired_inside = inside end })))
        assert(res.images[1])
        h:stop()
        idle:stop(); idle:close()
      end)
      assert.is_true(run_uv(20))
      assert.is_true(fired_inside)
      assert.is_true(queued >= 1)
    end)

    it("keeps working across the engine's idle exit (its worker ends after 3 s without work)", function()
      local h = loop.luv(client, uv)
      local fd = client:pollfd()
      local shas = {}
      client:start("before idle", { on_done = function(res, err)
        shas[1] = res and fake.sha256(res.images[1].data) or tostring(err)
        local pause = uv.new_timer() -- 3.5 s without work: the engine's worker ends
        pause:start(3500, 0, function()
          pause:close()
          client:start("after idle", { on_done = function(res2, err2) -- started from a plain luv callback
            shas[2] = res2 and fake.sha256(res2.images[1].data) or tostring(err2)
            h:stop()
          end })
        end)
      end })
      assert.is_true(run_uv(20))
      assert.are.equal(fd, client:pollfd())
      assert.are.same({ served_sha(server, "before idle"), served_sha(server, "after idle") }, shas)
    end)

    it("stop() detaches: the loop exits, callbacks wait for the user's poll()", function()
      local h = loop.luv(client, uv)
      local done = false
      local req = client:start("stopped", { on_done = function() done = true end })
      h:stop()
      assert.is_true(run_uv(5)) -- returns at once: nothing keeps the loop alive
      assert.is_false(done)
      req:wait(20)
      assert.is_true(done)
    end)

    it("does not spin: 8 requests waiting on a slow server cost the loop almost no CPU", function()
      local c = nb.new { base_url = server.url, api_key = "test-key", retries = 0 }
      local h = loop.luv(c, uv)
      local left, wakeups = 8, 0
      for i = 1, 8 do
        c:start("idle " .. i .. " [[fault:slow_headers:1.5]]", { on_done = function(res, err)
          assert(res, tostring(err))
          left = left - 1
          if left == 0 then h:stop() end
        end })
      end
      local count = uv.new_check() -- runs once per loop iteration
      count:start(function() wakeups = wakeups + 1 end)
      count:unref() -- counting does not keep the loop alive
      -- the idle window: from 0.2 s after the starts to 1.4 s, while the server
      -- holds back every answer (1.5 s); process CPU, the engine's worker included
      local win = {}
      local sampler = uv.new_timer()
      sampler:start(200, 1200, function()
        win[#win + 1] = { os.clock(), core.now(), wakeups }
        if #win == 2 then sampler:stop() end
      end)
      assert.is_true(run_uv(20))
      sampler:close(); count:stop(); count:close()
      uv.run("nowait") -- luv needs its close callbacks run before the Lua state closes
      c:close()
      assert.are.equal(0, left)
      local cpu, wall, iters = win[2][1] - win[1][1], win[2][2] - win[1][2], win[2][3] - win[1][3]
      -- generous bounds (the target is 1% of a core): under 5% of the window's
      -- wall time, and the loop woke a few times, not thousands
      assert.is_true(cpu < 0.05 * wall, string.format("cpu %.3f s over %.3f s", cpu, wall))
      assert.is_true(iters < 50, "loop iterations while idle: " .. iters)
      print(string.format("\nluv idle: 8 requests waiting %.2f s: %.2f ms CPU (%.2f%% of a core), %d loop iterations; "
        .. "all 8 done after %d iterations", wall, cpu * 1000, cpu / wall * 100, iters, wakeups))
    end)
  end)

  describe("cqueues", function()
    if not has_cq then
      it("is skipped", function() pending("lua-cqueues is not installed for " .. _VERSION) end)
      return
    end

    local function run_cq(cq, limit)
      local deadline = core.now() + (limit or 20)
      while not cq:empty() do
        local ok, err = cq:step(0.5)
        if not ok then error(err, 0) end
        if core.now() > deadline then return false end
      end
      return true
    end

    it("fires callbacks from the controller: plain calls, bytes intact", function()
      local cq = cqueues.new()
      local h = loop.cqueues(client, cq)
      local got = {}
      for i = 1, 3 do
        client:start("cq otter " .. i, { on_done = function(res, err)
          got[i] = res and fake.sha256(res.images[1].data) or tostring(err)
          if got[1] and got[2] and got[3] then h:stop() end
        end })
      end
      assert.is_true(run_cq(cq))
      for i = 1, 3 do assert.are.equal(served_sha(server, "cq otter " .. i), got[i]) end
    end)

    it("nb.await in cq:wrap waits on the adapter (cqueues owns the yields); two coroutines at once", function()
      local cq = cqueues.new()
      local h = loop.cqueues(client, cq)
      local out, slept = {}, false
      local left = 2
      for i = 1, 2 do
        cq:wrap(function()
          local r = assert(nb.await(client:start("cq await " .. i)))
          out[i] = fake.sha256(r.images[1].data)
          left = left - 1
          if left == 0 then h:stop() end
        end)
      end
      cq:wrap(function() cqueues.sleep(0.05); slept = true end) -- other cqueues work goes on meanwhile
      assert.is_true(run_cq(cq))
      assert.is_true(slept)
      for i = 1, 2 do assert.are.equal(served_sha(server, "cq await " .. i), out[i]) end
    end)

    it("streams, retries, cancels and reports errors", function()
      local c = nb.new { base_url = server.url, api_key = "test-key", retries = 1 }
      local cq = cqueues.new()
      local h = loop.cqueues(c, cq)
      local events, r_stream, r_retry, e_cancel, e_err, waited = {}, nil, nil, nil, nil, nil
      server:faults { { name = "429", arg = "0.3" } }
      cq:wrap(function()
        r_retry = assert(nb.await(c:start("cq retry")))
        r_stream = assert(nb.await(c:start("cq stream", {
          stream = true, on_event = function(ev) events[#events + 1] = ev.type end })))
        local req = c:start("cq slow [[fault:slow_headers:10]]")
        cq:wrap(function() cqueues.sleep(0.1); req:cancel() end)
        local t0 = core.now()
        e_cancel = select(2, nb.await(req))
        waited = core.now() - t0
        e_err = select(2, nb.await(c:start("cq boom [[fault:500]]", { retries = 0 })))
        h:stop()
      end)
      assert.is_true(run_cq(cq))
      c:close()
      assert.are.equal(2, r_retry.attempts)
      assert.are.equal(served_sha(server, "cq retry"), fake.sha256(r_retry.images[1].data))
      assert.are.equal(served_sha(server, "cq stream"), fake.sha256(r_stream.images[1].data))
      assert.are.equal("image", events[#events])
      assert.are.equal("cancelled", e_cancel.kind)
      assert.is_true(waited < 1, "waited " .. waited)
      assert.are.same({ "api", 500 }, { e_err.kind, e_err.status })
    end)

    it("an error in a callback reaches cq:step; the adapter carries on", function()
      local cq = cqueues.new()
      local h = loop.cqueues(client, cq)
      local res
      cq:wrap(function()
        nb.await(client:start("cq bad callback", { on_done = function() error("boom in on_done") end }))
        res = nb.await(client:start("cq after the error"))
        h:stop()
      end)
      local errs = {}
      local deadline = core.now() + 20
      while not cq:empty() and core.now() < deadline do
        local ok, err = cq:step(0.5)
        if not ok then errs[#errs + 1] = tostring(err) end
      end
      assert.are.equal(1, #errs)
      assert.truthy(errs[1]:find("boom in on_done", 1, true))
      assert.are.equal(served_sha(server, "cq after the error"), fake.sha256(res.images[1].data))
    end)

    it("does not spin: 8 requests waiting on a slow server cost the controller almost no CPU", function()
      local cq = cqueues.new()
      local h = loop.cqueues(client, cq)
      local left, win = 8, {}
      for i = 1, 8 do
        cq:wrap(function()
          assert(nb.await(client:start("cq idle " .. i .. " [[fault:slow_headers:1.5]]")))
          left = left - 1
          if left == 0 then h:stop() end
        end)
      end
      cq:wrap(function() -- the window: 0.2 s to 1.4 s, while the server holds every answer back
        cqueues.sleep(0.2); win[1] = { os.clock(), core.now(), h.steps }
        cqueues.sleep(1.2); win[2] = { os.clock(), core.now(), h.steps }
      end)
      assert.is_true(run_cq(cq))
      assert.are.equal(0, left)
      local cpu, wall, steps = win[2][1] - win[1][1], win[2][2] - win[1][2], win[2][3] - win[1][3]
      assert.is_true(cpu < 0.05 * wall, string.format("cpu %.3f s over %.3f s", cpu, wall))
      assert.is_true(steps < 20, "poll() ran " .. steps .. " times while idle")
      print(string.format("\ncqueues idle: 8 requests waiting %.2f s: %.2f ms CPU (%.2f%% of a core), poll() ran %d times",
        wall, cpu * 1000, cpu / wall * 100, steps))
    end)

    it("stop() ends the driver: the controller empties", function()
      local cq = cqueues.new()
      local h = loop.cqueues(client, cq)
      assert.is_false(cq:empty())
      h:stop()
      assert.is_true(run_cq(cq, 2))
    end)
  end)
end)
