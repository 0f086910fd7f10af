-- bin/nanobanana in a real terminal: a tmux pane of 120x30 (tmux -S on a
-- socket of this spec's own), read back with capture-pane (the screen) and
-- pipe-pane (the raw bytes written to the terminal). The progress line, its
-- clean final line, Ctrl-C (exit 130, no temporary file), and no prompt with
-- stdin a terminal.
local fake = require "helpers.fake"
local cli = require "helpers.cli"

local q, ls, slurp = cli.q, cli.ls, cli.slurp

local function have_tmux()
  local p = io.popen("command -v tmux")
  local path = p:read("*a")
  p:close()
  return path:match("%S") ~= nil
end

local function write(path, s)
  local f = assert(io.open(path, "wb")); f:write(s); f:close()
end

-- polls cond() every 50 ms for up to `within` seconds; its last value
local function wait_for(cond, within)
  local deadline = os.time() + within
  repeat
    local v = cond()
    if v then return v end
    fake.sleep(0.05)
  until os.time() > deadline
  return cond()
end

-- A terminal running the CLI (in dir, with args and env) under tmux.
local Term = {}
Term.__index = Term

local function tmux(t, args)
  return fake.sh("tmux -S " .. q(t.sock) .. " " .. args)
end

function Term.start(dir, args, env)
  local t = setmetatable({}, Term)
  if #args > 0 then -- the model these tests expect (PNG, no thoughts)
    local a = { "-m", "gemini-2.5-flash-image" }
    for _, x in ipairs(args) do a[#a + 1] = x end
    args = a
  end
  t.tdir = fake.sh("mktemp -d"):gsub("%s+$", "")
  t.sock = t.tdir .. "/sock"
  local e = {}
  for k, v in pairs(env) do e[k] = v end
  e.LD_PRELOAD = os.getenv("LD_PRELOAD") -- a sanitizer run: the CLI needs it, tmux must not have it
  write(t.tdir .. "/tmux.conf", "set -g status off\n")
  -- the command waits for "go", so pipe-pane is attached before its first byte;
  -- the shell traps Ctrl-C (a handler, which children do not inherit) so that it
  -- outlives the command and writes its status
  write(t.tdir .. "/run.sh", table.concat({
    "trap : INT",
    "while [ ! -e " .. q(t.tdir .. "/go") .. " ]; do sleep 0.02; done",
    cli.command(dir, args, e),
    "echo $? > " .. q(t.tdir .. "/rc.tmp") .. " && mv " .. q(t.tdir .. "/rc.tmp") .. " " .. q(t.tdir .. "/rc"),
    "exec sleep 600", "" }, "\n"))
  tmux(t, "-f " .. q(t.tdir .. "/tmux.conf") .. " new-session -d -x 120 -y 30 " .. q("bash " .. q(t.tdir .. "/run.sh")))
  tmux(t, "pipe-pane -o " .. q("cat >> " .. q(t.tdir .. "/raw")))
  write(t.tdir .. "/go", "")
  return t
end

--- The screen, as lines without trailing blanks.
function Term:screen()
  local lines = {}
  for line in (tmux(self, "capture-pane -p") .. "\n"):gmatch("([^\n]*)\n") do
    lines[#lines + 1] = line:gsub("%s+$", "")
  end
  while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
  return lines
end

function Term:text() return table.concat(self:screen(), "\n") end
function Term:raw() return slurp(self.tdir .. "/raw") or "" end
function Term:rc(within)
  local s = wait_for(function() return slurp(self.tdir .. "/rc") end, within or 30)
  return s and tonumber(s:match("%d+"))
end
function Term:keys(k) tmux(self, "send-keys " .. k) end
function Term:stop()
  tmux(self, "kill-server")
  fake.sh("rm -rf " .. q(self.tdir))
end

local function count(s, plain)
  local n, pos = 0, 1
  while true do
    local a, b = s:find(plain, pos, true)
    if not a then return n end
    n, pos = n + 1, b + 1
  end
end

describe("cli on a terminal (tmux)", function()
  if not have_tmux() then
    pending("tmux is not installed (scripts/deps.sh --test installs it)")
    return
  end
  local server, dir, env, term

  setup(function()
    server = fake.start()
    env = { GEMINI_API_KEY = "test-key", GOOGLE_GEMINI_BASE_URL = server.url }
  end)
  teardown(function() server:stop() end)
  before_each(function()
    server:reset()
    dir = fake.sh("mktemp -d"):gsub("%s+$", "")
  end)
  after_each(function()
    if term then term:stop(); term = nil end
    fake.sh("rm -rf " .. q(dir))
  end)

  it("a progress line redrawn in place (phase, bytes, percent, speed, elapsed), then a clean final line", function()
    -- the server sends ~1 KB of the body, then pauses 3 s: the line shows the download standing
    term = Term.start(dir, { "-o", "s.png", "a fox [[fault:stall:3]]" }, env)
    local PAT = "^nanobanana: downloading [%d.]+/[%d.]+ KiB %d+%% [%d.]+ [KMGi]*B/s (%d+%.%d)s$"
    local first = wait_for(function()
      local s = term:screen()
      return s[1] and s[1]:match(PAT) and s
    end, 30)
    assert.is_truthy(first, "no progress line: " .. term:text())
    assert.are.equal(1, #first) -- one line, nothing else on the screen
    local t1 = tonumber(first[1]:match(PAT))
    local later = wait_for(function()
      local s = term:screen()
      local t = s[1] and tonumber(s[1]:match(PAT) or "")
      return t and t >= t1 + 0.3 and s
    end, 30)
    assert.is_truthy(later, "the line was not redrawn: " .. term:text())
    assert.are.equal(1, #later) -- redrawn in place, not appended

    assert.are.equal(0, term:rc())
    local screen = term:screen()
    assert.are.equal(3, #screen, term:text())
    assert.matches("^nanobanana: done: [%d.]+ KiB in %d+%.%ds %([%d.]+ KiB/s%)$", screen[1])
    assert.are.equal("Here is your image.", screen[2])
    assert.are.equal("s.png image/png 1024x1024", screen[3])
    -- the bytes: each redraw is \r + line + clear to the end of the line
    local raw = term:raw()
    assert.is_true(count(raw, "\rnanobanana: downloading ") >= 3, raw)
    assert.is_true(count(raw, "\27[K") >= 3)
    assert.are.equal(server:last().images[1].sha256, fake.file_sha256(dir .. "/s.png"))
  end)

  it("-q on a terminal: no progress line", function()
    term = Term.start(dir, { "-q", "-o", "s.png", "a fox [[fault:stall:1]]" }, env)
    assert.are.equal(0, term:rc())
    assert.are.same({ "s.png image/png 1024x1024" }, term:screen())
    local raw = term:raw():gsub("\r\n", "\n") -- the terminal's own line ends
    assert.is_nil(raw:find("\r", 1, true))
    assert.is_nil(raw:find("\27[K", 1, true))
  end)

  it("Ctrl-C: the request is cancelled, exit 130, no temporary file left (output= and in memory)", function()
    term = Term.start(dir, { "-o", "s.png", "a fox [[fault:stall:30]]" }, env)
    -- the download has begun: the image is streaming into its temporary file
    local tmp = wait_for(function()
      for _, n in ipairs(ls(dir)) do if n:match("^%.nanobanana%-") then return n end end
    end, 30)
    assert.is_truthy(tmp, "no temporary file: " .. table.concat(ls(dir), " "))
    assert.is_truthy(wait_for(function() return term:text():find("nanobanana: downloading", 1, true) end, 30))
    term:keys("C-c")
    assert.are.equal(130, term:rc(15))
    assert.are.same({ "nanobanana: interrupted" }, term:screen())
    assert.are.same({}, ls(dir))
    assert.are.equal(1, #server:requests())
    term:stop()

    term = Term.start(dir, { "a fox [[fault:stall:30]]" }, env) -- no -o: the image is in memory
    assert.is_truthy(wait_for(function() return term:text():find("nanobanana: downloading", 1, true) end, 30))
    term:keys("C-c")
    assert.are.equal(130, term:rc(15))
    assert.are.same({ "nanobanana: interrupted" }, term:screen())
    assert.are.same({}, ls(dir))
  end)

  it("- with stdin a terminal: the prompt as typed (ended by Ctrl-D); Ctrl-C while typing ends it", function()
    local HINT = "nanobanana: type the prompt, then Ctrl-D on a line of its own"
    term = Term.start(dir, { "-o", "t.png", "-" }, env)
    assert.is_truthy(wait_for(function() return term:screen()[1] == HINT end, 30), term:text())
    term:keys("'A fox in a hat' Enter C-d")
    assert.are.equal(0, term:rc())
    local screen = term:screen()
    assert.are.equal(HINT, screen[1])
    assert.are.equal("A fox in a hat", screen[2]) -- as the terminal echoed it
    assert.are.equal("t.png image/png 1024x1024", screen[#screen])
    assert.are.same({ { text = "A fox in a hat" } }, server:last().body.contents[1].parts)
    assert.are.equal(server:last().images[1].sha256, fake.file_sha256(dir .. "/t.png"))
    term:stop()

    server:reset()
    term = Term.start(dir, { "-o", "u.png", "-" }, env)
    assert.is_truthy(wait_for(function() return term:screen()[1] == HINT end, 30), term:text())
    term:keys("'A fox' C-c")
    assert.are.equal(130, term:rc(15)) -- ended by SIGINT: 128 + 2
    assert.are.equal(0, #server:requests())
    assert.are.same({ "t.png" }, ls(dir))
  end)

  it("no prompt with stdin a terminal: bad usage (it does not wait for input)", function()
    term = Term.start(dir, {}, env)
    assert.are.equal(2, term:rc())
    assert.are.same({ "nanobanana: give one PROMPT (quote it), or - to read it from stdin",
                      "try 'nanobanana --help'" }, term:screen())
    assert.are.equal(0, #server:requests())
  end)
end)
