/*
 * transport.c - libcurl multi engine (see transport.h for the contract).
 *
 * Invariants:
 *   - libcurl callbacks (read, write, header, xferinfo) only touch the
 *     nb_xfer they belong to and never call back into libcurl's multi API;
 *     to abort they set x->abort_kind and return the abort code.
 *   - an nb_xfer is in exactly one of: queued to be added, running
 *     (attached to e->multi), done-queued (in e->done list), done-popped,
 *     detached (engine gone).
 *   - only the engine's worker thread calls libcurl's multi API and so runs
 *     the callbacks; the caller's thread queues operations (add, cancel,
 *     remove) and collects finished transfers under e->mu.
 */
#include "platform.h" /* first: NB_HAVE_* */
#include "transport.h"
#include "b64.h"
#include "blob.h"
#include "fsutil.h"
#include "scan.h"
#include "sse.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
/* pthread_cond_timedwait on CLOCK_MONOTONIC (pthread_condattr_setclock);
 * macOS lacks it: there the waits use CLOCK_REALTIME, so a wall-clock jump
 * can lengthen or shorten one wait of nb_engine_perform (at most wait_ms) */
#define NB_COND_MONOTONIC NB_HAVE_PTHREAD_CONDATTR_SETCLOCK
/* the notification fd: an eventfd where there is one, else a pipe */
#if NB_HAVE_EVENTFD
#include <sys/eventfd.h>
#define NB_EVENTFD 1
#else
#define NB_EVENTFD 0
#endif
#include <poll.h>
#include <time.h>
#include <unistd.h>

#define NB_USER_AGENT_FALLBACK "nanobanana"
#define NB_RAW_CHUNK (48 * 1024) /* raw bytes per base64 upload chunk (x3) */
#define NB_HEADERS_CAP (64 * 1024)

/* ------------------------------------------------------------------ utils */

typedef struct nb_buf {
    uint8_t *p;
    size_t len, cap;
} nb_buf;

static int buf_reserve(nb_buf *b, size_t extra)
{
    size_t need, cap;
    void *np;
    if (extra > SIZE_MAX - b->len) return -1;
    need = b->len + extra;
    if (need <= b->cap) return 0;
    cap = b->cap ? b->cap : 16384;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    np = realloc(b->p, cap);
    if (!np) return -1;
    b->p = np;
    b->cap = cap;
    return 0;
}

