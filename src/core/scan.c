/*
 * scan.c - streaming JSON scanner for generateContent response bodies.
 *
 * See scan.h for the contract. One byte-driven state machine validates the
 * body (RFC 8259 grammar), copies it to the skeleton and, for every
 * inlineData.data / inline_data.data string, runs the b64.h decoder over
 * the string's contents instead of copying it.
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

/* a value just ended: where do we go */
#define VALUE_DONE() (s->state = s->depth ? S_AFTER : S_DONE)

int nb_scan_feed(nb_scan *s, const char *chunk, size_t n)
{
    const unsigned char *p = (const unsigned char *)chunk;
    size_t i = 0;
    size_t cs = 0;   /* start of the pending skeleton copy */
    int copying = 1; /* 0 while inside a blob string */
    const char *msg = NULL;
    int code = NB_SCAN_EJSON;

    if (s->err)
        return s->err;
    if (s->state == S_TGT || s->state == S_TGT_ESC || s->state == S_TGT_U)
        copying = 0;

    while (i < n) {
        unsigned char c = p[i];
        switch (s->state) {
        case S_VALUE:
        case S_ARR_FIRST:
            if (is_ws(c)) {
                i++;
                break;
            }
            if (c == ']' && s->state == S_ARR_FIRST) {
                s->depth--;
                VALUE_DONE();
                i++;
                break;
            }
            {
                int kc = s->keyclass;
                s->keyclass = K_OTHER;
                switch (c) {
                case '{':
                case '[':
                    if (s->depth >= MAX_DEPTH) {
                        code = NB_SCAN_ELIMIT;
                        msg = "nesting too deep";
                        goto fail;
                    }
                    if (c == '{') {
                        s->stack[s->depth++] =
                            (unsigned char)(F_OBJ | (kc == K_INLINE ? F_INLINE : 0));
                        s->state = S_OBJ_FIRST;
                    } else {
                        s->stack[s->depth++] = 0;
                        s->state = S_ARR_FIRST;
                    }
                    i++;
                    break;
                case '"':
                    if (kc == K_DATA && s->depth > 0 &&
                        (s->stack[s->depth - 1] & F_INLINE)) {
                        if (copying && i > cs &&
                            skel_append(s, (const char *)p + cs, i - cs, s->base + cs) != NB_SCAN_OK)
                            return s->err;
                        copying = 0;
                        if (blob_begin(s, s->base + i) != NB_SCAN_OK)
                            return s->err;
                        s->state = S_TGT;
                    } else {
                        s->str_is_key = 0;
                        s->state = S_STR;
                    }
                    i++;
                    break;
                case '-':
                    s->state = S_NUM_MINUS;
                    i++;
                    break;
                case '0':
                    s->state = S_NUM_ZERO;
                    i++;
                    break;
                case 't':
                case 'f':
                case 'n':
                    s->lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
                    s->litpos = 1;
                    s->state = S_LIT;
                    i++;
                    break;
                default:
                    if (c >= '1' && c <= '9') {
                        s->state = S_NUM_INT;
                        i++;
                        break;
                    }
                    msg = s->state == S_ARR_FIRST ? "expected value or ']'" : "expected value";
                    goto fail;
                }
            }
            break;

        case S_OBJ_FIRST:
        case S_OBJ_KEY:
            if (is_ws(c)) {
                i++;
                break;
            }
            if (c == '"') {
                s->str_is_key = 1;
                s->keylen = 0;
                s->key_over = 0;
                s->state = S_STR;
                i++;
                break;
            }
            if (c == '}' && s->state == S_OBJ_FIRST) {
                s->depth--;
                VALUE_DONE();
                i++;
                break;
            }
            msg = s->state == S_OBJ_FIRST ? "expected key or '}'" : "expected key";
            goto fail;

        case S_COLON:
            if (is_ws(c)) {
                i++;
                break;
            }
            if (c == ':') {
                s->state = S_VALUE;
                i++;
                break;
            }
            msg = "expected ':'";
            goto fail;

        case S_AFTER: {
            int obj = s->stack[s->depth - 1] & F_OBJ;
            if (is_ws(c)) {
                i++;
                break;
            }
            if (c == ',') {
                s->state = obj ? S_OBJ_KEY : S_VALUE;
                i++;
                break;
            }
            if (c == (obj ? '}' : ']')) {
                s->depth--;
                VALUE_DONE();
                i++;
                break;
            }
            msg = obj ? "expected ',' or '}'" : "expected ',' or ']'";
            goto fail;
        }

        case S_DONE:
            if (is_ws(c)) {
                i++;
                break;
            }
            msg = "expected end of body";
            goto fail;

        case S_STR: {
            size_t j = run_end(p, i, n);
            if (s->str_is_key) {
                size_t k;
                for (k = i; k < j; k++)
                    key_push(s, p[k]);
            }
            i = j;
            if (i == n)
                break;
            c = p[i];
            if (c == '"') {
                if (s->str_is_key) {
                    s->keyclass = classify_key(s);
                    s->state = S_COLON;
                } else {
                    VALUE_DONE();
                }
            } else if (c == '\\') {
                s->state = S_STR_ESC;
            } else {
                msg = "control character in string";
                goto fail;
            }
            i++;
            break;
        }

        case S_STR_ESC: {
            static const char esc_in[] = "\"\\/bfnrt";
            static const char esc_out[] = "\"\\/\b\f\n\r\t";
            const char *e;
            if (c == 'u') {
                s->ucount = 0;
                s->ucode = 0;
                s->state = S_STR_U;
                i++;
                break;
            }
            e = c ? strchr(esc_in, c) : NULL;
            if (!e) {
                msg = "invalid escape";
                goto fail;
            }
            if (s->str_is_key)
                key_push(s, (unsigned char)esc_out[e - esc_in]);
            s->state = S_STR;
            i++;
            break;
        }

        case S_STR_U: {
            int h = hexval(c);
            if (h < 0) {
                msg = "invalid \\u escape";
                goto fail;
            }
            s->ucode = s->ucode << 4 | (unsigned)h;
            if (++s->ucount == 4) {
                if (s->str_is_key) {
                    if (s->ucode < 0x80)
                        key_push(s, (unsigned char)s->ucode);
                    else
                        s->key_over = 1; /* non-ASCII: matches no target key */
                }
                s->state = S_STR;
            }
            i++;
            break;
        }

        case S_TGT: {
            size_t j = run_end(p, i, n);
            if (j > i && blob_run(s, (const char *)p + i, j - i, s->base + i) != NB_SCAN_OK)
                return s->err;
            i = j;
            if (i == n)
                break;
            c = p[i];
            if (c == '"') {
                if (blob_end(s, s->base + i) != NB_SCAN_OK)
                    return s->err;
                copying = 1;
                cs = i + 1;
                VALUE_DONE();
            } else if (c == '\\') {
                s->esc_off = s->base + i;
                s->state = S_TGT_ESC;
            } else {
                msg = "control character in string";
                goto fail;
            }
            i++;
            break;
        }

        case S_TGT_ESC:
            switch (c) {
            case '/':
                if (blob_char(s, '/') != NB_SCAN_OK)
                    return s->err;
                s->state = S_TGT;
                break;
            case 'n':
            case 'r':
                s->state = S_TGT;
                break;
            case 'u':
                s->ucount = 0;
                s->ucode = 0;
                s->state = S_TGT_U;
                break;
            case '"':
            case '\\':
            case 'b':
            case 'f':
            case 't':
                code = NB_SCAN_EBASE64;
                msg = "invalid escape in base64 data";
                return set_error(s, code, msg, s->esc_off);
            default:
                msg = "invalid escape";
                goto fail;
            }
            i++;
            break;

        case S_TGT_U: {
            int h = hexval(c);
            if (h < 0) {
                msg = "invalid \\u escape";
                goto fail;
            }
            s->ucode = s->ucode << 4 | (unsigned)h;
            if (++s->ucount == 4) {
                if (s->ucode >= 0x80)
                    return set_error(s, NB_SCAN_EBASE64, "invalid base64 character",
                                     s->esc_off);
                if (blob_char(s, (char)s->ucode) != NB_SCAN_OK)
                    return s->err;
                s->state = S_TGT;
            }
            i++;
            break;
        }

        case S_NUM_MINUS:
            if (c == '0') {
                s->state = S_NUM_ZERO;
            } else if (c >= '1' && c <= '9') {
                s->state = S_NUM_INT;
            } else {
                msg = "invalid number";
                goto fail;
            }
            i++;
            break;

        case S_NUM_ZERO:
        case S_NUM_INT:
        case S_NUM_FRAC:
            if (c >= '0' && c <= '9') {
                if (s->state == S_NUM_ZERO) {
                    msg = "invalid number";
                    goto fail;
                }
                i++;
            } else if (c == '.' && s->state != S_NUM_FRAC) {
                s->state = S_NUM_DOT;
                i++;
            } else if (c == 'e' || c == 'E') {
                s->state = S_NUM_E;
                i++;
            } else {
                VALUE_DONE(); /* c is looked at again in the new state */
            }
            break;

        case S_NUM_DOT:
            if (c >= '0' && c <= '9') {
                s->state = S_NUM_FRAC;
                i++;
                break;
            }
            msg = "invalid number";
            goto fail;

        case S_NUM_E:
            if (c == '+' || c == '-') {
                s->state = S_NUM_ESIGN;
                i++;
                break;
            }
            /* fall through */
        case S_NUM_ESIGN:
            if (c >= '0' && c <= '9') {
                s->state = S_NUM_EXP;
                i++;
                break;
            }
            msg = "invalid number";
            goto fail;

        case S_NUM_EXP:
            if (c >= '0' && c <= '9')
                i++;
            else
                VALUE_DONE();
            break;

        case S_LIT:
            if (c != (unsigned char)s->lit[s->litpos]) {
                msg = "invalid literal";
                goto fail;
            }
            i++;
            if (s->lit[++s->litpos] == '\0')
                VALUE_DONE();
            break;

        default: /* S_FAILED: unreachable, s->err is set */
            return s->err;
        }
    }

    if (copying && n > cs && skel_append(s, (const char *)p + cs, n - cs, s->base + cs) != NB_SCAN_OK)
        return s->err;
    s->base += n;
    return NB_SCAN_OK;

fail:
    /* a skeleton-limit error earlier in this chunk comes first */
    if (copying && i > cs && skel_append(s, (const char *)p + cs, i - cs, s->base + cs) != NB_SCAN_OK)
        return s->err;
    return set_error(s, code, msg, s->base + i);
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
