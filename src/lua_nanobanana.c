/*
 * lua_nanobanana.c - the only file that includes Lua: module nanobanana.core.
 *
 * Every function: check arguments -> call the C core -> push results.
 * Rules kept here:
 *   - no malloc'd memory is held across a call that may raise; scratch
 *     arrays live in userdata owned by the GC;
 *   - userdata are allocated and given their metatable BEFORE the C object
 *     they box is acquired, and __gc/close share one idempotent function;
 *   - no Lua runs inside libcurl callbacks: the engine only fills C buffers,
 *     and the Lua layer reads them after perform() returns;
 *   - the state's allocator is never touched: a decoded image stays in C
 *     memory (a Blob) until Lua asks for its bytes, and becomes a Lua
 *     string only then, by one lua_pushlstring.
 *
 * Types:
 *   nanobanana.Engine  box { nb_engine * }, user value: table
 *                      lightuserdata(nb_xfer*) -> Xfer userdata, pinning
 *                      every transfer the engine still drives or queues.
 *   nanobanana.Xfer    box { nb_xfer * }, user value: table pinning the
 *                      Lua strings whose bytes the transfer borrows.
 *   nanobanana.Event   box { nb_event * }: one stream event's blobs, taken
 *                      from its transfer (it owns them, outliving the Xfer).
 *   nanobanana.Blob    box { nb_blobmem * }: one decoded image's bytes in C
 *                      memory, holding one reference (blob.h); NULL once
 *                      its bytes were taken into a Lua string (:take()) or
 *                      it was closed. A transfer whose body borrows them
 *                      holds a reference of its own (transport.h nb_seg.mem),
 *                      so the bytes outlive the Blob while it may read them.
 */
#include "compat.h"

#include "b64.h"
#include "fsutil.h"
#include "scan.h"
#include "sniff.h"
#include "transport.h"
#include "version.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ENGINE_MT "nanobanana.Engine"
#define NB_CURL_MIN 0x074400 /* 7.68.0: curl_multi_poll, curl_multi_wakeup */
#define XFER_MT "nanobanana.Xfer"
#define EVENT_MT "nanobanana.Event"
#define BLOB_MT "nanobanana.Blob"

#if defined(_WIN32)
#define NB_EXPORT __declspec(dllexport)
#else
#define NB_EXPORT __attribute__((visibility("default")))
#endif

typedef struct { nb_engine *e; } engine_box;
typedef struct { nb_xfer *x; } xfer_box;
typedef struct { nb_event *ev; } event_box;
typedef struct { nb_blobmem *m; } blob_box;

/* ------------------------------------------------------------------ helpers */

static void set_str(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* Pushes t[k] of the table at idx, read raw: no metamethod runs, so what
 * the C side reads is what the table holds (idx must be absolute). */
static void raw_field(lua_State *L, int idx, const char *k)
{
    if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
    lua_pushstring(L, k);
    lua_rawget(L, idx);
}

/* Optional string field of the table at idx (read raw), or NULL; the
 * string is pinned in the table at pin (absolute) so that it outlives any
 * change to the spec table and any collection until the pins go. */
static const char *opt_field_str(lua_State *L, int idx, const char *k, int pin)
{
    const char *s = NULL;
    raw_field(L, idx, k);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "field '%s' must be a string", k);
        s = lua_tostring(L, -1);
        lua_rawseti(L, pin, (int)lua_rawlen(L, pin) + 1);
        return s;
    }
    lua_pop(L, 1);
    return s;
}

static double opt_field_num(lua_State *L, int idx, const char *k, double dflt)
{
    double v = dflt;
    raw_field(L, idx, k);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "field '%s' must be a number", k);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* Argument i: a string, or a Blob whose bytes are still in C memory. For
 * a Blob, the call takes a reference of its own, held by a Blob box pushed
 * on the stack (*hold): a finalizer that runs during a later allocation and
 * takes the argument's bytes cannot free them under the call; bytes_done()
 * lets go at once, the box's __gc if the call raises. */
static const char *check_bytes(lua_State *L, int i, size_t *len, blob_box **hold)
{
    blob_box *b, *h;
    size_t n;
    const uint8_t *p;
    *hold = NULL;
    if (lua_type(L, i) == LUA_TSTRING) return lua_tolstring(L, i, len);
    b = luaL_testudata(L, i, BLOB_MT);
    if (!b) luaL_argerror(L, i, "string or nanobanana.Blob expected");
    h = nb_newuserdata(L, sizeof *h); /* allocates: checked after it */
    h->m = NULL;
    luaL_setmetatable(L, BLOB_MT);
    luaL_argcheck(L, b->m != NULL, i, "the blob's bytes were taken");
    h->m = nb_blobmem_retain(b->m);
    p = nb_blobmem_data(h->m, &n);
    *len = n;
    *hold = h;
    return (const char *)p;
}

static void bytes_done(blob_box *hold)
{
    if (!hold) return;
    nb_blobmem_release(hold->m);
    hold->m = NULL;
}

/* ------------------------------------------------------------------ pure functions */

/*** base64 of a string or a Blob's bytes. @function b64encode @tparam string|Blob s @treturn string */
static int l_b64encode(lua_State *L)
{
    size_t n, outn;
    blob_box *hold;
    const char *s = check_bytes(L, 1, &n, &hold);
    nb_outbuf b;
    char *out;
    outn = nb_b64_encoded_len(n);
    out = nb_outbuf_init(L, &b, outn ? outn : 1);
    nb_b64_encode((const uint8_t *)s, n, out);
    nb_outbuf_push(&b, outn);
    bytes_done(hold);
    return 1;
}

/*** strict base64 decode. @treturn string bytes @treturn[2] nil @treturn[2] string message @treturn[2] integer offset (0-based) */
static int l_b64decode(lua_State *L)
{
    size_t n, outn = 0;
    const char *s = luaL_checklstring(L, 1, &n);
    nb_outbuf b;
    uint64_t off = 0;
    const char *err = NULL;
    uint8_t *out = (uint8_t *)nb_outbuf_init(L, &b, nb_b64_decoded_max(n) + 3);
    if (nb_b64_decode(s, n, out, &outn, &off, &err) != 0) {
        nb_outbuf_push(&b, 0);
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_pushstring(L, err ? err : "invalid base64");
        nb_pushsize(L, off);
        return 3;
    }
    nb_outbuf_push(&b, outn);
    return 1;
}

