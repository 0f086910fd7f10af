-- bin/nanobanana, run as a separate process against the fake server, with
-- stdin, stdout and stderr pipes (not a terminal; spec/19-cli_tty_spec.lua
-- has the terminal): exit status, what it prints, the files it writes (exact
-- bytes) and the requests the server received.
local fake = require "helpers.fake"
local cli = require "helpers.cli"
local cjson = require "cjson"

local q, ls = cli.q, cli.ls

-- the model these tests expect (PNG, no thoughts) unless a test names one
local function pinned(args)
  for _, a in ipairs(args) do
    if a == "-m" or a == "--model" then return args end
  end
  local out = { "-m", "gemini-2.5-flash-image" }
  for _, a in ipairs(args) do out[#out + 1] = a end
  return out
end
local function run(dir, args, env, input) return cli.run(dir, pinned(args), env, input) end
local _ -- the values a test leaves unread

local function write(path, s)
  local f = assert(io.open(path, "wb")); f:write(s); f:close()
end

-- the sha256 of every final image the server sent, as a set
local function sent_images(server)
  local set = {}
  for _, rec in ipairs(server:requests()) do
    for _, img in ipairs(rec.images or {}) do
      if not img.thought then set[img.sha256] = true end
    end
  end
  return set
end

describe("cli", function()
  local server, dir, env

  setup(function()
    server = fake.start()
    env = { GEMINI_API_KEY = "test-key", GOOGLE_GEMINI_BASE_URL = server.url }
  end)
  teardown(function() server:stop() end)
  before_each(function()
    server:reset()
    dir = fake.sh("mktemp -d"):gsub("%s+$", "")
  end)
  after_each(function() fake.sh("rm -rf " .. q(dir)) end)

  it("writes the image: model, ratio and size as asked; prints path, type and size", function()
    local rc, out, err = run(dir, { "-m", "gemini-3-pro-image-preview", "-r", "16:9", "-s", "2K", "-o", "fox.jpg",
                                    "A red fox in the snow" }, env)
    assert.are.equal(0, rc, err)
    assert.are.equal("fox.jpg image/jpeg 2752x1536\n", out)
    local rec = server:last()
    assert.are.equal("/v1beta/models/gemini-3-pro-image-preview:generateContent", rec.path)
    assert.are.same({ imageConfig = { aspectRatio = "16:9", imageSize = "2K" } }, rec.body.generationConfig)
    assert.are.same({ { text = "A red fox in the snow" } }, rec.body.contents[1].parts)
    assert.are.equal(rec.images[#rec.images].sha256, fake.file_sha256(dir .. "/fox.jpg"))
    assert.are.same({ "fox.jpg" }, ls(dir))
  end)

  it("sends reference images; names the file from the time and the real type when -o is absent", function()
    assert.are.equal(0, (run(dir, { "-q", "-o", "a.png", "a lighthouse" }, env)))
    assert.are.equal(0, (run(dir, { "-q", "-o", "b.png", "a balloon" }, env)))
    local rc, out, err = run(dir, { "-q", "-i", "a.png", "--image", "b.png", "put the balloon over the lighthouse" },
                             env)
    assert.are.equal(0, rc, err)
    local name = out:match("^(nanobanana%-%d+%-%d+%.png) image/png %d+x%d+\n$") -- (run pins a PNG model)
    assert.is_truthy(name, out)
    local parts = server:last().body.contents[1].parts
    assert.are.equal(3, #parts)
    assert.are.equal(fake.file_sha256(dir .. "/a.png"), parts[2].inlineData.data.sha256)
    assert.are.equal(fake.file_sha256(dir .. "/b.png"), parts[3].inlineData.data.sha256)
    assert.are.equal(server:last().images[1].sha256, fake.file_sha256(dir .. "/" .. name))
    assert.are.equal("", err) -- -q: nothing on stderr
  end)

  it("stderr not a terminal: no progress line at all, only the model's text", function()
    local rc, out, err = run(dir, { "-o", "x.png", "a fox" }, env)
    assert.are.equal(0, rc, err)
    assert.are.equal("x.png image/png 1024x1024\n", out)
    assert.are.equal("Here is your image.\n", err) -- no phase, no \r, no escape sequence
  end)

  it("default names never collide: taken names are skipped (O_EXCL), parallel runs keep every image", function()
    -- every name the next seconds could produce is taken by a file of ours
    local now = os.time()
    local taken = {}
    for s = 0, 3 do
      local name = os.date("nanobanana-%Y%m%d-%H%M%S", now + s) .. ".png"
      write(dir .. "/" .. name, "mine " .. s)
      taken[name] = "mine " .. s
    end
    local rc, out, err = run(dir, { "-q", "a fox" }, env)
    assert.are.equal(0, rc, err)
    local name = out:match("^(nanobanana%-%d+%-%d+%-2%.png) image/png 1024x1024\n$")
    assert.is_truthy(name, out)
    for n, content in pairs(taken) do assert.are.equal(content, fake.read(dir .. "/" .. n)) end
    assert.are.equal(server:last().images[1].sha256, fake.file_sha256(dir .. "/" .. name))

    -- four runs at once, in the same directory and (mostly) the same second
    fake.sh("rm -f " .. q(dir) .. "/nanobanana-*")
    server:reset()
    local cmds, logs = {}, {}
    for i = 1, 4 do
      logs[i] = os.tmpname()
      cmds[#cmds + 1] = "(" .. cli.command(dir, pinned { "-q", "a fox number " .. i }, env) .. " <" .. q(logs[i])
                        .. " >" .. q(logs[i]) .. " 2>&1) &"
    end
    os.execute(table.concat(cmds, " ") .. " wait")
    for i = 1, 4 do os.remove(logs[i]) end
    local files, images = {}, sent_images(server)
    for _, n in ipairs(ls(dir)) do
      if n:match("^nanobanana%-") then files[#files + 1] = n end
    end
    assert.are.equal(4, #files, table.concat(ls(dir), " "))
    local seen = {}
    for _, n in ipairs(files) do
      local h = fake.file_sha256(dir .. "/" .. n)
      assert.is_true(images[h] == true, n .. " is not an image the server sent")
      seen[h] = true
    end
    local distinct = 0
    for _ in pairs(seen) do distinct = distinct + 1 end
    assert.are.equal(4, distinct) -- four prompts, four different images, none lost
  end)

  it("- reads the prompt from stdin; so does no prompt with stdin a pipe; an empty one is bad usage, so is an empty argument", function()
    local rc, out, err = run(dir, { "-q", "-o", "a.png", "-" }, env, "A lighthouse\non a cliff\n\n")
    assert.are.equal(0, rc, err)
    assert.are.equal("a.png image/png 1024x1024\n", out)
    assert.are.same({ { text = "A lighthouse\non a cliff" } }, server:last().body.contents[1].parts)

    rc, out, err = run(dir, { "-q", "-o", "b.png" }, env, "A balloon")
    assert.are.equal(0, rc, err)
    assert.are.equal("b.png image/png 1024x1024\n", out)
    assert.are.same({ { text = "A balloon" } }, server:last().body.contents[1].parts)

    server:reset()
    rc, out, err = run(dir, { "-o", "c.png" }, env, " \n")
    assert.are.equal(2, rc)
    assert.are.equal("", out)
    assert.are.equal("nanobanana: the prompt read from stdin is empty\n", err)
    assert.are.equal(0, #server:requests())

    for _, blank in ipairs { "", "  \t" } do -- an empty prompt argument: the same
      rc, out, err = run(dir, { "-o", "d.png", blank }, env)
      assert.are.equal(2, rc)
      assert.are.equal("", out)
      assert.are.equal("nanobanana: the prompt is empty\n", err)
    end
    assert.are.equal(0, #server:requests())
  end)

  it("--chat FILE: created when missing, continued and saved back; a failed turn leaves it as it was", function()
    local m = "gemini-3-pro-image-preview"
    local rc, out, err = run(dir, { "-q", "-m", m, "--chat", "otter.json", "-o", "one.jpg", "A sea otter" }, env)
    assert.are.equal(0, rc, err)
    assert.are.equal("one.jpg image/jpeg 1024x1024\n", out)
    local first = server:last()
    assert.are.equal(1, #first.body.contents)
    local saved = cjson.decode(fake.read(dir .. "/otter.json"))
    assert.are.equal(2, #saved.contents)
    assert.are.same({ { text = "A sea otter" } }, saved.contents[1].parts)
    assert.are.equal("model", saved.contents[2].role)

    rc, out, err = run(dir, { "-q", "-m", m, "--chat", "otter.json", "make it night" }, env)
    assert.are.equal(0, rc, err)
    local name = out:match("^(nanobanana%-%d+%-%d+%.jpg) image/jpeg 1024x1024\n$")
    assert.is_truthy(name, out)
    local second = server:last()
    assert.are.equal(3, #second.body.contents) -- the saved turns, then the new one
    assert.are.equal("user", second.body.contents[1].role)
    assert.are.equal("model", second.body.contents[2].role)
    assert.are.same({ { text = "make it night" } }, second.body.contents[3].parts)
    -- the model turn went back exactly as received: its image, its signatures
    local sent_parts, got = second.body.contents[2].parts, first.images
    local final = got[#got]
    local replayed
    for _, p in ipairs(sent_parts) do
      if p.inlineData and p.inlineData.data.sha256 == final.sha256 then replayed = p end
    end
    assert.is_truthy(replayed, "the first image was not replayed")
    assert.are.equal(final.thoughtSignature, replayed.thoughtSignature)
    assert.are.equal(200, second.status)
    local text = fake.read(dir .. "/otter.json")
    saved = cjson.decode(text)
    assert.are.equal(4, #saved.contents)
    assert.are.same({ { text = "make it night" } }, saved.contents[3].parts)

    -- a failed turn: exit 1, the chat file byte for byte as it was
    rc, out, err = run(dir, { "-q", "--retries", "0", "-m", m, "--chat", "otter.json", "more [[fault:500]]" }, env)
    assert.are.equal(1, rc)
    assert.are.equal("", out)
    assert.matches("^nanobanana: api 500 INTERNAL", err)
    assert.are.equal(text, fake.read(dir .. "/otter.json"))

    -- not a chat: exit 2, nothing sent
    server:reset()
    write(dir .. "/bad.json", "this is not JSON")
    rc, _, err = run(dir, { "--chat", "bad.json", "x" }, env)
    assert.are.equal(2, rc)
    assert.matches("^nanobanana: bad%.json is not a saved chat: chat history is not JSON", err)
    assert.are.equal(0, #server:requests())
    rc, _, err = run(dir, { "--chat", "c.json", "-n", "2", "x" }, env)
    assert.are.equal(2, rc)
    assert.are.equal("nanobanana: --chat makes one image at a time (leave out -n)\n", err)
    -- a new chat file that cannot be made: known before anything is paid for
    rc, _, err = run(dir, { "--chat", "no/such/dir/c.json", "x" }, env)
    assert.are.equal(2, rc)
    assert.are.equal("nanobanana: cannot create no/such/dir/c.json: No such file or directory\n", err)
    assert.are.equal(0, #server:requests())
    -- a first turn that fails leaves no chat file behind
    rc = run(dir, { "-q", "--retries", "0", "--chat", "new.json", "x [[fault:500]]" }, env)
    assert.are.equal(1, rc)
    assert.is_nil(fake.read(dir .. "/new.json"))
  end)

  it("-n N: N requests at once, files named apart (-o FILE: stem-i.ext; none: default names)", function()
    local rc, out, err = run(dir, { "-q", "-n", "3", "-o", "fox.png", "a fox [[fault:slow_headers:1.5]]" }, env)
    assert.are.equal(0, rc, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    table.sort(lines)
    assert.are.same({ "fox-1.png image/png 1024x1024", "fox-2.png image/png 1024x1024",
                      "fox-3.png image/png 1024x1024" }, lines)
    local recs = server:requests()
    assert.are.equal(3, #recs)
    -- concurrent: all three arrived before the first answer (each waits 1.5 s)
    local t0, t1 = math.huge, -math.huge
    for _, r in ipairs(recs) do t0, t1 = math.min(t0, r.time), math.max(t1, r.time) end
    assert.is_true(t1 - t0 < 1.0, "requests arrived " .. (t1 - t0) .. " s apart")
    local images = sent_images(server)
    for i = 1, 3 do assert.is_true(images[fake.file_sha256(dir .. "/fox-" .. i .. ".png")] == true) end
    assert.are.same({ "fox-1.png", "fox-2.png", "fox-3.png" }, ls(dir))

    server:reset()
    rc, out, err = run(dir, { "-q", "-n", "2", "--json", "a balloon" }, env)
    assert.are.equal(0, rc, err)
    local paths = {}
    for l in out:gmatch("[^\n]+") do paths[#paths + 1] = cjson.decode(l).path end
    assert.are.equal(2, #paths)
    assert.are_not.equal(paths[1], paths[2])
    images = sent_images(server)
    for _, p in ipairs(paths) do
      assert.matches("^nanobanana%-%d+%-%d+[-%d]*%.png$", p)
      assert.is_true(images[fake.file_sha256(dir .. "/" .. p)] == true)
    end

    rc, _, err = run(dir, { "-n", "0", "x" }, env)
    assert.are.equal(2, rc)
    assert.matches("%-n needs a whole number from 1 to 64", err)
  end)

  it("-n with failures: exit 1, each error tagged, the good images kept", function()
    server:faults { { name = "500" } }
    local rc, out, err = run(dir, { "-q", "--retries", "0", "-n", "2", "-o", "x.png", "a fox" }, env)
    assert.are.equal(1, rc)
    assert.matches("^%[%d%] nanobanana: api 500 INTERNAL", err)
    local n = out:match("^x%-(%d)%.png image/png 1024x1024\n$")
    assert.is_truthy(n, out)
    assert.are.same({ "x-" .. n .. ".png" }, ls(dir))
  end)

  it("a Gemini 3 JPEG asked for as x.png: a warning; -o DIR: a name with the right extension", function()
    local m = "gemini-3-pro-image-preview"
    local rc, out, err = run(dir, { "-m", m, "-o", "x.png", "a fox" }, env)
    assert.are.equal(0, rc, err)
    assert.are.equal("x.png image/jpeg 1024x1024\n", out)
    assert.are.equal("nanobanana: warning: x.png holds image/jpeg (the type the model sent), not image/png: "
      .. "name it .jpg\nHere is your image.\n", err)
    assert.are.equal("\255\216\255", fake.read(dir .. "/x.png"):sub(1, 3)) -- the bytes as sent: JPEG
    rc, _, err = run(dir, { "-q", "-m", m, "-o", "y.png", "a fox" }, env)
    assert.are.equal(0, rc)
    assert.are.equal("", err) -- -q: no warning

    fake.sh("mkdir " .. q(dir .. "/out"))
    rc, out, err = run(dir, { "-q", "-m", m, "-o", "out", "a fox" }, env)
    assert.are.equal(0, rc, err)
    local name = out:match("^out/(nanobanana%-%d+%-%d+%.jpg) image/jpeg 1024x1024\n$")
    assert.is_truthy(name, out)
    assert.are.same({ name }, ls(dir .. "/out"))
    assert.are.equal(server:last().images[#server:last().images].sha256, fake.file_sha256(dir .. "/out/" .. name))
  end)

  it("--stream --thoughts prints thoughts and text as they arrive; --json prints the result", function()
    local rc, out, err = run(dir, { "--stream", "-t", "--json", "-m", "gemini-3-pro-image-preview", "-o", "n.jpg",
                                    "A cozy reading nook" }, env)
    assert.are.equal(0, rc, err)
    local rec = server:last()
    assert.are.equal("/v1beta/models/gemini-3-pro-image-preview:streamGenerateContent", rec.path)
    assert.are.same({ alt = "sse" }, rec.query)
    assert.matches("%[thought%] %*%*Composing the scene%*%*", err)
    assert.matches("draft image image/jpeg 512x512", err)
    assert.matches("Here is your image%.", err)
    local j = cjson.decode(out)
    assert.are.equal("n.jpg", j.path)
    assert.are.equal("image/jpeg", j.mimeType)
    assert.are.equal(1024, j.width)
    assert.are.equal("STOP", j.finishReason)
    assert.are.equal(rec.images[#rec.images].sha256, fake.file_sha256(dir .. "/n.jpg"))
  end)

  it("exit 1 for a failed call (no file left), 2 for bad usage; messages on stderr", function()
    local rc, out, err = run(dir, { "-q", "--retries", "0", "-o", "x.png", "a fox [[fault:429:0.1]]" }, env)
    assert.are.equal(1, rc)
    assert.are.equal("", out)
    assert.matches("^nanobanana: api 429 RESOURCE_EXHAUSTED: You exceeded your current quota", err)
    assert.are.same({}, ls(dir))

    server:reset() -- usage errors send nothing
    local _
    rc, _, err = run(dir, { "-r", "5:9", "x" }, env)
    assert.are.equal(2, rc)
    assert.matches("^nanobanana: gemini%-2%.5%-flash%-image does not take aspectRatio \"5:9\"", err)
    rc, _, err = run(dir, { "--bogus", "x" }, env)
    assert.are.equal(2, rc)
    assert.are.equal("nanobanana: unknown option --bogus\ntry 'nanobanana --help'\n", err)
    rc, _, err = run(dir, { "a", "b" }, env)
    assert.are.equal(2, rc)
    assert.matches("give one PROMPT", err)
    rc, _, err = run(dir, { "--timeout" }, env)
    assert.are.equal(2, rc)
    assert.matches("option %-%-timeout needs a value", err)
    rc, _, err = run(dir, { "-o", "", "y" }, env)
    assert.are.equal(2, rc)
    assert.are.equal("nanobanana: --output needs a path\n", err)
    rc, _, err = run(dir, { "-qx", "y" }, env)
    assert.are.equal(2, rc)
    assert.matches("option %-q takes no value", err)
    rc, _, err = run(dir, { "x" }, { GOOGLE_GEMINI_BASE_URL = server.url }) -- no key anywhere
    assert.are.equal(2, rc)
    assert.matches("no API key", err)
    assert.are.equal(0, #server:requests())
  end)

  it("--help lists every option with its default; --version", function()
    local rc, out = run(dir, { "--help" }, env)
    assert.are.equal(0, rc)
    assert.matches("^usage: nanobanana %[options%] PROMPT\n", out)
    -- the option blocks of the text: "  -o, --output FILE|DIR  text..." and continuation lines
    local blocks, order, cur = {}, {}, nil
    for line in out:gmatch("([^\n]*)\n") do
      local long = line:match("^  %-%a, %-%-([%w-]+)") or line:match("^      %-%-([%w-]+)")
      if long then cur = long; blocks[long] = line; order[#order + 1] = long
      elseif cur and line:match("^%s%s%s%s%s%s%s%s%s%s+%S") then blocks[cur] = blocks[cur] .. " " .. line
      else cur = nil end
    end
    local want = { "output", "image", "model", "ratio", "size", "count", "chat", "thoughts", "stream", "system",
                   "base-url", "auth", "key-file", "timeout", "retries", "json", "quiet", "help", "version" }
    assert.are.same(want, order)
    local defaults = { output = "a new nanobanana-<date>-<time>.<ext> here", image = "none",
                       model = require("nanobanana.client").DEFAULTS.model, count = "1", chat = "none",
                       timeout = "600", retries = "2",
                       thoughts = "off", stream = "off", json = "off", quiet = "off" }
    for _, long in ipairs(want) do
      local text = blocks[long]:gsub("%s+", " ")
      if long ~= "help" and long ~= "version" then
        assert.matches("default: ", text, 1, true)
      end
      if defaults[long] then
        assert.is_truthy(text:find("default: " .. defaults[long], 1, true), long .. ": " .. text)
      end
      -- and the parser takes each option it lists
      if long ~= "help" and long ~= "version" then
        local crc, _, cerr = run(dir, { "--" .. long }, env)
        assert.are.equal(2, crc) -- no value, or no prompt: usage, nothing sent
        assert.is_nil(cerr:find("unknown option", 1, true), long)
      end
    end
    rc, out = run(dir, { "--version" }, env)
    assert.are.equal(0, rc)
    assert.are.equal(require("nanobanana")._VERSION .. "\n", out)
  end)

  it("--key-file: the key from a file, and never in anything it prints", function()
    local key = "AIzaSyFAKE-cli-key-0123456789abcdef"
    local kf = dir .. "/key"
    write(kf, key .. "\n")
    local kenv = { GOOGLE_GEMINI_BASE_URL = server.url }
    local rc, out, err = run(dir, { "--key-file", kf, "-o", "x.png", "a fox [[fault:echo_auth]]" }, kenv)
    assert.are.equal(1, rc)
    assert.matches("API key not valid", err)
    assert.is_nil(err:find(key, 1, true))
    assert.is_nil(out:find(key, 1, true))
    assert.matches("%*%*%*", err) -- scrubbed, not dropped
    assert.are.equal("Bearer " .. key, server:last().headers["authorization"]) -- not a Google host
  end)
end)
