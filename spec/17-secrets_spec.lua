-- Secrets stay secret: the key, a token given in headers= and a proxy's
-- password are in no Lua value reachable from anything the library hands
-- out (through fields, keys, metatables and userdata uservalues), and are
-- scrubbed from every string it returns — results, stream events, chats,
-- errors of each kind, tostring — even when the server echoes them
-- (fault echo_key puts the credential into text, thoughts, finishMessage
-- and a nested field; echo_auth into an error message).
local nb = require "nanobanana"
local fake = require "helpers.fake"

local KEY = "nbKEY-5ecret-7f3a9c1e5b2d"
local TOKEN = "nbTOKEN-b3arer-91c4e07d"
local PROXY_PASS = "nbPROXY-pa55-wd8812"
local SECRETS = { KEY, TOKEN, PROXY_PASS }

local getuv = debug.getuservalue
local getmt = debug.getmetatable

-- every place (a path) where one of the secrets occurs, as a substring of a
-- string value or key, or of a tostring(), in the graph from roots
local function leaks(roots)
  local found, seen = {}, {}
  local function check(s, where)
    for _, sec in ipairs(SECRETS) do
      if s:find(sec, 1, true) then found[#found + 1] = where .. " (" .. sec:sub(1, 7) .. "...)" end
    end
  end
  local function visit(v, where, depth)
    local t = type(v)
    if t == "string" then return check(v, where) end
    if (t ~= "table" and t ~= "userdata") or seen[v] or depth > 60 then return end
    seen[v] = true
    local mt = getmt(v)
    if mt then
      visit(mt, where .. "<mt>", depth + 1)
      if rawget(mt, "__tostring") then
        local ok, s = pcall(tostring, v)
        if ok and type(s) == "string" then check(s, "tostring(" .. where .. ")") end
      end
    end
    if t == "table" then
      for k, x in next, v do
        local name = type(k) == "string" and k or ("[" .. tostring(k) .. "]")
        visit(k, where .. "<key " .. name .. ">", depth + 1)
        visit(x, where .. "." .. name, depth + 1)
      end
    else
      if getuv then
        for n = 1, 8 do
          local uv, has = getuv(v, n)
          if has == false then break end
          visit(uv, where .. "<uv" .. n .. ">", depth + 1)
          if has == nil then break end -- (5.2/5.3: one uservalue)
        end
      elseif debug.getfenv then
        visit(debug.getfenv(v), where .. "<env>", depth + 1)
      end
    end
  end
  for name, root in pairs(roots) do visit(root, name, 0) end
  return found
end

describe("secrets", function()
  local server
  setup(function() server = fake.start { "--api-key", KEY, "--api-key", TOKEN } end)
  teardown(function() server:stop() end)

  local THINK = { generationConfig = { thinkingConfig = { includeThoughts = true } },
                  model = "gemini-3-pro-image-preview" }

  it("are scrubbed from results, events, chats and errors, and reachable from none of them", function()
    local roots = {}
    local keyed = nb.new { api_key = KEY, base_url = server.url, retries = 0, auth = "x-goog-api-key" }
    local bearer = nb.new { auth = "none", base_url = server.url, retries = 0,
                            headers = { Authorization = "Bearer " .. TOKEN } }
    local proxied = nb.new { api_key = KEY, base_url = "http://nb-gateway.invalid", auth = "x-goog-api-key",
                             proxy = "http://user:" .. PROXY_PASS .. "@127.0.0.1:" .. server.port, retries = 0 }
    roots.keyed, roots.bearer, roots.proxied = keyed, bearer, proxied

    -- a generation whose every string field echoes the key
    local res, err = keyed:generate("otter [[fault:echo_key]]", THINK)
    assert.is_nil(err)
    assert.are.equal("Here is your image. Your credential is ***. Split: ***.", res.text)
    assert.are.equal("Finished for ***", res.finishMessage)
    assert.matches("Your credential is %*%*%*%.$", res.thoughts[1].text)
    local cite = res.raw.candidates[1].citationMetadata.citationSources[1]
    assert.are.equal("https://example.com/?key=***", cite.uri)
    assert.are.same({ "***" }, cite.title.nested)
    roots.res = res

    -- the same through the bearer token, and through a proxy with a password
    local bres = assert(bearer:generate("otter [[fault:echo_key]]"))
    assert.are.equal("Here is your image. Your credential is ***. Split: ***.", bres.text)
    roots.bres = bres
    local pres, perr = proxied:generate("otter [[fault:echo_key]]")
    assert.is_nil(perr)
    assert.are.equal("Here is your image. Your credential is ***. Split: ***.", pres.text)
    roots.pres = pres

    -- a stream: every event and the merged result
    local events = {}
    local sres, serr = keyed:stream("otter [[fault:echo_key]]", THINK, function(ev) events[#events + 1] = ev end)
    assert.is_nil(serr)
    assert.is_true(#events >= 3)
    local texts, halves = 0, 0
    for _, ev in ipairs(events) do
      if ev.text and ev.text:find("credential", 1, true) then
        texts = texts + 1
        assert.matches("Your credential is %*%*%*%.$", ev.text)
      elseif ev.type == "text" then
        halves = halves + 1 -- the key split across two events: each holds half
      end
    end
    assert.are.equal(2, texts) -- the thought and the text
    assert.are.equal(2, halves)
    -- the merge joins the halves; the joined text is scrubbed
    assert.are.equal("Here is your image. Your credential is ***. Split: ***.", sres.text)
    assert.are.equal(sres.text, sres.content.parts[#sres.content.parts - 1].text)
    assert.are.equal("Finished for ***", sres.finishMessage)
    roots.events, roots.sres = events, sres

    -- a chat, its history and its JSON
    local chat = keyed:chat { model = "gemini-3-pro-image-preview" }
    local c1 = assert(chat:send("otter [[fault:echo_key]]"))
    local c2 = assert(chat:send("at night [[fault:echo_key]]"))
    local js = chat:to_json()
    assert.matches("Your credential is %*%*%*", js)
    roots.chat, roots.c1, roots.c2, roots.json = chat, c1, c2, js

    -- a request object, while in flight and after
    local req = keyed:start("otter [[fault:slow_headers:0.3]]")
    keyed:poll()
    assert.are.same({}, leaks { req = req, keyed = keyed })
    assert(req:wait())
    roots.req = req

    -- errors of each kind
    local errs = {}
    local function e(name, client, prompt, opts)
      local r, x = client:generate(prompt, opts)
      assert.is_nil(r, name)
      errs[name] = x
      return x
    end
    assert.matches("x%-goog%-api%-key: %*%*%*", e("api (echo_auth)", keyed, "x [[fault:echo_auth]]").message)
    assert.matches("authorization: %*%*%*", e("api (echo_auth, bearer)", bearer, "x [[fault:echo_auth]]").message)
    e("http", keyed, "x [[fault:html_502]]")
    e("blocked", keyed, "x [[fault:image_safety]]")
    e("invalid_response", keyed, "x [[fault:invalid_json]]")
    e("timeout", nb.new { api_key = KEY, base_url = server.url, retries = 0, timeout = 0.3 }, "x [[fault:slow_headers:2]]")
    e("stall", nb.new { api_key = KEY, base_url = server.url, retries = 0, stall_timeout = 0.3 }, "x [[fault:stall:2]]")
    e("too_large", nb.new { api_key = KEY, base_url = server.url, retries = 0, max_response_bytes = 2000 }, "x")
    e("network", nb.new { api_key = KEY, base_url = "http://127.0.0.1:9", retries = 0 }, "x")
    local dir = fake.sh("mktemp -d"):gsub("%s+$", "")
    fake.sh("mkdir -p '" .. dir .. "/" .. KEY .. "' && mkfifo '" .. dir .. "/" .. KEY .. "/out.png'")
    local io_err = e("io", keyed, "x", { output = dir .. "/" .. KEY .. "/out.png" })
    assert.are.equal("io", io_err.kind)
    assert.matches("/%*%*%*/out%.png", io_err.message)
    os.execute("rm -rf '" .. dir .. "'")
    local creq = keyed:start("x [[fault:slow_headers:1]]")
    creq:cancel()
    errs.cancelled = select(2, creq:wait())
    for name, x in pairs(errs) do
      assert.is_true(nb.is_error(x), name)
      assert.is_nil(tostring(x):find(KEY, 1, true), name)
    end
    roots.errs = errs
    assert.are.equal("timeout", errs.timeout.kind)
    assert.are.equal("stall", errs.stall.kind)
    assert.are.equal("too_large", errs.too_large.kind)
    assert.are.equal("network", errs.network.kind)
    assert.are.equal("cancelled", errs.cancelled.kind)

    -- the server echoing the key into text the model returns: no_image
    -- (text_only repeats the prompt, so the key is in the prompt here, and
    -- only the error is walked: the caller's own prompt holds the key)
    local _, nerr = keyed:generate("describe " .. KEY .. " [[fault:text_only]]")
    assert.are.equal("no_image", nerr.kind)
    assert.matches("describe %*%*%*", nerr.text)
    assert.is_nil(nerr.message:find(KEY, 1, true))
    assert.are.same({}, leaks { no_image = nerr })

    -- the module tables, too
    for name, mod in pairs(package.loaded) do
      if type(name) == "string" and name:match("^nanobanana") then roots["module " .. name] = mod end
    end
    assert.are.same({}, leaks(roots))

    keyed:close(); bearer:close(); proxied:close()
    assert.are.same({}, leaks(roots))
  end)

  it("the walker finds a secret where one is (it is not blind)", function()
    local t = setmetatable({ a = { b = { "x" .. KEY .. "y" } } }, {})
    assert.are.equal(1, #leaks { t = t })
    assert.are.equal(1, #leaks { t = setmetatable({}, { __index = { [TOKEN] = 1 } }) })
    assert.are.equal(1, #leaks { t = setmetatable({}, { __tostring = function() return PROXY_PASS end }) })
  end)

  it("the client keeps secrets out of its fields: no spec, no header list, options without the password", function()
    local c = nb.new { api_key = KEY, base_url = server.url, proxy = "http://u:" .. PROXY_PASS .. "@127.0.0.1:1",
                       auth = "x-goog-api-key" }
    assert.is_nil(tostring(c):find(KEY, 1, true))
    assert.are.equal("http://u:***@127.0.0.1:1", c.options.proxy)
    local req = c:start("x")
    assert.is_nil(c._headers) -- no method hands the header lines out either
    assert.is_nil(req._spec.headers)
    assert.is_nil(req._spec.proxy)
    assert.are.same({}, leaks { c = c, req = req })
    req:cancel()
    -- a token learnt later (a provider's) is scrubbed from then on
    local scrub = c:_secrets()
    assert.are.equal("x nbLATE-t0ken-123456 y", scrub("x nbLATE-t0ken-123456 y"))
    c:_add_secret("nbLATE-t0ken-123456")
    assert.are.equal("x *** y ***", scrub("x nbLATE-t0ken-123456 y " .. KEY))
    c:close()
  end)
end)
