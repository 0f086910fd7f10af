/*
 * fuzz_sse.c - libFuzzer target: the SSE parser never crashes, and gives
 * the same data, events and end state whether the input comes at once,
 * byte by byte, or in three chunks.
 */
#include "sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *out;
    size_t len, cap;
    unsigned events;
} acc;

static int put(acc *a, const char *p, size_t n)
{
    if (a->len + n + 1 > a->cap) {
        size_t nc = (a->len + n + 1) * 2;
        uint8_t *np = realloc(a->out, nc);
        if (!np) abort();
        a->out = np;
        a->cap = nc;
    }
    memcpy(a->out + a->len, p, n);
    a->len += n;
    return 0;
}

static int on_data(void *ud, const char *p, size_t n) { return put(ud, p, n); }
static int on_end(void *ud)
{
    acc *a = ud;
    a->events++;
    return put(a, "\0", 1); /* a NUL marks an event end in the record */
}

static int run(const uint8_t *d, size_t n, int how, acc *a)
{
    nb_sse_sink sink = {on_data, on_end, NULL};
    nb_sse *s;
    size_t i;
    int fin;
    memset(a, 0, sizeof *a);
    sink.ud = a;
    s = nb_sse_new(&sink);
    if (!s) abort();
    if (how == 0) {
        nb_sse_feed(s, (const char *)d, n);
    } else if (how == 1) {
        for (i = 0; i < n; i++) nb_sse_feed(s, (const char *)d + i, 1);
    } else {
        for (i = 0; i < 3; i++) nb_sse_feed(s, (const char *)d + n * i / 3, n * (i + 1) / 3 - n * i / 3);
    }
    fin = nb_sse_finish(s);
    if (nb_sse_events(s) != a->events) abort();
    nb_sse_free(s);
    return fin;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acc a, b;
    int how;
    int fa = run(data, size, 0, &a);
    for (how = 1; how <= 2; how++) {
        int fb = run(data, size, how, &b);
        if (fa != fb || a.len != b.len || a.events != b.events || (a.len && memcmp(a.out, b.out, a.len)))
            abort();
        free(b.out);
    }
    free(a.out);
    return 0;
}
