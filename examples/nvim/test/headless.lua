-- Headless test of the plugin, against the fake server:
--
--   NB_ROOT=... NB_FAKE_URL=http://127.0.0.1:PORT NB_OUT=DIR \
--     nvim --headless -u NONE -i NONE -c "luafile examples/nvim/test/headless.lua"
--
-- Loads the plugin from examples/nvim (runtimepath), runs :NanoBanana on a
-- 4K request (a 24 MiB image: the server runs with --noise-bytes 24M and
-- --latency-ms, and pauses the body once), and meanwhile:
--   * an editor timer (vim.fn.timer_start, 10 ms, repeating) records how
--     late each tick fires;
--   * keys are typed (nvim_input "ix<Esc>" every 50 ms) and an InsertCharPre
--     autocmd records when the editor handled each one.
-- Then checks: the file is the server's image byte for byte (sha256 against
-- the server's log), progress and the path were reported in the message
-- area, every typed key reached the buffer, the timer kept firing (no tick
-- over 50 ms late), and no run of poll() held the editor's loop over 20 ms. Writes
-- `nvim:` figures to NB_OUT/report.txt; exits 0 (:qa) or 1 (:cq).
local root = assert(os.getenv("NB_ROOT"), "NB_ROOT")
local fake_url = assert(os.getenv("NB_FAKE_URL"), "NB_FAKE_URL")
local out = assert(os.getenv("NB_OUT"), "NB_OUT")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("NB_LUA_CPATH") or (root .. "/build-luajit/?.so")) .. ";" .. package.cpath
vim.opt.runtimepath:prepend(root .. "/examples/nvim")
vim.cmd("runtime plugin/nanobanana.lua")

local uv = vim.loop
local function now_ms() return uv.hrtime() / 1e6 end
local LATE_MS = tonumber(os.getenv("NB_NVIM_LATE_MS") or "50") -- the bound on a tick's lateness
local STEP_MS = 20 -- the bound on one run of poll() and its callbacks on the editor's loop

local plugin = require "nanobanana_nvim"
plugin.setup {
  dir = out, model = "gemini-3-pro-image", image_size = "4K",
  client = { base_url = fake_url, api_key = "test-key", retries = 0 },
}

