--- Starts and stops the project's fake Gemini server (fake/gemini_server.py)
-- on 127.0.0.1 for a spec, and reads its request log. Uses the curl command
-- line for control calls, so the library under test checks nothing of itself.
local json = require "cjson"

local M = {}
local ROOT = os.getenv("NB_ROOT") or "."

local function sh(cmd)
  -- children of a sanitizer run must not inherit its LD_PRELOAD
  local p = assert(io.popen("env -u LD_PRELOAD sh -c '" .. cmd:gsub("'", "'\\''") .. "'"))
  local out = p:read("*a")
  p:close()
  return out
end

local function sleep(s) os.execute("env -u LD_PRELOAD sleep " .. s) end

local Server = {}
Server.__index = Server

--- M.start{ "--gzip", ... } -> server with .port, .url, :stop(), :requests(), ...
function M.start(args)
  local dir = sh("mktemp -d"):gsub("%s+$", "")
  local portfile = dir .. "/port"
  local cmd = string.format("python3 %s/fake/gemini_server.py --port 0 --port-file %s --quiet %s > %s/log 2>&1 & echo $!",
    ROOT, portfile, table.concat(args or {}, " "), dir)
  local pid = sh(cmd):gsub("%s+$", "")
  local port
  for _ = 1, 200 do
    local f = io.open(portfile)
    if f then port = tonumber(f:read("*a")); f:close() end
    if port then break end
    sleep(0.05)
  end
  if not port then
    local f = io.open(dir .. "/log"); local log = f and f:read("*a") or ""; if f then f:close() end
    error("fake server did not start: " .. log)
  end
  return setmetatable({ pid = pid, port = port, dir = dir, url = "http://127.0.0.1:" .. port }, Server)
end

function Server:stop()
  os.execute("kill " .. self.pid .. " 2>/dev/null; rm -rf " .. self.dir)
end

function Server:get(path)
  return sh(string.format("curl -s --max-time 10 %s%s", self.url, path))
end

function Server:post(path, body)
  local f = io.open(self.dir .. "/post.json", "w"); f:write(body or "{}"); f:close()
  return sh(string.format("curl -s --max-time 10 -X POST -H 'Content-Type: application/json' --data-binary @%s/post.json %s%s",
    self.dir, self.url, path))
end

function Server:requests() return json.decode(self:get("/_nb/requests")) end
function Server:last() local r = self:requests(); return r[#r] end
function Server:reset() self:post("/_nb/reset", "{}") end

--- queue faults: server:faults{ {name="429", arg="0.2"}, ... }
function Server:faults(list) self:post("/_nb/faults", json.encode({ faults = list })) end

--- A client of nanobanana on server: base_url, api_key "test-key",
-- retries 0, then the options in extra.
function M.client(server, extra)
  local o = { base_url = server.url, api_key = "test-key", retries = 0 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return require("nanobanana").new(o)
end

--- Inside a describe block: the fake server for its tests, started in
-- setup (args as for M.start), reset before each test and stopped after
-- them all; with client_opts, also a client of nanobanana on it (base_url,
-- api_key "test-key", retries 0, then client_opts). set(server, client) is
-- called once both exist, so the spec keeps them in locals of its own:
--   local server, client
--   fake.suite({ "--latency-ms", "300" }, {}, function(s, c) server, client = s, c end)
function M.suite(args, client_opts, set)
  local busted = require "busted" -- (a spec's own environment has these as globals; a module has not)
  local setup, teardown, before_each = busted.setup, busted.teardown, busted.before_each
  local server
  setup(function()
    server = M.start(args)
    set(server, client_opts and M.client(server, client_opts))
  end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)
end

M.sh = sh
M.sleep = sleep

--- sha256 hex of a string (via sha256sum, independent of the library)
function M.sha256(s)
  local name = os.tmpname()
  local f = io.open(name, "wb"); f:write(s); f:close()
  local out = sh("sha256sum " .. name):match("^(%x+)")
  os.remove(name)
  return out
end

function M.file_sha256(path) return sh("sha256sum '" .. path .. "'"):match("^(%x+)") end

function M.read(path)
  local f = io.open(path, "rb"); if not f then return nil end
  local d = f:read("*a"); f:close(); return d
end

return M
