-- nanobanana.core from Lua: base64, sniffing, the response scanner.
local core = require "nanobanana.core"

describe("core", function()
  it("base64 round trips and rejects bad input with an offset", function()
    assert.are.equal("Zm9vYmFy", core.b64encode("foobar"))
    assert.are.equal("foobar", core.b64decode("Zm9vYmFy"))
    assert.are.equal("foob", core.b64decode("Zm9vYg"))      -- unpadded
    assert.are.equal("\251\255", core.b64decode("-_8="))     -- URL-safe
    local v, msg, off = core.b64decode("Zm9v*mFy")
    assert.is_nil(v)
    assert.is_string(msg)
    assert.are.equal(4, off)
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    all = table.concat(all)
    assert.are.equal(all, core.b64decode(core.b64encode(all)))
  end)

  it("sniffs types and sizes", function()
    local png = "\137PNG\r\n\26\n\0\0\0\13IHDR\0\0\4\0\0\0\3\0\8\2\0\0\0"
    local m, w, h = core.sniff(png)
    assert.are.equal("image/png", m)
    assert.are.equal(1024, w)
    assert.are.equal(768, h)
    assert.is_nil((core.sniff("hello")))
  end)

  it("scans a response: placeholders in the skeleton, decoded blobs", function()
    local body = '{"candidates":[{"content":{"parts":[{"text":"hi"},{"inlineData":{"mimeType":"image/png","data":"Zm9v\\/w=="}}]}}]}'
    local sk, blobs = core.scan(body)
    assert.are.equal('{"candidates":[{"content":{"parts":[{"text":"hi"},{"inlineData":{"mimeType":"image/png","data":"nb:blob:0"}}]}}]}', sk)
    assert.are.same({ "foo\255" }, blobs)
    local none, msg, off = core.scan('{"a":1,}')
    assert.is_nil(none)
    assert.is_string(msg)
    assert.are.equal(7, off)
  end)
end)
