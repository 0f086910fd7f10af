/*
 * test_sniff.c - MIME type and pixel size from image headers.
 *
 * Every call gets its bytes in an exact-size malloc'd copy, so reading one
 * byte past n is caught by ASan / valgrind.
 */
#define CHECK_RNG_SEED 0xD1B54A32D192ED03ull
#include "check.h"
#include "sniff.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------- samples */

static const uint8_t png[] = {
    0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',            /* signature */
    0, 0, 0, 13, 'I', 'H', 'D', 'R',                        /* IHDR */
    0, 0, 0x04, 0x00, 0, 0, 0x03, 0x00,                     /* 1024 x 768 */
    8, 6, 0, 0, 0, 0x12, 0x34, 0x56, 0x78,                  /* ... crc */
};

static const uint8_t gif[] = {
    'G', 'I', 'F', '8', '9', 'a', 0x40, 0x01, 0xc8, 0x00, /* 320 x 200 */
    0xf7, 0x00, 0x00,
};

static const uint8_t gif87[] = {'G', 'I', 'F', '8', '7', 'a', 0x01, 0x00, 0x02, 0x00, 0, 0, 0};

static const uint8_t bmp[] = {
    'B', 'M', 0x36, 0x10, 0x0e, 0x00, 0, 0, 0, 0, 0x36, 0, 0, 0, /* file header */
    40, 0, 0, 0,                                                 /* BITMAPINFOHEADER */
    0x80, 0x02, 0x00, 0x00,                                      /* width 640 */
    0x20, 0xfe, 0xff, 0xff,                                      /* height -480 */
    1, 0, 24, 0, 0, 0, 0, 0,
};

static const uint8_t bmp_core[] = {
    'B', 'M', 0, 0, 0, 0, 0, 0, 0, 0, 0x1a, 0, 0, 0, /* file header */
    12, 0, 0, 0,                                     /* BITMAPCOREHEADER */
    100, 0, 50, 0,                                   /* 100 x 50 */
    1, 0, 24, 0,
};

static const uint8_t webp_vp8[] = {
    'R', 'I', 'F', 'F', 0x24, 0, 0, 0, 'W', 'E', 'B', 'P',
    'V', 'P', '8', ' ', 0x18, 0, 0, 0,
    0x30, 0x01, 0x00,                  /* frame tag */
    0x9d, 0x01, 0x2a,                  /* start code */
    0x26, 0x42,                        /* width 550 with horizontal scale bits 01 */
    0x2c, 0x01,                        /* height 300 */
    0, 0,
};

static const uint8_t webp_vp8l[] = {
    'R', 'I', 'F', 'F', 0x1a, 0, 0, 0, 'W', 'E', 'B', 'P',
    'V', 'P', '8', 'L', 0x0d, 0, 0, 0,
    0x2f,                              /* signature */
    0x8f, 0x01, 0x4b, 0x10,            /* 400 x 301, alpha, version 0 */
    0, 0, 0,
};

static const uint8_t webp_vp8x[] = {
    'R', 'I', 'F', 'F', 0x40, 0, 0, 0, 'W', 'E', 'B', 'P',
    'V', 'P', '8', 'X', 10, 0, 0, 0,
    0x10, 0, 0, 0,                     /* flags (alpha), reserved */
    0x87, 0x13, 0x00,                  /* width - 1 = 4999 */
    0xb7, 0x0b, 0x00,                  /* height - 1 = 2999 */
    'A', 'L', 'P', 'H',
};

static const uint8_t jpeg_baseline[] = {
    0xff, 0xd8,                                           /* SOI */
    0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, /* APP0 */
    0xff, 0xe1, 0x00, 0x0c, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 0x2a,      /* APP1 */
    0xff, 0xfe, 0x00, 0x04, 'h', 'i',                     /* COM */
    0xff, 0xff, 0xff,                                     /* fill bytes */
    0xc0, 0x00, 0x11, 0x08, 0x02, 0x58, 0x03, 0x20,       /* SOF0: 800 x 600 */
    0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01,
    0xff, 0xda, 0x00, 0x08,                               /* SOS ... */
};

