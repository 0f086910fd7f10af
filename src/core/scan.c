/*
 * scan.c - streaming JSON scanner for generateContent response bodies.
 *
 * See scan.h for the contract. One state machine validates the body
 * (RFC 8259 grammar), copies it to the skeleton and, for every
 * inlineData.data / inline_data.data string, runs the b64.h decoder over
 * the string's contents instead of copying it. Each state has its own small
 * step function (step_value, step_key, ..., step_blob); the escape table
 * and the \uXXXX digits are shared by plain strings and blob strings.
 *
 * Skeleton copying is lazy: the bytes of the current chunk from `cs` up to
 * the current position are pending and appended in one memcpy when a blob
 * string starts, when an error is about to be reported (so a skeleton-limit
 * error that happened earlier in the chunk wins), or at the end of the
 * chunk.
 *
 * Inside a blob string the hot path finds the run of plain characters up to
 * the next '"', '\\' or control char (8 bytes at a time) and hands the run
 * to the base64 decoder, which writes into a fixed 64 KiB buffer that is
 * flushed to sink->blob_data when nearly full and at the end of the blob.
 */
#include "scan.h"
#include "b64.h"

#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_DEPTH 512
#define KEY_MAX 32
#define OUT_SIZE 65536
#define RUN_PIECE 16384 /* chars per decoder call: decodes to <= 12 KiB */
#define DEFAULT_MAX_SKELETON ((size_t)64 << 20)
#define SKEL_INITIAL 1024

enum {
    S_VALUE,     /* a value is expected */
    S_ARR_FIRST, /* after '[': a value or ']' */
    S_OBJ_FIRST, /* after '{': a key or '}' */
    S_OBJ_KEY,   /* after ',' in an object: a key */
    S_COLON,     /* after a key */
    S_AFTER,     /* after a value inside a container: ',' or the closer */
    S_DONE,      /* the top-level value is complete */
    S_STR,       /* inside a key or a plain string value */
    S_STR_ESC,
    S_STR_U,
    S_TGT, /* inside a blob string */
    S_TGT_ESC,
    S_TGT_U,
    S_NUM_MINUS,
    S_NUM_ZERO,
    S_NUM_INT,
    S_NUM_DOT,
    S_NUM_FRAC,
    S_NUM_E,
    S_NUM_ESIGN,
    S_NUM_EXP,
    S_LIT,
    S_FAILED
};

/* stack entry flags */
#define F_OBJ 1u
#define F_INLINE 2u /* the object is the value of "inlineData"/"inline_data" */

/* class of the last key seen */
enum { K_OTHER, K_DATA, K_INLINE };

struct nb_scan {
    nb_scan_sink sink;
    size_t max_skel;

    char *skel;
    size_t skel_len, skel_cap;

    uint64_t base; /* body offset of the current chunk's first byte */
    int state;

    int err;
    const char *errmsg;
    uint64_t erroff;

    unsigned depth;
    unsigned char stack[MAX_DEPTH];

    /* strings */
    int str_is_key;
    unsigned ucount, ucode;
    uint64_t esc_off; /* offset of the '\\' of the current escape */

    /* keys */
    unsigned char key[KEY_MAX];
    unsigned keylen;
    int key_over;
    int keyclass;

    /* literals */
    const char *lit;
    unsigned litpos;

    /* blobs */
    unsigned nblobs;
    nb_b64_dec dec;
    uint64_t blob_total;
    size_t outlen;
    uint8_t out[OUT_SIZE];
};

/* ------------------------------------------------------------- helpers */

static int set_error(nb_scan *s, int code, const char *msg, uint64_t off)
{
    s->err = code;
    s->errmsg = msg;
    s->erroff = off;
    s->state = S_FAILED;
    return code;
}

