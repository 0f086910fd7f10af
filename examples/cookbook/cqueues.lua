-- cqueues: the client is a pollable; loop.cqueues puts a driver on the
-- controller, and nb.await inside cq:wrap waits on it (cqueues owns its
-- coroutines' yields, so the adapter's condition variable does the waiting).
local nb = require "nanobanana"
local loop = require "nanobanana.loop"
local cqueues = require "cqueues"

local client = nb.new()
local cq = cqueues.new()
local h = loop.cqueues(client, cq)

local left = 2
for _, subject in ipairs { "a teapot", "a bicycle" } do
  cq:wrap(function()
    local res = assert(nb.await(client:start("A product photo of " .. subject)))
    local name = subject:gsub("^a ", "") .. "." .. res.images[1]:extension()
    assert(res.images[1]:save(name))
    print(name, res.images[1].width .. "x" .. res.images[1].height)
    left = left - 1
    if left == 0 then h:stop() end
  end)
end
cq:wrap(function()               -- other cqueues work runs meanwhile
  while left > 0 do cqueues.sleep(0.1) end
end)
assert(cq:loop())
client:close()
