/*
 * test_scan.c - streaming generateContent body scanner.
 *
 * Every chunk is copied into its own exact-size malloc'd buffer before it is
 * fed, so a read past a chunk's end is caught by ASan / valgrind.
 */
#include "b64.h"
#define CHECK_RNG_SEED 0x2545F4914F6CDD1Dull
#include "check.h"
#include "scan.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */


typedef struct {
    char *p;
    size_t len, cap;
} buf;

static void buf_add(buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = (char *)realloc(b->p, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_free(buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Replaces every "@N@" (N a digit) in tmpl by subst[N]. */
static void fill(buf *out, const char *tmpl, const char *const *subst)
{
    const char *t = tmpl;
    while (*t) {
        if (t[0] == '@' && t[1] >= '0' && t[1] <= '9' && t[2] == '@') {
            buf_str(out, subst[t[1] - '0']);
            t += 3;
        } else {
            buf_add(out, t, 1);
            t++;
        }
    }
    if (!out->p)
        buf_add(out, "", 0);
}

static char *b64(const uint8_t *p, size_t n)
{
    char *s = (char *)malloc(nb_b64_encoded_len(n) + 1);
    s[nb_b64_encode(p, n, s)] = '\0';
    return s;
}

static uint8_t *random_bytes(size_t n)
{
    uint8_t *p = (uint8_t *)malloc(n ? n : 1);
    size_t k;
    for (k = 0; k < n; k++)
        p[k] = (uint8_t)rnd();
    return p;
}

/* ------------------------------------------------------------- recorder */

#define MAX_BLOBS 8

enum { ABORT_NONE, ABORT_BEGIN, ABORT_DATA, ABORT_END };

typedef struct {
    unsigned nbegin, nend, ndata;
    int open;      /* index of the open blob or -1 */
    int violation; /* callback protocol broken */
    buf blob[MAX_BLOBS];
    uint64_t total[MAX_BLOBS];
    int abort_mode;
    unsigned abort_idx;
} rec;

static void rec_init(rec *r, int abort_mode, unsigned abort_idx)
{
    memset(r, 0, sizeof *r);
    r->open = -1;
    r->abort_mode = abort_mode;
    r->abort_idx = abort_idx;
}

static void rec_free(rec *r)
{
    int k;
    for (k = 0; k < MAX_BLOBS; k++)
        buf_free(&r->blob[k]);
}

static int rec_begin(void *ud, unsigned idx)
{
    rec *r = (rec *)ud;
    if (r->open != -1 || idx != r->nbegin || idx >= MAX_BLOBS)
        r->violation++;
    r->open = (int)idx;
    r->nbegin++;
    if (idx < MAX_BLOBS)
        buf_add(&r->blob[idx], "", 0);
    return r->abort_mode == ABORT_BEGIN && idx == r->abort_idx;
}

static int rec_data(void *ud, unsigned idx, const uint8_t *p, size_t n)
{
    rec *r = (rec *)ud;
    if (r->open != (int)idx || n == 0 || idx >= MAX_BLOBS) {
        r->violation++;
        return 0;
    }
    r->ndata++;
    buf_add(&r->blob[idx], p, n);
    return r->abort_mode == ABORT_DATA && idx == r->abort_idx;
}

static int rec_end(void *ud, unsigned idx, uint64_t total)
{
    rec *r = (rec *)ud;
    if (r->open != (int)idx || idx >= MAX_BLOBS || total != r->blob[idx].len)
        r->violation++;
    else
        r->total[idx] = total;
    r->open = -1;
    r->nend++;
    return r->abort_mode == ABORT_END && idx == r->abort_idx;
}

/* ------------------------------------------------------------- runner */

typedef struct {
    int rc; /* first non-OK code of feed/finish, else OK */
    const char *msg;
    uint64_t off;
    buf skel;
    unsigned nblobs;
    rec r;
} result;

static void result_free(result *res)
{
    buf_free(&res->skel);
    rec_free(&res->r);
}

/* Copies the scanner's outcome into res (skeleton, error, count). */
static void collect(nb_scan *s, int rc, result *res)
{
    size_t sl;
    const char *sk = nb_scan_skeleton(s, &sl);
    res->rc = rc;
    res->msg = nb_scan_error(s, &res->off);
    if (!res->msg)
        res->off = 0;
    buf_add(&res->skel, sk, sl);
    res->nblobs = nb_scan_blob_count(s);
}

/* Feeds body in chunks: sizes[] cycled (0 = the rest). */
static void run(const char *body, size_t n, size_t max_skel, const size_t *sizes,
                size_t nsizes, int abort_mode, unsigned abort_idx, result *res)
{
    nb_scan_sink sink;
    nb_scan *s;
    size_t pos = 0, k = 0;
    int rc = NB_SCAN_OK;

    memset(res, 0, sizeof *res);
    rec_init(&res->r, abort_mode, abort_idx);
    sink.blob_begin = rec_begin;
    sink.blob_data = rec_data;
    sink.blob_end = rec_end;
    sink.ud = &res->r;
    s = nb_scan_new(&sink, max_skel);
    if (!s) {
        res->rc = 999;
        return;
    }
    while (pos < n && rc == NB_SCAN_OK) {
        size_t c = sizes[k++ % nsizes];
        char *chunk;
        if (c == 0 || c > n - pos)
            c = n - pos;
        chunk = (char *)malloc(c);
        memcpy(chunk, body + pos, c);
        rc = nb_scan_feed(s, chunk, c);
        free(chunk);
        pos += c;
    }
    if (rc == NB_SCAN_OK)
        rc = nb_scan_finish(s);
    else if (nb_scan_finish(s) != rc || nb_scan_feed(s, "{}", 2) != rc)
        rc = 1000; /* errors must be sticky */
    collect(s, rc, res);
    nb_scan_free(s);
}

static int same(const result *a, const result *b)
{
    unsigned k;
    if (a->rc != b->rc || a->off != b->off || a->nblobs != b->nblobs)
        return 0;
    if ((a->msg == NULL) != (b->msg == NULL) || (a->msg && strcmp(a->msg, b->msg) != 0))
        return 0;
    if (a->rc == NB_SCAN_OK &&
        (a->skel.len != b->skel.len || memcmp(a->skel.p, b->skel.p, a->skel.len) != 0))
        return 0;
    if (a->r.nbegin != b->r.nbegin || a->r.violation || b->r.violation)
        return 0;
    if (a->rc == NB_SCAN_OK || a->rc == NB_SCAN_ETRUNC) {
        if (a->r.nend != b->r.nend)
            return 0;
        for (k = 0; k < a->r.nend && k < MAX_BLOBS; k++)
            if (a->r.blob[k].len != b->r.blob[k].len ||
                memcmp(a->r.blob[k].p, b->r.blob[k].p, a->r.blob[k].len) != 0)
                return 0;
    }
    return 1;
}

/* Scans body in one chunk into *ref, then checks that every two-chunk
 * split and one-byte-at-a-time feeding give the same result. */
static void scan_all_ways(const char *body, size_t n, size_t max_skel, int abort_mode,
                          unsigned abort_idx, result *ref, int line)
{
    size_t k, one = 1, zero = 0;
    int bad = 0;
    result r;
    run(body, n, max_skel, &zero, 1, abort_mode, abort_idx, ref);
    for (k = 1; k < n; k++) {
        size_t sizes[2];
        sizes[0] = k;
        sizes[1] = 0;
        run(body, n, max_skel, sizes, 2, abort_mode, abort_idx, &r);
        if (!same(ref, &r)) {
            if (bad < 3)
                fprintf(stderr, "%s:%d: split at %zu disagrees (rc %d vs %d)\n", __FILE__,
                        line, k, ref->rc, r.rc);
            bad++;
        }
        result_free(&r);
    }
    run(body, n, max_skel, &one, 1, abort_mode, abort_idx, &r);
    if (!same(ref, &r)) {
        fprintf(stderr, "%s:%d: one-byte feeding disagrees (rc %d vs %d)\n", __FILE__, line,
                ref->rc, r.rc);
        bad++;
    }
    result_free(&r);
    check_count++;
    if (bad)
        check_failures++;
}

/* ------------------------------------------------------------- tests */

static const char response_tmpl[] =
    "{\n"
    "  \"candidates\": [\n"
    "    {\n"
    "      \"content\": {\n"
    "        \"parts\": [\n"
    "          {\n"
    "            \"text\": \"Here is your banana: \\\"nano\\\" \\u00e9\\n\\/done\"\n"
    "          },\n"
    "          {\n"
    "            \"@0@\": {\n"
    "              \"@1@\": \"image/png\",\n"
    "              \"data\": \"@2@\"\n"
    "            },\n"
    "            \"thought\": true\n"
    "          },\n"
    "          {\n"
    "            \"@0@\": {\n"
    "              \"@1@\": \"image/png\",\n"
    "              \"data\": \"@3@\"\n"
    "            },\n"
    "            \"thoughtSignature\": \"CiQBVKhc7uVJ2Hc1Jp9d/5xW+Q3zTQ==\"\n"
    "          }\n"
    "        ],\n"
    "        \"role\": \"model\"\n"
    "      },\n"
    "      \"finishReason\": \"STOP\",\n"
    "      \"index\": 0,\n"
    "      \"avgLogprobs\": -0.125e-3\n"
    "    }\n"
    "  ],\n"
    "  \"usageMetadata\": {\n"
    "    \"promptTokenCount\": 12,\n"
    "    \"candidatesTokenCount\": 1290,\n"
    "    \"totalTokenCount\": 1302,\n"
    "    \"promptTokensDetails\": [{\"modality\": \"TEXT\", \"tokenCount\": 12}],\n"
    "    \"ratio\": 1.5E+2, \"nothing\": null, \"no\": false, \"empty\": [], \"obj\": {}\n"
    "  },\n"
    "  \"modelVersion\": \"gemini-2.5-flash-image\",\n"
    "  \"responseId\": \"x9QjaOzKBqSzvdIP5uKp4Ak\"\n"
    "}\n";

static void check_response(const char *inline_key, const char *mime_key, size_t len_a,
                           size_t len_b, int all_ways)
{
    uint8_t *a = random_bytes(len_a), *b = random_bytes(len_b);
    char *ea = b64(a, len_a), *eb = b64(b, len_b);
    const char *sub_body[4], *sub_skel[4];
    buf body = {0}, skel = {0};
    result res;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    if (len_b >= 8)
        memcpy(b, png_sig, 8), free(eb), eb = b64(b, len_b);
    sub_body[0] = sub_skel[0] = inline_key;
    sub_body[1] = sub_skel[1] = mime_key;
    sub_body[2] = ea;
    sub_body[3] = eb;
    sub_skel[2] = "nb:blob:0";
    sub_skel[3] = "nb:blob:1";
    fill(&body, response_tmpl, sub_body);
    fill(&skel, response_tmpl, sub_skel);

    if (all_ways) {
        scan_all_ways(body.p, body.len, 0, ABORT_NONE, 0, &res, __LINE__);
    } else {
        size_t sizes[4] = {16384, 1, 7, 65536};
        result r2;
        run(body.p, body.len, 0, sizes, 1, ABORT_NONE, 0, &res);
        run(body.p, body.len, 0, sizes + 1, 3, ABORT_NONE, 0, &r2);
        CHECK(same(&res, &r2));
        result_free(&r2);
    }
    CHECK_EQ_I(res.rc, NB_SCAN_OK);
    CHECK_EQ_U(res.nblobs, 2);
    CHECK_EQ_U(res.r.nbegin, 2);
    CHECK_EQ_U(res.r.nend, 2);
    CHECK_EQ_I(res.r.violation, 0);
    CHECK_MEM(res.r.blob[0].p, res.r.blob[0].len, a, len_a);
    CHECK_MEM(res.r.blob[1].p, res.r.blob[1].len, b, len_b);
    CHECK_EQ_U(res.r.total[0], len_a);
    CHECK_EQ_U(res.r.total[1], len_b);
    CHECK_MEM(res.skel.p, res.skel.len, skel.p, skel.len);
    CHECK(res.msg == NULL);
    if (len_b > 65536)
        CHECK(res.r.ndata >= 2); /* the 64 KiB buffer was flushed midway */
    result_free(&res);
    buf_free(&body);
    buf_free(&skel);
    free(a);
    free(b);
    free(ea);
    free(eb);
}

static void test_response(void)
{
    /* small blobs: every split point and one byte at a time */
    check_response("inlineData", "mimeType", 150, 400, 1);
    check_response("inline_data", "mime_type", 2, 301, 1);
    check_response("inlineData", "mimeType", 0, 1, 1);
    /* big blobs: the decode buffer is flushed several times */
    check_response("inlineData", "mimeType", 70000, 300000, 0);
}

/* one exact literal case, so the placeholder format itself is pinned down */
static void test_literal_skeleton(void)
{
    static const char body[] =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hi\"},"
        "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"QUJD\"}},"
        "{\"inline_data\":{\"data\":\"REVGRw==\",\"mime_type\":\"image/jpeg\"}}]}}]}";
    static const char want[] =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hi\"},"
        "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"nb:blob:0\"}},"
        "{\"inline_data\":{\"data\":\"nb:blob:1\",\"mime_type\":\"image/jpeg\"}}]}}]}";
    result res;
    scan_all_ways(body, sizeof body - 1, 0, ABORT_NONE, 0, &res, __LINE__);
    CHECK_EQ_I(res.rc, NB_SCAN_OK);
    CHECK_STR(res.skel.p, want);
    CHECK_EQ_U(res.nblobs, 2);
    CHECK_MEM(res.r.blob[0].p, res.r.blob[0].len, "ABC", 3);
    CHECK_MEM(res.r.blob[1].p, res.r.blob[1].len, "DEFG", 4);
    result_free(&res);
}

static void test_many_blobs(void)
{
    /* more than ten blobs: two-digit placeholders */
    buf body = {0}, want = {0};
    int k;
    nb_scan *s = nb_scan_new(NULL, (size_t)-1); /* no sink; no real limit */
    size_t sl;
    const char *sk;
    buf_str(&body, "[");
    buf_str(&want, "[");
    for (k = 0; k < 12; k++) {
        char tmp[64];
        buf_str(&body, k ? ",{\"inlineData\":{\"data\":\"QUJD\"}}" : "{\"inlineData\":{\"data\":\"QUJD\"}}");
        sprintf(tmp, "%s{\"inlineData\":{\"data\":\"nb:blob:%d\"}}", k ? "," : "", k);
        buf_str(&want, tmp);
    }
    buf_str(&body, "]");
    buf_str(&want, "]");
    CHECK(s != NULL);
    CHECK_EQ_I(nb_scan_feed(s, body.p, body.len), NB_SCAN_OK);
    CHECK_EQ_I(nb_scan_finish(s), NB_SCAN_OK);
    CHECK_EQ_U(nb_scan_blob_count(s), 12);
    sk = nb_scan_skeleton(s, &sl);
    CHECK_MEM(sk, sl, want.p, want.len);
    CHECK_STR(sk, want.p); /* NUL-terminated too */
    nb_scan_free(s);
    nb_scan_free(NULL);
    buf_free(&body);
    buf_free(&want);
}

/* base64 with JSON escapes: "\/" "\u002F" "\u002f" "\n" "\r" all decode */
static void test_escaped_base64(void)
{
    size_t len = 600, k, nslash = 0;
    uint8_t *raw = random_bytes(len);
    char *enc;
    buf body = {0};
    result res;

    for (k = 0; k < len; k += 7) /* make sure there are plenty of '/' */
        raw[k] = 0xff;
    enc = b64(raw, len);
    buf_str(&body, "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"");
    for (k = 0; enc[k]; k++) {
        if (enc[k] == '/') {
            static const char *const forms[] = {"\\/", "\\u002F", "\\u002f", "/"};
            buf_str(&body, forms[nslash++ % 4]);
        } else if (enc[k] == 'A') {
            buf_str(&body, "\\u0041");
        } else {
            buf_add(&body, enc + k, 1);
        }
        if (k % 64 == 63)
            buf_str(&body, k % 128 == 127 ? "\\r\\n" : "\\n");
    }
    buf_str(&body, "\"}}");
    CHECK(nslash > 20);
    scan_all_ways(body.p, body.len, 0, ABORT_NONE, 0, &res, __LINE__);
    CHECK_EQ_I(res.rc, NB_SCAN_OK);
    CHECK_EQ_U(res.nblobs, 1);
    CHECK_MEM(res.r.blob[0].p, res.r.blob[0].len, raw, len);
    CHECK_STR(res.skel.p, "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"nb:blob:0\"}}");
    result_free(&res);

    /* the tiny literal version */
    {
        static const char b2[] = "{\"inlineData\":{\"data\":\"\\/\\/\\/\\u002F\\n\"}}";
        scan_all_ways(b2, sizeof b2 - 1, 0, ABORT_NONE, 0, &res, __LINE__);
        CHECK_EQ_I(res.rc, NB_SCAN_OK);
        CHECK_MEM(res.r.blob[0].p, res.r.blob[0].len, "\xff\xff\xff", 3);
        result_free(&res);
    }
    buf_free(&body);
    free(raw);
    free(enc);
}

typedef struct {
    const char *body;
    size_t len; /* 0: strlen(body) */
    int rc;
    uint64_t off;
    const char *msg;
    int line;
} bad_case;

#define BADC(body, rc, off, msg) {body, 0, rc, off, msg, __LINE__}
#define BADN(body, len, rc, off, msg) {body, len, rc, off, msg, __LINE__}

static const bad_case bad_cases[] = {
    /* structure */
    BADC("{\"a\":1 \"b\":2}", NB_SCAN_EJSON, 7, "expected ',' or '}'"),
    BADC("[1 2]", NB_SCAN_EJSON, 3, "expected ',' or ']'"),
    BADC("{\"a\":1]", NB_SCAN_EJSON, 6, "expected ',' or '}'"),
    BADC("{\"a\":1,}", NB_SCAN_EJSON, 7, "expected key"),
    BADC("[1,2,]", NB_SCAN_EJSON, 5, "expected value"),
    BADC("{\"a\" 1}", NB_SCAN_EJSON, 5, "expected ':'"),
    BADC("{1:2}", NB_SCAN_EJSON, 1, "expected key or '}'"),
    BADC("[}", NB_SCAN_EJSON, 1, "expected value or ']'"),
    BADC("]", NB_SCAN_EJSON, 0, "expected value"),
    BADC("{\"a\":}", NB_SCAN_EJSON, 5, "expected value"),
    BADC("\xef\xbb\xbf{}", NB_SCAN_EJSON, 0, "expected value"),
    /* literals */
    BADC("[tru]", NB_SCAN_EJSON, 4, "invalid literal"),
    BADC("[trux]", NB_SCAN_EJSON, 4, "invalid literal"),
    BADC("[nulL]", NB_SCAN_EJSON, 4, "invalid literal"),
    BADC("{\"a\":falsy}", NB_SCAN_EJSON, 9, "invalid literal"),
    BADC("[True]", NB_SCAN_EJSON, 1, "expected value or ']'"),
    BADC("[truex]", NB_SCAN_EJSON, 5, "expected ',' or ']'"),
    /* numbers */
    BADC("[01]", NB_SCAN_EJSON, 2, "invalid number"),
    BADC("[-01]", NB_SCAN_EJSON, 3, "invalid number"),
    BADC("[1.]", NB_SCAN_EJSON, 3, "invalid number"),
    BADC("[-]", NB_SCAN_EJSON, 2, "invalid number"),
    BADC("[1e]", NB_SCAN_EJSON, 3, "invalid number"),
    BADC("[1.5e+]", NB_SCAN_EJSON, 6, "invalid number"),
    BADC("[1.e5]", NB_SCAN_EJSON, 3, "invalid number"),
    BADC("[-a]", NB_SCAN_EJSON, 2, "invalid number"),
    BADC("[.5]", NB_SCAN_EJSON, 1, "expected value or ']'"),
    BADC("[+1]", NB_SCAN_EJSON, 1, "expected value or ']'"),
    BADC("[1.5.3]", NB_SCAN_EJSON, 4, "expected ',' or ']'"),
    BADC("[0x1]", NB_SCAN_EJSON, 2, "expected ',' or ']'"),
    /* strings */
    BADC("[\"a\tb\"]", NB_SCAN_EJSON, 3, "control character in string"),
    BADC("{\"a\nb\":1}", NB_SCAN_EJSON, 3, "control character in string"),
    BADC("[\"a\\xb\"]", NB_SCAN_EJSON, 4, "invalid escape"),
    BADC("[\"\\u12G4\"]", NB_SCAN_EJSON, 6, "invalid \\u escape"),
    BADC("[\"\\u12\"]", NB_SCAN_EJSON, 6, "invalid \\u escape"),
    BADC("{'a':1}", NB_SCAN_EJSON, 1, "expected key or '}'"),
    /* top level */
    BADC("{} {}", NB_SCAN_EJSON, 3, "expected end of body"),
    BADC("1 2", NB_SCAN_EJSON, 2, "expected end of body"),
    BADC("{}x", NB_SCAN_EJSON, 2, "expected end of body"),
    BADC("\"a\"\"b\"", NB_SCAN_EJSON, 3, "expected end of body"),
    BADN("[]\n\0", 4, NB_SCAN_EJSON, 3, "expected end of body"),
    BADN("[\"a\0\"]", 6, NB_SCAN_EJSON, 3, "control character in string"),
    BADN("{\"inlineData\":{\"data\":\"QU\0\"}}", 29, NB_SCAN_EJSON, 25,
         "control character in string"),
    /* truncation: reported by nb_scan_finish at the end of the body */
    BADC("", NB_SCAN_ETRUNC, 0, "unexpected end of body"),
    BADC(" \r\n\t", NB_SCAN_ETRUNC, 4, "unexpected end of body"),
    BADC("{\"a\":\"abc", NB_SCAN_ETRUNC, 9, "unexpected end of body"),
    BADC("{\"a\":\"abc\\", NB_SCAN_ETRUNC, 10, "unexpected end of body"),
    BADC("[\"\\u00", NB_SCAN_ETRUNC, 6, "unexpected end of body"),
    BADC("{\"a\":1", NB_SCAN_ETRUNC, 6, "unexpected end of body"),
    BADC("{\"a\"", NB_SCAN_ETRUNC, 4, "unexpected end of body"),
    BADC("[1,", NB_SCAN_ETRUNC, 3, "unexpected end of body"),
    BADC("nul", NB_SCAN_ETRUNC, 3, "unexpected end of body"),
    BADC("-", NB_SCAN_ETRUNC, 1, "unexpected end of body"),
    BADC("1.", NB_SCAN_ETRUNC, 2, "unexpected end of body"),
    BADC("1e+", NB_SCAN_ETRUNC, 3, "unexpected end of body"),
    BADC("{\"inlineData\":{\"data\":\"QUJD", NB_SCAN_ETRUNC, 27, "unexpected end of body"),
    /* blob strings: offsets of the bad base64 char / escape in the body */
    BADC("{\"inlineData\":{\"data\":\"QUJD!EFG\"}}", NB_SCAN_EBASE64, 27,
         "invalid base64 character"),
    BADC("{\"inlineData\":{\"data\":\"QUJD\xc3\xa9\"}}", NB_SCAN_EBASE64, 27,
         "invalid base64 character"),
    BADC("{\"inline_data\":{\"data\":\"QUJDREVG  \"}}", NB_SCAN_EBASE64, 32,
         "invalid base64 character"),
    BADC("{\"inlineData\":{\"data\":\"QUJD\\tEFG\"}}", NB_SCAN_EBASE64, 27,
         "invalid escape in base64 data"),
    BADC("{\"inlineData\":{\"data\":\"QU\\\"JD\"}}", NB_SCAN_EBASE64, 25,
         "invalid escape in base64 data"),
    BADC("{\"inlineData\":{\"data\":\"QU\\\\JD\"}}", NB_SCAN_EBASE64, 25,
         "invalid escape in base64 data"),
    BADC("{\"inlineData\":{\"data\":\"QUJD\\u00e9\"}}", NB_SCAN_EBASE64, 27,
         "invalid base64 character"),
    BADC("{\"inlineData\":{\"data\":\"QUJD\\u002A\"}}", NB_SCAN_EBASE64, 27,
         "invalid base64 character"),
    BADC("{\"inlineData\":{\"data\":\"QUJD\\u003D\"}}", NB_SCAN_EBASE64, 27,
         "unexpected padding"),
    BADC("{\"inlineData\":{\"data\":\"QUJDR\"}}", NB_SCAN_EBASE64, 28,
         "truncated base64 data"),
    BADC("{\"inlineData\":{\"data\":\"QQ=\"}}", NB_SCAN_EBASE64, 26, "incomplete padding"),
    BADC("{\"inlineData\":{\"data\":\"QQ==QQ==\"}}", NB_SCAN_EBASE64, 27,
         "data after padding"),
    BADC("{\"inlineData\":{\"data\":\"QUJD\\xEFG\"}}", NB_SCAN_EJSON, 28, "invalid escape"),
    BADC("{\"inlineData\":{\"data\":\"QUJD\\u00G0\"}}", NB_SCAN_EJSON, 31,
         "invalid \\u escape"),
    BADC("{\"inlineData\":{\"data\":\"QU\nJD\"}}", NB_SCAN_EJSON, 25,
         "control character in string"),
    BADC("{\"inlineData\":{\"data\":\"QU\rJD\"}}", NB_SCAN_EJSON, 25,
         "control character in string"),
    /* the first error wins: bad base64 before bad JSON after it */
    BADC("{\"inlineData\":{\"data\":\"Q!\"}} x", NB_SCAN_EBASE64, 24,
         "invalid base64 character"),
};

static void test_bad_inputs(void)
{
    size_t k;
    for (k = 0; k < sizeof bad_cases / sizeof bad_cases[0]; k++) {
        const bad_case *c = &bad_cases[k];
        size_t n = c->len ? c->len : strlen(c->body);
        result res;
        scan_all_ways(c->body, n, 0, ABORT_NONE, 0, &res, c->line);
        if (res.rc != c->rc || res.off != c->off || !res.msg || strcmp(res.msg, c->msg) != 0) {
            fprintf(stderr, "%s:%d: want %d \"%s\" at %llu, got %d \"%s\" at %llu\n",
                    __FILE__, c->line, c->rc, c->msg, (unsigned long long)c->off, res.rc,
                    res.msg ? res.msg : "(null)", (unsigned long long)res.off);
            check_failures++;
        }
        check_count++;
        result_free(&res);
    }
}

static void test_depth(void)
{
    char *body = (char *)malloc(1200);
    result res;
    size_t zero = 0;
    memset(body, '[', 600);
    run(body, 600, 0, &zero, 1, ABORT_NONE, 0, &res);
    CHECK_EQ_I(res.rc, NB_SCAN_ELIMIT);
    CHECK_EQ_U(res.off, 512);
    CHECK_STR(res.msg, "nesting too deep");
    result_free(&res);

    /* objects count too */
    {
        buf b = {0};
        int k;
        for (k = 0; k < 600; k++)
            buf_str(&b, "{\"a\":");
        run(b.p, b.len, 0, &zero, 1, ABORT_NONE, 0, &res);
        CHECK_EQ_I(res.rc, NB_SCAN_ELIMIT);
        CHECK_EQ_U(res.off, 512 * 5);
        result_free(&res);
        buf_free(&b);
    }

    /* exactly 512 levels are fine */
    memset(body, '[', 512);
    memset(body + 512, ']', 512);
    run(body, 1024, 0, &zero, 1, ABORT_NONE, 0, &res);
    CHECK_EQ_I(res.rc, NB_SCAN_OK);
    CHECK_MEM(res.skel.p, res.skel.len, body, 1024);
    result_free(&res);
    free(body);
}

static void test_sink_abort(void)
{
    static const char body[] =
        "[{\"inlineData\":{\"data\":\"QUJD\"}},{\"inlineData\":{\"data\":\"REVG\"}}]";
    /* offsets: first blob's quotes at 23 and 28, second's at 54 and 59 */
    result res;

    scan_all_ways(body, sizeof body - 1, 0, ABORT_BEGIN, 0, &res, __LINE__);
    CHECK_EQ_I(res.rc, NB_SCAN_ESINK);
    CHECK_STR(res.msg, "aborted by sink");
    CHECK_EQ_U(res.off, 23);
    CHECK_EQ_U(res.r.nbegin, 1);
    CHECK_EQ_U(res.r.ndata, 0);
    result_free(&res);

    scan_all_ways(body, sizeof body - 1, 0, ABORT_DATA, 0, &res, __LINE__);
    CHECK_EQ_I(res.rc, NB_SCAN_ESINK);
    CHECK_STR(res.msg, "aborted by sink");
    CHECK_EQ_U(res.off, 28);
    CHECK_EQ_U(res.r.nend, 0);
    result_free(&res);

    scan_all_ways(body, sizeof body - 1, 0, ABORT_END, 1, &res, __LINE__);
    CHECK_EQ_I(res.rc, NB_SCAN_ESINK);
    CHECK_STR(res.msg, "aborted by sink");
    CHECK_EQ_U(res.off, 59);
    CHECK_EQ_U(res.r.nend, 2);
    CHECK_MEM(res.r.blob[1].p, res.r.blob[1].len, "DEF", 3);
    result_free(&res);

    /* aborting in the middle of a big blob */
    {
        size_t len = 200000, sizes[1] = {4096};
        uint8_t *raw = random_bytes(len);
        char *enc = b64(raw, len);
        buf b = {0};
        buf_str(&b, "{\"inlineData\":{\"data\":\"");
        buf_str(&b, enc);
        buf_str(&b, "\"}}");
        run(b.p, b.len, 0, sizes, 1, ABORT_DATA, 0, &res);
        CHECK_EQ_I(res.rc, NB_SCAN_ESINK);
        CHECK_EQ_U(res.r.ndata, 1);
        CHECK(res.off > 23 && res.off < 23 + 4 * 65536 / 3 + 16384);
        CHECK_EQ_U(res.r.nend, 0);
        result_free(&res);
        buf_free(&b);
        free(raw);
        free(enc);
    }
}

static void test_max_skeleton(void)
{
    static const char body[] = "{\"a\":\"0123456789\"}"; /* 18 bytes */
    static const char body2[] = "{\"a\":\"0123456789\"} x";
    static const char blob[] = "{\"inlineData\":{\"data\":\"QUJD\"}}"; /* skeleton: 35 */
    result res;

    scan_all_ways(body, sizeof body - 1, 18, ABORT_NONE, 0, &res, __LINE__);
    CHECK_EQ_I(res.rc, NB_SCAN_OK);
    CHECK_STR(res.skel.p, body);
    result_free(&res);

    scan_all_ways(body, sizeof body - 1, 17, ABORT_NONE, 0, &res, __LINE__);
    CHECK_EQ_I(res.rc, NB_SCAN_ELIMIT);
    CHECK_EQ_U(res.off, 17);
    CHECK_STR(res.msg, "response skeleton too large");
    result_free(&res);

    /* the limit is hit before the later syntax error, so it wins */
    scan_all_ways(body2, sizeof body2 - 1, 10, ABORT_NONE, 0, &res, __LINE__);
    CHECK_EQ_I(res.rc, NB_SCAN_ELIMIT);
    CHECK_EQ_U(res.off, 10);
    result_free(&res);

    /* the placeholder counts, not the base64 text */
    scan_all_ways(blob, sizeof blob - 1, 35, ABORT_NONE, 0, &res, __LINE__);
    CHECK_EQ_I(res.rc, NB_SCAN_OK);
    CHECK_STR(res.skel.p, "{\"inlineData\":{\"data\":\"nb:blob:0\"}}");
    result_free(&res);
    scan_all_ways(blob, sizeof blob - 1, 34, ABORT_NONE, 0, &res, __LINE__);
    CHECK_EQ_I(res.rc, NB_SCAN_ELIMIT);
    CHECK_EQ_U(res.off, 29); /* the last '}' */
    result_free(&res);
    scan_all_ways(blob, sizeof blob - 1, 32, ABORT_NONE, 0, &res, __LINE__);
    CHECK_EQ_I(res.rc, NB_SCAN_ELIMIT);
    CHECK_EQ_U(res.off, 27); /* the placeholder, at the closing quote */
    result_free(&res);

    /* a skeleton that grows well past the initial capacity */
    {
        buf b = {0};
        int k;
        buf_str(&b, "[");
        for (k = 0; k < 20000; k++)
            buf_str(&b, k ? ",\"abcdefgh\"" : "\"abcdefgh\"");
        buf_str(&b, "]");
        run(b.p, b.len, 0, (const size_t[]){1000}, 1, ABORT_NONE, 0, &res);
        CHECK_EQ_I(res.rc, NB_SCAN_OK);
        CHECK_MEM(res.skel.p, res.skel.len, b.p, b.len);
        result_free(&res);
        buf_free(&b);
    }
}

static void test_reset(void)
{
    static const char two[] =
        "[{\"inlineData\":{\"data\":\"QUJD\"}},{\"inlineData\":{\"data\":\"REVG\"}}]";
    static const char one[] = "{\"inlineData\":{\"data\":\"R0hJ\"}}";
    rec r;
    nb_scan_sink sink;
    nb_scan *s;
    size_t sl;
    uint64_t off = 7;

    rec_init(&r, ABORT_NONE, 0);
    sink.blob_begin = rec_begin;
    sink.blob_data = rec_data;
    sink.blob_end = rec_end;
    sink.ud = &r;
    s = nb_scan_new(&sink, 0);
    CHECK(nb_scan_error(s, &off) == NULL);
    CHECK_EQ_U(off, 7);
    CHECK_EQ_I(nb_scan_feed(s, two, sizeof two - 1), NB_SCAN_OK);
    CHECK_EQ_I(nb_scan_finish(s), NB_SCAN_OK);
    CHECK_EQ_U(nb_scan_blob_count(s), 2);

    nb_scan_reset(s);
    CHECK_EQ_U(nb_scan_blob_count(s), 0);
    CHECK_EQ_U((nb_scan_skeleton(s, &sl), sl), 0);
    rec_free(&r);
    rec_init(&r, ABORT_NONE, 0);
    CHECK_EQ_I(nb_scan_feed(s, one, sizeof one - 1), NB_SCAN_OK);
    CHECK_EQ_I(nb_scan_finish(s), NB_SCAN_OK);
    CHECK_EQ_U(nb_scan_blob_count(s), 1);
    CHECK_STR(nb_scan_skeleton(s, &sl), "{\"inlineData\":{\"data\":\"nb:blob:0\"}}");
    CHECK_EQ_U(r.nbegin, 1);
    CHECK_MEM(r.blob[0].p, r.blob[0].len, "GHI", 3);

    /* an error is cleared by reset; offsets restart at 0 */
    nb_scan_reset(s);
    CHECK_EQ_I(nb_scan_feed(s, "[1,", 3), NB_SCAN_OK);
    CHECK_EQ_I(nb_scan_feed(s, "x", 1), NB_SCAN_EJSON);
    CHECK_EQ_I(nb_scan_feed(s, "2]", 2), NB_SCAN_EJSON);
    CHECK_EQ_I(nb_scan_finish(s), NB_SCAN_EJSON);
    CHECK_STR(nb_scan_error(s, &off), "expected value");
    CHECK_EQ_U(off, 3);
    nb_scan_reset(s);
    CHECK(nb_scan_error(s, NULL) == NULL);
    CHECK_EQ_I(nb_scan_feed(s, " [", 2), NB_SCAN_OK);
    CHECK_EQ_I(nb_scan_feed(s, "", 0), NB_SCAN_OK);
    CHECK_EQ_I(nb_scan_feed(s, "x", 1), NB_SCAN_EJSON);
    CHECK_STR(nb_scan_error(s, &off), "expected value or ']'");
    CHECK_EQ_U(off, 2);

    /* a top-level number only ends at finish */
    nb_scan_reset(s);
    CHECK_EQ_I(nb_scan_feed(s, "12", 2), NB_SCAN_OK);
    CHECK_EQ_I(nb_scan_feed(s, "3.5e7", 5), NB_SCAN_OK);
    CHECK_EQ_I(nb_scan_finish(s), NB_SCAN_OK);
    CHECK_STR(nb_scan_skeleton(s, &sl), "123.5e7");
    nb_scan_free(s);
    rec_free(&r);
}

/* bodies that must pass through unchanged, without blobs */
static void test_passthrough(void)
{
    static const char *const bodies[] = {
        "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted (e.g. check "
        "quota).\",\"status\":\"RESOURCE_EXHAUSTED\"}}",
        "[{\n  \"error\": {\n    \"code\": 400,\n    \"message\": \"Request contains an invalid "
        "argument.\",\n    \"status\": \"INVALID_ARGUMENT\",\n    \"details\": [{\"@type\": "
        "\"type.googleapis.com/google.rpc.BadRequest\", \"fieldViolations\": [{\"field\": "
        "\"contents[0]\", \"description\": \"x\\u0041\\\\\\\"\"}]}]\n  }\n}\n]\n",
        "{\"x\":{\"data\":\"QUJD\"}}",
        "{\"data\":\"QUJD\",\"inlineData\":{}}",
        "{\"inlineData\":{\"nested\":{\"data\":\"QUJD\"}}}",
        "{\"inlineData\":[{\"data\":\"QUJD\"}]}",
        "{\"inlineData\":{\"data\":{\"data\":\"QUJD\"}}}",
        "{\"inlineData\":\"x\",\"data\":\"QUJD\"}",
        "{\"inlineData\":{\"mimeType\":\"image/png\"},\"data\":\"QUJD\"}",
        "{\"inlineData\":{\"data\":null}}",
        "{\"inlineData\":{\"data\":123}}",
        "{\"inlineData\":{\"data\":-0.5e-7}}",
        "{\"inlineData\":{\"data\":true}}",
        "{\"inlineData\":{\"data\":[\"QUJD\"]}}",
        "{\"InlineData\":{\"data\":\"QUJD\"}}",
        "{\"inlineData\":{\"Data\":\"QUJD\"}}",
        "{\"inlineDataXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\":{\"data\":\"QUJD\"}}",
        "{\"inlineData\":{\"dataXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\":\"Q\"}}",
        "{\"inline\\u00c4ata\":{\"data\":\"QUJD\"}}",
        "{\"a\":[1,-0,0.5,1e5,1E-5,-2.5e+10,true,false,null,\"\",{},[],\"\\u00e9\\\"\"]}",
        "  {\"utf8\": \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x8d\x8c\"}  \r\n",
        "\"just a string\"",
        "0",
        "-12.5E-3",
        "null",
        "[]",
    };
    size_t k;
    for (k = 0; k < sizeof bodies / sizeof bodies[0]; k++) {
        result res;
        size_t n = strlen(bodies[k]);
        scan_all_ways(bodies[k], n, 0, ABORT_NONE, 0, &res, __LINE__);
        if (res.rc != NB_SCAN_OK || res.nblobs != 0 || res.r.nbegin != 0 ||
            res.skel.len != n || memcmp(res.skel.p, bodies[k], n) != 0) {
            fprintf(stderr, "%s:%d: passthrough #%zu failed: rc=%d blobs=%u skel=%s\n",
                    __FILE__, __LINE__, k, res.rc, res.nblobs, res.skel.p ? res.skel.p : "");
            check_failures++;
        }
        check_count++;
        result_free(&res);
    }
}

/* keys are matched after unescaping, and may be split across chunks */
static void test_key_forms(void)
{
    static const char body[] =
        "{\"inline\\u0044ata\" : { \"d\\u0061ta\" : \"QUJD\" } , \"x\":{\"inline_data\":"
        "{\"data\"\n:\n\"\" }}}";
    static const char want[] =
        "{\"inline\\u0044ata\" : { \"d\\u0061ta\" : \"nb:blob:0\" } , \"x\":{\"inline_data\":"
        "{\"data\"\n:\n\"nb:blob:1\" }}}";
    result res;
    scan_all_ways(body, sizeof body - 1, 0, ABORT_NONE, 0, &res, __LINE__);
    CHECK_EQ_I(res.rc, NB_SCAN_OK);
    CHECK_STR(res.skel.p, want);
    CHECK_EQ_U(res.nblobs, 2);
    CHECK_MEM(res.r.blob[0].p, res.r.blob[0].len, "ABC", 3);
    CHECK_EQ_U(res.r.blob[1].len, 0); /* an empty string is an empty blob */
    CHECK_EQ_U(res.r.nend, 2);
    result_free(&res);
}

/* random garbage and random mutations of a valid body: no crash, and all
 * chunkings agree */
static void test_fuzz(void)
{
    static const char seed[] =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\\\"b\"},"
        "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"QUJDREVG\\/\\u0041A==\"}}]}}],"
        "\"n\":-1.5e3,\"t\":true}";
    static const char alphabet[] = "{}[]\",:\\/ 0123456789.-+eEtrufalsn\nuAQ=inlineData";
    int iter, bad = 0;
    for (iter = 0; iter < 3000; iter++) {
        char body[sizeof seed];
        size_t n = sizeof seed - 1, k, sizes[3];
        int muts = 1 + (int)(rnd() % 3), m;
        result a, b;
        memcpy(body, seed, sizeof seed);
        for (m = 0; m < muts; m++) {
            size_t at = rnd() % n;
            body[at] = (rnd() % 4 == 0) ? (char)(rnd() & 0xff)
                                        : alphabet[rnd() % (sizeof alphabet - 1)];
        }
        if (rnd() % 8 == 0)
            n = rnd() % n;
        for (k = 0; k < 3; k++)
            sizes[k] = 1 + rnd() % 20;
        run(body, n, 0, (const size_t[]){0}, 1, ABORT_NONE, 0, &a);
        run(body, n, 0, sizes, 3, ABORT_NONE, 0, &b);
        if (!same(&a, &b) || (a.rc != NB_SCAN_OK && a.msg == NULL) || a.off > n)
            bad++;
        result_free(&a);
        result_free(&b);
    }
    CHECK_EQ_I(bad, 0);
}

int main(void)
{
    test_response();
    test_literal_skeleton();
    test_many_blobs();
    test_escaped_base64();
    test_bad_inputs();
    test_depth();
    test_sink_abort();
    test_max_skeleton();
    test_reset();
    test_passthrough();
    test_key_forms();
    test_fuzz();
    return check_done();
}