/* Appends n bytes that start at body offset off. */
static int skel_append(nb_scan *s, const char *p, size_t n, uint64_t off)
{
    if (n > s->max_skel - s->skel_len)
        return set_error(s, NB_SCAN_ELIMIT, "response skeleton too large",
                         off + (s->max_skel - s->skel_len));
    if (s->skel_len + n + 1 > s->skel_cap) {
        size_t need = s->skel_len + n + 1;
        size_t cap = s->skel_cap ? s->skel_cap : SKEL_INITIAL;
        char *q;
        while (cap < need)
            cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
        if (cap > s->max_skel + 1)
            cap = s->max_skel + 1;
        q = (char *)realloc(s->skel, cap);
        if (!q)
            return set_error(s, NB_SCAN_ENOMEM, "out of memory", off);
        s->skel = q;
        s->skel_cap = cap;
    }
    memcpy(s->skel + s->skel_len, p, n);
    s->skel_len += n;
    s->skel[s->skel_len] = '\0';
    return NB_SCAN_OK;
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* First index >= i where p[i] is '"', '\\' or a control char, else n.
 * 16 bytes at a time with SSE2 where available, else 8 at a time (SWAR). */
static size_t run_end(const unsigned char *p, size_t i, size_t n)
{
#if defined(__SSE2__)
    const __m128i vq = _mm_set1_epi8('"');
    const __m128i vb = _mm_set1_epi8('\\');
    const __m128i vc = _mm_set1_epi8(0x1f);
    while (n - i >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i t = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, vq), _mm_cmpeq_epi8(x, vb)),
                                 _mm_cmpeq_epi8(_mm_min_epu8(x, vc), x));
        if (_mm_movemask_epi8(t) != 0)
            break;
        i += 16;
    }
#else
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t high = 0x8080808080808080ull;
    while (n - i >= 8) {
        uint64_t x, q, b, t;
        memcpy(&x, p + i, 8);
        q = x ^ (ones * '"');
        b = x ^ (ones * '\\');
        t = ((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x);
        if (t & high)
            break;
        i += 8;
    }
#endif
    while (i < n && p[i] != '"' && p[i] != '\\' && p[i] >= 0x20)
        i++;
    return i;
}

static void key_push(nb_scan *s, unsigned char c)
{
    if (s->keylen < KEY_MAX)
        s->key[s->keylen++] = c;
    else
        s->key_over = 1;
}

static int classify_key(const nb_scan *s)
{
    if (s->key_over)
        return K_OTHER;
    if (s->keylen == 4 && memcmp(s->key, "data", 4) == 0)
        return K_DATA;
    if (s->keylen == 10 && memcmp(s->key, "inlineData", 10) == 0)
        return K_INLINE;
    if (s->keylen == 11 && memcmp(s->key, "inline_data", 11) == 0)
        return K_INLINE;
    return K_OTHER;
}

/* ------------------------------------------------------------- blobs */

static int blob_flush(nb_scan *s, uint64_t off)
{
    if (s->outlen > 0) {
        size_t n = s->outlen;
        s->outlen = 0;
        if (s->sink.blob_data && s->sink.blob_data(s->sink.ud, s->nblobs - 1, s->out, n) != 0)
            return set_error(s, NB_SCAN_ESINK, "aborted by sink", off);
    }
    return NB_SCAN_OK;
}

/* Makes room for `need` more decoded bytes in s->out. */
static int blob_room(nb_scan *s, size_t need, uint64_t off)
{
    if (s->outlen + need > OUT_SIZE)
        return blob_flush(s, off);
    return NB_SCAN_OK;
}

/* Decodes base64 chars p[0..n) that start at body offset off. */
static int blob_run(nb_scan *s, const char *p, size_t n, uint64_t off)
{
    while (n > 0) {
        size_t take = n < RUN_PIECE ? n : RUN_PIECE;
        uint64_t d0 = s->dec.offset;
        size_t got = 0;
        int rc;
        if (blob_room(s, nb_b64_decoded_max(take) + 3, off) != NB_SCAN_OK)
            return s->err;
        rc = nb_b64_dec_update(&s->dec, p, take, s->out + s->outlen, &got);
        s->outlen += got;
        s->blob_total += got;
        if (rc != 0)
            return set_error(s, NB_SCAN_EBASE64, s->dec.err, off + (s->dec.err_offset - d0));
        p += take;
        n -= take;
        off += take;
    }
    return NB_SCAN_OK;
}

