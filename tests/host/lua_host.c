/*
 * lua_host.c - a minimal stand-alone Lua interpreter: `lua_host script.lua
 * args...` runs the script with the usual global `arg` table. It exists so
 * the test command can run the busted suite inside a process built with
 * ThreadSanitizer (clang links its runtime into executables only, so the
 * system's lua5.4 cannot host an instrumented nanobanana.core).
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>

#ifndef LUA_OK
#define LUA_OK 0 /* 5.1, LuaJIT */
#endif

static int traceback(lua_State *L)
{
#if LUA_VERSION_NUM >= 502 || defined(luaL_newlibtable) /* 5.2+, LuaJIT 2.1 */
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
#else
    lua_pushstring(L, lua_tostring(L, 1));
#endif
    return 1;
}

int main(int argc, char **argv)
{
    lua_State *L;
    int i, status;
    if (argc < 2) {
        fprintf(stderr, "usage: %s script.lua [args...]\n", argv[0]);
        return 1;
    }
    L = luaL_newstate();
    if (!L) return 1;
    luaL_openlibs(L);
    lua_createtable(L, argc, 1);
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1); /* arg[0] = script, arg[-1] = host */
    }
    lua_setglobal(L, "arg");
    lua_pushcfunction(L, traceback);
    status = luaL_loadfile(L, argv[1]);
    if (status == LUA_OK) {
        for (i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
        status = lua_pcall(L, argc - 2, 0, -(argc - 2) - 2);
    }
    if (status != LUA_OK) fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_close(L);
    return status == LUA_OK ? 0 : 1;
}