static const uint8_t jpeg_progressive[] = {
    0xff, 0xd8,
    0xff, 0xdb, 0x00, 0x05, 0x00, 0x01, 0x02,             /* DQT (shortened) */
    0xff, 0xc4, 0x00, 0x06, 0x00, 0x01, 0x02, 0x03,       /* DHT: not a SOF */
    0xff, 0xcc, 0x00, 0x04, 0x01, 0x02,                   /* DAC: not a SOF */
    0xff, 0x01,                                           /* TEM: standalone */
    0xff, 0xd0,                                           /* RST0: standalone */
    0xff, 0xdd, 0x00, 0x04, 0x00, 0x10,                   /* DRI */
    0xff, 0xc2, 0x00, 0x0b, 0x08, 0x01, 0xe0, 0x02, 0x80, /* SOF2: 640 x 480 */
    0x01, 0x01, 0x11, 0x00,
};

static const uint8_t heic[] = {
    0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'h', 'e', 'i', 'c', 0, 0, 0, 0,
    'm', 'i', 'f', '1', 'h', 'e', 'i', 'c',
    0, 0, 0, 0x30, 'm', 'e', 't', 'a', 0, 0, 0, 0,
    0, 0, 0, 0x24, 'i', 'p', 'r', 'p',
    0, 0, 0, 0x1c, 'i', 'p', 'c', 'o',
    0, 0, 0, 0x14, 'i', 's', 'p', 'e', 0, 0, 0, 0,
    0x00, 0x00, 0x0f, 0xc0,            /* 4032 */
    0x00, 0x00, 0x0b, 0xd0,            /* 3024 */
};

/* a thumbnail (and a grid tile) before the primary image's ispe */
static const uint8_t heic_multi[] = {
    0, 0, 0, 0x14, 'f', 't', 'y', 'p', 'm', 'i', 'f', '1', 0, 0, 0, 0,
    'h', 'e', 'i', 'c',
    0, 0, 0, 0x14, 'i', 's', 'p', 'e', 0, 0, 0, 0, 0, 0, 0x01, 0x40, 0, 0, 0, 0xf0,
    0, 0, 0, 0x14, 'i', 's', 'p', 'e', 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0, 0, 0x02, 0x00,
    0, 0, 0, 0x10, 'i', 's', 'p', 'e', 0, 0, 0, 0, 0, 0, 0x7f, 0xff, /* bad size */
    0, 0, 0, 0x14, 'i', 's', 'p', 'e', 0, 0, 0, 0, 0, 0, 0x10, 0x00, 0, 0, 0x0c, 0x00,
};

static const uint8_t avif[] = {
    0, 0, 0, 0x1c, 'f', 't', 'y', 'p', 'a', 'v', 'i', 'f', 0, 0, 0, 0,
    'a', 'v', 'i', 'f', 'm', 'i', 'f', '1', 'm', 'i', 'a', 'f',
    0, 0, 0, 0x14, 'i', 's', 'p', 'e', 0, 0, 0, 0,
    0, 0, 0x05, 0x00, 0, 0, 0x02, 0xd0, /* 1280 x 720 */
};

typedef struct {
    const char *name;
    const uint8_t *p;
    size_t n;
    const char *mime;
    size_t magic; /* shortest prefix with the right MIME */
    uint32_t w, h;
    size_t need; /* shortest prefix with the size */
} sample;

#define SAMPLE(arr, mime, magic, w, h, need) {#arr, arr, sizeof arr, mime, magic, w, h, need}

