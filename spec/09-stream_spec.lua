-- client:stream / stream = true: streamGenerateContent?alt=sse over real
-- HTTP against the fake server (one event per part, CRLF framing). Asserts
-- the events in order, the exact image bytes, the merged result, and what
-- is retried and what is not.
local nb = require "nanobanana"
local fake = require "helpers.fake"

local PRO = "gemini-3-pro-image-preview"
local THOUGHTS = { thinkingConfig = { includeThoughts = true } }

describe("stream", function()
  local server, client
  fake.suite(nil, {}, function(s, c) server, client = s, c end)

  local function served_shas()
    local out = {}
    for _, im in ipairs(server:last().images) do out[#out + 1] = im.sha256 end
    return out
  end

  it("delivers every part as an event, in order, and returns the merged result", function()
    local events = {}
    local res, err = client:stream("A cozy reading nook", { model = PRO, generationConfig = THOUGHTS },
      function(ev) events[#events + 1] = ev end)
    assert.is_nil(err)
    local rec = server:last()
    assert.are.equal("/v1beta/models/" .. PRO .. ":streamGenerateContent", rec.path)
    assert.are.same({ alt = "sse" }, rec.query)
    assert.is_true(rec.stream)
    -- thought text, thought image, text, final image
    assert.are.same({ "thought", "thought", "text", "image" },
      { events[1].type, events[2].type, events[3].type, events[4].type })
    assert.are.equal(4, #events)
    assert.is_string(events[1].text)
    assert.are.equal("Here is your image.", events[3].text)
    local shas = served_shas()
    assert.are.equal(shas[1], fake.sha256(events[2].image.data))
    assert.are.equal(shas[2], fake.sha256(events[4].image.data))
    assert.is_true(events[2].image.thought)
    assert.are.equal(events[4].part.inlineData.data, events[4].image)

    assert.are.equal(4, res.chunks)
    assert.are.equal(1, #res.images)
    assert.are.equal(events[4].image, res.images[1])
    assert.are.equal(2, #res.thoughts)
    assert.are.equal("Here is your image.", res.text)
    assert.are.equal("STOP", res.finishReason)
    assert.is_number(res.usageMetadata.candidatesTokenCount) -- only the last event has it
    assert.are.equal("model", res.content.role)
    assert.are.equal(4, #res.content.parts)
    assert.is_string(res.content.parts[3].thoughtSignature)
    assert.are.equal(res.images[1].thoughtSignature, res.content.parts[4].thoughtSignature)
  end)

  it("events fire while the stream is still running", function()
    -- the server sends ~1 KB (the first events), then pauses 3 s
    local seen, state_then
    local req = client:start("A lighthouse [[fault:stall:3]]", {
      model = PRO, generationConfig = THOUGHTS,
      on_event = function(ev) if not seen then seen = ev; end end,
    })
    while not seen and req.state == "running" do client:poll(); fake.sleep(0.01) end
    state_then = req.state
    assert.are.equal("thought", seen.type)
    assert.are.equal("running", state_then)
    local res = assert(req:wait())
    assert.are.equal(1, #res.images)
  end)

  it("cancel mid-stream: on_done gets cancelled, no event fires after it", function()
    local types, done_err = {}, nil
    local req = client:start("A lighthouse [[fault:stall:3]]", {
      model = PRO, generationConfig = THOUGHTS,
      on_event = function(ev) types[#types + 1] = ev.type end,
      on_done = function(_, err) done_err = err end,
    })
    while #types == 0 and req.state == "running" do client:poll(); fake.sleep(0.01) end
    local before = #types
    req:cancel()
    assert.are.equal("cancelled", req.state)
    client:poll()
    assert.are.equal("cancelled", done_err.kind)
    assert.are.equal(before, #types)
    assert.are.equal(0, client:poll())
  end)

  it("output=: the final image streams to the file, thoughts stay in memory, no temp file left", function()
    local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    local out = dir .. "/nook.jpg"
    local res = assert(client:stream("A cozy reading nook",
      { model = PRO, generationConfig = THOUGHTS, output = out }))
    local shas = served_shas()
    assert.are.equal(out, res.images[1].path)
    assert.is_nil(res.images[1].data)
    assert.are.equal(shas[2], fake.file_sha256(out))
    assert.are.equal(shas[1], fake.sha256(res.thoughts[2].data))
    assert.are.equal("nook.jpg\n", fake.sh("ls -A " .. dir))
    -- a stream that fails leaves no file either
    local r2, e2 = client:stream("A cozy reading nook [[fault:error_in_200]]",
      { model = PRO, output = dir .. "/fail.jpg" })
    assert.is_nil(r2)
    assert.are.equal("api", e2.kind)
    assert.are.equal("nook.jpg\n", fake.sh("ls -A " .. dir))
    fake.sh("rm -rf " .. dir)
  end)

  it("an error event ends the call with kind api; the parts before it were delivered; no retry", function()
    local c = nb.new { base_url = server.url, api_key = "test-key", retries = 2, retry_base_delay = 0.01 }
    local types = {}
    local res, err = c:stream("A kite [[fault:error_in_200:503]]", { model = PRO },
      function(ev) types[#types + 1] = ev.type end)
    assert.is_nil(res)
    assert.are.equal("api", err.kind)
    assert.are.equal(503, err.status)
    assert.are.equal("UNAVAILABLE", err.code)
    assert.are.equal(1, err.attempts) -- an event had arrived: a retry would repeat it
    assert.are.equal(1, #server:requests())
    assert.are.same({ "text" }, types)
    c:close()
  end)

  it("an HTTP error before the stream starts is retried", function()
    local c = nb.new { base_url = server.url, api_key = "test-key", retries = 1, retry_base_delay = 0.01 }
    server:faults { { name = "503" } }
    local res = assert(c:stream("A kite", {}))
    assert.are.equal(2, res.attempts)
    assert.are.equal(2, #server:requests())
    c:close()
  end)

  it("broken streams: invalid JSON in an event, a cut stream", function()
    local res, err = client:stream("A kite [[fault:invalid_json]]", { model = PRO })
    assert.is_nil(res)
    assert.are.equal("invalid_response", err.kind)
    assert.matches("^stream event %d+: ", err.message)
    res, err = client:stream("A kite [[fault:truncated:600]]", { model = PRO })
    assert.is_nil(res)
    assert.are.equal("network", err.kind)
  end)

  it("a gateway that answers a plain JSON array instead of SSE works the same", function()
    local events = {}
    local res = assert(client:stream("A cozy nook [[fault:no_sse]]", { model = PRO, generationConfig = THOUGHTS },
      function(ev) events[#events + 1] = ev.type end))
    assert.are.same({ "thought", "thought", "text", "image" }, events)
    assert.are.equal(4, res.chunks)
    assert.are.equal(served_shas()[2], fake.sha256(res.images[1].data))
  end)

  it("through gzip (the server flushes each event)", function()
    local gz = fake.start { "--gzip" }
    local c = nb.new { base_url = gz.url, api_key = "test-key", retries = 0 }
    local n = 0
    local res = assert(c:stream("A cozy nook", { model = PRO, generationConfig = THOUGHTS },
      function() n = n + 1 end))
    assert.are.equal(4, n)
    assert.matches("gzip", gz:last().headers["accept-encoding"])
    local shas = {}
    for _, im in ipairs(gz:last().images) do shas[#shas + 1] = im.sha256 end
    assert.are.equal(shas[2], fake.sha256(res.images[1].data))
    c:close()
    gz:stop()
  end)

  it("a chat can stream; its next turn replays the merged model turn", function()
    local chat = client:chat { model = PRO }
    local n = 0
    assert(chat:send("A cozy reading nook", { on_event = function() n = n + 1 end }))
    assert.are.equal(2, n)
    assert.are.equal(2, #chat.history)
    assert(chat:send("Make it night time")) -- the server checks the signatures
    assert.are.equal(3, #server:last().body.contents)
  end)

  it("raises on misuse", function()
    assert.has_error(function() client:start("x", { stream = false, on_event = print }) end,
      "nanobanana: on_event needs stream = true")
    assert.has_error(function() client:stream("x", {}, 42) end,
      "nanobanana: stream(prompt, opts, on_event): on_event must be a function")
  end)
end)
