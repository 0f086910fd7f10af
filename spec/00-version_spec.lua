-- One version, everywhere: src/core/version.h is the source; the rockspec,
-- the core module and nb._VERSION must agree with it.
local nb = require "nanobanana"
local core = require "nanobanana.core"

local function read(p) local f = assert(io.open(p)); local s = f:read("*a"); f:close(); return s end

describe("version", function()
  it("is the same in version.h, the rockspec, core and nb._VERSION", function()
    local v = read("src/core/version.h"):match('#define NB_VERSION "([^"]+)"')
    assert.is_string(v)
    assert.are.equal(v, core.version)
    assert.are.equal("nanobanana " .. v, nb._VERSION)
    local p = io.popen("ls nanobanana-*.rockspec")
    local rockspec = p:read("*l"); p:close()
    assert.are.equal("nanobanana-" .. v .. "-1.rockspec", rockspec)
    assert.matches('version = "' .. v:gsub("%.", "%%.") .. '%-1"', read(rockspec))
  end)
end)