static int buf_add(nb_buf *b, const void *p, size_t n)
{
    if (n == 0) return 0;
    if (buf_reserve(b, n)) return -1;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static char *str_dup(const char *s)
{
    size_t n;
    char *d;
    if (!s) return NULL;
    n = strlen(s) + 1;
    d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

double nb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *nb_kind_name(nb_kind k)
{
    switch (k) {
    case NB_OK: return "ok";
    case NB_KIND_NETWORK: return "network";
    case NB_KIND_TIMEOUT: return "timeout";
    case NB_KIND_STALL: return "stall";
    case NB_KIND_TLS: return "tls";
    case NB_KIND_TOO_LARGE: return "too_large";
    case NB_KIND_INVALID_RESPONSE: return "invalid_response";
    case NB_KIND_CANCELLED: return "cancelled";
    case NB_KIND_IO: return "io";
    case NB_KIND_MEMORY: return "memory";
    case NB_KIND_CONFIG: return "config";
    case NB_KIND_ENGINE: return "engine";
    }
    return "network";
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc = -1;

static void global_init_once(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

int nb_transport_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_rc;
}

/* ------------------------------------------------------------------ types */

/* One stream event (SSE) whose JSON ended: its skeleton and its blobs.
 * Made by the worker, queued on the transfer (e->mu), then the caller's. */
struct nb_event {
    char *skeleton;
    size_t len;
    nb_blobs blobs;
    uint64_t mem;  /* the memory it holds: skeleton + blobs in memory */
    nb_event *next;
};

typedef struct nb_upseg {
    nb_seg_kind kind;
    const char *ptr;
    size_t len;       /* raw length */
    nb_blobmem *mem;  /* the blob ptr lies in (a reference), or NULL */
    char *path;
    int fd;
    uint64_t offset;   /* FILE_RANGE: first byte of the range */
    uint64_t raw_size; /* raw bytes (file size for files) */
    uint64_t wire;     /* bytes on the wire for this segment */
} nb_upseg;

enum { OP_NONE = 0, OP_ADD, OP_CANCEL, OP_REMOVE, OP_RESUME };

typedef enum nb_body_mode {
    BODY_UNDECIDED = 0, /* no body byte yet */
    BODY_SCAN,          /* 2xx: through the scanner (or the SSE parser) */
    BODY_RAW            /* other statuses: kept raw, capped */
} nb_body_mode;

typedef enum nb_stream_mode {
    STREAM_NO = 0,    /* not a stream */
    STREAM_UNSEEN,    /* a stream was asked for; no body byte yet */
    STREAM_SSE,       /* the body is SSE */
    STREAM_PLAIN,     /* the body is plain JSON after all (some gateways) */
    STREAM_JSONL      /* JSON Lines: each line an event (batch results) */
} nb_stream_mode;

struct nb_xfer {
    nb_engine *engine;
    nb_xfer *prev, *next;     /* engine's all-transfers list (e->mu) */
    nb_xfer *done_next;       /* engine's done queue (e->mu) */
    int queued;               /* in the done queue (e->mu) */
    nb_xfer *op_next;         /* engine's operation queue (e->mu) */
    int op;                   /* pending OP_* (e->mu) */
    int attached;             /* the worker holds it (in the multi handle, or
                               * being added) (e->mu) */
    int orphan;               /* freed by its owner while attached: the worker
                               * frees it once detached (e->mu) */
    int body_gone;            /* the borrowed segment bytes may be gone
                               * (e->body_mu) */
    CURL *easy;
    struct curl_slist *hdrs;
    char errbuf[CURL_ERROR_SIZE];

    /* request body */
    nb_upseg *segs;
    size_t nsegs, cur;        /* current segment */
    uint64_t cur_off;         /* raw offset inside the current segment */
    char *stage;              /* encoded chars waiting (allocated on first use, */
    size_t stage_len, stage_pos; /* by the worker: start() stays cheap) */
    uint8_t *raw;             /* file bytes read for encoding (same) */
    uint64_t upload_total;

    /* response */
    nb_body_mode mode;
    long status, http_version, new_connections;
    nb_scan *scan;
    nb_buf raw_body;
    nb_buf headers;
    uint64_t body_bytes, max_body;
    char *blob_dir;
    int flush_blobs;
    int empty_ok;        /* opts.empty_ok */
    int jsonl_open;      /* JSON Lines (sse == 4): the current line has content */
    nb_blobs blobs;           /* the response's; in a stream, the current event's */
    nb_stream_mode sse;
    nb_sse *sse_parser;
    nb_event *ev_head, *ev_tail; /* finished events not yet taken (e->mu) */
    uint64_t ev_mem;     /* their memory (e->mu to change; read atomically) */
    uint64_t ev_cap;     /* over this, receiving pauses until half is taken */
    int paused;          /* receiving paused (written by the worker, e->mu held) */

    /* outcome */
    int done;
    nb_kind kind;
    nb_kind abort_kind;       /* set by a callback that aborted */
    char msg[512];
    int os_errno;             /* socket() failed with it (on_open_socket), or
                               * libcurl's CURLINFO_OS_ERRNO once done */
    double t0, t_end, t_active; /* start, end, last byte moved */
    long timeout_ms, stall_ms;
    curl_off_t ulnow, ultotal, dlnow, dltotal; /* e->mu */
    int notify_progress;      /* progress wakes the notification fd */
    nb_phase notified_phase;  /* as of the last progress notification (worker) */
    double t_notified;        /* when that was (worker) */
    double t_published;       /* progress last written under e->mu (worker) */
    curl_off_t w_ulnow, w_ultotal, w_dlnow, w_dltotal; /* latest seen (worker);
                               * published at most every NB_PUBLISH_S, and by finish() */
    char **tmps;              /* output= temp files made (e->mu; see temp_create) */
    size_t ntmps, captmps;
    int files_dropped;        /* nb_xfer_drop_files was called: make no more (e->mu) */
    int phase_told;           /* the phase the caller was last woken for (e->mu) */
    double t_told;            /* when it was last woken for byte counts (e->mu) */
};

/* Workers of engines made through one group (a Lua state: the binding
 * makes one per state) are counted, and joined once they end, so the code
 * that runs them can be unloaded safely after nb_group_free(). */
struct nb_group {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int live;          /* workers running */
    int refs;          /* the owner + every engine made through it */
    pid_t pid;
    pthread_t *ended;  /* workers that ended, to be joined */
    size_t nended, capended;
};

/* The engine has at most one worker thread, which alone calls libcurl's
 * multi API (and so runs every libcurl callback and all decoding), while
 * the caller's thread only queues operations and collects finished
 * transfers: a poll() costs the same whatever the number of bytes in
 * flight. The worker starts with the first transfer and ends after
 * idle_ms with nothing to do (closing the multi handle and its
 * connections), or when the engine is freed: nobody waits for it.
 * e->mu guards the queues, the lists and the fields marked (e->mu). */
struct nb_engine {
    nb_group *group;
    pid_t pid;                /* the process that made it (fork check) */
    CURLM *multi;             /* while a worker runs; the worker's */
    int worker;               /* a worker runs (e->mu) */
    int closed;               /* nb_engine_free() was called (e->mu) */
    int refs;                 /* caller + worker + transfers linked (e->mu) */
    long idle_ms;
    pthread_mutex_t mu;
    pthread_mutex_t body_mu;  /* the worker reading borrowed segment bytes */
    pthread_cond_t cv;        /* a transfer finished or an event arrived */
    nb_xfer *all;             /* every transfer started and not yet popped */
    nb_xfer *done_head, *done_tail;
    nb_xfer *ops_head, *ops_tail;
    char **trash;             /* files the worker deletes (nb_engine_replace_file) */
    size_t ntrash, captrash;
    int running;              /* started and not finished */
    int running_seen;         /* the caller's last reading of running */
    unsigned long event_seq, event_seq_seen; /* stream events queued; as of the last perform() */
    /* the notification fd (nb_engine_pollfd): readable while `signaled`;
     * an eventfd (nfd_r == nfd_w) or a pipe. Written by the worker, drained
     * by nb_engine_settle(), closed by nb_engine_free(), all under e->mu. */
    int nfd_r, nfd_w;
    int signaled;
    int work; /* post_work(): atomic */
    unsigned long progress_seq, progress_seq_seen; /* progress worth telling; as of the last perform() */
};

/* ------------------------------------------------------------------ groups */

nb_group *nb_group_new(void)
{
    nb_group *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->refs = 1;
    g->pid = getpid();
    return g;
}

/* (g->mu held) joins the workers that ended */
static void group_reap(nb_group *g)
{
    size_t i;
    for (i = 0; i < g->nended; i++) pthread_join(g->ended[i], NULL);
    g->nended = 0;
}

static void group_unref(nb_group *g)
{
    int last;
    pthread_mutex_lock(&g->mu);
    last = --g->refs == 0;
    if (last) group_reap(g);
    pthread_mutex_unlock(&g->mu);
    if (!last) return;
    free(g->ended);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void nb_group_free(nb_group *g)
{
    if (!g) return;
    if (g->pid != getpid()) return; /* a forked child: the parent's, leaked */
    pthread_mutex_lock(&g->mu);
    while (g->live > 0) pthread_cond_wait(&g->cv, &g->mu);
    group_reap(g);
    pthread_mutex_unlock(&g->mu);
    group_unref(g);
}

/* A worker ends: the last thing it does (it touches g no more once this
 * returns; the owner's nb_group_free, which waits for live == 0, keeps g
 * alive until then). The group joins it later. */
static void group_worker_ended(nb_group *g)
{
    pthread_mutex_lock(&g->mu);
    if (g->nended == g->capended) {
        size_t nc = g->capended ? g->capended * 2 : 8;
        pthread_t *np = realloc(g->ended, nc * sizeof *np);
        if (np) {
            g->ended = np;
            g->capended = nc;
        }
    }
    if (g->nended < g->capended) g->ended[g->nended++] = pthread_self();
    else pthread_detach(pthread_self()); /* out of memory: let it go */
    g->live--;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* ------------------------------------------------------------------ engine */

static void *worker_main(void *arg);
static int notify_open(nb_engine *e);
static void notify_close(nb_engine *e);
static void notify(nb_engine *e);
static void notify_drain(nb_engine *e);

static void cond_init_monotonic(pthread_cond_t *cv)
{
#if NB_COND_MONOTONIC
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) == 0) {
        int ok = pthread_condattr_setclock(&a, CLOCK_MONOTONIC) == 0 && pthread_cond_init(cv, &a) == 0;
        pthread_condattr_destroy(&a);
        if (ok) return;
    }
#endif
    pthread_cond_init(cv, NULL);
}

static int forked(const nb_engine *e) { return e->pid != getpid(); }

nb_engine *nb_engine_new(nb_group *g, long idle_ms)
{
    nb_engine *e;
    errno = 0;
    if (nb_transport_global_init()) return NULL;
    e = calloc(1, sizeof *e);
    if (!e) return NULL;
    if (notify_open(e) != 0) {
        int err = errno;
        free(e);
        errno = err;
        return NULL;
    }
    e->pid = getpid();
    e->idle_ms = idle_ms > 0 ? idle_ms : 1;
    e->refs = 1;
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->body_mu, NULL);
    cond_init_monotonic(&e->cv);
    if (g) {
        pthread_mutex_lock(&g->mu);
        g->refs++;
        group_reap(g);
        pthread_mutex_unlock(&g->mu);
    }
    e->group = g;
    return e;
}

static void lock(nb_engine *e) { if (e) pthread_mutex_lock(&e->mu); }
static void unlock(nb_engine *e) { if (e) pthread_mutex_unlock(&e->mu); }

/* (e->mu held) wakes the worker, if one runs */
static void wake(nb_engine *e)
{
    if (e->worker) curl_multi_wakeup(e->multi);
}

/* Frees what is left of e (its last reference is gone). */
static void engine_destroy(nb_engine *e)
{
    size_t i;
    for (i = 0; i < e->ntrash; i++) {
        unlink(e->trash[i]);
        free(e->trash[i]);
    }
    free(e->trash);
    notify_close(e);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->body_mu);
    pthread_mutex_destroy(&e->mu);
    if (e->group) group_unref(e->group);
    free(e);
}

/* (e->mu held) drops a reference; 1: the caller must engine_destroy(e)
 * after unlocking */
static int engine_unref(nb_engine *e) { return --e->refs == 0; }

/* curl_multi_init, with libcurl's wakeup socket pair made close-on-exec.
 * libcurl before 8.8 creates that pair inside curl_multi_init without
 * SOCK_CLOEXEC (curl issue 13618), out of reach of its API, so a child the
 * host spawns would inherit it. socketpair() takes the two lowest free
 * descriptors: they are found first (F_DUPFD_CLOEXEC on our own fd, closed
 * again); after the init, a descriptor there that is an AF_UNIX socket
 * without close-on-exec is libcurl's only if both are such sockets and
 * libcurl's own wakeup byte (curl_multi_wakeup) arrives on exactly one of
 * them -- then the two get FD_CLOEXEC.
 * Anything else found there (a descriptor another host thread opened in
 * between) is left untouched. The wakeup byte is drained by the worker's
 * first curl_multi_poll, which it merely ends early. On libcurl 8.8 and
 * later (eventfd or SOCK_CLOEXEC) nothing is found and nothing is done.
 * NULL with errno as curl_multi_init left it. (e->mu held) */
static CURLM *multi_init_cloexec(nb_engine *e)
{
    int lo[2], cand[2], n = 0, i;
    struct pollfd pf[2];
    CURLM *m;
    for (i = 0; i < 2; i++) lo[i] = fcntl(e->nfd_r, F_DUPFD_CLOEXEC, 0);
    for (i = 0; i < 2; i++)
        if (lo[i] >= 0) close(lo[i]);
    errno = 0;
    m = curl_multi_init();
    if (!m) return NULL;
    for (i = 0; i < 2; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fl = lo[i] >= 0 ? fcntl(lo[i], F_GETFD) : -1;
        if (fl < 0 || (fl & FD_CLOEXEC)) continue;
        if (getsockname(lo[i], (struct sockaddr *)&ss, &sl) != 0 || ss.ss_family != AF_UNIX) continue;
        cand[n] = lo[i];
        pf[n].fd = lo[i];
        pf[n].events = POLLIN;
        pf[n].revents = 0;
        n++;
    }
    /* a pair, and the byte on exactly one end of it: the reading end */
    if (n != 2 || curl_multi_wakeup(m) != CURLM_OK) return m;
    if (poll(pf, 2, 0) != 1) return m;
    for (i = 0; i < n; i++) {
        int fl = fcntl(cand[i], F_GETFD);
        if (fl >= 0) fcntl(cand[i], F_SETFD, fl | FD_CLOEXEC);
    }
    return m;
}

/* (e->mu held) Starts the worker if none runs. 0, or -1 with a message. */
static int ensure_worker(nb_engine *e, char *err, size_t errlen)
{
    pthread_attr_t attr;
    pthread_t t;
    sigset_t all, old;
    int rc;
    if (e->worker) return 0;
    e->multi = multi_init_cloexec(e);
    if (!e->multi) {
        int en = errno;
        snprintf(err, errlen, "cannot start the engine: %s",
                 en == EMFILE || en == ENFILE ? "too many open files"
                 : en ? strerror(en) : "libcurl could not make a multi handle");
        return -1;
    }
    curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (e->group) {
        pthread_mutex_lock(&e->group->mu);
        group_reap(e->group);
        e->group->live++;
        pthread_mutex_unlock(&e->group->mu);
    }
    e->worker = 1;
    e->refs++; /* the worker's */
    /* the worker takes no signal: the host's handlers run on its threads */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    if (!e->group) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, worker_main, e);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        e->worker = 0;
        e->refs--;
        curl_multi_cleanup(e->multi);
        e->multi = NULL;
        if (e->group) {
            pthread_mutex_lock(&e->group->mu);
            e->group->live--;
            pthread_mutex_unlock(&e->group->mu);
        }
        snprintf(err, errlen, "cannot start the engine's worker thread: %s",
                 rc == EAGAIN ? "too many threads (or out of memory)" : strerror(rc));
        return -1;
    }
    return 0;
}

