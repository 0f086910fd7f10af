/*
 * transport.h - the libcurl multi engine: many HTTP transfers driven by one
 * non-blocking perform() call. No Lua.
 *
 * A transfer (nb_xfer) POSTs a body assembled from segments (literal bytes,
 * bytes to base64-encode on the fly, a file to base64-encode on the fly, so
 * a request with many big reference images is never held encoded in memory,
 * or a byte range of a file sent as is, for resumable uploads) and receives
 * the response:
 *   - 2xx: through the streaming scanner (scan.h); each inlineData.data blob
 *     is decoded into its own memory buffer, or, when blob_dir is set,
 *     straight into its own temporary file in blob_dir;
 *   - other statuses: the raw body, capped at NB_RAW_BODY_CAP bytes.
 * libcurl callbacks only feed C buffers: no user code ever runs inside them.
 *
 * Threads: an engine has at most one worker thread, started by the first
 * transfer and ended after idle_ms with nothing in flight (its multi handle
 * and connections closed with it), or when the engine is freed. Every
 * nb_engine_* and nb_xfer_* function is for the caller's thread (one thread
 * at a time per engine); none waits for the worker.
 *
 * Ownership:
 *   - nb_group_new() allocates a group (one per Lua state in the binding):
 *     it counts the workers of the engines made through it.
 *     nb_group_free() waits until they have ended and joins them (so the
 *     code running them can then be unloaded): call it last.
 *   - nb_engine_new() allocates an engine; nb_engine_free() gives it up at
 *     once: the worker cancels what it drives and ends by itself; the
 *     memory goes when the last transfer still linked to it is freed.
 *     Transfers are NOT freed by the engine: their owner frees them.
 *   - nb_xfer_start() allocates a transfer; the caller owns it and frees it
 *     with nb_xfer_free() at any time (running, done, or after the engine
 *     is freed), without waiting: a running transfer is detached and freed
 *     by the worker, which from that call on reads no borrowed byte.
 *     Freeing deletes every temporary blob file not taken (nb_blobs_take_path).
 *   - fork(): in a child, an engine made by the parent refuses new
 *     transfers (NB_KIND_NETWORK, the message says fork) and every call
 *     on it or its transfers touches nothing of the parent's (no lock, no
 *     connection, no file): what it holds is leaked in the child.
 *   - Segment bytes (NB_SEG_BYTES, NB_SEG_B64) are BORROWED: they must stay
 *     valid and unchanged until the transfer is done or freed; or, when the
 *     segment names the blob they lie in (nb_seg.mem), the transfer holds
 *     a reference to that blob (blob.h) from nb_xfer_start() until it is
 *     freed, and the caller may drop its own at any time. Every string in
 *     nb_xfer_opts except segment bytes is copied.
 *   - Pointers returned by nb_xfer_* getters are owned by the transfer and
 *     valid until it is freed (or, for blob data, until taken).
 */
#ifndef NB_TRANSPORT_H
#define NB_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "blob.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NB_RAW_BODY_CAP (1024 * 1024)

typedef struct nb_engine nb_engine;
typedef struct nb_xfer nb_xfer;

typedef enum nb_seg_kind {
    NB_SEG_BYTES = 0, /* send ptr[0..len) as is */
    NB_SEG_B64 = 1,   /* send base64(ptr[0..len)) */
    NB_SEG_B64_FILE = 2, /* send base64(contents of path) */
    NB_SEG_FILE_RANGE = 3 /* send bytes [offset, offset + len) of path as is
                           * (read with pread while sending: constant memory;
                           * a file shorter than offset + len is NB_KIND_IO) */
} nb_seg_kind;

typedef struct nb_seg {
    nb_seg_kind kind;
    const char *ptr; /* BYTES, B64: borrowed */
    size_t len;      /* BYTES, B64, FILE_RANGE: byte count */
    nb_blobmem *mem;  /* NULL, or the blob ptr lies in: retained while needed */
    const char *path; /* B64_FILE, FILE_RANGE: copied */
    uint64_t offset;  /* FILE_RANGE: first byte */
} nb_seg;

/* The memory stream events may hold before receiving pauses (64 MiB). */
#define NB_EVENT_QUEUE_DEFAULT ((uint64_t)64 << 20)

