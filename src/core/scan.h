/*
 * scan.h - streaming scanner for generateContent response bodies.
 *
 * No Lua, no libcurl. The body is fed in chunks of any size (down to one
 * byte) exactly as the network delivers them. The scanner
 *   - validates the whole body as one JSON value (RFC 8259), reporting the
 *     first error with its byte offset in the body;
 *   - finds every string value whose key is "data" inside an object whose
 *     own key is "inlineData" (or "inline_data"), and base64-decodes it as it
 *     arrives (strict decoder of b64.h; the JSON escapes "\/", "\uXXXX" that
 *     yield base64 characters are decoded first, "\n"/"\r" escapes are
 *     skipped; any other escape there is an error), handing the bytes to the
 *     sink: blob_begin, blob_data (any number of times), blob_end;
 *   - copies everything else to the "skeleton": the body with each such
 *     string replaced by the placeholder string "nb:blob:N" (N = 0, 1, ...
 *     in document order), which is small and is handed to lua-cjson.
 *
 * Ownership: nb_scan_new() mallocs the scanner; nb_scan_free() frees it and
 * everything it owns (NULL is accepted). The skeleton and error strings
 * returned are owned by the scanner and valid until the next call that
 * feeds, resets or frees it. The sink struct is copied; its ud pointer is
 * borrowed and never freed here. Input chunks are borrowed for the call.
 */
#ifndef NB_SCAN_H
#define NB_SCAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_SCAN_PLACEHOLDER "nb:blob:" /* followed by the blob index */

/* Callbacks return 0 to continue, non-zero to abort the scan (the scan then
 * fails with NB_SCAN_ESINK and the message "aborted by sink"). */
typedef struct nb_scan_sink {
    int (*blob_begin)(void *ud, unsigned idx);
    int (*blob_data)(void *ud, unsigned idx, const uint8_t *p, size_t n);
    int (*blob_end)(void *ud, unsigned idx, uint64_t total_bytes);
    void *ud;
} nb_scan_sink;

enum {
    NB_SCAN_OK = 0,
    NB_SCAN_EJSON = -1,   /* malformed JSON */
    NB_SCAN_EBASE64 = -2, /* invalid base64 inside an inlineData.data */
    NB_SCAN_ESINK = -3,   /* a sink callback aborted */
    NB_SCAN_ELIMIT = -4,  /* skeleton larger than max_skeleton, or too deep */
    NB_SCAN_ENOMEM = -5,
    NB_SCAN_ETRUNC = -6   /* nb_scan_finish(): the body ended mid-value */
};

typedef struct nb_scan nb_scan;

/* sink may be NULL (blobs are then decoded and dropped). max_skeleton: cap
 * on the skeleton's size in bytes (0 = 64 MiB). Returns NULL on ENOMEM. */
nb_scan *nb_scan_new(const nb_scan_sink *sink, size_t max_skeleton);
void nb_scan_free(nb_scan *s);

/* Back to the initial state (blob numbering restarts at 0); keeps the sink
 * and the allocated skeleton capacity. Used between SSE events. */
void nb_scan_reset(nb_scan *s);

/* Feeds n more bytes. Returns NB_SCAN_OK or a negative code; after an error
 * every further call returns the same code. */
int nb_scan_feed(nb_scan *s, const char *p, size_t n);

/* Declares the end of the body: NB_SCAN_OK if exactly one complete JSON
 * value (plus whitespace) was seen, else NB_SCAN_ETRUNC / the first error. */
int nb_scan_finish(nb_scan *s);

/* The skeleton so far (complete after a successful finish). */
const char *nb_scan_skeleton(const nb_scan *s, size_t *len);

/* Number of blobs begun so far. */
unsigned nb_scan_blob_count(const nb_scan *s);

/* After an error: a static-lifetime-or-scanner-owned message such as
 * "expected ',' or '}'" and the byte offset (from the first byte fed
 * since new/reset) where it was detected. Returns NULL if no error.
 * Offsets: the offending byte; for base64 errors the bad base64 char, or
 * the '\' of an escape that yields a bad char, or the closing quote when
 * the base64 text ends early; for ETRUNC the body length. */
const char *nb_scan_error(const nb_scan *s, uint64_t *offset);

#ifdef __cplusplus
}
#endif
#endif
