-- The non-blocking engine: start/poll/wait/cancel, callbacks only inside
-- poll/wait, lifetimes, coroutines, generate_many.
local nb = require "nanobanana"
local core = require "nanobanana.core"
local fake = require "helpers.fake"

describe("async", function()
  local server, client
  fake.suite({ "--latency-ms", "300" }, {}, function(s, c) server, client = s, c end)

  it("start returns at once; poll never blocks; on_done fires once, inside poll", function()
    local calls, inside = 0, false
    local t0 = core.now()
    local req = client:start("otter", { on_done = function(res, err)
      calls = calls + 1
      assert.is_true(inside)
      assert.is_nil(err)
      assert.are.equal(1, #res.images)
    end })
    assert.is_true(core.now() - t0 < 0.2)
    assert.are.equal("running", req.state)
    assert.is_false(req:result())
    local max_poll = 0
    while req.state == "running" do
      local p0 = core.now()
      inside = true
      client:poll()
      inside = false
      max_poll = math.max(max_poll, core.now() - p0)
      fake.sleep(0.01)
    end
    assert.is_true(max_poll < 0.1)
    assert.are.equal("done", req.state)
    assert.are.equal(1, calls)
    client:poll()
    assert.are.equal(1, calls)
    local res = req:result()
    assert.are.equal(server:last().images[1].sha256, fake.sha256(res.images[1].data))
  end)

  it("progress: phases and byte counts, on_progress only inside poll/wait", function()
    local seen = {}
    local req = client:start("otter", { on_progress = function(p) seen[#seen + 1] = p.phase .. ":" .. p.downloaded end })
    local res = assert(req:wait())
    assert.is_true(#seen >= 1)
    assert.are.equal("done", req.progress.phase)
    assert.is_true(req.progress.downloaded > #res.images[1].data)
    assert.is_true(req.progress.upload_total > 0)
    assert.are.equal(req.progress.upload_total, req.progress.uploaded)
  end)

  it("poll() handles finished transfers within its budget; the rest wait for the next poll", function()
    local c = nb.new { base_url = server.url, api_key = "test-key", poll_budget = 0, retries = 0 }
    local reqs = {}
    for i = 1, 3 do reqs[i] = c:start("otter " .. i) end
    -- let all three finish in the engine without collecting them
    local t0 = core.now()
    while core.now() - t0 < 10 and c._engine:perform(50) > 0 do end
    local function finished()
      local n = 0
      for i = 1, 3 do if reqs[i].state ~= "running" then n = n + 1 end end
      return n
    end
    assert.are.equal(0, finished())
    -- a zero budget handles one finished request per poll (none when the
    -- engine's worker holds its lock at that instant: poll never waits)
    local polls, before = 0, 0
    local t1 = core.now()
    while finished() < 3 and core.now() - t1 < 10 do
      c:poll()
      polls = polls + 1
      assert.is_true(finished() - before <= 1)
      before = finished()
      fake.sleep(0.01)
    end
    assert.are.equal(3, finished())
    assert.is_true(polls >= 3)
    c:close()
  end)

  it("wait(timeout) returns false while running, then the result", function()
    local req = client:start("otter")
    assert.is_false(req:wait(0.05))
    local res = assert(req:wait(10))
    assert.are.equal(1, #res.images)
  end)

  it("cancel: state, error kind, on_done on the next poll, server sees the close", function()
    local got
    local req = client:start("otter", { on_done = function(res, err) got = { res, err } end })
    client:poll()
    req:cancel()
    assert.are.equal("cancelled", req.state)
    assert.is_nil(got)
    client:poll()
    assert.is_nil(got[1])
    assert.are.equal("cancelled", got[2].kind)
    local _, err = req:result()
    assert.are.equal("cancelled", err.kind)
  end)

  it("cancelling from inside a callback works", function()
    local a, b
    local done_b
    a = client:start("otter one", { on_done = function() b:cancel() end })
    b = client:start("otter two [[fault:slow_headers:2]]", { on_done = function(_, err) done_b = err end })
    a:wait()
    client:poll()
    assert.are.equal("cancelled", b.state)
    assert.are.equal("cancelled", done_b.kind)
  end)

  it("an error in a callback reaches the caller of poll and leaves the engine consistent", function()
    local req = client:start("otter", { on_done = function() error("boom from user code") end })
    local ok, msg = true, nil
    local t0 = core.now()
    while ok and core.now() - t0 < 10 do
      ok, msg = pcall(client.poll, client)
      fake.sleep(0.01)
    end
    assert.is_false(ok)
    assert.matches("boom from user code", msg)
    assert.are.equal("done", req.state)
    -- the engine goes on working
    local res = assert(client:generate("otter again"))
    assert.are.equal(1, #res.images)
  end)

  it("a request dropped by user code is kept alive and completes", function()
    local done = false
    client:start("otter", { on_done = function(res) done = res ~= nil end })
    collectgarbage(); collectgarbage()
    local t0 = core.now()
    while not done and core.now() - t0 < 10 do client:poll(); collectgarbage(); fake.sleep(0.01) end
    assert.is_true(done)
  end)

  it("closing the client cancels what is in flight; on_done fires with cancelled", function()
    local c = nb.new { base_url = server.url, api_key = "test-key" }
    local got = {}
    local r1 = c:start("otter 1", { on_done = function(_, e) got[#got + 1] = e.kind end })
    local r2 = c:start("otter 2", { on_done = function(_, e) got[#got + 1] = e.kind end })
    c:poll()
    c:close()
    assert.are.same({ "cancelled", "cancelled" }, got)
    assert.are.equal("cancelled", r1.state)
    assert.are.equal("cancelled", r2.state)
    assert.are.equal(0, c:poll())
    assert.has_error(function() c:start("x") end)
  end)

  it("a collected client frees its engine (no crash, no leak under valgrind)", function()
    do
      local c = nb.new { base_url = server.url, api_key = "test-key" }
      c:start("otter")
      c:poll()
    end
    collectgarbage(); collectgarbage()
  end)

  it("closing or dropping a client mid-upload lets go of the request's borrowed bytes", function()
    -- 3 x 3 MiB images given as Lua strings are read by the engine's worker
    -- while it uploads; after close/GC they are collected: ASan and valgrind
    -- runs of this spec would see any later read
    local png = assert(client:generate("otter")).images[1].data
    local big = png .. string.rep("\0", 3 * 1024 * 1024)
    for round = 1, 2 do
      local c = nb.new { base_url = server.url, api_key = "test-key", retries = 0 }
      local reqs = {}
      for i = 1, 3 do
        reqs[i] = c:start("otter " .. i, { images = { { data = big .. i, mimeType = "image/png" } } })
      end
      c:poll()
      if round == 1 then
        c:close()
        for i = 1, 3 do assert.are.equal("cancelled", reqs[i].state) end
      end
      c, reqs = nil, nil -- luacheck: ignore 311 (drops the references for the collector)
      collectgarbage(); collectgarbage()
    end
  end)

  it("__close on a to-be-closed client", function()
    if _VERSION < "Lua 5.4" then return pending("<close> is Lua 5.4") end
    local ok = load([[
      local nb, url, out = ...
      do
        local c <close> = nb.new { base_url = url, api_key = "test-key" }
        out.req = c:start("otter")
      end
    ]])
    local out = {}
    ok(nb, server.url, out)
    assert.are.equal("cancelled", out.req.state)
  end)

  it("nb.await inside coroutines, driven by a poll loop", function()
    local results = {}
    local cos = {}
    for i = 1, 3 do
      cos[i] = coroutine.create(function()
        local res, err = nb.await(client:start("otter " .. i))
        results[i] = res and #res.images or err.kind
      end)
    end
    for i = 1, 3 do assert(coroutine.resume(cos[i])) end
    local t0 = core.now()
    while core.now() - t0 < 10 do
      client:poll()
      local alive = 0
      for i = 1, 3 do
        if coroutine.status(cos[i]) == "suspended" then assert(coroutine.resume(cos[i])); alive = alive + 1 end
      end
      if alive == 0 then break end
      fake.sleep(0.01)
    end
    assert.are.same({ 1, 1, 1 }, results)
    -- outside a coroutine await is wait
    local res = assert(nb.await(client:start("otter")))
    assert.are.equal(1, #res.images)
  end)

  it("generate_many: results in order, errors in their slots, concurrency bounded", function()
    -- warm the server's image cache, then time a client with no connection yet
    client:generate_many({ "a", "c", { "c", { model = "gemini-3-pro-image-preview" } }, "d" }, { concurrency = 4 })
    server:reset()
    local cold = nb.new { base_url = server.url, api_key = "test-key", retries = 0 }
    local t0 = core.now()
    local out = cold:generate_many({ "a", { "b [[fault:text_only]]" }, { "c", { model = "gemini-3-pro-image-preview" } }, "d" },
      { concurrency = 4 })
    local elapsed = core.now() - t0
    assert.are.equal(4, #out)
    assert.are.equal(1, #out[1].images)
    assert.is_true(nb.is_error(out[2]))
    assert.are.equal("no_image", out[2].kind)
    assert.are.equal("image/jpeg", out[3].images[1].mimeType)
    assert.are.equal(1, #out[4].images)
    -- 4 requests with 300 ms server latency ran at once: not one after
    -- another (>= 1.2 s), nor held back behind the first response (>= 0.6 s,
    -- what CURLOPT_PIPEWAIT does on http://); skipped under valgrind
    if not os.getenv("NB_SLOW") then assert.is_true(elapsed < 0.55, "took " .. elapsed) end
    local reqs = server:requests()
    assert.are.equal(4, #reqs)
  end)
end)
