-- luacheck configuration (luacheck 1.1, Debian's lua-check): the test command
-- runs `luacheck lua spec examples bin/nanobanana` (scripts/test.d/66-lint-docs.sh)
-- and fails on any warning.
--
-- std: the library runs on Lua 5.1-5.4 and LuaJIT 2.1, so a file may use any
-- version's standard names ("max"), behind a check where they differ
-- (setfenv, loadstring, table.unpack, math.tointeger, ...).
std = "max"
-- the widest lines of the code as it stands (wrapping prose-like option
-- tables and long assertions at 120 would not make them clearer)
max_line_length = 160

-- busted specs and their helpers: describe/it/assert/... from busted
files["spec/"] = { std = "max+busted" }
files["spec/run_readme.lua"] = { std = "max" }

-- the 60 Hz C host (examples/embed/main.c) calls the globals frame(n, dt) and
-- shutdown(), and reads the global ok after the loop
files["examples/embed/frame_loop.lua"] = { globals = { "frame", "shutdown", "ok" } }
-- LÖVE and Neovim hosts: their own global API (love's callbacks are set on it)
files["examples/**/love/**/*.lua"] = { globals = { "love" } }
files["examples/**/nvim/**/*.lua"] = { globals = { "vim" } }
files["examples/**/nvim*.lua"] = { globals = { "vim" } } -- vim.g.x = ... sets fields
-- the event-loop adapters detect Neovim by its global vim (vim.uv / vim.loop)
files["lua/nanobanana/loop.lua"] = { read_globals = { "vim" } }

exclude_files = { "spec/sdk/node_modules/", "bench/node_modules/", "build*/" }
