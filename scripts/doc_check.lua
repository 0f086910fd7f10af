-- doc_check.lua: fails when a public function or option is undocumented.
--   lua5.4 scripts/doc_check.lua        (from the checkout, after a build)
-- Public functions: every function reachable from the public surface
-- (`require "nanobanana"`, the objects it hands out -- client, request,
-- chat, image, error, batch job, uploaded file -- and the public modules
-- listed below), through string keys not starting with "_" and through
-- metatables' __index (client methods loaded on first use included). Each
-- one defined in lua/nanobanana/ must have an LDoc comment (a block whose
-- first line starts with "---") ending on the line right above it.
-- Options: every name in options.lua's CLIENT and CALL tables must be named
-- (`name`) in README.md's "### Options" section, in its client part and its
-- call part respectively. Each problem is one line "file:line: what";
-- the exit status is 1 when there is any.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("NB_CPATH") or "build/?.so") .. ";" .. package.cpath

-- public modules besides "nanobanana" itself (missing ones are skipped)
local PUBLIC_MODULES = { "nanobanana.loop" }

local problems, checked = {}, 0
local function problem(fmt, ...) problems[#problems + 1] = string.format(fmt, ...) end

local lines_of = {}
local function lines(path)
  if not lines_of[path] then
    local t = {}
    local f = assert(io.open(path, "rb"))
    for l in f:lines() do t[#t + 1] = l end
    f:close()
    lines_of[path] = t
  end
  return lines_of[path]
end

-- true when the comment block ending right above line n starts with "---"
local function documented(path, n)
  local ls = lines(path)
  local i = n - 1
  if not (ls[i] and ls[i]:match("^%s*%-%-")) then return false end
  while ls[i - 1] and ls[i - 1]:match("^%s*%-%-") and not ls[i]:match("^%s*%-%-%-") do i = i - 1 end
  return ls[i]:match("^%s*%-%-%-") ~= nil
end

local seen_fn, seen_tbl = {}, {}
local function check_function(name, f)
  if seen_fn[f] then return end
  seen_fn[f] = true
  local info = debug.getinfo(f, "S")
  if info.what ~= "Lua" then return end -- C functions: documented in src/lua_nanobanana.c
  local path = info.source:match("^@(.*)$")
  if not path or not path:match("lua/nanobanana/[^/]+%.lua$") then return end
  path = path:match("(lua/nanobanana/[^/]+%.lua)$")
  checked = checked + 1
  if os.getenv("NB_DOC_LIST") then print(name, path .. ":" .. info.linedefined) end
  if not documented(path, info.linedefined) then
    problem("%s:%d: %s has no doc comment (an LDoc block starting with --- right above it)",
      path, info.linedefined, name)
  end
end

local function walk(t, prefix, sep)
  if type(t) ~= "table" or seen_tbl[t] then return end
  seen_tbl[t] = true
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" and k:sub(1, 1) ~= "_" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = rawget(t, k)
    if type(v) == "function" then check_function(prefix .. sep .. k, v)
    elseif type(v) == "table" then walk(v, prefix .. "." .. k, ".") end
  end
  local mt = getmetatable(t)
  if type(mt) == "table" and type(rawget(mt, "__index")) == "table" then
    walk(rawget(mt, "__index"), prefix, ":")
  elseif type(mt) == "table" and type(rawget(mt, "__index")) == "function" then
    walk(mt, prefix, ":") -- an __index function (nanobanana.Image): the methods are the metatable's
  end
end

-- the public surface, with objects of every kind it hands out
local nb = require "nanobanana"
walk(nb, "nb", ".")
-- a loopback port nothing listens on: the request is cancelled at once
local client = nb.new { api_key = "doc-check-key", base_url = "http://127.0.0.1:9", retries = 0 }
-- the methods loaded on first use (client.LAZY) are looked up, so they are walked too
for _, names in pairs(require("nanobanana.client").LAZY) do
  for _, name in ipairs(names) do assert(client[name], name) end
end
walk(client, "client", ":")
-- the objects those methods hand out: batch jobs and uploaded files
walk(require("nanobanana.batch").Job, "job", ":")
walk(require("nanobanana.files").File, "file", ":")
local req = client:start("doc check")
walk(req, "req", ":")
req:cancel()
walk(client:chat {}, "chat", ":")
walk(nb.image { data = "\137PNG\r\n\26\n", mimeType = "image/png" }, "image", ":")
local _, err = nb.image("/nonexistent/nanobanana-doc-check.png")
walk(err, "err", ":")
client:close()
for _, name in ipairs(PUBLIC_MODULES) do
  local ok, mod = pcall(require, name)
  if ok then walk(mod, name, ".") end
end

-- options: each CLIENT/CALL name named in README's Options section
local options = require "nanobanana.options"
local readme = table.concat(lines("README.md"), "\n")
local section = readme:match("\n### Options\n(.-)\n##") or ""
local client_part, call_part = section:match("^(.-)\nCall (.*)$")
if not client_part then
  problem("README.md: no \"### Options\" section with a client part and a \"Call (...)\" part")
  client_part, call_part = "", ""
end
local function option_line(name)
  for i, l in ipairs(lines("lua/nanobanana/options.lua")) do
    if l:match("[%s{,]" .. name .. " = ") or l:match("^%s*" .. name .. " = ") then return i end
  end
  return 0
end
local noptions = 0
for _, which in ipairs { { "CLIENT", "client", client_part }, { "CALL", "call", call_part } } do
  local names = {}
  for k in pairs(options[which[1]]) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    noptions = noptions + 1
    if not which[3]:find("`" .. k .. "`", 1, true) then
      problem("lua/nanobanana/options.lua:%d: %s option '%s' is not documented in README.md's Options section (%s part)",
        option_line(k), which[2], k, which[2])
    end
  end
end

for _, p in ipairs(problems) do io.stderr:write(p, "\n") end
print(string.format("doc_check: %d public functions, %d options checked; %d undocumented", checked, noptions, #problems))
os.exit(#problems == 0 and 0 or 1)
