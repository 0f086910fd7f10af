/*
 * fuzz_scan.c - libFuzzer target for the response scanner. Differential:
 * the input is scanned whole and again split at a point taken from its
 * first byte (and one byte at a time for short inputs); the outcome, the
 * error offset, the skeleton and every blob's bytes must be identical.
 * Build: cmake -DNB_FUZZ=ON with clang; run: build-fuzz/fuzz_scan -max_total_time=20
 */
#include "scan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t len, cap;
    unsigned begun, ended;
} acc;

static int put(acc *a, const uint8_t *p, size_t n)
{
    if (a->len + n > a->cap) {
        size_t c = a->cap ? a->cap : 256;
        while (c < a->len + n) c *= 2;
        a->p = realloc(a->p, c);
        if (!a->p) abort();
        a->cap = c;
    }
    memcpy(a->p + a->len, p, n);
    a->len += n;
    return 0;
}
static int on_begin(void *ud, unsigned i) { (void)i; ((acc *)ud)->begun++; return 0; }
static int on_data(void *ud, unsigned i, const uint8_t *p, size_t n) { (void)i; return put(ud, p, n); }
static int on_end(void *ud, unsigned i, uint64_t t) { (void)i; (void)t; ((acc *)ud)->ended++; return 0; }

typedef struct {
    int rc;
    uint64_t off;
    char *skel;
    size_t skel_len;
    acc blobs;
} outcome;

static void run(const uint8_t *d, size_t n, size_t split, int bytewise, outcome *o)
{
    nb_scan_sink sink = {on_begin, on_data, on_end, NULL};
    nb_scan *s;
    const char *sk;
    memset(o, 0, sizeof *o);
    sink.ud = &o->blobs;
    s = nb_scan_new(&sink, 1 << 20);
    if (!s) abort();
    if (bytewise) {
        size_t i;
        o->rc = NB_SCAN_OK;
        for (i = 0; i < n && o->rc == NB_SCAN_OK; i++) o->rc = nb_scan_feed(s, (const char *)d + i, 1);
    } else {
        o->rc = nb_scan_feed(s, (const char *)d, split);
        if (o->rc == NB_SCAN_OK) o->rc = nb_scan_feed(s, (const char *)d + split, n - split);
    }
    if (o->rc == NB_SCAN_OK) o->rc = nb_scan_finish(s);
    if (o->rc != NB_SCAN_OK) nb_scan_error(s, &o->off);
    sk = nb_scan_skeleton(s, &o->skel_len);
    o->skel = malloc(o->skel_len + 1);
    if (!o->skel) abort();
    memcpy(o->skel, sk, o->skel_len);
    nb_scan_free(s);
}

static void same(const outcome *a, const outcome *b)
{
    if (a->rc != b->rc || a->off != b->off) abort();
    if (a->rc == NB_SCAN_OK) {
        if (a->skel_len != b->skel_len || memcmp(a->skel, b->skel, a->skel_len)) abort();
        if (a->blobs.len != b->blobs.len || (a->blobs.len && memcmp(a->blobs.p, b->blobs.p, a->blobs.len)))
            abort();
        if (a->blobs.begun != b->blobs.begun || a->blobs.ended != b->blobs.ended) abort();
    }
}

static void drop(outcome *o)
{
    free(o->skel);
    free(o->blobs.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome whole, part;
    size_t split = size ? data[0] % (size + 1) : 0;
    run(data, size, size, 0, &whole);
    run(data, size, split, 0, &part);
    same(&whole, &part);
    drop(&part);
    if (size <= 512) {
        run(data, size, 0, 1, &part);
        same(&whole, &part);
        drop(&part);
    }
    drop(&whole);
    return 0;
}