/* ---- the notification fd */

/* Opens the fd (close-on-exec, non-blocking). 0, or -1 with errno set. */
static int notify_open(nb_engine *e)
{
#if NB_EVENTFD
    e->nfd_r = e->nfd_w = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return e->nfd_r < 0 ? -1 : 0;
#else
    int p[2], i;
    e->nfd_r = e->nfd_w = -1;
    if (pipe(p) != 0) return -1;
    for (i = 0; i < 2; i++) {
        int fl = fcntl(p[i], F_GETFL);
        if (fl < 0 || fcntl(p[i], F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(p[i], F_SETFD, FD_CLOEXEC) != 0) {
            int err = errno;
            close(p[0]);
            close(p[1]);
            errno = err;
            return -1;
        }
    }
    e->nfd_r = p[0];
    e->nfd_w = p[1];
    return 0;
#endif
}

/* (e->mu held) */
static void notify_close(nb_engine *e)
{
    if (e->nfd_r >= 0) close(e->nfd_r);
    if (e->nfd_w >= 0 && e->nfd_w != e->nfd_r) close(e->nfd_w);
    e->nfd_r = e->nfd_w = -1;
    e->signaled = 0;
}

/* (e->mu held) Makes the fd readable: there is work for the caller. */
static void notify(nb_engine *e)
{
    ssize_t r;
    if (e->signaled || e->nfd_w < 0) return;
#if NB_EVENTFD
    {
        uint64_t one = 1;
        r = write(e->nfd_w, &one, sizeof one);
    }
#else
    r = write(e->nfd_w, "!", 1);
#endif
    (void)r; /* full (cannot be: one write per drain) or closed: readable anyway */
    e->signaled = 1;
}

/* (e->mu held) Makes the fd quiet. */
static void notify_drain(nb_engine *e)
{
    char buf[64];
    if (!e->signaled || e->nfd_r < 0) return;
    while (read(e->nfd_r, buf, sizeof buf) > 0) {
    }
    e->signaled = 0;
}

/* (e->mu held) Unlinks x from a singly linked queue whose link field sits
 * at byte offset `link` in nb_xfer (done_next or op_next). */
static void queue_unlink(nb_xfer **head, nb_xfer **tail, nb_xfer *x, size_t link)
{
#define NEXT(p) (*(nb_xfer **)((char *)(p) + link))
    nb_xfer **pp = head, *prev = NULL;
    while (*pp && *pp != x) {
        prev = *pp;
        pp = &NEXT(*pp);
    }
    if (*pp) {
        *pp = NEXT(x);
        if (*tail == x) *tail = prev;
    }
    NEXT(x) = NULL;
#undef NEXT
}

/* (e->mu held) */
static void done_unlink(nb_engine *e, nb_xfer *x)
{
    if (!x->queued) return;
    queue_unlink(&e->done_head, &e->done_tail, x, offsetof(nb_xfer, done_next));
    x->queued = 0;
}

/* (e->mu held) */
static void op_unlink(nb_engine *e, nb_xfer *x)
{
    if (x->op == OP_NONE) return;
    queue_unlink(&e->ops_head, &e->ops_tail, x, offsetof(nb_xfer, op_next));
    x->op = OP_NONE;
}

/* (e->mu held) tells the worker there are operations, trash or a stop to
 * look at: it reads this without the lock and takes the lock only then, so
 * that a busy worker leaves the lock free for the caller's try-locks. */
static void post_work(nb_engine *e) { __atomic_store_n(&e->work, 1, __ATOMIC_RELEASE); }

/* (e->mu held) queues op for the worker; a later op replaces an earlier one
 * except that an ADD still pending is simply dropped by CANCEL/REMOVE. */
static void op_push(nb_engine *e, nb_xfer *x, int op)
{
    post_work(e);
    if (x->op != OP_NONE) op_unlink(e, x);
    x->op = op;
    x->op_next = NULL;
    if (e->ops_tail) e->ops_tail->op_next = x;
    else e->ops_head = x;
    e->ops_tail = x;
}

/* (e->mu held) */
static void all_unlink(nb_engine *e, nb_xfer *x)
{
    if (x->prev) x->prev->next = x->next;
    else if (e->all == x) e->all = x->next;
    if (x->next) x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

static void finish(nb_xfer *x, nb_kind kind, const char *msg);
static int sse_event_end(void *ud);

/* Deletes the files queued by nb_engine_replace_file (outside the lock:
 * freeing a big file's pages takes time). */
static void empty_trash(nb_engine *e)
{
    char **list;
    size_t i, n;
    lock(e);
    list = e->trash;
    n = e->ntrash;
    e->trash = NULL;
    e->ntrash = e->captrash = 0;
    unlock(e);
    for (i = 0; i < n; i++) {
        unlink(list[i]);
        free(list[i]);
    }
    free(list);
}

int nb_engine_replace_file(nb_engine *e, const char *src, const char *dst, char *err,
                           size_t errlen)
{
    struct stat st;
    char *old = NULL;
    static unsigned counter = 0;
    /* only a regular file is ever replaced (rename would replace a device
     * node, FIFO or socket just as well) */
    if (nb_check_replaceable(dst, NULL, err, errlen) != 0) return -1;
    /* keep the old file alive under a hidden name for the worker to delete */
    if (lstat(dst, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 1024 * 1024) {
        const char *slash = strrchr(dst, '/');
        size_t dirlen = slash ? (size_t)(slash - dst) + 1 : 0, n = strlen(dst) + 48;
        unsigned tries;
        old = malloc(n);
        for (tries = 0; old && tries < 16; tries++) {
            snprintf(old, n, "%.*s.%s.nb-old-%ld-%u", (int)dirlen, dst, dst + dirlen,
                     (long)getpid(), counter++);
            if (link(dst, old) == 0) break;
            if (errno != EEXIST) tries = 16;
        }
        if (old && tries >= 16) {
            free(old);
            old = NULL; /* no hard links here: a plain rename it is */
        }
    }
    if (rename(src, dst) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", dst, strerror(errno));
        if (old) {
            unlink(old);
            free(old);
        }
        return -1;
    }
    if (old) {
        int queued = 0;
        char ignore[8];
        lock(e);
        /* the worker deletes it (starting one if none runs: it ends soon) */
        if (!e->closed && !forked(e) && ensure_worker(e, ignore, sizeof ignore) == 0) {
        if (e->ntrash == e->captrash) {
            size_t nc = e->captrash ? e->captrash * 2 : 8;
            char **np = realloc(e->trash, nc * sizeof *np);
            if (np) {
                e->trash = np;
                e->captrash = nc;
            }
        }
        if (e->ntrash < e->captrash) {
            e->trash[e->ntrash++] = old;
            post_work(e);
            wake(e);
            queued = 1;
        }
        }
        unlock(e);
        if (!queued) {
            unlink(old);
            free(old);
        }
    }
    return 0;
}

void nb_engine_free(nb_engine *e)
{
    int last;
    if (!e) return;
    /* a forked child leaves the parent's engine alone: its connections and
     * files are the parent's, its lock may be held by a thread that is not
     * here; the memory is leaked, which is correct */
    if (forked(e)) return;
    lock(e);
    e->closed = 1;
    notify_close(e);
    if (e->worker) {
        /* the worker cancels what it drives, closes the multi handle and
         * ends by itself: nobody waits for it */
        post_work(e);
        wake(e);
    }
    last = engine_unref(e);
    unlock(e);
    if (last) engine_destroy(e);
}

int nb_engine_forked(const nb_engine *e) { return forked(e); }

nb_xfer *nb_engine_next_done(nb_engine *e)
{
    nb_xfer *x;
    int last = 0;
    if (forked(e)) return NULL;
    /* never block the caller: a busy lock means "none yet", ask again */
    if (pthread_mutex_trylock(&e->mu) != 0) return NULL;
    x = e->done_head;
    if (x) {
        e->done_head = x->done_next;
        if (!e->done_head) e->done_tail = NULL;
        x->done_next = NULL;
        x->queued = 0;
        all_unlink(e, x); /* done and popped: the engine forgets it */
        x->engine = NULL;
        last = engine_unref(e);
    }
    unlock(e);
    if (last) engine_destroy(e);
    return x;
}

int nb_engine_pollfd(const nb_engine *e) { return e->nfd_r; }

void nb_engine_settle(nb_engine *e)
{
    const nb_xfer *x;
    int pending;
    if (forked(e)) return;
    lock(e);
    notify_drain(e);
    pending = e->done_head != NULL;
    for (x = e->all; x && !pending; x = x->next)
        if (x->ev_head) pending = 1;
    if (pending) notify(e);
    unlock(e);
}

/* ------------------------------------------------------------------ outcome */

void nb_event_free(nb_event *ev)
{
    if (!ev) return;
    nb_blobs_free(&ev->blobs);
    free(ev->skeleton);
    free(ev);
}

static void close_upload_files(nb_xfer *x)
{
    size_t i;
    for (i = 0; i < x->nsegs; i++)
        if (x->segs[i].fd >= 0) {
            close(x->segs[i].fd);
            x->segs[i].fd = -1;
        }
}

/* Worker only: detaches the easy handle, then publishes the outcome under
 * e->mu (an orphan is not queued: the worker frees it, see xfer_drop). */
static void finish(nb_xfer *x, nb_kind kind, const char *msg)
{
    nb_engine *e = x->engine;
    int attached;
    curl_off_t dl = -1, ul = -1;
    if (x->done) return;
    lock(e);
    attached = x->attached;
    unlock(e);
    /* the final byte counts: on_xferinfo publishes at most every NB_PUBLISH_S,
     * so its last call may not have been published */
    if (x->easy) {
        if (curl_easy_getinfo(x->easy, CURLINFO_SIZE_DOWNLOAD_T, &dl) != CURLE_OK) dl = -1;
        if (curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &ul) != CURLE_OK) ul = -1;
    }
    if (e && attached) curl_multi_remove_handle(e->multi, x->easy);
    nb_blobs_close_files(&x->blobs);
    close_upload_files(x);
    lock(e);
    x->attached = 0;
    x->ulnow = x->w_ulnow; /* the last progress, published */
    x->ultotal = x->w_ultotal;
    x->dlnow = x->w_dlnow;
    x->dltotal = x->w_dltotal;
    if (dl > x->dlnow) x->dlnow = dl; /* (and libcurl's own final counts) */
    if (ul > x->ulnow) x->ulnow = ul;
    x->kind = kind;
    x->t_end = nb_now();
    snprintf(x->msg, sizeof x->msg, "%s", msg ? msg : "");
    x->done = 1;
    if (e) {
        e->running--;
        if (!x->queued && !x->orphan) {
            x->queued = 1;
            x->done_next = NULL;
            if (e->done_tail) e->done_tail->done_next = x;
            else e->done_head = x;
            e->done_tail = x;
        }
        pthread_cond_broadcast(&e->cv);
        notify(e); /* last: the caller wakes to a lock it can take */
    }
    unlock(e);
}

static void xfer_release(nb_xfer *x);

/* (e->mu held) The engine forgets x: no longer running, in no queue or
 * list. 1 when that let go of the engine's last reference. */
static int forget(nb_engine *e, nb_xfer *x)
{
    if (!x->done) {
        x->done = 1;
        e->running--;
    }
    op_unlink(e, x);
    done_unlink(e, x);
    all_unlink(e, x);
    x->engine = NULL;
    return engine_unref(e);
}

/* Worker only: x was orphaned (freed by its owner while attached) and is
 * detached now: the engine forgets it and it is freed here. */
static void xfer_drop(nb_engine *e, nb_xfer *x)
{
    int last;
    lock(e);
    last = forget(e, x);
    unlock(e);
    xfer_release(x); /* deletes its temp files */
    if (last) engine_destroy(e);
}

static nb_kind classify(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return NB_KIND_TIMEOUT; /* stalls are caught by on_xferinfo first */
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
        return NB_KIND_TLS;
    /* the caller's setup, not the network: retrying changes nothing */
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_UNKNOWN_OPTION:
        return NB_KIND_CONFIG;
    case CURLE_OUT_OF_MEMORY:
        return NB_KIND_MEMORY;
    default:
        return NB_KIND_NETWORK;
    }
}

static void on_curl_done(nb_xfer *x, CURLcode rc)
{
    long os_errno = 0;
    curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
    if (!x->os_errno) x->os_errno = (int)os_errno;
    char m[sizeof x->msg];
    int sc;
    if (x->done) return;
    if (x->abort_kind != NB_OK) { /* a callback aborted: its message stands */
        snprintf(m, sizeof m, "%s", x->msg);
        finish(x, x->abort_kind, m);
        return;
    }
    if (rc != CURLE_OK) {
        nb_kind k = classify(rc);
        snprintf(m, sizeof m, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        /* libcurl reports a malformed proxy URL as "could not resolve" */
        if (strncmp(x->errbuf, "Unsupported proxy", 17) == 0)
            k = NB_KIND_CONFIG;
        /* the fd table is full: say so (libcurl's text names the call) */
        if (x->os_errno == EMFILE || x->os_errno == ENFILE) {
            char t[sizeof m];
            snprintf(t, sizeof t, "too many open files (%.400s)", m);
            snprintf(m, sizeof m, "%s", t);
        }
        finish(x, k, m);
        return;
    }
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &x->http_version);
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &x->new_connections);
    if (x->mode == BODY_UNDECIDED) /* empty body */
        x->mode = (x->status >= 200 && x->status < 300) ? BODY_SCAN : BODY_RAW;
    if (x->mode == BODY_SCAN && x->sse == STREAM_SSE) {
        /* the stream ended: between events, or inside one */
        if (nb_sse_finish(x->sse_parser) != 0) {
            snprintf(m, sizeof m, "the stream ended inside event %llu",
                     (unsigned long long)nb_sse_events(x->sse_parser) + 1);
            finish(x, NB_KIND_INVALID_RESPONSE, m);
            return;
        }
    } else if (x->mode == BODY_SCAN && x->sse == STREAM_UNSEEN) {
        finish(x, NB_KIND_INVALID_RESPONSE, "empty response body");
        return;
    } else if (x->mode == BODY_SCAN && x->sse == STREAM_JSONL) {
        /* JSON Lines: a last line without its newline ends here */
        if (x->jsonl_open) {
            x->jsonl_open = 0;
            if (sse_event_end(x)) {
                finish(x, x->abort_kind != NB_OK ? x->abort_kind : NB_KIND_INVALID_RESPONSE, x->msg);
                return;
            }
        }
    } else if (x->mode == BODY_SCAN) {
        uint64_t off = 0;
        const char *em;
        if (!x->scan) {
            if (x->empty_ok) {
                finish(x, NB_OK, "");
                return;
            }
            finish(x, NB_KIND_INVALID_RESPONSE, "empty response body");
            return;
        }
        sc = nb_scan_finish(x->scan);
        if (sc != NB_SCAN_OK) {
            em = nb_scan_error(x->scan, &off);
            if (sc == NB_SCAN_ETRUNC && x->body_bytes == 0)
                snprintf(m, sizeof m, "empty response body");
            else
                snprintf(m, sizeof m, "%s at byte %llu", em ? em : "malformed body",
                         (unsigned long long)off);
            finish(x, NB_KIND_INVALID_RESPONSE, m);
            return;
        }
    }
    finish(x, NB_OK, "");
}

