-- nb.models (GA ids, retirements), the default model, 404 hints; the escape
-- hatches validate = false and extra = {...}; reference counts on the turn
-- being sent. Against the fake server, on the blocking and non-blocking paths.
local nb = require "nanobanana"
local core = require "nanobanana.core"
local fake = require "helpers.fake"

local function raises(pattern, f, ...)
  local ok, msg = pcall(f, ...)
  assert.is_false(ok)
  assert.matches(pattern, tostring(msg))
end

local function drive(client, req)
  local t0 = core.now()
  while req.state == "running" do
    client:poll()
    if core.now() - t0 > 20 then error("request did not finish") end
    fake.sleep(0.005)
  end
end

describe("models", function()
  local server, client
  fake.suite(nil, {}, function(s, c) server, client = s, c end)

  it("nb.models: the seed's three ids and the two GA ids, with capabilities and retirements", function()
    local ids = {}
    for id in pairs(nb.models) do ids[#ids + 1] = id end
    table.sort(ids)
    assert.are.same({ "gemini-2.5-flash-image", "gemini-3-pro-image", "gemini-3-pro-image-preview",
                      "gemini-3.1-flash-image", "gemini-3.1-flash-image-preview" }, ids)
    local ga, pro = nb.models["gemini-3.1-flash-image"], nb.models["gemini-3-pro-image"]
    assert.are.equal("ga", ga.stage)
    assert.are.equal("2026-05-28", ga.released)
    assert.is_nil(ga.shutdown)
    assert.are.same({ "512", "1K", "2K", "4K" }, ga.image_sizes)
    assert.are.equal(14, #ga.aspect_ratios)
    assert.are.equal(14, ga.max_images)
    assert.are.same({ "1K", "2K", "4K" }, pro.image_sizes)
    assert.are.equal(10, #pro.aspect_ratios)
    assert.are.same({ width = 5504, height = 3072 }, pro.pixels["4K"]["16:9"])
    local prev = nb.models["gemini-3-pro-image-preview"]
    assert.are.equal("preview", prev.stage)
    assert.are.equal("2026-06-25", prev.shutdown)
    assert.are.equal("gemini-3-pro-image", prev.replacement)
    assert.are.equal("gemini-3.1-flash-image", nb.models["gemini-3.1-flash-image-preview"].replacement)
    assert.are.equal("2026-10-02", nb.models["gemini-2.5-flash-image"].shutdown)
  end)

  it("the default model is the GA gemini-3.1-flash-image", function()
    assert.are.equal("gemini-3.1-flash-image", client.options.model)
    assert(client:generate("an otter"))
    assert.are.equal("/v1beta/models/gemini-3.1-flash-image:generateContent", server:last().path)
  end)

  it("a 404 for a misspelled id names the closest known id (blocking)", function()
    local res, err = client:generate("x", { model = "gemini-3-pro-imag" })
    assert.is_nil(res)
    assert.are.equal("api", err.kind)
    assert.are.equal(404, err.status)
    assert.are.equal("NOT_FOUND", err.code)
    assert.are.equal("did you mean gemini-3-pro-image?", err.hint)
    assert.matches("%(did you mean gemini%-3%-pro%-image%?%)$", err.message)
    assert.are.equal("/v1beta/models/gemini-3-pro-imag:generateContent", server:last().path)
  end)

  it("a 404 for a retired id names its replacement (non-blocking)", function()
    server:post("/_nb/retire", '{"models": ["gemini-3-pro-image-preview"]}')
    local got
    local req = client:start("x", { model = "gemini-3-pro-image-preview", on_done = function(res, err) got = { res, err } end })
    drive(client, req)
    client:poll()
    assert.is_nil(got[1])
    assert.are.equal(404, got[2].status)
    assert.are.equal("gemini-3-pro-image-preview was shut down on 2026-06-25; use gemini-3-pro-image", got[2].hint)
    -- the replacement works
    assert(client:generate("x", { model = "gemini-3-pro-image" }))
  end)

  it("an unknown id far from every known one lists the current models; no hint for a live known id", function()
    local _, err = client:generate("x", { model = "imagen-9" })
    assert.are.equal("known models: gemini-3-pro-image, gemini-3.1-flash-image", err.hint)
    server:faults { { name = "500" } }
    local _, e2 = client:generate("x", { model = "gemini-3-pro-image" })
    assert.are.equal(500, e2.status)
    assert.is_nil(e2.hint)
  end)
end)

describe("escape hatches", function()
  local server

  setup(function() server = fake.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  it("validate = false on the call skips every local check; the server decides", function()
    local c = nb.new { base_url = server.url, api_key = "test-key", retries = 0, model = "gemini-2.5-flash-image" }
    raises("does not take aspectRatio \"8:1\"", c.generate, c, "x", { imageConfig = { aspectRatio = "8:1" } })
    raises("not a thinking model", c.generate, c, "x", { generationConfig = { thinkingConfig = { includeThoughts = true } } })
    assert.are.equal(0, #server:requests())
    local res, err = c:generate("x", { validate = false, imageConfig = { aspectRatio = "8:1" } })
    assert.is_nil(res)
    assert.are.equal("api", err.kind)
    assert.are.equal(400, err.status)
    assert.are.same({ aspectRatio = "8:1" }, server:last().body.generationConfig.imageConfig)
    -- and the same on the non-blocking path
    local req = c:start("x", { validate = false, imageConfig = { imageSize = "4K" } })
    drive(c, req)
    assert.are.same({ imageSize = "4K" }, server:last().body.generationConfig.imageConfig)
  end)

  it("validate = false on the client; a call may turn checks back on", function()
    local c = nb.new { base_url = server.url, api_key = "test-key", retries = 0, validate = false,
                       model = "gemini-2.5-flash-image" }
    local _, err = c:generate("x", { generationConfig = { candidateCount = 2 } })
    assert.are.equal(400, err.status)
    assert.are.equal(2, server:last().body.generationConfig.candidateCount)
    raises("candidateCount must be 1", c.generate, c, "x", { validate = true, generationConfig = { candidateCount = 2 } })
  end)

  it("extra merges fields into the request body's top level", function()
    local c = nb.new { base_url = server.url, api_key = "test-key", retries = 0 }
    assert(c:generate("x", { extra = { serviceTier = "flex", labels = { team = "art" } } }))
    local body = server:last().body
    assert.are.equal("flex", body.serviceTier)
    assert.are.same({ team = "art" }, body.labels)
    assert.are.equal("x", body.contents[1].parts[1].text)
    raises("option 'extra' must be a table", c.generate, c, "x", { extra = "flex" })
  end)

  it("reference counts look at the turn being sent, not the chat's history", function()
    local c = nb.new { base_url = server.url, api_key = "test-key", retries = 0, model = "gemini-2.5-flash-image" }
    local a = assert(c:generate("a red ball")).images[1]
    local chat = c:chat {}
    assert(chat:send("three balls", { images = { a, a, a } }))
    -- 3 more in the next turn: 6 in the history, 3 in the turn: fine
    assert(chat:send("and three more", { images = { a, a, a } }))
    assert.are.equal(3, #server:last().body.contents) -- user, model, user
    -- 4 in one turn is more than this model takes
    raises("at most 3 reference images, got 4", chat.send, chat, "four", { images = { a, a, a, a } })
  end)
end)
