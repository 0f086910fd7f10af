-- Promises the README makes, each held against the fake server: chat
-- histories in either form, the shapes a 2xx may not have, on_progress in
-- blocking waits, what stall_timeout counts, output= directories checked
-- before sending, generate_many validating first, temp files gone at once.
local nb = require "nanobanana"
local core = require "nanobanana.core"
local cjson = require "cjson"
local fake = require "helpers.fake"

local PRO = "gemini-3-pro-image-preview"
-- under sanitizers and valgrind (NB_SLOW) the timing bounds are not held
local SLOW = os.getenv("NB_SLOW") ~= nil

local function mktemp_dir() return (fake.sh("mktemp -d"):gsub("%s+$", "")) end

-- the names in dir (hidden ones included), sorted
local function list(dir)
  local out = {}
  for name in fake.sh("ls -A '" .. dir .. "'"):gmatch("[^\n]+") do out[#out + 1] = name end
  table.sort(out)
  return out
end

local function failure(res, err)
  assert.is_nil(res)
  assert.is_true(nb.is_error(err))
  return err
end

describe("contracts", function()
  local server, client
  fake.suite(nil, {}, function(s, c) server, client = s, c end)

  describe("chat history", function()
    it("the decoded table of to_json() continues the conversation exactly like the JSON text", function()
      local chat = client:chat { model = PRO }
      assert(chat:send("A cozy reading nook"))
      local text = assert(chat:to_json())
      local from_text = client:chat { model = PRO, history = text }
      local from_table = client:chat { model = PRO, history = cjson.decode(text) }
      assert.are.equal(2, #from_table.history)
      assert(from_text:send("Make it night time"))
      local sent_text = server:last().body
      assert(from_table:send("Make it night time"))
      local sent_table = server:last().body
      assert.are.equal(3, #sent_table.contents)
      assert.are.same(sent_text.contents, sent_table.contents)
      -- the model turn went back verbatim (the server checked its signatures)
      assert.are.equal(chat.history[2].parts[#chat.history[2].parts].thoughtSignature,
        sent_table.contents[2].parts[#sent_table.contents[2].parts].thoughtSignature)
    end)

    it("a history that yields no turns raises instead of starting empty", function()
      local one = { contents = { { role = "user", parts = { { text = "hi" } } } } }
      for _, h in ipairs { "{}", "[]", '{"contents":[]}', '{"turns":[{"role":"user","parts":[{"text":"hi"}]}]}',
                           {}, { contents = {} }, { turns = one.contents }, { [2] = one.contents[1] } } do
        local ok, msg = pcall(client.chat, client, { history = h })
        assert.is_false(ok, "accepted " .. (type(h) == "string" and h or cjson.encode(h)))
        assert.matches("no turns", msg)
      end
      assert.are.equal(1, #client:chat { history = one }.history)
      assert.are.equal(1, #client:chat { history = one.contents }.history)
    end)
  end)

  it("programming errors name the caller's line (start, chat, chat:start)", function()
    local calls = {
      function() client:start("otter", { bogus = 1 }) end,
      function() client:chat { history = {} } end,
      function() client:chat {}:start("otter", { bogus = 1 }) end,
    }
    for _, f in ipairs(calls) do
      local ok, msg = pcall(f)
      assert.is_false(ok)
      assert.matches("^spec/18%-contracts_spec%.lua:%d+: nanobanana: ", msg)
    end
  end)

  describe("invalid_response", function()
    it("a 2xx whose candidates is not an array", function()
      local err = failure(client:generate("otter [[fault:candidates_object]]"))
      assert.are.equal("invalid_response", err.kind)
      assert.are.equal(200, err.status)
      assert.matches("candidates", err.message)
      err = failure(client:stream("otter [[fault:candidates_object]]"))
      assert.are.equal("invalid_response", err.kind)
      assert.matches("candidates", err.message)
    end)

    it("a 2xx whose body is a top-level array", function()
      local err = failure(client:generate("otter [[fault:array_200]]"))
      assert.are.equal("invalid_response", err.kind)
      assert.are.equal(200, err.status)
      assert.matches("array", err.message)
    end)
  end)

  describe("on_progress", function()
    local slow -- thinks 0.55 s before it answers
    local THINK = 0.55
    setup(function() slow = fake.start { "--latency-ms", tostring(THINK * 1000) } end)
    teardown(function() slow:stop() end)

    local function recorder(calls, t0)
      return function(p)
        calls[#calls + 1] = { phase = p.phase, down = p.downloaded, t = core.now() - t0[1] }
      end
    end

    local ORDER = { connecting = 1, uploading = 2, waiting = 3, downloading = 4, done = 5 }

    local function check_sequence(calls)
      local rank, dones = 0, 0
      for _, c in ipairs(calls) do
        if c.phase ~= "on_done" then
          assert.is_true(ORDER[c.phase] >= rank, "phase went back to " .. c.phase)
          rank = ORDER[c.phase]
        end
        if c.phase == "done" then dones = dones + 1 end
      end
      assert.are.equal(1, dones)
      assert.are.equal("done", calls[#calls - 1].phase)
      assert.are.equal("on_done", calls[#calls].phase)
    end

    local function first(calls, phase)
      for _, c in ipairs(calls) do if c.phase == phase then return c end end
    end

    local function count(calls, phase)
      local n = 0
      for _, c in ipairs(calls) do if c.phase == phase then n = n + 1 end end
      return n
    end

    it("blocking generate: phase changes at once, byte counts about 10 Hz, done before on_done", function()
      local c = nb.new { base_url = slow.url, api_key = "test-key", retries = 0 }
      local calls, t0 = {}, { core.now() }
      local res = assert(c:generate("otter [[fault:trickle:1]]", {
        on_progress = recorder(calls, t0),
        on_done = function() calls[#calls + 1] = { phase = "on_done" } end,
      }))
      assert.are.equal(1, #res.images)
      check_sequence(calls)
      local w, d, n = first(calls, "waiting"), first(calls, "downloading"), count(calls, "downloading")
      assert.is_truthy(w and d)
      if not SLOW then
        -- the request is sent at once: "waiting" is reported long before the answer
        assert.is_true(w.t < 0.15, "waiting at " .. w.t)
        -- the first body byte comes after the server's thinking (and its
        -- making the image: a few tens of ms), and is reported then
        assert.is_true(d.t >= THINK - 0.05 and d.t < THINK + 0.25, "downloading at " .. d.t)
        -- the body trickles over 1 s: about 10 calls with moving byte counts
        assert.is_true(n >= 6 and n <= 16, n .. " downloading calls in 1 s")
      end
      assert.is_true(calls[#calls - 1].down > #res.images[1].data) -- the last call has the whole body
      c:close()
    end)

    it("req:wait() and a poll loop give the same, and so do failures and cancel", function()
      local c = nb.new { base_url = server.url, api_key = "test-key", retries = 0 }
      -- poll loop at ~200 Hz: byte counts still about 10 Hz
      local calls, t0 = {}, { core.now() }
      local req = c:start("otter [[fault:trickle:1]]", { on_progress = recorder(calls, t0),
        on_done = function() calls[#calls + 1] = { phase = "on_done" } end })
      while req.state == "running" do c:poll(); fake.sleep(0.005) end
      c:poll()
      check_sequence(calls)
      local n = count(calls, "downloading")
      assert.is_true(n >= (SLOW and 1 or 5) and n <= 16, n .. " downloading calls in 1 s")
      -- a failure, through wait()
      calls, t0 = {}, { core.now() }
      req = c:start("otter [[fault:500]]", { on_progress = recorder(calls, t0),
        on_done = function() calls[#calls + 1] = { phase = "on_done" } end })
      assert.is_nil(req:wait())
      check_sequence(calls)
      -- cancelled: the last call comes with on_done, on the next poll
      calls, t0 = {}, { core.now() }
      req = c:start("otter [[fault:slow_headers:2]]", { on_progress = recorder(calls, t0),
        on_done = function() calls[#calls + 1] = { phase = "on_done" } end })
      req:cancel()
      c:poll()
      check_sequence(calls)
      -- on_progress without on_done still gets its last call
      calls = {}
      assert(c:generate("otter", { on_progress = recorder(calls, t0) }))
      assert.are.equal("done", calls[#calls].phase)
      c:close()
    end)
  end)

  describe("stall_timeout", function()
    it("the server's thinking before its first byte is not a stall; timeout bounds it", function()
      local res, err = client:generate("otter [[fault:slow_headers:2]]", { stall_timeout = 1, timeout = 10 })
      assert(res, err and tostring(err))
      assert.are.equal(1, #res.images)
      err = failure(client:generate("otter [[fault:slow_headers:3]]", { stall_timeout = 1, timeout = 2 }))
      assert.are.equal("timeout", err.kind)
      res, err = client:stream("otter [[fault:slow_headers:2]]", { stall_timeout = 1, timeout = 10 })
      assert(res, err and tostring(err))
    end)

    it("silence once the response has begun still is one, and so is silence mid-upload", function()
      local err = failure(client:generate("otter [[fault:stall:3]]", { stall_timeout = 1, timeout = 10 }))
      assert.are.equal("stall", err.kind)
      -- a listener on 127.0.0.1 that never accepts: the kernel takes the
      -- connection and a few MB, then the upload stops moving
      local socket = require "socket"
      local srv = assert(socket.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local c = nb.new { base_url = "http://127.0.0.1:" .. port, api_key = "test-key", retries = 0 }
      local big = "\137PNG\r\n\26\n" .. string.rep("\0", 24 * 1024 * 1024)
      local t0 = core.now()
      err = failure(c:generate("otter", { images = { { data = big, mimeType = "image/png" } },
                                          stall_timeout = 1, timeout = 20 }))
      assert.are.equal("stall", err.kind)
      assert.is_true(core.now() - t0 < (SLOW and 60 or 10))
      c:close()
      srv:close()
    end)
  end)

  describe("output=", function()
    it("into a directory that cannot be written fails with io before anything is sent", function()
      local dir = mktemp_dir()
      local file = dir .. "/plain"
      assert(io.open(file, "w")):close()
      local ro = dir .. "/ro"
      fake.sh("mkdir " .. ro)
      -- root ignores mode bits: a read-only bind mount is what refuses root
      local mounted = fake.sh("mount --bind " .. ro .. " " .. ro .. " && mount -o remount,ro,bind "
        .. ro .. " " .. ro .. " && echo ok"):match("ok")
      local targets = { dir .. "/missing/out.png", file .. "/out.png" }
      if mounted then targets[#targets + 1] = ro .. "/out.png" end
      local ok, e = pcall(function()
        for _, path in ipairs(targets) do
          local err = failure(client:generate("otter", { output = path }))
          assert.are.equal("io", err.kind)
          assert.matches(path:match("^(.*)/"), err.message, 1, true)
          local req = client:start("otter", { output = path })
          assert.are.equal("failed", req.state)
          assert.are.equal("io", select(2, req:result()).kind)
        end
        assert.are.same({}, server:requests())
      end)
      if mounted then fake.sh("umount " .. ro) end
      fake.sh("rm -rf " .. dir)
      assert(ok, e)
      assert.is_truthy(mounted, "mount --bind is not available here: the read-only case did not run")
    end)
  end)

  describe("an empty prompt", function()
    it("raises before anything is sent (the API refuses an empty text part); nil with images sends them alone", function()
      local png = client:generate("a reference").images[1]
      server:reset()
      local calls = {
        function() client:generate("") end,
        function() client:start("", { images = { png } }) end,
        function() client:count_tokens("") end,
        function() client:chat {}:send("") end,
        function() client:batch({ "a", "" }) end,
        function() client:generate("", { validate = false }) end, -- not a capability check: always
      }
      for _, f in ipairs(calls) do
        assert.has_error(f, "nanobanana: the prompt is empty (the API refuses an empty text part): "
          .. "give text, or nil to send images alone")
      end
      fake.sleep(0.1)
      assert.are.same({}, server:requests())
      assert(client:generate(nil, { images = { png } }))
      local parts = server:last().body.contents[1].parts
      assert.are.equal(1, #parts)
      assert.truthy(parts[1].inlineData or parts[1].inline_data)
    end)
    it("the fake server answers an empty text part as the API does", function()
      local res, err = client:generate("x", { validate = false, contents = {
        { role = "user", parts = { { text = "" } } } } })
      assert.is_nil(res)
      assert.are.equal("api", err.kind)
      assert.are.equal(400, err.status)
      assert.matches("empty text parameter", err.message)
    end)
  end)

  it("a blocking call gives one value on success (assert(...) passes just the result on)", function()
    assert.are.equal(1, select("#", client:generate("otter")))
    assert.are.equal(1, select("#", client:count_tokens("otter")))
    assert.are.equal(1, select("#", client:chat {}:send("otter")))
    assert.are.equal(2, select("#", client:generate("otter [[fault:no_image]]")))
  end)

  describe("a callback that raises in a blocking call", function()
    -- the error reaches the caller; the call's own request is cancelled,
    -- and none of its callbacks fires again in later calls
    local function settle()
      fake.sleep(0.3)
      return client:poll()
    end
    it("generate: on_progress", function()
      local calls = 0
      local ok, err = pcall(client.generate, client, "otter [[fault:slow_headers:0.3]]", {
        on_progress = function() calls = calls + 1; error("boom in on_progress") end })
      assert.is_false(ok)
      assert.matches("boom in on_progress", err)
      assert.are.equal(1, calls)
      assert.are.equal(0, settle()) -- nothing left in flight
      assert(client:generate("again"))
      assert.are.equal(1, calls)
    end)
    it("stream: on_event", function()
      local events = 0
      local ok, err = pcall(client.stream, client, "otter", {}, function() events = events + 1; error("boom in on_event") end)
      assert.is_false(ok)
      assert.matches("boom in on_event", err)
      assert.are.equal(0, settle())
      assert(client:stream("again", {}, function() end))
      assert.are.equal(1, events)
    end)
    it("generate_many: every request in flight is cancelled, none not started starts", function()
      server:reset()
      local calls = 0
      local items = { { "a [[fault:slow_headers:0.4]]" }, { "b", { on_progress = function() calls = calls + 1; error("boom in b") end } },
                      { "c [[fault:slow_headers:0.4]]" }, "d", "e" }
      local ok, err = pcall(client.generate_many, client, items, { concurrency = 3 })
      assert.is_false(ok)
      assert.matches("boom in b", err)
      assert.are.equal(0, settle())
      for _, r in ipairs(server:requests()) do -- (a, b and c may have been cut before they arrived)
        local text = r.body.contents[1].parts[1].text
        assert.is_true(text ~= "d" and text ~= "e", "sent: " .. text)
      end
      assert.are.equal(1, calls)
    end)
    it("on_done of a non-blocking request raises from poll(); the request is finished, the client goes on", function()
      local req = client:start("otter", { on_done = function() error("boom in on_done") end })
      local ok, err = pcall(function() while client:poll() > 0 or req.state == "running" do fake.sleep(0.01) end end)
      assert.is_false(ok)
      assert.matches("boom in on_done", err)
      assert.are.equal("done", req.state)
      assert.are.equal(0, client:poll())
      assert(client:generate("again"))
    end)
  end)

  describe("strings that are not UTF-8", function()
    it("raise before anything is sent, naming the field and the byte; every call that sends JSON", function()
      local calls = {
        { "text", 4, function() client:generate("caf\233 au lait") end },
        { "text", 1, function() client:start("\255") end },
        { "text", 2, function() client:generate("x", { systemInstruction = { parts = { { text = "a\192\128" } } } }) end },
        { "text", 1, function() client:count_tokens("\237\160\128") end }, -- a surrogate
        { "text", 1, function() client:chat {}:send("\244\144\128\128") end }, -- past U+10FFFF
        { "text", 3, function() client:batch({ "fine", "ok\226\130" }) end }, -- cut short
        { "displayName", 1, function() client:upload({ data = "x" }, { mimeType = "text/plain", displayName = "\200" }) end },
      }
      for _, case in ipairs(calls) do
        local ok, err = pcall(case[3])
        assert.is_false(ok)
        assert.matches("nanobanana: field " .. case[1] .. " is not UTF%-8 %(byte " .. case[2]
          .. " is 0x%x%x%): JSON text must be UTF%-8; convert it first", err)
      end
      fake.sleep(0.1)
      assert.are.same({}, server:requests())
    end)
    it("well-formed UTF-8 goes out byte for byte (2-, 3- and 4-byte sequences, the edges of Table 3-7)", function()
      local text = "caf\195\169 \230\151\165\230\156\172 \240\159\141\140 \194\128\223\191\224\160\128"
        .. "\237\159\191\238\128\128\240\144\128\128\244\143\191\191"
      assert(client:generate(text))
      assert.are.equal(text, server:last().body.contents[1].parts[1].text)
    end)
  end)

  describe("generate_many", function()
    it("validates every item before it starts any", function()
      local bad = {
        { "otter", { imageConfig = { aspectRatio = "7:3" } } },
        { "otter", { bogus = 1 } },
        42,
        { "otter", { output = "" } },
      }
      for _, b in ipairs(bad) do
        local items = { "a", "b", "c", "d", b }
        assert.has_error(function() client:generate_many(items, { concurrency = 2 }) end)
      end
      fake.sleep(0.2)
      assert.are.same({}, server:requests())
      local out = client:generate_many({ "a", "b" }, { concurrency = 2 })
      assert.are.equal(2, #out)
      assert.are.equal(1, #out[2].images)
    end)
  end)

  describe("temporary files", function()
    -- starts an output= request that trickles its body and returns once its
    -- temp file exists (so the check below is real)
    local function started(c, dir)
      local req = c:start("otter [[fault:trickle:4]]", { output = dir .. "/out.png" })
      local t0 = core.now()
      while #list(dir) == 0 do
        c:poll()
        assert.is_true(core.now() - t0 < 5, "no temp file appeared")
        fake.sleep(0.02)
      end
      assert.are.equal("running", req.state)
      assert.matches("^%.", list(dir)[1])
      return req
    end

    for _, how in ipairs { "cancel", "close" } do
      it(how .. "() deletes them at once", function()
        local dir = mktemp_dir()
        local c = nb.new { base_url = server.url, api_key = "test-key", retries = 0 }
        local req = started(c, dir)
        if how == "cancel" then req:cancel() else c:close() end
        assert.are.same({}, list(dir))
        c:poll()
        assert.are.equal("cancelled", req.state)
        c:close()
        fake.sh("rm -rf " .. dir)
      end)
    end
  end)
end)
