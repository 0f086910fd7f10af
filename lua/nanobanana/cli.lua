--- The `nanobanana` command: generations (or edits) from the shell.
-- cli.main(args) runs it and returns the exit status: 0 done, 1 a call
-- failed (the error is printed), 2 bad usage or input, 130 interrupted
-- (Ctrl-C: the requests are cancelled, no temporary file is left). The API
-- key comes from the environment (GOOGLE_API_KEY, GEMINI_API_KEY) or a file
-- (--key-file), never from the command line, where other users could read it.
--
-- On a terminal, stderr carries a progress line redrawn in place (phase,
-- bytes, percent, speed, elapsed) and ends with a clean final line; when
-- stderr is not a terminal there is none of it. Default file names are
-- created exclusively (O_EXCL), so runs in the same second never collide.
local core = require "nanobanana.core"
local image = require "nanobanana.image"

local M = {}

local DEFAULTS = require("nanobanana.client").DEFAULTS
local DEFAULT_BASE_URL = require("nanobanana.client").DEFAULT_BASE_URL

-- every option: long name, short letter, argument, default, what it does
-- (the parser and --help are both made from this list)
M.OPTIONS = {
  { "output", "o", "FILE|DIR", "a new nanobanana-<date>-<time>.<ext> here",
    "where the image goes; in a directory, a new name there (the extension from the image's real type)" },
  { "image", "i", "FILE", "none", "a reference image (repeat for several)" },
  { "model", "m", "ID", DEFAULTS.model,
    "gemini-3.1-flash-image, gemini-3-pro-image, gemini-2.5-flash-image, the -preview ids, or any id" },
  { "ratio", "r", "W:H", "the model's (1:1)", "aspect ratio (imageConfig.aspectRatio), e.g. 16:9" },
  { "size", "s", "SIZE", "the model's (1K; gemini-2.5-flash-image takes none)",
    "image size (imageConfig.imageSize): 512, 1K, 2K, 4K" },
  { "count", "n", "N", "1", "make N images at once (files named apart; 1 to 64)" },
  { "chat", nil, "FILE", "none",
    "continue the conversation saved in FILE and save it back (created when missing)" },
  { "thoughts", "t", nil, "off", "ask for the model's thoughts (Gemini 3) and print them" },
  { "stream", nil, nil, "off", "stream the answer: text and thoughts as they arrive" },
  { "system", nil, "TEXT", "none", "a system instruction" },
  { "base-url", nil, "URL", "env GOOGLE_GEMINI_BASE_URL, else " .. DEFAULT_BASE_URL, "the API or a gateway" },
  { "auth", nil, "MODE", "x-goog-api-key for googleapis.com, bearer for any other host",
    "x-goog-api-key, bearer or none" },
  { "key-file", nil, "FILE", "env GOOGLE_API_KEY, then GEMINI_API_KEY", "read the API key from FILE" },
  { "timeout", nil, "S", tostring(DEFAULTS.timeout), "seconds per attempt" },
  { "retries", nil, "N", tostring(DEFAULTS.retries), "extra attempts on 429/5xx/network errors" },
  { "json", nil, nil, "off", "print each result as one JSON object (one line) on stdout" },
  { "quiet", "q", nil, "off", "nothing on stderr but errors (no progress, text or warnings)" },
  { "help", "h", nil, nil, "this text" },
  { "version", nil, nil, nil, "the version" },
}

local SHORT, TAKES, KNOWN = {}, {}, {}
for _, opt in ipairs(M.OPTIONS) do
  KNOWN[opt[1]] = true
  if opt[2] then SHORT[opt[2]] = opt[1] end
  if opt[3] then TAKES[opt[1]] = true end
end