local fails = {}
local function check(cond, msg) if not cond then fails[#fails + 1] = msg end end

-- the editor timer: lateness of each tick against the previous one
local INTERVAL = 10
local ticks, max_late, late_sum, last_tick = 0, 0, 0, nil
local running = true
local timer = vim.fn.timer_start(INTERVAL, function()
  local t = now_ms()
  if last_tick and running then
    local late = t - last_tick - INTERVAL
    if late > max_late then max_late = late end
    late_sum = late_sum + math.max(0, late)
    ticks = ticks + 1
  end
  last_tick = t
end, { ["repeat"] = -1 })

-- typing: keys sent, and when the editor handled each one
local sent, handled, max_key_lag = {}, 0, 0
vim.api.nvim_create_autocmd("InsertCharPre", { callback = function()
  handled = handled + 1
  local t0 = sent[handled]
  if t0 then max_key_lag = math.max(max_key_lag, now_ms() - t0) end
end })
local typer = uv.new_timer()
typer:start(50, 50, vim.schedule_wrap(function()
  if not running then return end
  sent[#sent + 1] = now_ms()
  vim.api.nvim_input("ix<Esc>")
end))

-- the server runs with --noise-bytes 24M (every final image a 24 MiB PNG) and
-- --latency-ms; the stall fault pauses the body after its first KiB
local prompt = "A 4K lighthouse at dusk [[fault:stall:1]]"
local t0 = now_ms()
vim.cmd("NanoBanana " .. prompt)
local started_ms = now_ms() - t0

local function finish()
  vim.fn.timer_stop(timer)
  typer:stop(); typer:close()
  local wall = now_ms() - t0
  -- the file against the server's log (sha256sum and curl: nothing of the library)
  local path = plugin.last_path
  check(path ~= nil, "no image path reported: " .. table.concat(plugin.messages, " | "))
  local log = vim.fn.json_decode(vim.fn.system({ "curl", "-s", fake_url .. "/_nb/requests" }))
  local served
  for _, rec in ipairs(log) do
    if rec.body.contents[1].parts[1].text == prompt and #rec.images > 0 then served = rec.images[#rec.images] end
  end
  check(served ~= nil, "the request is not in the server's log")
  if path and served then
    local sha = vim.fn.system({ "sha256sum", path }):match("^(%x+)")
    check(sha == served.sha256, "file sha256 " .. tostring(sha) .. " ~= served " .. served.sha256)
    check(vim.fn.getfsize(path) == served.bytes, "file size " .. vim.fn.getfsize(path) .. " ~= " .. served.bytes)
  end
  local progress, reported = 0, false
  for _, m in ipairs(plugin.messages) do
    if m:match("^#1 %a+ [%d.]+ KiB") then progress = progress + 1 end -- "#1 waiting 0 KiB (0.0 s)", ...
    if path and m:find(path, 1, true) then reported = true end
  end
  check(progress >= 1, "no progress was reported")
  check(reported, "the path was not reported in the message area")
  -- typing kept working: every key sent reached the buffer
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  local xs = select(2, text:gsub("x", ""))
  check(#sent >= 5, "too few keys typed while the request ran: " .. #sent)
  check(xs == #sent and handled == #sent, string.format("typed %d keys, buffer has %d, handled %d", #sent, xs, handled))
  check(ticks >= 20, "the editor timer ticked only " .. ticks .. " times")
  local h = plugin.handle
  local step_ms = h and h.max_step * 1000 or 1 / 0
  -- more runnable threads than cores: lateness measures the machine, not the
  -- editor; then only the library's own share (its longest step) is bounded,
  -- and the report says so (exit 3)
  local lf = io.open("/proc/loadavg")
  local load = lf and tonumber(lf:read("*a"):match("^(%S+)")) or 0
  if lf then lf:close() end
  local cores = #uv.cpu_info()
  local overloaded = max_late > LATE_MS and load > cores
  if not overloaded then
    check(max_late <= LATE_MS, string.format("an editor timer tick was %.1f ms late (bound %d ms)", max_late, LATE_MS))
  end
  check(step_ms <= STEP_MS, string.format("the client held the editor's loop for %.2f ms at once (bound %d ms)",
    step_ms, STEP_MS))
  local report = {}
  report[1] = string.format("nvim: %s, :NanoBanana returned in %.2f ms; a 24 MiB 4K image in %.2f s; editor timer (%d ms): "
    .. "%d ticks, max lateness %.1f ms, mean %.2f ms; %d keys typed, max key lag %.1f ms; %d progress messages; "
    .. "the loop ran poll() %d times, the longest %.2f ms",
    vim.fn.matchstr(vim.fn.execute("version"), "NVIM v[^\n]*"), started_ms, wall / 1000, INTERVAL, ticks, max_late,
    late_sum / math.max(ticks, 1), #sent, max_key_lag, progress, h and h.steps or 0, step_ms)
  for _, m in ipairs(plugin.messages) do report[#report + 1] = "nvim-message: " .. m end
  for _, f in ipairs(fails) do report[#report + 1] = "FAIL: " .. f end
  if overloaded and #fails == 0 then
    report[#report + 1] = string.format("nvim-note: load %.1f on %d cores: a tick was %.1f ms late (bound %d ms); "
      .. "the client's longest step on the editor's loop was %.2f ms (bound %d ms)", load, cores, max_late, LATE_MS,
      step_ms, STEP_MS)
  end
  local f = assert(io.open(out .. "/report.txt", "w"))
  f:write(table.concat(report, "\n"), "\n")
  f:close()
  plugin.shutdown()
  vim.cmd(#fails > 0 and "cq! 1" or overloaded and "cq! 3" or "qa!")
end

-- wait for the reported path (or a failure), from a luv timer (no blocking)
local watch = uv.new_timer()
watch:start(20, 20, vim.schedule_wrap(function()
  local last = plugin.messages[#plugin.messages] or ""
  if plugin.last_path or last:match("failed") or now_ms() - t0 > 60000 then
    if watch:is_closing() then return end
    watch:stop(); watch:close()
    running = false
    vim.defer_fn(finish, 200) -- let the last typed keys land
  end
end))
