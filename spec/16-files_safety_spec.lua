-- Nothing destroyed, nothing hung: output= and img:save() write only
-- regular files (a symlink's target, the link kept), refuse device nodes,
-- FIFOs, sockets and directories with kind io before anything is sent;
-- reference images, uploads and batch inputs that are not regular files
-- give io at once; files get
-- 0666 & ~umask; every descriptor the library holds is close-on-exec.
-- Every node is made in a temp dir of the test's own (mknod, mkfifo).
local nb = require "nanobanana"
local fake = require "helpers.fake"
local capture = require "helpers.capture"

local ROOT = os.getenv("NB_ROOT") or "."
local LUA = (arg and arg[-1] and not arg[-1]:match("^%-")) and arg[-1] or "lua5.4"
if LUA:find("/", 1, true) and not LUA:match("^/") then LUA = ROOT .. "/" .. LUA end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function sh(cmd) return fake.sh(cmd) end
local function ftype(path) return (sh("stat -c %F " .. q(path) .. " 2>&1"):gsub("%s+$", "")) end
local function absolute(paths)
  local out = {}
  for entry in paths:gmatch("[^;]+") do out[#out + 1] = entry:match("^/") and entry or (ROOT .. "/" .. entry) end
  return table.concat(out, ";") .. ";;"
end

-- runs a Lua script in a child process (this suite's interpreter and module
-- paths) under umask mask (default 022), at most 20 s; returns rc, stdout
local function child(script, mask, env)
  local name = os.tmpname()
  local f = assert(io.open(name, "w")); f:write(script); f:close()
  local parts = { "umask", mask or "022", ";", "timeout", "20", "env", "LUA_PATH=" .. q(absolute(package.path)),
                  "LUA_CPATH=" .. q(absolute(package.cpath)) }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. q(v) end
  parts[#parts + 1] = q(LUA) .. " " .. q(name) .. " 2>&1; echo \"rc=$?\""
  local p = assert(io.popen(table.concat(parts, " ")))
  local out = p:read("*a")
  p:close()
  os.remove(name)
  return tonumber(out:match("rc=(%d+)\n$")), out:gsub("rc=%d+\n$", "")
end

describe("files safety", function()
  local cap, dir, client
  local PNG -- the 1x1 PNG the capture server answers with
  setup(function()
    cap = capture.start()
    dir = sh("mktemp -d"):gsub("%s+$", "")
    client = nb.new { api_key = "KEY-files-0123456789", base_url = cap.url, retries = 0 }
    local res = assert(client:generate("png"))
    PNG = res.images[1].data
    assert.are.equal("image/png", res.images[1].mimeType)
  end)
  teardown(function()
    cap:stop()
    os.execute("rm -rf " .. q(dir))
  end)

  local function make_nodes(sub)
    local d = dir .. "/" .. sub
    sh(table.concat({
      "mkdir -p " .. q(d),
      "mknod " .. q(d .. "/null") .. " c 1 3", -- a /dev/null-alike, in the temp dir
      "mknod " .. q(d .. "/blk") .. " b 7 200",
      "mkfifo " .. q(d .. "/fifo"),
      "mkdir " .. q(d .. "/dir"),
      "python3 -c " .. q("import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])") .. " " .. q(d .. "/sock"),
    }, " && "))
    assert.are.equal("character special file", ftype(d .. "/null"))
    assert.are.equal("block special file", ftype(d .. "/blk"))
    assert.are.equal("fifo", ftype(d .. "/fifo"))
    assert.are.equal("socket", ftype(d .. "/sock"))
    return d
  end
  local KINDS = { null = "character special file", blk = "block special file", fifo = "fifo",
                  sock = "socket", dir = "directory" }

  it("output= refuses a device, FIFO, socket or directory with io, before anything is sent; the node is untouched", function()
    local d = make_nodes("out")
    sh("ln -s null " .. q(d .. "/link-null") .. " && ln -s fifo " .. q(d .. "/link-fifo"))
    local names = { "null", "blk", "fifo", "sock", "dir", "link-null", "link-fifo" }
    for _, name in ipairs(names) do
      local before = #cap:requests()
      local req = client:start("x", { output = d .. "/" .. name })
      -- failed at once: finished before any poll, nothing sent
      assert.are.equal("failed", req.state, name)
      local res, err = req:wait(5)
      assert.is_nil(res)
      assert.are.equal("io", err.kind, name)
      assert.matches("not a regular file", err.message)
      assert.are.equal(before, #cap:requests(), name)
    end
    for name, kind in pairs(KINDS) do assert.are.equal(kind, ftype(d .. "/" .. name), name) end
    assert.are.equal("symbolic link", ftype(d .. "/link-null"))
    assert.are.equal("null", sh("readlink " .. q(d .. "/link-null")):gsub("%s+$", ""))
    assert.are.equal("", sh("ls -A " .. q(d .. "/dir"))) -- nothing left in the directory either
    assert.are.equal("", sh("ls -A " .. q(d) .. " | grep nanobanana; true"))
  end)

  it("img:save() refuses the same nodes with io and leaves them untouched", function()
    local d = make_nodes("save")
    local img = assert(client:generate("x")).images[1]
    assert(img:save(d .. "/src.png"))
    local fimg = assert(nb.image(d .. "/src.png"))
    for name, kind in pairs(KINDS) do
      for _, im in ipairs { img, fimg } do -- from memory (write) and from a file (copy)
        local ok, err = im:save(d .. "/" .. name)
        assert.is_nil(ok)
        assert.are.equal("io", err.kind, name)
        assert.matches("not a regular file", err.message)
        assert.are.equal(kind, ftype(d .. "/" .. name), name)
      end
    end
    assert.are.equal("", sh("ls -A " .. q(d) .. " | grep '\\.nb-'; true"))
  end)

  it("a symlink's target is written (absolute, relative, chained, dangling); the link stays a link", function()
    local d = dir .. "/links"
    sh("mkdir -p " .. q(d .. "/real") .. " && echo old > " .. q(d .. "/real/a.png")
       .. " && ln -s real/a.png " .. q(d .. "/rel") .. " && ln -s " .. q(d .. "/real/b.png") .. " " .. q(d .. "/abs")
       .. " && ln -s rel " .. q(d .. "/chain") .. " && ln -s real/new.png " .. q(d .. "/dangling")
       .. " && ln -s loop2 " .. q(d .. "/loop1") .. " && ln -s loop1 " .. q(d .. "/loop2"))
    local res, err = client:generate("x", { output = d .. "/rel" })
    assert.is_nil(err)
    assert.are.equal(PNG, fake.read(d .. "/real/a.png"))
    assert.are.equal("symbolic link", ftype(d .. "/rel"))
    assert.are.equal(d .. "/real/a.png", res.images[1].path)
    sh("echo old > " .. q(d .. "/real/a.png"))
    assert.is_nil(select(2, client:generate("x", { output = d .. "/chain" })))
    assert.are.equal(PNG, fake.read(d .. "/real/a.png"))
    assert.are.equal("symbolic link", ftype(d .. "/chain"))
    assert.are.equal("symbolic link", ftype(d .. "/rel"))
    assert.is_nil(select(2, client:generate("x", { output = d .. "/abs" })))
    assert.are.equal(PNG, fake.read(d .. "/real/b.png"))
    assert.are.equal("symbolic link", ftype(d .. "/abs"))
    assert.is_nil(select(2, client:generate("x", { output = d .. "/dangling" })))
    assert.are.equal(PNG, fake.read(d .. "/real/new.png"))
    assert.are.equal("symbolic link", ftype(d .. "/dangling"))
    -- a symlink loop: io, nothing sent
    local before = #cap:requests()
    local _, lerr = client:generate("x", { output = d .. "/loop1" })
    assert.are.equal("io", lerr.kind)
    assert.are.equal(before, #cap:requests())
    -- img:save through links
    sh("rm -f " .. q(d .. "/real/new.png") .. " && echo old > " .. q(d .. "/real/a.png"))
    assert(nb.image { data = PNG }:save(d .. "/src.png"))
    assert(assert(nb.image(d .. "/src.png")):save(d .. "/chain")) -- a copy from a file
    assert.are.equal(PNG, fake.read(d .. "/real/a.png"))
    assert.are.equal("symbolic link", ftype(d .. "/chain"))
    local mem = assert(nb.image { data = PNG })
    assert(mem:save(d .. "/dangling"))
    assert.are.equal(PNG, fake.read(d .. "/real/new.png"))
    assert.are.equal("symbolic link", ftype(d .. "/dangling"))
    assert.are.equal("", sh("ls -A " .. q(d) .. " " .. q(d .. "/real") .. " | grep -e '\\.nb-' -e nanobanana; true"))
  end)

  -- Runs body in a child against the nodes made in sub (D): c is a client of
  -- the capture server, NAMES the node names, swapped() an image checked by
  -- nb.image and then replaced by a FIFO. Asserts the child ended well and
  -- that nothing was sent; returns the nodes' dir and the child's output.
  local NODES_PRELUDE = [[
      local nb = require "nanobanana"
      local d, url = os.getenv("D"), os.getenv("URL")
      local c = nb.new { api_key = "KEY-files-0123456789", base_url = url, retries = 0 }
      local NAMES = { "fifo", "null", "blk", "sock", "dir" }
      local function swapped()
        local f = assert(io.open(d .. "/swap.png", "wb"))
        f:write((os.getenv("PNGHEX"):gsub("..", function(h) return string.char(tonumber(h, 16)) end)))
        f:close()
        local img = assert(nb.image(d .. "/swap.png"))
        os.remove(d .. "/swap.png")
        os.execute("mkfifo " .. d .. "/swap.png")
        return img
      end
  ]]
  local function on_nodes(sub, body)
    local d = make_nodes(sub)
    local before = #cap:requests()
    local rc, out = child(NODES_PRELUDE .. body .. '\nprint("done")\n', nil, { D = d, URL = cap.url,
      PNGHEX = (PNG:gsub(".", function(c) return string.format("%02x", c:byte()) end)) })
    assert.are.equal(0, rc, out)
    assert.matches("done\n$", out)
    assert.are.equal(before, #cap:requests()) -- nothing was sent
    return d, out
  end
  local NAMES = { "fifo", "null", "blk", "sock", "dir" }

  it("reference images that are FIFOs, devices, sockets or directories give io at once, never a hang", function()
    local _, out = on_nodes("refs", [[
      for _, name in ipairs(NAMES) do
        local img, err = nb.image(d .. "/" .. name)
        print(name, "image", img, err and err.kind, err and err.message)
        local res, gerr = c:generate("x", { images = { d .. "/" .. name } })
        print(name, "generate", res, gerr and gerr.kind)
      end
      -- a file checked by nb.image, then swapped for a FIFO before the call: the
      -- engine's own open must not block either
      local img = swapped()
      local res, err = c:generate("x", { images = { img } })
      print("swap", "generate", res, err and err.kind, err and err.message)
      local b, berr = img:bytes()
      print("swap", "bytes", b, berr and berr.kind)
    ]])
    for _, name in ipairs(NAMES) do
      assert.matches("\n?" .. name .. "\timage\tnil\tio\tcannot read [^\n]*: not a regular file\n", out)
      assert.matches(name .. "\tgenerate\tnil\tio\n", out)
    end
    assert.matches("swap\tgenerate\tnil\tio\tcannot read [^\n]*swap.png: not a regular file\n", out)
    assert.matches("swap\tbytes\tnil\tio\n", out)
  end)

  it("uploads and batch file input of FIFOs, devices, sockets or directories give io at once, never a hang", function()
    local d, out = on_nodes("uploads", [[
      for _, name in ipairs(NAMES) do
        local f, err = c:upload(d .. "/" .. name, { mimeType = "image/png" })
        print(name, "upload", f, err and err.kind, err and err.message)
        local f2, err2 = c:upload(d .. "/" .. name) -- no mimeType: still io, not a MIME complaint
        print(name, "upload-sniff", f2, err2 and err2.kind)
        local f3, err3 = c:start_upload(d .. "/" .. name, { mimeType = "image/png" }):wait(5)
        print(name, "start_upload", f3, err3 and err3.kind)
      end
      -- a reference swapped for a FIFO before a batch whose input is a JSONL
      -- file: writing that file must not block either
      local job, err = c:batch({ { "x", { images = { swapped() } } } }, { input = "file" })
      print("swap", "batch", job, err and err.kind, err and err.message)
    ]])
    for _, name in ipairs(NAMES) do
      assert.matches("\n?" .. name .. "\tupload\tnil\tio\tcannot read [^\n]*: not a regular file\n", out)
      assert.matches(name .. "\tupload%-sniff\tnil\tio\n", out)
      assert.matches(name .. "\tstart_upload\tnil\tio\n", out)
      assert.are.equal(KINDS[name], ftype(d .. "/" .. name)) -- untouched
    end
    assert.matches("swap\tbatch\tnil\tio\tcannot read [^\n]*swap.png: not a regular file\n", out)
  end)

  it("output= and img:save() files get 0666 & ~umask (umask 027 and 002)", function()
    for _, case in ipairs { { "027", "640" }, { "002", "664" }, { "077", "600" } } do
      local d = dir .. "/mode" .. case[1]
      sh("mkdir -p " .. q(d) .. " && echo old > " .. q(d .. "/replaced.png") .. " && chmod 0600 " .. q(d .. "/replaced.png"))
      local rc, out = child([[
        local nb = require "nanobanana"
        local d = os.getenv("D")
        local c = nb.new { api_key = "KEY-files-0123456789", base_url = os.getenv("URL"), retries = 0 }
        local res = assert(c:generate("x", { output = d .. "/out.png" }))
        assert(c:generate("x", { output = d .. "/replaced.png" }))
        assert(res.images[1]:save(d .. "/copy.png"))
        assert(assert(c:generate("x")).images[1]:save(d .. "/saved.png"))
        print("ok")
      ]], case[1], { D = d, URL = cap.url })
      assert.are.equal(0, rc, out)
      for _, name in ipairs { "out.png", "replaced.png", "copy.png", "saved.png" } do
        assert.are.equal(case[2], sh("stat -c %a " .. q(d .. "/" .. name)):gsub("%s+$", ""), case[1] .. " " .. name)
        assert.are.equal(PNG, fake.read(d .. "/" .. name))
      end
    end
  end)

  it("every descriptor the library holds is close-on-exec (sockets, temp files, reference files)", function()
    local server = fake.start {}
    local d = dir .. "/cloexec"
    sh("mkdir -p " .. q(d))
    assert(nb.image { data = PNG }:save(d .. "/ref.png"))
    local rc, out = child([==[
      -- what this process inherited itself (not the library's)
      local p0 = io.popen("ls -l /proc/self/fd/")
      io.write(p0:read("*a"), "==start\n")
      p0:close()
      local nb = require "nanobanana"
      local d = os.getenv("D")
      local c = nb.new { api_key = "test-key", base_url = os.getenv("URL"), retries = 0 }
      -- the response stalls after ~1 KB: its socket and the output= temp file are open
      local req = c:start("otter [[fault:stall:4]]", { output = d .. "/out.png", images = { d .. "/ref.png" } })
      local t0 = os.time()
      while req.progress.downloaded < 512 and os.time() - t0 < 10 do c:poll(); req:wait(0.05) end
      print("downloaded", req.progress.downloaded)
      -- what a child spawned now inherits, and what this process holds
      local p = io.popen("ls -l /proc/self/fd/; echo ==parent; ls -l /proc/$PPID/fd/; echo ==unix; cat /proc/net/unix")
      io.write(p:read("*a"))
      p:close()
      req:cancel()
      c:close()
    ]==], nil, { D = d, URL = server.url })
    server:stop()
    assert.are.equal(0, rc, out)
    assert.matches("downloaded\t%d%d%d+", out)
    local start, inherited, held, unix = out:match("^(.-)==start\n.-downloaded[^\n]*\n(.-)==parent\n(.-)==unix\n(.*)$")
    assert.truthy(inherited, out)
    local before = {}
    for line in start:gmatch("[^\n]+") do
      local fd, target = line:match(" (%d+) %-> (.*)$")
      if fd then before[fd] = target end
    end
    local unix_inodes = {}
    for line in unix:gmatch("[^\n]+") do
      local inode = line:match("^%x+: %x+ %x+ %x+ %x+ %x+ (%d+)")
      if inode then unix_inodes[inode] = true end
    end
    -- the parent really holds a TCP socket, the reference file and the
    -- temp file beside out.png...
    local tcp = 0
    for inode in held:gmatch("socket:%[(%d+)%]") do if not unix_inodes[inode] then tcp = tcp + 1 end end
    assert.is_true(tcp >= 1, held)
    assert.matches(d:gsub("%p", "%%%0") .. "/%.nanobanana%-", held)
    assert.matches(d:gsub("%p", "%%%0") .. "/ref%.png", held)
    -- ...and the spawned child inherited none of them: only 0, 1, 2, what
    -- this process had inherited itself, and ls's own handle on
    -- /proc/self/fd. Not even libcurl's wakeup socket pair (AF_UNIX, made
    -- inside curl_multi_init without close-on-exec before libcurl 8.8: curl
    -- issue 13618), which the engine marks itself
    for line in inherited:gmatch("[^\n]+") do
      local fd, target = line:match(" (%d+) %-> (.*)$")
      if fd and tonumber(fd) > 2 and before[fd] ~= target then
        assert.matches("^/proc/%d+/fd$", target, "inherited: " .. line)
      end
    end
  end)
end)
