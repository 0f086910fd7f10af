/*
 * test_fsutil.c - output targets, safe opens, temp files, atomic writes.
 *
 * Everything happens in a fresh mkdtemp directory: its own FIFOs, device
 * node (when mknod is allowed), symlinks. A blocking open of the FIFO
 * would hang the test (nobody writes to it): finishing is the check.
 */
#define _GNU_SOURCE
#include "check.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static char dir[64];

static const char *at(const char *name)
{
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static int is_cloexec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

static mode_t type_of(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    return st.st_mode & S_IFMT;
}

static char *slurp(const char *path)
{
    static char buf[256];
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f) return NULL;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_targets(void)
{
    char out[512], err[256];
    int exists = -1;
    FILE *f = fopen(at("real"), "w");
    fputs("old", f);
    fclose(f);
    CHECK(symlink("real", at("rel")) == 0);
    CHECK(symlink("rel", at("chain")) == 0);
    CHECK(symlink("missing", at("dangling")) == 0);
    CHECK(symlink("loop2", at("loop1")) == 0);
    CHECK(symlink("loop1", at("loop2")) == 0);
    CHECK(mkfifo(at("fifo"), 0600) == 0);
    CHECK(symlink("fifo", at("to-fifo")) == 0);
    CHECK(mkdir(at("sub"), 0700) == 0);

    CHECK_EQ_I(nb_output_target(at("new"), out, sizeof out, &exists, err, sizeof err), 0);
    CHECK(strcmp(out, at("new")) == 0);
    CHECK_EQ_I(exists, 0);
    CHECK_EQ_I(nb_output_target(at("real"), out, sizeof out, &exists, err, sizeof err), 0);
    CHECK_EQ_I(exists, 1);
    CHECK_EQ_I(nb_output_target(at("chain"), out, sizeof out, &exists, err, sizeof err), 0);
    CHECK(strcmp(out, at("real")) == 0);
    CHECK_EQ_I(exists, 1);
    CHECK_EQ_I(nb_output_target(at("dangling"), out, sizeof out, &exists, err, sizeof err), 0);
    CHECK(strcmp(out, at("missing")) == 0);
    CHECK_EQ_I(exists, 0);
    CHECK_EQ_I(nb_output_target(at("loop1"), out, sizeof out, &exists, err, sizeof err), -1);
    CHECK(strstr(err, strerror(ELOOP)) != NULL);
    CHECK_EQ_I(nb_output_target(at("fifo"), out, sizeof out, &exists, err, sizeof err), -1);
    CHECK(strstr(err, "not a regular file") != NULL);
    CHECK_EQ_I(nb_output_target(at("to-fifo"), out, sizeof out, &exists, err, sizeof err), -1);
    CHECK_EQ_I(nb_output_target(at("sub"), out, sizeof out, &exists, err, sizeof err), -1);
    CHECK_EQ_I(nb_output_target(at("real"), out, 4, &exists, err, sizeof err), -1); /* too long for out */
    CHECK(strstr(err, strerror(ENAMETOOLONG)) != NULL);
}

static void test_writes(void)
{
    char err[256];
    CHECK_EQ_I(nb_write_atomic(at("chain"), "new", 3, err, sizeof err), 0);
    CHECK(strcmp(slurp(at("real")), "new") == 0);
    CHECK_EQ_I(type_of(at("chain")), S_IFLNK);
    CHECK_EQ_I(type_of(at("rel")), S_IFLNK);
    CHECK_EQ_I(nb_write_atomic(at("dangling"), "made", 4, err, sizeof err), 0);
    CHECK(strcmp(slurp(at("missing")), "made") == 0);
    CHECK_EQ_I(type_of(at("dangling")), S_IFLNK);
    CHECK_EQ_I(nb_copy_atomic(at("missing"), at("rel"), err, sizeof err), 0);
    CHECK(strcmp(slurp(at("real")), "made") == 0);
    /* never replaced: a FIFO, a link to it, a directory; no temp file left */
    CHECK_EQ_I(nb_write_atomic(at("fifo"), "x", 1, err, sizeof err), -1);
    CHECK_EQ_I(nb_write_atomic(at("to-fifo"), "x", 1, err, sizeof err), -1);
    CHECK_EQ_I(nb_copy_atomic(at("real"), at("fifo"), err, sizeof err), -1);
    CHECK_EQ_I(nb_write_atomic(at("sub"), "x", 1, err, sizeof err), -1);
    CHECK_EQ_I(type_of(at("fifo")), S_IFIFO);
    CHECK_EQ_I(type_of(at("sub")), S_IFDIR);
    /* copying from a FIFO: an error at once */
    CHECK_EQ_I(nb_copy_atomic(at("fifo"), at("x"), err, sizeof err), -1);
    CHECK_EQ_I(type_of(at("x")), 0);
    if (mknod(at("null"), S_IFCHR | 0666, makedev(1, 3)) == 0) {
        CHECK_EQ_I(nb_write_atomic(at("null"), "x", 1, err, sizeof err), -1);
        CHECK(strstr(err, "not a regular file") != NULL);
        CHECK_EQ_I(type_of(at("null")), S_IFCHR);
    } else {
        printf("test_fsutil: mknod not permitted here; device case skipped\n");
    }
}

static void test_opens(void)
{
    char err[256];
    uint64_t size = 0;
    uint8_t buf[8];
    size_t got = 9;
    int fd = nb_open_regular(at("real"), &size, err, sizeof err);
    CHECK(fd >= 0);
    CHECK_EQ_I(size, 4);
    if (fd >= 0) {
        CHECK(is_cloexec(fd));
        close(fd);
    }
    CHECK_EQ_I(nb_open_regular(at("fifo"), &size, err, sizeof err), -1);
    CHECK(strstr(err, "not a regular file") != NULL);
    CHECK_EQ_I(nb_open_regular(at("sub"), &size, err, sizeof err), -1);
    CHECK_EQ_I(nb_open_regular(at("nothing"), &size, err, sizeof err), -1);
    CHECK_EQ_I(nb_read_prefix(at("to-fifo"), buf, sizeof buf, &got, &size, err, sizeof err), -1);
    CHECK_EQ_I(got, 0);
    CHECK_EQ_I(nb_read_prefix(at("chain"), buf, sizeof buf, &got, &size, err, sizeof err), 0);
    CHECK_EQ_I(got, 4);
    CHECK(memcmp(buf, "made", 4) == 0);
}

static void test_modes(void)
{
    static const mode_t masks[] = { 027, 002, 077, 0 };
    size_t i;
    for (i = 0; i < sizeof masks / sizeof masks[0]; i++) {
        char tmpl[256], err[256];
        struct stat st;
        mode_t old = umask(masks[i]);
        int fd;
        snprintf(tmpl, sizeof tmpl, "%s/.t-XXXXXX", dir);
        fd = nb_mkstemp(tmpl);
        CHECK(fd >= 0);
        if (fd >= 0) {
            CHECK(is_cloexec(fd));
            CHECK(fstat(fd, &st) == 0);
            CHECK_EQ_I(st.st_mode & 0777, 0666 & ~masks[i]);
            close(fd);
            unlink(tmpl);
        }
        CHECK_EQ_I(nb_write_atomic(at("moded"), "m", 1, err, sizeof err), 0);
        CHECK(stat(at("moded"), &st) == 0);
        CHECK_EQ_I(st.st_mode & 0777, 0666 & ~masks[i]);
        umask(old);
    }
    {
        char bad[] = "no-x-template";
        CHECK_EQ_I(nb_mkstemp(bad), -1);
        CHECK_EQ_I(errno, EINVAL);
    }
}

int main(void) /* (rnd from check.h is not needed here) */
{
    char cmd[128];
    (void)rnd;
    snprintf(dir, sizeof dir, "%s", "/tmp/nb-fsutil-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_targets();
    test_writes();
    test_opens();
    test_modes();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_done();
}
