-- Options, validation and models: every programming error raises before
-- anything is sent, with a message that says what to do.
local nb = require "nanobanana"

local function raises(pattern, f, ...)
  local ok, msg = pcall(f, ...)
  assert.is_false(ok)
  assert.matches(pattern, tostring(msg))
end

describe("options", function()
  local c
  setup(function() c = nb.new { base_url = "http://127.0.0.1:9", api_key = "k", model = "gemini-2.5-flash-image" } end)

  it("exposes the version, version_info and models", function()
    assert.matches("^nanobanana %d+%.%d+%.%d+$", nb._VERSION)
    local v = nb.version_info()
    assert.are.equal(nb._VERSION, "nanobanana " .. v.version)
    assert.matches("^%d+%.%d+", v.curl)
    assert.is_string(v.ssl)
    assert.are.equal(_VERSION, v.lua)
    local m = nb.models["gemini-3.1-flash-image-preview"]
    assert.are.equal(14, #m.aspect_ratios)
    assert.are.same({ "512", "1K", "2K", "4K" }, m.image_sizes)
    assert.are.same({ width = 5504, height = 3072 }, m.pixels["4K"]["16:9"])
    assert.are.equal(3, nb.models["gemini-2.5-flash-image"].max_images)
    assert.are.same({ width = 1184, height = 864 }, nb.models["gemini-2.5-flash-image"].pixels.default["4:3"])
  end)

  it("rejects unknown option names with a did-you-mean hint", function()
    raises("unknown option 'imagConfig' in call options %(did you mean 'imageConfig'%?%)",
      c.start, c, "x", { imagConfig = {} })
    raises("unknown option 'apikey' in nb.new options %(did you mean 'api_key'%?%)", nb.new, { apikey = "k" })
    raises("option 'timeout' must be a number", nb.new, { api_key = "k", timeout = "10" })
  end)

  it("validates ratios and sizes per model", function()
    raises("gemini%-2.5%-flash%-image does not take aspectRatio \"8:1\"", c.start, c, "x", { imageConfig = { aspectRatio = "8:1" } })
    raises("does not take imageSize", c.start, c, "x", { imageConfig = { imageSize = "1K" } })
    raises("uppercase K", c.start, c, "x", { model = "gemini-3-pro-image-preview", imageConfig = { imageSize = "1k" } })
    raises("does not take imageSize \"512\"", c.start, c, "x", { model = "gemini-3-pro-image-preview", imageConfig = { imageSize = "512" } })
    raises("candidateCount must be 1", c.start, c, "x", { generationConfig = { candidateCount = 2 } })
    raises("not a thinking model", c.start, c, "x", { generationConfig = { thinkingConfig = { includeThoughts = true } } })
    raises("not both", c.start, c, "x", { imageConfig = {}, generationConfig = { imageConfig = {} } })
    raises("at most 3 reference images", c.start, c, "x", { images = {
      { data = "\137PNG\r\n\26\n", mimeType = "image/png" }, { data = "\137PNG\r\n\26\n" },
      { data = "\137PNG\r\n\26\n" }, { data = "\137PNG\r\n\26\n" } } })
    -- unknown models pass through unvalidated (no raise; the request fails at the network)
    local req = c:start("x", { model = "gemini-9-new", imageConfig = { aspectRatio = "99:1", imageSize = "8K" } })
    req:cancel()
    -- the calls that raised left no request behind
    assert.are.equal(0, c:poll())
  end)

  it("checks types of the prompt, images and base_url", function()
    raises("the prompt must be a string", c.start, c, 42)
    raises("nothing to send", c.start, c, nil, {})
    raises("cannot tell the type", nb.image, { data = "not an image" })
    raises("unknown image field 'bytes'", nb.image, { bytes = "x" })
    raises("base_url must start with http", nb.new, { api_key = "k", base_url = "ftp://x" })
    raises("auth must be", nb.new, { api_key = "k", auth = "Bearer" })
    raises("no API key", nb.new, { api_key = "  ", base_url = "http://127.0.0.1:9" })
    raises("only with auth = \"none\"", nb.new, { api_key = "k", headers = { Authorization = "Bearer x" } })
  end)

  it("picks the auth style from the host", function()
    assert.are.equal("x-goog-api-key", nb.new { api_key = "k" }.options.auth)
    assert.are.equal("x-goog-api-key", nb.new { api_key = "k", base_url = "https://eu-generativelanguage.googleapis.com" }.options.auth)
    assert.are.equal("bearer", nb.new { api_key = "k", base_url = "https://gateway.example/v1" }.options.auth)
    assert.are.equal("bearer", nb.new { api_key = "k", base_url = "https://googleapis.com.evil.example" }.options.auth)
  end)

  it("builds URLs: prefix kept, trailing slashes dropped, api_version '' drops the segment", function()
    local g = nb.new { api_key = "k", base_url = "https://gw.example/v1/" }
    assert.are.equal("https://gw.example/v1/v1beta/models/m:generateContent", g:url("m"))
    assert.are.equal("https://gw.example/v1/v1beta/tunedModels/t:generateContent", g:url("tunedModels/t"))
    local g2 = nb.new { api_key = "k", base_url = "https://gw.example/full", api_version = "" }
    assert.are.equal("https://gw.example/full/models/m:generateContent", g2:url("m"))
  end)
end)
