/* fsutil.c - see fsutil.h */
#define _POSIX_C_SOURCE 200809L
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static int finish_temp(int fd, char *tmp, const char *path, int failed, int saved_errno,
                       char *err, size_t errlen)
{
    if (!failed && fchmod(fd, 0644) != 0) { /* mkstemp makes 0600 */
        failed = 1;
        saved_errno = errno;
    }
    if (close(fd) != 0 && !failed) {
        failed = 1;
        saved_errno = errno;
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
    char *tmp = temp_beside(path);
    int fd, failed = 0, e = 0;
    if (!tmp) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    if (write_all(fd, data, len) != 0) {
        failed = 1;
        e = errno;
    }
    return finish_temp(fd, tmp, path, failed, e, err, errlen);
}

int nb_copy_atomic(const char *src, const char *dst, char *err, size_t errlen)
{
    uint8_t buf[65536];
    char *tmp;
    int in, fd, failed = 0, e = 0;
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        snprintf(err, errlen, "cannot read %s: %s", src, strerror(errno));
        return -1;
    }
    tmp = temp_beside(dst);
    if (!tmp || (fd = mkstemp(tmp)) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", dst, tmp ? strerror(errno) : "out of memory");
        free(tmp);
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
    return finish_temp(fd, tmp, dst, failed, e, err, errlen);
}

int nb_read_prefix(const char *path, uint8_t *buf, size_t n, size_t *got, uint64_t *size,
                   char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *got = 0;
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cannot read %s: not a regular file", path);
        close(fd);
        return -1;
    }
    *size = (uint64_t)st.st_size;
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

int nb_dir_writable(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "cannot write into %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot write into %s: %s", dir, strerror(ENOTDIR));
        return -1;
    }
    /* access() also answers EROFS, which is what refuses root */
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "cannot write into %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}
