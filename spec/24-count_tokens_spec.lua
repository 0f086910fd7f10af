-- client:count_tokens against the fake server: the request forms the
-- Gemini API and Vertex AI take, images included, the wire answer, errors,
-- and the non-blocking twin.
local nb = require "nanobanana"
local core = require "nanobanana.core"
local fake = require "helpers.fake"

describe("count_tokens", function()
  local server, client
  fake.suite(nil, {}, function(s, c) server, client = s, c end)

  it("a prompt alone is sent as {contents}; the answer is the wire's", function()
    local r = assert(client:count_tokens("a cute baby sea otter", { model = "gemini-3-pro-image" }))
    assert.are.equal(6, r.totalTokens) -- 21 characters, 4 a token
    assert.are.same({ { modality = "TEXT", tokenCount = 6 } }, r.promptTokensDetails)
    local rec = server:last()
    assert.are.equal("/v1beta/models/gemini-3-pro-image:countTokens", rec.path)
    assert.are.same({ contents = { { role = "user", parts = { { text = "a cute baby sea otter" } } } } }, rec.body)
  end)

  it("with configuration, the generateContentRequest form with the model inside; images count", function()
    local png = assert(client:generate("a lamp", { model = "gemini-2.5-flash-image" })).images[1]
    server:reset()
    local r = assert(client:count_tokens("light it", { model = "gemini-3-pro-image", images = { png },
      imageConfig = { aspectRatio = "16:9" }, systemInstruction = "be brief" }))
    assert.are.equal(2 + 2 + 1120, r.totalTokens) -- "light it", "be brief", one image
    local body = server:last().body
    assert.are.equal("/v1beta/models/gemini-3-pro-image:countTokens", server:last().path)
    assert.are.equal("models/gemini-3-pro-image", body.generateContentRequest.model)
    assert.are.equal("be brief", body.generateContentRequest.systemInstruction.parts[1].text)
    assert.are.same({ imageConfig = { aspectRatio = "16:9" } }, body.generateContentRequest.generationConfig)
    assert.are.equal(fake.sha256(png.data), body.generateContentRequest.contents[1].parts[2].inlineData.data.sha256)
    assert.is_nil(body.contents)
  end)

  it("errors and checks as for generate; the non-blocking twin", function()
    local none, err = client:count_tokens("x", { model = "nope-model" })
    assert.is_nil(none)
    assert.are.equal(404, err.status)
    assert.has_error(function() client:count_tokens("x", { model = "gemini-2.5-flash-image", imageConfig = { aspectRatio = "8:1" } }) end)
    assert.has_error(function() client:count_tokens("x", { output = "a.png" }) end)
    local got
    local req = client:start_count_tokens("four", { on_done = function(r, e) got = { r, e } end })
    local t0 = core.now()
    while req.state == "running" and core.now() - t0 < 10 do client:poll(); fake.sleep(0.005) end
    client:poll()
    assert.are.equal(1, got[1].totalTokens)
  end)

  it("on Vertex AI: the publisher path, contents beside generationConfig", function()
    local v = nb.new { vertex = { project = "proj-1" }, access_token = "ya29.test-token", base_url = server.url }
    local r = assert(v:count_tokens("eight ch", { imageConfig = { personGeneration = "ALLOW_ALL" } }))
    assert.are.equal(2 + 0, r.totalTokens)
    local rec = server:last()
    assert.are.equal("/v1/projects/proj-1/locations/global/publishers/google/models/gemini-3.1-flash-image:countTokens", rec.path)
    assert.are.same({ imageConfig = { personGeneration = "ALLOW_ALL" } }, rec.body.generationConfig)
    assert.are.equal("eight ch", rec.body.contents[1].parts[1].text)
  end)
end)
