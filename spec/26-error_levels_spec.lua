-- Programming errors blame the caller: each raised message starts with the
-- file and line of the user's call ("spec/26-error_levels_spec.lua:N:"),
-- whatever depth inside the library found the mistake. (A tail call in a
-- wrapper shifts the count by one frame on Lua 5.2+; then the message
-- names the pcall's caller, or no place at all.)
local nb = require "nanobanana"

local client = nb.new { api_key = "test-key", base_url = "http://127.0.0.1:9", retries = 0 }

-- f raises; its message names the line where f was written (the call is on
-- the line of the closure)
local function blames_caller(f)
  local line = debug.getinfo(f, "S").linedefined
  local ok, err = pcall(f)
  assert.is_false(ok, "did not raise")
  err = tostring(err)
  assert.truthy(err:find("26%-error_levels_spec%.lua:" .. line .. ": nanobanana"),
    "line " .. line .. ": " .. err)
end

describe("error levels", function()
  teardown(function() client:close() end)

  it("nb.new, nb.image and nb.await", function()
    blames_caller(function() nb.new { bogus = 1 } end)
    blames_caller(function() nb.new { api_key = "k\r\nx", base_url = "http://127.0.0.1:9" } end)
    blames_caller(function() nb.new { api_key = "k", base_url = "http://u:p@127.0.0.1:9" } end)
    blames_caller(function() nb.image { bogus = 1 } end)
    blames_caller(function() nb.image(42) end)
    blames_caller(function() nb.await(42) end)
  end)

  it("client calls: generate, start, stream, generate_many, count_tokens, chat", function()
    blames_caller(function() client:generate("x", { bogus = 1 }) end)
    blames_caller(function() client:generate(42) end)
    blames_caller(function() client:generate("x", { model = "../x" }) end)
    blames_caller(function() client:generate("x", { retries = -1 }) end)
    blames_caller(function() client:generate("x", { images = { { fileUri = 1 } } }) end)
    blames_caller(function() client:start("x", { output = 42 }) end)
    blames_caller(function() client:start("x", { timeout = -1 }) end)
    blames_caller(function() client:stream("x", { bogus = 1 }) end)
    blames_caller(function() client:generate_many(42) end)
    blames_caller(function() client:generate_many({ 1 }) end)
    blames_caller(function() client:count_tokens("x", { bogus = 1 }) end)
    blames_caller(function() client:start_count_tokens("x", { bogus = 1 }) end)
    blames_caller(function() client:chat { bogus = 1 } end)
    blames_caller(function() client:chat { history = "not json" } end)
    blames_caller(function() client:url("../x") end)
  end)

  it("Files and Batch: upload, file, delete_file, files, batch, batch_job, batches", function()
    blames_caller(function() client:upload({ bad = 1 }) end)
    blames_caller(function() client:start_upload({ bad = 1 }) end)
    blames_caller(function() client:upload({ data = "x" }, { chunk_size = 0 }) end)
    blames_caller(function() client:file("../x") end)
    blames_caller(function() client:delete_file("../x") end)
    blames_caller(function() client:files { bogus = 1 } end)
    blames_caller(function() client:batch({}) end)
    blames_caller(function() client:start_batch({}) end)
    blames_caller(function() client:batch({ 42 }) end)
    blames_caller(function() client:batch_job("../x") end)
    blames_caller(function() client:batches { bogus = 1 } end)
  end)

  it("requests, chats and images", function()
    local req = client:start("x")
    blames_caller(function() req:wait(-1) end)
    req:cancel()
    local chat = client:chat {}
    blames_caller(function() chat:send("x", { contents = {} }) end)
    blames_caller(function() chat:send("x", { bogus = 1 }) end)
    local img = nb.image { data = "\137PNG\r\n\26\n", mimeType = "image/png" }
    blames_caller(function() img:save(42) end)
  end)

  it("a closed client", function()
    local c = nb.new { api_key = "test-key", base_url = "http://127.0.0.1:9" }
    c:close()
    blames_caller(function() c:generate("x") end)
    blames_caller(function() c:start("x") end)
  end)
end)