static int push_sniff(lua_State *L, const uint8_t *p, size_t n)
{
    uint32_t w = 0, h = 0;
    const char *mime = nb_sniff_mime(p, n);
    int sized = nb_sniff_size(p, n, &w, &h); /* both read before Lua allocates */
    if (mime) lua_pushstring(L, mime);
    else lua_pushnil(L);
    if (sized) {
        lua_pushinteger(L, (lua_Integer)w);
        lua_pushinteger(L, (lua_Integer)h);
    } else {
        lua_pushnil(L);
        lua_pushnil(L);
    }
    return 3;
}

/*** MIME type and size from image bytes (a string or a Blob). @treturn string|nil mime @treturn integer|nil width @treturn integer|nil height */
static int l_sniff(lua_State *L)
{
    size_t n;
    blob_box *hold;
    const char *s = check_bytes(L, 1, &n, &hold);
    push_sniff(L, (const uint8_t *)s, n);
    bytes_done(hold);
    return 3;
}

/*** Same for a file, reading only its head. @treturn mime, width, height, size @treturn[2] false, message */
static int l_sniff_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    uint8_t *buf = nb_newuserdata(L, 65536); /* GC-owned scratch */
    size_t got = 0;
    uint64_t size = 0;
    char err[512];
    if (nb_read_prefix(path, buf, 65536, &got, &size, err, sizeof err) != 0) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, err);
        return 2;
    }
    push_sniff(L, buf, got);
    nb_pushsize(L, size);
    return 4;
}

/* How the file functions answer: true, or nil and the message. */
static int push_fs_result(lua_State *L, int rc, const char *err)
{
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/*** Atomic write (temp file beside + rename) of a string or a Blob's bytes.
 * @treturn true @treturn[2] nil, message */
static int l_write_atomic(lua_State *L)
{
    size_t n;
    const char *path = luaL_checkstring(L, 1);
    blob_box *hold;
    const char *data = check_bytes(L, 2, &n, &hold);
    char err[512];
    int rc = nb_write_atomic(path, data, n, err, sizeof err);
    bytes_done(hold);
    return push_fs_result(L, rc, err);
}

/*** Whether files can be created in a directory. @treturn true @treturn[2] nil, message */
static int l_dir_writable(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    char err[512];
    return push_fs_result(L, nb_dir_writable(dir, err, sizeof err), err);
}

/*** Atomic copy of a file. @treturn true @treturn[2] nil, message */
static int l_copy_atomic(lua_State *L)
{
    const char *src = luaL_checkstring(L, 1);
    const char *dst = luaL_checkstring(L, 2);
    char err[512];
    return push_fs_result(L, nb_copy_atomic(src, dst, err, sizeof err), err);
}

/*** The whole of a regular file (a FIFO, device or directory: an error at
 * once, never opened; the descriptor is close-on-exec and closed before
 * this returns). @treturn string bytes @treturn[2] nil, message */
static int l_read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char err[512];
    size_t got = 0;
    uint64_t size = 0, size2 = 0;
    uint8_t one, *buf;
    if (nb_read_prefix(path, &one, 0, &got, &size, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    if (size > (uint64_t)(SIZE_MAX / 2)) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot read %s: too large", path);
        return 2;
    }
    buf = nb_newuserdata(L, size ? (size_t)size : 1); /* GC-owned: a raise leaks nothing */
    if (nb_read_prefix(path, buf, (size_t)size, &got, &size2, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushlstring(L, (const char *)buf, got);
    return 1;
}

/*** Where output to path goes: symlinks followed; only a regular file (or
 * nothing yet) is a target. @treturn string resolved @treturn boolean exists
 * @treturn[2] nil, message */
static int l_output_target(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t cap = strlen(path) + 8192;
    char *out = nb_newuserdata(L, cap); /* GC-owned */
    char err[512];
    int exists = 0;
    if (nb_output_target(path, out, cap, &exists, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushstring(L, out);
    lua_pushboolean(L, exists);
    return 2;
}

/* l_scan's state lives in a GC-owned box, so a raise while pushing results
 * (memory error) cannot leak the scanner or its buffers. The scanner never
 * calls Lua: finished blobs are parked in C and pushed between feeds. */
#define SCANBOX_MT "nanobanana.ScanBox"
typedef struct { uint8_t *p; size_t len, cap; } byte_vec;
typedef struct {
    nb_scan *sc;
    byte_vec cur;      /* blob being decoded */
    byte_vec *ready;   /* finished blobs not yet pushed */
    size_t nready, capready;
    int oom;
} scan_box;

static int vec_add(byte_vec *v, const uint8_t *p, size_t n)
{
    if (v->len + n > v->cap) {
        size_t nc = v->cap ? v->cap : 4096;
        void *np;
        while (nc < v->len + n) nc *= 2;
        np = realloc(v->p, nc);
        if (!np) return -1;
        v->p = np;
        v->cap = nc;
    }
    if (n) memcpy(v->p + v->len, p, n);
    v->len += n;
    return 0;
}

static int box_begin(void *ud, unsigned idx)
{
    scan_box *b = ud;
    (void)idx;
    b->cur.len = 0;
    return 0;
}

static int box_data(void *ud, unsigned idx, const uint8_t *p, size_t n)
{
    scan_box *b = ud;
    (void)idx;
    if (vec_add(&b->cur, p, n)) {
        b->oom = 1;
        return 1;
    }
    return 0;
}

static int box_end(void *ud, unsigned idx, uint64_t total)
{
    scan_box *b = ud;
    (void)idx;
    (void)total;
    if (b->nready == b->capready) {
        size_t nc = b->capready ? b->capready * 2 : 4;
        void *np = realloc(b->ready, nc * sizeof *b->ready);
        if (!np) {
            b->oom = 1;
            return 1;
        }
        b->ready = np;
        b->capready = nc;
    }
    b->ready[b->nready++] = b->cur; /* hand the buffer over */
    memset(&b->cur, 0, sizeof b->cur);
    return 0;
}

static int scanbox_gc(lua_State *L)
{
    scan_box *b = luaL_checkudata(L, 1, SCANBOX_MT);
    size_t i;
    nb_scan_free(b->sc);
    b->sc = NULL;
    free(b->cur.p);
    for (i = 0; i < b->nready; i++) free(b->ready[i].p);
    free(b->ready);
    memset(b, 0, sizeof *b);
    return 0;
}

/* pushes parked blobs into the table at tidx (starting at *next) */
static void push_ready(lua_State *L, scan_box *b, int tidx, int *next)
{
    size_t i;
    for (i = 0; i < b->nready; i++) {
        lua_pushlstring(L, (const char *)b->ready[i].p, b->ready[i].len);
        lua_rawseti(L, tidx, (*next)++);
        free(b->ready[i].p);
        b->ready[i].p = NULL;
    }
    b->nready = 0;
}

/*** Scans a whole response body (tests, SSE events).
 * @treturn string skeleton @treturn table blobs (bytes, 1-based)
 * @treturn[2] nil @treturn[2] string message @treturn[2] integer offset */
static int l_scan(lua_State *L)
{
    size_t n, pos = 0, sk_len;
    const char *s = luaL_checklstring(L, 1, &n);
    nb_scan_sink sink;
    scan_box *b;
    int rc = NB_SCAN_OK, next = 1, boxi, tidx;
    const char *sk;
    lua_settop(L, 1);
    b = nb_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, SCANBOX_MT);
    boxi = lua_gettop(L);
    lua_newtable(L);
    tidx = lua_gettop(L);
    sink.blob_begin = box_begin;
    sink.blob_data = box_data;
    sink.blob_end = box_end;
    sink.ud = b;
    b->sc = nb_scan_new(&sink, 0);
    if (!b->sc) return luaL_error(L, "out of memory");
    while (pos < n && rc == NB_SCAN_OK) {
        size_t k = n - pos < 65536 ? n - pos : 65536;
        rc = nb_scan_feed(b->sc, s + pos, k);
        pos += k;
        push_ready(L, b, tidx, &next);
    }
    if (rc == NB_SCAN_OK) rc = nb_scan_finish(b->sc);
    if (b->oom) return luaL_error(L, "out of memory");
    if (rc != NB_SCAN_OK) {
        uint64_t off = 0;
        const char *em = nb_scan_error(b->sc, &off);
        lua_pushnil(L);
        lua_pushstring(L, em ? em : "malformed body");
        nb_pushsize(L, off);
        return 3;
    }
    sk = nb_scan_skeleton(b->sc, &sk_len);
    lua_pushlstring(L, sk, sk_len);
    lua_pushvalue(L, tidx);
    (void)boxi; /* freed by __gc */
    return 2;
}

/*** Monotonic clock in seconds. */
static int l_now(lua_State *L)
{
    lua_pushnumber(L, nb_now());
    return 1;
}

/*** libcurl and library versions. @treturn table */
static int l_version_info(lua_State *L)
{
    curl_version_info_data *d = curl_version_info(CURLVERSION_NOW);
    lua_newtable(L);
    set_str(L, "version", NB_VERSION);
    set_str(L, "curl", d->version);
    set_str(L, "ssl", d->ssl_version ? d->ssl_version : "none");
    set_str(L, "libz", d->libz_version ? d->libz_version : "none");
    lua_pushboolean(L, (d->features & CURL_VERSION_HTTP2) != 0);
    lua_setfield(L, -2, "http2");
    lua_pushboolean(L, (d->features & CURL_VERSION_LIBZ) != 0);
    lua_setfield(L, -2, "gzip");
    set_str(L, "lua", LUA_RELEASE);
    return 1;
}

/* ------------------------------------------------- the command line's few OS calls
 * (nanobanana.cli): is an fd a terminal, Ctrl-C as a flag, exclusive create.
 * SIGINT while trapped only sets a flag (async-signal-safe); whichever thread
 * takes the signal, the CLI's wait loop sees the flag within one wait tick. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

/*** Is fd a terminal? @function isatty @tparam integer fd @treturn boolean */
static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)) == 1);
    return 1;
}

