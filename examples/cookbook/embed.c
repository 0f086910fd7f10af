/* A C host embedding Lua and nanobanana: it sleeps in poll(2) on the
 * client's fd, for at most client:timeout(), and calls client:poll() when
 * woken. The host's own loop could wait on its other fds in the same call.
 *   cc embed.c $(pkg-config --cflags --libs lua5.4) -o embed && ./embed "a prompt" out.jpg */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <poll.h>
#include <stdio.h>

static const char *setup =
    "local prompt, out = ...\n"
    "client = require('nanobanana').new()\n"
    "client:start(prompt, { output = out, on_done = function(res, err)\n"
    "  print(res and ('wrote ' .. res.images[1].path) or tostring(err))\n"
    "  finished, ok = true, res ~= nil\n"
    "end })\n";

static int run(lua_State *L, const char *code, int nargs, int nresults) {
    if (luaL_loadstring(L, code) != LUA_OK) return fprintf(stderr, "%s\n", lua_tostring(L, -1)), 0;
    lua_insert(L, -nargs - 1);
    if (lua_pcall(L, nargs, nresults, 0) != LUA_OK) return fprintf(stderr, "%s\n", lua_tostring(L, -1)), 0;
    return 1;
}

int main(int argc, char **argv) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_pushstring(L, argc > 1 ? argv[1] : "A lighthouse, woodcut print");
    lua_pushstring(L, argc > 2 ? argv[2] : "lighthouse.jpg"); /* the default model sends JPEG */
    if (!run(L, setup, 2, 0)) return 1;
    for (;;) {
        if (lua_getglobal(L, "finished"), lua_toboolean(L, -1)) break;
        lua_pop(L, 1);
        if (!run(L, "return client:pollfd(), client:timeout()", 0, 2)) return 1;
        struct pollfd p = { .fd = (int)lua_tointeger(L, -2), .events = POLLIN };
        int ms = lua_isnil(L, -1) ? -1 : (int)(lua_tonumber(L, -1) * 1000 + 0.999);
        lua_pop(L, 2);
        poll(&p, 1, ms); /* the host sleeps here: no busy loop */
        if (!run(L, "client:poll()", 0, 0)) return 1;
    }
    lua_pop(L, 1);
    lua_getglobal(L, "ok");
    int ok = lua_toboolean(L, -1);
    run(L, "client:close()", 0, 0);
    lua_close(L);
    return ok ? 0 : 1;
}