static const sample samples[] = {
    SAMPLE(png, "image/png", 8, 1024, 768, 24),
    SAMPLE(gif, "image/gif", 6, 320, 200, 10),
    SAMPLE(gif87, "image/gif", 6, 1, 2, 10),
    SAMPLE(bmp, "image/bmp", 2, 640, 480, 26),
    SAMPLE(bmp_core, "image/bmp", 2, 100, 50, 22),
    SAMPLE(webp_vp8, "image/webp", 12, 550, 300, 30),
    SAMPLE(webp_vp8l, "image/webp", 12, 400, 301, 25),
    SAMPLE(webp_vp8x, "image/webp", 12, 5000, 3000, 30),
    SAMPLE(jpeg_baseline, "image/jpeg", 3, 800, 600, 51),
    SAMPLE(jpeg_progressive, "image/jpeg", 3, 640, 480, 42),
    SAMPLE(heic, "image/heic", 12, 4032, 3024, 72),
    SAMPLE(avif, "image/avif", 12, 1280, 720, 48),
};

/* ------------------------------------------------------------- helpers */

static const char *mime_of(const uint8_t *p, size_t n)
{
    uint8_t *q = (uint8_t *)malloc(n ? n : 1);
    const char *m;
    if (n)
        memcpy(q, p, n);
    m = nb_sniff_mime(q, n);
    free(q);
    return m;
}

static int size_of(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h)
{
    uint8_t *q = (uint8_t *)malloc(n ? n : 1);
    int r;
    if (n)
        memcpy(q, p, n);
    *w = *h = 0xdeadbeef;
    r = nb_sniff_size(q, n, w, h);
    free(q);
    return r;
}

/* ------------------------------------------------------------- tests */

static void test_samples(void)
{
    size_t k;
    for (k = 0; k < sizeof samples / sizeof samples[0]; k++) {
        const sample *s = &samples[k];
        uint32_t w, h;
        int r = size_of(s->p, s->n, &w, &h);
        if (!r || w != s->w || h != s->h) {
            fprintf(stderr, "%s:%d: %s: want %ux%u, got %d %ux%u\n", __FILE__, __LINE__,
                    s->name, s->w, s->h, r, w, h);
            check_failures++;
        }
        check_count++;
        CHECK_STR(mime_of(s->p, s->n), s->mime);
    }
}

/* Every prefix: MIME iff the magic is complete, size iff `need` bytes are
 * there; never anything else (and never a read past n). */
static void test_prefixes(void)
{
    size_t k, len;
    for (k = 0; k < sizeof samples / sizeof samples[0]; k++) {
        const sample *s = &samples[k];
        int bad = 0;
        for (len = 0; len <= s->n; len++) {
            uint32_t w, h;
            int r = size_of(s->p, len, &w, &h);
            const char *m = mime_of(s->p, len);
            if (len >= s->need ? (r != 1 || w != s->w || h != s->h) : (r != 0 || w != 0xdeadbeef))
                bad++, fprintf(stderr, "%s prefix %zu: size %d %ux%u\n", s->name, len, r, w, h);
            if (len >= s->magic ? (m == NULL || strcmp(m, s->mime) != 0) : m != NULL)
                bad++, fprintf(stderr, "%s prefix %zu: mime %s\n", s->name, len, m ? m : "-");
        }
        CHECK_EQ_I(bad, 0);
    }
}

