-- bin/nanobanana, run as a separate process against the fake server:
-- exit status, what it prints, the file it writes (exact bytes) and the
-- request the server received.
local fake = require "helpers.fake"
local cjson = require "cjson"

local ROOT = os.getenv("NB_ROOT") or "."
-- the interpreter running this suite (lua5.4, lua5.1, luajit, the TSan host)
local LUA = (arg and arg[-1] and not arg[-1]:match("^%-")) and arg[-1] or "lua5.4"
if LUA:find("/", 1, true) and not LUA:match("^/") then LUA = ROOT .. "/" .. LUA end -- run from elsewhere

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- this process's module paths, absolute (the command runs in another directory)
local function absolute(paths)
  local out = {}
  for entry in paths:gmatch("[^;]+") do
    out[#out + 1] = entry:match("^/") and entry or (ROOT .. "/" .. entry)
  end
  return table.concat(out, ";") .. ";;"
end

-- runs the command in dir; returns status, stdout, stderr
local function run(dir, args, env)
  local errf = os.tmpname()
  local parts = { "cd", q(dir), "&&", "env", "-u", "GOOGLE_API_KEY", "-u", "GEMINI_API_KEY",
                  "-u", "GOOGLE_GEMINI_BASE_URL",
                  "LUA_PATH=" .. q(absolute(package.path)), "LUA_CPATH=" .. q(absolute(package.cpath)) }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. q(v) end
  parts[#parts + 1] = q(LUA)
  parts[#parts + 1] = q(ROOT .. "/bin/nanobanana")
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  parts[#parts + 1] = "2>" .. q(errf) .. "; echo \"rc=$?\""
  local p = assert(io.popen(table.concat(parts, " ")))
  local out = p:read("*a")
  p:close()
  local f = io.open(errf, "rb")
  local err = f:read("*a")
  f:close()
  os.remove(errf)
  local rc = tonumber(out:match("rc=(%d+)\n$"))
  return rc, out:gsub("rc=%d+\n$", ""), err
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
  end)

  it("sends reference images; names the file from the time and the real type when -o is absent", function()
    assert.are.equal(0, (run(dir, { "-q", "-o", "a.png", "a lighthouse" }, env)))
    assert.are.equal(0, (run(dir, { "-q", "-o", "b.png", "a balloon" }, env)))
    local rc, out, err = run(dir, { "-q", "-i", "a.png", "--image", "b.png", "put the balloon over the lighthouse" }, env)
    assert.are.equal(0, rc, err)
    local name = out:match("^(nanobanana%-%d+%-%d+%.jpg) image/jpeg %d+x%d+\n$") -- the default model makes JPEG
    assert.is_truthy(name, out)
    local parts = server:last().body.contents[1].parts
    assert.are.equal(3, #parts)
    assert.are.equal(fake.file_sha256(dir .. "/a.png"), parts[2].inlineData.data.sha256)
    assert.are.equal(fake.file_sha256(dir .. "/b.png"), parts[3].inlineData.data.sha256)
    assert.are.equal(server:last().images[1].sha256, fake.file_sha256(dir .. "/" .. name))
    assert.are.equal("", err) -- -q: no progress
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
    assert.are.equal("", fake.sh("ls -A " .. q(dir)))

    server:reset() -- usage errors send nothing
    local _
    rc, _, err = run(dir, { "-r", "5:9", "x" }, env)
    assert.are.equal(2, rc)
    assert.matches("^nanobanana: gemini%-3%.1%-flash%-image does not take aspectRatio \"5:9\"", err)
    rc, _, err = run(dir, { "--bogus", "x" }, env)
    assert.are.equal(2, rc)
    assert.are.equal("nanobanana: unknown option --bogus\ntry 'nanobanana --help'\n", err)
    rc, _, err = run(dir, {}, env)
    assert.are.equal(2, rc)
    assert.matches("give one PROMPT", err)
    rc, _, err = run(dir, { "--timeout" }, env)
    assert.are.equal(2, rc)
    assert.matches("option %-%-timeout needs a value", err)
    rc, _, err = run(dir, { "x" }, { GOOGLE_GEMINI_BASE_URL = server.url }) -- no key anywhere
    assert.are.equal(2, rc)
    assert.matches("no API key", err)
    assert.are.equal(0, #server:requests())
  end)

  it("--help, --version", function()
    local rc, out = run(dir, { "--help" }, env)
    assert.are.equal(0, rc)
    assert.matches("^usage: nanobanana %[options%] PROMPT", out)
    rc, out = run(dir, { "--version" }, env)
    assert.are.equal(0, rc)
    assert.are.equal(require("nanobanana")._VERSION .. "\n", out)
  end)

  it("--key-file: the key from a file, and never in anything it prints", function()
    local key = "AIzaSyFAKE-cli-key-0123456789abcdef"
    local kf = dir .. "/key"
    local f = assert(io.open(kf, "w")); f:write(key, "\n"); f:close()
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