typedef struct nb_xfer_opts {
    const char *url;
    const char *method;         /* NULL: POST with segments, GET without;
                                 * else this request method (e.g. "DELETE") */
    const char *const *headers; /* "Name: value" lines, copied */
    size_t nheaders;
    const nb_seg *segs; /* the request body, in order; nsegs == 0: no body
                         * (GET unless method says otherwise) */
    size_t nsegs;
    long timeout_ms;         /* whole transfer; 0 = none */
    long connect_timeout_ms; /* 0 = libcurl default */
    long stall_ms;           /* no byte moved for this long = stall; 0 = off */
    uint64_t max_response_bytes; /* decoded (after gzip) body cap; 0 = none */
    const char *blob_dir;    /* NULL: blobs in memory; else temp files here */
    int flush_blobs;         /* 1: start writeback of each blob file when it
                              * ends (a blob that will be renamed over an
                              * existing file: ext4 would otherwise flush it
                              * inside the caller's rename) */
    int empty_ok;            /* 1: a 2xx with an empty body is a success with
                              * an empty skeleton (service calls answered by
                              * headers alone, e.g. resumable uploads) */
    int jsonl;               /* 1: a 2xx body is JSON Lines (a batch results
                              * file): each non-blank line is scanned like a
                              * whole response and becomes an nb_event, as an
                              * SSE event does (stream is then ignored) */
    int stream;              /* 1: the answer is a stream (SSE; or plain JSON,
                              * which some gateways send): see nb_event */
    uint64_t event_queue_bytes; /* stream/jsonl: receiving pauses while the
                              * events not yet taken hold more than this
                              * (their skeletons and in-memory blobs), and
                              * resumes when half is taken; 0: the default,
                              * NB_EVENT_QUEUE_DEFAULT. Paused time is not a
                              * stall; it counts towards timeout_ms. */
    const char *accept_encoding; /* NULL: "gzip"; "": none */
    const char *proxy, *ca_file, *ca_path; /* NULL: libcurl defaults */
    int insecure;            /* 1: skip TLS verification (tests only) */
    int notify_progress;     /* 1: progress makes the engine's fd readable
                              * (about 10 Hz; a phase change at once) */
} nb_xfer_opts;

/* Where a transfer stands (nb_xfer_progress). */
typedef enum nb_phase {
    NB_PHASE_CONNECTING = 0,
    NB_PHASE_UPLOADING,
    NB_PHASE_WAITING,   /* request sent, no response byte yet */
    NB_PHASE_DOWNLOADING,
    NB_PHASE_DONE
} nb_phase;

typedef struct nb_progress {
    nb_phase phase;
    uint64_t uploaded, upload_total;
    uint64_t downloaded, download_total; /* wire bytes; total 0 = unknown */
    double elapsed; /* seconds since start */
} nb_progress;

/* Outcome kinds; the strings of nb_kind_name() are the Lua error kinds. */
typedef enum nb_kind {
    NB_OK = 0,
    NB_KIND_NETWORK,
    NB_KIND_TIMEOUT,
    NB_KIND_STALL,
    NB_KIND_TLS,
    NB_KIND_TOO_LARGE,
    NB_KIND_INVALID_RESPONSE,
    NB_KIND_CANCELLED,
    NB_KIND_IO,
    NB_KIND_MEMORY, /* malloc/realloc/mmap failed (not retried) */
    NB_KIND_CONFIG, /* the caller's setup: a URL or proxy libcurl rejects, an
                     * unsupported protocol (not retried) */
    NB_KIND_ENGINE  /* nb_xfer_start only: the engine could not start its
                     * worker (fd table full, no threads); the binding raises */
} nb_kind;

const char *nb_kind_name(nb_kind k);

/* Process-wide libcurl init (curl_global_init, once: thread-safe,
 * idempotent). Returns 0 on success. */
int nb_transport_global_init(void);

typedef struct nb_group nb_group;
nb_group *nb_group_new(void); /* NULL: out of memory */
void nb_group_free(nb_group *g);

/* Monotonic clock, seconds. */
double nb_now(void);

/* g may be NULL (workers detached, never waited for). idle_ms: how long
 * the worker stays with nothing to do. NULL with errno set (EMFILE: the
 * fd table is full) when the engine's fd cannot be made. */
nb_engine *nb_engine_new(nb_group *g, long idle_ms);
void nb_engine_free(nb_engine *e);
/* 1 in a forked child of the process that made e. */
int nb_engine_forked(const nb_engine *e);

/* Transfers run on the engine's worker thread. With wait_ms > 0, waits up
 * to wait_ms for a transfer to finish (returns early when one does, when a
 * stream event arrives, when a transfer changes phase, and when byte counts
 * moved, at most about 10 times a second per transfer); with wait_ms <= 0
 * never blocks. Returns the number of transfers running. */
int nb_engine_perform(nb_engine *e, int wait_ms);

/* Renames src over dst (atomic). If dst was a big file, its old content is
 * kept under a hidden link and deleted by the worker thread, so the caller
 * never pays for freeing its pages. Returns 0, or -1 with a message. */
int nb_engine_replace_file(nb_engine *e, const char *src, const char *dst, char *err,
                           size_t errlen);