static void test_bmff_brands(void)
{
    uint8_t b[32];
    uint32_t w, h;
    memset(b, 0, sizeof b);
    memcpy(b, "\0\0\0\x1c" "ftypmif1\0\0\0\0" "mif1miafMA1B", 28);
    CHECK_STR(mime_of(b, 28), "image/heif");
    memcpy(b + 8, "msf1", 4);
    CHECK_STR(mime_of(b, 28), "image/heif");
    memcpy(b + 20, "avif", 4); /* a specific compatible brand beats generic major */
    CHECK_STR(mime_of(b, 28), "image/avif");
    memcpy(b + 20, "hevc", 4);
    CHECK_STR(mime_of(b, 28), "image/heic");
    memcpy(b + 8, "heix", 4);
    CHECK_STR(mime_of(b, 28), "image/heic");
    memcpy(b + 8, "avis", 4);
    CHECK_STR(mime_of(b, 28), "image/avif");
    memcpy(b + 8, "heim", 4);
    memcpy(b + 16, "isomiso2miaf", 12);
    CHECK_STR(mime_of(b, 28), "image/heif");
    memcpy(b + 8, "heis", 4);
    CHECK_STR(mime_of(b, 28), "image/heif");
    memcpy(b + 8, "hevx", 4);
    CHECK_STR(mime_of(b, 28), "image/heic");
    /* brands beyond the ftyp box size don't count */
    memcpy(b, "\0\0\0\x10" "ftypisom\0\0\0\0" "heic", 20);
    CHECK(mime_of(b, 20) == NULL);
    b[3] = 0x14;
    CHECK_STR(mime_of(b, 20), "image/heic");
    /* mp4 video is not an image */
    memcpy(b, "\0\0\0\x18" "ftypisom\0\0\0\0" "isomavc1", 24);
    CHECK(mime_of(b, 24) == NULL);
    CHECK_EQ_I(size_of(b, 24, &w, &h), 0);
    /* the largest valid ispe wins (thumbnails, tiles come first) */
    CHECK_STR(mime_of(heic_multi, sizeof heic_multi), "image/heic");
    CHECK_EQ_I(size_of(heic_multi, sizeof heic_multi, &w, &h), 1);
    CHECK_EQ_U(w, 4096);
    CHECK_EQ_U(h, 3072);
    CHECK_EQ_I(size_of(heic_multi, sizeof heic_multi - 1, &w, &h), 1);
    CHECK_EQ_U(w, 512);
    CHECK_EQ_U(h, 512);
}

