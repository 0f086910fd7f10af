-- Sizes past 32 bits: a reference image of more than 4 GiB (a sparse file)
-- is measured and announced to the server with its exact length. On a
-- 32-bit build (scripts/test.d/42-i386.sh) this needs a 64-bit off_t and
-- 64-bit base64 arithmetic; on a 64-bit build it holds as well.
local nb = require "nanobanana"
local fake = require "helpers.fake"

local function b64len(n) return math.floor(n / 3) * 4 + (n % 3 ~= 0 and 4 or 0) end

-- a 64x48 PNG header (signature + IHDR), then the file is extended to size
local function sparse_png(path, size)
  local ihdr = "\0\0\0\13IHDR\0\0\0\64\0\0\0\48\8\2\0\0\0" .. "\0\0\0\0"
  local f = assert(io.open(path, "wb"))
  f:write("\137PNG\r\n\26\n", ihdr)
  f:close()
  assert(os.execute(string.format("truncate -s %.0f '%s'", size, path)))
end

describe("sizes past 32 bits", function()
  local dir, server
  local BIG = 5 * 2^30 + 1 -- more than 4 GiB, not a multiple of 3
  setup(function()
    dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    sparse_png(dir .. "/big.png", BIG)
    sparse_png(dir .. "/small.png", 1000)
    server = fake.start()
  end)
  teardown(function()
    server:stop()
    fake.sh("rm -rf '" .. dir .. "'")
  end)

  it("nb.image measures a file of more than 4 GiB", function()
    local img = assert(nb.image(dir .. "/big.png"))
    assert.are.equal("image/png", img.mimeType)
    assert.are.equal(64, img.width)
    assert.are.equal(48, img.height)
    assert.are.equal(BIG, img.size)
  end)

  -- the request's upload_total (body bytes announced), read on the first poll
  -- after start; tried again in the unlikely case the answer came first
  local function upload_total(client, path)
    for _ = 1, 10 do
      local req = client:start("edit", { images = { path } })
      client:poll()
      local total = req.progress.upload_total
      local res, err = req:wait(60)
      if total > 0 then return total, res, err end
    end
    error("no poll saw the request running")
  end

  it("the upload length of such a reference is exact (base64 of every byte)", function()
    local client = nb.new { api_key = "test-key", base_url = server.url, retries = 0 }
    local small = upload_total(client, dir .. "/small.png")
    local big, res, err = upload_total(client, dir .. "/big.png")
    -- the same request but for the file: the difference is the base64 lengths'
    assert.are.equal(b64len(BIG) - b64len(1000), big - small)
    -- the fake server, like Google, refuses a payload past its limit at once
    -- (400 INVALID_ARGUMENT) and closes without reading 7 GB: the client
    -- reads that answer, or (when the reset comes first) fails with network
    assert.is_nil(res)
    if err.kind == "api" then
      assert.are.equal(400, err.status)
      assert.matches("payload size exceeds the limit", err.message)
    else
      assert.are.equal("network", err.kind)
    end
    client:close()
  end)
end)