/* One char produced by an escape; errors are reported at the backslash. */
static int blob_char(nb_scan *s, char c)
{
    size_t got = 0;
    if (blob_room(s, 6, s->esc_off) != NB_SCAN_OK)
        return s->err;
    if (nb_b64_dec_update(&s->dec, &c, 1, s->out + s->outlen, &got) != 0)
        return set_error(s, NB_SCAN_EBASE64, s->dec.err, s->esc_off);
    s->outlen += got;
    s->blob_total += got;
    return NB_SCAN_OK;
}

static int blob_begin(nb_scan *s, uint64_t off)
{
    unsigned idx = s->nblobs++;
    nb_b64_dec_init(&s->dec);
    s->blob_total = 0;
    s->outlen = 0;
    if (s->sink.blob_begin && s->sink.blob_begin(s->sink.ud, idx) != 0)
        return set_error(s, NB_SCAN_ESINK, "aborted by sink", off);
    return NB_SCAN_OK;
}

/* Closing quote at body offset off. */
static int blob_end(nb_scan *s, uint64_t off)
{
    char ph[48];
    size_t got = 0, n;
    unsigned idx = s->nblobs - 1, v;
    char digits[16];
    int nd = 0;

    if (blob_room(s, 3, off) != NB_SCAN_OK)
        return s->err;
    if (nb_b64_dec_final(&s->dec, s->out + s->outlen, &got) != 0)
        return set_error(s, NB_SCAN_EBASE64, s->dec.err, off);
    s->outlen += got;
    s->blob_total += got;
    if (blob_flush(s, off) != NB_SCAN_OK)
        return s->err;
    if (s->sink.blob_end && s->sink.blob_end(s->sink.ud, idx, s->blob_total) != 0)
        return set_error(s, NB_SCAN_ESINK, "aborted by sink", off);

    /* "nb:blob:<idx>" */
    n = 0;
    ph[n++] = '"';
    memcpy(ph + n, NB_SCAN_PLACEHOLDER, sizeof NB_SCAN_PLACEHOLDER - 1);
    n += sizeof NB_SCAN_PLACEHOLDER - 1;
    v = idx;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (nd > 0)
        ph[n++] = digits[--nd];
    ph[n++] = '"';
    if (n > s->max_skel - s->skel_len) /* the whole placeholder is at off */
        return set_error(s, NB_SCAN_ELIMIT, "response skeleton too large", off);
    return skel_append(s, ph, n, off);
}

/* ------------------------------------------------------------- API */

static void scan_init_state(nb_scan *s)
{
    s->skel_len = 0;
    if (s->skel)
        s->skel[0] = '\0';
    s->base = 0;
    s->state = S_VALUE;
    s->err = NB_SCAN_OK;
    s->errmsg = NULL;
    s->erroff = 0;
    s->depth = 0;
    s->str_is_key = 0;
    s->ucount = s->ucode = 0;
    s->esc_off = 0;
    s->keylen = 0;
    s->key_over = 0;
    s->keyclass = K_OTHER;
    s->lit = NULL;
    s->litpos = 0;
    s->nblobs = 0;
    nb_b64_dec_init(&s->dec);
    s->blob_total = 0;
    s->outlen = 0;
}

nb_scan *nb_scan_new(const nb_scan_sink *sink, size_t max_skeleton)
{
    nb_scan *s = (nb_scan *)malloc(sizeof *s);
    if (!s)
        return NULL;
    memset(&s->sink, 0, sizeof s->sink);
    if (sink)
        s->sink = *sink;
    s->max_skel = max_skeleton ? max_skeleton : DEFAULT_MAX_SKELETON;
    if (s->max_skel > (size_t)-2) /* keeps max_skel + 1 (the NUL) from wrapping */
        s->max_skel = (size_t)-2;
    s->skel_cap = s->max_skel + 1 < SKEL_INITIAL ? s->max_skel + 1 : SKEL_INITIAL;
    s->skel = (char *)malloc(s->skel_cap);
    if (!s->skel) {
        free(s);
        return NULL;
    }
    scan_init_state(s);
    return s;
}

void nb_scan_free(nb_scan *s)
{
    if (!s)
        return;
    free(s->skel);
    free(s);
}

