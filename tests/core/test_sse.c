/*
 * test_sse.c - the Server-Sent Events parser: framing variants, fields it
 * must skip, joining of data lines, and the same events for every way of
 * cutting the stream into chunks.
 */
#include "sse.h"
#define CHECK_RNG_SEED 0x94D049BB133111EBull
#include "check.h"

#include <stdlib.h>
#include <string.h>

/* Collected events: each event's data, joined with '|' after it. */
typedef struct {
    char out[4096];
    size_t len;
    int events;
    int abort_at; /* abort (return 7) when this event ends; 0 = never */
} collect;

static int on_data(void *ud, const char *p, size_t n)
{
    collect *c = ud;
    if (c->len + n >= sizeof c->out) return 99;
    memcpy(c->out + c->len, p, n);
    c->len += n;
    c->out[c->len] = 0;
    return 0;
}

static int on_end(void *ud)
{
    collect *c = ud;
    c->events++;
    if (c->len + 1 >= sizeof c->out) return 99;
    c->out[c->len++] = '|';
    c->out[c->len] = 0;
    return c->abort_at == c->events ? 7 : 0;
}

/* Parses s in chunks of at most `step` bytes (0: all at once). */
static int parse(const char *s, size_t n, size_t step, collect *c, int *fin)
{
    nb_sse_sink sink = {on_data, on_end, NULL};
    nb_sse *p;
    size_t i = 0;
    int rc = 0;
    memset(c, 0, sizeof *c);
    sink.ud = c;
    p = nb_sse_new(&sink);
    if (!p) return -1;
    if (step == 0) step = n ? n : 1;
    while (i < n && rc == 0) {
        size_t k = n - i < step ? n - i : step;
        rc = nb_sse_feed(p, s + i, k);
        i += k;
    }
    *fin = nb_sse_finish(p);
    nb_sse_free(p);
    return rc;
}

static void expect(const char *stream, const char *want, int want_fin)
{
    collect c;
    int fin = -1;
    size_t n = strlen(stream), step;
    CHECK_EQ_I(parse(stream, n, 0, &c, &fin), 0);
    CHECK_STR(c.out, want);
    CHECK_EQ_I(fin, want_fin);
    for (step = 1; step <= 3; step++) { /* byte at a time, pairs, triples */
        CHECK_EQ_I(parse(stream, n, step, &c, &fin), 0);
        CHECK_STR(c.out, want);
        CHECK_EQ_I(fin, want_fin);
    }
}

/* every split of the stream into two chunks gives the same events */
static void every_split(const char *stream, const char *want)
{
    size_t n = strlen(stream), cut;
    for (cut = 0; cut <= n; cut++) {
        nb_sse_sink sink = {on_data, on_end, NULL};
        collect c;
        nb_sse *p;
        memset(&c, 0, sizeof c);
        sink.ud = &c;
        p = nb_sse_new(&sink);
        CHECK(p != NULL);
        if (!p) return;
        CHECK_EQ_I(nb_sse_feed(p, stream, cut), 0);
        CHECK_EQ_I(nb_sse_feed(p, stream + cut, n - cut), 0);
        CHECK_EQ_I(nb_sse_finish(p), 0);
        CHECK_STR(c.out, want);
        nb_sse_free(p);
    }
}

int main(void)
{
    /* Google's framing: CRLF, one data line per event */
    expect("data: {\"a\":1}\r\n\r\ndata: {\"b\":2}\r\n\r\n", "{\"a\":1}|{\"b\":2}|", 0);
    /* LF only, CR only, mixed */
    expect("data: x\n\ndata: y\n\n", "x|y|", 0);
    expect("data: x\r\rdata: y\r\r", "x|y|", 0);
    expect("data: x\r\n\ndata: y\n\r\n", "x|y|", 0);
    /* no space after the colon; only one space is removed */
    expect("data:x\n\ndata:  y\n\n", "x| y|", 0);
    /* several data lines: joined with \n */
    expect("data: {\"a\":\ndata: 1}\n\n", "{\"a\":\n1}|", 0);
    /* comments, other fields, unknown and long names are skipped */
    expect(": keep-alive\n\nevent: message\nid: 7\nretry: 10\ndata: x\nfoo: bar\n\n", "x|", 0);
    expect("averyveryverylongfieldname: z\ndataX: no\nData: no\ndat: no\ndata: yes\n\n", "yes|", 0);
    /* "data" without a colon is an empty value */
    expect("data\ndata: a\n\n", "\na|", 0);
    /* an event without data is not dispatched; blank lines between events */
    expect("\n\n\nid: 1\n\ndata: a\n\n\n\n", "a|", 0);
    /* a UTF-8 BOM at the start is skipped (only there) */
    expect("\xEF\xBB\xBF" "data: a\n\n", "a|", 0);
    expect("\xEF\xBB" "data: a\n\n", "", 0); /* a broken BOM spoils the first field name */
    /* the stream ends inside an event: its data went by, but it never
     * ended (no '|'), and finish says so */
    expect("data: a\n\ndata: b\n", "a|b", NB_SSE_PARTIAL);
    expect("data: a\n\ndata: b", "a|b", NB_SSE_PARTIAL);
    expect("data: a\n\n: comment without end", "a|", 0);
    expect("", "", 0);
    /* the data may hold anything but line ends */
    expect("data: \x01\x7f\xff:data:\n\n", "\x01\x7f\xff:data:|", 0);

    every_split("data: {\"x\":\"abc\"}\r\n\r\n: ping\r\n\r\ndata: 1\r\ndata: 2\r\n\r\n", "{\"x\":\"abc\"}|1\n2|");
    every_split("data: a\r\rdata: b\r\n\r\n", "a|b|");

    /* random chunk sizes over a longer stream */
    {
        const char *s = "\xEF\xBB\xBF: hi\r\n\r\ndata: {\"candidates\":[1]}\r\n\r\nevent: x\r\ndata: 2\r\ndata:3\r\n\r\n"
                        "data: last\n\n";
        const char *want = "{\"candidates\":[1]}|2\n3|last|";
        size_t n = strlen(s);
        int round;
        for (round = 0; round < 200; round++) {
            nb_sse_sink sink = {on_data, on_end, NULL};
            collect c;
            nb_sse *p;
            size_t i = 0;
            memset(&c, 0, sizeof c);
            sink.ud = &c;
            p = nb_sse_new(&sink);
            while (i < n) {
                size_t k = 1 + rnd() % 7;
                if (k > n - i) k = n - i;
                CHECK_EQ_I(nb_sse_feed(p, s + i, k), 0);
                i += k;
            }
            CHECK_EQ_I(nb_sse_finish(p), 0);
            CHECK_STR(c.out, want);
            nb_sse_free(p);
        }
    }

    /* a sink's non-zero return stops the parser and sticks */
    {
        const char *s = "data: a\n\ndata: b\n\ndata: c\n\n";
        nb_sse_sink sink = {on_data, on_end, NULL};
        collect c;
        nb_sse *p;
        memset(&c, 0, sizeof c);
        c.abort_at = 2;
        sink.ud = &c;
        p = nb_sse_new(&sink);
        CHECK_EQ_I(nb_sse_feed(p, s, strlen(s)), 7);
        CHECK_STR(c.out, "a|b|");
        CHECK_EQ_I(nb_sse_feed(p, "data: d\n\n", 9), 7);
        CHECK_EQ_I(nb_sse_finish(p), 7);
        CHECK_EQ_I((long long)nb_sse_events(p), 2);
        nb_sse_free(p);
    }
    nb_sse_free(NULL);
    return check_done();
}
