--- The Batch API (mixed into the Client class): client:batch(items, opts)
-- hands generations to Google's batch service (inline requests, or a JSONL
-- file uploaded with the Files API), the job's lifecycle (refresh, wait
-- with back-off, cancel, delete, list), and job:results{ output_dir }, which
-- gives each item's result in input order, the same result objects and
-- error kinds as generate. A results file is downloaded through the C
-- scanner as JSON Lines: each line's images are decoded as they arrive
-- (into their own files with output_dir), so a job of any size takes
-- constant memory per image.
local core = require "nanobanana.core"
local errors = require "nanobanana.errors"
local image = require "nanobanana.image"
local json = require "nanobanana.json"
local options = require "nanobanana.options"
local request = require "nanobanana.request"
local result = require "nanobanana.result"
local service = require "nanobanana.service"
local wire = require "nanobanana.wire"

local M = {}

M.INLINE_MAX_ITEMS = 100
M.INLINE_MAX_BYTES = 20 * 1024 * 1024
-- the memory a results file's items may hold while they wait to be taken
-- by the job:results() loop: over it, the download pauses until half is
-- taken (a slow loop holds this much, not the whole file). nil: the core's
-- NB_EVENT_QUEUE_DEFAULT (64 MiB); internal (the specs shrink it)
M.RESULTS_QUEUE_BYTES = nil

M.TERMINAL = { BATCH_STATE_SUCCEEDED = true, BATCH_STATE_FAILED = true, BATCH_STATE_CANCELLED = true,
               BATCH_STATE_EXPIRED = true }

local Job = { __name = "nanobanana.BatchJob" }
Job.__index = Job
M.Job = Job

function Job:__tostring()
  return string.format("nanobanana.BatchJob (%s, %s)", tostring(self.name), tostring(self.state))
end

-- updates job from the wire's Operation
local function update(job, op)
  local m = type(op.metadata) == "table" and op.metadata or {}
  job.name = op.name or job.name
  job.state = m.state or job.state
  job.stats = m.batchStats
  job.display_name = m.displayName or job.display_name
  job.model = m.model or job.model
  job.done = op.done == true
  job.error = op.error
  job.output = m.output
  job.create_time, job.update_time, job.end_time = m.createTime, m.updateTime, m.endTime
  job.raw = op
  return job
end

local function job_id(job)
  return (tostring(job.name):gsub("^batches/", ""))
end

local function new_job(c, op, keys)
  local job = setmetatable({ _client = c, _keys = keys }, Job)
  return update(job, op)
end

local BATCH_OPTS = {
  model = "string", display_name = "string", input = "string", validate = "boolean",
  on_progress = "function", on_done = "function", timeout = "number", retries = "number",
}

local function no_vertex(c, level)
  if c._vertex then
    options.fail(level + 1, "the Batch API of nanobanana is the Gemini API's"
      .. " (Vertex AI batch prediction is not supported)")
  end
end

-- the text of a body's JSON with its images base64-encoded (for a JSONL line)
local function text_of(segs)
  local out = {}
  for i, s in ipairs(segs) do
    if type(s) == "string" then out[i] = s
    elseif s.b64 then out[i] = core.b64encode(s.b64)
    else -- a reference file (regular files only: never blocks)
      local bytes, err = core.read_file(s.file)
      if not bytes then return nil, err end
      out[i] = core.b64encode(bytes)
    end
  end
  return table.concat(out)
end