static void test_odd_inputs(void)
{
    uint32_t w = 7, h = 7;
    CHECK(nb_sniff_mime(NULL, 0) == NULL);
    CHECK_EQ_I(nb_sniff_size(NULL, 0, &w, &h), 0);
    CHECK_EQ_U(w, 7);
    CHECK(mime_of((const uint8_t *)"hello world, no image", 21) == NULL);
    CHECK(mime_of((const uint8_t *)"RIFF\0\0\0\0WAVEfmt ", 16) == NULL);
    CHECK(mime_of((const uint8_t *)"GIF88a", 6) == NULL);
    CHECK(mime_of((const uint8_t *)"\xff\xd8", 2) == NULL);

    /* JPEG: SOS before SOF, a segment running past n, zero height, EOI */
    {
        static const uint8_t sos_first[] = {0xff, 0xd8, 0xff, 0xda, 0x00, 0x02, 0xff, 0xc0,
                                            0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x10};
        static const uint8_t long_seg[] = {0xff, 0xd8, 0xff, 0xe1, 0xff, 0xf0, 0x00, 0x00};
        static const uint8_t zero_h[] = {0xff, 0xd8, 0xff, 0xc0, 0x00, 0x0b, 0x08,
                                         0x00, 0x00, 0x01, 0x00, 0x01, 0x01, 0x11, 0x00};
        static const uint8_t eoi[] = {0xff, 0xd8, 0xff, 0xd9, 0xff, 0xc0, 0x00, 0x0b, 0x08,
                                      0x00, 0x10, 0x00, 0x10, 0x01, 0x01, 0x11, 0x00};
        static const uint8_t garbage[] = {0xff, 0xd8, 0x00, 0xff, 0xc0, 0x00, 0x0b, 0x08,
                                          0x00, 0x10, 0x00, 0x10, 0x01, 0x01, 0x11, 0x00};
        static const uint8_t short_len[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01, 0xff, 0xc0,
                                            0x00, 0x0b, 0x08, 0x00, 0x10, 0x00, 0x10};
        static const uint8_t sof3[] = {0xff, 0xd8, 0xff, 0xc3, 0x00, 0x0b, 0x08, 0x00,
                                       0x02, 0x00, 0x03, 0x01, 0x01, 0x11, 0x00};
        CHECK_EQ_I(size_of(sos_first, sizeof sos_first, &w, &h), 0);
        CHECK_EQ_I(size_of(long_seg, sizeof long_seg, &w, &h), 0);
        CHECK_EQ_I(size_of(zero_h, sizeof zero_h, &w, &h), 0);
        CHECK_EQ_I(size_of(eoi, sizeof eoi, &w, &h), 0);
        CHECK_EQ_I(size_of(garbage, sizeof garbage, &w, &h), 0);
        CHECK_EQ_I(size_of(short_len, sizeof short_len, &w, &h), 0);
        CHECK_EQ_I(size_of(sof3, sizeof sof3, &w, &h), 1);
        CHECK_EQ_U(w, 3);
        CHECK_EQ_U(h, 2);
    }
    /* PNG without IHDR first; BMP with a negative width; VP8 bad start code */
    {
        uint8_t b[64];
        memcpy(b, png, sizeof png);
        memcpy(b + 12, "IDAT", 4);
        CHECK_EQ_I(size_of(b, sizeof png, &w, &h), 0);
        CHECK_STR(mime_of(b, sizeof png), "image/png");
        memcpy(b, bmp, sizeof bmp);
        b[21] = 0xff;
        CHECK_EQ_I(size_of(b, sizeof bmp, &w, &h), 0);
        memcpy(b, webp_vp8, sizeof webp_vp8);
        b[24] = 0x02;
        CHECK_EQ_I(size_of(b, sizeof webp_vp8, &w, &h), 0);
        memcpy(b, webp_vp8l, sizeof webp_vp8l);
        b[20] = 0x2e;
        CHECK_EQ_I(size_of(b, sizeof webp_vp8l, &w, &h), 0);
        memcpy(b, webp_vp8, sizeof webp_vp8);
        memcpy(b + 12, "ALPH", 4);
        CHECK_EQ_I(size_of(b, sizeof webp_vp8, &w, &h), 0);
        CHECK_STR(mime_of(b, sizeof webp_vp8), "image/webp");
    }
}

/* random bytes, random bytes behind each magic, and mutated samples */
static void test_fuzz(void)
{
    static uint8_t b[1024];
    int iter;
    size_t k;
    unsigned long found = 0;
    for (iter = 0; iter < 10000; iter++) {
        size_t n = rnd() % (iter < 5000 ? 64 : sizeof b);
        uint32_t w, h;
        for (k = 0; k < n; k++)
            b[k] = (uint8_t)rnd();
        (void)mime_of(b, n);
        found += (unsigned long)size_of(b, n, &w, &h);
    }
    for (iter = 0; iter < 20000; iter++) {
        const sample *s = &samples[rnd() % (sizeof samples / sizeof samples[0])];
        size_t n = rnd() % 2 ? s->n : rnd() % (sizeof b);
        uint32_t w, h;
        int flips = (int)(rnd() % 4), f;
        for (k = 0; k < n; k++)
            b[k] = k < s->n ? s->p[k] : (uint8_t)rnd();
        if (rnd() % 2)
            for (k = s->magic; k < n; k++) /* keep the magic, randomise the rest */
                b[k] = (uint8_t)rnd();
        for (f = 0; f < flips && n; f++)
            b[rnd() % n] = (uint8_t)(rnd() % 3 ? rnd() : 0xff);
        (void)mime_of(b, n);
        found += (unsigned long)size_of(b, n, &w, &h);
    }
    CHECK(found > 0); /* reached the size parsers at all */
}

int main(void)
{
    test_samples();
    test_prefixes();
    test_bmff_brands();
    test_odd_inputs();
    test_fuzz();
    return check_done();
}
