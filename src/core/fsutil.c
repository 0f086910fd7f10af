/* fsutil.c - see fsutil.h */
#define _POSIX_C_SOURCE 200809L
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef O_NOCTTY
#define O_NOCTTY 0
#endif
#ifndef O_NONBLOCK
#define O_NONBLOCK 0
#endif

/* ------------------------------------------------------------------ safe opens */

int nb_open_regular(const char *path, uint64_t *size, char *err, size_t errlen)
{
    struct stat st;
    int fd;
    /* stat first: a FIFO, device or directory is never opened at all (an
     * open can block on a FIFO, or have side effects on a device) */
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cannot read %s: not a regular file", path);
        return -1;
    }
    /* O_NONBLOCK: if the path was swapped for a FIFO meanwhile, no hang */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cannot read %s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (size) *size = (uint64_t)st.st_size;
    return fd;
}

int nb_mkstemp(char *tmpl)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = strlen(tmpl), i;
    struct timespec ts;
    uint64_t r;
    int tries;
    char *x;
    if (n < 6 || strcmp(tmpl + n - 6, "XXXXXX") != 0) {
        errno = EINVAL;
        return -1;
    }
    x = tmpl + n - 6;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* no shared state (the worker and the caller's thread both call this):
     * time, pid and a stack address seed the names; O_EXCL settles races */
    r = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16)
        ^ (uint64_t)(uintptr_t)&ts;
    for (tries = 0; tries < 256; tries++) {
        uint64_t z;
        int fd;
        r += 0x9E3779B97F4A7C15ull; /* splitmix64 */
        z = r;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        for (i = 0; i < 6; i++) {
            x[i] = chars[z % 62];
            z /= 62;
        }
        /* 0666: the file gets the caller's umask, as any file it creates */
        fd = open(tmpl, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    errno = EEXIST;
    return -1;
}

int nb_check_replaceable(const char *path, int *exists, char *err, size_t errlen)
{
    struct stat st;
    if (exists) *exists = 0;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cannot write %s: not a regular file (only a regular file is replaced)", path);
        return -1;
    }
    if (exists) *exists = 1;
    return 0;
}

static char *resolve_target(const char *path, int *exists, char *err, size_t errlen)
{
    char *cur = malloc(strlen(path) + 1);
    int hops;
    if (!cur) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    strcpy(cur, path);
    for (hops = 0; hops < 40; hops++) {
        struct stat st;
        char link[4096], *next;
        ssize_t n;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) {
            if (nb_check_replaceable(cur, exists, err, errlen) != 0) {
                free(cur);
                return NULL;
            }
            return cur;
        }
        /* a symlink: its target is written (created if it dangles), the
         * link stays a link */
        n = readlink(cur, link, sizeof link - 1);
        if (n < 0 || (size_t)n >= sizeof link - 1) {
            snprintf(err, errlen, "cannot write %s: %s", path, n < 0 ? strerror(errno) : "link too long");
            free(cur);
            return NULL;
        }
        link[n] = '\0';
        if (link[0] == '/') {
            next = malloc((size_t)n + 1);
            if (next) memcpy(next, link, (size_t)n + 1);
        } else {
            const char *slash = strrchr(cur, '/');
            size_t dirlen = slash ? (size_t)(slash - cur) + 1 : 0;
            next = malloc(dirlen + (size_t)n + 1);
            if (next) {
                memcpy(next, cur, dirlen);
                memcpy(next + dirlen, link, (size_t)n + 1);
            }
        }
        free(cur);
        if (!next) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        cur = next;
    }
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(ELOOP));
    free(cur);
    return NULL;
}

int nb_output_target(const char *path, char *out, size_t outlen, int *exists, char *err,
                     size_t errlen)
{
    char *t = resolve_target(path, exists, err, errlen);
    size_t n;
    if (!t) return -1;
    n = strlen(t);
    if (n >= outlen) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(ENAMETOOLONG));
        free(t);
        return -1;
    }
    memcpy(out, t, n + 1);
    free(t);
    return 0;
}

/* ------------------------------------------------------------------ atomic writes */

/* "dir/name" -> "dir/.name.nb-XXXXXX" (same directory, so rename is atomic) */
static char *temp_beside(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dirlen;
    size_t n = strlen(path) + 16;
    char *t = malloc(n);
    if (!t) return NULL;
    snprintf(t, n, "%.*s.%s.nb-XXXXXX", (int)dirlen, path, base);
    return t;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* closes fd and renames tmp over path (the resolved target), or removes
 * tmp; frees tmp. The target is checked again just before the rename:
 * rename(2) would replace a device node or FIFO put there meanwhile. */
static int finish_temp(int fd, char *tmp, const char *path, int failed, int saved_errno,
                       char *err, size_t errlen)
{
    if (close(fd) != 0 && !failed) {
        failed = 1;
        saved_errno = errno;
    }
    if (!failed && nb_check_replaceable(path, NULL, err, errlen) != 0) {
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (!failed && rename(tmp, path) != 0) {
        failed = 1;
        saved_errno = errno;
    }
    if (failed) {
        unlink(tmp);
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(saved_errno));
    }
    free(tmp);
    return failed ? -1 : 0;
}

int nb_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    char *target = resolve_target(path, NULL, err, errlen), *tmp;
    int fd, failed = 0, e = 0, rc;
    if (!target) return -1;
    tmp = temp_beside(target);
    if (!tmp) {
        snprintf(err, errlen, "out of memory");
        free(target);
        return -1;
    }
    fd = nb_mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        free(tmp);
        free(target);
        return -1;
    }
    if (write_all(fd, data, len) != 0) {
        failed = 1;
        e = errno;
    }
    rc = finish_temp(fd, tmp, target, failed, e, err, errlen);
    free(target);
    return rc;
}

int nb_copy_atomic(const char *src, const char *dst, char *err, size_t errlen)
{
    uint8_t buf[65536];
    char *tmp, *target;
    int in, fd, failed = 0, e = 0, rc;
    in = nb_open_regular(src, NULL, err, errlen);
    if (in < 0) return -1;
    target = resolve_target(dst, NULL, err, errlen);
    if (!target) {
        close(in);
        return -1;
    }
    tmp = temp_beside(target);
    if (!tmp || (fd = nb_mkstemp(tmp)) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", dst, tmp ? strerror(errno) : "out of memory");
        free(tmp);
        free(target);
        close(in);
        return -1;
    }
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            failed = 1;
            e = errno;
            break;
        }
        if (r == 0) break;
        if (write_all(fd, buf, (size_t)r) != 0) {
            failed = 1;
            e = errno;
            break;
        }
    }
    close(in);
    rc = finish_temp(fd, tmp, target, failed, e, err, errlen);
    free(target);
    return rc;
}

int nb_read_prefix(const char *path, uint8_t *buf, size_t n, size_t *got, uint64_t *size,
                   char *err, size_t errlen)
{
    int fd = nb_open_regular(path, size, err, errlen);
    *got = 0;
    if (fd < 0) return -1;
    while (*got < n) {
        ssize_t r = read(fd, buf + *got, n - *got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    close(fd);
    return 0;
}
