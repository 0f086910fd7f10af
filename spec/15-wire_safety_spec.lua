-- Nothing reaches the wire that the caller did not mean: every request goes to
-- fake/capture.py, which records the exact bytes received; what the library
-- refuses raises before a byte is sent (the capture server then received
-- nothing at all).
local nb = require "nanobanana"
local core = require "nanobanana.core"
local request = require "nanobanana.request"
local capture = require "helpers.capture"

local KEY = "KEY-wire-0123456789"

describe("wire safety", function()
  local cap
  setup(function() cap = capture.start() end)
  teardown(function() cap:stop() end)

  local function expected(path, host, extra, body)
    return table.concat {
      "POST ", path, " HTTP/1.1\r\n",
      "Host: ", host, "\r\n",
      "Accept: */*\r\n",
      "Accept-Encoding: gzip\r\n",
      "Content-Type: application/json\r\n",
      "User-Agent: nanobanana/", core.version, "\r\n",
      "x-goog-api-client: nanobanana/", core.version, "\r\n",
      "X-Server-Timeout: 600\r\n",
      extra or ("Authorization: Bearer " .. KEY .. "\r\n"),
      "Content-Length: ", #body, "\r\n",
      "\r\n", body,
    }
  end
  local BODY = '{"contents":[{"parts":[{"text":"hello"}],"role":"user"}]}'

  -- runs f, which must raise; then asserts nothing new reached the server
  local function refused(pattern, f, ...)
    local before = #cap:requests()
    local ok, msg = pcall(f, ...)
    assert.is_false(ok, "expected a raise matching " .. pattern)
    assert.matches(pattern, tostring(msg))
    assert.is_nil(tostring(msg):find(KEY, 1, true), "the key is in the message")
    assert.are.equal(before, #cap:requests())
  end

  local function client(o)
    o = o or {}
    local opts = { api_key = KEY, base_url = cap.url, retries = 0 }
    for k, v in pairs(o) do opts[k] = v end
    return nb.new(opts)
  end

  local function last() local r = cap:requests(); return r[#r] end

  it("sends exactly the request line, headers and body it means", function()
    local res, err = client { headers = { ["X-Test"] = "v", ["X-Empty"] = "" } }:generate("hello")
    assert.is_nil(err)
    assert.are.equal(1, res.images[1].width)
    assert.are.equal(expected("/v1beta/models/gemini-2.5-flash-image:generateContent", "127.0.0.1:" .. cap.port,
      "Authorization: Bearer " .. KEY .. "\r\nX-Empty:\r\nX-Test: v\r\n", BODY), last())
  end)

  it("a headers= entry named like one of nanobanana's replaces it (sent once)", function()
    local res, err = client { headers = { ["user-agent"] = "host-app/2", ["X-Server-Timeout"] = "30" } }:generate("hello")
    assert.is_nil(err)
    assert.truthy(res)
    assert.are.equal(table.concat {
      "POST /v1beta/models/gemini-2.5-flash-image:generateContent HTTP/1.1\r\n",
      "Host: 127.0.0.1:", cap.port, "\r\n",
      "Accept: */*\r\n",
      "Accept-Encoding: gzip\r\n",
      "Content-Type: application/json\r\n",
      "x-goog-api-client: nanobanana/", core.version, "\r\n",
      "Authorization: Bearer ", KEY, "\r\n",
      "X-Server-Timeout: 30\r\n",
      "user-agent: host-app/2\r\n",
      "Content-Length: ", #BODY, "\r\n",
      "\r\n", BODY,
    }, last())
  end)

  it("keeps models/ and tunedModels/ prefixes, a base_url path prefix and an empty api_version", function()
    assert.is_nil(select(2, client():generate("hello", { model = "models/gemini-2.5-flash-image" })))
    assert.are.equal(expected("/v1beta/models/gemini-2.5-flash-image:generateContent", "127.0.0.1:" .. cap.port, nil, BODY), last())
    assert.is_nil(select(2, client():generate("hello", { model = "tunedModels/my-tuned_model.v2" })))
    assert.are.equal(expected("/v1beta/tunedModels/my-tuned_model.v2:generateContent", "127.0.0.1:" .. cap.port, nil, BODY), last())
    assert.is_nil(select(2, client { base_url = cap.url .. "/gw/prefix/", api_version = "" }:generate("hello")))
    assert.are.equal(expected("/gw/prefix/models/gemini-2.5-flash-image:generateContent", "127.0.0.1:" .. cap.port, nil, BODY), last())
    assert.is_nil(select(2, client { base_url = "http://localhost:" .. cap.port }:generate("hello")))
    assert.are.equal(expected("/v1beta/models/gemini-2.5-flash-image:generateContent", "localhost:" .. cap.port, nil, BODY), last())
  end)

  it("sends the key as x-goog-api-key with auth = x-goog-api-key, and nothing with auth = none", function()
    assert.is_nil(select(2, client { auth = "x-goog-api-key" }:generate("hello")))
    assert.are.equal(expected("/v1beta/models/gemini-2.5-flash-image:generateContent", "127.0.0.1:" .. cap.port,
      "x-goog-api-key: " .. KEY .. "\r\n", BODY), last())
    assert.is_nil(select(2, client { auth = "none" }:generate("hello")))
    assert.are.equal(expected("/v1beta/models/gemini-2.5-flash-image:generateContent", "127.0.0.1:" .. cap.port, "", BODY), last())
  end)

  it("refuses CR, LF and NUL in the key and in header values", function()
    for _, bad in ipairs { "\r", "\n", "\r\n", "\0", "\r\nX-Injected: 1" } do
      refused("api_key contains CR, LF or NUL", nb.new, { api_key = "KEY-wire" .. bad .. "0123456789", base_url = cap.url })
      refused("contains CR, LF or NUL", client, { headers = { ["X-Test"] = "a" .. bad .. "b" } })
      refused("contains CR, LF or NUL", client, { auth = "none", headers = { Authorization = "Bearer " .. KEY .. bad } })
    end
  end)

  it("refuses CR, LF and NUL in a token learnt later (a token provider's)", function()
    local c = client()
    for _, bad in ipairs { "\r", "\n", "\0" } do
      refused("token contains CR, LF or NUL", c._add_secret, c, "tok" .. bad .. "en-12345678")
    end
  end)

  it("refuses header names that are not HTTP tokens or that nanobanana owns", function()
    for _, name in ipairs { "Host", "host", "HOST", "Content-Length", "content-length", "Transfer-Encoding",
                            "TRANSFER-encoding", "Connection", "connection" } do
      refused("may not set", client, { headers = { [name] = "x" } })
    end
    for _, name in ipairs { "", "X Bad", "X:Bad", "X-Bad:", "X\r\nY", "X\0", "X(1)", "X/Y", "X\"", "X\tY", "\195\164" } do
      refused("is not an HTTP token", client, { headers = { [name] = "x" } })
    end
    -- every tchar is accepted (and sent as given)
    assert.is_nil(select(2, client { headers = { ["!#$%&'*+-.^_`|~09azAZ"] = "ok" } }:generate("hello")))
    assert.truthy(last():find("\r\n!#$%&'*+-.^_`|~09azAZ: ok\r\n", 1, true))
  end)

  it("keeps the model id inside its path segment", function()
    local bad = { "../../x", "..", "m?key=1", "m#f", "m%2Fx", "m%2F..%2Fx", "a b", "m\1", "m\r\nX: y", "models/../x",
                  "tunedModels/a/b", "models/", "", "/m", "m/", "m:generateContent", ".hidden", "m\0" }
    for _, m in ipairs(bad) do
      refused("is not a model id", client, { model = m })
      refused("is not a model id", client().generate, client(), "hello", { model = m })
      refused("is not a model id", client().start, client(), "hello", { model = m })
      refused("is not a model id", client().url, client(), m)
      local chat = client():chat { model = m }
      refused("is not a model id", chat.send, chat, "hello")
    end
  end)

  it("client:url names only a method (no query or path in it)", function()
    local c = client()
    assert.are.equal(cap.url .. "/v1beta/models/m-1:countTokens", c:url("m-1", "countTokens"))
    for _, m in ipairs { "x?y", "x/y", "x#", "", "a b", "x\r\n" } do
      refused("method must be a method name", c.url, c, "m", m)
    end
  end)

  it("refuses base_url with a query, fragment, userinfo, space or control byte", function()
    local u = cap.url
    for _, url in ipairs { u .. "/?key=1", u .. "?x", u .. "/#f", u .. "#", "http://user:pw@127.0.0.1:" .. cap.port,
                           "http://user@127.0.0.1:" .. cap.port, u .. "/a b", u .. "/a\r\nX: y", u .. "\n", " " .. u,
                           u .. "/\0", u .. "/a\\b", "http://127.0.0.1:0", "http://127.0.0.1:65536", "http://:80",
                           "http://", "ftp://127.0.0.1", "127.0.0.1:" .. cap.port, "http://[::1", "http://h:x",
                           -- what libcurl would reject (or fail to resolve) later, as a network error
                           "http://[1:2:3]", "http://[::1::2]", "http://[1:2:3:4:5:6:7:8:9]", "http://[12345::]",
                           "http://[::1.2.3.256]", "http://a..b", "http://.a", "http://x." .. ("a"):rep(64) } do
      refused("base_url", nb.new, { api_key = KEY, base_url = url })
    end
    for _, url in ipairs { "http://[::1]:1", "http://[::]", "http://[fe80::1:2]", "http://[1:2:3:4:5:6:7:8]",
                           "http://[::ffff:127.0.0.1]", "http://a_b.internal.:80", "HTTPS://Example.COM/p" } do
      assert(nb.new { api_key = KEY, base_url = url })
    end
    local ok, msg = pcall(nb.new, { api_key = KEY, base_url = "http://user:s3cr3t-pass@127.0.0.1:1" })
    assert.is_false(ok)
    assert.is_nil(msg:find("s3cr3t", 1, true))
  end)

  it("refuses a malformed proxy in nb.new, and hides a proxy's password", function()
    for _, p in ipairs { "127.0.0.1:3128", "http://", "http://:3128", "http://h:0", "http://h:99999", "gopher://h:70",
                         "http://h/path", "http://h?x", "http://h#f", "http://h 1", "http://h\r\n", "http://h:3128:1",
                         "http://[1:2:3]:8", "socks5://a..b:1" } do
      refused("proxy", nb.new, { api_key = KEY, base_url = cap.url, proxy = p })
    end
    local c = nb.new { api_key = KEY, base_url = cap.url, proxy = "http://user:pr0xy-pass-word@127.0.0.1:3128" }
    assert.are.equal("http://user:***@127.0.0.1:3128", c.options.proxy)
    for _, pw in ipairs { "pa:ss-word-1234", "p@ss-word-1234", "p@s:s%2Fw%40rd-1234" } do
      local pc = nb.new { api_key = KEY, base_url = cap.url, proxy = "socks5h://u:" .. pw .. "@127.0.0.1:1080" }
      assert.are.equal("socks5h://u:***@127.0.0.1:1080", pc.options.proxy)
    end
    assert.are.equal("socks5h://[::1]:1080", nb.new { api_key = KEY, base_url = cap.url, proxy = "socks5h://[::1]:1080" }.options.proxy)
  end)

  it("never retries local failures (config, memory, io, too_large), retries transport ones", function()
    for _, k in ipairs { "config", "memory", "io", "too_large", "invalid_response", "cancelled", "tls" } do
      assert.is_false(request.retryable { kind = k }, k)
    end
    for _, k in ipairs { "network", "timeout", "stall" } do assert.is_true(request.retryable { kind = k }, k) end
    assert.is_true(request.retryable { kind = "http", status = 503 })
    assert.is_false(request.retryable { kind = "http", status = 400 })
  end)
end)
