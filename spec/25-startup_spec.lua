-- Start-up: `require "nanobanana"` loads what every script needs and no
-- more; the Files and Batch methods (and the service layer they share)
-- load on their first use, and every method of those modules is reachable
-- from a client.
local nb = require "nanobanana"
local client_mod = require "nanobanana.client"
local cli = require "helpers.cli"
local fake = require "helpers.fake"

-- runs a Lua script in a fresh interpreter (this suite's, with its module
-- paths): its output
local function fresh(script)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(string.format("package.path = %q; package.cpath = %q\n", package.path, package.cpath), script)
  f:close()
  local p = assert(io.popen(cli.LUA .. " " .. name .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  os.remove(name)
  return out
end

local LOADED = [[
local names = {}
for k in pairs(package.loaded) do if k:match("^nanobanana") then names[#names + 1] = k end end
table.sort(names)
print(table.concat(names, " "))
]]

describe("start-up", function()
  it("require \"nanobanana\" and nb.new load neither Files, Batch nor the service layer", function()
    local out = fresh([[
local nb = require "nanobanana"
local c = nb.new { api_key = "k", base_url = "http://127.0.0.1:9" }
assert(c:url("m"))
]] .. LOADED)
    assert.truthy(out:find("nanobanana.client", 1, true), out)
    assert.falsy(out:find("nanobanana.files", 1, true), out)
    assert.falsy(out:find("nanobanana.batch", 1, true), out)
    assert.falsy(out:find("nanobanana.service", 1, true), out)
  end)

  it("the first lookup of a Files or Batch method loads its module; an unknown name is still nil", function()
    local out = fresh([[
local nb = require "nanobanana"
local c = nb.new { api_key = "k", base_url = "http://127.0.0.1:9" }
assert(c.no_such_method == nil)
assert(type(c.delete_file) == "function")
assert(c.delete_file == require("nanobanana.files").delete_file)
]] .. LOADED .. [[
assert(type(c.batches) == "function")
]] .. LOADED)
    local first, second = out:match("^([^\n]*)\n([^\n]*)\n$")
    assert.truthy(first, out)
    assert.truthy(first:find("nanobanana.files", 1, true), first)
    assert.falsy(first:find("nanobanana.batch", 1, true), first)
    assert.truthy(second:find("nanobanana.batch", 1, true), second)
  end)

  it("every method of the lazily loaded modules is listed, and a client reaches it", function()
    local client = nb.new { api_key = "k", base_url = "http://127.0.0.1:9" }
    for mod, names in pairs(client_mod.LAZY) do
      local m = require(mod)
      local listed = {}
      for _, name in ipairs(names) do
        listed[name] = true
        assert.are.equal(m[name], client[name], mod .. "." .. name)
        assert.are.equal("function", type(m[name]), mod .. "." .. name)
      end
      -- a method is a public function whose first parameter is self
      -- (debug.getlocal on a function: Lua 5.2+ and LuaJIT; 5.1 checks the list only)
      if pcall(debug.getlocal, m.upload or m.batch, 1) then
        for name, f in pairs(m) do
          if type(f) == "function" and not name:match("^_") and debug.getlocal(f, 1) == "self" then
            assert.is_true(listed[name], mod .. "." .. name .. " is a method but not in client.LAZY")
          end
        end
      end
    end
    client:close()
  end)

  it("a fresh client's first call is a lazily loaded method, and it works", function()
    local server = fake.start()
    local out = fresh(string.format([[
local nb = require "nanobanana"
local c = nb.new { api_key = "test-key", base_url = %q, retries = 0 }
local f = assert(c:upload({ data = "hello" }, { mimeType = "text/plain", displayName = "lazy" }))
print(f.displayName, f.sizeBytes)
local jobs = assert(c:batches())
print(type(jobs))
c:close()
]], server.url))
    server:stop()
    assert.are.equal("lazy\t5\ntable\n", out)
  end)
end)
