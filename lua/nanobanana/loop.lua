--- Event-loop adapters: a client driven by luv (libuv; Neovim's vim.loop)
-- or by a cqueues controller, over the client's pollable protocol
-- (`client:pollfd()`, `client:events()`, `client:timeout()`).
--
-- While a handle is attached, the loop calls `client:poll()` when the fd turns
-- readable or `timeout()` runs out, so every callback (on_progress, on_event,
-- on_done) fires from the loop and nobody calls poll(). Nothing spins: with
-- requests waiting on the server the loop sleeps in its own poller.
--
--   local h = loop.luv(client[, uv][, opts])   -- uv: luv module or vim.loop
--   h:spawn(fn, ...)  -- runs fn in a coroutine; nb.await(req) in it resumes from the loop
--   h:stop()          -- detaches (before client:close()); the loop may then exit
--   h.steps, h.max_step  -- how often the loop ran poll(), the longest run (s)
--
--   local h = loop.cqueues(client, cq)         -- cq: a cqueues controller
--   cq:wrap(fn)       -- nb.await(req) inside waits on a condition the adapter signals
--   h:stop()
--
-- A luv handle keeps the loop alive while attached: call h:stop() when done
-- (uv.run() then returns once nothing else is pending).
-- @module nanobanana.loop
local M = {}

local Handle = { __name = "nanobanana.loop.Handle" }
Handle.__index = Handle

local now = require("nanobanana.core").now

local function is_request(x)
  local mt = getmetatable(x)
  return type(mt) == "table" and mt.__name == "nanobanana.Request"
end

local function check_client(client, level)
  if type(client) ~= "table" or type(client.pollfd) ~= "function" or type(client.timeout) ~= "function" then
    error("nanobanana.loop: needs a nanobanana client (with pollfd/timeout)", level + 1)
  end
end

local function attach(client, level)
  check_client(client, level + 1)
  if rawget(client, "_loop") then error("nanobanana.loop: this client is already attached to a loop", level + 1) end
  if client:pollfd() < 0 then error("nanobanana.loop: the client is closed", level + 1) end
  local h = setmetatable({ client = client, _waiting = {}, _stopped = false, steps = 0, max_step = 0 }, Handle)
  client._loop = h
  return h
end

-- Resumes co with the given values; a request it yields (nb.await) is
-- remembered and co resumed when that request has finished.
function Handle:_resume(co, ...)
  local ok, v = coroutine.resume(co, ...)
  if not ok then error(debug.traceback(co, tostring(v)), 0) end
  if coroutine.status(co) == "suspended" then
    if not is_request(v) then
      error("nanobanana.loop: a spawned coroutine yielded " .. tostring(v) .. " (only nb.await may yield in it)", 0)
    end
    self._waiting[co] = v
  end
end

-- The coroutines whose request has finished, resumed (in no particular order).
function Handle:_wake_waiting()
  local ready = {}
  for co, req in pairs(self._waiting) do
    if req.state ~= "running" then ready[#ready + 1] = co end
  end
  for _, co in ipairs(ready) do
    self._waiting[co] = nil
    self:_resume(co)
  end
end

-- h.steps: how many times the loop ran poll() (and the coroutines it woke);
-- h.max_step: the longest of those runs, in seconds (callbacks included):
-- the most the client took from the loop at once
function Handle:_count(dt)
  self.steps = self.steps + 1
  if dt > self.max_step then self.max_step = dt end
end

--- Runs fn(...) in a coroutine, now (up to its first nb.await); nb.await(req)
-- inside it yields to the loop and returns once req has finished (resumed
-- from the loop, through `schedule` in Neovim). An error in fn is raised from the
-- loop callback that resumed it (with fn's traceback).
-- @treturn thread the coroutine
function Handle:spawn(fn, ...)
  if type(fn) ~= "function" then error("nanobanana.loop: spawn(fn) needs a function", 2) end
  if self._stopped then error("nanobanana.loop: spawn on a stopped handle", 2) end
  local co = coroutine.create(fn)
  self:_resume(co, ...)
  return co
end

--- nb.await for this loop (nb.await calls it for a client attached here).
function Handle:await(req)
  if self._wait_here then return self:_wait_here(req) end
  while req.state == "running" do coroutine.yield(req) end
  return req:result()
end

-- ------------------------------------------------------------------ luv
local LUV_OPTS = { schedule = true }

--- Attaches client to a libuv loop: a poll handle on client:pollfd(), a
-- timer for client:timeout(), and a prepare handle that re-reads timeout()
-- before the loop sleeps (so a cancel or a failed start made from any
-- callback is seen at once).
-- @param client a nanobanana client
-- @param uv the luv module or Neovim's vim.loop / vim.uv (default: vim's when
--   running in Neovim, else require "luv")
-- @param opts { schedule = function(fn) | false }: how poll() and the coroutines
--   run. In Neovim (a global `vim`) the default is vim.schedule, so callbacks
--   may call vim.api; false runs them straight from the luv callback.
-- @return handle
function M.luv(client, uv, opts)
  if type(uv) == "table" and opts == nil and uv.new_poll == nil then uv, opts = nil, uv end
  opts = opts or {}
  for k in pairs(opts) do
    if LUV_OPTS[k] == nil then error("nanobanana.loop: unknown option " .. tostring(k), 2) end
  end
  check_client(client, 2) -- (before luv is required: a wrong call raises the same everywhere)
  uv = uv or (rawget(_G, "vim") and (vim.uv or vim.loop)) or require "luv"
  local h = attach(client, 2)
  local schedule = opts.schedule
  if schedule == nil and rawget(_G, "vim") and type(vim.schedule) == "function" then schedule = vim.schedule end
  if schedule == false then schedule = nil end
  h._uv = uv

  local pending = false -- a scheduled step not run yet (coalesced)
  local function run_step()
    pending = false
    if h._stopped then return end
    if client:pollfd() < 0 then return h:stop() end -- closed under us
    local t0 = now()
    local ok, err = pcall(client.poll, client)
    h:_rearm()
    if not ok then error(err, 0) end -- a callback's error reaches the loop, the state stays sound
    h:_wake_waiting()
    h:_rearm()
    h:_count(now() - t0)
  end
  local function step()
    if h._stopped then return end
    if schedule then
      if not pending then pending = true; schedule(run_step) end
    else
      run_step()
    end
  end
  h._step = step

  h._poll = uv.new_poll(client:pollfd())
  h._timer = uv.new_timer()
  h._prepare = uv.new_prepare()
  h._poll:start("r", function(err)
    if err then error("nanobanana.loop: polling the client's fd: " .. tostring(err), 0) end
    step()
  end)
  h._prepare:start(function() h:_rearm() end)
  h:_rearm()
  return h
end

-- luv: timer set to client:timeout() (stopped when nil); due now -> a step.
function Handle:_rearm()
  if self._stopped or not self._timer then return end
  local t = self.client:timeout()
  if t == nil then
    if self._armed then self._timer:stop(); self._armed = nil end
  elseif t <= 0 then
    self._step()
  else
    local ms = math.ceil(t * 1000)
    if self._armed ~= ms then
      self._timer:stop()
      self._timer:start(ms, 0, function() self._armed = nil; self._step() end)
      self._armed = ms
    end
  end
end

--- Detaches the handle: the loop stops driving the client (call it before
-- client:close()). Coroutines still waiting in nb.await stay suspended.
function Handle:stop()
  if self._stopped then return end
  self._stopped = true
  if rawget(self.client, "_loop") == self then self.client._loop = nil end
  for _, k in ipairs { "_poll", "_timer", "_prepare" } do
    local uvh = self[k]
    if uvh then
      uvh:stop()
      if not uvh:is_closing() then uvh:close() end
      self[k] = nil
    end
  end
  if self._cond then self._cond:signal() end -- the cqueues driver wakes and ends
end

-- -------------------------------------------------------------- cqueues
--- Attaches client to a cqueues controller: a coroutine on cq waits on the
-- client as a pollable (cqueues.poll(client)) and calls client:poll(); then
-- it signals a condition variable on which nb.await(req) waits in any
-- coroutine cq runs (cq:wrap(fn)).
-- @param client a nanobanana client
-- @param cq a cqueues controller (cqueues.new())
-- @return handle
function M.cqueues(client, cq)
  local cqueues = require "cqueues"
  local condition = require "cqueues.condition"
  if type(cq) ~= "userdata" and type(cq) ~= "table" or type(cq.wrap) ~= "function" then
    error("nanobanana.loop: cqueues(client, cq) needs a cqueues controller", 2)
  end
  local h = attach(client, 2)
  local cond = condition.new()
  h._cond, h._cq = cond, cq
  -- nb.await inside a coroutine this controller runs: wait on the condition
  -- (cqueues owns its coroutines' yields); elsewhere, the plain protocol
  function h._wait_here(_, req)
    local _, managed = cqueues.running()
    while req.state == "running" do
      if managed then cond:wait() else coroutine.yield(req) end
    end
    return req:result()
  end
  local function driver()
    while not h._stopped do
      -- the client is a cqueues pollable (pollfd/events/timeout); cond wakes
      -- this coroutine on stop()
      local t = client:timeout()
      if t == nil or t > 0 then cqueues.poll(client, cond) end
      if h._stopped then break end
      if client:pollfd() < 0 then h:stop(); break end
      local t0 = now()
      local ok, err = pcall(client.poll, client)
      cond:signal()
      h:_count(now() - t0)
      if not ok then -- a callback's error reaches cq:step/cq:loop; a new driver carries on
        cq:wrap(driver)
        error(err, 0)
      end
    end
  end
  cq:wrap(driver)
  return h
end

return M
