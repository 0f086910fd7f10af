/*
 * b64.c - base64 (RFC 4648) encoder and strict chunk-fed decoder.
 *
 * See b64.h for the contract. Nothing here allocates; all tables are
 * static const and built at compile time by the macros below.
 *
 * Decoder layout: a fast path decodes whole 4-char quanta with four
 * pre-shifted uint32 tables (one OR per char; an invalid char sets a marker
 * bit so one test per quantum suffices). Anything unusual in a quantum
 * (CR/LF, '=', an invalid char, a quantum split across calls) drops to a
 * char-by-char slow path that implements all the rules and keeps exactly
 * the same state a one-char-at-a-time caller would see.
 */
#include "b64.h"

#include <string.h>

/* ------------------------------------------------------------- tables */

/* 6-bit value of a base64 char (both alphabets), or 0xFF. */
#define B64V(c)                                                          \
    (((c) >= 'A' && (c) <= 'Z')   ? (c) - 'A'                            \
     : ((c) >= 'a' && (c) <= 'z') ? (c) - 'a' + 26                       \
     : ((c) >= '0' && (c) <= '9') ? (c) - '0' + 52                       \
     : ((c) == '+' || (c) == '-') ? 62                                   \
     : ((c) == '/' || (c) == '_') ? 63                                   \
                                  : 0xFF)

/* Slow-path classes, beyond the 6-bit values 0..63. */
#define C_SKIP 0xFD /* '\r' '\n' */
#define C_PAD 0xFE  /* '=' */
#define C_BAD 0xFF

#define CLS(c) \
    ((uint8_t)((c) == '\r' || (c) == '\n' ? C_SKIP : (c) == '=' ? C_PAD : B64V(c)))

#define R4(M, c) M(c), M((c) + 1), M((c) + 2), M((c) + 3)
#define R16(M, c) R4(M, c), R4(M, (c) + 4), R4(M, (c) + 8), R4(M, (c) + 12)
#define R64(M, c) R16(M, c), R16(M, (c) + 16), R16(M, (c) + 32), R16(M, (c) + 48)
#define R256(M) R64(M, 0), R64(M, 64), R64(M, 128), R64(M, 192)

static const uint8_t cls_tab[256] = {R256(CLS)};

/*
 * Fast-path tables. For quantum "abcd" with 6-bit values A B C D the three
 * output bytes are
 *   o0 = A<<2 | B>>4,  o1 = (B&15)<<4 | C>>2,  o2 = (C&3)<<6 | D.
 * On little-endian targets the tables place the bits directly at their
 * memory positions (o0 in bits 0-7, o1 in 8-15, o2 in 16-23) so the OR of
 * the four lookups can be stored with one 4-byte memcpy. Elsewhere they
 * produce the plain 24-bit big-endian value which is stored byte by byte.
 * Bit 31 marks a char that is not in the alphabet.
 */
#define FBAD 0x80000000u

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NB_B64_LE_STORE 1
#define F0(v) ((uint32_t)(v) << 2)
#define F1(v) (((uint32_t)(v) >> 4) | (((uint32_t)(v) & 15u) << 12))
#define F2(v) ((((uint32_t)(v) >> 2) << 8) | (((uint32_t)(v) & 3u) << 22))
#define F3(v) ((uint32_t)(v) << 16)
#else
#define NB_B64_LE_STORE 0
#define F0(v) ((uint32_t)(v) << 18)
#define F1(v) ((uint32_t)(v) << 12)
#define F2(v) ((uint32_t)(v) << 6)
#define F3(v) ((uint32_t)(v))
#endif

#define D0(c) (B64V(c) == 0xFF ? FBAD : F0(B64V(c)))
#define D1(c) (B64V(c) == 0xFF ? FBAD : F1(B64V(c)))
#define D2(c) (B64V(c) == 0xFF ? FBAD : F2(B64V(c)))
#define D3(c) (B64V(c) == 0xFF ? FBAD : F3(B64V(c)))