static volatile sig_atomic_t sigint_flag = 0;
static int sigint_trapped = 0;
static struct sigaction sigint_old;

static void on_sigint(int sig)
{
    (void)sig;
    sigint_flag = 1;
}

/*** trap_sigint(true): SIGINT sets a flag (read by sigint_caught) instead of
 * its previous action; trap_sigint("default"): SIGINT ends the process (the
 * system's default, e.g. while blocked reading a terminal);
 * trap_sigint(false) restores the action found before the first trap.
 * @function trap_sigint @tparam boolean|string how @treturn boolean true */
static int l_trap_sigint(lua_State *L)
{
    int dflt = lua_type(L, 1) == LUA_TSTRING && strcmp(lua_tostring(L, 1), "default") == 0;
    int on = dflt || lua_toboolean(L, 1);
    if (on) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = dflt ? SIG_DFL : on_sigint;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigint_flag = 0;
        if (sigaction(SIGINT, &sa, sigint_trapped ? NULL : &sigint_old) != 0)
            return luaL_error(L, "sigaction: %s", strerror(errno));
        sigint_trapped = 1;
    } else if (sigint_trapped) {
        sigaction(SIGINT, &sigint_old, NULL);
        sigint_trapped = 0;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/*** Whether SIGINT came since the last call (clears the flag).
 * @function sigint_caught @treturn boolean */
static int l_sigint_caught(lua_State *L)
{
    int was = sigint_flag != 0;
    sigint_flag = 0;
    lua_pushboolean(L, was);
    return 1;
}

/*** Creates path as a new empty file (O_EXCL: never an existing one), mode
 * 0666 & ~umask. @function create_excl @tparam string path
 * @treturn true @treturn[2] nil, message, "exists" when the name is taken */
static int l_create_excl(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int fd;
    do fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "cannot create %s: %s", path, strerror(e));
        if (e == EEXIST) lua_pushliteral(L, "exists");
        else lua_pushnil(L);
        return 3;
    }
    close(fd);
    lua_pushboolean(L, 1);
    return 1;
}

/* ------------------------------------------------------------------ Engine */

