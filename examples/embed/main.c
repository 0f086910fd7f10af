/*
 * embed_demo: a game-style host for nanobanana.
 *
 * Embeds Lua 5.4 and runs a fixed-timestep loop (60 Hz by default). Each
 * frame it calls the script's global function frame(n, dt) once, under
 * lua_pcall with a traceback message handler, and measures in C the wall
 * time spent inside that call: that is how much of the frame the script
 * (and nanobanana's client:poll() inside it) used. Between frames it sleeps
 * until the next frame deadline (clock_nanosleep on CLOCK_MONOTONIC, an
 * absolute deadline, so the loop does not drift).
 *
 *   embed_demo SCRIPT.lua [--frames N] [--hz HZ] [--budget-ms MS] [script args...] [-- more script args...]
 *
 * --frames N     stop after N frames even if the script is not finished
 *                (default 3600, one minute at 60 Hz; 0 = no limit)
 * --hz HZ        frame rate (default 60)
 * --budget-ms MS optional: exit 3 if any frame call took longer than MS
 * --trace FILE   write one line per frame: n, start (ms since the loop
 *                began), wall time inside frame() (ms), CPU time (ms)
 *
 * Every other argument goes to the script, Lua-style, in the global table
 * `arg` (arg[0] = script, arg[1..] = its arguments, arg[-1] = this
 * program) and as the main chunk's `...`. After "--" everything goes to
 * the script verbatim.
 *
 * frame(n, dt) returns true when the script is finished. After the loop the
 * host calls the script's optional global shutdown(), prints
 *
 *   embed: frames=N max_frame_ms=X p99_frame_ms=Y missed=M
 *
 * (p99 over all frames; missed = frames whose frame() call ended after the
 * frame's deadline) and exits 0 if the script set the global ok to true,
 * 2 if it did not (or never finished), 1 on a Lua error or bad usage, and 3
 * if --budget-ms was given and exceeded.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* the host builds against Lua 5.1 to 5.4 and LuaJIT */
#ifndef LUA_OK
#define LUA_OK 0
#endif

/* a global's type (5.1's lua_getglobal returns nothing) */
static int get_global(lua_State *L, const char *name)
{
    lua_getglobal(L, name);
    return lua_type(L, -1);
}

#define NS_PER_S 1000000000LL

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* CPU time of this thread: unlike wall time, it does not count the time the
 * scheduler gave to other processes, so it tells a busy machine apart from
 * a frame that really did too much work. */
static int64_t cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

/* Sleeps until the absolute CLOCK_MONOTONIC time t (ns). */
static void sleep_until(int64_t t)
{
    struct timespec ts;
    int rc;
    ts.tv_sec = (time_t)(t / NS_PER_S);
    ts.tv_nsec = (long)(t % NS_PER_S);
    do {
        rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    } while (rc == EINTR);
}

/* Message handler for lua_pcall: appends a traceback to the error. */
static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
#if LUA_VERSION_NUM >= 502 || defined(luaL_newlibtable) /* 5.2+, LuaJIT 2.1 */
    luaL_traceback(L, L, msg, 1);
#else
    lua_pushstring(L, msg);
#endif
    return 1;
}

/* Calls the function below nargs arguments on the stack with a traceback
 * handler; on error prints the message and returns 0. Leaves nres results. */
static int pcall_report(lua_State *L, int nargs, int nres, const char *what)
{
    int base = lua_gettop(L) - nargs; /* the function's slot */
    int status;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    status = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "embed: error in %s: %s\n", what, msg ? msg : "(no message)");
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s SCRIPT.lua [--frames N] [--hz HZ] [--budget-ms MS] [--trace FILE]\n"
            "          [script args...] [-- script args...]\n"
            "  --frames N      stop after N frames (default 3600; 0 = no limit)\n"
            "  --hz HZ         fixed frame rate (default 60)\n"
            "  --budget-ms MS  exit 3 if a frame() call took longer than MS\n"
            "  --trace FILE    write \"n start_ms frame_ms frame_cpu_ms\" for every frame\n",
            prog);
}