int nb_engine_perform(nb_engine *e, int wait_ms)
{
    int running;
    if (forked(e)) return 0;
    if (wait_ms <= 0) {
        /* never block the caller: if the worker holds the lock right now,
         * answer with the last count seen */
        if (pthread_mutex_trylock(&e->mu) != 0) return e->running_seen;
        running = e->running_seen = e->running;
        pthread_mutex_unlock(&e->mu);
        return running;
    }
    pthread_mutex_lock(&e->mu);
    if (!e->done_head && e->event_seq == e->event_seq_seen && e->progress_seq == e->progress_seq_seen) {
        /* until a transfer finishes, a stream event arrives or progress
         * moved (see on_xferinfo); with nothing in flight this is a plain
         * sleep (retry back-off waits here) */
        struct timespec ts;
        clock_gettime(NB_COND_MONOTONIC ? CLOCK_MONOTONIC : CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->cv, &e->mu, &ts);
    }
    e->event_seq_seen = e->event_seq;
    e->progress_seq_seen = e->progress_seq;
    running = e->running_seen = e->running;
    pthread_mutex_unlock(&e->mu);
    return running;
}

/* Worker, the engine closed: cancels every transfer it drives or was
 * about to add, and frees the orphans. */
static void worker_close_all(nb_engine *e)
{
    for (;;) {
        nb_xfer *x;
        int orphan;
        lock(e);
        for (x = e->all; x; x = x->next)
            if (!x->done || x->orphan) break;
        if (!x) {
            while (e->ops_head) op_unlink(e, e->ops_head);
            unlock(e);
            return;
        }
        op_unlink(e, x);
        unlock(e);
        if (!x->done) finish(x, NB_KIND_CANCELLED, "client closed");
        lock(e);
        orphan = x->orphan;
        unlock(e);
        if (orphan) xfer_drop(e, x);
    }
}

