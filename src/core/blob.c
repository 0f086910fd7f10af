/*
 * blob.c - image bytes in memory or in temporary files (see blob.h).
 *
 * Growth, chosen at configure time (platform.h):
 *   - NB_HAVE_MREMAP (Linux): an anonymous mapping grown with mremap, so
 *     the bytes received so far are never copied; from 2 MiB on the
 *     mapping is offered to transparent huge pages (NB_HAVE_MADV_HUGEPAGE)
 *     so a 4K image costs a few page faults instead of thousands;
 *   - otherwise (POSIX.1-2008: macOS, the BSDs, NB_PORTABLE): realloc.
 * Either way the capacity doubles from NB_BLOB_FIRST and is trimmed to the
 * data when the blob is handed over.
 */
#include "platform.h"
#if (NB_HAVE_MREMAP || NB_HAVE_SYNC_FILE_RANGE) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* mremap, MAP_ANONYMOUS, sync_file_range: only when found */
#endif
#include "blob.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if NB_HAVE_MREMAP
#include <sys/mman.h>
#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON) /* older BSD spelling */
#define MAP_ANONYMOUS MAP_ANON
#endif
#endif

#define NB_BLOB_FIRST ((size_t)64 * 1024)
#define NB_BLOB_HUGE ((size_t)2 * 1024 * 1024)

