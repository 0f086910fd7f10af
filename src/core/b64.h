/*
 * b64.h - base64 (RFC 4648) encoding and a strict, chunk-fed decoder.
 *
 * No Lua, no libcurl. Pure functions over caller-owned memory.
 *
 * Ownership: every function writes into a buffer the CALLER allocates and
 * owns; nothing here allocates or frees. The state structs are plain values
 * (put them on the stack or inside a bigger struct) and hold no pointers.
 *
 * Decoder rules (strict):
 *   - alphabet: standard "A-Za-z0-9+/"; the URL-safe "-_" are accepted too
 *     (some gateways re-encode that way); a mix of both is accepted.
 *   - '\r' and '\n' are skipped (MIME line breaks); any other byte outside
 *     the alphabet is an error reported with its offset in the whole stream.
 *   - '=' padding: only at the end, only 1 or 2 of them, only where a final
 *     quantum of 3 or 2 characters needs it; nothing but '=' may follow.
 *     A missing final padding is accepted (unpadded base64); a dangling
 *     single character is an error.
 */
#ifndef NB_B64_H
#define NB_B64_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of characters nb_b64_encode() writes for n input bytes (padded). */
size_t nb_b64_encoded_len(size_t n);

/* Upper bound of bytes decoded from n base64 characters. */
size_t nb_b64_decoded_max(size_t n);

/* One-shot encode. out must hold nb_b64_encoded_len(n) chars; no NUL is
 * written. Returns the number of chars written. */
size_t nb_b64_encode(const uint8_t *in, size_t n, char *out);

/* --- streaming decoder ------------------------------------------------- */
typedef struct nb_b64_dec {
    uint32_t acc;      /* accumulated 6-bit groups */
    unsigned nacc;     /* chars in acc: 0..3 */
    unsigned npad;     /* '=' seen so far (0..2); once >0 only '=' allowed */
    unsigned nquant;   /* chars in the final (padded) quantum when npad>0 */
    uint64_t offset;   /* chars consumed so far (offset of next char) */
    uint64_t err_offset; /* valid after an error: offset of the bad char */
    const char *err;   /* valid after an error: static message */
} nb_b64_dec;

void nb_b64_dec_init(nb_b64_dec *st);

/* Decodes n chars. out must hold nb_b64_decoded_max(n) + 3 bytes.
 * *outlen receives the number of bytes written.
 * Returns 0 on success, -1 on invalid input (st->err, st->err_offset set;
 * *outlen still holds the bytes decoded before the bad char). */
int nb_b64_dec_update(nb_b64_dec *st, const char *in, size_t n,
                      uint8_t *out, size_t *outlen);

/* Ends the stream: flushes an unpadded final quantum. out must hold 2
 * bytes. Returns 0 on success, -1 on a dangling single char (or on a
 * half-finished "xx=" padding); such end-of-stream errors are reported at
 * err_offset == offset, i.e. where the missing char should have been. */
int nb_b64_dec_final(nb_b64_dec *st, uint8_t *out, size_t *outlen);

/* One-shot strict decode (init + update + final). out must hold
 * nb_b64_decoded_max(n) + 3 bytes. Returns 0 or -1 (then *err_offset,
 * *err are set if non-NULL). */
int nb_b64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen,
                  uint64_t *err_offset, const char **err);

#ifdef __cplusplus
}
#endif
#endif