/* The worker: carries out queued operations, drives libcurl, and finishes
 * transfers, sleeping in curl_multi_poll (woken by curl_multi_wakeup). It
 * ends when the engine is closed, or after idle_ms with nothing to do. */
static void *worker_main(void *arg)
{
    nb_engine *e = arg;
    nb_group *g = e->group;
    CURLM *multi = e->multi;
    double idle_since = 0;
    int last;
    for (;;) {
        nb_xfer *x;
        CURLMsg *msg;
        int n, running = 0, wait = 1000;
        if (__atomic_load_n(&e->work, __ATOMIC_ACQUIRE)) {
            pthread_mutex_lock(&e->mu);
            __atomic_store_n(&e->work, 0, __ATOMIC_RELAXED);
            if (e->closed) {
                pthread_mutex_unlock(&e->mu);
                break;
            }
            while ((x = e->ops_head)) {
                int op = x->op;
                op_unlink(e, x);
                if (op == OP_REMOVE) { /* an orphan */
                    int attached = x->attached;
                    x->attached = 0;
                    pthread_mutex_unlock(&e->mu);
                    if (attached) curl_multi_remove_handle(multi, x->easy);
                    xfer_drop(e, x);
                    pthread_mutex_lock(&e->mu);
                    continue;
                }
                /* the worker holds it from here on: an owner freeing it
                 * now orphans it instead of freeing it under the worker */
                if (op == OP_ADD && !x->done) x->attached = 1;
                pthread_mutex_unlock(&e->mu); /* libcurl calls outside the lock */
                if (op == OP_ADD && !x->done) {
                    if (curl_multi_add_handle(multi, x->easy) != CURLM_OK) {
                        lock(e);
                        x->attached = 0;
                        unlock(e);
                        finish(x, NB_KIND_MEMORY, "cannot add the transfer to the engine");
                        lock(e);
                        if (x->orphan) {
                            unlock(e);
                            xfer_drop(e, x);
                        } else {
                            unlock(e);
                        }
                    }
                } else if (op == OP_CANCEL) {
                    finish(x, NB_KIND_CANCELLED, "cancelled");
                } else if (op == OP_RESUME && !x->done) {
                    lock(e);
                    x->paused = 0; /* before: the resume may pause it again */
                    unlock(e);
                    x->t_active = nb_now();
                    curl_easy_pause(x->easy, CURLPAUSE_CONT);
                }
                pthread_mutex_lock(&e->mu);
            }
            pthread_mutex_unlock(&e->mu);
            empty_trash(e);
        }
        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &n))) {
            x = NULL;
            if (msg->msg != CURLMSG_DONE) continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            if (x) on_curl_done(x, msg->data.result);
        }
        if (running == 0) {
            /* nothing in flight: end after idle_ms without work */
            int idle;
            pthread_mutex_lock(&e->mu);
            idle = !e->ops_head && e->running == 0 && e->ntrash == 0 && !e->closed &&
                   !__atomic_load_n(&e->work, __ATOMIC_ACQUIRE);
            if (idle) {
                double now = nb_now();
                if (idle_since == 0) idle_since = now;
                if ((now - idle_since) * 1000.0 >= (double)e->idle_ms) {
                    e->worker = 0; /* the next transfer starts another */
                    e->multi = NULL;
                    pthread_mutex_unlock(&e->mu);
                    goto out;
                }
                wait = (int)((double)e->idle_ms - (now - idle_since) * 1000.0) + 1;
                if (wait > 1000) wait = 1000;
            } else {
                idle_since = 0;
            }
            pthread_mutex_unlock(&e->mu);
        } else {
            idle_since = 0;
        }
        curl_multi_poll(multi, NULL, 0, wait, NULL);
    }
    /* closed */
    worker_close_all(e);
    lock(e);
    e->worker = 0;
    e->multi = NULL;
    unlock(e);
out:
    empty_trash(e);
    curl_multi_cleanup(multi); /* closes its connections */
    lock(e);
    last = engine_unref(e);
    unlock(e);
    if (last) engine_destroy(e);
    if (g) group_worker_ended(g);
    return NULL;
}

/* ------------------------------------------------------------------ blobs (scanner sink) */

/* Worker: nb_mkstemp for an output= blob, under e->mu, so that
 * nb_xfer_drop_files (the caller's thread) deletes every file made; once
 * it was called, none is made (-1, errno ECANCELED). blob.h nb_blob_mkfile. */
static int temp_create(void *ud, char *path)
{
    nb_xfer *x = ud;
    nb_engine *e = x->engine;
    int fd = -1, saved;
    if (e) lock(e);
    if (x->files_dropped) {
        errno = ECANCELED;
    } else if (x->ntmps == x->captmps) {
        size_t nc = x->captmps ? x->captmps * 2 : 4;
        char **np = realloc(x->tmps, nc * sizeof *np);
        if (np) {
            x->tmps = np;
            x->captmps = nc;
        } else {
            errno = ENOMEM;
        }
    }
    if (!x->files_dropped && x->ntmps < x->captmps && (fd = nb_mkstemp(path)) >= 0) {
        char *copy = str_dup(path);
        if (copy) {
            x->tmps[x->ntmps++] = copy;
        } else {
            close(fd);
            unlink(path);
            fd = -1;
            errno = ENOMEM;
        }
    }
    saved = errno;
    if (e) unlock(e);
    errno = saved;
    return fd;
}

/* The blob code (blob.c) writes; a failure aborts the transfer with its
 * message: NB_KIND_IO, or NB_KIND_MEMORY when memory ran out. */
static int sink_fail(nb_xfer *x, int rc)
{
    if (rc == NB_BLOB_OK) return 0;
    x->abort_kind = rc == NB_BLOB_ENOMEM ? NB_KIND_MEMORY : NB_KIND_IO;
    return 1;
}

static int sink_begin(void *ud, unsigned idx)
{
    nb_xfer *x = ud;
    return sink_fail(x, nb_blobs_begin(&x->blobs, idx, x->blob_dir, temp_create, x, x->msg,
                                       sizeof x->msg));
}

static int sink_data(void *ud, unsigned idx, const uint8_t *p, size_t n)
{
    nb_xfer *x = ud;
    return sink_fail(x, nb_blobs_write(&x->blobs, idx, p, n, x->msg, sizeof x->msg));
}

static int sink_end(void *ud, unsigned idx, uint64_t total)
{
    nb_xfer *x = ud;
    (void)total;
    return sink_fail(x, nb_blobs_end(&x->blobs, idx, x->flush_blobs, x->msg, sizeof x->msg));
}

/* ------------------------------------------------------------------ stream events (SSE sink) */

/* The scanner failed on x's body (or, streaming, on the current event). */
static void scan_failed(nb_xfer *x, int rc)
{
    uint64_t off = 0;
    const char *em = nb_scan_error(x->scan, &off);
    if (x->abort_kind != NB_OK) return; /* a blob sink aborted: its message stands */
    if (rc == NB_SCAN_ENOMEM) {
        snprintf(x->msg, sizeof x->msg, "out of memory scanning the response");
        x->abort_kind = NB_KIND_MEMORY;
        return;
    }
    if (x->sse == STREAM_SSE)
        snprintf(x->msg, sizeof x->msg, "stream event %llu: %s at byte %llu",
                 (unsigned long long)nb_sse_events(x->sse_parser) + 1, em ? em : "malformed JSON",
                 (unsigned long long)off);
    else
        snprintf(x->msg, sizeof x->msg, "%s at byte %llu", em ? em : "malformed body",
                 (unsigned long long)off);
    x->abort_kind = NB_KIND_INVALID_RESPONSE;
}

static int sse_data(void *ud, const char *p, size_t n)
{
    nb_xfer *x = ud;
    int rc = nb_scan_feed(x->scan, p, n);
    if (rc != NB_SCAN_OK) {
        scan_failed(x, rc);
        return 1;
    }
    return 0;
}

/* An event ended: its skeleton and blobs become an nb_event, queued for
 * the caller; the scanner starts over for the next one. */
static int sse_event_end(void *ud)
{
    nb_xfer *x = ud;
    nb_engine *e = x->engine;
    nb_event *ev;
    const char *sk;
    size_t len;
    int rc = nb_scan_finish(x->scan);
    if (rc != NB_SCAN_OK) {
        scan_failed(x, rc);
        return 1;
    }
    sk = nb_scan_skeleton(x->scan, &len);
    ev = calloc(1, sizeof *ev);
    if (ev) ev->skeleton = malloc(len + 1);
    if (!ev || !ev->skeleton) {
        free(ev);
        snprintf(x->msg, sizeof x->msg, "out of memory");
        x->abort_kind = NB_KIND_MEMORY;
        return 1;
    }
    memcpy(ev->skeleton, sk, len);
    ev->skeleton[len] = 0;
    ev->len = len;
    ev->blobs = x->blobs; /* the event's blobs move with it */
    memset(&x->blobs, 0, sizeof x->blobs);
    ev->mem = len;
    {
        unsigned i;
        for (i = 0; i < ev->blobs.n; i++)
            if (ev->blobs.v[i].mem) ev->mem += ev->blobs.v[i].bytes;
    }
    nb_scan_reset(x->scan);
    if (e) lock(e);
    if (x->ev_tail) x->ev_tail->next = ev;
    else x->ev_head = ev;
    x->ev_tail = ev;
    __atomic_store_n(&x->ev_mem, x->ev_mem + ev->mem, __ATOMIC_RELAXED);
    if (e) {
        e->event_seq++;
        pthread_cond_broadcast(&e->cv);
        notify(e);
        unlock(e);
    }
    return 0;
}