void nb_scan_reset(nb_scan *s)
{
    scan_init_state(s);
}

const char *nb_scan_skeleton(const nb_scan *s, size_t *len)
{
    if (len)
        *len = s->skel_len;
    return s->skel;
}

unsigned nb_scan_blob_count(const nb_scan *s)
{
    return s->nblobs;
}

const char *nb_scan_error(const nb_scan *s, uint64_t *offset)
{
    if (s->err == NB_SCAN_OK)
        return NULL;
    if (offset)
        *offset = s->erroff;
    return s->errmsg;
}

/* ------------------------------------------------------------- feeding
 *
 * nb_scan_feed hands each byte (or, in strings, each run of bytes) to the
 * step of the current state. A step returns GO, FAIL (a JSON error at the
 * current byte: f->code, f->msg) or STOP (s->err is set already).
 */

/* One chunk being fed. */
typedef struct feed {
    const unsigned char *p;
    size_t n, i;
    size_t cs;       /* start of the pending skeleton copy */
    int copying;     /* 0 while inside a blob string */
    int code;        /* FAIL: the error code and message */
    const char *msg;
} feed;

enum { GO = 0, FAIL, STOP };

#define ESC_U 256 /* unescape(): "\u", four hex digits follow */

/* whitespace between tokens (every structural step starts with it) */
static int skip(feed *f)
{
    f->i++;
    return GO;
}

static int fail(feed *f, int code, const char *msg)
{
    f->code = code;
    f->msg = msg;
    return FAIL;
}

/* Appends the pending skeleton bytes p[cs..upto) (f's fields by value, so
 * f itself can live in registers). */
static int flush_pending(nb_scan *s, const unsigned char *p, int copying, size_t cs, size_t upto)
{
    if (!copying || upto <= cs)
        return NB_SCAN_OK;
    return skel_append(s, (const char *)p + cs, upto - cs, s->base + cs);
}

/* a value just ended: where do we go */
static void value_done(nb_scan *s)
{
    s->state = s->depth ? S_AFTER : S_DONE;
}

/* What the escape "\c" stands for: the character, ESC_U, or -1. */
static int unescape(unsigned char c)
{
    switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '/': return '/';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'u': return ESC_U;
    default: return -1;
    }
}

static int open_container(nb_scan *s, feed *f, unsigned char c, int keyclass)
{
    if (s->depth >= MAX_DEPTH)
        return fail(f, NB_SCAN_ELIMIT, "nesting too deep");
    if (c == '{') {
        s->stack[s->depth++] = (unsigned char)(F_OBJ | (keyclass == K_INLINE ? F_INLINE : 0));
        s->state = S_OBJ_FIRST;
    } else {
        s->stack[s->depth++] = 0;
        s->state = S_ARR_FIRST;
    }
    f->i++;
    return GO;
}

static int close_container(nb_scan *s, feed *f)
{
    s->depth--;
    value_done(s);
    f->i++;
    return GO;
}

static int open_string(nb_scan *s, feed *f, int is_key)
{
    s->str_is_key = is_key;
    if (is_key) {
        s->keylen = 0;
        s->key_over = 0;
    }
    s->state = S_STR;
    f->i++;
    return GO;
}

/* The opening quote of an inlineData.data string: the skeleton so far is
 * copied, the blob begins. */
static int open_blob(nb_scan *s, feed *f)
{
    if (flush_pending(s, f->p, f->copying, f->cs, f->i) != NB_SCAN_OK)
        return STOP;
    f->copying = 0;
    if (blob_begin(s, s->base + f->i) != NB_SCAN_OK)
        return STOP;
    s->state = S_TGT;
    f->i++;
    return GO;
}

