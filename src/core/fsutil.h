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

/* Every descriptor opened here is close-on-exec; every file created gets
 * mode 0666 & ~umask. Any thread may call these (no shared state). */

/* Opens path for reading if it is a regular file (checked with stat before
 * opening, so a FIFO, a device or a directory is never opened, and again
 * with fstat; O_NONBLOCK|O_CLOEXEC|O_NOCTTY). *size (if size) gets its
 * size. Returns the fd (the caller closes it), or -1 with err set. */
int nb_open_regular(const char *path, uint64_t *size, char *err, size_t errlen);

/* mkstemp(3), but the file is created with mode 0666 (the umask applies,
 * like any file the caller creates) and O_CLOEXEC. tmpl ends in "XXXXXX",
 * which is replaced. Returns the fd, or -1 with errno set. */
int nb_mkstemp(char *tmpl);

/* 0 if path does not exist (*exists = 0) or is a regular file (*exists =
 * 1); -1 with err set if it is anything else (a device, FIFO, socket,
 * directory, symlink): such a node is never replaced. exists may be NULL. */
int nb_check_replaceable(const char *path, int *exists, char *err, size_t errlen);

/* Where a write to path goes: symlinks are followed (a dangling one to the
 * file it would create), so the link stays a link and its target is
 * written. Returns 0 with the resolved path in out (outlen bytes, the
 * caller's) if it does not exist or is a regular file (*exists tells
 * which; exists may be NULL), else -1 with err set (not a regular file, a
 * loop, too long for out). */
int nb_output_target(const char *path, char *out, size_t outlen, int *exists, char *err,
                     size_t errlen);

/* Writes len bytes to a new temporary file beside path's target (see
 * nb_output_target), fsyncs nothing, then renames it over the target. On
 * any failure the temporary file is removed, an existing file at path is
 * untouched, and -1 is returned; a target that is not a regular file is
 * a failure (never replaced). */
int nb_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* Copies the file src to dst atomically (as nb_write_atomic). */
int nb_copy_atomic(const char *src, const char *dst, char *err, size_t errlen);

/* Reads up to n leading bytes of path into buf; *got receives the count
 * and *size the file's size. Returns 0, or -1 if the path cannot be read
 * or is not a regular file (opened as nb_open_regular: never blocks). */
int nb_read_prefix(const char *path, uint8_t *buf, size_t n, size_t *got, uint64_t *size,
                   char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
