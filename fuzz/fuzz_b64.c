/*
 * fuzz_b64.c - libFuzzer target: encode/decode round trip, and the strict
 * decoder gives the same bytes and error offset one-shot and fed in chunks.
 */
#include "b64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t elen = nb_b64_encoded_len(size), dlen = 0, n1 = 0, n2 = 0, k = 0, i;
    char *enc = malloc(elen + 1);
    uint8_t *dec = malloc(nb_b64_decoded_max(elen) + 3);
    uint8_t *a = malloc(nb_b64_decoded_max(size) + 3), *b = malloc(nb_b64_decoded_max(size) + 3);
    uint64_t off1 = 0;
    const char *e1 = NULL;
    nb_b64_dec st;
    int r1, r2 = 0;
    if (!enc || !dec || !a || !b) abort();
    nb_b64_encode(data, size, enc);
    if (nb_b64_decode(enc, elen, dec, &dlen, NULL, NULL) != 0 || dlen != size || (size && memcmp(dec, data, size)))
        abort();
    /* the input itself as base64 text: one-shot vs three chunks */
    r1 = nb_b64_decode((const char *)data, size, a, &n1, &off1, &e1);
    nb_b64_dec_init(&st);
    for (i = 0; i < 3 && r2 == 0; i++) {
        size_t from = size * i / 3, to = size * (i + 1) / 3;
        r2 = nb_b64_dec_update(&st, (const char *)data + from, to - from, b + n2, &k);
        n2 += k;
    }
    if (r2 == 0) {
        r2 = nb_b64_dec_final(&st, b + n2, &k);
        n2 += k;
    }
    if ((r1 != 0) != (r2 != 0)) abort();
    if (r1 == 0 && (n1 != n2 || (n1 && memcmp(a, b, n1)))) abort();
    if (r1 != 0 && off1 != st.err_offset) abort();
    free(enc);
    free(dec);
    free(a);
    free(b);
    return 0;
}
