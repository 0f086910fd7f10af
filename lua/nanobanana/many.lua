--- client:generate_many (mixed into the Client class): many generations
-- with at most `concurrency` in flight, results in input order.
local core = require "nanobanana.core"
local options = require "nanobanana.options"

local M = {}

--- Runs many generations with at most `concurrency` in flight.
-- list items: a prompt string, or { prompt, opts }. Returns an array of
-- results or error objects, in order.
function M:generate_many(list, mopts)
  if type(list) ~= "table" then error("nanobanana: generate_many(list, opts) needs a list", 2) end
  options.check(mopts, { concurrency = "number" }, "generate_many options", 2)
  local conc = (mopts and mopts.concurrency) or 4
  if conc < 1 or conc % 1 ~= 0 then error("nanobanana: concurrency must be a whole number >= 1", 2) end
  local out, inflight, nexti, n = {}, {}, 1, #list
  -- every item is checked and built before any is sent
  local reqs = {}
  for i = 1, n do
    local item, prompt, opts = list[i], nil, nil
    if type(item) == "string" then prompt = item
    elseif type(item) == "table" then prompt, opts = item[1] or item.prompt, item[2] or item.opts
    else error("nanobanana: generate_many: item " .. i .. " must be a prompt or {prompt, opts}", 2) end
    reqs[i] = self:_prepare(prompt, opts, 2)
  end
  local function launch()
    local i = nexti
    nexti = nexti + 1
    inflight[#inflight + 1] = { i = i, req = self:_launch(reqs[i]) }
    reqs[i] = nil
  end
  local function run()
    while nexti <= n and #inflight < conc do launch() end
    while #inflight > 0 do
      self:poll()
      local still = {}
      for _, f in ipairs(inflight) do
        if f.req._finished then
          local res, err = f.req:result()
          out[f.i] = res or err
        else
          still[#still + 1] = f
        end
      end
      inflight = still
      while nexti <= n and #inflight < conc do launch() end
      if #inflight > 0 and #still == #inflight then
        local ms = 100
        local nr = self:_next_retry()
        if nr then ms = math.min(ms, math.max(1, (nr - core.now()) * 1000)) end
        self._engine:perform(math.max(1, math.floor(ms)))
      end
    end
  end
  -- a callback that raises ends the whole call: what is in flight is
  -- cancelled (nobody is left to take it), nothing not yet started starts
  local ok, err = pcall(run)
  if not ok then
    for _, f in ipairs(inflight) do f.req:_abandon() end
    error(err, 0)
  end
  return out
end

return M
