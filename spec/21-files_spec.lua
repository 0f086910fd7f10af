-- The Files API end to end against the fake server: the resumable protocol
-- (exact requests), resume after dropped and lost chunks, progress, a
-- gateway's path prefix, file/files/delete_file, files as references, the
-- non-blocking twin.
local nb = require "nanobanana"
local core = require "nanobanana.core"
local fake = require "helpers.fake"

local MiB = 1024 * 1024

local function raises(pattern, f, ...)
  local ok, msg = pcall(f, ...)
  assert.is_false(ok)
  assert.matches(pattern, tostring(msg))
end

local function hex_to_b64(hex)
  return core.b64encode((hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)))
end

-- a file of n pseudo-random bytes (not compressible, not an image)
local function make_file(n)
  local path = os.tmpname()
  fake.sh(string.format("head -c %d /dev/urandom > %s", n, path))
  return path
end

local function uploads(server)
  local out = {}
  for _, r in ipairs(server:requests()) do
    if r.service == "files" then out[#out + 1] = r end
  end
  return out
end

describe("files", function()
  local server, client, big, size

  setup(function()
    server = fake.start()
    client = nb.new { base_url = server.url, api_key = "test-key", retries = 2, retry_base_delay = 0.01 }
    size = 3 * 8 * MiB + 12345
    big = make_file(size)
  end)
  teardown(function()
    os.remove(big)
    server:stop()
  end)
  before_each(function() server:reset() end)

  it("upload: start, then 8 MiB chunks at their offsets, the last one finalizing; the file's wire fields", function()
    local file, err = client:upload(big, { mimeType = "application/octet-stream", displayName = "big one" })
    assert.is_nil(err)
    assert.matches("^files/[a-z0-9]+$", file.name)
    assert.are.equal(size, file.sizeBytes)
    assert.are.equal("application/octet-stream", file.mimeType)
    assert.are.equal("big one", file.displayName)
    assert.are.equal("ACTIVE", file.state)
    assert.are.equal(server.url .. "/v1beta/files/" .. file.name:sub(7), file.uri)
    assert.are.equal(hex_to_b64(fake.file_sha256(big)), file.sha256Hash)
    assert.is_string(file.expirationTime)
    local reqs = uploads(server)
    assert.are.equal(5, #reqs)
    local start = reqs[1]
    assert.are.equal("/upload/v1beta/files", start.path)
    assert.are.equal("resumable", start.headers["x-goog-upload-protocol"])
    assert.are.equal("start", start.headers["x-goog-upload-command"])
    assert.are.equal(tostring(size), start.headers["x-goog-upload-header-content-length"])
    assert.are.equal("application/octet-stream", start.headers["x-goog-upload-header-content-type"])
    assert.are.equal("Bearer test-key", start.headers["authorization"]) -- (127.0.0.1 is not a Google host)
    assert.are.same({ file = { displayName = "big one", mimeType = "application/octet-stream",
                               sizeBytes = tostring(size) } }, start.body)
    for i = 2, 5 do
      local r = reqs[i]
      assert.are.equal("/upload/v1beta/files", r.path)
      assert.is_string(r.query.upload_id)
      assert.are.equal(tostring((i - 2) * 8 * MiB), r.headers["x-goog-upload-offset"])
      assert.are.equal(i == 5 and "upload, finalize" or "upload", r.headers["x-goog-upload-command"])
      assert.are.equal(i == 5 and 12345 or 8 * MiB, r.content_length)
      assert.are.equal(200, r.status)
    end
  end)

  it("a chunk dropped mid-body and a chunk whose answer is lost: resumed from the offset the server reports", function()
    server:faults { { name = "upload_drop", arg = "1000000" }, { name = "upload_lose", arg = "3000000" } }
    local file, err = client:upload(big, { mimeType = "application/octet-stream" })
    assert.is_nil(err)
    assert.are.equal(hex_to_b64(fake.file_sha256(big)), file.sha256Hash)
    assert.are.equal(size, file.sizeBytes)
    local reqs = uploads(server)
    local queries, offsets, lost_at = 0, {}, nil
    for _, r in ipairs(reqs) do
      if r.headers["x-goog-upload-command"] == "query" then queries = queries + 1 end
      if r.fault == "upload_lose" then lost_at = tonumber(r.headers["x-goog-upload-offset"]) end
      if r.status == 200 and r.headers["x-goog-upload-offset"] then offsets[#offsets + 1] = tonumber(r.headers["x-goog-upload-offset"]) end
    end
    assert.are.equal(2, queries)
    -- after the drop (1,000,000 bytes kept) the next chunk starts there; after
    -- the loss (3,000,000 more kept), the chunks go on from 4,000,000
    assert.are.equal(1000000, lost_at)
    assert.are.same({ 4000000, 4000000 + 8 * MiB, 4000000 + 16 * MiB }, offsets)
  end)

  it("interrupted more often than retries allow: the error, and no file", function()
    server:faults { { name = "upload_lose" }, { name = "upload_lose" } }
    local c = nb.new { base_url = server.url, api_key = "test-key", retries = 1, retry_base_delay = 0.01 }
    local file, err = c:upload(big, { mimeType = "application/octet-stream" })
    assert.is_nil(file)
    assert.are.equal("api", err.kind)
    assert.are.equal(503, err.status)
    local list = assert(c:files())
    assert.are.equal(0, #list)
  end)

  it("progress counts the whole file", function()
    local seen = {}
    assert(client:upload(big, { mimeType = "application/octet-stream", chunk_size = 4 * MiB,
      on_progress = function(p) seen[#seen + 1] = { p.uploaded, p.upload_total } end }))
    assert.is_true(#seen >= 2)
    local last = 0
    for _, s in ipairs(seen) do
      assert.are.equal(size, s[2])
      assert.is_true(s[1] >= last and s[1] <= size)
      last = s[1]
    end
    assert.is_true(last > 8 * MiB)
  end)

  it("start_upload returns at once; on_done gets the file (non-blocking)", function()
    local got
    local t0 = core.now()
    local req = client:start_upload(big, { mimeType = "application/octet-stream",
      on_done = function(f, e) got = { f, e } end })
    assert.is_true(core.now() - t0 < 0.5)
    assert.are.equal("running", req.state)
    while req.state == "running" do
      client:poll()
      fake.sleep(0.005)
    end
    client:poll()
    assert.are.equal("done", req.state)
    assert.are.equal(size, got[1].sizeBytes)
    assert.are.equal(got[1], (req:result()))
  end)

  it("a gateway's path prefix is kept on the upload URL the server gives", function()
    local gw = nb.new { base_url = server.url .. "/gw", api_key = "test-key", auth = "bearer" }
    local small = make_file(1000)
    local file = assert(gw:upload(small, { mimeType = "text/plain" }))
    os.remove(small)
    local reqs = uploads(server)
    assert.are.equal(2, #reqs)
    assert.are.equal("/gw/upload/v1beta/files", reqs[1].path)
    -- the server answered https://upload.gateway.invalid/upload/v1beta/files?...: sent to the gateway, prefix kept
    assert.are.equal("/gw/upload/v1beta/files", reqs[2].path)
    assert.are.equal("Bearer test-key", reqs[2].headers["authorization"])
    assert.are.equal(server.url .. "/gw/v1beta/files/" .. file.name:sub(7), file.uri)
  end)

  it("file, files (pages), delete_file", function()
    local a = assert(client:upload({ data = "hello" }, { mimeType = "text/plain", displayName = "a" }))
    local b = assert(client:upload({ data = "world" }, { mimeType = "text/plain", displayName = "b" }))
    local got = assert(client:file(a.name))
    assert.are.equal(a.name, got.name)
    assert.are.equal(5, got.sizeBytes)
    assert.are.equal(a.name, assert(client:file(a.name:sub(7))).name)
    local page1, token = assert(client:files { page_size = 1 })
    assert.are.equal(1, #page1)
    assert.is_string(token)
    assert.are.equal(token, page1.next_page_token)
    local page2, token2 = assert(client:files { page_size = 1, page_token = token })
    assert.are.equal(1, #page2)
    assert.is_nil(token2)
    local names = { page1[1].name, page2[1].name }
    table.sort(names)
    local want = { a.name, b.name }
    table.sort(want)
    assert.are.same(want, names)
    assert.matches("pageSize=1", server:last().path .. "?" .. "pageSize=" .. server:last().query.pageSize)
    assert.is_true(client:delete_file(a))
    assert.are.equal("DELETE", server:last().method)
    local none, err = client:file(a.name)
    assert.is_nil(none)
    assert.are.equal("api", err.kind)
    assert.are.equal(403, err.status)
    assert.are.equal("PERMISSION_DENIED", err.code)
    raises("a file name is a string", client.file, client, 42)
  end)

  it("file tables and {fileUri=, mimeType=} go where images go, sent as fileData", function()
    local png = assert(client:generate("a lamp", { model = "gemini-2.5-flash-image" })).images[1]
    local f = assert(client:upload(png))
    assert.are.equal("image/png", f.mimeType) -- sniffed
    assert(client:generate("light it", { model = "gemini-2.5-flash-image",
      images = { f, { fileUri = f.uri, mimeType = "image/png" } } }))
    local parts = server:last().body.contents[1].parts
    assert.are.same({ fileData = { mimeType = "image/png", fileUri = f.uri } }, parts[2])
    assert.are.same({ fileData = { mimeType = "image/png", fileUri = f.uri } }, parts[3])
    -- a deleted file: the server refuses the reference
    assert(client:delete_file(f))
    local _, err = client:generate("again", { model = "gemini-2.5-flash-image", images = { f } })
    assert.are.equal(403, err.status)
    raises("unknown file reference field 'uri'", client.generate, client, "x", { images = { { fileUri = "https://x/y", uri = 1 } } })
  end)

  it("sources and their errors: bytes, images, a missing path (io), a MIME type that cannot be told (raise)", function()
    local file = assert(client:upload({ data = "plain text" }, { mimeType = "text/plain" }))
    assert.are.equal(10, file.sizeBytes)
    assert.are.equal(1, #uploads(server) - 1) -- one chunk, finalizing
    local none, err = client:upload("/nonexistent/x.png")
    assert.is_nil(none)
    assert.are.equal("io", err.kind)
    raises("pass mimeType", client.upload, client, { data = "not an image" })
    local vc = nb.new { vertex = { project = "p" }, access_token = "ya29.test-token", base_url = server.url }
    raises("not available on Vertex AI", vc.upload, vc, { data = "x" }, { mimeType = "text/plain" })
  end)
end)
