-- Big images returned in memory become their Lua strings without a copy
-- (src/lua_nanobanana.c, "adopting blobs"): such strings behave like any
-- other, their memory goes back when they are collected, and a state closed
-- while they are alive closes cleanly.
local nb = require "nanobanana"
local fake = require "helpers.fake"

-- Address space of the process in MiB (VmSize). An adopted string keeps
-- its blob's mapping (shrunk to the image, transport.c nb_blobs_adopt), and
-- collecting the string unmaps it: the address space goes up and down by
-- the images' size, which nothing else here does.
local function vm_mib()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmSize:%s*(%d+) kB")
    if kb then return tonumber(kb) / 1024 end
  end
end

local function collect()
  collectgarbage("collect")
  collectgarbage("collect")
end

describe("zero-copy image strings", function()
  local server

  setup(function() server = fake.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  it("a big image's string is the blob's memory until the string is collected", function()
    if not require("nanobanana.core").zero_copy then
      return pending("this Lua interns every string (5.1, LuaJIT): images are copied")
    end
    local client = nb.new { base_url = server.url, api_key = "test-key", retries = 0 }
    assert(client:generate("warm up")) -- the worker thread's malloc arena reserves 64 MiB once
    collect()
    local before = vm_mib()
    local kept, shas = {}, {}
    local MIB8 = 8 * 1024 * 1024
    for i = 1, 3 do
      local res = assert(client:generate("otter " .. i .. " [[fault:huge:" .. (MIB8 + i) .. "]]"))
      kept[i] = res.images[1].data
      shas[i] = server:last().images[#server:last().images].sha256
    end
    collect()
    -- (a few MiB of slack: under valgrind the tool's own mappings move too)
    local held = vm_mib()
    assert.is_true(held - before >= 3 * 8 - 4, ("%.1f MiB more address space"):format(held - before))
    assert.is_true(held - before < 3 * 8 + 16, ("%.1f MiB more address space"):format(held - before))
    for i = 1, 3 do
      assert.are.equal(MIB8 + i, #kept[i])
      assert.are.equal(shas[i], fake.sha256(kept[i]))
    end
    kept = nil -- luacheck: ignore 311 (drops the references for the collector)
    collect()
    local after = vm_mib()
    assert.is_true(held - after >= 3 * 8 - 4, ("%.1f MiB given back"):format(held - after))
    client:close()
  end)

  it("zero_copy = false copies: the blob is freed at once, the bytes are the same", function()
    local client = nb.new { base_url = server.url, api_key = "test-key", retries = 0, zero_copy = false }
    collect()
    local before = vm_mib()
    local res = assert(client:generate("otter [[fault:huge:3000000]]"))
    local grew = vm_mib() - before
    assert.is_true(grew < 32, ("%.1f MiB more address space"):format(grew))
    assert.are.equal(server:last().images[#server:last().images].sha256, fake.sha256(res.images[1].data))
    client:close()
    assert.has_error(function() nb.new { zero_copy = "yes" } end,
      "nanobanana: option 'zero_copy' must be a boolean, got string")
  end)

  it("works from a coroutine and through poll/on_done", function()
    local client = nb.new { base_url = server.url, api_key = "test-key", retries = 0 }
    local data
    local co = coroutine.wrap(function()
      data = assert(client:generate("otter [[fault:huge:1500000]]")).images[1].data
      return "done"
    end)
    assert.are.equal("done", co())
    assert.are.equal(server:last().images[#server:last().images].sha256, fake.sha256(data))
    local got
    client:start("otter [[fault:huge:1600000]]", { on_done = function(res) got = res.images[1].data end })
    while not got do client:poll(); fake.sleep(0.01) end
    assert.are.equal(1600000, #got)
    assert.are.equal(server:last().images[#server:last().images].sha256, fake.sha256(got))
    client:close()
  end)

  it("a Lua state closed with such strings alive closes cleanly (the module stays loaded)", function()
    -- lua_close unloads C modules before it frees the last strings; the
    -- allocator those frees go through lives in nanobanana.core
    local script = string.format([==[
      package.path = %q; package.cpath = %q
      local nb = require "nanobanana"
      local c = nb.new { base_url = %q, api_key = "test-key", retries = 0 }
      KEEP = { assert(c:generate("otter [[fault:huge:2500000]]")).images[1].data,
               assert(c:generate("otter [[fault:huge:2600000]]")).images[1].data }
      io.write(#KEEP[1] + #KEEP[2], " ")
      c:close()
      -- the script ends: lua5.4 calls lua_close with KEEP alive
    ]==], package.path, package.cpath, server.url)
    local name = os.tmpname()
    local f = assert(io.open(name, "w")); f:write(script); f:close()
    -- the interpreter running this suite (lua5.4, or the TSan host), and no
    -- `env -u LD_PRELOAD`: under ASan the child runs with it too
    local lua = (arg and arg[-1] and not arg[-1]:match("^%-")) and arg[-1] or "lua5.4"
    local p = assert(io.popen(lua .. " " .. name .. " 2>&1; echo rc=$?"))
    local out = p:read("*a")
    p:close()
    os.remove(name)
    assert.are.equal("5100000 rc=0\n", out)
  end)
end)