struct nb_blobmem {
    uint8_t *p;
    size_t len, cap;
    unsigned refs; /* under mu */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t live_count, live_bytes; /* under mu: blobs alive, their capacity */

#ifdef NB_BLOB_TESTING
static unsigned fail_countdown; /* under mu */
void nb_blob_test_fail_alloc(unsigned n)
{
    pthread_mutex_lock(&mu);
    fail_countdown = n;
    pthread_mutex_unlock(&mu);
}
static int injected_failure(void)
{
    int fail = 0;
    pthread_mutex_lock(&mu);
    if (fail_countdown > 0 && --fail_countdown == 0) fail = 1;
    pthread_mutex_unlock(&mu);
    return fail;
}
#else
#define injected_failure() 0
#endif

static void account(size_t old_cap, size_t new_cap, int count_delta)
{
    pthread_mutex_lock(&mu);
    live_bytes = live_bytes - old_cap + new_cap;
    live_count = (uint64_t)((int64_t)live_count + count_delta);
    pthread_mutex_unlock(&mu);
}

void nb_blob_stats(uint64_t *count, uint64_t *bytes)
{
    pthread_mutex_lock(&mu);
    if (count) *count = live_count;
    if (bytes) *bytes = live_bytes;
    pthread_mutex_unlock(&mu);
}

/* The block resized to cap bytes (cap > 0); NULL when out of memory (the
 * old block is untouched). */
static uint8_t *block_resize(uint8_t *p, size_t old_cap, size_t cap)
{
    void *np;
    if (injected_failure()) return NULL;
#if NB_HAVE_MREMAP
    if (p) np = mremap(p, old_cap, cap, MREMAP_MAYMOVE);
    else np = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (np == MAP_FAILED) return NULL;
#if NB_HAVE_MADV_HUGEPAGE
    if (cap >= NB_BLOB_HUGE) (void)madvise(np, cap, MADV_HUGEPAGE);
#endif
#else
    (void)old_cap;
    np = realloc(p, cap);
#endif
    return np;
}

static void block_free(uint8_t *p, size_t cap)
{
    if (!p) return;
#if NB_HAVE_MREMAP
    munmap(p, cap);
#else
    (void)cap;
    free(p);
#endif
}

nb_blobmem *nb_blobmem_new(void)
{
    nb_blobmem *m;
    if (injected_failure()) return NULL;
    m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->refs = 1;
    account(0, 0, 1);
    return m;
}

int nb_blobmem_append(nb_blobmem *m, const uint8_t *p, size_t n)
{
    if (n == 0) return 0;
    if (n > SIZE_MAX - m->len) return -1;
    if (m->len + n > m->cap) {
        size_t need = m->len + n, cap = m->cap ? m->cap : NB_BLOB_FIRST;
        uint8_t *np;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        np = block_resize(m->p, m->cap, cap);
        if (!np) return -1;
        account(m->cap, cap, 0);
        m->p = np;
        m->cap = cap;
    }
    memcpy(m->p + m->len, p, n);
    m->len += n;
    return 0;
}

void nb_blobmem_trim(nb_blobmem *m)
{
    size_t want;
    uint8_t *np;
    if (!m->p) return;
    if (m->len == 0) {
        block_free(m->p, m->cap);
        account(m->cap, 0, 0);
        m->p = NULL;
        m->cap = 0;
        return;
    }
#if NB_HAVE_MREMAP
    {
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        want = (m->len + pg - 1) / pg * pg;
    }
    if (want >= m->cap) return;
    np = mremap(m->p, m->cap, want, 0); /* shrinking in place */
    if (np == MAP_FAILED) return;
#else
    want = m->len;
    if (want >= m->cap) return;
    np = realloc(m->p, want);
    if (!np) return; /* the bigger block stays: still correct */
#endif
    account(m->cap, want, 0);
    m->p = np;
    m->cap = want;
}

const uint8_t *nb_blobmem_data(const nb_blobmem *m, size_t *len)
{
    *len = m->len;
    return m->p ? m->p : (const uint8_t *)"";
}

nb_blobmem *nb_blobmem_retain(nb_blobmem *m)
{
    pthread_mutex_lock(&mu);
    m->refs++;
    pthread_mutex_unlock(&mu);
    return m;
}

void nb_blobmem_release(nb_blobmem *m)
{
    unsigned left;
    if (!m) return;
    pthread_mutex_lock(&mu);
    left = --m->refs;
    if (left == 0) {
        live_bytes -= m->cap;
        live_count--;
    }
    pthread_mutex_unlock(&mu);
    if (left > 0) return;
    block_free(m->p, m->cap);
    free(m);
}

/* ------------------------------------------------------------------ sets */

int nb_blobs_begin(nb_blobs *bs, unsigned idx, const char *dir, nb_blob_mkfile mkfile, void *ud,
                   char *err, size_t errlen)
{
    nb_blob *b;
    if (idx != bs->n) {
        snprintf(err, errlen, "image %u out of order", idx + 1);
        return NB_BLOB_EIO;
    }
    if (bs->n == bs->cap) {
        unsigned nc = bs->cap ? bs->cap * 2 : 4;
        nb_blob *nv = realloc(bs->v, nc * sizeof *nv);
        if (!nv) goto oom;
        bs->v = nv;
        bs->cap = nc;
    }
    b = &bs->v[bs->n++];
    memset(b, 0, sizeof *b);
    b->fd = -1;
    if (!dir) {
        b->mem = nb_blobmem_new();
        if (!b->mem) goto oom;
        return NB_BLOB_OK;
    }
    {
        size_t n = strlen(dir) + 32;
        b->path = malloc(n);
        if (!b->path) goto oom;
        snprintf(b->path, n, "%s/.nanobanana-XXXXXX", dir);
        /* O_EXCL, close-on-exec, 0666 less the umask: it may become the
         * output= file as it is */
        b->fd = mkfile ? mkfile(ud, b->path) : nb_mkstemp(b->path);
        if (b->fd < 0) {
            snprintf(err, errlen, "cannot create a temporary file in %s: %s", dir, strerror(errno));
            free(b->path);
            b->path = NULL;
            return NB_BLOB_EIO;
        }
    }
    return NB_BLOB_OK;
oom:
    snprintf(err, errlen, "out of memory starting image %u", idx + 1);
    return NB_BLOB_ENOMEM;
}

int nb_blobs_write(nb_blobs *bs, unsigned idx, const uint8_t *p, size_t n, char *err,
                   size_t errlen)
{
    nb_blob *b = &bs->v[idx];
    if (b->fd >= 0) {
        while (n > 0) {
            ssize_t w = write(b->fd, p, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                snprintf(err, errlen, "cannot write %s: %s", b->path, strerror(errno));
                return NB_BLOB_EIO;
            }
            p += w;
            n -= (size_t)w;
            b->bytes += (uint64_t)w;
        }
        return NB_BLOB_OK;
    }
    if (!b->mem || nb_blobmem_append(b->mem, p, n) != 0) {
        snprintf(err, errlen, "out of memory decoding image %u (%llu bytes so far)", idx + 1,
                 (unsigned long long)b->bytes);
        return NB_BLOB_ENOMEM;
    }
    b->bytes += n;
    return NB_BLOB_OK;
}

int nb_blobs_end(nb_blobs *bs, unsigned idx, int flush, char *err, size_t errlen)
{
    nb_blob *b = &bs->v[idx];
    (void)flush;
    if (b->fd < 0) return NB_BLOB_OK;
#if NB_HAVE_SYNC_FILE_RANGE
    /* start writeback here, on the worker: a rename over an existing file
     * (output=) would otherwise make ext4 allocate and submit the whole
     * file inside the caller's rename(2) */
    if (flush) (void)sync_file_range(b->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
    if (close(b->fd) != 0) {
        b->fd = -1;
        snprintf(err, errlen, "cannot write %s: %s", b->path, strerror(errno));
        return NB_BLOB_EIO;
    }
    b->fd = -1;
    return NB_BLOB_OK;
}

void nb_blobs_close_files(nb_blobs *bs)
{
    unsigned i;
    for (i = 0; i < bs->n; i++)
        if (bs->v[i].fd >= 0) {
            close(bs->v[i].fd);
            bs->v[i].fd = -1;
        }
}

void nb_blobs_free(nb_blobs *bs)
{
    unsigned i;
    for (i = 0; i < bs->n; i++) {
        nb_blob *b = &bs->v[i];
        if (b->fd >= 0) close(b->fd);
        if (b->path && !b->taken) unlink(b->path);
        free(b->path);
        nb_blobmem_release(b->mem);
    }
    free(bs->v);
    bs->v = NULL;
    bs->n = bs->cap = 0;
}

unsigned nb_blobs_count(const nb_blobs *bs) { return bs->n; }

nb_blobmem *nb_blobs_take(nb_blobs *bs, unsigned i)
{
    nb_blobmem *m;
    if (i >= bs->n || bs->v[i].path || bs->v[i].taken || !bs->v[i].mem) return NULL;
    m = bs->v[i].mem;
    bs->v[i].mem = NULL;
    bs->v[i].taken = 1;
    nb_blobmem_trim(m);
    return m;
}

const char *nb_blobs_path(const nb_blobs *bs, unsigned i)
{
    if (i >= bs->n) return NULL;
    return bs->v[i].path;
}

void nb_blobs_take_path(nb_blobs *bs, unsigned i)
{
    if (i < bs->n && bs->v[i].path) bs->v[i].taken = 1;
}