local function seg_bytes(segs)
  local n = 0
  for _, s in ipairs(segs) do
    if type(s) == "string" then n = n + #s
    elseif s.b64 then n = n + math.ceil(#s.b64 / 3) * 4
    else
      local mime, _, _, size = core.sniff_file(s.file)
      if mime ~= false then n = n + math.ceil(size / 3) * 4 end
    end
  end
  return n
end

--- client:batch(items, opts) -> job | nil, err. items: prompts or
-- { prompt, opts } as for generate_many; opts: model, display_name,
-- input = "inline" | "file" (default: "file" above 100 items or 20 MB).
function M:batch(items, opts) return M._start_batch(self, items, opts, 2):_run() end

--- client:start_batch(items, opts) -> request (non-blocking; its result
-- is the job; opts may add on_done).
function M:start_batch(items, opts)
  local req = M._start_batch(self, items, opts, 2) -- not a tail call (error levels)
  return req
end

function M._start_batch(self, items, opts, level)
  level = (level or 1) + 1
  no_vertex(self, level)
  options.check(opts, BATCH_OPTS, "batch options", level)
  opts = opts or {}
  if type(items) ~= "table" or #items == 0 then options.fail(level, "batch(items): items is a non-empty list") end
  local model = opts.model or self.options.model
  local validate = opts.validate
  if validate == nil then validate = self.options.validate end
  -- every item is built and checked before anything is sent
  local bodies, total = {}, 0
  for i, item in ipairs(items) do
    local prompt, iopts
    if type(item) == "string" then prompt, iopts = item, {}
    elseif type(item) == "table" then prompt, iopts = item[1], item[2] or {}
    else options.fail(level, "batch item %d: a prompt or { prompt, opts }", i) end
    options.check(iopts, options.CALL, "batch item " .. i .. " options", level)
    for _, k in ipairs { "output", "on_progress", "on_done", "on_event", "stream", "timeout", "retries",
                         "connect_timeout", "stall_timeout" } do
      if iopts[k] ~= nil then options.fail(level, "batch item %d: option '%s' does not apply to a batch item", i, k) end
    end
    if iopts.model ~= nil and iopts.model ~= model then
      options.fail(level, "batch item %d: every item of a batch uses the batch's model (%s)", i, model)
    end
    local body, nimg = wire.build(prompt, iopts, level)
    if not body then return nil, nimg end
    local v = iopts.validate
    if v == nil then v = validate end
    if v ~= false then
      local ok, msg = pcall(options.check_model, model, body.generationConfig, nimg, 1, false)
      if not ok then
        msg = tostring(msg):gsub("^.-nanobanana: ", "")
        options.fail(level, "batch item %d: %s", i, msg)
      end
    end
    local segs = json.encode(body, image.is_image, function(img) return img:_segment() end, level)
    bodies[i] = segs
    total = total + seg_bytes(segs)
  end
  local input = opts.input or ((#items > M.INLINE_MAX_ITEMS or total > M.INLINE_MAX_BYTES) and "file" or "inline")
  if input ~= "inline" and input ~= "file" then options.fail(level, "input must be \"inline\" or \"file\"") end
  local display = opts.display_name or ("nanobanana-" .. os.date("!%Y%m%d-%H%M%S"))
  local keys = {}
  local segs = { '{"batch":{"displayName":' .. json.encode_text(display, level) .. ',"inputConfig":' }
  local req = service.new(self, { on_progress = opts.on_progress, on_done = opts.on_done, timeout = opts.timeout,
                                  retries = opts.retries }, level, function(rq, r)
      local d, err = service.decode(rq, r, true)
      if not d then return nil, err end
      return new_job(self, d, keys)
    end, "batch")
  local name = model:match("^models/") and model or ("models/" .. model)
  local url = service.api(self) .. "/" .. name .. ":batchGenerateContent"
  if input == "inline" then
    segs[#segs + 1] = '{"requests":{"requests":['
    for i, b in ipairs(bodies) do
      segs[#segs + 1] = (i > 1 and "," or "") .. '{"request":'
      for _, sg in ipairs(b) do segs[#segs + 1] = sg end
      segs[#segs + 1] = ',"metadata":{"key":"' .. i .. '"}}'
      keys[tostring(i)] = i
    end
    segs[#segs + 1] = "]}}}}"
    service.send(req, "POST", url, nil, segs)
    return req
  end
  -- file input: the JSONL is written, uploaded, then the job created
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  for i, b in ipairs(bodies) do
    local text, err = text_of(b)
    if not text then
      f:close(); os.remove(path)
      service.finish(req, nil, errors.new("io", { message = tostring(err) }, self:_secrets()))
      return req
    end
    f:write('{"key":"', i, '","request":', text, "}\n")
    keys[tostring(i)] = i
  end
  f:close()
  self._reqs[req] = true -- running while its upload runs
  local up = require("nanobanana.files")._start_upload(self, path, { mimeType = "application/jsonl",
    displayName = display .. ".jsonl", timeout = opts.timeout, retries = opts.retries }, level)
  local function uploaded(file, err)
    os.remove(path)
    if req._finished then return end
    if not file then return service.finish(req, nil, err) end
    segs[#segs + 1] = '{"fileName":' .. json.encode_string(file.name) .. "}}}"
    service.send(req, "POST", url, nil, segs)
  end
  if up._finished then uploaded(up:result())
  else
    up._on_finish = function(rq, _, err) uploaded(not err and rq._value or nil, err) end
    req._sub = up
    req.cancel = function(rq) -- (cancels the upload too)
      if rq._sub then rq._sub:cancel() end
      return getmetatable(rq).cancel(rq)
    end
  end
  return req
end

local function call(c, method, path, step, body)
  local req = service.new(c, nil, 3, step, "batch")
  service.send(req, method, service.api(c) .. path, nil, body)
  return req:_run()
end

--- job:start_refresh(opts) -> request (non-blocking refresh; its result
-- is the job, updated in place; opts: on_done, timeout, retries).
function Job:start_refresh(opts)
  local job = self
  local c = job._client
  local req = service.new(c, opts, 2, function(rq, r)
    local d, err = service.decode(rq, r, true)
    if not d then return nil, err end
    return update(job, d)
  end, "batch")
  service.send(req, "GET", service.api(c) .. "/batches/" .. job_id(job))
  return req
end

--- job:refresh() -> job (updated in place) | nil, err.
function Job:refresh() return self:start_refresh():_run() end

--- job:wait{ interval = 5, max_interval = 60, timeout, on_state } -> job once
-- its state is terminal, false on timeout, nil, err when asking failed.
-- The interval grows by half after each look, up to max_interval.
function Job:wait(opts)
  options.check(opts, { interval = "number", max_interval = "number", timeout = "number", on_state = "function" },
    "job:wait options", 2)
  opts = opts or {}
  local c = self._client
  local interval = opts.interval or 5
  local max_interval = math.max(opts.max_interval or 60, interval)
  local deadline = opts.timeout and (core.now() + opts.timeout)
  local last = self.state
  while not M.TERMINAL[self.state] do
    local now = core.now()
    if deadline and now >= deadline then return false end
    local until_t = now + interval
    if deadline and until_t > deadline then until_t = deadline end
    while core.now() < until_t do
      c:poll()
      c._engine:perform(math.max(1, math.floor((until_t - core.now()) * 1000)))
    end
    if deadline and core.now() >= deadline and not M.TERMINAL[self.state] then
      -- one last look at the deadline
      local ok, err = self:refresh()
      if not ok then return nil, err end
      if M.TERMINAL[self.state] then break end
      return false
    end
    local ok, err = self:refresh()
    if not ok then return nil, err end
    if self.state ~= last then
      last = self.state
      if opts.on_state then opts.on_state(self) end
    end
    interval = math.min(interval * 1.5, max_interval)
  end
  return self
end

--- job:cancel() -> true | nil, err.
function Job:cancel()
  return call(self._client, "POST", "/batches/" .. job_id(self) .. ":cancel", function() return true end, { "" })
end

--- job:delete() -> true | nil, err.
function Job:delete()
  return call(self._client, "DELETE", "/batches/" .. job_id(self), function() return true end)
end

--- client:batch_job(name) -> job | nil, err: a job made earlier (by this
-- program or another), from its name ("batches/abc" or "abc"), as the
-- service has it now. Its results are taken in the order of the keys it
-- was made with (this library's: the positions in the submitted list).
function M:batch_job(name)
  no_vertex(self, 2)
  if getmetatable(name) == Job then name = name.name end
  local id = service.resource_id(name, "batches/", "batch job's name", 2)
  return new_job(self, { name = "batches/" .. id }):start_refresh():_run()
end

--- client:batches{ page_size, page_token } -> array of jobs (with
-- .next_page_token), next_page_token | nil, err.
function M:batches(opts)
  no_vertex(self, 2)
  local q = service.page_query(opts, "batches options", 2)
  local list, err = call(self, "GET", "/batches" .. q, function(rq, r)
    local d, derr = service.decode(rq, r, true)
    if not d then return nil, derr end
    local out = json.array()
    for i, op in ipairs(type(d.operations) == "table" and d.operations or {}) do out[i] = new_job(self, op) end
    out.next_page_token = d.nextPageToken
    return out
  end)
  if not list then return nil, err end
  return list, list.next_page_token
end

-- ------------------------------------------------------------------ results

-- An item's result from its wire response or error (kinds as generate's).
-- src is the transfer or event holding the line's blobs; with dir, the first
-- final image's file is kept as dir/<pos>.<ext>.
local function item_result(c, line, src, dir, pos)
  local secrets = c:_secrets()
  if type(line.error) == "table" then
    local e = line.error
    return nil, errors.new("api", { status = type(e.code) == "number" and e.code or nil,
      code = type(e.status) == "string" and e.status or nil,
      message = type(e.message) == "string" and e.message or "error without a message", details = e.details }, secrets)
  end
  if type(line.response) ~= "table" then
    return nil, errors.new("invalid_response", { message = "a batch result has neither response nor error" }, secrets)
  end
  local holder = {}
  local decoded, err = result.materialize(line.response, function(i, part)
    return request.take_blob(src, i, part, holder)
  end, secrets)
  local kept = holder._kept
  if not decoded then
    if kept then os.remove(kept) end
    return nil, err
  end
  local res, rerr = result.from_response(decoded, 200, secrets)
  if not res then
    if kept then os.remove(kept) end
    return nil, rerr
  end
  if kept then
    local img = res.images[1]
    if img and img.path == kept then
      local target = dir .. "/" .. pos .. "." .. (img:extension() or "bin")
      local ok, msg = c._engine:replace_file(kept, target)
      if not ok then return nil, errors.new("io", { message = tostring(msg) }, secrets) end
      img.path = target
    else
      os.remove(kept)
    end
  end
  return res
end

--- for i, res, err in job:results{ output_dir = dir } do ... end — every
-- item in input order (i: its position in the submitted list), res/err as
-- generate gives them. `timeout` bounds the whole download (default: none;
-- the download pauses while the loop is slow). With output_dir, each item's first final image is
-- written to dir/<i>.<ext> (res.images[1].path). Raises unless the job
-- has succeeded.
function Job:results(opts)
  options.check(opts, { output_dir = "string", timeout = "number", retries = "number" }, "job:results options", 2)
  opts = opts or {}
  if self.state ~= "BATCH_STATE_SUCCEEDED" then
    options.fail(2, "job:results(): the job has not succeeded (state %s); wait for it first", tostring(self.state))
  end
  local c = self._client
  local dir = opts.output_dir
  if dir then dir = dir:gsub("/+$", ""); if dir == "" then dir = "/" end end
  local out = type(self.output) == "table" and self.output or {}
  local n = tonumber(self.stats and self.stats.requestCount)
  local pending, nextpos, arrived = {}, 1, 0
  local keys = self._keys
  -- an item's position: from the keys this client gave, else the key as a
  -- number, else the order of arrival
  local function position(key)
    arrived = arrived + 1
    return (keys and keys[tostring(key)]) or (not keys and tonumber(key)) or arrived
  end
  -- (not retried by default: the lines already given would come again; no
  -- whole-download timeout by default: the download pauses while the loop
  -- is busy, for as long as the loop likes -- stall_timeout still catches a
  -- connection that goes silent while it is not paused)
  local req = service.new(c, { timeout = opts.timeout or math.huge, retries = opts.retries or 0 }, 2, nil,
    "batch results")
  local secrets = c:_secrets()
  if type(out.responsesFile) == "string" then
    local id = out.responsesFile:gsub("^files/", "")
    local function pull(x, wait)
      while true do
        local sk, ev = x:next_event(wait)
        if not sk then return end
        local line, err = result.decode(sk, 200, nil, secrets)
        if line then
          local pos = position(line.key)
          pending[pos] = { item_result(c, line, ev, dir, pos) }
        else
          pending[position(nil)] = { nil, err }
        end
        ev:close()
      end
    end
    req._pull = pull
    req._step = function(_, _, x) pull(x, true); return true end
    service.prepare(req, "GET", service.api(c) .. "/files/" .. id .. ":download?alt=media")
    req._spec.jsonl = true
    req._spec.blob_dir = dir
    req._spec.max_bytes = 0 -- (any size: it is taken line by line, each image as it arrives)
    req._spec.queue_bytes = M.RESULTS_QUEUE_BYTES
    req:_attempt()
  else
    local list = type(out.inlinedResponses) == "table" and out.inlinedResponses.inlinedResponses
    req._step = function(rq, r, x)
      local d, err = service.decode(rq, r, true)
      if not d then return nil, err end
      local o = type(d.metadata) == "table" and d.metadata.output or nil
      local items = type(o) == "table" and type(o.inlinedResponses) == "table" and o.inlinedResponses.inlinedResponses
      if type(items) ~= "table" then
        return nil, errors.new("invalid_response", { message = "the job has no inline responses" }, secrets)
      end
      for k, line in ipairs(items) do
        local md = type(line) == "table" and line.metadata
        local key = type(md) == "table" and md.key or k
        local pos = position(key)
        pending[pos] = { item_result(c, line, x, dir, pos) }
      end
      return true
    end
    n = n or (type(list) == "table" and #list) or nil
    service.prepare(req, "GET", service.api(c) .. "/batches/" .. job_id(self))
    req._spec.blob_dir = dir
    req:_attempt()
  end
  local function iter()
    while true do
      local slot = pending[nextpos]
      if slot then
        pending[nextpos] = nil
        nextpos = nextpos + 1
        return nextpos - 1, slot[1], slot[2]
      end
      if req._finished then
        local total = n or (arrived > 0 and arrived) or 0
        if nextpos > total then return nil end
        local err = req._err or errors.new("invalid_response",
          { message = "the batch results have nothing for item " .. nextpos }, secrets)
        nextpos = nextpos + 1
        return nextpos - 1, nil, err
      end
      if req._xfer and req._pull then req._pull(req._xfer, false) end
      if not pending[nextpos] and not req._finished then
        c:poll()
        if not pending[nextpos] and not req._finished then c._engine:perform(50) end
      end
    end
  end
  -- the loop's closing value (Lua 5.4): a break or an error in the loop
  -- ends the download at once, instead of leaving it paused until close()
  local closing = setmetatable({}, { __close = function() if not req._finished then req:_abandon() end end })
  return iter, nil, nil, closing
end

return M