/* JSON Lines (sse == 4): every non-blank line goes to the scanner and ends
 * as an event. 0, or -1 (message set). */
static int jsonl_feed(nb_xfer *x, const char *p, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(p, '\n', len);
        size_t n = nl ? (size_t)(nl - p) : len;
        const char *q = p;
        if (!x->jsonl_open)
            while (q < p + n && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q < p + n) {
            x->jsonl_open = 1;
            if (sse_data(x, q, (size_t)(p + n - q))) return -1;
        }
        if (!nl) break;
        if (x->jsonl_open) {
            x->jsonl_open = 0;
            if (sse_event_end(x)) return -1;
        }
        p = nl + 1;
        len -= n + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ libcurl callbacks */

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    nb_xfer *x = ud;
    size_t len = size * n;
    /* a new status line starts a new header block (100-continue, proxies) */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) x->headers.len = 0;
    if (x->headers.len + len <= NB_HEADERS_CAP) buf_add(&x->headers, p, len);
    return len;
}

/* 2xx body bytes: to the SSE parser (streams) or the scanner. 0 or -1. */
static int nb_feed_body(nb_xfer *x, const char *p, size_t len)
{
    int rc;
    if (x->sse == STREAM_SSE) return nb_sse_feed(x->sse_parser, p, len) == 0 ? 0 : -1;
    rc = nb_scan_feed(x->scan, p, len);
    if (rc != NB_SCAN_OK) {
        scan_failed(x, rc);
        return -1;
    }
    return 0;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    nb_xfer *x = ud;
    const size_t total = size * n; /* what libcurl must hear back */
    size_t len = total;
    /* a stream whose events are not being taken: receiving pauses (the
     * bytes of this call stay libcurl's, given again on resume) while the
     * events waiting hold more than ev_cap; nb_xfer_next_event resumes it
     * once half of that is taken. So a consumer slower than the network
     * holds ev_cap plus one event, not the whole body. */
    if (x->ev_cap && __atomic_load_n(&x->ev_mem, __ATOMIC_RELAXED) > x->ev_cap && x->engine) {
        int pause;
        lock(x->engine);
        pause = x->ev_mem > x->ev_cap;
        if (pause) x->paused = 1;
        unlock(x->engine);
        if (pause) return CURL_WRITEFUNC_PAUSE;
    }
    if (x->mode == BODY_UNDECIDED) {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
        if (x->status >= 200 && x->status < 300) {
            nb_scan_sink sink;
            sink.blob_begin = sink_begin;
            sink.blob_data = sink_data;
            sink.blob_end = sink_end;
            sink.ud = x;
            x->scan = nb_scan_new(&sink, 0);
            if (!x->scan) {
                snprintf(x->msg, sizeof x->msg, "out of memory");
                x->abort_kind = NB_KIND_MEMORY;
                return 0;
            }
            x->mode = BODY_SCAN;
        } else {
            x->mode = BODY_RAW;
        }
    }
    x->body_bytes += len;
    if (x->max_body && x->body_bytes > x->max_body) {
        snprintf(x->msg, sizeof x->msg, "response body larger than max_response_bytes (%llu)",
                 (unsigned long long)x->max_body);
        x->abort_kind = NB_KIND_TOO_LARGE;
        return 0;
    }
    if (x->mode == BODY_RAW) {
        size_t room = x->raw_body.len < NB_RAW_BODY_CAP ? NB_RAW_BODY_CAP - x->raw_body.len : 0;
        if (buf_add(&x->raw_body, p, len < room ? len : room)) {
            snprintf(x->msg, sizeof x->msg, "out of memory");
            x->abort_kind = NB_KIND_MEMORY;
            return 0;
        }
        return len;
    }
    if (x->sse == STREAM_JSONL) return jsonl_feed(x, p, len) == 0 ? total : 0;
    if (x->sse == STREAM_UNSEEN) {
        /* a stream was asked for: SSE, unless the body is plain JSON (an
         * object, or the array streamGenerateContent sends without
         * alt=sse), as some gateways answer; leading blanks decide nothing */
        size_t i = 0;
        while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) i++;
        if (i == len) return total;
        p += i;
        len -= i;
        if (p[0] == '{' || p[0] == '[') {
            x->sse = STREAM_PLAIN;
        } else {
            nb_sse_sink ss;
            ss.data = sse_data;
            ss.event_end = sse_event_end;
            ss.ud = x;
            x->sse_parser = nb_sse_new(&ss);
            if (!x->sse_parser) {
                snprintf(x->msg, sizeof x->msg, "out of memory");
                x->abort_kind = NB_KIND_MEMORY;
                return 0;
            }
            x->sse = STREAM_SSE;
        }
    }
    if (nb_feed_body(x, p, len) != 0) return 0;
    return total;
}

/* Progress wakes the notification fd at most this often per transfer (a
 * phase change wakes it at once). */
#define NB_PROGRESS_NOTIFY_S 0.1
#define NB_PUBLISH_S 0.01

/* socket(2) for libcurl: close-on-exec (atomically where the system has
 * SOCK_CLOEXEC), so a child the host spawns inherits no connection; and a
 * failure recorded, to tell a full fd table from a network failure */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    nb_xfer *x = ud;
    curl_socket_t fd;
    (void)purpose;
#ifdef SOCK_CLOEXEC
    fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
#else
    fd = socket(a->family, a->socktype, a->protocol);
    if (fd != CURL_SOCKET_BAD) fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
    if (fd == CURL_SOCKET_BAD) x->os_errno = errno;
    return fd;
}

/* (e->mu held, or no worker) The phase x is in. */
static nb_phase phase_of(const nb_xfer *x)
{
    if (x->done) return NB_PHASE_DONE;
    if (x->dlnow > 0) return NB_PHASE_DOWNLOADING;
    if (x->upload_total > 0 && (uint64_t)x->ulnow >= x->upload_total) return NB_PHASE_WAITING;
    if (x->ulnow > 0) return NB_PHASE_UPLOADING;
    return NB_PHASE_CONNECTING;
}

#define NB_PROGRESS_TELL_S 0.1 /* byte counts wake a waiting caller at most 10 times a second */

/* (e->mu held) Wakes a caller waiting in nb_engine_perform when x changed
 * phase, or its byte counts moved and the last wake-up is 0.1 s old. */
static void tell_progress(nb_engine *e, nb_xfer *x, int moved, double now)
{
    int phase = (int)phase_of(x);
    if (phase == x->phase_told && !(moved && now - x->t_told >= NB_PROGRESS_TELL_S)) return;
    x->phase_told = phase;
    x->t_told = now;
    e->progress_seq++;
    pthread_cond_broadcast(&e->cv);
}

static int on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    nb_xfer *x = ud;
    double now = nb_now();
    int stalled = 0, moved = dlnow != x->w_dlnow || ulnow != x->w_ulnow;
    /* stall_timeout counts silence only while bytes are expected: during
     * the upload, and once the response body has begun; the wait for its
     * first byte (the model at work) is bounded by timeout alone */
    int expecting = dlnow > 0 || (uint64_t)ulnow < x->upload_total;
    x->w_dlnow = dlnow;
    x->w_ulnow = ulnow;
    x->w_dltotal = dltotal;
    x->w_ultotal = ultotal;
    if (moved || !expecting || x->paused) x->t_active = now; /* paused: by us, not silent */
    else if (x->stall_ms > 0 && (now - x->t_active) * 1000.0 >= (double)x->stall_ms) stalled = 1;
    /* libcurl calls this often while nothing moves: take the lock (which
     * the caller's poll only tries) only when there is news */
    if (dlnow == x->dlnow && ulnow == x->ulnow && dltotal == x->dltotal && ultotal == x->ultotal)
        goto out;
    /* and, while bytes stream in, publish at most every NB_PUBLISH_S
     * (a phase change at once) */
    if (dltotal == x->dltotal && ultotal == x->ultotal && now - x->t_published < NB_PUBLISH_S &&
        (x->dlnow > 0) == (dlnow > 0) && (x->ulnow > 0) == (ulnow > 0) &&
        ((uint64_t)x->ulnow >= x->upload_total) == ((uint64_t)ulnow >= x->upload_total))
        goto out;
    x->t_published = now;
    lock(x->engine);
    x->dltotal = dltotal;
    x->dlnow = dlnow;
    x->ultotal = ultotal;
    x->ulnow = ulnow;
    if (x->notify_progress && x->engine) {
        nb_phase ph = phase_of(x);
        if (ph != x->notified_phase || (moved && now - x->t_notified >= NB_PROGRESS_NOTIFY_S)) {
            x->notified_phase = ph;
            x->t_notified = now;
            notify(x->engine);
        }
    }
    tell_progress(x->engine, x, 1, now);
    unlock(x->engine);
