/*
 * blob.h - the decoded images of a response: each one's bytes in memory
 * (nb_blobmem) or in a temporary file, and a response's set of them
 * (nb_blobs). No Lua, no libcurl.
 *
 * Memory grows with the data: geometric growth (x2) from a small first
 * block, by realloc, or by mmap + mremap where the build found mremap
 * (CMake: NB_HAVE_MREMAP; the bytes received so far are never copied), so
 * a blob costs what it holds (at most twice that in address space while it
 * grows, and exactly its pages once handed over). No fixed reservation.
 *
 * Ownership:
 *   - A set (nb_blobs) is owned by whoever embeds it (a transfer, or one
 *     stream event: transport.h). nb_blobs_free() frees it: it closes the
 *     files, deletes the temporary files not taken, and drops the set's
 *     reference to each memory blob.
 *   - nb_blobmem is reference counted. nb_blobs_take() hands memory blob i
 *     to the caller with one reference; nb_blobmem_retain() adds one,
 *     nb_blobmem_release() drops one and frees the bytes with the last.
 *     A transfer whose body segment borrows a blob's bytes holds a
 *     reference for as long as it may read them (transport.h nb_seg.mem).
 *   - Error messages go to the caller's err buffer (size errlen).
 *
 * Threads:
 *   - nb_blobs_begin/write/end/close_files run on the engine's worker
 *     while the transfer runs; once the transfer is done (published under
 *     the engine's lock) the set belongs to the caller's thread. A set is
 *     never used by two threads at once.
 *   - nb_blobmem_retain/release and nb_blob_stats may be called from any
 *     thread (counts under a process-wide lock). The bytes of a taken blob
 *     never change: any thread may read them while it holds a reference.
 */
#ifndef NB_BLOB_H
#define NB_BLOB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- one image's bytes in memory */
typedef struct nb_blobmem nb_blobmem;

/* A new empty blob with one reference; NULL when out of memory. */
nb_blobmem *nb_blobmem_new(void);
/* Appends n bytes (the blob must not have been shared yet: one owner).
 * Returns 0, or -1 when out of memory (the blob keeps what it had). */
int nb_blobmem_append(nb_blobmem *m, const uint8_t *p, size_t n);
/* Gives back the memory beyond the data (before sharing it). */
void nb_blobmem_trim(nb_blobmem *m);
/* The bytes (never NULL; "" when empty) and their count. */
const uint8_t *nb_blobmem_data(const nb_blobmem *m, size_t *len);
nb_blobmem *nb_blobmem_retain(nb_blobmem *m);
void nb_blobmem_release(nb_blobmem *m); /* NULL: no-op */

/* Memory blobs alive in the process, and their bytes (diagnostics, tests). */
void nb_blob_stats(uint64_t *count, uint64_t *bytes);

/* ---- a response's images (or one stream event's); i is 0-based */
typedef struct nb_blob {
    nb_blobmem *mem; /* memory mode: owned by the set until taken */
    char *path;      /* file mode: temporary path (deleted unless taken) */
    int fd;          /* file mode: open while being written */
    int taken;       /* path or memory handed to the caller */
    uint64_t bytes;  /* decoded bytes so far */
} nb_blob;

typedef struct nb_blobs {
    nb_blob *v;
    unsigned n, cap;
} nb_blobs;

/* Return codes of the writer side. */
enum { NB_BLOB_OK = 0, NB_BLOB_EIO = -1, NB_BLOB_ENOMEM = -2 };

/* Worker side. begin starts blob idx (== the count so far), in memory, or,
 * with dir, in a new temporary file there (close-on-exec, mode 0666 less
 * the umask, so it can be renamed into place as is). write
 * appends decoded bytes. end finishes it; flush: start the file's
 * writeback now (where the system can: sync_file_range, else nothing), so
 * a later rename over an existing file does not pay for it. Each returns
 * NB_BLOB_OK, or NB_BLOB_EIO / NB_BLOB_ENOMEM with a message in err. */
/* mkfile(ud, path): makes the temporary file from the template path (as
 * nb_mkstemp, fsutil.h), returning its fd or -1 with errno; NULL: nb_mkstemp
 * itself (the engine passes its own, which records the files it makes). */
typedef int (*nb_blob_mkfile)(void *ud, char *path);
int nb_blobs_begin(nb_blobs *bs, unsigned idx, const char *dir, nb_blob_mkfile mkfile, void *ud,
                   char *err, size_t errlen);
int nb_blobs_write(nb_blobs *bs, unsigned idx, const uint8_t *p, size_t n, char *err,
                   size_t errlen);
int nb_blobs_end(nb_blobs *bs, unsigned idx, int flush, char *err, size_t errlen);
/* Closes the files still open (a transfer that ended early). */
void nb_blobs_close_files(nb_blobs *bs);
void nb_blobs_free(nb_blobs *bs);

/* Caller side, once the set is the caller's. */
unsigned nb_blobs_count(const nb_blobs *bs);
/* Hands memory blob i over, trimmed to its bytes, with one reference (the
 * set forgets it). NULL if blob i is a file, was taken, or does not exist. */
nb_blobmem *nb_blobs_take(nb_blobs *bs, unsigned i);
/* File blob: its temporary path (NULL if in memory). */
const char *nb_blobs_path(const nb_blobs *bs, unsigned i);
/* The caller takes responsibility for the file (it will not be deleted). */
void nb_blobs_take_path(nb_blobs *bs, unsigned i);

#ifdef NB_BLOB_TESTING
/* Test builds only (tests/core/test_blob.c): the n-th allocation of blob
 * memory from now on fails (0: none). */
void nb_blob_test_fail_alloc(unsigned n);
#endif

#ifdef __cplusplus
}
#endif
#endif
