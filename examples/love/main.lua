-- nanobanana in LÖVE 11.4: type a prompt, press Enter, watch the progress
-- bar; the generated image appears as a texture while the frame rate holds.
--
--   love examples/love                    the app (GEMINI_API_KEY / GOOGLE_API_KEY,
--                                         GOOGLE_GEMINI_BASE_URL as for every client)
--   love examples/love --selftest OUTDIR  scripted run: several requests at once (4K among
--                                         them), every frame timed, a screenshot, then
--                                         OUTDIR/selftest.json and OUTDIR/screenshot.png
--
-- LÖVE runs LuaJIT: nanobanana's core must be built for it
-- (cmake -DNB_LUA_VERSION=luajit) and found through LUA_PATH / LUA_CPATH.
--
-- How the work is split, so that no frame waits:
--   * client:poll() once a frame (LÖVE has no fd hook); it never blocks.
--   * on_done only marks the job; the bytes are handed to the decoding thread
--     after poll() returns. In "disk" mode the image was streamed to a file
--     with output= and the thread gets the path (the cheapest hand-off: the
--     main thread never holds the bytes). In "memory" mode nothing touches
--     the disk: the bytes go to the thread, which wraps them with
--     love.filesystem.newFileData(bytes, name).
--   * decoder.lua (love.thread) decodes with love.image.newImageData and sends
--     the ImageData back; the main thread only uploads it
--     (love.graphics.newImage), at most one texture per frame.
local nb = require "nanobanana"

local SIZES = { "1K", "2K", "4K" }
local PERIOD = 1 / 60
local BIG = 4 * 1024 * 1024 -- an in-memory copy of more bytes than this costs milliseconds

local client
local jobs_ch, results_ch, decoder
local jobs, by_id, next_id = {}, {}, 0
local input, mode, size_i = "", "memory", 1
local out_dir
local selftest -- the scripted run's state, when --selftest OUTDIR was given
local frame = { n = 0, poll_ms = 0, upload = false }
local probe -- a 1x1 canvas that each new texture is drawn into once
local warm_dot -- the warm-up's image, drawn once on the screen (love.draw), then released

local function now() return love.timer.getTime() end

-- The main thread's CPU time (Linux, through LuaJIT's FFI), so the self-test
-- can tell the game's own work from time the machine gave to others.
local thread_cpu = function() return 0 end
do
  local ok, ffi = pcall(require, "ffi")
  if ok and ffi.os == "Linux" and pcall(ffi.cdef, [[
      typedef struct { long tv_sec; long tv_nsec; } nb_love_timespec;
      int clock_gettime(int clock_id, nb_love_timespec *tp);]]) then
    local ts = ffi.new("nb_love_timespec")
    thread_cpu = function() -- CLOCK_THREAD_CPUTIME_ID is 3 on Linux
      ffi.C.clock_gettime(3, ts)
      return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
    end
  end
end