static const uint32_t dt0[256] = {R256(D0)};
static const uint32_t dt1[256] = {R256(D1)};
static const uint32_t dt2[256] = {R256(D2)};
static const uint32_t dt3[256] = {R256(D3)};

static const char enc_tab[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ------------------------------------------------------------- sizes */

size_t nb_b64_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? 4 : 0);
}

size_t nb_b64_decoded_max(size_t n)
{
    return n / 4 * 3 + (n % 4) * 3 / 4;
}

/* ------------------------------------------------------------- encoder */

static char *enc_groups(const uint8_t *in, size_t ngroups, char *o)
{
    while (ngroups--) {
        uint32_t v = (uint32_t)in[0] << 16 | (uint32_t)in[1] << 8 | in[2];
        o[0] = enc_tab[v >> 18];
        o[1] = enc_tab[(v >> 12) & 63];
        o[2] = enc_tab[(v >> 6) & 63];
        o[3] = enc_tab[v & 63];
        in += 3;
        o += 4;
    }
    return o;
}

static char *enc_tail(const uint8_t *in, size_t n, char *o)
{
    if (n == 1) {
        o[0] = enc_tab[in[0] >> 2];
        o[1] = enc_tab[(in[0] & 3) << 4];
        o[2] = '=';
        o[3] = '=';
        return o + 4;
    }
    if (n == 2) {
        o[0] = enc_tab[in[0] >> 2];
        o[1] = enc_tab[(in[0] & 3) << 4 | in[1] >> 4];
        o[2] = enc_tab[(in[1] & 15) << 2];
        o[3] = '=';
        return o + 4;
    }
    return o;
}

size_t nb_b64_encode(const uint8_t *in, size_t n, char *out)
{
    char *o = enc_groups(in, n / 3, out);
    o = enc_tail(in + n / 3 * 3, n % 3, o);
    return (size_t)(o - out);
}

/* ------------------------------------------------------------- decoder */

void nb_b64_dec_init(nb_b64_dec *st)
{
    st->acc = 0;
    st->nacc = 0;
    st->npad = 0;
    st->nquant = 0;
    st->offset = 0;
    st->err_offset = 0;
    st->err = NULL;
}

static int dec_fail(nb_b64_dec *st, const char *msg)
{
    st->err = msg;
    st->err_offset = st->offset;
    return -1;
}

/* One char through the full rule set. Returns 0 or -1 (st->offset is then
 * the offset of the bad char). Writes at most 3 bytes at o, adds to *w. */
static int dec_slow(nb_b64_dec *st, unsigned char c, uint8_t *o, size_t *w)
{
    unsigned v = cls_tab[c];
    if (v < 64) {
        if (st->npad)
            return dec_fail(st, "data after padding");
        st->acc = st->acc << 6 | v;
        if (++st->nacc == 4) {
            o[*w] = (uint8_t)(st->acc >> 16);
            o[*w + 1] = (uint8_t)(st->acc >> 8);
            o[*w + 2] = (uint8_t)st->acc;
            *w += 3;
            st->acc = 0;
            st->nacc = 0;
        }
    } else if (v == C_SKIP) {
        /* MIME line break: ignored anywhere */
    } else if (v == C_PAD) {
        if (st->npad == 0) {
            if (st->nacc < 2)
                return dec_fail(st, "unexpected padding");
            /* final quantum of 2 chars -> 1 byte, of 3 chars -> 2 bytes */
            if (st->nacc == 2) {
                o[(*w)++] = (uint8_t)(st->acc >> 4);
            } else {
                o[(*w)++] = (uint8_t)(st->acc >> 10);
                o[(*w)++] = (uint8_t)(st->acc >> 2);
            }
            st->nquant = st->nacc;
            st->npad = 1;
            st->acc = 0;
            st->nacc = 0;
        } else if (st->nquant == 2 && st->npad == 1) {
            st->npad = 2;
        } else {
            return dec_fail(st, "too much padding");
        }
    } else {
        return dec_fail(st, "invalid base64 character");
    }
    st->offset++;
    return 0;
}

