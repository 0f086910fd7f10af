/*
 * test_blob.c - blob memory and blob sets (blob.c, built here with
 * NB_BLOB_TESTING for its allocation-failure hook): exact bytes across
 * growth, memory proportional to the data, reference counts, taking,
 * temporary files, and out of memory as NB_BLOB_ENOMEM with its message.
 */
#include "blob.h"
#define CHECK_RNG_SEED 0x2545F4914F6CDD1Dull
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t live_bytes(void)
{
    uint64_t n = 0, b = 0;
    nb_blob_stats(&n, &b);
    return b;
}

static uint64_t live_count(void)
{
    uint64_t n = 0;
    nb_blob_stats(&n, NULL);
    return n;
}

static void test_growth_and_bytes(void)
{
    size_t total = 5 * 1024 * 1024 + 17, off = 0, len = 0;
    uint8_t *src = malloc(total);
    const uint8_t *got;
    nb_blobmem *m;
    size_t i;
    for (i = 0; i < total; i++) src[i] = (uint8_t)(i * 131 + (i >> 9));
    m = nb_blobmem_new();
    CHECK(m != NULL);
    CHECK_EQ_U(live_count(), 1);
    got = nb_blobmem_data(m, &len);
    CHECK(got != NULL);
    CHECK_EQ_U(len, 0);
    /* uneven pieces, as a scanner delivers them */
    while (off < total) {
        size_t k = 1 + (size_t)(rnd() % 70000);
        if (k > total - off) k = total - off;
        CHECK_EQ_I(nb_blobmem_append(m, src + off, k), 0);
        off += k;
        /* never more than twice the data (plus the first block) */
        CHECK(live_bytes() <= 2 * off + 64 * 1024);
    }
    got = nb_blobmem_data(m, &len);
    CHECK_MEM(got, len, src, total);
    nb_blobmem_trim(m);
    CHECK(live_bytes() >= total);
    CHECK(live_bytes() < total + 65536); /* trimmed: its pages, no more */
    got = nb_blobmem_data(m, &len);
    CHECK_MEM(got, len, src, total);
    /* a second reference keeps the bytes alive after the first goes */
    CHECK(nb_blobmem_retain(m) == m);
    nb_blobmem_release(m);
    CHECK_EQ_U(live_count(), 1);
    got = nb_blobmem_data(m, &len);
    CHECK_MEM(got, len, src, total);
    nb_blobmem_release(m);
    CHECK_EQ_U(live_count(), 0);
    CHECK_EQ_U(live_bytes(), 0);
    nb_blobmem_release(NULL);
    free(src);
}

static void test_set_memory(void)
{
    nb_blobs bs;
    char err[256];
    nb_blobmem *m;
    const uint8_t *p;
    size_t len;
    memset(&bs, 0, sizeof bs);
    CHECK_EQ_I(nb_blobs_begin(&bs, 0, NULL, NULL, NULL, err, sizeof err), NB_BLOB_OK);
    CHECK_EQ_I(nb_blobs_write(&bs, 0, (const uint8_t *)"hello ", 6, err, sizeof err), NB_BLOB_OK);
    CHECK_EQ_I(nb_blobs_write(&bs, 0, (const uint8_t *)"world", 5, err, sizeof err), NB_BLOB_OK);
    CHECK_EQ_I(nb_blobs_end(&bs, 0, 0, err, sizeof err), NB_BLOB_OK);
    CHECK_EQ_I(nb_blobs_begin(&bs, 1, NULL, NULL, NULL, err, sizeof err), NB_BLOB_OK);
    CHECK_EQ_I(nb_blobs_end(&bs, 1, 0, err, sizeof err), NB_BLOB_OK);
    CHECK_EQ_I(nb_blobs_begin(&bs, 5, NULL, NULL, NULL, err, sizeof err), NB_BLOB_EIO); /* out of order */
    CHECK_EQ_U(nb_blobs_count(&bs), 2);
    CHECK(nb_blobs_path(&bs, 0) == NULL);
    m = nb_blobs_take(&bs, 0);
    CHECK(m != NULL);
    CHECK(nb_blobs_take(&bs, 0) == NULL); /* once */
    CHECK(nb_blobs_take(&bs, 9) == NULL);
    p = nb_blobmem_data(m, &len);
    CHECK_MEM(p, len, "hello world", 11);
    CHECK_EQ_U(live_count(), 2);
    nb_blobs_free(&bs); /* frees blob 1; blob 0 is the caller's */
    CHECK_EQ_U(live_count(), 1);
    p = nb_blobmem_data(m, &len);
    CHECK_MEM(p, len, "hello world", 11);
    nb_blobmem_release(m);
    CHECK_EQ_U(live_count(), 0);
    /* an empty blob taken: "" and 0 bytes */
    memset(&bs, 0, sizeof bs);
    CHECK_EQ_I(nb_blobs_begin(&bs, 0, NULL, NULL, NULL, err, sizeof err), NB_BLOB_OK);
    m = nb_blobs_take(&bs, 0);
    p = nb_blobmem_data(m, &len);
    CHECK(p != NULL);
    CHECK_EQ_U(len, 0);
    nb_blobmem_release(m);
    nb_blobs_free(&bs);
}

