/*
 * compat.h - the one place that knows Lua versions (5.1, 5.2, 5.3, 5.4,
 * LuaJIT). The binding uses only the names below; no LUA_VERSION_NUM test
 * appears anywhere else.
 */
#ifndef NB_COMPAT_H
#define NB_COMPAT_H

#include <lauxlib.h>
#include <lua.h>

#if LUA_VERSION_NUM >= 504
#define nb_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 1)
#define nb_setuservalue(L, idx) lua_setiuservalue((L), (idx), 1)
#define nb_getuservalue(L, idx) ((void)lua_getiuservalue((L), (idx), 1))
#define NB_HAVE_CLOSE 1
#elif LUA_VERSION_NUM >= 502
#define nb_newuserdata(L, sz) lua_newuserdata((L), (sz))
#define nb_setuservalue(L, idx) lua_setuservalue((L), (idx))
#define nb_getuservalue(L, idx) ((void)lua_getuservalue((L), (idx)))
#define NB_HAVE_CLOSE 0
#else /* 5.1 and LuaJIT: the environment table plays the user value */
#define nb_newuserdata(L, sz) lua_newuserdata((L), (sz))
#define nb_setuservalue(L, idx) lua_setfenv((L), (idx))
#define nb_getuservalue(L, idx) lua_getfenv((L), (idx))
#define NB_HAVE_CLOSE 0
#define lua_rawlen(L, i) lua_objlen((L), (i))
#ifndef luaL_newlib /* PUC 5.1 (LuaJIT 2.1 has these) */
#define NB_LUA51_AUX 1
#define luaL_setfuncs(L, l, nup) nb_compat_setfuncs((L), (l), (nup))
static void nb_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup + 1, "too many upvalues");
    for (; l->name; l++) {
        int i;
        for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}
#define luaL_newlib(L, l) (lua_newtable(L), luaL_setfuncs((L), (l), 0))
#define luaL_setmetatable(L, tn) (luaL_getmetatable((L), (tn)), lua_setmetatable((L), -2))
#define luaL_testudata(L, i, tn) nb_compat_testudata((L), (i), (tn))
static void *nb_compat_testudata(lua_State *L, int i, const char *tn)
{
    void *p = lua_touserdata(L, i);
    int same;
    if (!p || !lua_getmetatable(L, i)) return NULL;
    luaL_getmetatable(L, tn);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? p : NULL;
}
#endif
#endif

/* An output buffer of a size known in advance, pushed as a string:
 * 5.2+: luaL_Buffer; 5.1/LuaJIT: a userdata, copied once. Net effect on the
 * stack of init + push: one string. */
#if LUA_VERSION_NUM >= 502
typedef luaL_Buffer nb_outbuf;
#define nb_outbuf_init(L, B, n) luaL_buffinitsize((L), (B), (n))
#define nb_outbuf_push(B, n) luaL_pushresultsize((B), (n))
#else
typedef struct { lua_State *L; char *p; } nb_outbuf;
static char *nb_outbuf_init(lua_State *L, nb_outbuf *B, size_t n)
{
    B->L = L;
    B->p = (char *)lua_newuserdata(L, n);
    return B->p;
}
static void nb_outbuf_push(nb_outbuf *B, size_t n)
{
    lua_pushlstring(B->L, B->p, n);
    lua_remove(B->L, -2);
}
#endif

#if LUA_VERSION_NUM >= 503
#define nb_isinteger(L, i) lua_isinteger((L), (i))
#else
#define nb_isinteger(L, i) (lua_type((L), (i)) == LUA_TNUMBER)
#endif

#endif