out:
    if (stalled) {
        snprintf(x->msg, sizeof x->msg, "no byte moved for %.1f s (stall_timeout)",
                 now - x->t_active);
        x->abort_kind = NB_KIND_STALL;
        return 1; /* makes libcurl abort the transfer */
    }
    return 0;
}

/* Fills the staging area with the next base64 chunk of segment s. Returns
 * 0 on success, -1 on a read error (message set). */
static int stage_b64(nb_xfer *x, nb_upseg *s)
{
    size_t want = NB_RAW_CHUNK, got;
    const uint8_t *src;
    uint64_t left = s->raw_size - x->cur_off;
    if (!x->stage) {
        x->stage = malloc(NB_RAW_CHUNK / 3 * 4 + 8);
        x->raw = malloc(NB_RAW_CHUNK);
        if (!x->stage || !x->raw) {
            snprintf(x->msg, sizeof x->msg, "out of memory");
            x->abort_kind = NB_KIND_MEMORY;
            return -1;
        }
    }
    if (want > left) want = (size_t)left;
    if (s->kind == NB_SEG_B64_FILE) {
        got = 0;
        while (got < want) {
            ssize_t r = read(s->fd, x->raw + got, want - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                snprintf(x->msg, sizeof x->msg, "cannot read %s: %s", s->path,
                         r < 0 ? strerror(errno) : "file shrank during upload");
                x->abort_kind = NB_KIND_IO;
                return -1;
            }
            got += (size_t)r;
        }
        src = x->raw;
        x->stage_len = nb_b64_encode(src, want, x->stage);
    } else {
        /* borrowed bytes: read only while their owner has them (at most
         * one chunk's encoding, a few tens of microseconds, under the lock) */
        int gone;
        src = (const uint8_t *)s->ptr + x->cur_off;
        pthread_mutex_lock(&x->engine->body_mu);
        gone = x->body_gone;
        if (!gone) x->stage_len = nb_b64_encode(src, want, x->stage);
        pthread_mutex_unlock(&x->engine->body_mu);
        if (gone) return -1;
    }
    /* chunks are multiples of 3 except the last, so their encodings join */
    x->stage_pos = 0;
    x->cur_off += want;
    return 0;
}

/* the owner freed the transfer: abort it */
static size_t body_gone(nb_xfer *x)
{
    snprintf(x->msg, sizeof x->msg, "cancelled");
    x->abort_kind = NB_KIND_CANCELLED;
    return CURL_READFUNC_ABORT;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    nb_xfer *x = ud;
    size_t room = size * n, out = 0;
    while (room > 0 && x->cur < x->nsegs) {
        nb_upseg *s = &x->segs[x->cur];
        if (x->stage_pos < x->stage_len) {
            size_t k = x->stage_len - x->stage_pos;
            if (k > room) k = room;
            memcpy(buf + out, x->stage + x->stage_pos, k);
            x->stage_pos += k;
            out += k;
            room -= k;
            continue;
        }
        if (x->cur_off >= s->raw_size) {
            x->cur++;
            x->cur_off = 0;
            continue;
        }
        if (s->kind == NB_SEG_BYTES) {
            size_t k = (size_t)(s->raw_size - x->cur_off);
            int gone;
            if (k > room) k = room;
            /* borrowed bytes: read only while their owner has them */
            pthread_mutex_lock(&x->engine->body_mu);
            gone = x->body_gone;
            if (!gone) memcpy(buf + out, s->ptr + x->cur_off, k);
            pthread_mutex_unlock(&x->engine->body_mu);
            if (gone) return body_gone(x);
            x->cur_off += k;
            out += k;
            room -= k;
            continue;
        }
        if (s->kind == NB_SEG_FILE_RANGE) {
            uint64_t left = s->raw_size - x->cur_off;
            size_t k = left < room ? (size_t)left : room;
            ssize_t r = pread(s->fd, buf + out, k, (off_t)(s->offset + x->cur_off));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                snprintf(x->msg, sizeof x->msg, "cannot read %s: %s", s->path,
                         r < 0 ? strerror(errno) : "file shrank during upload");
                x->abort_kind = NB_KIND_IO;
                return CURL_READFUNC_ABORT;
            }
            x->cur_off += (uint64_t)r;
            out += (size_t)r;
            room -= (size_t)r;
            continue;
        }
        if (stage_b64(x, s)) return x->body_gone ? body_gone(x) : CURL_READFUNC_ABORT;
    }
    return out;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
    nb_xfer *x = ud;
    size_t i;
    if (origin != SEEK_SET || offset != 0) return CURL_SEEKFUNC_CANTSEEK;
    x->cur = 0;
    x->cur_off = 0;
    x->stage_len = x->stage_pos = 0;
    for (i = 0; i < x->nsegs; i++)
        if (x->segs[i].fd >= 0 && lseek(x->segs[i].fd, 0, SEEK_SET) != 0)
            return CURL_SEEKFUNC_FAIL;
    return CURL_SEEKFUNC_OK;
}

/* ------------------------------------------------------------------ transfers */

static void xfer_release(nb_xfer *x)
{
    size_t j;
    if (x->easy) curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdrs);
    for (j = 0; j < x->nsegs; j++) {
        if (x->segs[j].fd >= 0) close(x->segs[j].fd);
        free(x->segs[j].path);
        nb_blobmem_release(x->segs[j].mem);
    }
    free(x->segs);
    free(x->stage);
    free(x->raw);
    nb_scan_free(x->scan);
    nb_sse_free(x->sse_parser);
    free(x->raw_body.p);
    free(x->headers.p);
    nb_blobs_free(&x->blobs);
    while (x->ev_head) {
        nb_event *ev = x->ev_head;
        x->ev_head = ev->next;
        nb_event_free(ev);
    }
    for (j = 0; j < x->ntmps; j++) free(x->tmps[j]);
    free(x->tmps);
    free(x->blob_dir);
    free(x);
}

void nb_xfer_free(nb_xfer *x)
{
    nb_engine *e;
    int last = 0;
    if (!x) return;
    e = x->engine;
    if (e && forked(e)) return; /* the parent's (see nb_engine_free): leaked */
    if (e) {
        lock(e);
        if (x->attached) {
            /* the worker drives it: it frees it once detached, and from now
             * on reads no borrowed byte of its body (the owner's may go) */
            pthread_mutex_lock(&e->body_mu);
            x->body_gone = 1;
            pthread_mutex_unlock(&e->body_mu);
            x->orphan = 1;
            done_unlink(e, x);
            if (!e->closed) {
                op_push(e, x, OP_REMOVE);
                wake(e);
            } /* else the closing worker frees it */
            unlock(e);
            return;
        }
        last = forget(e, x); /* (if not done, it was never added: the worker never saw it) */
        unlock(e);
    }
    xfer_release(x);
    if (last) engine_destroy(e);
}

static int setup_segments(nb_xfer *x, const nb_xfer_opts *o, nb_kind *kind, char *err,
                          size_t errlen)
{
    size_t i;
    x->segs = calloc(o->nsegs ? o->nsegs : 1, sizeof *x->segs);
    if (!x->segs) goto oom;
    x->nsegs = o->nsegs;
    for (i = 0; i < o->nsegs; i++) x->segs[i].fd = -1;
    for (i = 0; i < o->nsegs; i++) {
        nb_upseg *s = &x->segs[i];
        s->kind = o->segs[i].kind;
        s->ptr = o->segs[i].ptr;
        s->len = o->segs[i].len;
        if (o->segs[i].mem) s->mem = nb_blobmem_retain(o->segs[i].mem);
        if (s->kind == NB_SEG_B64_FILE) {
            s->path = str_dup(o->segs[i].path ? o->segs[i].path : "");
            if (!s->path) goto oom;
            /* a FIFO, device or directory: io at once, never opened */
            s->fd = nb_open_regular(s->path, &s->raw_size, err, errlen);
            if (s->fd < 0) {
                *kind = NB_KIND_IO;
                return -1;
            }
            /* 64-bit arithmetic: on a 32-bit host size_t cannot hold the
             * base64 length of a file of 3 GiB or more (spec/40-sizes) */
            s->wire = s->raw_size / 3 * 4 + (s->raw_size % 3 ? 4 : 0);
        } else if (s->kind == NB_SEG_FILE_RANGE) {
            uint64_t size = 0;
            s->offset = o->segs[i].offset;
            s->path = str_dup(o->segs[i].path ? o->segs[i].path : "");
            if (!s->path) goto oom;
            s->fd = nb_open_regular(s->path, &size, err, errlen);
            if (s->fd < 0) {
                *kind = NB_KIND_IO;
                return -1;
            }
            if (s->offset > size || s->len > size - s->offset) {
                *kind = NB_KIND_IO;
                snprintf(err, errlen, "cannot read %s: shorter than the range to send", s->path);
                return -1;
            }
            s->raw_size = s->wire = s->len;
        } else {
            s->raw_size = s->len;
            s->wire = s->kind == NB_SEG_B64 ? nb_b64_encoded_len(s->len) : s->len;
        }
        x->upload_total += s->wire;
    }
    return 0;
oom:
    *kind = NB_KIND_MEMORY;
    snprintf(err, errlen, "out of memory");
    return -1;
}

