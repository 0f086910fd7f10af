-- Connections: kept alive across requests to one host, and multiplexed
-- over one HTTP/2 connection when the server offers it (nghttpx, an HTTP/2
-- TLS front for the fake server, with a certificate made at test time).
local nb = require "nanobanana"
local fake = require "helpers.fake"

local function free_port()
  return tonumber(fake.sh([[python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])']]))
end

describe("connections", function()
  local server
  setup(function() server = fake.start() end)
  teardown(function() server:stop() end)

  it("reuse one kept-alive connection for sequential requests", function()
    local c = nb.new { base_url = server.url, api_key = "test-key" }
    local r1 = assert(c:generate("otter one"))
    local r2 = assert(c:generate("otter two"))
    local r3 = assert(c:generate("otter three"))
    assert.are.equal("1.1", r1.http.version)
    assert.are.equal(1, r1.http.new_connections)
    assert.are.equal(0, r2.http.new_connections)
    assert.are.equal(0, r3.http.new_connections)
  end)

  it("go through an HTTP proxy: the proxy option, and http_proxy from the environment", function()
    -- the fake server takes absolute-form requests, so it can play the proxy
    -- for a host that does not exist (.invalid never resolves; with an HTTP
    -- proxy libcurl does not look it up, the proxy is asked for it)
    server:reset()
    local c = nb.new { base_url = "http://nb-gateway.invalid/api", api_key = "test-key", proxy = server.url,
                       retries = 0 }
    local res, err = c:generate("otter via a proxy")
    assert.is_nil(err)
    local rec = server:last()
    assert.are.equal("nb-gateway.invalid", rec.headers["host"])
    assert.are.equal("/api", rec.prefix)
    assert.are.equal("Bearer test-key", rec.headers["authorization"])
    assert.are.equal(rec.images[#rec.images].sha256, fake.sha256(res.images[1].data))
    c:close()
    -- libcurl's environment variables work as well (a child process: Lua cannot setenv)
    local out = fake.sh(string.format(
      "cd %s && http_proxy=%s lua5.4 -e '%s' 2>&1", os.getenv("NB_ROOT") or ".", server.url,
      [[package.path="lua/?.lua;lua/?/init.lua;"..package.path; package.cpath="build/?.so;"..package.cpath
        local nb=require"nanobanana"; local r,e=nb.new{base_url="http://nb-gateway.invalid",api_key="test-key",retries=0}:generate("otter env proxy")
        print(r and "ok" or tostring(e))]]))
    assert.are.equal("ok\n", out)
    assert.are.equal("nb-gateway.invalid", server:last().headers["host"])
  end)

  it("multiplex concurrent requests over one HTTP/2 connection", function()
    if fake.sh("command -v nghttpx") == "" then
      error("nghttpx not installed (scripts/deps.sh --test installs nghttp2-proxy)")
    end
    local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    fake.sh(string.format("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 " ..
      "-addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem 2>/dev/null", dir, dir))
    -- start nghttpx on a free port; retry with another port if it exits
    -- (the port was taken meanwhile) or is not answering within 15 s
    local port, pid, ready
    for _ = 1, 3 do
      port = free_port()
      pid = fake.sh(string.format(
        "nghttpx --frontend=127.0.0.1,%d --backend=127.0.0.1,%d --workers=1 --no-ocsp " ..
        "--errorlog-file=%s/err.log --accesslog-file=/dev/null %s/key.pem %s/cert.pem >/dev/null 2>&1 & echo $!",
        port, server.port, dir, dir, dir)):gsub("%s+$", "")
      for _ = 1, 300 do
        if fake.sh("curl -s -o /dev/null -w '%{http_code}' --cacert " .. dir .. "/cert.pem https://127.0.0.1:" .. port .. "/_nb/health") == "200" then
          ready = true
          break
        end
        if fake.sh("kill -0 " .. pid .. " 2>/dev/null && echo alive") == "" then break end
        fake.sleep(0.05)
      end
      if ready then break end
      os.execute("kill " .. pid .. " 2>/dev/null")
    end
    if not ready then
      error("nghttpx did not come up: " .. (fake.read(dir .. "/err.log") or "no log"))
    end
    local c = nb.new { base_url = "https://127.0.0.1:" .. port, api_key = "test-key", ca_file = dir .. "/cert.pem" }
    local out = c:generate_many({ "otter 1", "otter 2", "otter 3", "otter 4" }, { concurrency = 4 })
    os.execute("kill " .. pid .. " 2>/dev/null")
    fake.sh("rm -rf " .. dir)
    local opened = 0
    for i = 1, 4 do
      assert.is_false(nb.is_error(out[i]), tostring(out[i]))
      assert.are.equal("2", out[i].http.version)
      opened = opened + out[i].http.new_connections
    end
    assert.are.equal(1, opened)
  end)
end)
