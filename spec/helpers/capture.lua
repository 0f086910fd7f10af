--- Starts fake/capture.py (a raw capture server on 127.0.0.1) for a spec and
-- reads back the exact bytes of each request it received.
local fake = require "helpers.fake"

local M = {}
local ROOT = os.getenv("NB_ROOT") or "."

local Capture = {}
Capture.__index = Capture

function M.start()
  local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
  local portfile = dir .. "/port"
  local pid = fake.sh(string.format("python3 %s/fake/capture.py --dir %s --port-file %s > %s/log 2>&1 & echo $!",
    ROOT, dir, portfile, dir)):gsub("%s+$", "")
  local port
  for _ = 1, 200 do
    local f = io.open(portfile)
    if f then port = tonumber(f:read("*a")); f:close() end
    if port then break end
    fake.sleep(0.05)
  end
  if not port then error("capture server did not start: " .. (fake.read(dir .. "/log") or "")) end
  return setmetatable({ pid = pid, port = port, dir = dir, url = "http://127.0.0.1:" .. port }, Capture)
end

function Capture:stop() os.execute("kill " .. self.pid .. " 2>/dev/null; rm -rf " .. self.dir) end

--- The raw bytes of every request received so far, in order.
function Capture:requests()
  local out = {}
  for i = 1, 100000 do
    local d = fake.read(self.dir .. "/" .. i .. ".req")
    if not d then break end
    out[i] = d
  end
  return out
end

--- Removes the requests recorded so far (numbering goes on).
function Capture:count() return #self:requests() end

return M
