/*
 * test_b64.c - base64 encoder / strict chunk-fed decoder.
 *
 * All output buffers are malloc'd at exactly the size b64.h promises is
 * enough, so an overrun is caught by ASan / valgrind.
 */
#include "b64.h"
#define CHECK_RNG_SEED 0x9E3779B97F4A7C15ull
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */


typedef struct {
    int rc;
    uint8_t *out;
    size_t len;
    uint64_t err_offset;
    const char *err;
} dec_result;

static void dec_result_free(dec_result *r)
{
    free(r->out);
    r->out = NULL;
}

/* One-shot decode through nb_b64_decode with an exact-size buffer. */
static dec_result dec_oneshot(const char *in, size_t n)
{
    dec_result r;
    uint8_t *buf = (uint8_t *)malloc(nb_b64_decoded_max(n) + 3);
    r.err_offset = 0;
    r.err = NULL;
    r.rc = nb_b64_decode(in, n, buf, &r.len, &r.err_offset, &r.err);
    r.out = buf;
    return r;
}

/* Streaming decode; chunk sizes come from sizes[] (cycled, 0 = rest).
 * Every update gets its own exact-size buffer. */
static dec_result dec_chunks(const char *in, size_t n, const size_t *sizes, size_t nsizes)
{
    dec_result r;
    nb_b64_dec st;
    size_t pos = 0, k = 0, got;
    uint8_t *acc = (uint8_t *)malloc(nb_b64_decoded_max(n) + 3 + 16);
    r.len = 0;
    r.rc = 0;
    r.err_offset = 0;
    r.err = NULL;
    nb_b64_dec_init(&st);
    while (pos < n) {
        size_t c = sizes[k++ % nsizes];
        uint8_t *buf;
        if (c == 0 || c > n - pos)
            c = n - pos;
        buf = (uint8_t *)malloc(nb_b64_decoded_max(c) + 3);
        r.rc = nb_b64_dec_update(&st, in + pos, c, buf, &got);
        memcpy(acc + r.len, buf, got);
        r.len += got;
        free(buf);
        pos += c;
        if (r.rc)
            break;
    }
    if (r.rc == 0) {
        uint8_t *buf = (uint8_t *)malloc(2);
        r.rc = nb_b64_dec_final(&st, buf, &got);
        memcpy(acc + r.len, buf, got);
        r.len += got;
        free(buf);
    }
    if (r.rc) {
        r.err_offset = st.err_offset;
        r.err = st.err;
    }
    r.out = acc;
    return r;
}

static int same_result(const dec_result *a, const dec_result *b)
{
    if (a->rc != b->rc)
        return 0;
    if (a->rc == 0)
        return a->len == b->len && memcmp(a->out, b->out, a->len) == 0;
    /* on error: same place, same message, same bytes decoded before it */
    return a->err_offset == b->err_offset && strcmp(a->err, b->err) == 0 &&
           a->len == b->len && memcmp(a->out, b->out, a->len) == 0;
}

/* Feeds every two-chunk split and one char at a time; all must agree with
 * the one-shot result. Returns the number of disagreements. */
static int splits_agree(const char *in, size_t n)
{
    dec_result ref = dec_oneshot(in, n), r;
    size_t k, one = 1;
    int bad = 0;
    for (k = 0; k <= n; k++) {
        size_t sizes[2];
        sizes[0] = k;
        sizes[1] = 0;
        if (k == 0) { /* an empty first chunk, then the rest */
            nb_b64_dec st;
            size_t got = 0;
            uint8_t b3[3];
            nb_b64_dec_init(&st);
            if (nb_b64_dec_update(&st, in, 0, b3, &got) != 0 || got != 0)
                bad++;
        }
        r = dec_chunks(in, n, sizes, k == 0 ? 1 : 2);
        if (!same_result(&ref, &r)) {
            fprintf(stderr, "split at %zu of \"%.*s\" disagrees\n", k, (int)n, in);
            bad++;
        }
        dec_result_free(&r);
    }
    r = dec_chunks(in, n, &one, 1);
    if (!same_result(&ref, &r)) {
        fprintf(stderr, "one-char feeding of \"%.*s\" disagrees\n", (int)n, in);
        bad++;
    }
    dec_result_free(&r);
    dec_result_free(&ref);
    return bad;
}

