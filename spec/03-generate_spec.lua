-- client:generate end to end over real HTTP against the fake server: the
-- bytes of every image and the exact requests the server received.
local nb = require "nanobanana"
local fake = require "helpers.fake"

describe("generate", function()
  local server, client
  fake.suite(nil, { model = "gemini-2.5-flash-image" }, function(s, c) server, client = s, c end)

  it("makes a PNG from a prompt on gemini-2.5-flash-image with the documented size", function()
    local res, err = client:generate("A cute baby sea otter", { imageConfig = { aspectRatio = "4:3" } })
    assert.is_nil(err)
    local rec = server:last()
    assert.are.equal(1, #res.images)
    local img = res.images[1]
    assert.are.equal(rec.images[#rec.images].sha256, fake.sha256(img.data))
    assert.are.equal("image/png", img.mimeType)
    assert.are.equal("image/png", img.declaredMimeType)
    assert.are.equal("png", img:extension())
    assert.are.equal(1184, img.width)
    assert.are.equal(864, img.height)
    assert.are.equal("\137PNG\r\n\26\n", img.data:sub(1, 8))
    assert.are.equal("STOP", res.finishReason)
    assert.are.equal("gemini-2.5-flash-image", res.modelVersion)
    assert.is_string(res.responseId)
    assert.are.equal("Here is your image.", res.text)
    assert.are.equal(0, #res.thoughts)
    assert.are.equal(1, res.attempts)
    assert.is_number(res.elapsed)
    if math.type then -- 5.3+: counts are integers, not floats
      assert.are.equal(math.type(res.usageMetadata.totalTokenCount), "integer")
    end
    assert.are.equal(res.usageMetadata.totalTokenCount, math.floor(res.usageMetadata.totalTokenCount))
    assert.are.equal("model", res.content.role)
    assert.are.equal(img, res.content.parts[2].inlineData.data)
    assert.are.equal(res.raw.candidates[1].content, res.content)
  end)

  it("sends exactly the wire body of the seed's text-to-image example", function()
    assert(client:generate("A cute baby sea otter", { imageConfig = { aspectRatio = "4:3" } }))
    local rec = server:last()
    assert.are.same({
      contents = { { role = "user", parts = { { text = "A cute baby sea otter" } } } },
      generationConfig = { imageConfig = { aspectRatio = "4:3" } },
    }, rec.body)
    assert.are.equal("/v1beta/models/gemini-2.5-flash-image:generateContent", rec.path)
    assert.are.equal("Bearer test-key", rec.headers["authorization"])
    assert.is_nil(rec.headers["x-goog-api-key"])
    assert.are.equal("application/json", rec.headers["content-type"])
    assert.matches("gzip", rec.headers["accept-encoding"])
    assert.are.equal("600", rec.headers["x-server-timeout"])
  end)

  it("Gemini 3: thought parts, signatures, JPEG bytes declared as PNG, imageSize", function()
    local res, err = client:generate("A cozy reading nook", {
      model = "gemini-3-pro-image-preview",
      imageConfig = { aspectRatio = "16:9", imageSize = "2K" },
      generationConfig = { thinkingConfig = { includeThoughts = true } },
    })
    assert.is_nil(err)
    local rec = server:last()
    local final = res.images[1]
    assert.are.equal(1, #res.images)
    assert.are.equal("image/jpeg", final.mimeType)       -- sniffed from the bytes
    assert.are.equal("image/png", final.declaredMimeType) -- what the server said
    assert.are.equal("jpg", final:extension())             -- the real type's, for file names
    assert.are.equal(2752, final.width)
    assert.are.equal(1536, final.height)
    assert.is_string(final.thoughtSignature)
    local served = {}
    for _, i in ipairs(rec.images) do served[#served + 1] = i end
    assert.are.equal(served[#served].sha256, fake.sha256(final.data))
    assert.are.equal(served[#served].thoughtSignature, final.thoughtSignature)
    -- thoughts: a text and an interim image, in order, not among the images
    assert.are.equal(2, #res.thoughts)
    assert.is_string(res.thoughts[1].text)
    assert.are.equal(served[1].sha256, fake.sha256(res.thoughts[2].data))
    assert.is_true(res.thoughts[2].thought)
    assert.are.same({ aspectRatio = "16:9", imageSize = "2K" }, rec.body.generationConfig.imageConfig)
  end)

  it("gemini-3.1-flash-image-preview takes 512 and the extreme ratios", function()
    local res = assert(client:generate("a banner", {
      model = "gemini-3.1-flash-image-preview", imageConfig = { aspectRatio = "8:1", imageSize = "512" } }))
    assert.are.equal(1536, res.images[1].width)
    assert.are.equal(192, res.images[1].height)
  end)

  it("image-to-image: paths, bytes and nb.image blobs are sent as base64 of their bytes", function()
    local first = assert(client:generate("a red square"))
    local path = os.tmpname()
    assert(first.images[1]:save(path))
    local bytes = first.images[1].data
    local res, err = client:generate("add a rainbow", {
      imageConfig = { aspectRatio = "4:3" },
      images = { path, { data = bytes, mimeType = "image/png" }, nb.image(path) },
    })
    os.remove(path)
    assert.is_nil(err)
    assert.are.equal(1, #res.images)
    local rec = server:last()
    local parts = rec.body.contents[1].parts
    assert.are.equal("add a rainbow", parts[1].text)
    local sha = fake.sha256(bytes)
    for i = 2, 4 do
      assert.are.equal("image/png", parts[i].inlineData.mimeType)
      assert.are.equal(sha, parts[i].inlineData.data.sha256)
      assert.are.equal(#bytes, parts[i].inlineData.data.bytes)
    end
  end)

  it("gateway: Bearer auth and the /v1 path prefix are kept (default model: gemini-3.1-flash-image)", function()
    local gw = nb.new { base_url = server.url .. "/v1", api_key = "test-key", auth = "bearer" }
    assert(gw:generate("A cute baby sea otter"))
    local rec = server:last()
    assert.are.equal("/v1/v1beta/models/gemini-3.1-flash-image:generateContent", rec.path)
    assert.are.equal("Bearer test-key", rec.headers["authorization"])
  end)

  it("x-goog-api-key auth and api_version = '' (segment dropped)", function()
    local c = nb.new { base_url = server.url .. "/proxy/", api_key = "test-key", auth = "x-goog-api-key", api_version = "" }
    assert(c:generate("A cute baby sea otter"))
    local rec = server:last()
    assert.are.equal("/proxy/models/gemini-3.1-flash-image:generateContent", rec.path)
    assert.are.equal("test-key", rec.headers["x-goog-api-key"])
    assert.is_nil(rec.headers["authorization"])
  end)

  it("auth = 'none' sends no credentials; headers pass through", function()
    local c = nb.new { base_url = server.url, auth = "none", headers = { ["x-goog-api-key"] = "test-key", ["X-Extra"] = "1" } }
    assert(c:generate("A cute baby sea otter"))
    local rec = server:last()
    assert.are.equal("test-key", rec.headers["x-goog-api-key"])
    assert.are.equal("1", rec.headers["x-extra"])
    assert.is_nil(rec.headers["authorization"])
  end)

  it("wire mirrors: contents, generationConfig, systemInstruction, safetySettings, tools", function()
    local res, err = client:generate("now make it blue", {
      model = "gemini-3-pro-image-preview",
      contents = { { role = "user", parts = { { text = "a house" } } } },
      generationConfig = { responseModalities = { "IMAGE" }, temperature = 0.4, seed = 7 },
      safetySettings = { { category = "HARM_CATEGORY_HARASSMENT", threshold = "BLOCK_ONLY_HIGH" } },
      tools = { { googleSearch = {} } },
    })
    assert.is_nil(err)
    local body = server:last().body
    assert.are.same({ { role = "user", parts = { { text = "a house" } } },
                      { role = "user", parts = { { text = "now make it blue" } } } }, body.contents)
    assert.are.same({ responseModalities = { "IMAGE" }, temperature = 0.4, seed = 7 }, body.generationConfig)
    assert.are.same({ { category = "HARM_CATEGORY_HARASSMENT", threshold = "BLOCK_ONLY_HIGH" } }, body.safetySettings)
    assert.are.same({ { googleSearch = {} } }, body.tools)
    assert.is_nil(res.text) -- IMAGE only
  end)

  it("replays a Gemini 3 model turn (signatures included) from res.content", function()
    local opts = { model = "gemini-3-pro-image-preview" }
    local r1 = assert(client:generate("A cozy reading nook", opts))
    local r2, err = client:generate("Make it night time", {
      model = "gemini-3-pro-image-preview",
      contents = { { role = "user", parts = { { text = "A cozy reading nook" } } }, r1.content },
    })
    assert.is_nil(err)
    assert.are.equal(1, #r2.images)
    local body = server:last().body
    local replayed = body.contents[2].parts
    local last = replayed[#replayed]
    assert.are.equal(r1.images[1].thoughtSignature, last.thoughtSignature)
    assert.are.equal(fake.sha256(r1.images[1].data), last.inlineData.data.sha256)
  end)

  it("output= streams the first final image to the file, atomically, bytes not in memory", function()
    local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    local out = dir .. "/otter.png"
    local res, err = client:generate("A cute baby sea otter", { output = out })
    assert.is_nil(err)
    local img = res.images[1]
    assert.are.equal(out, img.path)
    assert.is_nil(img.data)
    assert.are.equal(server:last().images[#server:last().images].sha256, fake.file_sha256(out))
    assert.are.equal(1024, img.width)
    -- the only file in the directory: no temp file left behind
    assert.are.equal("otter.png\n", fake.sh("ls -A " .. dir))
    -- the blob in res.content refers to the file: a replay reads it from there
    assert.are.equal(img, res.content.parts[2].inlineData.data)
    assert.are.equal(fake.read(out), img:bytes())
    fake.sh("rm -rf " .. dir)
  end)

  it("output= on failure leaves no file and keeps an existing one untouched", function()
    local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    local out = dir .. "/keep.png"
    local f = io.open(out, "wb"); f:write("old"); f:close()
    local res, err = client:generate("A cute baby sea otter [[fault:invalid_base64]]", { output = out })
    assert.is_nil(res)
    assert.are.equal("invalid_response", err.kind)
    assert.are.equal("old", fake.read(out))
    assert.are.equal("keep.png\n", fake.sh("ls -A " .. dir))
    res, err = client:generate("A cute baby sea otter [[fault:truncated]]", { output = dir .. "/new.png" })
    assert.is_nil(res)
    assert.are.equal("network", err.kind)
    assert.are.equal("keep.png\n", fake.sh("ls -A " .. dir))
    fake.sh("rm -rf " .. dir)
  end)

  it("output= over an existing big file replaces it; the old one is deleted off-thread", function()
    local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    local out = dir .. "/big.png"
    local f = io.open(out, "wb"); f:write(string.rep("x", 3 * 1024 * 1024)); f:close()
    local c = nb.new { base_url = server.url, api_key = "test-key" }
    local res = assert(c:generate("A cute baby sea otter", { output = out }))
    assert.are.equal(server:last().images[#server:last().images].sha256, fake.file_sha256(out))
    c:close() -- the engine deletes what is still queued before it goes
    assert.are.equal("big.png\n", fake.sh("ls -A " .. dir))
    assert.are.equal(out, res.images[1].path)
    fake.sh("rm -rf " .. dir)
  end)

  it("a big image in memory is a normal Lua string: exact bytes, equality, hashing", function()
    -- above 1 MiB the binding moves the decoded blob into the string in
    -- place (src/lua_nanobanana.c push_blob_bytes); 5,000,001 bytes is not a
    -- multiple of the 2 MiB move step or of a page
    local res = assert(client:generate("otter [[fault:huge:5000001]]"))
    local data = res.images[1].data
    assert.are.equal(5000001, #data)
    assert.are.equal(server:last().images[#server:last().images].sha256, fake.sha256(data))
    assert.are.equal("\137PNG\r\n\26\n", data:sub(1, 8))
    assert.are.equal("IEND", data:sub(-8, -5))
    local path = os.tmpname()
    assert.is_true(res.images[1]:save(path))
    local copy = fake.read(path) -- the same bytes, made by io.read: another object
    os.remove(path)
    assert.is_true(copy == data)
    local t = { [copy] = "found" }
    assert.are.equal("found", t[data]) -- the hash is of the real bytes, not of zeros
    t[data] = "again"
    assert.are.equal("again", t[copy])
    assert.are_not.equal(data, string.rep("\0", #data))
    -- two big responses in a row: each string stands alone
    local res2 = assert(client:generate("otter [[fault:huge:3145728]]"))
    assert.are.equal(server:last().images[#server:last().images].sha256, fake.sha256(res2.images[1].data))
    assert.are.equal(data, res.images[1].data)
  end)

  it("img:extension() follows the sniffed type; unknown bytes have none", function()
    local image = require "nanobanana.image"
    assert.are.equal("png", nb.image { data = "\137PNG\r\n\26\n" .. ("\0"):rep(32) }:extension())
    -- (JPEG bytes declared as PNG: the Gemini 3 test above)
    assert.are.equal("jpg", nb.image { data = "unsniffable", mimeType = "image/jpeg" }:extension())
    assert.are.equal("webp", nb.image { data = "RIFF\0\0\0\0WEBPVP8 " .. ("\0"):rep(32) }:extension())
    assert.is_nil(nb.image { data = "not an image", mimeType = "application/octet-stream" }:extension())
    assert.are.equal("image/jpeg", image.type_of_extension("JPEG"))
    assert.are.equal("image/jpeg", image.type_of_extension("jpg"))
    assert.are.equal("image/heif", image.type_of_extension("heif"))
    assert.is_nil(image.type_of_extension("txt"))
    assert.is_nil(image.type_of_extension(nil))
  end)

  it("image:save is atomic and reports io errors", function()
    local res = assert(client:generate("A cute baby sea otter"))
    local path = os.tmpname()
    assert.is_true(res.images[1]:save(path))
    assert.are.equal(res.images[1].data, fake.read(path))
    os.remove(path)
    local ok, err = res.images[1]:save("/nonexistent-dir/x.png")
    assert.is_nil(ok)
    assert.are.equal("io", err.kind)
    assert.matches("/nonexistent%-dir/x.png", err.message)
  end)

  it("nb.generate uses a default client from the environment", function()
    local out = fake.sh(string.format(
      "cd %s && GOOGLE_API_KEY=' test-key ' GEMINI_API_KEY=other GOOGLE_GEMINI_BASE_URL=%s lua5.4 -e '%s' 2>&1",
      os.getenv("NB_ROOT") or ".", server.url,
      [[package.path="lua/?.lua;lua/?/init.lua;"..package.path; package.cpath="build/?.so;"..package.cpath
        local nb=require"nanobanana"; local r,e=nb.generate("A cute baby sea otter"); print(r and #r.images[1].data or tostring(e))]]))
    local n = tonumber(out:match("^(%d+)"))
    assert.is_truthy(n and n > 1000, out)
    assert.are.equal("Bearer test-key", server:last().headers["authorization"])
  end)
end)
