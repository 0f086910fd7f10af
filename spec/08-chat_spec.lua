-- client:chat: multi-turn editing over real HTTP against the fake server,
-- which checks on Gemini 3 models that every model turn sent back carries
-- the thought signatures it issued. Asserts the exact contents received.
local nb = require "nanobanana"
local fake = require "helpers.fake"
local cjson = require "cjson"

local PRO = "gemini-3-pro-image-preview"

describe("chat", function()
  local server, client
  fake.suite(nil, { model = "gemini-2.5-flash-image" }, function(s, c) server, client = s, c end)

  -- the model turn as the server logged it must equal the history's, part
  -- by part (text, thought flag, signature, image bytes by SHA-256)
  local function same_turn(sent, kept)
    assert.are.equal(kept.role, sent.role)
    assert.are.equal(#kept.parts, #sent.parts)
    for i, p in ipairs(kept.parts) do
      local q = sent.parts[i]
      assert.are.equal(p.text, q.text)
      assert.are.equal(p.thought, q.thought)
      assert.are.equal(p.thoughtSignature, q.thoughtSignature)
      if p.inlineData then
        assert.are.equal(p.inlineData.mimeType, q.inlineData.mimeType)
        assert.are.equal(fake.sha256(p.inlineData.data:bytes()), q.inlineData.data.sha256)
      else
        assert.is_nil(q.inlineData)
      end
    end
  end

  it("sends the history with every turn, model turns verbatim, signatures included", function()
    local chat = client:chat { model = PRO, imageConfig = { imageSize = "2K" } }
    local r1 = assert(chat:send("A cozy reading nook"))
    assert.are.equal(2, #chat.history)
    assert.are.same({ role = "user", parts = { { text = "A cozy reading nook" } } }, chat.history[1])
    assert.are.equal(r1.content, chat.history[2])
    assert.is_string(r1.images[1].thoughtSignature)

    local r2 = assert(chat:send("Make it night time", { imageConfig = { aspectRatio = "16:9" } }))
    local body = server:last().body
    assert.are.equal(3, #body.contents)
    assert.are.same({ role = "user", parts = { { text = "A cozy reading nook" } } }, body.contents[1])
    same_turn(body.contents[2], r1.content)
    assert.are.same({ role = "user", parts = { { text = "Make it night time" } } }, body.contents[3])
    -- the chat's imageConfig and the send's are merged field by field
    assert.are.same({ imageConfig = { imageSize = "2K", aspectRatio = "16:9" } }, body.generationConfig)
    assert.are.equal(2752, r2.images[1].width)
    assert.are.equal(1536, r2.images[1].height)
    assert.are.equal(4, #chat.history)
    assert.are.equal(r2.content, chat.history[4])
  end)

  it("imageConfig merges the same wherever chat and send put it", function()
    local cases = {
      { { generationConfig = { imageConfig = { imageSize = "2K" }, temperature = 0.5 } },
        { imageConfig = { aspectRatio = "16:9" } } },
      { { imageConfig = { imageSize = "2K" } },
        { generationConfig = { imageConfig = { aspectRatio = "16:9" }, temperature = 0.5 } } },
    }
    for _, case in ipairs(cases) do
      local defaults, send = case[1], case[2]
      defaults.model = PRO
      local chat = client:chat(defaults)
      assert(chat:send("A lighthouse", send))
      assert.are.same({ imageConfig = { imageSize = "2K", aspectRatio = "16:9" }, temperature = 0.5 },
        server:last().body.generationConfig)
    end
  end)

  it("a failed send leaves the history as it was; sending again works", function()
    local chat = client:chat { model = PRO }
    assert(chat:send("A lighthouse"))
    server:faults { { name = "500" } }
    local res, err = chat:send("Add a storm")
    assert.is_nil(res)
    assert.are.equal("api", err.kind)
    assert.are.equal(500, err.status)
    assert.are.equal(2, #chat.history)
    local r = assert(chat:send("Add a storm"))
    assert.are.equal(3, #server:last().body.contents)
    assert.are.equal(4, #chat.history)
    assert.are.equal(r.content, chat.history[4])
    -- an unreadable reference image: nil, err of kind io, history untouched
    local res2, err2 = chat:send("Use this", { images = { "/nonexistent/ref.png" } })
    assert.is_nil(res2)
    assert.are.equal("io", err2.kind)
    assert.are.equal(4, #chat.history)
  end)

  it("to_json and chat{history=} rebuild the conversation; the server accepts its signatures", function()
    local ref = os.tmpname()
    assert(assert(client:generate("a small lamp")).images[1]:save(ref))
    local chat = client:chat { model = PRO }
    assert(chat:send("A cozy reading nook", { images = { ref } }))
    assert(chat:send("Make it night time"))
    local text = assert(chat:to_json())
    local wire = cjson.decode(text)
    assert.are.equal(4, #wire.contents)
    -- images are base64 text in the wire form, the same bytes as the blobs
    local sent_ref = wire.contents[1].parts[2].inlineData
    assert.are.equal("image/png", sent_ref.mimeType)
    assert.are.equal(fake.file_sha256(ref), fake.sha256(nb.image { data = require("nanobanana.core").b64decode(sent_ref.data) }.data))

    local again = client:chat { model = PRO, history = text }
    assert.are.equal(4, #again.history)
    assert.is_true(nb.image(again.history[1].parts[2].inlineData.data) == again.history[1].parts[2].inlineData.data)
    local r = assert(again:send("Add a cat"))
    local body = server:last().body
    assert.are.equal(5, #body.contents)
    for i = 1, 4 do
      if chat.history[i].role == "model" then same_turn(body.contents[i], chat.history[i]) end
    end
    assert.are.equal(fake.file_sha256(ref), body.contents[1].parts[2].inlineData.data.sha256)
    assert.are.equal(6, #again.history)
    assert.are.equal(r.content, again.history[6])
    -- a wire table works as well as the text
    assert.are.equal(4, #client:chat { model = PRO, history = wire.contents }.history)
    os.remove(ref)
  end)

  it("a model turn whose signature was dropped is refused by the server (the check is real)", function()
    local chat = client:chat { model = PRO }
    assert(chat:send("A cozy reading nook"))
    for _, p in ipairs(chat.history[2].parts) do p.thoughtSignature = nil end
    local res, err = chat:send("Make it night time")
    assert.is_nil(res)
    assert.are.equal("api", err.kind)
    assert.are.equal(400, err.status)
    assert.matches("thought_signature", err.message)
  end)

  it("start/poll: the exchange is in the history when on_done fires; undo forgets it", function()
    local chat = client:chat { model = "gemini-2.5-flash-image" }
    local seen
    local req = chat:start("A red kite", { on_done = function(res) seen = { res = res, n = #chat.history } end })
    assert.has_error(function() chat:send("another") end,
      "nanobanana: this chat is still sending; wait for it (one send at a time)")
    while not seen do client:poll(); fake.sleep(0.01) end
    assert.are.equal("done", req.state)
    assert.are.equal(2, seen.n)
    assert.are.equal(seen.res.content, chat.history[2])
    assert.is_true(chat:undo())
    assert.are.equal(0, #chat.history)
    assert.is_false(chat:undo())
  end)

  it("output= in a send: the model turn's image is the file, replayed from it", function()
    local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    local chat = client:chat { model = PRO }
    local r1 = assert(chat:send("A cozy reading nook", { output = dir .. "/nook.png" }))
    assert.are.equal(dir .. "/nook.png", r1.images[1].path)
    assert.is_nil(r1.images[1].data)
    assert(chat:send("Make it night time"))
    local sent = server:last().body.contents[2].parts
    assert.are.equal(fake.file_sha256(dir .. "/nook.png"), sent[#sent].inlineData.data.sha256)
    fake.sh("rm -rf " .. dir)
  end)

  it("raises on programming errors", function()
    assert.has_error(function() client:chat { imagConfig = {} } end,
      "nanobanana: unknown option 'imagConfig' in chat options (did you mean 'imageConfig'?)")
    assert.has_error(function() client:chat { history = "{not json" } end)
    assert.has_error(function() client:chat { history = { { role = "robot", parts = {} } } } end,
      'nanobanana: history[1].role must be "user" or "model" (got robot)')
    local chat = client:chat {}
    assert.has_error(function() chat:send("x", { contents = {} }) end,
      "nanobanana: a chat keeps its own contents")
    assert.has_error(function() chat:send() end, "nanobanana: nothing to send: give a prompt or images")
    assert.are.equal(0, #chat.history)
  end)
end)