static engine_box *check_engine(lua_State *L, int i)
{
    engine_box *b = luaL_checkudata(L, i, ENGINE_MT);
    luaL_argcheck(L, b->e != NULL, i, "closed nanobanana.Engine");
    return b;
}

static xfer_box *check_xfer(lua_State *L, int i)
{
    return luaL_checkudata(L, i, XFER_MT);
}

/* The state's group (transport.h): lua_close waits for the workers of this
 * state's engines to end (they cancel at once) before the module can be
 * unloaded. Its box is made when the module is opened, so lua_close
 * finalizes it after every engine and before unloading C modules. */
#define GROUP_MT "nanobanana.Group"
static const char group_key = 'g';

static int group_gc(lua_State *L)
{
    nb_group **g = luaL_checkudata(L, 1, GROUP_MT);
    nb_group_free(*g);
    *g = NULL;
    return 0;
}

static nb_group *state_group(lua_State *L)
{
    nb_group **g;
    lua_pushlightuserdata(L, (void *)&group_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    g = lua_touserdata(L, -1);
    lua_pop(L, 1);
    /* (cppcheck takes *g for the same value at the final return; the group
     * is made in between) */
    // cppcheck-suppress identicalInnerCondition
    if (g && *g) return *g;
    g = nb_newuserdata(L, sizeof *g);
    *g = NULL;
    luaL_setmetatable(L, GROUP_MT);
    *g = nb_group_new();
    if (!*g) luaL_error(L, "nanobanana: out of memory");
    lua_pushlightuserdata(L, (void *)&group_key);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    return *g;
}

/* seconds -> milliseconds as a long, clamped to [lo, hi] (NaN: lo) */
static long clamp_ms(double seconds, long lo, long hi)
{
    double ms = seconds * 1000.0;
    if (!(ms >= (double)lo)) return lo; /* NaN too */
    if (ms >= (double)hi) return hi;
    return (long)ms;
}

/*** A new engine (one libcurl multi handle, one worker while busy).
 * @tparam[opt=3] number idle seconds the worker stays with nothing to do
 * @treturn Engine */
static int l_engine(lua_State *L)
{
    long idle_ms = clamp_ms(luaL_optnumber(L, 1, 3.0), 1, 3600L * 1000);
    nb_group *g = state_group(L);
    engine_box *b = nb_newuserdata(L, sizeof *b);
    b->e = NULL;
    luaL_setmetatable(L, ENGINE_MT);
    lua_newtable(L); /* pinned transfers */
    nb_setuservalue(L, -2);
    errno = 0;
    b->e = nb_engine_new(g, idle_ms);
    if (!b->e) {
        int err = errno;
        return luaL_error(L, "nanobanana: cannot create the client's engine: %s",
                          err == EMFILE || err == ENFILE ? "too many open files"
                          : err ? strerror(err) : "libcurl could not be initialised");
    }
    return 1;
}

/*** The notification fd: readable when poll() has work. @treturn integer fd (-1 once closed) */
static int engine_pollfd(lua_State *L)
{
    engine_box *b = luaL_checkudata(L, 1, ENGINE_MT);
    lua_pushinteger(L, b->e ? nb_engine_pollfd(b->e) : -1);
    return 1;
}

/*** true in a forked child of the process that made the engine */
static int engine_forked(lua_State *L)
{
    lua_pushboolean(L, nb_engine_forked(check_engine(L, 1)->e));
    return 1;
}

/*** Drains the notification fd (end of poll): it stays readable while
 * finished transfers or stream events wait to be taken. */
static int engine_settle(lua_State *L)
{
    nb_engine_settle(check_engine(L, 1)->e);
    return 0;
}

static int engine_close(lua_State *L)
{
    engine_box *b = luaL_checkudata(L, 1, ENGINE_MT);
    if (b->e) {
        nb_engine_free(b->e); /* cancels and detaches every transfer */
        b->e = NULL;
        lua_newtable(L); /* unpin them: their own __gc frees them */
        nb_setuservalue(L, 1);
    }
    return 0;
}

static int engine_tostring(lua_State *L)
{
    engine_box *b = luaL_checkudata(L, 1, ENGINE_MT);
    lua_pushfstring(L, "nanobanana.Engine (%p)%s", (void *)b, b->e ? "" : " closed");
    return 1;
}

/* A body's segments, GC-owned: a segment whose bytes lie in a Blob holds a
 * reference to them (taken as it is read, so no finalizer or metamethod run
 * meanwhile can free them) until segs_release(), or __gc after a raise. */
#define SEGS_MT "nanobanana.Segments"
typedef struct {
    size_t n;
    nb_seg v[1];
} seg_array;

static void segs_release(seg_array *a)
{
    size_t i;
    for (i = 0; i < a->n; i++) {
        nb_blobmem_release(a->v[i].mem);
        a->v[i].mem = NULL;
    }
}

static int segs_gc(lua_State *L)
{
    segs_release(luaL_checkudata(L, 1, SEGS_MT));
    return 0;
}

/* Reads spec.body (array) into a GC-owned nb_seg array; pins strings in the
 * table at pin_idx. Returns the array (NULL without a body); *n receives
 * its length. */
static seg_array *read_segments(lua_State *L, int spec, int pin_idx, size_t *n)
{
    size_t i, len;
    nb_seg *segs;
    seg_array *arr;
    raw_field(L, spec, "body");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        *n = 0;
        return NULL;
    }
    luaL_argcheck(L, lua_istable(L, -1), 2, "body must be an array of segments");
    len = lua_rawlen(L, -1);
    arr = nb_newuserdata(L, sizeof *arr + (len ? len : 1) * sizeof *segs);
    arr->n = 0;
    luaL_setmetatable(L, SEGS_MT);
    lua_rawseti(L, pin_idx, (int)lua_rawlen(L, pin_idx) + 1); /* pin the array */
    segs = arr->v;
    for (i = 0; i < len; i++) {
        nb_seg *s = &segs[i];
        memset(s, 0, sizeof *s);
        arr->n = i + 1;
        lua_rawgeti(L, -1, (int)i + 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            s->kind = NB_SEG_BYTES;
            s->ptr = lua_tolstring(L, -1, &s->len);
        } else if (lua_istable(L, -1)) {
            blob_box *bb;
            lua_pushliteral(L, "b64");
            lua_rawget(L, -2);
            if (lua_type(L, -1) == LUA_TSTRING) {
                s->kind = NB_SEG_B64;
                s->ptr = lua_tolstring(L, -1, &s->len);
                lua_rawseti(L, pin_idx, (int)lua_rawlen(L, pin_idx) + 1);
            } else if ((bb = luaL_testudata(L, -1, BLOB_MT)) != NULL) {
                /* no pin: the transfer takes a C reference of its own
                 * (nb_xfer_start), the Blob may go at any time */
                luaL_argcheck(L, bb->m != NULL, 2, "body segment: the blob's bytes were taken");
                s->kind = NB_SEG_B64;
                s->ptr = (const char *)nb_blobmem_data(bb->m, &s->len);
                s->mem = nb_blobmem_retain(bb->m);
                lua_pop(L, 1);
            } else {
                lua_pop(L, 1);
                lua_pushliteral(L, "file");
                lua_rawget(L, -2);
                if (lua_type(L, -1) != LUA_TSTRING)
                    luaL_error(L, "body segment %d: want a string, {b64=string|Blob}, {file=path}"
                               " or {file=path, offset=n, length=n, raw=true}", (int)i + 1);
                s->kind = NB_SEG_B64_FILE;
                s->path = lua_tostring(L, -1);
                lua_rawseti(L, pin_idx, (int)lua_rawlen(L, pin_idx) + 1);
                lua_pushliteral(L, "raw");
                lua_rawget(L, -2);
                if (lua_toboolean(L, -1)) { /* {file=, offset=, length=, raw=true}: bytes as is */
                    double off = opt_field_num(L, -2, "offset", 0);
                    double length = opt_field_num(L, -2, "length", -1);
                    /* range checks before the casts (out of range is undefined; a
                     * length past 4 GiB is out of size_t's range on 32-bit) */
                    if (off < 0 || length < 0 || off >= 18446744073709551616.0 ||
                        length > (double)SIZE_MAX || off != (double)(uint64_t)off ||
                        length != (double)(size_t)length)
                        luaL_error(L, "body segment %d: a raw file range needs offset >= 0 and length >= 0",
                                   (int)i + 1);
                    s->kind = NB_SEG_FILE_RANGE;
                    s->offset = (uint64_t)off;
                    s->len = (size_t)length;
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
            continue;
        } else {
            luaL_error(L, "body segment %d: want a string, {b64=string|Blob} or {file=path}", (int)i + 1);
        }
        lua_rawseti(L, pin_idx, (int)lua_rawlen(L, pin_idx) + 1); /* pin the string */
    }
    lua_pop(L, 1);
    *n = len;
    return arr;
}

/* the longest timeout (ms) passed on: about 24 days, within a 32-bit long */
#define NB_MAX_MS 2147483647L

/*** Starts a transfer.
 * @tparam table spec url, method (nil: POST with a body, GET without),
 *   headers (array of "Name: value"), body (array of segments: string,
 *   {b64=string}, {file=path} (base64 of the file), {file=path, raw=true,
 *   offset=n, length=n} (that byte range as is)), timeout, connect_timeout, stall (seconds), max_bytes,
 *   blob_dir, flush_blobs, empty_ok, jsonl, queue_bytes (streams: see event_queue_bytes),
 *   accept_encoding, proxy, ca_file, ca_path, insecure
 * @treturn Xfer @treturn[2] nil @treturn[2] string kind @treturn[2] string message */
static int engine_start(lua_State *L)
{
    engine_box *eb = check_engine(L, 1);
    nb_xfer_opts o;
    const char **hdrs = NULL;
    size_t i, nh = 0;
    int pin, boxi;
    xfer_box *xb;
    seg_array *segarr;
    nb_kind kind;
    char err[512];
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    memset(&o, 0, sizeof o);
    lua_newtable(L); /* 3: pins */
    pin = 3;
    /* the option strings and header lines (the key, a proxy's password)
     * are pinned on the stack for this call only, not in the transfer's pin
     * table: nb_xfer_start copies them, and no Lua value reachable
     * afterwards holds them */
    lua_newtable(L); /* 4: call pins */
    o.url = opt_field_str(L, 2, "url", 4);
    luaL_argcheck(L, o.url != NULL, 2, "spec.url is required");
    o.method = opt_field_str(L, 2, "method", 4);
    raw_field(L, 2, "headers");
    if (!lua_isnil(L, -1)) {
        luaL_argcheck(L, lua_istable(L, -1), 2, "headers must be an array of strings");
        nh = lua_rawlen(L, -1);
        hdrs = nb_newuserdata(L, (nh ? nh : 1) * sizeof *hdrs);
        lua_rawseti(L, 4, (int)lua_rawlen(L, 4) + 1);
        for (i = 0; i < nh; i++) {
            lua_rawgeti(L, -1, (int)i + 1);
            if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "headers[%d] must be a string", (int)i + 1);
            hdrs[i] = lua_tostring(L, -1);
            lua_rawseti(L, 4, (int)lua_rawlen(L, 4) + 1);
        }
    }
    lua_pop(L, 1);
    o.headers = hdrs;
    o.nheaders = nh;
    segarr = read_segments(L, 2, pin, &o.nsegs);
    o.segs = segarr ? segarr->v : NULL;
    /* NaN and negatives: 0 (none); huge: clamped (no UB converting) */
    o.timeout_ms = clamp_ms(opt_field_num(L, 2, "timeout", 0), 0, NB_MAX_MS);
    o.connect_timeout_ms = clamp_ms(opt_field_num(L, 2, "connect_timeout", 0), 0, NB_MAX_MS);
    o.stall_ms = clamp_ms(opt_field_num(L, 2, "stall", 0), 0, NB_MAX_MS);
    {
        double mb = opt_field_num(L, 2, "max_bytes", 0);
        o.max_response_bytes = !(mb > 0) ? 0 : mb >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)mb;
    }
    {
        double qb = opt_field_num(L, 2, "queue_bytes", 0);
        o.event_queue_bytes = !(qb >= 1) ? 0 : qb >= 1e15 ? (uint64_t)1e15 : (uint64_t)qb;
    }
    o.blob_dir = opt_field_str(L, 2, "blob_dir", 4);
    o.accept_encoding = opt_field_str(L, 2, "accept_encoding", 4);
    o.proxy = opt_field_str(L, 2, "proxy", 4);
    o.ca_file = opt_field_str(L, 2, "ca_file", 4);
    o.ca_path = opt_field_str(L, 2, "ca_path", 4);
    raw_field(L, 2, "insecure");
    o.insecure = lua_toboolean(L, -1);
    lua_pop(L, 1);
    raw_field(L, 2, "flush_blobs");
    o.flush_blobs = lua_toboolean(L, -1);
    lua_pop(L, 1);
    raw_field(L, 2, "jsonl");
    o.jsonl = lua_toboolean(L, -1);
    lua_pop(L, 1);
    raw_field(L, 2, "empty_ok");
    o.empty_ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    raw_field(L, 2, "stream");
    o.stream = lua_toboolean(L, -1);
    lua_pop(L, 1);
    raw_field(L, 2, "progress");
    o.notify_progress = lua_toboolean(L, -1);
    lua_pop(L, 1);

    /* the box exists (and is collectable) before the transfer does */
    xb = nb_newuserdata(L, sizeof *xb);
    xb->x = NULL;
    luaL_setmetatable(L, XFER_MT);
    boxi = lua_gettop(L);
    lua_pushvalue(L, pin);
    nb_setuservalue(L, boxi);
    /* make room in the engine's pin table before acquiring anything */
    nb_getuservalue(L, 1);
    xb->x = nb_xfer_start(eb->e, &o, &kind, err, sizeof err);
    if (segarr) segs_release(segarr); /* the transfer holds its own references */
    if (!xb->x && kind == NB_KIND_ENGINE) return luaL_error(L, "nanobanana: %s", err);
    if (!xb->x) {
        lua_pushnil(L);
        lua_pushstring(L, nb_kind_name(kind));
        lua_pushstring(L, err);
        return 3;
    }
    lua_pushlightuserdata(L, xb->x);
    lua_pushvalue(L, boxi);
    lua_rawset(L, -3); /* engine pins the running transfer */
    lua_pushvalue(L, boxi);
    return 1;
}

