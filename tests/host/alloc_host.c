/*
 * alloc_host.c - a C host that gives its Lua state an allocator of its own
 * (counting, with a memory cap) and checks that nanobanana leaves it alone:
 *
 *   alloc_host CAP_MIB SCRIPT [args...]
 *
 * 1. lua_newstate(host_alloc, &first): every block carries a header with a
 *    magic word and its size, so a block this allocator did not make (or
 *    made and already freed) aborts the process when Lua frees it; Lua's
 *    bytes in use may never exceed CAP_MIB (an allocation beyond is
 *    refused, and a refusal fails the run).
 * 2. Runs SCRIPT (a 4K generation against the fake server: alloc_host_4k.lua),
 *    which may call the host's globals: host_refused() -> allocations
 *    refused so far; host_mark() records the peak so far (printed as
 *    "peak="); host_set_cap(mib) changes the cap.
 * 3. lua_getallocf must still return host_alloc and &first.
 * 4. The host swaps allocators: lua_setallocf(L, second_alloc, &second),
 *    which counts and forwards to the first; runs the script's global
 *    AFTER_SWAP (if any), then a full collection.
 * 5. lua_close: every block made must have been freed, through these two
 *    allocators only; prints one line "alloc_host: ok ..." and exits 0.
 * Any failure prints "alloc_host: FAIL ..." and exits 1.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LUA_OK
#define LUA_OK 0 /* 5.1, LuaJIT */
#endif

#define MAGIC_LIVE 0x6e62616c6c6f6321ull /* "nballoc!" */
#define MAGIC_FREED 0x6465656466726565ull

typedef union header {
    struct {
        uint64_t magic;
        size_t size;
    } h;
    long double ld; /* alignment for anything Lua stores */
    long long ll;
    void *p;
    char pad[16]; /* what malloc guarantees on 64-bit glibc, on 32-bit too */
} header;

typedef struct counting {
    size_t cap;              /* 0 = none */
    size_t live, peak;       /* bytes in use */
    size_t marked_peak;      /* the peak when the script called host_mark() */
    unsigned long blocks;    /* blocks in use */
    unsigned long calls, refused;
} counting;

static void die(const char *msg)
{
    fprintf(stderr, "alloc_host: FAIL %s\n", msg);
    exit(1);
}

static void *host_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    counting *c = ud;
    header *h = ptr ? (header *)ptr - 1 : NULL;
    c->calls++;
    if (h) {
        if (h->h.magic != MAGIC_LIVE) die("Lua freed a block this allocator did not make");
        if (h->h.size != osize) die("osize does not match the block's size");
    }
    if (nsize == 0) {
        if (h) {
            c->live -= h->h.size;
            c->blocks--;
            h->h.magic = MAGIC_FREED;
            free(h);
        }
        return NULL;
    }
    {
        size_t old = h ? h->h.size : 0;
        header *nh;
        if (c->cap && nsize > old && c->live - old + nsize > c->cap) {
            c->refused++;
            return NULL; /* Lua collects and retries, or raises "not enough memory" */
        }
        if (nsize > SIZE_MAX - sizeof *nh) return NULL;
        nh = realloc(h, sizeof *nh + nsize);
        if (!nh) return NULL;
        if (!h) c->blocks++;
        nh->h.magic = MAGIC_LIVE;
        nh->h.size = nsize;
        c->live = c->live - old + nsize;
        if (c->live > c->peak) c->peak = c->live;
        return nh + 1;
    }
}

/* The allocator the host swaps in after the script: counts, then forwards
 * to the first (which owns every block). */
typedef struct forwarding {
    counting *to;
    unsigned long calls;
} forwarding;

static void *second_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    forwarding *f = ud;
    f->calls++;
    return host_alloc(f->to, ptr, osize, nsize);
}

static counting first;

static int host_refused(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)first.refused);
    return 1;
}

static int host_mark(lua_State *L)
{
    first.marked_peak = first.peak;
    lua_pushnumber(L, (lua_Number)first.peak);
    return 1;
}

static int host_set_cap(lua_State *L)
{
    first.cap = (size_t)luaL_checknumber(L, 1) << 20;
    return 0;
}

static int traceback(lua_State *L)
{
#if LUA_VERSION_NUM >= 502
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
#else
    lua_pushstring(L, lua_tostring(L, 1));
#endif
    return 1;
}

static void run(lua_State *L, int status, int nargs)
{
    if (status == LUA_OK) status = lua_pcall(L, nargs, 0, -nargs - 2);
    if (status != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        die("the script failed");
    }
    lua_pop(L, 1); /* traceback */
}

int main(int argc, char **argv)
{
    static forwarding second;
    lua_State *L;
    lua_Alloc f;
    void *ud = NULL;
    size_t cap0;
    int i;
    if (argc < 3) {
        fprintf(stderr, "usage: %s CAP_MIB script.lua [args...]\n", argv[0]);
        return 2;
    }
    first.cap = cap0 = (size_t)strtoul(argv[1], NULL, 10) << 20;
    L = lua_newstate(host_alloc, &first);
    if (!L) die("lua_newstate");
    luaL_openlibs(L);
    lua_createtable(L, argc, 1);
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 2); /* arg[0] = script */
    }
    lua_setglobal(L, "arg");
    lua_register(L, "host_refused", host_refused);
    lua_register(L, "host_mark", host_mark);
    lua_register(L, "host_set_cap", host_set_cap);

    lua_pushcfunction(L, traceback);
    {
        int st = luaL_loadfile(L, argv[2]);
        for (i = 3; i < argc; i++) lua_pushstring(L, argv[i]);
        run(L, st, argc - 3);
    }
    if (!first.marked_peak) first.marked_peak = first.peak;

    f = lua_getallocf(L, &ud);
    if (f != host_alloc || ud != &first) die("lua_getallocf no longer returns the host's allocator");

    /* the host swaps its allocator again */
    second.to = &first;
    lua_setallocf(L, second_alloc, &second);
    lua_pushcfunction(L, traceback);
    lua_getglobal(L, "AFTER_SWAP");
    if (lua_isfunction(L, -1)) run(L, LUA_OK, 0);
    else lua_pop(L, 2);
    lua_gc(L, LUA_GCCOLLECT, 0);
    f = lua_getallocf(L, &ud);
    if (f != second_alloc || ud != &second) die("lua_getallocf does not return the swapped allocator");
    if (second.calls == 0) die("the swapped allocator was never called");

    lua_close(L);
    if (first.blocks != 0 || first.live != 0) {
        fprintf(stderr, "alloc_host: %lu blocks (%zu bytes) never freed\n", first.blocks, first.live);
        die("lua_close left blocks behind");
    }
    printf("alloc_host: ok peak=%zu cap=%zu peak_after=%zu refused=%lu calls=%lu swapped_calls=%lu\n",
           first.marked_peak, cap0, first.peak, first.refused, first.calls, second.calls);
    return 0;
}
