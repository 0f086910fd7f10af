-- Every error kind the synchronous path can produce, with its fields, and
-- the retry policy; never an empty success, never the key in a message.
local nb = require "nanobanana"
local fake = require "helpers.fake"

local function gen(client, prompt, opts)
  local res, err = client:generate(prompt, opts)
  assert.is_nil(res)
  assert.is_true(nb.is_error(err))
  return err
end

describe("errors", function()
  local server, client
  fake.suite(nil, {}, function(s, c) server, client = s, c end)

  it("api: 429 with RetryInfo gives code, message, details and retry_after", function()
    local err = gen(client, "otter [[fault:429:7]]")
    assert.are.equal("api", err.kind)
    assert.are.equal(429, err.status)
    assert.are.equal("RESOURCE_EXHAUSTED", err.code)
    assert.are.equal(7, err.retry_after)
    assert.is_table(err.details)
    assert.matches("quota", err.message)
    assert.are.equal(1, err.attempts)
    assert.matches("^nanobanana: api 429 RESOURCE_EXHAUSTED: ", tostring(err))
  end)

  it("api: the server's request validation (unknown field, bad key, missing key, unknown model)", function()
    local err = gen(client, "otter", { generationConfig = { imageConfig = { aspectRatio = "1:1" }, bogusField = 1 } })
    assert.are.equal("api", err.kind)
    assert.are.equal(400, err.status)
    assert.are.equal("INVALID_ARGUMENT", err.code)
    assert.matches('Unknown name "bogusField"', err.message)

    err = gen(nb.new { base_url = server.url, api_key = "wrong-key-123" }, "otter")
    assert.are.equal(400, err.status)
    assert.matches("API key not valid", err.message)
    assert.are.equal("API_KEY_INVALID", err.details[1].reason)

    err = gen(nb.new { base_url = server.url, auth = "none" }, "otter")
    assert.are.equal(403, err.status)
    assert.are.equal("PERMISSION_DENIED", err.code)

    err = gen(client, "otter", { model = "gemini-9-imaginary" })
    assert.are.equal(404, err.status)
    assert.are.equal("NOT_FOUND", err.code)
  end)

  it("api: a Vertex-style array-wrapped error and an error object inside a 200", function()
    local err = gen(client, "otter [[fault:vertex_error:403]]")
    assert.are.equal("api", err.kind)
    assert.are.equal(403, err.status)
    err = gen(client, "otter [[fault:error_in_200]]")
    assert.are.equal("api", err.kind)
    assert.is_string(err.code)
  end)

  it("http: an HTML 502 page and an empty 502", function()
    local err = gen(client, "otter [[fault:html_502]]")
    assert.are.equal("http", err.kind)
    assert.are.equal(502, err.status)
    assert.is_nil(err.message:find("<", 1, true))
    err = gen(client, "otter [[fault:empty_502]]")
    assert.are.equal("http", err.kind)
    assert.are.equal(502, err.status)
  end)

  it("blocked: IMAGE_SAFETY with no parts, prohibited content, a blocked prompt", function()
    local err = gen(client, "otter [[fault:image_safety]]")
    assert.are.equal("blocked", err.kind)
    assert.are.equal("IMAGE_SAFETY", err.finishReason)
    assert.is_string(err.finishMessage)
    err = gen(client, "otter [[fault:prohibited]]")
    assert.are.equal("IMAGE_PROHIBITED_CONTENT", err.finishReason)
    err = gen(client, "otter [[fault:blocked_prompt]]")
    assert.are.equal("blocked", err.kind)
    assert.are.equal("SAFETY", err.blockReason)
  end)

  it("no_image: a text-only answer and NO_IMAGE", function()
    local err = gen(client, "otter [[fault:text_only]]")
    assert.are.equal("no_image", err.kind)
    assert.are.equal("STOP", err.finishReason)
    assert.is_string(err.text)
    err = gen(client, "otter [[fault:no_image]]")
    assert.are.equal("no_image", err.kind)
    assert.are.equal("NO_IMAGE", err.finishReason)
  end)

  it("a policy or unknown finishReason that still brings an image is a success", function()
    local res = assert(client:generate("otter [[fault:safety_with_image]]"))
    assert.are.equal("IMAGE_SAFETY", res.finishReason)
    assert.are.equal(1, #res.images)
    res = assert(client:generate("otter [[fault:unknown_finish]]"))
    assert.are.equal("SOMETHING_NEW", res.finishReason)
  end)

  it("invalid_response: bad JSON, bad base64 (with offset), no candidates, not JSON", function()
    local err = gen(client, "otter [[fault:invalid_json]]")
    assert.are.equal("invalid_response", err.kind)
    assert.matches("at byte %d+", err.message)
    err = gen(client, "otter [[fault:invalid_base64]]")
    assert.are.equal("invalid_response", err.kind)
    assert.matches("base64", err.message)
    assert.matches("at byte %d+", err.message)
    err = gen(client, "otter [[fault:no_candidates]]")
    assert.are.equal("invalid_response", err.kind)
    err = gen(client, "otter [[fault:not_json_200]]")
    assert.are.equal("invalid_response", err.kind)
  end)

  it("the base64 of an image with \\/ escapes decodes to the same bytes", function()
    local res = assert(client:generate("otter [[fault:escaped]]"))
    assert.are.equal(server:last().images[#server:last().images].sha256, fake.sha256(res.images[1].data))
  end)

  it("network: connection refused, a truncated body, a reset", function()
    local dead = nb.new { base_url = "http://127.0.0.1:9", api_key = "k", retries = 0 }
    local err = gen(dead, "otter")
    assert.are.equal("network", err.kind)
    err = gen(client, "otter [[fault:truncated]]")
    assert.are.equal("network", err.kind)
    err = gen(client, "otter [[fault:reset]]")
    assert.are.equal("network", err.kind)
  end)

  it("timeout and stall", function()
    local err = gen(client, "otter [[fault:slow_headers:3]]", { timeout = 1 })
    assert.are.equal("timeout", err.kind)
    err = gen(client, "otter [[fault:stall:4]]", { stall_timeout = 1 })
    assert.are.equal("stall", err.kind)
  end)

  it("too_large: more than max_response_bytes of body", function()
    local small = nb.new { base_url = server.url, api_key = "test-key", retries = 0, max_response_bytes = 100000 }
    local err = gen(small, "otter [[fault:huge:300000]]")
    assert.are.equal("too_large", err.kind)
  end)

  it("io: an unreadable input image and an output directory that does not exist", function()
    local err = gen(client, "otter", { images = { "/nonexistent/a.png" } })
    assert.are.equal("io", err.kind)
    assert.matches("/nonexistent/a.png", err.message)
    local img, e2 = nb.image("/nonexistent/b.png")
    assert.is_nil(img)
    assert.are.equal("io", e2.kind)
    err = gen(client, "otter", { output = "/nonexistent/out.png" })
    assert.are.equal("io", err.kind)
  end)

  it("tls: an untrusted certificate fails with kind tls; ca_file makes it work", function()
    local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    fake.sh(string.format("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 " ..
      "-addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem 2>/dev/null", dir, dir))
    local tls = fake.start { "--tls-cert", dir .. "/cert.pem", "--tls-key", dir .. "/key.pem" }
    local url = "https://127.0.0.1:" .. tls.port
    local err = gen(nb.new { base_url = url, api_key = "test-key", retries = 0 }, "otter")
    assert.are.equal("tls", err.kind)
    local res, e2 = nb.new { base_url = url, api_key = "test-key", ca_file = dir .. "/cert.pem" }:generate("otter")
    tls:stop()
    fake.sh("rm -rf " .. dir)
    assert.is_nil(e2)
    assert.are.equal(1, #res.images)
  end)

  describe("retries", function()
    it("retries a 429 after the server's RetryInfo delay and succeeds", function()
      local c = nb.new { base_url = server.url, api_key = "test-key", retries = 2 }
      server:faults { { name = "429", arg = "0.3" } }
      local t0 = os.time()
      local res, err = c:generate("otter")
      assert.is_nil(err)
      assert.are.equal(2, res.attempts)
      assert.are.equal(2, #server:requests())
      assert.is_true(os.time() - t0 < 5)
    end)

    it("retries 500/503 and transport errors, up to `retries` extra attempts", function()
      local c = nb.new { base_url = server.url, api_key = "test-key", retries = 2, retry_base_delay = 0.05 }
      server:faults { { name = "500" }, { name = "503" }, { name = "reset" } }
      local err = gen(c, "otter")
      assert.are.equal(3, err.attempts)
      assert.are.equal("network", err.kind)
      assert.are.equal(3, #server:requests())
      server:reset()
      server:faults { { name = "503_retry_after", arg = "0.2" } }
      local res = assert(c:generate("otter"))
      assert.are.equal(2, res.attempts)
    end)

    it("never retries a 400; a delay above max_retry_delay ends the call at once", function()
      local c = nb.new { base_url = server.url, api_key = "test-key", retries = 3, max_retry_delay = 5 }
      local err = gen(c, "otter", { generationConfig = { bogus = 1 } })
      assert.are.equal(1, err.attempts)
      server:reset()
      err = gen(c, "otter [[fault:429:50]]")
      assert.are.equal(1, err.attempts)
      assert.are.equal(50, err.retry_after)
      assert.are.equal(1, #server:requests())
    end)
  end)

  describe("secrets", function()
    it("the key is in no message, error, tostring or field of the client", function()
      local key = "sk-very-secret-key-0123456789"
      local c = nb.new { base_url = server.url, api_key = key, retries = 0 }
      assert.is_nil(tostring(c):find(key, 1, true))
      for k, v in pairs(c) do
        assert.is_falsy(type(v) == "string" and v:find(key, 1, true), k)
      end
      local _, err = c:generate("otter")
      assert.are.equal(400, err.status)
      assert.is_nil(tostring(err):find(key, 1, true))
    end)

    it("text echoed by a server is scrubbed of the key", function()
      local key = "sk-very-secret-key-0123456789"
      local c = nb.new { base_url = server.url, api_key = key, retries = 0 }
      local err = gen(c, "otter [[fault:echo_auth]]")
      assert.is_nil(tostring(err):find(key, 1, true))
      assert.matches("%*%*%*", err.message)
    end)
  end)
end)
