-- The game side of examples/embed: run by embed_demo (main.c), which calls
-- frame(n, dt) once per frame at a fixed rate and times each call.
--
--   embed_demo frame_loop.lua [--count N] [--out DIR] [--prompt TEXT] [--progress-every F]
--   (positional form: frame_loop.lua [COUNT [DIR]])
--
-- Frame 1 starts COUNT generations (default 4), each streamed to
-- DIR/frame-<i>.png. Every frame calls client:poll() exactly once; poll
-- never blocks, it only moves whatever bytes are already there, and fires
-- on_progress / on_done. A progress line is printed at most every 10
-- frames. When every request has finished, the global `ok` is set to true
-- iff all of them succeeded and their files exist, and frame returns true.
--
-- Uses GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY (or GOOGLE_API_KEY) from
-- the environment, like every nanobanana client built with nb.new().
local nb = require "nanobanana"

-- ------------------------------------------------------------ arguments
-- a whole number from text, or nil (Lua 5.1 to 5.4 and LuaJIT)
local function whole(s)
  local n = tonumber(s)
  if n and n == math.floor(n) then return n end
end

local count, outdir, prompt, every = nil, nil, nil, 10
do
  local pos = {}
  local i = 1
  while arg and arg[i] ~= nil do
    local a = arg[i]
    local function value()
      local v = arg[i + 1]
      if v == nil then error("frame_loop.lua: " .. a .. " needs a value", 0) end
      i = i + 1
      return v
    end
    if a == "--count" then count = value()
    elseif a == "--out" then outdir = value()
    elseif a == "--prompt" then prompt = value()
    elseif a == "--progress-every" then every = whole(value())
    else pos[#pos + 1] = a end
    i = i + 1
  end
  count = count or pos[1] or "4"
  outdir = outdir or pos[2]
end
count = whole(count)
if not count or count < 1 then error("frame_loop.lua: count must be a whole number >= 1", 0) end
if not every or every < 1 then error("frame_loop.lua: --progress-every must be a whole number >= 1", 0) end
prompt = prompt or "A cute baby sea otter, pixel art sprite"

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- the output directory: from arg, else a fresh temp dir named like
-- os.tmpname()'s files (done once at load time, never inside a frame)
if not outdir then
  outdir = os.tmpname()
  os.remove(outdir)
  if not os.execute("mkdir -m 700 " .. sh_quote(outdir)) then
    error("frame_loop.lua: cannot create " .. outdir, 0)
  end
end
outdir = outdir:gsub("/+$", "")
if outdir == "" then outdir = "/" end

-- ------------------------------------------------------------ state
local client = nb.new { retries = 0, model = "gemini-2.5-flash-image" } -- (PNG output: the files are checked as PNGs)
local jobs = {}          -- i -> { req=, path=, p = progress copy for display, res=, err= }
local ndone = 0

-- 12K, 3.4M: short enough for 8 requests on one line
local function size(n)
  n = n or 0
  if n < 1e6 then return string.format("%.0fK", n / 1e3) end
  return string.format("%.1fM", n / 1e6)
end

local function start_all()
  for i = 1, count do
    local job = { path = outdir .. "/frame-" .. i .. ".png", p = { phase = "connecting" } }
    jobs[i] = job
    job.req = client:start(prompt .. " #" .. i, {
      output = job.path,
      on_progress = function(p)
        -- p is the request's live progress table: copy what we show
        local c = job.p
        c.phase, c.downloaded, c.download_total = p.phase, p.downloaded, p.download_total
        c.uploaded, c.upload_total = p.uploaded, p.upload_total
      end,
      on_done = function(res, err)
        job.res, job.err = res, err
        local p, c = job.req.progress, job.p -- final numbers
        c.downloaded, c.download_total = p.downloaded, p.download_total
        c.phase = res and "done" or (err and err.kind == "cancelled" and "cancelled" or "failed")
        ndone = ndone + 1
      end,
    })
  end
end

local function progress_line(n)
  local parts = {}
  for i, job in ipairs(jobs) do
    local p = job.p
    local total = (p.download_total or 0) > 0 and size(p.download_total) or "?"
    parts[#parts + 1] = string.format("%d:%s %s/%s", i, p.phase, size(p.downloaded), total)
  end
  return string.format("frame %4d  %d/%d done  %s", n, ndone, count, table.concat(parts, "  "))
end

local PNG = "\137PNG\r\n\26\n"

-- ok when every request succeeded with its image at the output path. The
-- report lines are kept for shutdown(): printing is the game's cost, not
-- nanobanana's, so the last frame only does the cheap checks.
local report = {}
local function check_all()
  local good = true
  for i, job in ipairs(jobs) do
    local res, err = job.req:result()
    if not res then
      report[#report + 1] = string.format("  #%d failed: %s", i, tostring(err or job.err))
      good = false
    else
      local img = res.images and res.images[1]
      local f = img and img.path == job.path and io.open(job.path, "rb")
      local head = f and f:read(8)
      local bytes = f and f:seek("end")
      if f then f:close() end
      if head ~= PNG then
        report[#report + 1] = string.format("  #%d: %s is missing or not a PNG", i, job.path)
        good = false
      else
        report[#report + 1] = string.format("  #%d: %s %s %dx%d, %s, %.2f s", i, job.path, img.mimeType,
          img.width or 0, img.height or 0, size(bytes), res.elapsed or 0)
      end
    end
  end
  return good
end

-- ------------------------------------------------------------ the host's hooks
ok = false
print(string.format("frame_loop: %d generations -> %s/frame-N.png (%s)", count, outdir, tostring(client)))

function frame(n, dt) -- luacheck: ignore dt
  if n == 1 then start_all() end
  client:poll()          -- exactly once per frame; never blocks
  local finished = ndone == count
  if finished or n % every == 0 then
    print(progress_line(n))
  end
  if finished then
    ok = check_all()
    return true
  end
  return false
end

-- called by the host once the loop is over (also when --frames cut it short)
function shutdown()
  local finished = ndone
  client:close()         -- cancels anything still in flight, frees the engine
  if finished == count then
    print(string.format("frame_loop: all %d finished, %s", count, ok and "all succeeded" or "NOT all succeeded"))
  else
    print(string.format("frame_loop: stopped with %d of %d finished (the rest cancelled)", finished, count))
  end
  for _, line in ipairs(report) do print(line) end
end