int main(int argc, char **argv)
{
    long frames_max = 3600, hz = 60;
    double budget_ms = -1;
    const char *script, *trace_path = NULL;
    FILE *trace = NULL;
    char **sargv;
    int sargc = 0, i, rc = 1, finished = 0, script_ok = 0;
    lua_State *L = NULL;
    int64_t *durs = NULL, *cpus = NULL;
    size_t ndurs = 0, capdurs = 0;
    int64_t period, t_start, deadline, max_dur = 0, max_late = 0, sum_dur = 0;
    long n, missed = 0, skipped = 0;

    if (argc < 2 || argv[1][0] == '-') {
        usage(argv[0]);
        return 1;
    }
    script = argv[1];

    /* split our options from the script's arguments */
    sargv = malloc(sizeof *sargv * (size_t)argc);
    if (!sargv) {
        fprintf(stderr, "embed: out of memory\n");
        return 1;
    }
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++) sargv[sargc++] = argv[i];
            break;
        } else if (strcmp(a, "--frames") == 0 || strcmp(a, "--hz") == 0 || strcmp(a, "--budget-ms") == 0 ||
                   strcmp(a, "--trace") == 0) {
            int good;
            if (i + 1 >= argc) {
                fprintf(stderr, "embed: %s needs a value\n", a);
                usage(argv[0]);
                goto out;
            }
            if (strcmp(a, "--frames") == 0) good = parse_long(argv[i + 1], 0, 1000000000L, &frames_max);
            else if (strcmp(a, "--hz") == 0) good = parse_long(argv[i + 1], 1, 10000, &hz);
            else if (strcmp(a, "--budget-ms") == 0) good = parse_double(argv[i + 1], 0, 1e6, &budget_ms);
            else good = (trace_path = argv[i + 1])[0] != '\0';
            if (!good) {
                fprintf(stderr, "embed: bad value for %s: %s\n", a, argv[i + 1]);
                usage(argv[0]);
                goto out;
            }
            i++;
        } else {
            sargv[sargc++] = argv[i];
        }
    }

    if (trace_path && !(trace = fopen(trace_path, "w"))) {
        fprintf(stderr, "embed: cannot write %s: %s\n", trace_path, strerror(errno));
        goto out;
    }

    L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "embed: cannot create a Lua state\n");
        goto out;
    }
    luaL_openlibs(L);

    /* arg = { [-1] = program, [0] = script, script args... } */
    lua_createtable(L, sargc, 2);
    lua_pushstring(L, argv[0]);
    lua_rawseti(L, -2, -1);
    lua_pushstring(L, script);
    lua_rawseti(L, -2, 0);
    for (i = 0; i < sargc; i++) {
        lua_pushstring(L, sargv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");

    /* run the script's main chunk with its arguments as ... */
    if (luaL_loadfile(L, script) != LUA_OK) {
        fprintf(stderr, "embed: %s\n", lua_tostring(L, -1));
        goto out;
    }
    luaL_checkstack(L, sargc, "too many arguments");
    for (i = 0; i < sargc; i++) lua_pushstring(L, sargv[i]);
    if (!pcall_report(L, sargc, 0, script)) goto out;

    if (get_global(L, "frame") != LUA_TFUNCTION) {
        fprintf(stderr, "embed: %s does not define a global function frame(n, dt)\n", script);
        goto out;
    }
    lua_pop(L, 1);

    /* the fixed-timestep loop */
    period = NS_PER_S / hz;
    t_start = now_ns();
    deadline = t_start + period; /* frame 1 must be done by here */
    for (n = 1; frames_max == 0 || n <= frames_max; n++) {
        int64_t t0, t1, c0, c1, dur;

        lua_getglobal(L, "frame");
        lua_pushinteger(L, (lua_Integer)n);
        lua_pushnumber(L, 1.0 / (double)hz);
        c0 = cpu_ns();
        t0 = now_ns();
        if (!pcall_report(L, 2, 1, "frame()")) goto out;
        t1 = now_ns();
        c1 = cpu_ns();
        finished = lua_toboolean(L, -1);
        lua_pop(L, 1);

        dur = t1 - t0;
        if (ndurs == capdurs) {
            size_t ncap = capdurs ? capdurs * 2 : 1024;
            int64_t *nd = realloc(durs, ncap * sizeof *nd), *nc;
            if (nd) durs = nd;
            nc = realloc(cpus, ncap * sizeof *nc);
            if (nc) cpus = nc;
            if (!nd || !nc) {
                fprintf(stderr, "embed: out of memory\n");
                goto out;
            }
            capdurs = ncap;
        }
        cpus[ndurs] = c1 - c0;
        durs[ndurs++] = dur;
        sum_dur += dur;
        if (dur > max_dur) max_dur = dur;
        if (t1 > deadline) missed++;
        if (trace)
            fprintf(trace, "%ld %.3f %.3f %.3f\n", n, (double)(t0 - t_start) / 1e6, (double)dur / 1e6,
                    (double)(c1 - c0) / 1e6);

        if (finished) break;

        /* sleep until the next frame starts (this frame's deadline); after
         * an overrun, skip the frame slots already past instead of running
         * a burst of catch-up frames */
        {
            int64_t next = deadline, late;
            while (next < t1) {
                next += period;
                skipped++;
            }
            sleep_until(next);
            late = now_ns() - next;
            if (late > max_late) max_late = late;
            deadline = next + period;
        }
    }

    lua_getglobal(L, "ok");
    script_ok = finished && lua_isboolean(L, -1) && lua_toboolean(L, -1);
    lua_pop(L, 1);

    if (get_global(L, "shutdown") == LUA_TFUNCTION) {
        if (!pcall_report(L, 0, 0, "shutdown()")) goto out;
    } else {
        lua_pop(L, 1);
    }

    {
        double max_ms = (double)max_dur / 1e6, p99_ms = 0, mean_ms = 0, cpu_max_ms = 0, cpu_p99_ms = 0;
        if (ndurs > 0) {
            size_t rank = (ndurs * 99 + 99) / 100; /* nearest rank: ceil(0.99 n) */
            qsort(durs, ndurs, sizeof *durs, cmp_i64);
            qsort(cpus, ndurs, sizeof *cpus, cmp_i64);
            p99_ms = (double)durs[rank - 1] / 1e6;
            mean_ms = (double)sum_dur / (double)ndurs / 1e6;
            cpu_p99_ms = (double)cpus[rank - 1] / 1e6;
            cpu_max_ms = (double)cpus[ndurs - 1] / 1e6;
        }
        printf("embed: frames=%lu max_frame_ms=%.3f p99_frame_ms=%.3f missed=%ld\n",
               (unsigned long)ndurs, max_ms, p99_ms, missed);
        printf("embed-detail: hz=%ld wall_s=%.3f mean_frame_ms=%.4f max_frame_cpu_ms=%.3f p99_frame_cpu_ms=%.3f"
               " max_wake_late_ms=%.3f skipped=%ld finished=%s ok=%s\n",
               hz, (double)(now_ns() - t_start) / 1e9, mean_ms, cpu_max_ms, cpu_p99_ms, (double)max_late / 1e6,
               skipped, finished ? "yes" : "no", script_ok ? "yes" : "no");
        fflush(stdout);
        if (!finished)
            fprintf(stderr, "embed: stopped after %lu frames; the script did not finish\n", (unsigned long)ndurs);
        if (!script_ok)
            rc = 2;
        else if (budget_ms >= 0 && max_ms > budget_ms) {
            fprintf(stderr, "embed: a frame() call took %.3f ms, over the %.3f ms budget\n", max_ms, budget_ms);
            rc = 3;
        } else
            rc = 0;
    }

out:
    if (L) lua_close(L);
    if (trace) fclose(trace);
    free(durs);
    free(cpus);
    free(sargv);
    return rc;
}
