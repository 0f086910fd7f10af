--- Runs bin/nanobanana as a separate process, with this suite's interpreter
-- and module paths, for spec/10-cli_spec.lua (pipes) and
-- spec/19-cli_tty_spec.lua (a terminal under tmux).
local M = {}

M.ROOT = os.getenv("NB_ROOT") or os.getenv("PWD") or "."
-- the interpreter running this suite (lua5.4, lua5.1, luajit, the TSan host)
local LUA = (arg and arg[-1] and not arg[-1]:match("^%-")) and arg[-1] or "lua5.4"
if LUA:find("/", 1, true) and not LUA:match("^/") then LUA = M.ROOT .. "/" .. LUA end -- run from elsewhere
M.LUA = LUA

--- A shell word.
function M.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local q = M.q

-- this process's module paths, absolute (the command runs in another directory)
local function absolute(paths)
  local out = {}
  for entry in paths:gmatch("[^;]+") do
    out[#out + 1] = entry:match("^/") and entry or (M.ROOT .. "/" .. entry)
  end
  return table.concat(out, ";") .. ";;"
end

--- The shell command that runs the CLI with args in dir, with env added
-- (and no key or base URL from this process's environment).
function M.command(dir, args, env)
  local parts = { "cd", q(dir), "&&", "env", "-u", "GOOGLE_API_KEY", "-u", "GEMINI_API_KEY",
                  "-u", "GOOGLE_GEMINI_BASE_URL",
                  "LUA_PATH=" .. q(absolute(package.path)), "LUA_CPATH=" .. q(absolute(package.cpath)) }
  local keys = {}
  for k in pairs(env or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. q(env[k]) end
  parts[#parts + 1] = q(LUA)
  parts[#parts + 1] = q(M.ROOT .. "/bin/nanobanana")
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  return table.concat(parts, " ")
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
M.slurp = slurp

--- Runs the CLI in dir with stdin from the string `input` (empty when nil):
-- status, stdout, stderr.
function M.run(dir, args, env, input)
  local errf, inf = os.tmpname(), os.tmpname()
  local f = assert(io.open(inf, "wb"))
  f:write(input or "")
  f:close()
  local cmd = M.command(dir, args, env) .. " <" .. q(inf) .. " 2>" .. q(errf) .. "; echo \"rc=$?\""
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local err = slurp(errf)
  os.remove(errf)
  os.remove(inf)
  local rc = tonumber(out:match("rc=(%d+)\n$"))
  return rc, (out:gsub("rc=%d+\n$", "")), err
end

--- Names in dir (dot files included), sorted.
function M.ls(dir)
  local p = assert(io.popen("env -u LD_PRELOAD ls -A " .. q(dir)))
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

return M
