/*
 * sniff.c - image type and pixel size from the first bytes of an image.
 *
 * See sniff.h. Every read is bounds-checked against n; nothing allocates.
 * Sizes of 0 are treated as "not found".
 */
#include "sniff.h"

#include <string.h>

static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t le16(const uint8_t *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t le24(const uint8_t *p) { return (uint32_t)p[2] << 16 | le16(p); }
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static int has(const uint8_t *p, size_t n, size_t off, const char *s, size_t len)
{
    return off <= n && len <= n - off && memcmp(p + off, s, len) == 0;
}

static const char MIME_PNG[] = "image/png";
static const char MIME_JPEG[] = "image/jpeg";
static const char MIME_WEBP[] = "image/webp";
static const char MIME_GIF[] = "image/gif";
static const char MIME_HEIC[] = "image/heic";
static const char MIME_HEIF[] = "image/heif";
static const char MIME_AVIF[] = "image/avif";
static const char MIME_BMP[] = "image/bmp";

/* ------------------------------------------------------------- ISO BMFF */

/* MIME for one brand: heic/avif are specific, heif is the generic one. */
static const char *brand_mime(const uint8_t *b)
{
    static const char heic[][5] = {"heic", "heix", "hevc", "hevx"};
    static const char heif[][5] = {"mif1", "msf1", "heim", "heis"};
    static const char avif[][5] = {"avif", "avis"};
    size_t k;
    for (k = 0; k < sizeof heic / sizeof heic[0]; k++)
        if (memcmp(b, heic[k], 4) == 0)
            return MIME_HEIC;
    for (k = 0; k < sizeof avif / sizeof avif[0]; k++)
        if (memcmp(b, avif[k], 4) == 0)
            return MIME_AVIF;
    for (k = 0; k < sizeof heif / sizeof heif[0]; k++)
        if (memcmp(b, heif[k], 4) == 0)
            return MIME_HEIF;
    return NULL;
}

/*
 * ftyp box at offset 0: size(4) "ftyp" major(4) minor(4) compatible(4)*.
 * A specific major brand wins; else the first specific compatible brand;
 * else the generic HEIF brands (major or compatible) give image/heif.
 */
static const char *sniff_bmff(const uint8_t *p, size_t n)
{
    uint32_t size;
    size_t end, k;
    const char *m, *generic = NULL;

    if (n < 12 || memcmp(p + 4, "ftyp", 4) != 0)
        return NULL;
    size = be32(p);
    if (size != 0 && size < 16)
        return NULL;
    end = (size == 0 || size > n) ? n : size;

    m = brand_mime(p + 8);
    if (m == MIME_HEIC || m == MIME_AVIF)
        return m;
    generic = m;
    for (k = 16; k + 4 <= end; k += 4) {
        m = brand_mime(p + k);
        if (m == MIME_HEIC || m == MIME_AVIF)
            return m;
        if (m && !generic)
            generic = m;
    }
    return generic;
}

/* ------------------------------------------------------------- MIME */

const char *nb_sniff_mime(const uint8_t *p, size_t n)
{
    if (!p)
        return NULL;
    if (has(p, n, 0, "\x89PNG\r\n\x1a\n", 8))
        return MIME_PNG;
    if (has(p, n, 0, "\xff\xd8\xff", 3))
        return MIME_JPEG;
    if (has(p, n, 0, "RIFF", 4) && has(p, n, 8, "WEBP", 4))
        return MIME_WEBP;
    if (has(p, n, 0, "GIF87a", 6) || has(p, n, 0, "GIF89a", 6))
        return MIME_GIF;
    {
        const char *m = sniff_bmff(p, n);
        if (m)
            return m;
    }
    if (has(p, n, 0, "BM", 2))
        return MIME_BMP;
    return NULL;
}

/* ------------------------------------------------------------- sizes */

static int size_png(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h)
{
    if (n < 24 || memcmp(p + 12, "IHDR", 4) != 0)
        return 0;
    *w = be32(p + 16);
    *h = be32(p + 20);
    return 1;
}

static int size_gif(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h)
{
    if (n < 10)
        return 0;
    *w = le16(p + 6);
    *h = le16(p + 8);
    return 1;
}

static int size_bmp(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h)
{
    uint32_t hdr;
    if (n < 18)
        return 0;
    hdr = le32(p + 14);
    if (hdr == 12) { /* BITMAPCOREHEADER: 16-bit unsigned sizes */
        if (n < 22)
            return 0;
        *w = le16(p + 18);
        *h = le16(p + 20);
        return 1;
    }
    /* the DIB header sizes that exist (BITMAPINFOHEADER and its successors);
     * anything else is not a bitmap, and neither are absurd sizes */
    if (!(hdr == 40 || hdr == 52 || hdr == 56 || hdr == 64 || hdr == 108 || hdr == 124) || n < 26)
        return 0;
    {
        uint32_t uw = le32(p + 18), uh = le32(p + 22);
        if (uw & 0x80000000u) /* negative width is invalid */
            return 0;
        if (uh & 0x80000000u) /* negative height: top-down bitmap */
            uh = (uint32_t)0 - uh;
        if (uw > (1u << 20) || uh > (1u << 20))
            return 0;
        *w = uw;
        *h = uh;
    }
    return 1;
}

static int size_webp(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h)
{
    if (has(p, n, 12, "VP8 ", 4)) {
        /* frame tag (3) then start code 9d 01 2a, then 14-bit sizes */
        if (n < 30 || p[23] != 0x9d || p[24] != 0x01 || p[25] != 0x2a)
            return 0;
        *w = le16(p + 26) & 0x3fff;
        *h = le16(p + 28) & 0x3fff;
        return 1;
    }
    if (has(p, n, 12, "VP8L", 4)) {
        uint32_t b;
        if (n < 25 || p[20] != 0x2f)
            return 0;
        b = le32(p + 21);
        *w = (b & 0x3fff) + 1;
        *h = ((b >> 14) & 0x3fff) + 1;
        return 1;
    }
    if (has(p, n, 12, "VP8X", 4)) {
        if (n < 30)
            return 0;
        *w = le24(p + 24) + 1;
        *h = le24(p + 27) + 1;
        return 1;
    }
    return 0;
}

static int size_jpeg(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h)
{
    size_t i = 2; /* after SOI */
    while (i < n) {
        unsigned m;
        size_t len;
        if (p[i] != 0xff)
            return 0;
        while (i < n && p[i] == 0xff) /* fill bytes */
            i++;
        if (i >= n)
            return 0;
        m = p[i++];
        if (m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7))
            continue; /* standalone: SOI, TEM, RSTn */
        if (m == 0x00 || m == 0xd9 || m == 0xda)
            return 0; /* stuffed byte, EOI or SOS before any SOF */
        if (n - i < 2)
            return 0;
        len = be16(p + i);
        if (len < 2)
            return 0;
        if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
            /* SOFn: length(2) precision(1) height(2) width(2) */
            if (len < 8 || n - i < 7)
                return 0;
            *h = be16(p + i + 3);
            *w = be16(p + i + 5);
            return 1;
        }
        if (len > n - i)
            return 0;
        i += len;
    }
    return 0;
}