#define S(lit) lit, sizeof(lit) - 1

static void check_ok(const char *in, size_t n, const char *want, size_t wantlen, int line)
{
    dec_result r = dec_oneshot(in, n);
    if (r.rc != 0 || r.len != wantlen || memcmp(r.out, want, wantlen) != 0) {
        fprintf(stderr, "%s:%d: decode of \"%.*s\" failed (rc=%d err=%s len=%zu)\n",
                __FILE__, line, (int)n, in, r.rc, r.err ? r.err : "-", r.len);
        check_failures++;
    }
    check_count++;
    CHECK_EQ_I(splits_agree(in, n), 0);
    dec_result_free(&r);
}

static void check_bad(const char *in, size_t n, uint64_t off, const char *msg,
                      size_t decoded_before, int line)
{
    dec_result r = dec_oneshot(in, n);
    check_count++;
    if (r.rc != -1 || r.err_offset != off || !r.err || strcmp(r.err, msg) != 0 ||
        r.len != decoded_before) {
        fprintf(stderr,
                "%s:%d: \"%.*s\": want error \"%s\" at %llu (%zu bytes before), "
                "got rc=%d \"%s\" at %llu (%zu bytes)\n",
                __FILE__, line, (int)n, in, msg, (unsigned long long)off, decoded_before,
                r.rc, r.err ? r.err : "-", (unsigned long long)r.err_offset, r.len);
        check_failures++;
    }
    CHECK_EQ_I(splits_agree(in, n), 0);
    dec_result_free(&r);
}

#define OK(in, want) check_ok(S(in), S(want), __LINE__)
#define BAD(in, off, msg, before) check_bad(S(in), off, msg, before, __LINE__)

/* ------------------------------------------------------------- tests */

static void test_sizes(void)
{
    CHECK_EQ_U(nb_b64_encoded_len(0), 0);
    CHECK_EQ_U(nb_b64_encoded_len(1), 4);
    CHECK_EQ_U(nb_b64_encoded_len(2), 4);
    CHECK_EQ_U(nb_b64_encoded_len(3), 4);
    CHECK_EQ_U(nb_b64_encoded_len(4), 8);
    CHECK_EQ_U(nb_b64_encoded_len(300), 400);
    CHECK_EQ_U(nb_b64_decoded_max(0), 0);
    CHECK_EQ_U(nb_b64_decoded_max(2), 1);
    CHECK_EQ_U(nb_b64_decoded_max(3), 2);
    CHECK_EQ_U(nb_b64_decoded_max(4), 3);
    CHECK_EQ_U(nb_b64_decoded_max(8), 6);
    CHECK_EQ_U(nb_b64_decoded_max(11), 8);
}