/* S_VALUE, S_ARR_FIRST */
static int step_value(nb_scan *s, feed *f, unsigned char c)
{
    int kc;
    if (is_ws(c))
        return skip(f);
    if (c == ']' && s->state == S_ARR_FIRST)
        return close_container(s, f);
    kc = s->keyclass;
    s->keyclass = K_OTHER;
    switch (c) {
    case '{':
    case '[':
        return open_container(s, f, c, kc);
    case '"':
        if (kc == K_DATA && s->depth > 0 && (s->stack[s->depth - 1] & F_INLINE))
            return open_blob(s, f);
        return open_string(s, f, 0);
    case '-':
        s->state = S_NUM_MINUS;
        break;
    case '0':
        s->state = S_NUM_ZERO;
        break;
    case 't':
    case 'f':
    case 'n':
        s->lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
        s->litpos = 1;
        s->state = S_LIT;
        break;
    default:
        if (c < '1' || c > '9')
            return fail(f, NB_SCAN_EJSON,
                        s->state == S_ARR_FIRST ? "expected value or ']'" : "expected value");
        s->state = S_NUM_INT;
    }
    f->i++;
    return GO;
}

/* S_OBJ_FIRST, S_OBJ_KEY */
static int step_key(nb_scan *s, feed *f, unsigned char c)
{
    if (is_ws(c))
        return skip(f);
    if (c == '"')
        return open_string(s, f, 1);
    if (c == '}' && s->state == S_OBJ_FIRST)
        return close_container(s, f);
    return fail(f, NB_SCAN_EJSON, s->state == S_OBJ_FIRST ? "expected key or '}'" : "expected key");
}

static int step_colon(nb_scan *s, feed *f, unsigned char c)
{
    if (is_ws(c))
        return skip(f);
    if (c != ':')
        return fail(f, NB_SCAN_EJSON, "expected ':'");
    s->state = S_VALUE;
    f->i++;
    return GO;
}

static int step_after(nb_scan *s, feed *f, unsigned char c)
{
    int obj = s->stack[s->depth - 1] & F_OBJ;
    if (is_ws(c))
        return skip(f);
    if (c == ',') {
        s->state = obj ? S_OBJ_KEY : S_VALUE;
        f->i++;
        return GO;
    }
    if (c == (obj ? '}' : ']'))
        return close_container(s, f);
    return fail(f, NB_SCAN_EJSON, obj ? "expected ',' or '}'" : "expected ',' or ']'");
}

/* After a string's run of plain characters, which ends at j: the '"' or
 * '\\' that ends the run (consumed), 0 when the chunk ends first, -1 on a
 * control character (FAIL set up). */
static int run_stop(feed *f, size_t j)
{
    unsigned char c;
    f->i = j;
    if (j == f->n)
        return 0;
    c = f->p[j];
    if (c != '"' && c != '\\') {
        fail(f, NB_SCAN_EJSON, "control character in string");
        return -1;
    }
    f->i++;
    return c;
}

/* The byte after a backslash (consumed): the character the escape stands
 * for, 0 for "\u" (state u_state entered), -1 when it is none (FAIL set up). */
static int escape_start(nb_scan *s, feed *f, unsigned char c, int u_state)
{
    int e = unescape(c);
    if (e < 0) {
        fail(f, NB_SCAN_EJSON, "invalid escape");
        return -1;
    }
    f->i++;
    if (e != ESC_U)
        return e;
    s->ucount = 0;
    s->ucode = 0;
    s->state = u_state;
    return 0;
}

/* One hex digit of "\uXXXX" (consumed): 1 when it was the last (s->ucode),
 * 0 when more follow, -1 when it is none (FAIL set up). */
static int u_step(nb_scan *s, feed *f, unsigned char c)
{
    int h = hexval(c);
    if (h < 0) {
        fail(f, NB_SCAN_EJSON, "invalid \\u escape");
        return -1;
    }
    f->i++;
    s->ucode = s->ucode << 4 | (unsigned)h;
    return ++s->ucount == 4;
}

/* S_STR: a run of plain characters, then what ends it */
static int step_string(nb_scan *s, feed *f)
{
    size_t j = run_end(f->p, f->i, f->n);
    if (s->str_is_key)
        for (; f->i < j; f->i++)
            key_push(s, f->p[f->i]);
    switch (run_stop(f, j)) {
    case 0:
        return GO;
    case -1:
        return FAIL;
    case '"':
        if (s->str_is_key) {
            s->keyclass = classify_key(s);
            s->state = S_COLON;
        } else {
            value_done(s);
        }
        return GO;
    default:
        s->state = S_STR_ESC;
        return GO;
    }
}

