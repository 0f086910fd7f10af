/*
 * fuzz_sniff.c - libFuzzer target: sniffing never reads past the buffer
 * (ASan checks), never reports a zero size, and a one-byte-shorter prefix
 * of the same type gives the same size (HEIF-family sizes excepted: they
 * take the largest `ispe` box seen, which a longer input may change).
 */
#include "sniff.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t w = 0, h = 0, w2 = 0, h2 = 0;
    const char *m = nb_sniff_mime(data, size);
    int found = nb_sniff_size(data, size, &w, &h);
    if (found && (w == 0 || h == 0)) abort();
    if (found && size > 16 && m && nb_sniff_mime(data, size - 1) == m && strncmp(m, "image/he", 8) != 0 &&
        strcmp(m, "image/avif") != 0 && nb_sniff_size(data, size - 1, &w2, &h2) && (w2 != w || h2 != h))
        abort();
    return 0;
}
