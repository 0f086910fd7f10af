/*
 * sse.c - streaming Server-Sent Events parser (see sse.h).
 *
 * A state machine over lines: the field name is collected byte by byte (up
 * to 8 bytes: longer names are not "data" and are skipped), then a "data"
 * value is passed through to the sink in runs found with memchr (the whole
 * rest of the chunk, or up to its line end), other values are skipped.
 */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

enum {
    ST_BOM = 0,   /* very start: maybe a UTF-8 BOM */
    ST_FIELD,     /* collecting the field name */
    ST_SPACE,     /* just after "data:": one space may follow */
    ST_DATA,      /* in a data value: pass bytes through */
    ST_SKIP       /* in a value we ignore (or a comment) */
};

struct nb_sse {
    nb_sse_sink sink;
    int st;
    int cr;              /* the previous byte was a CR ending a line */
    int rc;              /* sticky sink result */
    int has_data;        /* this event has had a data line */
    char name[8];
    size_t name_len;     /* > sizeof name: too long to be "data" */
    size_t bom_seen;     /* bytes of the BOM matched so far */
    uint64_t events;
};

nb_sse *nb_sse_new(const nb_sse_sink *sink)
{
    nb_sse *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (sink) s->sink = *sink;
    s->st = ST_BOM;
    return s;
}

void nb_sse_free(nb_sse *s) { free(s); }

uint64_t nb_sse_events(const nb_sse *s) { return s->events; }

/* Where the line in p[0..n) ends: the first CR or LF, or n. Values are long
 * (a 4K image is one ~32 MB data line), so this is two memchr passes (libc
 * scans many bytes per step), the second only over what precedes the LF. */
static size_t line_end(const char *p, size_t n)
{
    const char *lf = memchr(p, '\n', n);
    size_t m = lf ? (size_t)(lf - p) : n;
    const char *cr = memchr(p, '\r', m);
    return cr ? (size_t)(cr - p) : m;
}

static int emit(nb_sse *s, const char *p, size_t n)
{
    if (n == 0 || !s->sink.data) return 0;
    return s->sink.data(s->sink.ud, p, n);
}

/* A "data" field begins: lines after the first are joined with "\n". */
static int data_line(nb_sse *s)
{
    int rc = 0;
    if (s->has_data) rc = emit(s, "\n", 1);
    s->has_data = 1;
    return rc;
}

static int is_data(const nb_sse *s)
{
    return s->name_len == 4 && memcmp(s->name, "data", 4) == 0;
}

/* The current line ended (the line-end byte is consumed by the caller). */
static int end_line(nb_sse *s)
{
    int rc = 0;
    if (s->st == ST_FIELD) {
        if (s->name_len == 0) { /* blank line: the event ends */
            if (s->has_data) {
                s->events++;
                if (s->sink.event_end) rc = s->sink.event_end(s->sink.ud);
            }
            s->has_data = 0;
        } else if (is_data(s)) { /* "data" with no colon: an empty value */
            rc = data_line(s);
        }
    }
    s->st = ST_FIELD;
    s->name_len = 0;
    return rc;
}

int nb_sse_feed(nb_sse *s, const char *p, size_t n)
{
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    size_t i = 0;
    if (s->rc) return s->rc;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (s->cr) { /* CR LF is one line end */
            s->cr = 0;
            if (c == '\n') {
                i++;
                continue;
            }
        }
        if (s->st == ST_BOM) {
            if (c == bom[s->bom_seen]) {
                i++;
                if (++s->bom_seen == 3) s->st = ST_FIELD;
                continue;
            }
            if (s->bom_seen > 0) { /* a partial BOM: those bytes were a field name */
                size_t k;
                for (k = 0; k < s->bom_seen; k++) s->name[s->name_len++] = (char)bom[k];
            }
            s->st = ST_FIELD;
        }
        if (c == '\r' || c == '\n') {
            s->cr = (c == '\r');
            i++;
            if ((s->rc = end_line(s)) != 0) return s->rc;
            continue;
        }
        switch (s->st) {
        case ST_FIELD:
            if (c == ':') {
                if (is_data(s)) {
                    s->st = ST_SPACE;
                    if ((s->rc = data_line(s)) != 0) return s->rc;
                } else {
                    s->st = ST_SKIP; /* a comment (empty name) or another field */
                }
            } else {
                if (s->name_len < sizeof s->name) s->name[s->name_len] = (char)c;
                if (s->name_len <= sizeof s->name) s->name_len++;
            }
            i++;
            break;
        case ST_SPACE: /* the value starts after it; this byte is read again */
            s->st = ST_DATA;
            if (c == ' ') i++;
            break;
        case ST_DATA: { /* the whole run up to the line end, in one piece */
            size_t len = line_end(p + i, n - i);
            if ((s->rc = emit(s, p + i, len)) != 0) return s->rc;
            i += len;
            break;
        }
        default: /* ST_SKIP */
            i += line_end(p + i, n - i);
            break;
        }
    }
    return 0;
}

int nb_sse_finish(nb_sse *s)
{
    if (s->rc) return s->rc;
    /* a last line without its line end still counts as a line... */
    if (!(s->st == ST_FIELD && s->name_len == 0) && s->st != ST_BOM) {
        if ((s->rc = end_line(s)) != 0) return s->rc;
    }
    /* ...but an event needs its blank line */
    if (s->has_data) return NB_SSE_PARTIAL;
    return 0;
}