/*** Drives every transfer. @tparam[opt=0] integer wait_ms @treturn integer running */
static int engine_perform(lua_State *L)
{
    engine_box *b = check_engine(L, 1);
    lua_Integer wait = luaL_optinteger(L, 2, 0);
    int running;
    luaL_argcheck(L, wait >= 0 && wait <= 60000, 2, "wait_ms out of range 0..60000");
    running = nb_engine_perform(b->e, (int)wait);
    if (running < 0) return luaL_error(L, "libcurl multi error");
    lua_pushinteger(L, running);
    return 1;
}

/*** Renames src over dst atomically; an old dst is deleted by the worker.
 * @treturn true @treturn[2] nil, message */
static int engine_replace_file(lua_State *L)
{
    engine_box *b = check_engine(L, 1);
    const char *src = luaL_checkstring(L, 2);
    const char *dst = luaL_checkstring(L, 3);
    char err[512];
    if (nb_engine_replace_file(b->e, src, dst, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/*** Pops the next finished transfer. @treturn Xfer|nil */
static int engine_next_done(lua_State *L)
{
    engine_box *b = check_engine(L, 1);
    nb_xfer *x;
    nb_getuservalue(L, 1);
    x = nb_engine_next_done(b->e);
    if (!x) return 0;
    lua_pushlightuserdata(L, x);
    lua_rawget(L, -2);
    lua_pushlightuserdata(L, x);
    lua_pushnil(L);
    lua_rawset(L, -4); /* unpin: the caller holds it now */
    return 1;
}

/* ------------------------------------------------------------------ Xfer */

static int xfer_close(lua_State *L)
{
    xfer_box *b = check_xfer(L, 1);
    if (b->x) {
        nb_xfer_free(b->x); /* removes it from its engine, deletes temp files */
        b->x = NULL;
        /* the worker reads no borrowed byte from now on: unpin the body */
        lua_newtable(L);
        nb_setuservalue(L, 1);
    }
    return 0;
}

static nb_xfer *live_xfer(lua_State *L)
{
    xfer_box *b = check_xfer(L, 1);
    luaL_argcheck(L, b->x != NULL, 1, "closed nanobanana.Xfer");
    return b->x;
}

/*** Deletes now every temporary file the transfer made (output=); it makes no more. */
static int xfer_drop_files(lua_State *L)
{
    nb_xfer_drop_files(live_xfer(L));
    return 0;
}

static int xfer_tostring(lua_State *L)
{
    xfer_box *b = check_xfer(L, 1);
    lua_pushfstring(L, "nanobanana.Xfer (%p)%s", (void *)b, b->x ? "" : " closed");
    return 1;
}

static int xfer_cancel(lua_State *L)
{
    nb_xfer_cancel(live_xfer(L));
    return 0;
}

static int xfer_done(lua_State *L)
{
    lua_pushboolean(L, nb_xfer_done(live_xfer(L)));
    return 1;
}

static const char *phase_name(nb_phase p)
{
    static const char *const names[] = {"connecting", "uploading", "waiting", "downloading", "done"};
    return names[p];
}

/*** Progress into table t (reused). @tparam table t @treturn table t */
static int xfer_progress(lua_State *L)
{
    nb_xfer *x = live_xfer(L);
    nb_progress p;
    int busy = nb_xfer_progress(x, &p) != 0;
    if (!lua_istable(L, 2)) {
        lua_settop(L, 1);
        lua_createtable(L, 0, 6);
        if (busy) return 1;
    } else {
        lua_settop(L, 2);
        if (busy) return 1; /* keep the last values: never wait for the worker */
    }
    set_str(L, "phase", phase_name(p.phase));
    set_num(L, "uploaded", (double)p.uploaded);
    set_num(L, "upload_total", (double)p.upload_total);
    set_num(L, "downloaded", (double)p.downloaded);
    set_num(L, "download_total", (double)p.download_total);
    set_num(L, "elapsed", p.elapsed);
    return 1;
}

/*** The outcome of a finished transfer.
 * @treturn table { kind, message, status, headers, body, skeleton (bool),
 *   blobs (count), body_bytes } */
static int xfer_result(lua_State *L)
{
    nb_xfer *x = live_xfer(L);
    const char *s;
    size_t n;
    luaL_argcheck(L, nb_xfer_done(x), 1, "transfer still running");
    lua_createtable(L, 0, 8);
    set_str(L, "kind", nb_kind_name(nb_xfer_kind(x)));
    set_str(L, "message", nb_xfer_message(x));
    set_int(L, "status", (lua_Integer)nb_xfer_status(x));
    set_str(L, "http_version", nb_xfer_http_version(x));
    set_int(L, "new_connections", (lua_Integer)nb_xfer_new_connections(x));
    s = nb_xfer_headers(x, &n);
    lua_pushlstring(L, s, n);
    lua_setfield(L, -2, "headers");
    s = nb_xfer_body(x, &n);
    lua_pushlstring(L, s, n);
    lua_setfield(L, -2, "body");
    lua_pushboolean(L, nb_xfer_body_is_skeleton(x));
    lua_setfield(L, -2, "skeleton");
    set_int(L, "blobs", (lua_Integer)nb_blobs_count(nb_xfer_blobs(x)));
    lua_pushboolean(L, nb_xfer_is_sse(x));
    lua_setfield(L, -2, "sse");
    set_num(L, "body_bytes", (double)nb_xfer_body_bytes(x));
    return 1;
}

/* ------------------------------------------------------------------ Blob */

static blob_box *check_blob(lua_State *L, int i) { return luaL_checkudata(L, i, BLOB_MT); }

/*** The byte count, without touching the bytes. @treturn integer */
static int blob_size(lua_State *L)
{
    blob_box *b = check_blob(L, 1);
    size_t n = 0;
    luaL_argcheck(L, b->m != NULL, 1, "the blob's bytes were taken");
    (void)nb_blobmem_data(b->m, &n);
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

/*** The bytes as a Lua string (one copy); the Blob lets go of its C memory
 * at once (freed now, or when the last transfer reading it lets go). Once
 * only: afterwards the Blob is empty. @treturn string */
static int blob_take(lua_State *L)
{
    blob_box *b = check_blob(L, 1), *h;
    const uint8_t *p;
    size_t n;
    /* the copy reads through a reference of this call's own (a box whose
     * __gc drops it if the copy raises: the Blob then keeps its bytes), so
     * a finalizer run by the copy's allocation cannot free them under it */
    h = nb_newuserdata(L, sizeof *h);
    h->m = NULL;
    luaL_setmetatable(L, BLOB_MT);
    luaL_argcheck(L, b->m != NULL, 1, "the blob's bytes were taken");
    h->m = nb_blobmem_retain(b->m);
    p = nb_blobmem_data(h->m, &n);
    lua_pushlstring(L, (const char *)p, n); /* the one copy */
    nb_blobmem_release(b->m);                /* NULL if a finalizer took it meanwhile */
    b->m = NULL;
    nb_blobmem_release(h->m); /* the C memory goes now (unless a transfer holds it) */
    h->m = NULL;
    return 1;
}

/*** A second Blob holding its own reference to the same bytes: they stay in
 * C memory until both have let go (a request's body keeps one, so that a
 * retry can send the image after the first Blob's bytes were taken).
 * @treturn Blob */
static int blob_share(lua_State *L)
{
    blob_box *b = check_blob(L, 1), *nbx;
    nbx = nb_newuserdata(L, sizeof *nbx);
    nbx->m = NULL;
    luaL_setmetatable(L, BLOB_MT);
    luaL_argcheck(L, b->m != NULL, 1, "the blob's bytes were taken"); /* after the allocation */
    nbx->m = nb_blobmem_retain(b->m);
    return 1;
}

/*** Whether the bytes are still in C memory. @treturn boolean */
static int blob_live(lua_State *L)
{
    lua_pushboolean(L, check_blob(L, 1)->m != NULL);
    return 1;
}

static int blob_close(lua_State *L)
{
    blob_box *b = check_blob(L, 1);
    nb_blobmem_release(b->m);
    b->m = NULL;
    return 0;
}

static int blob_tostring(lua_State *L)
{
    blob_box *b = check_blob(L, 1);
    size_t n = 0;
    if (b->m) (void)nb_blobmem_data(b->m, &n);
    if (b->m) lua_pushfstring(L, "nanobanana.Blob (%p, %d bytes)", (void *)b, (int)n);
    else lua_pushfstring(L, "nanobanana.Blob (%p) taken", (void *)b);
    return 1;
}

/*** Memory blobs alive in the process and their bytes (diagnostics).
 * @treturn integer count @treturn integer bytes */
static int l_blob_stats(lua_State *L)
{
    uint64_t count = 0, bytes = 0;
    nb_blob_stats(&count, &bytes);
    lua_pushinteger(L, (lua_Integer)count);
    lua_pushinteger(L, (lua_Integer)bytes);
    return 2;
}

/* Blob i (1-based, argument 2) of bs: a Blob holding its bytes (taken out of
 * the set), or its temp file path; then "blob" or "file". */
static int push_blob(lua_State *L, nb_blobs *bs)
{
    lua_Integer i = luaL_checkinteger(L, 2);
    const char *path;
    blob_box *b;
    luaL_argcheck(L, i >= 1 && i <= (lua_Integer)nb_blobs_count(bs), 2, "no such blob");
    path = nb_blobs_path(bs, (unsigned)(i - 1));
    if (path) {
        lua_pushstring(L, path);
        lua_pushliteral(L, "file");
        return 2;
    }
    /* the box exists (with its __gc) before it owns anything */
    b = nb_newuserdata(L, sizeof *b);
    b->m = NULL;
    luaL_setmetatable(L, BLOB_MT);
    b->m = nb_blobs_take(bs, (unsigned)(i - 1));
    if (!b->m) return luaL_error(L, "blob %d was already taken", (int)i);
    lua_pushliteral(L, "blob");
    return 2;
}

/* The caller keeps blob i's (argument 2) temp file: it will not be deleted. */
static int keep_blob_file(lua_State *L, nb_blobs *bs)
{
    lua_Integer i = luaL_checkinteger(L, 2);
    luaL_argcheck(L, i >= 1 && i <= (lua_Integer)nb_blobs_count(bs), 2, "no such blob");
    nb_blobs_take_path(bs, (unsigned)(i - 1));
    return 0;
}

/*** Blob i (1-based) of a finished response: Blob|path, "blob"|"file". */
static int xfer_blob(lua_State *L) { return push_blob(L, nb_xfer_blobs(live_xfer(L))); }

/*** The caller keeps blob i's temp file (it will not be deleted). */
static int xfer_keep_file(lua_State *L) { return keep_blob_file(L, nb_xfer_blobs(live_xfer(L))); }

/* ------------------------------------------------------------------ stream events */

/*** The oldest stream event that arrived, or nil (none yet, or, unless
 * wait is true, the worker holds the lock at this instant: ask again on the
 * next poll). wait: take the lock even if that means waiting a moment (for
 * a transfer that is done, so that no event is missed).
 * @treturn string skeleton @treturn nanobanana.Event its blobs */
static int xfer_next_event(lua_State *L)
{
    nb_xfer *x = live_xfer(L);
    event_box *b;
    const char *sk;
    size_t n;
    /* the box exists before the event is taken: nothing leaks if Lua raises */
    b = nb_newuserdata(L, sizeof *b);
    b->ev = NULL;
    luaL_setmetatable(L, EVENT_MT);
    b->ev = nb_xfer_next_event(x, lua_toboolean(L, 2));
    if (!b->ev) {
        lua_pushnil(L);
        return 1;
    }
    sk = nb_event_skeleton(b->ev, &n);
    lua_pushlstring(L, sk, n);
    lua_insert(L, -2);
    return 2;
}

static nb_event *live_event(lua_State *L)
{
    event_box *b = luaL_checkudata(L, 1, EVENT_MT);
    luaL_argcheck(L, b->ev != NULL, 1, "closed nanobanana.Event");
    return b->ev;
}

/*** Blob i of the event, as Xfer:blob. */
static int event_blob(lua_State *L) { return push_blob(L, nb_event_blobs(live_event(L))); }
static int event_keep_file(lua_State *L) { return keep_blob_file(L, nb_event_blobs(live_event(L))); }

static int event_close(lua_State *L)
{
    event_box *b = luaL_checkudata(L, 1, EVENT_MT);
    nb_event_free(b->ev); /* deletes the temp files not kept */
    b->ev = NULL;
    return 0;
}

static int event_tostring(lua_State *L)
{
    event_box *b = luaL_checkudata(L, 1, EVENT_MT);
    lua_pushfstring(L, "nanobanana.Event (%p)%s", (void *)b, b->ev ? "" : " closed");
    return 1;
}

/* ------------------------------------------------------------------ module */

static const luaL_Reg engine_methods[] = {
    {"start", engine_start},
    {"perform", engine_perform},
    {"next_done", engine_next_done},
    {"replace_file", engine_replace_file},
    {"pollfd", engine_pollfd},
    {"settle", engine_settle},
    {"forked", engine_forked},
    {"close", engine_close},
    {"__gc", engine_close},
#if NB_HAVE_CLOSE
    {"__close", engine_close},
#endif
    {"__tostring", engine_tostring},
    {NULL, NULL}};

static const luaL_Reg xfer_methods[] = {
    {"cancel", xfer_cancel},
    {"done", xfer_done},
    {"progress", xfer_progress},
    {"drop_files", xfer_drop_files},
    {"result", xfer_result},
    {"blob", xfer_blob},
    {"keep_file", xfer_keep_file},
    {"next_event", xfer_next_event},
    {"close", xfer_close},
    {"__gc", xfer_close},
#if NB_HAVE_CLOSE
    {"__close", xfer_close},
#endif
    {"__tostring", xfer_tostring},
    {NULL, NULL}};

static const luaL_Reg event_methods[] = {
    {"blob", event_blob},
    {"keep_file", event_keep_file},
    {"close", event_close},
    {"__gc", event_close},
#if NB_HAVE_CLOSE
    {"__close", event_close},
#endif
    {"__tostring", event_tostring},
    {NULL, NULL}};

static const luaL_Reg blob_methods[] = {
    {"size", blob_size},
    {"take", blob_take},
    {"share", blob_share},
    {"live", blob_live},
    {"close", blob_close},
    {"__gc", blob_close},
#if NB_HAVE_CLOSE
    {"__close", blob_close},
#endif
    {"__tostring", blob_tostring},
    {NULL, NULL}};

static const luaL_Reg functions[] = {
    {"blob_stats", l_blob_stats},
    {"b64encode", l_b64encode},
    {"b64decode", l_b64decode},
    {"sniff", l_sniff},
    {"sniff_file", l_sniff_file},
    {"scan", l_scan},
    {"write_atomic", l_write_atomic},
    {"copy_atomic", l_copy_atomic},
    {"dir_writable", l_dir_writable},
    {"output_target", l_output_target},
    {"read_file", l_read_file},
    {"now", l_now},
    {"version_info", l_version_info},
    {"engine", l_engine},
    {"isatty", l_isatty},
    {"trap_sigint", l_trap_sigint},
    {"sigint_caught", l_sigint_caught},
    {"create_excl", l_create_excl},
    {NULL, NULL}};

static void new_type(lua_State *L, const char *name, const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

NB_EXPORT int luaopen_nanobanana_core(lua_State *L)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    if (cv->version_num < NB_CURL_MIN)
        return luaL_error(L, "nanobanana needs libcurl 7.68.0 or later (this process has %s)",
                          cv->version);
    if (nb_transport_global_init() != 0) return luaL_error(L, "libcurl global init failed");
    luaL_newmetatable(L, GROUP_MT);
    lua_pushcfunction(L, group_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    (void)state_group(L); /* before any engine: finalized after them */
    new_type(L, ENGINE_MT, engine_methods);
    new_type(L, XFER_MT, xfer_methods);
    new_type(L, EVENT_MT, event_methods);
    new_type(L, BLOB_MT, blob_methods);
    luaL_newmetatable(L, SEGS_MT);
    lua_pushcfunction(L, segs_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, SCANBOX_MT);
    lua_pushcfunction(L, scanbox_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, functions);
    set_str(L, "_VERSION", "nanobanana " NB_VERSION);
    set_str(L, "version", NB_VERSION);
    return 1;
}
