-- The Batch API end to end against the fake server (jobs advance every
-- 100 ms there): inline and JSONL-file input, the lifecycle, results in
-- input order with generate's result objects and error kinds, output_dir,
-- FAILED / EXPIRED / CANCELLED jobs, an item error inside a batch.
local nb = require "nanobanana"
local fake = require "helpers.fake"

local function raises(pattern, f, ...)
  local ok, msg = pcall(f, ...)
  assert.is_false(ok)
  assert.matches(pattern, tostring(msg))
end

local function collect(job, opts)
  local out = {}
  for i, res, err in job:results(opts) do out[#out + 1] = { i = i, res = res, err = err } end
  return out
end

describe("batch", function()
  local server, client
  fake.suite({ "--batch-step-ms", "100" }, { model = "gemini-2.5-flash-image" }, function(s, c) server, client = s, c end)

  local ITEMS = { "a cat", { "a dog", { imageConfig = { aspectRatio = "16:9" } } }, "oops [[fault:429:0.1]]",
                  "shy [[fault:image_safety]]" }

  it("inline: the job's lifecycle, and results in input order like generate's", function()
    local job = assert(client:batch(ITEMS, { display_name = "inline test" }))
    assert.matches("^batches/", job.name)
    assert.are.equal("BATCH_STATE_PENDING", job.state)
    assert.are.equal("inline test", job.display_name)
    assert.are.same({ requestCount = "4", pendingRequestCount = "4" }, job.stats)
    local create = server:last()
    assert.are.equal("/v1beta/models/gemini-2.5-flash-image:batchGenerateContent", create.path)
    local reqs = create.body.batch.inputConfig.requests.requests
    assert.are.equal(4, #reqs)
    assert.are.same({ key = "1" }, reqs[1].metadata)
    assert.are.same({ { role = "user", parts = { { text = "a cat" } } } }, reqs[1].request.contents)
    assert.are.same({ imageConfig = { aspectRatio = "16:9" } }, reqs[2].request.generationConfig)
    local states = {}
    assert.are.equal(job, job:wait { interval = 0.03, on_state = function(j) states[#states + 1] = j.state end })
    -- (a slow run, e.g. under valgrind, may look only after RUNNING is over)
    assert.are.equal("BATCH_STATE_SUCCEEDED", states[#states])
    assert.is_true(#states == 1 or (#states == 2 and states[1] == "BATCH_STATE_RUNNING"))
    assert.are.same({ requestCount = "4", successfulRequestCount = "3", failedRequestCount = "1" }, job.stats)
    local out = collect(job)
    assert.are.equal(4, #out)
    for i, o in ipairs(out) do assert.are.equal(i, o.i) end
    assert.are.equal("image/png", out[1].res.images[1].mimeType)
    assert.are.equal(1024, out[1].res.images[1].width)
    assert.are.equal(1344, out[2].res.images[1].width)
    assert.is_nil(out[3].res)
    assert.are.equal("api", out[3].err.kind)
    assert.are.equal(429, out[3].err.status)
    assert.are.equal("RESOURCE_EXHAUSTED", out[3].err.code)
    assert.are.equal("blocked", out[4].err.kind)
    assert.are.equal("IMAGE_SAFETY", out[4].err.finishReason)
  end)

  it("file input: the JSONL goes up through the Files API; results stream, one file per image", function()
    local job = assert(client:batch(ITEMS, { input = "file", display_name = "file test" }))
    local reqs = server:requests()
    assert.are.equal("start", reqs[1].headers["x-goog-upload-command"])
    assert.are.equal("application/jsonl", reqs[1].headers["x-goog-upload-header-content-type"])
    local create = reqs[#reqs]
    assert.matches("^files/", create.body.batch.inputConfig.fileName)
    assert(job:wait { interval = 0.03 })
    assert.matches("^files/batch%-", job.output.responsesFile)
    local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    local out = collect(job, { output_dir = dir })
    assert.are.equal(4, #out)
    assert.are.equal(dir .. "/1.png", out[1].res.images[1].path)
    assert.are.equal(dir .. "/2.png", out[2].res.images[1].path)
    assert.are.equal(1344, out[2].res.images[1].width)
    assert.are.equal("api", out[3].err.kind)
    assert.are.equal("blocked", out[4].err.kind)
    assert.matches(":download$", server:last().path)
    assert.are.equal("media", server:last().query.alt)
    -- only the two final images are left in the directory: no temporary file
    assert.are.equal("1.png\n2.png\n", fake.sh("ls " .. dir))
    local f = io.open(dir .. "/1.png", "rb")
    assert.are.equal("\137PNG", f:read(4))
    f:close()
    fake.sh("rm -rf " .. dir)
  end)

  it("a slow results loop holds RESULTS_QUEUE_BYTES, not the whole file: the download pauses (not a stall)", function()
    local core = require "nanobanana.core"
    local batch = require "nanobanana.batch"
    local items = {}
    for i = 1, 24 do items[i] = "noise " .. i .. " [[fault:huge:1M]]" end
    local job = assert(client:batch(items, { input = "file" }))
    assert(job:wait { interval = 0.03 })
    local saved = batch.RESULTS_QUEUE_BYTES
    batch.RESULTS_QUEUE_BYTES = 3 * 1024 * 1024
    -- a client whose stall_timeout and timeout are far shorter than the loop's pause
    -- (results have no whole-download timeout of their own unless given one)
    local k = os.getenv("NB_SLOW") and 3 or 1 -- (sanitizer and valgrind runs: everything 3 x longer)
    local slow = nb.new { base_url = server.url, api_key = "test-key", retries = 0, stall_timeout = 0.4 * k,
                          timeout = 0.8 * k }
    local sjob = assert(slow:batch_job(job.name))
    collectgarbage(); collectgarbage()
    local _, base = core.blob_stats() -- (blobs are counted process-wide: earlier specs' too)
    local n, held, sizes = 0, nil, {}
    local ok, err = pcall(function()
      for i, res, rerr in sjob:results() do
        assert(res, tostring(rerr))
        n = n + 1
        assert.are.equal(n, i)
        sizes[#sizes + 1] = res.images[1].size
        if n == 1 then
          fake.sleep(1.2 * k) -- the loop is slow: the worker goes on meanwhile, up to the cap
          collectgarbage(); collectgarbage()
          local _, bytes = core.blob_stats()
          held = bytes - base
        end
      end
    end)
    batch.RESULTS_QUEUE_BYTES = saved
    assert(ok, err)
    assert.are.equal(24, n)
    for i = 1, 24 do assert.is_true(sizes[i] >= 1024 * 1024, "item " .. i .. ": " .. sizes[i]) end
    -- of the 24 MiB of images: the 3 MiB cap and the event that went over it,
    -- the one on its way when receiving paused, and the item taken (1 MiB each)
    assert.is_true(held <= 7 * 1024 * 1024, "blobs held while the loop slept: " .. tostring(held))
    -- a timeout given to results() bounds the whole download, pauses included
    batch.RESULTS_QUEUE_BYTES = 3 * 1024 * 1024
    local kinds = {}
    for _, res, rerr in sjob:results { timeout = 0.5 * k } do
      if #kinds == 0 then fake.sleep(1.2 * k) end
      kinds[#kinds + 1] = res and "ok" or rerr.kind
    end
    batch.RESULTS_QUEUE_BYTES = saved
    assert.are.equal(24, #kinds)
    assert.are.equal("ok", kinds[1])
    assert.are.equal("timeout", kinds[24])
    slow:close()
  end)

  -- the generic for's closing value is Lua 5.4's (5.1-5.3 leave the download paused until close())
  local closing = _VERSION == "Lua 5.4" and it or pending
  closing("a break out of the results loop ends the download at once (Lua 5.4: the loop's closing value)", function()
    local items = {}
    for i = 1, 12 do items[i] = "noise " .. i .. " [[fault:huge:1M]]" end
    local job = assert(client:batch(items, { input = "file" }))
    assert(job:wait { interval = 0.03 })
    local batch = require "nanobanana.batch"
    local saved = batch.RESULTS_QUEUE_BYTES
    batch.RESULTS_QUEUE_BYTES = 2 * 1024 * 1024 -- (paused after a few: the download is still on)
    local got
    for i, res in job:results() do
      assert(res)
      got = i
      assert.is_true(client:poll() >= 1) -- the results download, still running
      if i == 2 then break end
    end
    batch.RESULTS_QUEUE_BYTES = saved
    assert.are.equal(2, got)
    assert.are.equal(0, client:poll()) -- cancelled by the break, not left paused
    for i, res, err in job:results() do -- the results can be taken again, whole
      assert(res, tostring(err))
      got = i
    end
    assert.are.equal(12, got)
  end)

  it("client:batch_job(name) finds a job made earlier; names that could leave the path raise", function()
    local job = assert(client:batch({ "a cat", "a dog" }, { display_name = "later" }))
    assert(job:wait { interval = 0.03 })
    local other = nb.new { base_url = server.url, api_key = "test-key", retries = 0 }
    for _, name in ipairs { job.name, (job.name:gsub("^batches/", "")) } do
      local before = #server:requests()
      local again = assert(other:batch_job(name))
      local got = server:requests()[before + 1]
      assert.are.equal("GET", got.method)
      assert.are.equal("/v1beta/" .. job.name, got.path)
      assert.are.equal(job.name, again.name)
      assert.are.equal("BATCH_STATE_SUCCEEDED", again.state)
      assert.are.equal("later", again.display_name)
      local n = 0
      for i, res in again:results() do n = n + 1; assert.are.equal(n, i); assert.are.equal(1, #res.images) end
      assert.are.equal(2, n)
    end
    local before = #server:requests()
    for _, bad in ipairs { "", "batches/", "../files/x", "batches/a/b", "a?alt=media", "a#f", "a%2Fb", "..", "a b" } do
      raises("batch job", other.batch_job, other, bad)
    end
    raises("batch job", other.batch_job, other, 42)
    assert.are.equal(before, #server:requests())
    local missing, err = other:batch_job("batches/nope")
    assert.is_nil(missing)
    assert.are.equal("api", err.kind)
    assert.are.equal(404, err.status)
  end)

  it("more than 100 items go as a file by default", function()
    local items = {}
    for i = 1, 101 do items[i] = "the same small thing" end
    local job = assert(client:batch(items))
    assert.is_not_nil(server:last().body.batch.inputConfig.fileName)
    assert(job:wait { interval = 0.05 })
    local n = 0
    for i, res in job:results() do
      n = n + 1
      assert.are.equal(n, i)
      assert.are.equal(1, #res.images)
    end
    assert.are.equal(101, n)
  end)

  it("FAILED and EXPIRED jobs; results() raises on them", function()
    server:faults { { name = "batch_failed" } }
    local job = assert(client:batch({ "x" }))
    assert(job:wait { interval = 0.03 })
    assert.are.equal("BATCH_STATE_FAILED", job.state)
    assert.are.equal("The batch failed.", job.error.message)
    raises("has not succeeded %(state BATCH_STATE_FAILED%)", job.results, job)
    job = assert(client:batch({ "x" }, { display_name = "late [[fault:batch_expired]]" }))
    assert(job:wait { interval = 0.03 })
    assert.are.equal("BATCH_STATE_EXPIRED", job.state)
  end)

  it("cancel, delete, list; wait times out with false", function()
    local job = assert(client:batch({ "x" }))
    local keep = assert(client:batch({ "y" }))
    assert.is_false(job:wait { interval = 0.01, timeout = 0.05 })
    assert.is_true(job:cancel())
    assert.matches(":cancel$", server:last().path)
    assert.are.equal("BATCH_STATE_CANCELLED", assert(job:refresh()).state)
    local list, token = assert(client:batches { page_size = 1 })
    assert.are.equal(1, #list)
    assert.is_string(token)
    local rest = assert(client:batches { page_size = 10, page_token = token })
    local names = { list[1].name, rest[1].name }
    table.sort(names)
    local want = { job.name, keep.name }
    table.sort(want)
    assert.are.same(want, names)
    assert.is_true(job:delete())
    local none, err = job:refresh()
    assert.is_nil(none)
    assert.are.equal("api", err.kind)
    assert.are.equal(404, err.status)
  end)

  it("non-blocking: start_batch (file input: upload, then create) and start_refresh, driven by poll()", function()
    local core = require "nanobanana.core"
    local function drive(req)
      local t0 = core.now()
      while req.state == "running" and core.now() - t0 < 20 do client:poll(); fake.sleep(0.005) end
      client:poll()
    end
    local got
    local t0 = core.now()
    local req = client:start_batch({ "a cat", "a dog" }, { input = "file", on_done = function(j, e) got = { j, e } end })
    assert.is_true(core.now() - t0 < 0.5)
    assert.are.equal("running", req.state)
    drive(req)
    assert.is_nil(got[2])
    local job = got[1]
    assert.matches("^batches/", job.name)
    assert.are.equal(job, (req:result()))
    fake.sleep(0.25)
    local r2 = job:start_refresh { on_done = function(j) got = { j } end }
    drive(r2)
    assert.are.equal(job, got[1])
    assert.are.equal("BATCH_STATE_SUCCEEDED", job.state)
    local n = 0
    for i, res in job:results() do n = i; assert.are.equal(1, #res.images) end
    assert.are.equal(2, n)
    -- cancelled while its JSONL is still uploading: cancelled, and no job is made
    local before = #server:requests()
    local c2 = client:start_batch({ "x" }, { input = "file" })
    c2:cancel()
    client:poll()
    assert.are.equal("cancelled", c2.state)
    fake.sleep(0.1)
    client:poll()
    for i = before + 1, #server:requests() do
      assert.is_nil(server:requests()[i].path:match("batchGenerateContent$"))
    end
  end)

  it("every item is checked before anything is sent", function()
    raises("batch item 2.*does not take aspectRatio", client.batch, client,
      { "ok", { "bad", { imageConfig = { aspectRatio = "8:1" } } } })
    raises("does not apply to a batch item", client.batch, client, { { "x", { output = "a.png" } } })
    assert.are.equal(0, #server:requests())
  end)
end)