/* The notification fd (close-on-exec, non-blocking; owned by the engine,
 * closed by nb_engine_free): readable whenever the caller has work — a
 * transfer finished, a stream event arrived, progress moved (transfers
 * started with notify_progress) — and quiet otherwise. Caller's thread. */
int nb_engine_pollfd(const nb_engine *e);

/* Drains the fd once the caller has collected what there was (call it at
 * the end of a poll): it stays readable if finished transfers or stream
 * events are still waiting to be taken. Caller's thread. */
void nb_engine_settle(nb_engine *e);

/* Pops one transfer that finished (or was cancelled) since the last call,
 * in completion order; NULL when none (or, without waiting, when the worker
 * holds the lock at this instant: ask again on the next poll). */
nb_xfer *nb_engine_next_done(nb_engine *e);

/* Starts a transfer. On failure returns NULL and sets *kind and writes a
 * message to err (size errlen): NB_KIND_IO for an unreadable file segment,
 * NB_KIND_MEMORY out of memory, NB_KIND_NETWORK in a forked child,
 * NB_KIND_ENGINE when no worker could be started (or e was freed). */
nb_xfer *nb_xfer_start(nb_engine *e, const nb_xfer_opts *o, nb_kind *kind,
                       char *err, size_t errlen);

void nb_xfer_free(nb_xfer *x);

/* Cancels a running transfer: it becomes done with NB_KIND_CANCELLED and
 * is queued for nb_engine_next_done(). No-op when already done. */
void nb_xfer_cancel(nb_xfer *x);

/* Caller's thread: deletes now every temporary file x made for output=
 * (not waiting for the worker) and makes it make no more (a transfer that
 * would need one then fails with NB_KIND_IO). For a transfer being
 * cancelled or dropped; files handed over with nb_blobs_take_path are
 * deleted too. */
void nb_xfer_drop_files(nb_xfer *x);

int nb_xfer_done(const nb_xfer *x);
/* Fills p; returns 0, or -1 (p untouched) when the engine's worker holds
 * the lock at this instant: progress never makes the caller wait. */
int nb_xfer_progress(const nb_xfer *x, nb_progress *p);

/* Valid once done. kind NB_OK means an HTTP response was fully received
 * (any status) and, for 2xx, fully scanned. */
nb_kind nb_xfer_kind(const nb_xfer *x);
const char *nb_xfer_message(const nb_xfer *x); /* "" when NB_OK */
long nb_xfer_status(const nb_xfer *x);         /* HTTP status, 0 if none */
const char *nb_xfer_http_version(const nb_xfer *x); /* "1.1", "2", ... or "" */
long nb_xfer_new_connections(const nb_xfer *x); /* connections this one opened (0: reused) */
const char *nb_xfer_headers(const nb_xfer *x, size_t *len); /* raw, last response */
/* 2xx: the skeleton JSON (scan.h); none for an SSE stream (see nb_event).
 * Other statuses: the raw body (capped). */
const char *nb_xfer_body(const nb_xfer *x, size_t *len);
int nb_xfer_body_is_skeleton(const nb_xfer *x);
uint64_t nb_xfer_body_bytes(const nb_xfer *x); /* decoded body bytes seen */

int nb_xfer_is_sse(const nb_xfer *x);          /* the 2xx body was an SSE stream
                                                * (or JSON Lines: opts.jsonl) */

/* ---- blobs: the images of a response (or of one stream event): a set
 * (blob.h) owned by its transfer (nb_xfer_blobs, valid once done) or by its
 * event (nb_event_blobs). */
nb_blobs *nb_xfer_blobs(nb_xfer *x);

/* ---- stream events (opts.stream, opts.jsonl): each SSE event (each line
 * of a JSON Lines body) is scanned like a whole
 * response; when its JSON ends, its skeleton and its blobs become an
 * nb_event queued on the transfer, while the transfer goes on. */
typedef struct nb_event nb_event;
/* Pops the oldest finished event: the CALLER owns it and frees it with
 * nb_event_free() (which deletes its temp files not taken). NULL when there
 * is none, or, with wait 0, when the worker holds the lock at this instant
 * (wait 0 never waits; use wait 1 once the transfer is done, to be sure to
 * get every event). Events may be taken while the transfer runs and after
 * it is done; nb_engine_perform(wait) also returns early when one arrives. */
nb_event *nb_xfer_next_event(nb_xfer *x, int wait);
const char *nb_event_skeleton(const nb_event *ev, size_t *len); /* owned by ev */
nb_blobs *nb_event_blobs(nb_event *ev);                           /* owned by ev */
void nb_event_free(nb_event *ev);

#ifdef __cplusplus
}
#endif
#endif