nb_xfer *nb_xfer_start(nb_engine *e, const nb_xfer_opts *o, nb_kind *kind, char *err,
                       size_t errlen)
{
    nb_xfer *x;
    size_t i;
    CURL *h;
    *kind = NB_OK;
    if (err && errlen) err[0] = 0;
    if (forked(e)) {
        *kind = NB_KIND_NETWORK;
        snprintf(err, errlen,
                 "this client was made in process %ld and cannot be used after fork() "
                 "(in process %ld): make a new client in the forked child",
                 (long)e->pid, (long)getpid());
        return NULL;
    }
    x = calloc(1, sizeof *x);
    if (!x) {
        *kind = NB_KIND_MEMORY;
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (setup_segments(x, o, kind, err, errlen)) goto fail;
    if (o->blob_dir && !(x->blob_dir = str_dup(o->blob_dir))) goto oom;
    x->flush_blobs = o->flush_blobs;
    x->empty_ok = o->empty_ok;
    x->sse = o->jsonl ? STREAM_JSONL : o->stream ? STREAM_UNSEEN : STREAM_NO;
    x->easy = h = curl_easy_init();
    if (!h) goto oom;
    for (i = 0; i < o->nheaders; i++) {
        struct curl_slist *nl = curl_slist_append(x->hdrs, o->headers[i]);
        if (!nl) goto oom;
        x->hdrs = nl;
    }
    x->timeout_ms = o->timeout_ms;
    x->stall_ms = o->stall_ms;
    x->ev_cap = !(o->stream || o->jsonl) ? 0
                : o->event_queue_bytes ? o->event_queue_bytes : NB_EVENT_QUEUE_DEFAULT;
    x->notify_progress = o->notify_progress;
    x->max_body = o->max_response_bytes;

    curl_easy_setopt(h, CURLOPT_URL, o->url);
    curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->hdrs);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, o->accept_encoding ? o->accept_encoding : "gzip");
    if (o->accept_encoding && !o->accept_encoding[0])
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    /* https: wait for a connection being set up rather than open a second
     * one, so concurrent requests to one HTTP/2 server share a connection.
     * Not for http://, which is HTTP/1.1 here (CURL_HTTP_VERSION_2TLS):
     * there waiting only holds requests back (16 x 4K: 1.8 s instead of
     * 1.3 s, bench/ concurrency section). */
    if (o->url && strncmp(o->url, "https://", 8) == 0) curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
    if (o->timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (o->connect_timeout_ms > 0) curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    /* stall detection is ours (on_xferinfo): libcurl's LOW_SPEED averages
     * over a window of seconds, so a burst before a stall hides it */
    if (o->proxy) curl_easy_setopt(h, CURLOPT_PROXY, o->proxy);
    if (o->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
    if (o->ca_path) curl_easy_setopt(h, CURLOPT_CAPATH, o->ca_path);
    if (o->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    if (o->method) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, o->method);
    if (o->nsegs > 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->upload_total);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
    }

    x->t0 = x->t_active = nb_now();
    lock(e);
    if (e->closed || ensure_worker(e, err, errlen) != 0) {
        if (e->closed) snprintf(err, errlen, "the client is closed");
        unlock(e);
        *kind = NB_KIND_ENGINE;
        goto fail;
    }
    x->engine = e;
    e->refs++;
    x->next = e->all;
    if (e->all) e->all->prev = x;
    e->all = x;
    e->running++;
    op_push(e, x, OP_ADD); /* the worker adds it to the multi handle */
    wake(e);
    unlock(e);
    return x;
oom:
    *kind = NB_KIND_MEMORY;
    snprintf(err, errlen, "out of memory");
fail:
    xfer_release(x);
    return NULL;
}

void nb_xfer_drop_files(nb_xfer *x)
{
    nb_engine *e = x->engine;
    char **list;
    size_t i, n;
    if (e && forked(e)) return; /* the parent's files */
    if (e) lock(e);
    x->files_dropped = 1;
    list = x->tmps;
    n = x->ntmps;
    x->tmps = NULL;
    x->ntmps = x->captmps = 0;
    if (e) unlock(e);
    /* a file the worker still writes goes on to an unlinked inode */
    for (i = 0; i < n; i++) {
        unlink(list[i]);
        free(list[i]);
    }
    free(list);
}

void nb_xfer_cancel(nb_xfer *x)
{
    nb_engine *e = x->engine;
    if (!e || forked(e)) return; /* finished and collected, or not ours */
    lock(e);
    if (!x->done && !e->closed) {
        op_push(e, x, OP_CANCEL);
        wake(e);
    }
    unlock(e);
}

int nb_xfer_done(const nb_xfer *x)
{
    nb_engine *e = x->engine;
    int d;
    if (e && forked(e)) return x->done;
    lock(e);
    d = x->done;
    unlock(e);
    return d;
}

int nb_xfer_progress(const nb_xfer *x, nb_progress *p)
{
    nb_engine *e = x->engine;
    if (e && (forked(e) || pthread_mutex_trylock(&e->mu) != 0)) return -1;
    p->uploaded = (uint64_t)x->ulnow;
    p->upload_total = x->upload_total;
    p->downloaded = (uint64_t)x->dlnow;
    p->download_total = x->dltotal > 0 ? (uint64_t)x->dltotal : 0;
    p->elapsed = (x->done ? x->t_end : nb_now()) - x->t0;
    p->phase = phase_of(x);
    unlock(e);
    return 0;
}

nb_kind nb_xfer_kind(const nb_xfer *x) { return x->kind; }
const char *nb_xfer_message(const nb_xfer *x) { return x->msg; }
long nb_xfer_status(const nb_xfer *x) { return x->status; }

const char *nb_xfer_http_version(const nb_xfer *x)
{
    switch (x->http_version) {
    case CURL_HTTP_VERSION_1_0: return "1.0";
    case CURL_HTTP_VERSION_1_1: return "1.1";
    case CURL_HTTP_VERSION_2_0: return "2";
#ifdef CURL_HTTP_VERSION_3
    case CURL_HTTP_VERSION_3: return "3";
#endif
    default: return "";
    }
}

long nb_xfer_new_connections(const nb_xfer *x) { return x->new_connections; }

const char *nb_xfer_headers(const nb_xfer *x, size_t *len)
{
    *len = x->headers.len;
    return x->headers.p ? (const char *)x->headers.p : "";
}

const char *nb_xfer_body(const nb_xfer *x, size_t *len)
{
    if (x->mode == BODY_SCAN && x->scan) return nb_scan_skeleton(x->scan, len);
    *len = x->raw_body.len;
    return x->raw_body.p ? (const char *)x->raw_body.p : "";
}

int nb_xfer_body_is_skeleton(const nb_xfer *x)
{
    return x->mode == BODY_SCAN && x->sse != STREAM_SSE && x->sse != STREAM_JSONL;
}
int nb_xfer_is_sse(const nb_xfer *x) { return x->sse == STREAM_SSE || x->sse == STREAM_JSONL; }
uint64_t nb_xfer_body_bytes(const nb_xfer *x) { return x->body_bytes; }
nb_blobs *nb_xfer_blobs(nb_xfer *x) { return &x->blobs; }
/* ------------------------------------------------------------------ stream events */

nb_event *nb_xfer_next_event(nb_xfer *x, int wait)
{
    nb_engine *e = x->engine;
    nb_event *ev;
    if (e && forked(e)) return NULL;
    if (e) {
        if (wait) pthread_mutex_lock(&e->mu);
        else if (pthread_mutex_trylock(&e->mu) != 0) return NULL;
    }
    ev = x->ev_head;
    if (ev) {
        x->ev_head = ev->next;
        if (!x->ev_head) x->ev_tail = NULL;
        ev->next = NULL;
        __atomic_store_n(&x->ev_mem, x->ev_mem - ev->mem, __ATOMIC_RELAXED);
        /* enough taken: the worker resumes receiving */
        if (e && x->paused && x->ev_mem <= x->ev_cap / 2 && x->op == OP_NONE && !x->done &&
            x->attached) {
            op_push(e, x, OP_RESUME);
            wake(e);
        }
    }
    unlock(e);
    return ev;
}

const char *nb_event_skeleton(const nb_event *ev, size_t *len)
{
    *len = ev->len;
    return ev->skeleton;
}

nb_blobs *nb_event_blobs(nb_event *ev) { return &ev->blobs; }