static int step_string_escape(nb_scan *s, feed *f, unsigned char c)
{
    int e = escape_start(s, f, c, S_STR_U);
    if (e < 0)
        return FAIL;
    if (e > 0) {
        if (s->str_is_key)
            key_push(s, (unsigned char)e);
        s->state = S_STR;
    }
    return GO;
}

static int step_string_u(nb_scan *s, feed *f, unsigned char c)
{
    int r = u_step(s, f, c);
    if (r < 0)
        return FAIL;
    if (r) {
        if (s->str_is_key) {
            if (s->ucode < 0x80)
                key_push(s, (unsigned char)s->ucode);
            else
                s->key_over = 1; /* non-ASCII: matches no target key */
        }
        s->state = S_STR;
    }
    return GO;
}

/* S_TGT: a run of base64 to the decoder, then what ends it */
static int step_blob(nb_scan *s, feed *f)
{
    size_t j = run_end(f->p, f->i, f->n);
    if (j > f->i && blob_run(s, (const char *)f->p + f->i, j - f->i, s->base + f->i) != NB_SCAN_OK)
        return STOP;
    switch (run_stop(f, j)) {
    case 0:
        return GO;
    case -1:
        return FAIL;
    case '"':
        if (blob_end(s, s->base + j) != NB_SCAN_OK)
            return STOP;
        f->copying = 1;
        f->cs = j + 1;
        value_done(s);
        return GO;
    default:
        s->esc_off = s->base + j;
        s->state = S_TGT_ESC;
        return GO;
    }
}

/* An escape inside base64: "\/" is '/', "\n" and "\r" are skipped (line
 * breaks), "\u" decides after its digits; the others cannot be base64. */
static int step_blob_escape(nb_scan *s, feed *f, unsigned char c)
{
    int e = escape_start(s, f, c, S_TGT_U);
    if (e <= 0)
        return e < 0 ? FAIL : GO;
    if (e == '/') {
        if (blob_char(s, '/') != NB_SCAN_OK)
            return STOP;
    } else if (e != '\n' && e != '\r') {
        set_error(s, NB_SCAN_EBASE64, "invalid escape in base64 data", s->esc_off);
        return STOP;
    }
    s->state = S_TGT;
    return GO;
}

static int step_blob_u(nb_scan *s, feed *f, unsigned char c)
{
    int r = u_step(s, f, c);
    if (r < 0)
        return FAIL;
    if (r) {
        if (s->ucode >= 0x80) {
            set_error(s, NB_SCAN_EBASE64, "invalid base64 character", s->esc_off);
            return STOP;
        }
        if (blob_char(s, (char)s->ucode) != NB_SCAN_OK)
            return STOP;
        s->state = S_TGT;
    }
    return GO;
}

/* The number grammar, one step per state. The byte after a number is
 * looked at again in the state that follows it. */
static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int step_num_minus(nb_scan *s, feed *f, unsigned char c)
{
    if (!is_digit(c))
        return fail(f, NB_SCAN_EJSON, "invalid number");
    s->state = c == '0' ? S_NUM_ZERO : S_NUM_INT;
    f->i++;
    return GO;
}

/* S_NUM_ZERO, S_NUM_INT, S_NUM_FRAC: digits, then '.', an exponent or the end */
static int step_num_digits(nb_scan *s, feed *f, unsigned char c)
{
    if (is_digit(c)) {
        if (s->state == S_NUM_ZERO)
            return fail(f, NB_SCAN_EJSON, "invalid number");
    } else if (c == '.' && s->state != S_NUM_FRAC) {
        s->state = S_NUM_DOT;
    } else if (c == 'e' || c == 'E') {
        s->state = S_NUM_E;
    } else {
        value_done(s);
        return GO;
    }
    f->i++;
    return GO;
}

static int step_num_dot(nb_scan *s, feed *f, unsigned char c)
{
    if (!is_digit(c))
        return fail(f, NB_SCAN_EJSON, "invalid number");
    s->state = S_NUM_FRAC;
    f->i++;
    return GO;
}

