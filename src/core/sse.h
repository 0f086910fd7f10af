/*
 * sse.h - streaming parser for Server-Sent Events (text/event-stream), as
 * streamGenerateContent?alt=sse sends them. No Lua, no libcurl.
 *
 * The stream is fed in chunks of any size (down to one byte). Lines end in
 * "\r\n", "\n" or "\r" (a CR at the end of one chunk and an LF at the start
 * of the next are one line end). For each event the parser hands the sink
 * the event's data AS IT ARRIVES, never holding an event whole (a 4K image
 * arrives as one ~32 MB event):
 *   - every "data" field's value (after "data:" and one optional space) is
 *     passed to sink.data in pieces; the values of several "data" lines of
 *     one event are joined with "\n" (as the SSE standard says);
 *   - a blank line ends an event: sink.event_end fires if the event had at
 *     least one "data" line (events without data are not dispatched);
 *   - comments (":..."), "event", "id", "retry" and unknown fields are
 *     skipped; a UTF-8 BOM at the very start is skipped.
 *
 * Ownership: nb_sse_new() mallocs the parser, nb_sse_free() frees it (NULL
 * is accepted). The sink struct is copied; its ud is borrowed. Chunks are
 * borrowed for the call; the pointers handed to sink.data point into them.
 */
#ifndef NB_SSE_H
#define NB_SSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Callbacks return 0 to go on; non-zero stops the parser, and that value is
 * returned by this and every later nb_sse_feed / nb_sse_finish. */
typedef struct nb_sse_sink {
    int (*data)(void *ud, const char *p, size_t n);
    int (*event_end)(void *ud);
    void *ud;
} nb_sse_sink;

typedef struct nb_sse nb_sse;

nb_sse *nb_sse_new(const nb_sse_sink *sink); /* NULL on ENOMEM */
void nb_sse_free(nb_sse *s);

/* Feeds n bytes; returns 0 or the sink's non-zero value. */
int nb_sse_feed(nb_sse *s, const char *p, size_t n);

/* The stream ended. An event whose data began but that no blank line ended
 * is NOT dispatched (the standard discards it; its data already went to
 * sink.data, and the caller drops it): returns NB_SSE_PARTIAL then, 0 when
 * the stream ended between events, or a sink's earlier value. */
#define NB_SSE_PARTIAL 0x5353
int nb_sse_finish(nb_sse *s);

/* Events dispatched so far. */
uint64_t nb_sse_events(const nb_sse *s);

#ifdef __cplusplus
}
#endif
#endif