/* "ispe" property: size(4)=20 "ispe" version/flags(4) width(4) height(4).
 * Several may be present (tiles, thumbnails, the grid); the largest wins. */
static int size_ispe(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h)
{
    size_t k;
    uint64_t best = 0;
    uint32_t bw = 0, bh = 0;
    if (n < 20)
        return 0;
    for (k = 4; k + 16 <= n; k++) {
        uint32_t iw, ih;
        if (p[k] != 'i' || memcmp(p + k, "ispe", 4) != 0 || be32(p + k - 4) != 20)
            continue;
        iw = be32(p + k + 8);
        ih = be32(p + k + 12);
        if ((uint64_t)iw * ih > best) {
            best = (uint64_t)iw * ih;
            bw = iw;
            bh = ih;
        }
    }
    if (best == 0)
        return 0;
    *w = bw;
    *h = bh;
    return 1;
}

int nb_sniff_size(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h)
{
    const char *m = nb_sniff_mime(p, n);
    uint32_t tw = 0, th = 0;
    int ok = 0;

    if (!m)
        return 0;
    if (m == MIME_PNG)
        ok = size_png(p, n, &tw, &th);
    else if (m == MIME_JPEG)
        ok = size_jpeg(p, n, &tw, &th);
    else if (m == MIME_WEBP)
        ok = size_webp(p, n, &tw, &th);
    else if (m == MIME_GIF)
        ok = size_gif(p, n, &tw, &th);
    else if (m == MIME_BMP)
        ok = size_bmp(p, n, &tw, &th);
    else
        ok = size_ispe(p, n, &tw, &th);
    if (!ok || tw == 0 || th == 0)
        return 0;
    *w = tw;
    *h = th;
    return 1;
}
