/*
 * fork_host.c - a stand-alone Lua interpreter with fork(2) for the specs
 * (spec/13-lifecycle_spec.lua): `fork_host script.lua args...` runs the
 * script with `arg` and three globals, since Debian's lua-posix has no
 * build for every Lua the suite runs on:
 *   fork()       -> 0 in the child, the child's pid in the parent
 *   waitpid(pid) -> the child's exit status (or -1)
 *   _exit(code)  -> ends the process at once (no lua_close)
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int l_fork(lua_State *L)
{
    pid_t p;
    fflush(NULL);
    p = fork();
    if (p < 0) return luaL_error(L, "fork failed");
    lua_pushinteger(L, (lua_Integer)p);
    return 1;
}

static int l_waitpid(lua_State *L)
{
    int st = 0;
    pid_t p = (pid_t)luaL_checkinteger(L, 1);
    if (waitpid(p, &st, 0) != p || !WIFEXITED(st)) lua_pushinteger(L, -1);
    else lua_pushinteger(L, WEXITSTATUS(st));
    return 1;
}

static int l_exit(lua_State *L)
{
    fflush(NULL);
    _exit((int)luaL_optinteger(L, 1, 0));
    return 0;
}

int main(int argc, char **argv)
{
    lua_State *L;
    int i, status;
    if (argc < 2) {
        fprintf(stderr, "usage: fork_host script.lua [args...]\n");
        return 2;
    }
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_register(L, "fork", l_fork);
    lua_register(L, "waitpid", l_waitpid);
    lua_register(L, "_exit", l_exit);
    lua_createtable(L, argc, 1);
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");
    status = luaL_dofile(L, argv[1]);
    if (status != 0) fprintf(stderr, "fork_host: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return status == 0 ? 0 : 1;
}