static void test_set_files(void)
{
    char dir[] = "/tmp/nb-test-blob-XXXXXX", err[256], kept[512], gone[512];
    nb_blobs bs;
    FILE *f;
    char buf[64];
    size_t n;
    struct stat st;
    CHECK(mkdtemp(dir) != NULL);
    memset(&bs, 0, sizeof bs);
    CHECK_EQ_I(nb_blobs_begin(&bs, 0, dir, NULL, NULL, err, sizeof err), NB_BLOB_OK);
    CHECK_EQ_I(nb_blobs_write(&bs, 0, (const uint8_t *)"file one", 8, err, sizeof err), NB_BLOB_OK);
    CHECK_EQ_I(nb_blobs_end(&bs, 0, 1, err, sizeof err), NB_BLOB_OK);
    CHECK_EQ_I(nb_blobs_begin(&bs, 1, dir, NULL, NULL, err, sizeof err), NB_BLOB_OK);
    CHECK_EQ_I(nb_blobs_write(&bs, 1, (const uint8_t *)"two", 3, err, sizeof err), NB_BLOB_OK);
    CHECK(nb_blobs_take(&bs, 0) == NULL); /* a file is not memory */
    snprintf(kept, sizeof kept, "%s", nb_blobs_path(&bs, 0));
    snprintf(gone, sizeof gone, "%s", nb_blobs_path(&bs, 1));
    CHECK(strncmp(kept, dir, strlen(dir)) == 0);
    nb_blobs_take_path(&bs, 0);
    nb_blobs_close_files(&bs); /* blob 1 ended early */
    nb_blobs_free(&bs);
    CHECK(stat(gone, &st) != 0); /* not taken: deleted */
    f = fopen(kept, "rb");
    CHECK(f != NULL);
    if (f) {
        n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        CHECK_MEM(buf, n, "file one", 8);
    }
    unlink(kept);
    /* a directory that is not there: EIO with a message */
    memset(&bs, 0, sizeof bs);
    snprintf(kept, sizeof kept, "%s/missing", dir);
    CHECK_EQ_I(nb_blobs_begin(&bs, 0, kept, NULL, NULL, err, sizeof err), NB_BLOB_EIO);
    CHECK(strstr(err, "cannot create a temporary file in") != NULL);
    nb_blobs_free(&bs);
    rmdir(dir);
}

static void test_out_of_memory(void)
{
    nb_blobs bs;
    char err[256];
    static uint8_t chunk[100000];
    int rc = NB_BLOB_OK, i;
    memset(&bs, 0, sizeof bs);
    CHECK_EQ_I(nb_blobs_begin(&bs, 0, NULL, NULL, NULL, err, sizeof err), NB_BLOB_OK);
    nb_blob_test_fail_alloc(3); /* the first block, one growth, then failure */
    for (i = 0; i < 10 && rc == NB_BLOB_OK; i++)
        rc = nb_blobs_write(&bs, 0, chunk, sizeof chunk, err, sizeof err);
    CHECK_EQ_I(rc, NB_BLOB_ENOMEM);
    CHECK_STR(err, "out of memory decoding image 1 (200000 bytes so far)");
    nb_blob_test_fail_alloc(0);
    nb_blobs_free(&bs);
    CHECK_EQ_U(live_count(), 0);
    /* failing to start a blob */
    memset(&bs, 0, sizeof bs);
    nb_blob_test_fail_alloc(1);
    CHECK_EQ_I(nb_blobs_begin(&bs, 0, NULL, NULL, NULL, err, sizeof err), NB_BLOB_ENOMEM);
    CHECK_STR(err, "out of memory starting image 1");
    nb_blob_test_fail_alloc(0);
    nb_blobs_free(&bs);
    CHECK_EQ_U(live_count(), 0);
}

int main(void)
{
    test_growth_and_bytes();
    test_set_memory();
    test_set_files();
    test_out_of_memory();
    return check_done();
}
