-- One version, everywhere: src/core/version.h is the source; the core
-- module, nb._VERSION, the rockspec (file name, version, source tag), CMake's
-- project version and the CHANGELOG's top entry must agree with it. And the
-- rockspec builds what CMake builds: every Lua module and every C source.
local nb = require "nanobanana"
local core = require "nanobanana.core"
local lfs = require "lfs"

local function read(p) local f = assert(io.open(p, "rb")); local s = f:read("*a"); f:close(); return s end

local function ls(dir, pattern)
  local out = {}
  for name in lfs.dir(dir) do
    if name:match(pattern) then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

local function rockspec()
  local files = ls(".", "^nanobanana%-.*%.rockspec$")
  assert.are.equal(1, #files, "want exactly one rockspec, found: " .. table.concat(files, " "))
  local env = {}
  local chunk
  if setfenv then chunk = assert(loadstring(read(files[1]), "=" .. files[1])); setfenv(chunk, env) -- 5.1
  else chunk = assert(load(read(files[1]), "=" .. files[1], "t", env)) end
  chunk()
  return files[1], env
end

local V = read("src/core/version.h"):match('#define NB_VERSION "([^"]+)"')

describe("version", function()
  it("is defined in version.h as x.y.z", function()
    assert.is_string(V)
    assert.matches("^%d+%.%d+%.%d+$", V)
  end)

  it("is the same in the core module and nb._VERSION", function()
    assert.are.equal(V, core.version)
    assert.are.equal("nanobanana " .. V, nb._VERSION)
  end)

  it("is the same in the rockspec: file name, version, source tag", function()
    local name, spec = rockspec()
    assert.are.equal("nanobanana-" .. V .. "-1.rockspec", name)
    assert.are.equal("nanobanana", spec.package)
    assert.are.equal(V .. "-1", spec.version)
    assert.matches("^git%+https://", spec.source.url)
    assert.are.equal("v" .. V, spec.source.tag)
  end)

  it("is CMake's project version (read from version.h)", function()
    local cache = read("build/CMakeCache.txt")
    assert.are.equal(V, cache:match("\nCMAKE_PROJECT_VERSION:STATIC=([^\n]*)"))
  end)

  it("is the CHANGELOG's top entry", function()
    local top = read("CHANGELOG.md"):match("\n## %[([^%]]+)%]")
    assert.are.equal(V, top)
  end)
end)

describe("rockspec", function()
  it("declares the license of the LICENSE file", function()
    local _, spec = rockspec()
    assert.are.equal("MIT", spec.description.license)
    assert.matches("^MIT License\n", read("LICENSE"))
  end)

  it("installs every Lua module in lua/nanobanana/ and nothing else", function()
    local _, spec = rockspec()
    local want, got = {}, {}
    for _, f in ipairs(ls("lua/nanobanana", "%.lua$")) do
      local mod = f == "init.lua" and "nanobanana" or "nanobanana." .. f:gsub("%.lua$", "")
      want[mod] = "lua/nanobanana/" .. f
    end
    for mod, src in pairs(spec.build.modules) do
      if type(src) == "string" then got[mod] = src end
    end
    assert.are.same(want, got)
  end)

  it("compiles the binding and every src/core/*.c, as CMakeLists.txt does", function()
    local _, spec = rockspec()
    local want = { "src/lua_nanobanana.c" }
    for _, f in ipairs(ls("src/core", "%.c$")) do want[#want + 1] = "src/core/" .. f end
    table.sort(want)
    local got = {}
    for _, s in ipairs(spec.build.modules["nanobanana.core"].sources) do got[#got + 1] = s end
    table.sort(got)
    assert.are.same(want, got)
    -- CMake's static core library lists the same src/core files
    local cmake = read("CMakeLists.txt"):match("add_library%(nbcore STATIC(.-)%)")
    local listed = {}
    for s in cmake:gmatch("src/core/[%w_]+%.c") do listed[#listed + 1] = s end
    table.sort(listed)
    local core_files = {}
    for _, f in ipairs(want) do if f:match("^src/core/") then core_files[#core_files + 1] = f end end
    assert.are.same(core_files, listed)
  end)
end)