int nb_b64_dec_update(nb_b64_dec *st, const char *in, size_t n,
                      uint8_t *out, size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, w = 0;

    *outlen = 0;
    if (st->err)
        return -1;

    while (i < n) {
        /* slow path until we sit on a quantum boundary */
        if (st->nacc != 0 || st->npad != 0) {
            do {
                if (dec_slow(st, p[i], out, &w) != 0) {
                    *outlen = w;
                    return -1;
                }
                i++;
            } while (i < n && (st->nacc != 0 || st->npad != 0));
            continue;
        }

        /* fast path: whole quanta, the last one with a safe 3-byte store */
        {
            size_t start = i;
#if NB_B64_LE_STORE
            if (n - i >= 12) {
                const unsigned char *q = p + i, *qend = p + n - 12;
                uint8_t *o = out + w;
                do { /* two quanta per step; 4-byte stores stay in bounds
                      * because at least 4 more chars follow */
                    uint32_t v = dt0[q[0]] | dt1[q[1]] | dt2[q[2]] | dt3[q[3]];
                    uint32_t u = dt0[q[4]] | dt1[q[5]] | dt2[q[6]] | dt3[q[7]];
                    if ((v | u) & FBAD)
                        break;
                    memcpy(o, &v, 4);
                    memcpy(o + 3, &u, 4);
                    o += 6;
                    q += 8;
                } while (q <= qend);
                w = (size_t)(o - out);
                i = (size_t)(q - p);
            }
#endif
            while (n - i >= 4) {
                uint32_t v = dt0[p[i]] | dt1[p[i + 1]] | dt2[p[i + 2]] | dt3[p[i + 3]];
                if (v & FBAD)
                    break;
#if NB_B64_LE_STORE
                out[w] = (uint8_t)v;
                out[w + 1] = (uint8_t)(v >> 8);
                out[w + 2] = (uint8_t)(v >> 16);
#else
                out[w] = (uint8_t)(v >> 16);
                out[w + 1] = (uint8_t)(v >> 8);
                out[w + 2] = (uint8_t)v;
#endif
                w += 3;
                i += 4;
            }
            st->offset += i - start;
        }
        if (i >= n)
            break;

        /* something unusual (or fewer than 4 chars left): one slow char,
         * then more slow chars while a quantum is open */
        do {
            if (dec_slow(st, p[i], out, &w) != 0) {
                *outlen = w;
                return -1;
            }
            i++;
        } while (i < n && (st->nacc != 0 || st->npad != 0));
    }
    *outlen = w;
    return 0;
}

int nb_b64_dec_final(nb_b64_dec *st, uint8_t *out, size_t *outlen)
{
    *outlen = 0;
    if (st->err)
        return -1;
    if (st->npad == 1 && st->nquant == 2)
        return dec_fail(st, "incomplete padding");
    switch (st->nacc) {
    case 0:
        break;
    case 1:
        return dec_fail(st, "truncated base64 data");
    case 2:
        out[0] = (uint8_t)(st->acc >> 4);
        *outlen = 1;
        break;
    default: /* 3 */
        out[0] = (uint8_t)(st->acc >> 10);
        out[1] = (uint8_t)(st->acc >> 2);
        *outlen = 2;
        break;
    }
    st->acc = 0;
    st->nacc = 0;
    return 0;
}

int nb_b64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen,
                  uint64_t *err_offset, const char **err)
{
    nb_b64_dec st;
    size_t w = 0, w2 = 0;
    int rc;

    nb_b64_dec_init(&st);
    rc = nb_b64_dec_update(&st, in, n, out, &w);
    if (rc == 0)
        rc = nb_b64_dec_final(&st, out + w, &w2);
    *outlen = w + w2;
    if (rc != 0) {
        if (err_offset)
            *err_offset = st.err_offset;
        if (err)
            *err = st.err;
    }
    return rc;
}
