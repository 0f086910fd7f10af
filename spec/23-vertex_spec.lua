-- Vertex AI against the fake server: endpoint forms, project/location from
-- options and the environment, tokens from a string, a function and a
-- command, refreshed before expiry and once on a 401 (an expired token),
-- scrubbed like keys; Vertex-only imageConfig fields.
local nb = require "nanobanana"
local core = require "nanobanana.core"
local fake = require "helpers.fake"

local function raises(pattern, f, ...)
  local ok, msg = pcall(f, ...)
  assert.is_false(ok)
  assert.matches(pattern, tostring(msg))
end

local PATH = "/v1/projects/proj-1/locations/%s/publishers/google/models/%s:%s"

describe("vertex", function()
  local server
  fake.suite(nil, nil, function(s) server = s end)

  it("endpoints: global and regional defaults, the project path, Bearer token; base_url overrides", function()
    local g = nb.new { vertex = { project = "proj-1" }, access_token = "ya29.test-token" }
    assert.are.equal("https://aiplatform.googleapis.com" .. PATH:format("global", "gemini-3-pro-image", "generateContent"),
      g:url("gemini-3-pro-image"))
    local r = nb.new { vertex = { project = "proj-1", location = "europe-west4" }, access_token = "ya29.test-token" }
    assert.are.equal("https://europe-west4-aiplatform.googleapis.com"
      .. PATH:format("europe-west4", "gemini-3-pro-image", "streamGenerateContent"),
      r:url("gemini-3-pro-image", "streamGenerateContent"))
    local x = nb.new { vertex = true, api_key = "express-key-123" }
    assert.are.equal("https://aiplatform.googleapis.com/v1/publishers/google/models/m:countTokens", x:url("m", "countTokens"))
    -- through the fake server
    local c = nb.new { vertex = { project = "proj-1", location = "us-central1" }, access_token = "ya29.test-token",
                       base_url = server.url, retries = 0 }
    local res = assert(c:generate("an otter"))
    assert.are.equal(1, #res.images)
    local rec = server:last()
    assert.are.equal(PATH:format("us-central1", "gemini-3.1-flash-image", "generateContent"), rec.path)
    assert.are.equal("Bearer ya29.test-token", rec.headers["authorization"])
    assert.is_nil(rec.headers["x-goog-api-key"])
  end)

  it("project and location from GOOGLE_GENAI_USE_VERTEXAI / GOOGLE_CLOUD_PROJECT / GOOGLE_CLOUD_LOCATION", function()
    local script = os.tmpname()
    local f = io.open(script, "w")
    f:write([[
      local nb = require "nanobanana"
      local c = nb.new { access_token = "ya29.test-token" }
      io.write(c:url("gemini-3-pro-image"))
    ]])
    f:close()
    local out = fake.sh(string.format("cd %s && GOOGLE_GENAI_USE_VERTEXAI=true GOOGLE_CLOUD_PROJECT=proj-1 "
      .. "GOOGLE_CLOUD_LOCATION=asia-northeast1 LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 %s",
      os.getenv("NB_ROOT") or ".", script))
    os.remove(script)
    assert.are.equal("https://asia-northeast1-aiplatform.googleapis.com"
      .. PATH:format("asia-northeast1", "gemini-3-pro-image", "generateContent"), out)
  end)

  it("express mode: an API key, no project, x-goog-api-key; a 401 there is not retried", function()
    local c = nb.new { vertex = true, api_key = "test-key", base_url = server.url, retries = 0 }
    assert(c:generate("express"))
    local rec = server:last()
    assert.are.equal("/v1/publishers/google/models/gemini-3.1-flash-image:generateContent", rec.path)
    assert.are.equal("test-key", rec.headers["x-goog-api-key"])
    assert.is_nil(rec.headers["authorization"])
    server:faults { { name = "vertex_error", arg = "401" } }
    local res, err = c:generate("again")
    assert.is_nil(res)
    assert.are.equal(401, err.status)
    assert.are.equal(2, #server:requests()) -- (sent once)
  end)

  it("a token function: called before the first request, again when < 60 s remain, once after a 401", function()
    local calls, toks = 0, { "ya29.test-token", "ya29.short-lived", "ya29.after-401" }
    local lifetimes = { 3600, 30, 3600 }
    local c = nb.new { vertex = { project = "proj-1" }, base_url = server.url, retries = 0,
      token = function() calls = calls + 1; return toks[calls], lifetimes[calls] end }
    assert.are.equal(0, calls)
    assert(c:generate("one"))
    assert.are.equal(1, calls)
    assert(c:generate("two")) -- 3600 s left: no call
    assert.are.equal(1, calls)
    -- the server expires the token: a 401, a fresh token, the request sent again once
    server:post("/_nb/tokens", '{"expire": ["ya29.test-token"], "add": {"ya29.short-lived": 600, "ya29.after-401": 600}}')
    local res, err = c:generate("three")
    assert.is_nil(err)
    assert.is_table(res)
    assert.are.equal(2, calls)
    local reqs = server:requests()
    assert.are.equal(401, reqs[#reqs - 1].status)
    assert.are.equal("Bearer ya29.test-token", reqs[#reqs - 1].headers["authorization"])
    assert.are.equal("Bearer ya29.short-lived", reqs[#reqs].headers["authorization"])
    -- the token said 30 s: less than 60 s remain, so the next request asks again
    assert(c:generate("four"))
    assert.are.equal(3, calls)
    assert.are.equal("Bearer ya29.after-401", server:last().headers["authorization"])
  end)

  it("a 401 that a fresh token does not cure is the error (non-blocking); the token is scrubbed", function()
    local n = 0
    local c = nb.new { vertex = { project = "proj-1" }, base_url = server.url, retries = 0,
      token = function() n = n + 1; return "ya29.never-valid-" .. n, 3600 end }
    local got
    local req = c:start("x", { on_done = function(res, err) got = { res, err } end })
    local t0 = core.now()
    while req.state == "running" and core.now() - t0 < 10 do c:poll(); fake.sleep(0.005) end
    c:poll()
    assert.are.equal(2, n)
    assert.is_nil(got[1])
    assert.are.equal(401, got[2].status)
    assert.are.equal("UNAUTHENTICATED", got[2].code)
    assert.are.equal(2, #server:requests())
    -- a server that echoes the credentials: the token is scrubbed
    local e = nb.new { vertex = { project = "proj-1" }, base_url = server.url, retries = 0,
      token = function() return "ya29.test-token", 3600 end }
    local _, err = e:generate("x [[fault:echo_auth]]")
    assert.are.equal(400, err.status)
    assert.matches("authorization: Bearer %*%*%*", err.message)
    assert.is_nil(tostring(err):find("ya29.test-token", 1, true))
  end)

  it("an expired access_token string: the 401 as is (it cannot be refreshed); secrets never shown", function()
    server:post("/_nb/tokens", '{"add": {"ya29.fixed-token-1": 600}}')
    local c = nb.new { vertex = { project = "proj-1" }, access_token = "ya29.fixed-token-1", base_url = server.url, retries = 0 }
    assert(c:generate("ok"))
    server:post("/_nb/tokens", '{"expire": ["ya29.fixed-token-1"]}')
    local res, err = c:generate("x")
    assert.is_nil(res)
    assert.are.equal("api", err.kind)
    assert.are.equal(401, err.status)
    assert.are.equal(2, #server:requests()) -- the 401 was not sent again: it would carry the same token
    assert.are.equal("UNAUTHENTICATED", err.code)
    assert.is_nil(tostring(c):find("fixed-token", 1, true))
  end)

  it("token_command: the command's output is the token", function()
    local c = nb.new { vertex = { project = "proj-1" }, base_url = server.url, retries = 0,
                       token_command = { "printf", "  ya29.test-token\n" } }
    assert(c:generate("x"))
    assert.are.equal("Bearer ya29.test-token", server:last().headers["authorization"])
    local bad = nb.new { vertex = { project = "proj-1" }, base_url = server.url, token_command = { "false" } }
    local res, err = bad:generate("x")
    assert.is_nil(res)
    assert.are.equal("io", err.kind)
    assert.matches("token_command failed", err.message)
  end)

  it("Vertex-only imageConfig fields: accepted on Vertex, rejected for the Gemini API unless validate = false", function()
    local v = nb.new { vertex = { project = "proj-1" }, access_token = "ya29.test-token", base_url = server.url, retries = 0 }
    assert(v:generate("x", { imageConfig = { personGeneration = "ALLOW_ADULT",
                                             imageOutputOptions = { mimeType = "image/jpeg", compressionQuality = 80 } } }))
    assert.are.equal("ALLOW_ADULT", server:last().body.generationConfig.imageConfig.personGeneration)
    local g = nb.new { base_url = server.url, api_key = "test-key", retries = 0 }
    raises("imageConfig.personGeneration is a Vertex AI field", g.generate, g, "x",
      { imageConfig = { personGeneration = "ALLOW_ADULT" } })
    local _, err = g:generate("x", { validate = false, imageConfig = { personGeneration = "ALLOW_ADULT" } })
    assert.are.equal(400, err.status)
    assert.matches('Unknown name "personGeneration"', err.message)
  end)

  it("option errors raise", function()
    raises("needs an access token", nb.new, { vertex = { project = "p" } })
    raises("are for Vertex AI", nb.new, { api_key = "k", access_token = "t" })
    raises("one of access_token, token and token_command", nb.new,
      { vertex = { project = "p" }, access_token = "t", token = function() end })
    raises("unknown vertex field 'region'", nb.new, { vertex = { project = "p", region = "x" }, access_token = "t" })
    raises("needs a project", nb.new, { vertex = true, access_token = "t" })
  end)
end)