static const char *const rfc_plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const rfc_b64[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

static void test_rfc4648(void)
{
    size_t k;
    for (k = 0; k < sizeof rfc_plain / sizeof rfc_plain[0]; k++) {
        size_t pn = strlen(rfc_plain[k]), bn = strlen(rfc_b64[k]);
        char *enc = (char *)malloc(nb_b64_encoded_len(pn) + 1);
        size_t w = nb_b64_encode((const uint8_t *)rfc_plain[k], pn, enc);
        CHECK_MEM(enc, w, rfc_b64[k], bn);
        CHECK_EQ_U(w, nb_b64_encoded_len(pn));
        free(enc);
        check_ok(rfc_b64[k], bn, rfc_plain[k], pn, __LINE__);
    }
}

static void test_roundtrip_random(void)
{
    size_t len;
    int bad = 0;
    for (len = 0; len <= 300; len++) {
        int rep;
        for (rep = 0; rep < 4; rep++) {
            uint8_t *src = (uint8_t *)malloc(len + 1);
            char *enc = (char *)malloc(nb_b64_encoded_len(len) + 1);
            size_t k, w;
            dec_result r;
            for (k = 0; k < len; k++)
                src[k] = (uint8_t)rnd();
            w = nb_b64_encode(src, len, enc);
            if (w != nb_b64_encoded_len(len))
                bad++;
            r = dec_oneshot(enc, w);
            if (r.rc != 0 || r.len != len || (len && memcmp(r.out, src, len) != 0))
                bad++;
            dec_result_free(&r);
            /* the same with the URL-safe alphabet and no padding */
            for (k = 0; k < w; k++) {
                if (enc[k] == '+')
                    enc[k] = '-';
                else if (enc[k] == '/')
                    enc[k] = '_';
            }
            while (w > 0 && enc[w - 1] == '=')
                w--;
            r = dec_oneshot(enc, w);
            if (r.rc != 0 || r.len != len || (len && memcmp(r.out, src, len) != 0))
                bad++;
            dec_result_free(&r);
            /* random chunking */
            {
                size_t sizes[5];
                for (k = 0; k < 5; k++)
                    sizes[k] = 1 + rnd() % 37;
                r = dec_chunks(enc, w, sizes, 5);
                if (r.rc != 0 || r.len != len || (len && memcmp(r.out, src, len) != 0))
                    bad++;
                dec_result_free(&r);
            }
            free(src);
            free(enc);
        }
    }
    CHECK_EQ_I(bad, 0);
}

static void test_splits(void)
{
    static const char *const inputs[] = {
        "Zm9vYmFy",
        "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsu",
        "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsuIQ==",
        "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsuIT8=",
        "TWFueSBoYW5k\r\ncyBtYWtlIGxp\nZ2h0IHdvcmsuIQ=\r\n=\r\n",
        "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsuIT8",
        "TWFueSBoYW5kcyBtYWtl!GxpZ2h0IHdvcmsu",
        "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsuIQ==QQ",
        "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsuI",
        "-_-_TWFu_-__",
        "\r\n\r\n",
    };
    size_t k;
    for (k = 0; k < sizeof inputs / sizeof inputs[0]; k++)
        CHECK_EQ_I(splits_agree(inputs[k], strlen(inputs[k])), 0);
}

static void test_crlf(void)
{
    OK("Zm9v\r\nYmFy", "foobar");
    OK("Z\nm\r9\nv", "foo");
    OK("\r\n", "");
    OK("Zg==\n", "f");
    OK("Zg=\r\n=", "f");
    OK("Zm8=\r\n", "fo");
    OK("\nZm9vYg", "foob");
    BAD("Zm9v\tYmFy", 4, "invalid base64 character", 3);
    BAD("Zm9v YmFy", 4, "invalid base64 character", 3);
}

static void test_url_safe(void)
{
    OK("-_-_", "\xfb\xff\xbf");
    OK("+/+/", "\xfb\xff\xbf");
    OK("-/+_", "\xfb\xff\xbf");
    OK("_w==", "\xff");
    OK("_w", "\xff");
    OK("AAAA-_8-", "\x00\x00\x00\xfb\xff\x3e");
}

static void test_unpadded(void)
{
    OK("Zg", "f");
    OK("Zm8", "fo");
    OK("Zm9vYg", "foob");
    OK("Zm9vYmE", "fooba");
}

static void test_invalid(void)
{
    BAD("Zm9v!mFy", 4, "invalid base64 character", 3);
    BAD("Zm9vYmFyZm9vYmFy\x80", 16, "invalid base64 character", 12);
    BAD("Zm9vYmFyZm9vYm\"y", 14, "invalid base64 character", 9);
    BAD("Z\0m9", 1, "invalid base64 character", 0);
    /* '=' in the middle */
    BAD("Zg==Zm9v", 4, "data after padding", 1);
    BAD("Zm=9v", 3, "data after padding", 1);
    BAD("Z=", 1, "unexpected padding", 0);
    BAD("=Zg", 0, "unexpected padding", 0);
    BAD("Zm9v=", 4, "unexpected padding", 3);
    BAD("Zm9vZ=", 5, "unexpected padding", 3);
    /* dangling single char: reported at the end of the stream */
    BAD("A", 1, "truncated base64 data", 0);
    BAD("Zm9vY", 5, "truncated base64 data", 3);
    BAD("Zm9vY\r\n", 7, "truncated base64 data", 3);
    /* padding rules */
    BAD("AB=C", 3, "data after padding", 1);
    BAD("AA===", 4, "too much padding", 1);
    BAD("AAA==", 4, "too much padding", 2);
    BAD("AA=", 3, "incomplete padding", 1);
    BAD("AA=\n", 4, "incomplete padding", 1);
    BAD("Zm8=Zm8=", 4, "data after padding", 2);
    BAD("Zg==\nZ", 5, "data after padding", 1);
    BAD("Zm9vYg==Zg==", 8, "data after padding", 4);
}

static void test_sticky_error(void)
{
    nb_b64_dec st;
    uint8_t out[16];
    size_t got = 99;
    nb_b64_dec_init(&st);
    CHECK_EQ_I(nb_b64_dec_update(&st, "Zm9v*", 5, out, &got), -1);
    CHECK_EQ_U(got, 3);
    CHECK_EQ_U(st.err_offset, 4);
    CHECK_STR(st.err, "invalid base64 character");
    CHECK_EQ_I(nb_b64_dec_update(&st, "Zm9v", 4, out, &got), -1);
    CHECK_EQ_U(got, 0);
    CHECK_EQ_I(nb_b64_dec_final(&st, out, &got), -1);
    CHECK_EQ_U(st.err_offset, 4);
    /* NULL err pointers are accepted by the one-shot decoder */
    CHECK_EQ_I(nb_b64_decode("Zm9v*", 5, out, &got, NULL, NULL), -1);
    CHECK_EQ_U(got, 3);
}

/* A long input with MIME line breaks decoded in many random chunkings. */
static void test_long_chunked(void)
{
    size_t len = 100000, k, w, m = 0;
    uint8_t *src = (uint8_t *)malloc(len);
    char *enc = (char *)malloc(nb_b64_encoded_len(len));
    char *mime = (char *)malloc(nb_b64_encoded_len(len) * 2);
    int rep, bad = 0;
    for (k = 0; k < len; k++)
        src[k] = (uint8_t)rnd();
    w = nb_b64_encode(src, len, enc);
    for (k = 0; k < w; k++) {
        mime[m++] = enc[k];
        if (k % 76 == 75) {
            mime[m++] = '\r';
            mime[m++] = '\n';
        }
    }
    for (rep = 0; rep < 20; rep++) {
        size_t sizes[7];
        dec_result r;
        for (k = 0; k < 7; k++)
            sizes[k] = 1 + rnd() % (rep < 10 ? 13 : 5000);
        r = dec_chunks(mime, m, sizes, 7);
        if (r.rc != 0 || r.len != len || memcmp(r.out, src, len) != 0)
            bad++;
        dec_result_free(&r);
    }
    CHECK_EQ_I(bad, 0);
    /* a bad char deep inside: offset is counted over the whole stream */
    mime[123457] = '.';
    {
        size_t sizes[1] = {4096};
        dec_result r = dec_chunks(mime, m, sizes, 1);
        CHECK_EQ_I(r.rc, -1);
        CHECK_EQ_U(r.err_offset, 123457);
        dec_result_free(&r);
    }
    free(src);
    free(enc);
    free(mime);
}

int main(void)
{
    test_sizes();
    test_rfc4648();
    test_roundtrip_random();
    test_splits();
    test_crlf();
    test_url_safe();
    test_unpadded();
    test_invalid();
    test_sticky_error();
    test_long_chunked();
    return check_done();
}