-- words wrapped to width, as lines
local function wrap(text, width)
  local lines, line = {}, ""
  for word in text:gmatch("%S+") do
    if line ~= "" and #line + 1 + #word > width then lines[#lines + 1] = line; line = word
    else line = line == "" and word or (line .. " " .. word) end
  end
  if line ~= "" then lines[#lines + 1] = line end
  return lines
end

--- The --help text.
function M.usage()
  local out = {
    "usage: nanobanana [options] PROMPT",
    "       nanobanana [options] -      (the prompt from stdin; also when PROMPT is left",
    "                                    out and stdin is not a terminal)",
    "",
    "Makes an image from PROMPT (and reference images) with Gemini and writes it;",
    "prints its path, type and size on stdout. On a terminal, stderr shows a",
    "progress line.",
    "",
    "options:",
  }
  local COL = 26
  for _, opt in ipairs(M.OPTIONS) do
    local long, short, arg, default, text = opt[1], opt[2], opt[3], opt[4], opt[5]
    local head = "  " .. (short and ("-" .. short .. ", ") or "    ") .. "--" .. long .. (arg and (" " .. arg) or "")
    local body = wrap(text, 78 - COL)
    if default then
      for _, l in ipairs(wrap("default: " .. default, 78 - COL)) do body[#body + 1] = l end
    end
    for i, l in ipairs(body) do
      if i == 1 and #head < COL then out[#out + 1] = head .. string.rep(" ", COL - #head) .. l
      else
        if i == 1 then out[#out + 1] = head end
        out[#out + 1] = string.rep(" ", COL) .. l
      end
    end
  end
  for _, l in ipairs {
    "",
    "exit status: 0 done, 1 a call failed (no file left for it), 2 bad usage or",
    "input, 130 interrupted (Ctrl-C: requests cancelled, no temporary file left)",
  } do out[#out + 1] = l end
  return table.concat(out, "\n") .. "\n"
end

--- Parses argv: opts table, or nil, message.
function M.parse(args)
  local o = { image = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, value
    if a == "--" then
      for j = i + 1, #args do o[#o + 1] = args[j] end
      break
    elseif a:sub(1, 2) == "--" then
      name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      if not KNOWN[name] then return nil, "unknown option --" .. name end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      name = SHORT[a:sub(2, 2)]
      if not name then return nil, "unknown option " .. a end
      if #a > 2 then
        if not TAKES[name] then return nil, "option -" .. a:sub(2, 2) .. " takes no value" end
        value = a:sub(3)
      end
    else
      o[#o + 1] = a -- a prompt, or "-"
    end
    if name then
      if TAKES[name] then
        if value == nil then
          i = i + 1
          value = args[i]
          if value == nil then return nil, "option --" .. name .. " needs a value" end
        end
        if name == "image" then o.image[#o.image + 1] = value else o[name] = value end
      else
        if value ~= nil then return nil, "option --" .. name .. " takes no value" end
        o[name] = true
      end
    end
    i = i + 1
  end
  for _, k in ipairs { "timeout", "retries", "count" } do
    if o[k] ~= nil then
      local n = tonumber(o[k])
      if k == "timeout" and not (n and n >= 0) then return nil, "--timeout needs a number >= 0" end
      if k == "retries" and not (n and n >= 0 and n % 1 == 0) then return nil, "--retries needs a whole number >= 0" end
      if k == "count" and not (n and n >= 1 and n <= 64 and n % 1 == 0) then
        return nil, "-n needs a whole number from 1 to 64"
      end
      o[k] = n
    end
  end
  o.count = o.count or 1
  return o
end

--- An error raised by the library, without the Lua source position.
function M.message(e)
  local s = tostring(e):gsub("^[^\n]-:%d+: ", "")
  return s
end

-- A whole file: its content; nil, message, errno when it cannot be read.
local function read_file(path)
  local f, err, code = io.open(path, "rb")
  if not f then return nil, err, code end
  local s, rerr = f:read("*a")
  f:close()
  if not s then return nil, path .. ": " .. tostring(rerr) end
  return s
end

local function is_dir(path)
  local f = io.open(path .. "/.", "rb") -- a regular file gives ENOTDIR
  if f then f:close(); return true end
  return false
end

-- A new file for a default name (nanobanana-<date>-<time>[-k].<ext>) in dir,
-- created exclusively so no other run can take it: its path, or nil, msg.
local function reserve(dir, ext)
  local base = os.date("nanobanana-%Y%m%d-%H%M%S")
  local prefix = dir and (dir:gsub("/+$", "") .. "/") or ""
  for k = 1, 10000 do
    local path = prefix .. base .. (k > 1 and ("-" .. k) or "") .. "." .. ext
    local ok, msg, why = core.create_excl(path)
    if ok then return path end
    if why ~= "exists" then return nil, msg end
  end
  return nil, "no free file name for " .. prefix .. base .. "." .. ext
end

-- ------------------------------------------------------------------ progress line

local function human(n, unit_of)
  unit_of = unit_of or n
  if unit_of < 1024 then return string.format("%d", math.floor(n)), "B" end
  local units = { "KiB", "MiB", "GiB", "TiB" }
  local v, u, div = unit_of / 1024, 1, 1024
  while v >= 1024 and u < #units do v, u, div = v / 1024, u + 1, div * 1024 end
  return string.format("%.1f", n / div), units[u]
end

local ACTIVITY = { downloading = 5, uploading = 4, waiting = 3, retrying = 2, connecting = 1 }

-- The progress line of a TTY: redrawn in place (\r, then clear to the end
-- of the line), at most about 10 times a second, at once when the phase
-- changes; cleared before anything else is written to the terminal.
local Meter = {}
Meter.__index = Meter

local function new_meter(stream, reqs)
  return setmetatable({ out = stream, reqs = reqs, t0 = core.now(), shown = false, samples = {},
                        last_t = -1, last_phase = nil, last_line = nil }, Meter)
end

function Meter:_state(now)
  local phase, up, up_total, down, down_total, done, attempt = nil, 0, 0, 0, 0, 0, 1
  local totals_known = true
  for _, req in ipairs(self.reqs) do
    local p = req.progress
    up, up_total = up + (p.uploaded or 0), up_total + (p.upload_total or 0)
    down, down_total = down + (p.downloaded or 0), down_total + (p.download_total or 0)
    if req.state ~= "running" then
      done = done + 1
    else
      if (p.download_total or 0) <= 0 then totals_known = false end
      if not phase or (ACTIVITY[p.phase] or 0) > (ACTIVITY[phase] or 0) then phase = p.phase end
      attempt = math.max(attempt, p.attempt or 1)
    end
  end
  -- speed: bytes moved over the last second or so
  local moved = up + down
  local s = self.samples
  s[#s + 1] = { now, moved }
  while #s > 2 and now - s[2][1] >= 1.5 do table.remove(s, 1) end
  local speed
  if now - s[1][1] >= 0.25 then speed = (moved - s[1][2]) / (now - s[1][1]) end
  return { phase = phase or "done", up = up, up_total = up_total, down = down, down_total = down_total,
           totals_known = totals_known, done = done, speed = speed, attempt = attempt,
           elapsed = now - self.t0 }
end

function Meter:_line(st)
  local parts = { "nanobanana:" }
  if #self.reqs > 1 then parts[#parts + 1] = string.format("%d/%d done,", st.done, #self.reqs) end
  parts[#parts + 1] = st.phase
  local a, total
  if st.phase == "uploading" then a, total = st.up, st.up_total
  elseif st.phase == "downloading" then a, total = st.down, st.totals_known and st.down_total or 0 end
  if a then
    if total > 0 then
      local x, unit = human(a, total)
      parts[#parts + 1] = x .. "/" .. (human(total)) .. " " .. unit
      parts[#parts + 1] = string.format("%d%%", math.floor(a * 100 / total))
    else
      local x, unit = human(a)
      parts[#parts + 1] = x .. " " .. unit
    end
    if st.speed then
      local x, unit = human(st.speed)
      parts[#parts + 1] = x .. " " .. unit .. "/s"
    end
  elseif st.phase == "retrying" then
    parts[#parts + 1] = "after attempt " .. st.attempt
  end
  parts[#parts + 1] = string.format("%.1fs", st.elapsed)
  return table.concat(parts, " ")
end

--- Redraws the line if its phase changed or about 0.1 s went by.
function Meter:draw()
  local now = core.now()
  local st = self:_state(now)
  if st.phase == self.last_phase and now - self.last_t < 0.1 then return end
  local line = self:_line(st)
  self.last_t, self.last_phase = now, st.phase
  if line == self.last_line then return end
  self.last_line = line
  self.out:write("\r", line, "\27[K")
  self.shown = true
end

--- Clears the line (before other output; the next draw brings it back).
function Meter:clear()
  if self.shown then self.out:write("\r\27[K") end
  self.shown, self.last_line, self.last_phase = false, nil, nil
end

--- The final line, in place of the progress line: how much came, how fast.
function Meter:final(ok_count)
  self:clear()
  local st = self:_state(core.now())
  local x, unit = human(st.down)
  local line = string.format("nanobanana: done: %s%s %s in %.1fs", #self.reqs > 1 and
    string.format("%d of %d images, ", ok_count, #self.reqs) or "", x, unit, st.elapsed)
  if st.elapsed > 0 then
    local sx, su = human(st.down / st.elapsed)
    line = line .. " (" .. sx .. " " .. su .. "/s)"
  end
  self.out:write(line, "\n")
  self.finished = true
end

-- ------------------------------------------------------------------ the command

-- The key file's content (nb.new trims the key, as it trims the env's).
local function read_key(path)
  local k, err = read_file(path)
  if not k then return nil, err end
  return k
end

-- The output target of each of n images: { file = path } (the user named
-- it: output= streams the image there) or { dir = d } (a default name in d,
-- nil for the current directory).
local function targets(output, n)
  local t = {}
  for i = 1, n do
    if output == nil then t[i] = {}
    elseif is_dir(output) then t[i] = { dir = output }
    elseif n == 1 then t[i] = { file = output }
    else
      local stem, ext = output:match("^(.-)(%.[^./]*)$")
      if not stem or stem == "" or stem:sub(-1) == "/" then stem, ext = output, "" end
      t[i] = { file = stem .. "-" .. i .. ext }
    end
  end
  return t
end

--- Runs the command; returns the exit status.
function M.main(args)
  local nb = require "nanobanana"
  local json = require "nanobanana.json"
  local out, err_out = io.stdout, io.stderr
  local o, perr = M.parse(args or {})
  if not o then
    err_out:write("nanobanana: ", perr, "\n", "try 'nanobanana --help'\n")
    return 2
  end
  if o.help then out:write(M.usage()); return 0 end
  if o.version then out:write(nb._VERSION, "\n"); return 0 end
  if #o > 1 then
    err_out:write("nanobanana: give one PROMPT (quote it)\n", "try 'nanobanana --help'\n")
    return 2
  end
  for _, k in ipairs { "output", "chat", "key-file" } do
    if o[k] == "" then
      err_out:write("nanobanana: --", k, " needs a path\n")
      return 2
    end
  end
  local prompt = o[1]
  if prompt == "-" or (prompt == nil and not core.isatty(0)) then
    core.trap_sigint("default") -- Ctrl-C while the prompt is typed: the process ends, as cat would
    if not o.quiet and core.isatty(0) and core.isatty(2) then
      err_out:write("nanobanana: type the prompt, then Ctrl-D on a line of its own\n")
    end
    prompt = io.stdin:read("*a") or ""
    core.trap_sigint(false)
    prompt = prompt:gsub("%s+$", "")
    if prompt == "" then
      err_out:write("nanobanana: the prompt read from stdin is empty\n")
      return 2
    end
  elseif prompt == nil then
    err_out:write("nanobanana: give one PROMPT (quote it), or - to read it from stdin\n",
                  "try 'nanobanana --help'\n")
    return 2
  elseif not prompt:find("%S") then
    err_out:write("nanobanana: the prompt is empty\n")
    return 2
  end
  if o.chat and o.count > 1 then
    err_out:write("nanobanana: --chat makes one image at a time (leave out -n)\n")
    return 2
  end

  local copts = { base_url = o["base-url"], auth = o.auth, model = o.model, timeout = o.timeout,
                  retries = o.retries }
  if o["key-file"] then
    local key, kerr = read_key(o["key-file"])
    if not key then
      err_out:write("nanobanana: cannot read the key file: ", tostring(kerr), "\n")
      return 2
    end
    copts.api_key = key
  end
  local ok, client = pcall(nb.new, copts)
  if not ok then
    err_out:write(M.message(client), "\n")
    return 2
  end

  local chat, chat_created
  if o.chat then
    local text, rerr, code = read_file(o.chat)
    if not text and code ~= 2 then -- 2: ENOENT, a new conversation
      err_out:write("nanobanana: cannot read the chat file: ", tostring(rerr), "\n")
      client:close()
      return 2
    end
    if not text then -- made now (empty: a new chat), so a paid turn always has a place to go
      local cok, cerr = core.create_excl(o.chat)
      if not cok then
        err_out:write("nanobanana: ", tostring(cerr), "\n")
        client:close()
        return 2
      end
      chat_created = true
    end
    local cok, c = pcall(client.chat, client, { history = text and text:match("%S") and text or nil })
    if not cok then
      if chat_created then os.remove(o.chat) end
      err_out:write("nanobanana: ", o.chat, " is not a saved chat: ", (M.message(c):gsub("^nanobanana: ", "")), "\n")
      client:close()
      return 2
    end
    chat = c
  end

  local n = o.count
  local reqs, where = {}, targets(o.output, n)
  local meter = (not o.quiet and core.isatty(2)) and new_meter(err_out, reqs) or nil
  local function say(...) -- a line on stderr, around the progress line
    if meter then meter:clear() end
    err_out:write(...)
  end

  local function call_options(i)
    local call = { images = #o.image > 0 and o.image or nil, systemInstruction = o.system,
                   output = where[i].file }
    if o.ratio or o.size then call.imageConfig = { aspectRatio = o.ratio, imageSize = o.size } end
    if o.thoughts then call.generationConfig = { thinkingConfig = { includeThoughts = true } } end
    if meter then call.on_progress = function() meter:draw() end end
    if o.stream then
      call.stream = true
      local tag = n > 1 and ("[" .. i .. "] ") or ""
      call.on_event = function(ev)
        if o.quiet then return end
        if ev.text and (ev.type == "text" or o.thoughts) then
          say(tag, ev.type == "thought" and "[thought] " or "", ev.text, "\n")
        elseif ev.image then
          say(tag, string.format("nanobanana: %s image %s %sx%s\n", ev.type == "thought" and "draft" or "final",
            tostring(ev.image.mimeType), tostring(ev.image.width), tostring(ev.image.height)))
        end
      end
    end
    return call
  end

  for i = 1, n do
    local sok, req = pcall(function()
      if chat then return chat:start(prompt, call_options(i)) end
      return client:start(prompt, call_options(i))
    end)
    if not sok then -- a programming error: bad ratio, size, model limits
      err_out:write(M.message(req), "\n")
      client:close()
      if chat_created then os.remove(o.chat) end
      return 2
    end
    reqs[i] = req
  end

  local failed, succeeded, handled, left = 0, 0, {}, n
  -- request i finished: its image saved (default name) and reported
  local function finish(i, req)
    left = left - 1
    local tag = n > 1 and ("[" .. i .. "] ") or ""
    local res, err = req:result()
    if not res then
      say(tag, tostring(err), "\n") -- "nanobanana: <kind> ...", the key scrubbed
      failed = failed + 1
      return
    end
    local img = res.images[1]
    local path = img.path
    if not where[i].file then -- a default name, from the time and the real type
      local rerr
      path, rerr = reserve(where[i].dir, img:extension() or "img")
      local sok, serr
      if path then sok, serr = img:save(path) end
      if not sok then
        if path then os.remove(path) end
        say(tag, path and tostring(serr) or ("nanobanana: io: " .. tostring(rerr)), "\n")
        failed = failed + 1
        return
      end
    end
    succeeded = succeeded + 1
    if meter then
      if left == 0 then meter:final(succeeded) else meter:clear() end
    end
    if not o.quiet then
      local e = path:match("%.([%w]+)$")
      local named = e and image.type_of_extension(e)
      if named and img.mimeType and named ~= img.mimeType then
        say(string.format("nanobanana: warning: %s holds %s (the type the model sent), not %s: name it .%s\n",
          path, img.mimeType, named, img:extension() or "img"))
      end
      if o.thoughts and not o.stream then
        for _, t in ipairs(res.thoughts) do
          if t.text then say(tag, "[thought] ", t.text, "\n") end
        end
      end
      if res.text and not o.stream then say(tag, res.text, "\n") end
    end
    if o.json then
      out:write(json.encode_text({
        path = path, mimeType = img.mimeType, width = img.width, height = img.height,
        model = res.modelVersion, finishReason = res.finishReason, text = res.text,
        attempts = res.attempts, elapsed = res.elapsed, usageMetadata = res.usageMetadata,
      }), "\n")
    else
      out:write(string.format("%s %s %sx%s\n", path, tostring(img.mimeType), tostring(img.width), tostring(img.height)))
    end
    out:flush()
  end

  -- the wait loop: Ctrl-C sets a flag (core.trap_sigint) seen within a tick
  core.trap_sigint(true)
  local interrupted = false
  while true do
    local running
    for i, req in ipairs(reqs) do
      if not handled[i] and req.state ~= "running" then
        handled[i] = true
        finish(i, req)
      elseif req.state == "running" then
        running = running or req
      end
    end
    if not running then break end
    local wok, werr = pcall(running.wait, running, 0.1)
    if core.sigint_caught() then interrupted = true; break end
    if not wok then -- a callback of ours raised: a bug, reported as such
      core.trap_sigint(false)
      client:close()
      say("nanobanana: internal error: ", tostring(werr), "\n")
      return 1
    end
    if meter then meter:draw() end
  end

  if interrupted then
    for _, req in ipairs(reqs) do req:cancel() end
    client:close() -- the cancelled transfers' temporary files go with them
    core.trap_sigint(false)
    if chat_created then os.remove(o.chat) end
    say("nanobanana: interrupted\n")
    return 130
  end
  core.trap_sigint(false)

  if chat_created and succeeded == 0 then os.remove(o.chat) end -- nothing to keep
  if chat and succeeded > 0 then -- the conversation, saved back atomically
    local js, jerr = chat:to_json()
    local wok, wmsg
    if js then wok, wmsg = core.write_atomic(o.chat, js) end
    if not wok then
      say("nanobanana: cannot save the chat: ", tostring(js and wmsg or jerr), "\n")
      client:close()
      return 1
    end
  end
  client:close()
  return failed > 0 and 1 or 0
end

return M