/* S_NUM_E (a sign may come first), S_NUM_ESIGN */
static int step_num_e(nb_scan *s, feed *f, unsigned char c)
{
    if (s->state == S_NUM_E && (c == '+' || c == '-'))
        s->state = S_NUM_ESIGN;
    else if (is_digit(c))
        s->state = S_NUM_EXP;
    else
        return fail(f, NB_SCAN_EJSON, "invalid number");
    f->i++;
    return GO;
}

static int step_num_exp(nb_scan *s, feed *f, unsigned char c)
{
    if (!is_digit(c)) {
        value_done(s);
        return GO;
    }
    f->i++;
    return GO;
}

static int step_literal(nb_scan *s, feed *f, unsigned char c)
{
    if (c != (unsigned char)s->lit[s->litpos])
        return fail(f, NB_SCAN_EJSON, "invalid literal");
    f->i++;
    if (s->lit[++s->litpos] == '\0')
        value_done(s);
    return GO;
}

static int step_done(feed *f, unsigned char c)
{
    if (is_ws(c))
        return skip(f);
    return fail(f, NB_SCAN_EJSON, "expected end of body");
}

static int step(nb_scan *s, feed *f)
{
    unsigned char c = f->p[f->i];
    switch (s->state) {
    case S_VALUE:
    case S_ARR_FIRST: return step_value(s, f, c);
    case S_OBJ_FIRST:
    case S_OBJ_KEY: return step_key(s, f, c);
    case S_COLON: return step_colon(s, f, c);
    case S_AFTER: return step_after(s, f, c);
    case S_DONE: return step_done(f, c);
    case S_STR: return step_string(s, f);
    case S_STR_ESC: return step_string_escape(s, f, c);
    case S_STR_U: return step_string_u(s, f, c);
    case S_TGT: return step_blob(s, f);
    case S_TGT_ESC: return step_blob_escape(s, f, c);
    case S_TGT_U: return step_blob_u(s, f, c);
    case S_NUM_MINUS: return step_num_minus(s, f, c);
    case S_NUM_ZERO:
    case S_NUM_INT:
    case S_NUM_FRAC: return step_num_digits(s, f, c);
    case S_NUM_DOT: return step_num_dot(s, f, c);
    case S_NUM_E:
    case S_NUM_ESIGN: return step_num_e(s, f, c);
    case S_NUM_EXP: return step_num_exp(s, f, c);
    case S_LIT: return step_literal(s, f, c);
    default: return STOP; /* S_FAILED: unreachable, s->err is set */
    }
}

int nb_scan_feed(nb_scan *s, const char *chunk, size_t n)
{
    feed f;
    if (s->err)
        return s->err;
    f.p = (const unsigned char *)chunk;
    f.n = n;
    f.i = 0;
    f.cs = 0;
    f.copying = !(s->state == S_TGT || s->state == S_TGT_ESC || s->state == S_TGT_U);
    f.code = NB_SCAN_EJSON;
    f.msg = NULL;
    while (f.i < n) {
        int r = step(s, &f);
        if (r == STOP)
            return s->err;
        if (r == FAIL) {
            /* a skeleton-limit error earlier in this chunk comes first */
            if (flush_pending(s, f.p, f.copying, f.cs, f.i) != NB_SCAN_OK)
                return s->err;
            return set_error(s, f.code, f.msg, s->base + f.i);
        }
    }
    if (flush_pending(s, f.p, f.copying, f.cs, n) != NB_SCAN_OK)
        return s->err;
    s->base += n;
    return NB_SCAN_OK;
}

int nb_scan_finish(nb_scan *s)
{
    if (s->err)
        return s->err;
    switch (s->state) {
    case S_DONE:
        return NB_SCAN_OK;
    case S_NUM_ZERO:
    case S_NUM_INT:
    case S_NUM_FRAC:
    case S_NUM_EXP:
        if (s->depth == 0) {
            s->state = S_DONE;
            return NB_SCAN_OK;
        }
        break;
    default:
        break;
    }
    return set_error(s, NB_SCAN_ETRUNC, "unexpected end of body", s->base);
}
