-- Images and memory: a decoded image stays in C memory (a nanobanana.Blob)
-- until Lua reads img.data; img.size, img:save() and a replay in a chat
-- never make the Lua string; reading data makes it once and lets the C
-- memory go at once. Blob memory grows with the data (256 requests in
-- flight under ulimit -v 4 GiB), and running out of it is its own error.
local nb = require "nanobanana"
local core = require "nanobanana.core"
local fake = require "helpers.fake"

-- LuaJIT's collector marks every slot within the frame sizes of the live
-- frames, so a dead temporary of a function that has returned can keep an
-- object alive; a call that sets 100 slots to nil above the caller's clears
-- those before collecting
local scrub = assert((loadstring or load)("local " .. ("x, "):rep(99) .. "x = nil"))
local function collect()
  scrub()
  collectgarbage("collect")
  collectgarbage("collect")
end

-- Lua's heap, in bytes
local function lua_bytes() return collectgarbage("count") * 1024 end

-- blob memory alive in the process (C): count, bytes
local function blobs() return core.blob_stats() end

local function served_sha(server)
  local imgs = server:last().images
  return imgs[#imgs].sha256
end

local MIB = 1024 * 1024

-- the interpreter running this suite (lua5.4, lua5.1, luajit, the TSan host)
local LUA = (arg and arg[-1] and not arg[-1]:match("^%-")) and arg[-1] or "lua5.4"

-- Runs a Lua script in a child process with this process's module paths,
-- under `ulimit -v kib` when given; returns its output and exit status.
local function child(script, kib)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(string.format("package.path = %q; package.cpath = %q\n", package.path, package.cpath), script)
  f:close()
  local limit = kib and ("ulimit -v " .. kib .. " && ") or ""
  local p = assert(io.popen("sh -c '" .. limit .. "exec " .. LUA .. " " .. name .. "' 2>&1; echo rc=$?"))
  local out = p:read("*a")
  p:close()
  os.remove(name)
  return out
end

describe("images in C memory", function()
  local server, client

  setup(function()
    server = fake.start()
    client = nb.new { base_url = server.url, api_key = "test-key", retries = 0 }
  end)
  teardown(function()
    client:close()
    server:stop()
  end)
  before_each(function()
    server:reset()
    collect()
  end)

  it("img.size needs no copy; img.data is made on first read, once, and the C memory goes at once", function()
    local n0, b0 = blobs()
    local size = 8 * MIB + 3
    local res = assert(client:generate("otter [[fault:huge:" .. size .. "]]"))
    local img = res.images[1]
    collect()
    local n1, b1 = blobs()
    assert.are.equal(n0 + 1, n1)
    assert.is_true(b1 - b0 >= size, "blob bytes " .. (b1 - b0))
    local heap = lua_bytes()
    assert.are.equal(size, img.size)
    assert.is_nil(rawget(img, "data")) -- not made yet
    assert.is_true(lua_bytes() - heap < MIB)
    assert.matches("nanobanana.Image %(image/png %d+x%d+, " .. size .. " bytes%)", tostring(img))

    local data = img.data -- the one copy
    assert.are.equal(size, #data)
    assert.are.equal(served_sha(server), fake.sha256(data))
    local n2, b2 = blobs()
    assert.are.equal(n0, n2) -- let go at once, not at the next collection
    assert.are.equal(b0, b2)
    assert.are.equal(data, rawget(img, "data")) -- kept: a plain field from now on
    heap = lua_bytes()
    assert.are.equal(data, img.data)
    assert.are.equal(data, img:bytes())
    assert.are.equal(size, img.size)
    assert.is_true(lua_bytes() - heap < MIB) -- no second copy
    -- the image in res.content is the same object
    assert.are.equal(img, res.content.parts[2].inlineData.data)
  end)

  it("img:save() writes straight from the blob (exact bytes) without making data", function()
    local size = 6 * MIB + 1
    local res = assert(client:generate("otter [[fault:huge:" .. size .. "]]"))
    local img = res.images[1]
    collect()
    local heap = lua_bytes()
    local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    local path = dir .. "/out.png"
    assert.is_true(img:save(path))
    assert.is_true(img:save(path)) -- again, over the first: still from C memory
    assert.is_true(lua_bytes() - heap < MIB, ("Lua heap grew %d bytes"):format(lua_bytes() - heap))
    assert.is_nil(rawget(img, "data"))
    assert.are.equal(served_sha(server), fake.file_sha256(path))
    assert.are.equal(tostring(size), fake.sh("stat -c %s " .. path):gsub("%s+$", ""))
    -- a failed save leaves nothing and says io
    local ok, err = img:save(dir .. "/no/such/dir/x.png")
    assert.is_nil(ok)
    assert.are.equal("io", err.kind)
    -- data read after a save: the same bytes as the file
    assert.are.equal(fake.read(path), img.data)
    fake.sh("rm -rf " .. dir)
  end)

  it("materialised strings are ordinary strings: equal, hashable, string.* work", function()
    local size = 2 * MIB + 5 -- the fake's huge image depends only on its size
    local a = assert(client:generate("otter a [[fault:huge:" .. size .. "]]")).images[1]
    local b = assert(client:generate("otter b [[fault:huge:" .. size .. "]]")).images[1]
    local da, db = a.data, b.data
    assert.is_true(da == db)
    local t = { [da] = "found" }
    assert.are.equal("found", t[db])
    assert.are.equal("\137PNG\r\n\26\n", da:sub(1, 8))
    assert.are.equal(size, #(da .. ""))
    assert.are.equal(fake.sha256(da), fake.sha256(db))
    local c = assert(client:generate("otter c [[fault:huge:" .. (size + 1) .. "]]")).images[1]
    assert.is_false(c.data == da)
  end)

  it("un-read blobs are freed by the garbage collector", function()
    local n0, b0 = blobs()
    local held = { results = {} } -- dropped below: held.results = nil
    local kept = held.results
    for i = 1, 3 do
      kept[i] = assert(client:generate("otter " .. i .. " [[fault:huge:" .. (4 * MIB + i) .. "]]"))
    end
    collect()
    local n1, b1 = blobs()
    assert.are.equal(n0 + 3, n1)
    assert.is_true(b1 - b0 >= 12 * MIB)
    for i = 1, 3 do assert.are.equal(4 * MIB + i, kept[i].images[1].size) end
    kept, held.results = nil, nil -- luacheck: ignore kept
    collect()
    local n2, b2 = blobs()
    assert.are.equal(n0, n2)
    assert.are.equal(b0, b2)
    -- a stream's images too (made in a function of its own, so that no
    -- temporary of this frame holds the result: LuaJIT keeps stack slots)
    local function stream_into(t)
      t.stream = assert(client:stream("otter [[fault:huge:" .. (3 * MIB) .. "]]"))
      return t.stream.images[1].size
    end
    assert.are.equal(3 * MIB, stream_into(held))
    collect()
    assert.are.equal(n0 + 1, (blobs()))
    held.stream = nil
    collect()
    assert.are.equal(n0, (blobs()))
  end)

  it("a chat replays an unread image from its blob; data read mid-transfer stays valid for it", function()
    local chat = client:chat {}
    local r1 = assert(chat:send("an otter [[fault:huge:" .. (3 * MIB) .. "]]"))
    local img = r1.images[1]
    local sha = served_sha(server)
    local heap = lua_bytes()
    local r2 = assert(chat:send("now with a hat"))
    assert.is_true(r2.images[1] ~= nil)
    assert.is_nil(rawget(img, "data")) -- sent from C memory
    assert.is_true(lua_bytes() - heap < MIB + r2.images[1].size / 8)
    local sent = server:last().body.contents[2].parts
    assert.are.equal(sha, sent[#sent].inlineData.data.sha256)
    assert.are.equal(3 * MIB, sent[#sent].inlineData.data.bytes)

    -- the next send borrows the blob; the image is materialised (and the
    -- image lets go of it) while the transfer may still read it
    collect()
    local n_before, b_before = blobs()
    local req = chat:start("and a scarf [[fault:stall:0.5]]")
    local data = img.data
    collect()
    local _, b_during = blobs()
    assert.is_true(b_during >= b_before) -- the request's reference keeps the bytes
    local r3 = assert(req:wait())
    collect()
    -- released when the request finished: img's blob went, r3's image came
    local n_after, b_after = blobs()
    assert.are.equal(n_before, n_after)
    assert.is_true(b_after <= b_before - 3 * MIB + r3.images[1].size + 4096, b_after .. " bytes")
    sent = server:last().body.contents[2].parts
    assert.are.equal(sha, sent[#sent].inlineData.data.sha256)
    assert.are.equal(sha, fake.sha256(data))
  end)

  it("a retry sends an image from C memory even when its data was read during the back-off", function()
    local c = nb.new { base_url = server.url, api_key = "test-key", retries = 1, retry_base_delay = 0.3 }
    local img = assert(c:generate("otter [[fault:huge:" .. (2 * MIB + 7) .. "]]")).images[1]
    local sha = served_sha(server)
    server:reset()
    server:faults { "503" }
    local req = c:start("with a hat", { images = { img } })
    while req.progress.phase ~= "retrying" and req.state == "running" do
      c:poll()
      fake.sleep(0.01)
    end
    assert.are.equal("retrying", req.progress.phase)
    assert.are.equal(sha, fake.sha256(img.data)) -- the image lets go of its C memory
    local res, err = req:wait()
    assert.is_truthy(res, tostring(err))
    assert.are.equal(2, res.attempts)
    local reqs = server:requests()
    assert.are.equal(2, #reqs)
    for _, r in ipairs(reqs) do
      assert.are.equal(sha, r.body.contents[1].parts[2].inlineData.data.sha256)
    end
    c:close()
  end)

  it("chat:to_json() encodes images from C memory, without making data", function()
    local chat = client:chat {}
    local r1 = assert(chat:send("an otter"))
    local img = r1.images[1]
    local json = assert(chat:to_json())
    assert.is_nil(rawget(img, "data"))
    local b64 = json:match('"data":"([^"]+)"')
    assert.are.equal(served_sha(server), fake.sha256(core.b64decode(b64)))
    local again = client:chat { history = json }
    assert.are.equal(img.data, again.history[2].parts[#again.history[2].parts].inlineData.data.data)
  end)

  it("nb.image{data=...} and path images work as before", function()
    local png = assert(client:generate("otter")).images[1].data
    local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    local f = assert(io.open(dir .. "/in.png", "wb")); f:write(png); f:close()
    local from_data = nb.image { data = png }
    assert.are.equal(#png, from_data.size)
    assert.are.equal(png, from_data.data)
    local from_path = assert(nb.image(dir .. "/in.png"))
    assert.are.equal(#png, from_path.size)
    assert.is_nil(from_path.data)
    assert.are.equal(png, from_path:bytes())
    assert(client:generate("edit", { images = { from_data, from_path } }))
    local parts = server:last().body.contents[1].parts
    assert.are.equal(fake.sha256(png), parts[2].inlineData.data.sha256)
    assert.are.equal(fake.sha256(png), parts[3].inlineData.data.sha256)
    fake.sh("rm -rf " .. dir)
  end)

  it("the core hands a Blob over once; its bytes are gone once taken", function()
    local res = assert(client:generate("otter [[fault:huge:100000]]"))
    local blob = rawget(res.images[1], "_blob")
    assert.matches("^nanobanana.Blob %(.*100000 bytes%)$", tostring(blob))
    assert.are.equal(100000, blob:size())
    assert.is_true(blob:live())
    assert.are.equal(served_sha(server), fake.sha256(core.b64decode(core.b64encode(blob))))
    local s = blob:take()
    assert.are.equal(100000, #s)
    assert.is_false(blob:live())
    assert.has_error(function() blob:take() end)
    assert.has_error(function() blob:size() end)
    assert.has_error(function() core.b64encode(blob) end)
    -- the image got its data from the same blob: taken once, by whoever came first
    assert.has_error(function() return res.images[1].data end)
  end)
end)

describe("blob files (output=)", function()
  local server

  setup(function() server = fake.start() end)
  teardown(function() server:stop() end)

  it("are created 0666 less the umask, close-on-exec, and become the output file as they are", function()
    local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    for _, case in ipairs { { "027", "640" }, { "002", "664" } } do
      local out = dir .. "/otter-" .. case[1] .. ".png"
      local script = string.format([==[
        local nb = require "nanobanana"
        local c = nb.new { base_url = %q, api_key = "test-key", retries = 0 }
        -- the answer stalls after its first KB: the temporary file is open
        local req = c:start("otter [[fault:stall:1]]", { output = %q })
        while req.progress.phase ~= "downloading" do c:poll(); c._engine:perform(5) end
        -- a child started now must not inherit it (close-on-exec)
        local p = io.popen("ls -l /proc/self/fd/ | grep -c nanobanana-")
        local held = p:read("*a"); p:close()
        local res = assert(req:wait())
        io.write(res.images[1].path, " ", (held:gsub("%%s+", "")), "\n")
        c:close()
      ]==], server.url, out)
      local name = os.tmpname()
      local f = assert(io.open(name, "w"))
      f:write(string.format("package.path = %q; package.cpath = %q\n", package.path, package.cpath), script)
      f:close()
      local p = assert(io.popen("sh -c 'umask " .. case[1] .. " && exec " .. LUA .. " " .. name .. "' 2>&1"))
      local got = p:read("*a")
      p:close()
      os.remove(name)
      assert.are.equal(out .. " 0\n", got)
      assert.are.equal(case[2], (fake.sh("stat -c %a " .. out):gsub("%s+$", "")))
    end
    fake.sh("rm -rf " .. dir)
  end)
end)

describe("blob memory under limits", function()
  local server

  setup(function() server = fake.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  -- sanitizers and valgrind reserve terabytes of address space: no ulimit -v there
  local limited = not os.getenv("NB_SLOW") and not os.getenv("LD_PRELOAD")

  it("256 requests in flight on one client all succeed under ulimit -v 4194304", function()
    if not limited then return pending("ulimit -v cannot run under sanitizers/valgrind") end
    -- every answer stalls 1 s after its first KB (which starts its image):
    -- 256 blobs are alive at once; a fixed 64 MiB reservation each (16 GiB)
    -- could not be
    local out = child(string.format([==[
      local nb = require "nanobanana"
      local core = require "nanobanana.core"
      local c = nb.new { base_url = %q, api_key = "test-key", retries = 0 }
      local reqs, ok, most = {}, 0, 0
      for i = 1, 256 do reqs[i] = c:start("otter " .. i .. " [[fault:stall:1]]") end
      local t0 = core.now()
      while true do
        c:poll()
        local n = core.blob_stats()
        if n > most then most = n end
        local left = 0
        for i = 1, 256 do if reqs[i].state == "running" then left = left + 1 end end
        if left == 0 then break end
        c._engine:perform(5)
      end
      for i = 1, 256 do
        local res, err = reqs[i]:result()
        if res and res.images[1].size > 0 then ok = ok + 1 else io.write(tostring(err), "\n") end
      end
      io.write("ok=", ok, " most=", most, " ", core.now() - t0 < 60 and "fast" or "slow", "\n")
      c:close()
    ]==], server.url), 4194304)
    assert.are.equal("ok=256 most=256 fast\nrc=0\n", out)
    assert.are.equal(256, #server:requests())
  end)

  it("out of memory while decoding is kind memory (not too_large), not retried", function()
    if not limited then return pending("ulimit -v cannot run under sanitizers/valgrind") end
    local warm = [==[
      local nb = require "nanobanana"
      local c = nb.new { base_url = %q, api_key = "test-key", retries = 2, retry_base_delay = 0 }
      assert(c:generate("warm up")) -- the worker, its arena, libcurl: all there
      local function vm()
        for line in io.lines("/proc/self/status") do
          local kb = line:match("^VmPeak:%%s*(%%d+) kB")
          if kb then return tonumber(kb) end
        end
      end
    ]==]
    local out = child(string.format(warm .. 'io.write(vm(), "\\n")', server.url))
    local peak = assert(tonumber(out:match("^(%d+)\n")), out)
    -- room for 48 MiB more: a 96 MiB image cannot be decoded
    out = child(string.format(warm .. [==[
      local res, err = c:generate("otter [[fault:huge:96M]]")
      io.write(tostring(res), " ", err.kind, " ", err.attempts, " ", err.message, "\n")
      c:close()
    ]==], server.url), peak + 48 * 1024)
    assert.matches("^nil memory 1 out of memory decoding image 1 %(%d+ bytes so far%)\nrc=0\n$", out)
  end)
end)
