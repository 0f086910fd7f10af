-- Runs every ```lua block of the README (not those fenced "```lua norun"),
-- in order, against the fake server named by GOOGLE_GEMINI_BASE_URL. The
-- README's example gateway (https://gateway.example, sk-your-gateway-key) is
-- pointed at the fake server too. Usage: lua5.4 spec/run_readme.lua README.md
local path = assert(arg[1], "usage: run_readme.lua README.md")
local f = assert(io.open(path)); local text = f:read("*a"); f:close()
local base = assert(os.getenv("GOOGLE_GEMINI_BASE_URL"), "GOOGLE_GEMINI_BASE_URL not set")

local n, failed = 0, 0
for info, code in text:gmatch("\n```lua([^\n]*)\n(.-)\n```") do
  if not info:find("norun", 1, true) then
    n = n + 1
    code = code:gsub("https://gateway%.example", base):gsub("sk%-your%-gateway%-key", "test-key")
    local chunk, err = load(code, "=README block " .. n)
    local ok, msg = false, err
    if chunk then ok, msg = pcall(chunk) end
    if ok then print("ok " .. n) else failed = failed + 1; print("not ok " .. n .. ": " .. tostring(msg)) end
  end
end
print(string.format("README: %d blocks, %d failed", n, failed))
os.exit(failed == 0 and n > 0 and 0 or 1)
