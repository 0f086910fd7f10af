/*
 * sniff.h - image type and pixel size from the first bytes of an image.
 *
 * No Lua, no libcurl, no allocation: pure functions over borrowed bytes.
 * Works on a prefix: callers may pass only the first NB_SNIFF_WANT bytes
 * (JPEG sizes may need more; pass what you have, up to the whole image).
 */
#ifndef NB_SNIFF_H
#define NB_SNIFF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How many leading bytes are enough for every format but large-header JPEGs. */
#define NB_SNIFF_WANT 4096

/* MIME type from magic bytes: "image/png", "image/jpeg", "image/webp",
 * "image/gif", "image/heic", "image/heif", "image/avif", "image/bmp";
 * NULL when unknown. The string is static. */
const char *nb_sniff_mime(const uint8_t *p, size_t n);

/* Width and height from the image header. Returns 1 and sets *w, *h when
 * found; 0 when the format is unknown or the prefix is too short. */
int nb_sniff_size(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h);

#ifdef __cplusplus
}
#endif
#endif
