--- The `nanobanana` command: one generation (or edit) from the shell.
-- cli.main(args) runs it and returns the exit status: 0 done, 1 the
-- call failed (the error is printed), 2 bad usage. The API key comes from the
-- environment (GOOGLE_API_KEY, GEMINI_API_KEY) or a file (--key-file), never
-- from the command line, where other users could read it.
local M = {}

local USAGE = [[
usage: nanobanana [options] PROMPT

Makes an image from PROMPT (and reference images) with Gemini and writes it.

options:
  -o, --output FILE     where the image goes (default: nanobanana-<time>.<ext>,
                        the extension from the image's real type)
  -i, --image FILE      a reference image (repeat for several)
  -m, --model ID        gemini-3.1-flash-image (default), gemini-3-pro-image,
                        gemini-2.5-flash-image, or any id
  -r, --ratio W:H       aspect ratio (imageConfig.aspectRatio), e.g. 16:9
  -s, --size SIZE       image size (imageConfig.imageSize): 1K, 2K, 4K
  -t, --thoughts        ask for the model's thoughts (Gemini 3) and print them
      --stream          stream the answer: text and thoughts as they arrive
      --system TEXT     a system instruction
      --base-url URL    the API or a gateway (env GOOGLE_GEMINI_BASE_URL)
      --auth MODE       x-goog-api-key, bearer or none (default: by host)
      --key-file FILE   read the API key from FILE (else env GOOGLE_API_KEY,
                        then GEMINI_API_KEY)
      --timeout S       seconds per attempt (default 600)
      --retries N       extra attempts on 429/5xx/network errors (default 2)
      --json            print the result as one JSON object on stdout
  -q, --quiet           nothing on stderr but errors
  -h, --help            this text
      --version         the version
]]

local SHORT = { o = "output", i = "image", m = "model", r = "ratio", s = "size", t = "thoughts",
                q = "quiet", h = "help" }
local TAKES = { output = true, image = true, model = true, ratio = true, size = true, system = true,
                ["base-url"] = true, auth = true, ["key-file"] = true, timeout = true, retries = true }
local FLAGS = { thoughts = true, stream = true, json = true, quiet = true, help = true, version = true }

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
    elseif a:sub(1, 1) == "-" and #a > 1 then
      name = SHORT[a:sub(2, 2)]
      if not name then return nil, "unknown option " .. a end
      if #a > 2 then value = a:sub(3) end
    else
      o[#o + 1] = a
    end
    if name then
      if TAKES[name] then
        if value == nil then
          i = i + 1
          value = args[i]
          if value == nil then return nil, "option --" .. name .. " needs a value" end
        end
        if name == "image" then o.image[#o.image + 1] = value else o[name] = value end
      elseif FLAGS[name] then
        if value ~= nil then return nil, "option --" .. name .. " takes no value" end
        o[name] = true
      else
        return nil, "unknown option --" .. name
      end
    end
    i = i + 1
  end
  for _, k in ipairs { "timeout", "retries" } do
    if o[k] ~= nil then
      local n = tonumber(o[k])
      if not n or n < 0 then return nil, "--" .. k .. " needs a number >= 0" end
      o[k] = n
    end
  end
  return o
end

local EXT = { ["image/png"] = "png", ["image/jpeg"] = "jpg", ["image/webp"] = "webp",
              ["image/gif"] = "gif", ["image/heic"] = "heic", ["image/heif"] = "heif" }

-- The key file's content (nb.new trims the key, as it trims the env's).
local function read_key(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local k = f:read("*a")
  f:close()
  return k
end

--- An error raised by the library, without the Lua source position.
function M.message(e)
  local s = tostring(e):gsub("^[^\n]-:%d+: ", "")
  return s
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
  if o.help then out:write(USAGE); return 0 end
  if o.version then out:write(nb._VERSION, "\n"); return 0 end
  if #o ~= 1 then
    err_out:write("nanobanana: give one PROMPT (quote it)\n", "try 'nanobanana --help'\n")
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

  local call = { images = #o.image > 0 and o.image or nil, systemInstruction = o.system }
  if o.ratio or o.size then call.imageConfig = { aspectRatio = o.ratio, imageSize = o.size } end
  if o.thoughts then call.generationConfig = { thinkingConfig = { includeThoughts = true } } end
  call.output = o.output
  if not o.quiet and not o.stream then
    local last = ""
    call.on_progress = function(p)
      local line
      if p.phase == "downloading" and p.download_total and p.download_total > 0 then
        line = string.format("%s %d%%", p.phase, math.floor(p.downloaded * 100 / p.download_total))
      else
        line = p.phase
      end
      if line ~= last then err_out:write("nanobanana: ", line, "\n"); last = line end
    end
  end
  local on_event
  if o.stream then
    on_event = function(ev)
      if o.quiet then return end
      if ev.text and (ev.type == "text" or o.thoughts) then
        err_out:write(ev.type == "thought" and "[thought] " or "", ev.text, "\n")
      elseif ev.image and not o.quiet then
        err_out:write(string.format("nanobanana: %s image %s %sx%s\n", ev.type == "thought" and "draft" or "final",
          tostring(ev.image.mimeType), tostring(ev.image.width), tostring(ev.image.height)))
      end
    end
  end

  local called, res, err = pcall(function()
    if o.stream then return client:stream(o[1], call, on_event) end
    return client:generate(o[1], call)
  end)
  if not called then -- a programming error: bad ratio, size, model limits
    err_out:write(M.message(res), "\n")
    client:close()
    return 2
  end
  if not res then
    err_out:write(tostring(err), "\n") -- "nanobanana: <kind> ...", the key scrubbed
    client:close()
    return 1
  end
  local img = res.images[1]
  local path = img.path
  if not path then -- no output given: a name from the time and the real type
    path = string.format("nanobanana-%s.%s", os.date("%Y%m%d-%H%M%S"), EXT[img.mimeType] or "img")
    local sok, serr = img:save(path)
    if not sok then
      err_out:write(tostring(serr), "\n")
      client:close()
      return 1
    end
  end
  if o.thoughts and not o.stream and not o.quiet then
    for _, t in ipairs(res.thoughts) do
      if t.text then err_out:write("[thought] ", t.text, "\n") end
    end
  end
  if o.json then
    out:write(json.encode_text({
      path = path, mimeType = img.mimeType, width = img.width, height = img.height,
      model = res.modelVersion, finishReason = res.finishReason, text = res.text,
      attempts = res.attempts, elapsed = res.elapsed, usageMetadata = res.usageMetadata,
    }), "\n")
  else
    if res.text and not o.stream and not o.quiet then err_out:write(res.text, "\n") end
    out:write(string.format("%s %s %sx%s\n", path, tostring(img.mimeType), tostring(img.width), tostring(img.height)))
  end
  client:close()
  return 0
end

return M
