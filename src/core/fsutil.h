/*
 * fsutil.h - the few file operations the library needs, done safely.
 * No Lua, no libcurl.
 *
 * Ownership: callers pass and own every buffer; nothing here allocates
 * memory that outlives a call. Error messages are written into the
 * caller's err buffer (size errlen, always NUL-terminated).
 */
#ifndef NB_FSUTIL_H
#define NB_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes len bytes to a new temporary file beside path, fsyncs nothing,
 * then renames it over path. On any failure the temporary file is removed,
 * an existing file at path is untouched, and -1 is returned. */
int nb_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* Copies the file src to dst atomically (as nb_write_atomic). */
int nb_copy_atomic(const char *src, const char *dst, char *err, size_t errlen);

/* Reads up to n leading bytes of path into buf; *got receives the count
 * and *size the file's size. Returns 0, or -1 if the path cannot be read
 * or is not a regular file. */
int nb_read_prefix(const char *path, uint8_t *buf, size_t n, size_t *got, uint64_t *size,
                   char *err, size_t errlen);

/* Whether files can be created in the directory dir (it exists, is a
 * directory, and is writable and searchable by this process, on a
 * filesystem mounted read-write). Returns 0, or -1 with the reason. */
int nb_dir_writable(const char *dir, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