local function start_job(prompt, size, how, model)
  next_id = next_id + 1
  local job = { id = next_id, prompt = prompt, size = size, mode = how, state = "running" }
  local opts = {
    model = model,
    imageConfig = { imageSize = size },
    on_done = function(res, err)
      if err then
        job.state, job.err = "failed", tostring(err)
      else
        job.img, job.state = res.images[1], "ready"
        job.elapsed = res.elapsed
        -- were the bytes copied into a Lua string inside poll() (a core without
        -- lazily materialised img.data), or are they still in C memory?
        job.eager = job.img.path == nil and rawget(job.img, "data") ~= nil
        if job.eager and #rawget(job.img, "data") > BIG then frame.eager = true end
      end
    end,
  }
  if how == "disk" then opts.output = string.format("%s/love-%d.img", out_dir, job.id) end
  job.req = client:start(prompt, opts)
  jobs[#jobs + 1], by_id[job.id] = job, job
  return job
end

-- Work that may cost milliseconds waits for a frame that still has time:
-- at most one hand-off and one texture upload a frame, each only while the
-- frame has spent less than this (a frame is 16.7 ms at 60 Hz).
local BUDGET = 0.006

local function frame_has_time() return now() - frame.t0 < BUDGET end

-- After poll(): hand one finished image to the decoding thread, in the
-- cheapest way for where its bytes are:
--   * a file (output=): only its path crosses; the thread reads it.
--   * in memory: the bytes cross as a Lua string (a LÖVE channel copies it
--     once). Reading img.data makes that string from the C memory (one
--     more copy), so the two copies go in two frames: "ready" -> "bytes"
--     -> "decoding".
local function hand_off()
  for _, job in ipairs(jobs) do
    if (job.state == "ready" or job.state == "bytes") and frame_has_time() then
      local img = job.img
      local t0 = now()
      if img.path then
        jobs_ch:push { id = job.id, path = img.path }
      elseif job.state == "ready" then
        job.bytes_string = img.data
        frame.copy = #job.bytes_string > BIG -- flagged for the self-test's report
        job.state = "bytes"
        job.take_ms = (now() - t0) * 1000
        return
      else
        frame.copy = #job.bytes_string > BIG
        jobs_ch:push { id = job.id, bytes = job.bytes_string, name = "image" }
        job.bytes_string = nil
      end
      job.handoff_ms = (now() - t0) * 1000
      job.width, job.height, job.mime, job.path = img.width, img.height, img.mimeType, img.path
      job.img, job.req = nil, nil -- the thread has the bytes (or their file) now
      job.state = "decoding"
      return
    end
  end
end

-- One decoded image a frame becomes a texture.
local function upload_one()
  if not frame_has_time() then return end
  local r = results_ch:pop()
  if not r then return end
  local job = by_id[r.id]
  if r.error then
    job.state, job.err = "failed", r.error
    return
  end
  local t0 = now()
  job.tex = love.graphics.newImage(r.imagedata)
  -- draw it once off screen and flush, so that a driver that uploads lazily
  -- (Mesa's llvmpipe under Xvfb) does it in this frame, not in the next draw
  love.graphics.setCanvas(probe)
  love.graphics.draw(job.tex, 0, 0, 0, 1 / job.tex:getWidth(), 1 / job.tex:getHeight())
  love.graphics.setCanvas()
  love.graphics.flushBatch()
  job.upload_ms = (now() - t0) * 1000
  job.decode_ms, job.sha256, job.bytes = r.decode_ms, r.sha256, r.bytes
  r.imagedata:release()
  job.state = "shown"
  frame.upload = true
end

local function busy()
  for _, job in ipairs(jobs) do
    if job.state ~= "shown" and job.state ~= "failed" then return true end
  end
  return false
end

-- ------------------------------------------------------------ self-test
local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

local function to_json(v)
  local t = type(v)
  if t == "table" then
    if #v > 0 or next(v) == nil then
      local out = {}
      for i = 1, #v do out[i] = to_json(v[i]) end
      return "[" .. table.concat(out, ",") .. "]"
    end
    local out = {}
    for k, x in pairs(v) do out[#out + 1] = json_string(k) .. ":" .. to_json(x) end
    table.sort(out)
    return "{" .. table.concat(out, ",") .. "}"
  elseif t == "string" then return json_string(v)
  elseif t == "number" then return string.format("%.17g", v)
  elseif t == "boolean" then return tostring(v) end
  return "null"
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function selftest_finish(ok, why)
  local report = { ok = ok, why = why, frames = selftest.frames, jobs = {}, lua = jit and jit.version or _VERSION,
                   love = string.format("%d.%d.%d", love.getVersion()) }
  for _, job in ipairs(jobs) do
    report.jobs[#report.jobs + 1] = {
      id = job.id, prompt = job.prompt, size = job.size, mode = job.mode, state = job.state, err = job.err,
      width = job.width, height = job.height, mime = job.mime, path = job.path, bytes = job.bytes,
      sha256 = job.sha256, tex_width = job.tex and job.tex:getWidth(), tex_height = job.tex and job.tex:getHeight(),
      handoff_ms = job.handoff_ms, take_ms = job.take_ms, eager = job.eager, decode_ms = job.decode_ms,
      upload_ms = job.upload_ms, elapsed = job.elapsed,
    }
  end
  write_file(selftest.dir .. "/selftest.json", to_json(report))
  love.event.quit(ok and 0 or 1)
end

local function selftest_update()
  local st = selftest
  if st.stage == "wait" and frame.n >= 10 then
    -- several requests at once: 1K, 2K and 4K pictures (JPEG) in memory, and two
    -- 24 MiB PNGs (a 4K-sized payload), one streamed to a file, one in memory
    -- the first one is typed, through the same handlers as the keyboard (1K, memory: the defaults)
    for c in ("A lighthouse on a cliff at dawn"):gmatch(".") do love.textinput(c) end
    love.keypressed("return")
    start_job("A koi pond in autumn, seen from above", "4K", "memory")
    start_job("A cozy reading nook", "2K", "disk")
    start_job("Static noise, 24 MiB [[fault:huge:24M]]", "4K", "disk")
    start_job("More static noise, 24 MiB [[fault:huge:24M]]", "4K", "memory")
    st.stage, st.t0 = "running", now()
  elseif st.stage == "running" and not busy() then
    st.stage, st.shot_at = "settle", frame.n + 10
  elseif st.stage == "settle" and frame.n >= st.shot_at then
    st.stage = "shot"
    love.graphics.captureScreenshot(function(imagedata)
      write_file(st.dir .. "/screenshot.png", imagedata:encode("png"):getString())
      st.stage = "done"
    end)
  elseif st.stage == "done" then
    local ok = true
    for _, job in ipairs(jobs) do ok = ok and job.state == "shown" end
    return selftest_finish(ok, ok and "all shown" or "a job failed")
  end
  if st.t0 and now() - st.t0 > 120 then selftest_finish(false, "timed out") end
end

-- ------------------------------------------------------------ LÖVE callbacks
function love.load(args)
  for i = 1, #args do
    if args[i] == "--selftest" then selftest = { dir = assert(args[i + 1], "--selftest needs OUTDIR"), frames = {} } end
  end
  if selftest then
    out_dir = selftest.dir
  else
    love.filesystem.createDirectory("images")
    out_dir = love.filesystem.getSaveDirectory() .. "/images"
  end
  client = nb.new { model = os.getenv("NB_LOVE_MODEL") or "gemini-3-pro-image" }
  jobs_ch, results_ch = love.thread.newChannel(), love.thread.newChannel()
  decoder = love.thread.newThread("decoder.lua")
  decoder:start(jobs_ch, results_ch)
  love.keyboard.setKeyRepeat(true)
  -- warm-up: LÖVE rasterises glyphs and builds shaders on first use; do it
  -- now rather than in the frame that shows the first job
  local canvas = love.graphics.newCanvas(64, 64)
  love.graphics.setCanvas(canvas)
  local ascii = {}
  for c = 32, 126 do ascii[#ascii + 1] = string.char(c) end
  love.graphics.print(table.concat(ascii) .. "—ÖÄÜ", 0, 0)
  love.graphics.rectangle("fill", 0, 0, 8, 8)
  warm_dot = love.graphics.newImage(love.image.newImageData(2, 2))
  love.graphics.draw(warm_dot, 0, 0, 0, 4, 4)
  love.graphics.setCanvas()
  canvas:release()
  probe = love.graphics.newCanvas(1, 1)
  if selftest then selftest.stage = "wait" end
end

function love.update()
  local t0, c0 = now(), thread_cpu()
  client:poll()
  frame.poll_ms, frame.poll_cpu_ms = (now() - t0) * 1000, (thread_cpu() - c0) * 1000
  hand_off()
  upload_one()
  local err = decoder:getError()
  if err then error("decoder thread: " .. err) end
  if selftest then selftest_update() end
end

function love.textinput(t) input = input .. t end

function love.keypressed(key)
  if key == "backspace" then input = input:sub(1, -2) -- ASCII prompts; good enough for an example
  elseif key == "return" and input ~= "" then start_job(input, SIZES[size_i], mode); input = ""
  elseif key == "tab" then mode = mode == "memory" and "disk" or "memory"
  elseif key == "f1" then size_i = size_i % #SIZES + 1
  elseif key == "escape" then love.event.quit() end
end

local TILE, PAD = 150, 8

function love.draw()
  local g = love.graphics
  if warm_dot then
    -- the rest of the warm-up, on the screen itself: a software renderer
    -- (Mesa's llvmpipe) compiles its shaders per render target on first use
    -- (tens of ms with a cold shader cache), so a tile's colours, bars, text
    -- and a scaled image are drawn once here, then cleared away
    g.setColor(0.2, 0.21, 0.25)
    g.rectangle("fill", 0, 0, 8, 8)
    g.setColor(0.95, 0.8, 0.2)
    g.rectangle("fill", 0, 0, 4, 4)
    g.setColor(1, 1, 1)
    g.draw(warm_dot, 0, 0, 0, 0.5, 0.5)
    g.draw(warm_dot, 0, 0, 0, 3, 3)
    g.print("#1 4K memory downloading 1024x1024", 0, 0)
    warm_dot:release()
    warm_dot = nil
  end
  g.clear(0.12, 0.13, 0.16)
  g.setColor(1, 1, 1)
  g.print("nanobanana in LÖVE — prompt: " .. input .. "_", PAD, PAD)
  g.print(string.format("Enter: generate   Tab: %s   F1: size %s   Esc: quit", mode, SIZES[size_i]), PAD, PAD + 18)
  for i, job in ipairs(jobs) do
    local col, row = (i - 1) % 5, math.floor((i - 1) / 5)
    local x, y = PAD + col * (TILE + PAD), 50 + row * (TILE + 56)
    g.setColor(0.2, 0.21, 0.25)
    g.rectangle("fill", x, y, TILE, TILE)
    g.setColor(1, 1, 1)
    if job.tex then
      local w, h = job.tex:getDimensions()
      local s = math.min(TILE / w, TILE / h)
      g.draw(job.tex, x + (TILE - w * s) / 2, y + (TILE - h * s) / 2, 0, s, s)
    end
    local p = job.req and job.req.progress
    local frac = (job.state == "running" and p and p.download_total > 0) and p.downloaded / p.download_total
      or (job.state == "running" and 0 or 1)
    g.setColor(0.3, 0.3, 0.35)
    g.rectangle("fill", x, y + TILE + 4, TILE, 6)
    g.setColor(0.95, 0.8, 0.2)
    g.rectangle("fill", x, y + TILE + 4, TILE * frac, 6)
    g.setColor(1, 1, 1)
    local what = job.state == "running" and p and p.phase or job.state
    g.print(string.format("#%d %s %s %s", job.id, job.size, job.mode, what), x, y + TILE + 12)
    g.print(job.width and string.format("%dx%d", job.width, job.height) or (job.err or ""):sub(1, 24), x, y + TILE + 28)
  end
end

function love.quit()
  jobs_ch:push("quit")
  client:close()
end

-- A 60 Hz loop that times every frame: work (events, update, draw, present),
-- period (start to start, the frame time a player sees) and the main
-- thread's CPU time in it.
function love.run()
  love.load(love.arg.parseGameArguments(arg), arg)
  love.timer.step()
  local last
  return function()
    local start, cpu0 = now(), thread_cpu()
    love.event.pump()
    for name, a, b, c, d, e, f in love.event.poll() do
      if name == "quit" and not (love.quit and love.quit()) then return a or 0 end
      love.handlers[name](a, b, c, d, e, f)
    end
    frame.n, frame.upload, frame.eager, frame.copy, frame.t0 = frame.n + 1, false, false, false, start
    love.update(love.timer.step())
    if love.graphics.isActive() then
      love.graphics.origin()
      love.draw()
      love.graphics.present()
    end
    if selftest then -- a frame's period is known when the next one starts
      local fr = selftest.frames
      if last then fr[#fr].period_ms = (start - last) * 1000 end
      fr[#fr + 1] = { work_ms = (now() - start) * 1000, cpu_ms = (thread_cpu() - cpu0) * 1000,
                      poll_ms = frame.poll_ms, poll_cpu_ms = frame.poll_cpu_ms, upload = frame.upload,
                      eager = frame.eager,
                      copy = frame.copy,
                      busy = selftest.stage == "running" }
    end
    last = start
    local rest = PERIOD - (now() - start)
    if rest > 0 then love.timer.sleep(rest) end
  end
end
