/* http.c — libcurl multi on the libuv loop (no Lua here). */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EASY_POOL_MAX 256

struct sonde_http {
    sonde_loop         *lp;
    CURLM              *multi;
    uv_timer_t          timer;               /* CURLMOPT_TIMERFUNCTION's timer */
    sonde_transfer     *pool[EASY_POOL_MAX]; /* finished transfers, reused whole */
    int                 pooled;
    double              started;
    int                 verbose;    /* SONDE_HTTP_VERBOSE: curl's trace on stderr */
    double              zero_asked; /* times curl asked for a 0 ms timeout */
    double              zero_armed; /* times a 0 ms uv timer was armed for it */
    struct socket_ctx **sockets;    /* by fd: each socket's poll handle, kept */
    int                 sockets_cap;
};

static void transfer_destroy(sonde_transfer *t);

/* One per socket curl watches, kept by fd (h->sockets) after curl stops
 * watching it, stopped: curl stops and starts watching a keep-alive socket
 * between many requests, and a new handle each time costs an ioctl, more
 * epoll_ctl calls and a malloc. A stopped poll handle holds no watcher or
 * epoll entry, so the fd may close and its number serve any other handle
 * meanwhile. Freed in the close callback, when the engine is freed. */
typedef struct socket_ctx {
    uv_poll_t     poll;
    curl_socket_t fd;
    sonde_http   *http;
} socket_ctx;

/* ------------------------------------------------------------ bodies */

static size_t on_body(char *data, size_t size, size_t n, void *userp) {
    sonde_transfer *t = userp;
    size_t          len = size * n;
    size_t          keep = len;
    if (t->max_body && t->body.len + keep > t->max_body) keep = t->max_body - t->body.len;
    if (keep && sonde_bytes_add(&t->body, data, keep) < 0) return 0; /* out of memory: curl fails the transfer */
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *userp) {
    sonde_transfer *t = userp;
    /* a new status line (after a redirect or 100-continue) starts afresh */
    if (size * n > 5 && memcmp(data, "HTTP/", 5) == 0) t->headers.len = 0;
    return sonde_bytes_add(&t->headers, data, size * n) < 0 ? 0 : size * n;
}

/* --------------------------------------------------------- completion */

/* Moves every finished transfer out of the multi and queues its token. */
static void drain_done(sonde_http *h) {
    CURLMsg *msg;
    int      left;
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        sonde_transfer *t = NULL;
        sonde_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode result = msg->data.result; /* msg is invalid after remove */
        curl_multi_remove_handle(h->multi, msg->easy_handle);
        if (!t) continue;
        t->active = 0;
        t->result = result;
        h->lp->real_pending--;
        sonde_loop_complete(h->lp, t->token, (double)result, 0);
    }
}

static void act(sonde_http *h, curl_socket_t fd, int events) {
    int       running;
    CURLMcode rc = curl_multi_socket_action(h->multi, fd, events, &running);
    if (rc != CURLM_OK) fprintf(stderr, "sonde: curl_multi_socket_action: %s\n", curl_multi_strerror(rc));
    drain_done(h);
}

/* ------------------------------------------------------------ sockets */

static void on_poll(uv_poll_t *poll, int status, int events) {
    socket_ctx *ctx = poll->data;
    int         flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    act(ctx->http, ctx->fd, flags);
}

static void on_socket_closed(uv_handle_t *handle) { free(handle->data); }

/* The poll handle of fd: the one kept from an earlier socket of that
 * number, or a new one. */
static socket_ctx *socket_ctx_of(sonde_http *h, curl_socket_t fd) {
    if (fd < h->sockets_cap && h->sockets[fd]) return h->sockets[fd];
    if (fd >= h->sockets_cap) {
        int          cap = fd < 64 ? 128 : 2 * fd;
        socket_ctx **sockets = realloc(h->sockets, sizeof *sockets * cap);
        if (!sockets) return NULL;
        memset(sockets + h->sockets_cap, 0, sizeof *sockets * (cap - h->sockets_cap));
        h->sockets = sockets, h->sockets_cap = cap;
    }
    socket_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->fd = fd;
    ctx->http = h;
    if (uv_poll_init_socket(&h->lp->uv, &ctx->poll, fd) != 0) {
        free(ctx);
        return NULL;
    }
    ctx->poll.data = ctx;
    h->sockets[fd] = ctx;
    return ctx;
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl asks, or stop watching. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    (void)easy;
    sonde_http *h = userp;
    socket_ctx *ctx = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ctx) {
            uv_poll_stop(&ctx->poll);
            curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (!ctx) {
        ctx = socket_ctx_of(h, fd);
        if (!ctx) return -1;
        curl_multi_assign(h->multi, fd, ctx);
    }
    int events = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&ctx->poll, events, on_poll);
    return 0;
}

/* ------------------------------------------------------------- timer */

static void on_timer(uv_timer_t *timer) { act(timer->data, CURL_SOCKET_TIMEOUT, 0); }

/* CURLMOPT_TIMERFUNCTION. A 0 ms timeout stays 0 (a libuv timer of 0 runs
 * on the next loop turn without blocking): rounding it up to 1 ms, as
 * multi-uv.c did, adds a millisecond to every request (curl#17144). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    sonde_http *h = userp;
    if (timeout_ms < 0) {
        uv_timer_stop(&h->timer);
        return 0;
    }
    uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
    if (timeout_ms == 0) {
        h->zero_asked++;
        if (uv_timer_get_due_in(&h->timer) == 0) h->zero_armed++;
    }
    return 0;
}

/* ------------------------------------------------------------ engine */

sonde_http *sonde_http_get(sonde_loop *lp) {
    if (lp->http) return lp->http;
    char why[256];
    if (sonde_curl_load(why, sizeof why) != 0) return NULL; /* the caller reports why */
    sonde_http *h = calloc(1, sizeof *h);
    if (!h || !(h->multi = curl_multi_init())) {
        free(h);
        return NULL;
    }
    h->lp = lp;
    uv_timer_init(&lp->uv, &h->timer);
    h->timer.data = h; /* the trap of curl#19462: the callback needs it */
    sonde_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    sonde_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    sonde_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    sonde_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    sonde_multi_setopt(h->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    /* curl sizes its connection cache by the handles added at the moment,
     * which between bursts is few: idle keep-alive connections would be
     * closed and reopened. Keep plenty. */
    sonde_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 4096L);
    h->verbose = getenv("SONDE_HTTP_VERBOSE") != NULL;
    lp->http = h;
    return h;
}

double sonde_http_started(sonde_loop *lp) { return lp->http ? lp->http->started : 0; }

void sonde_http_timer_stats(sonde_loop *lp, double *zero_asked, double *zero_armed) {
    *zero_asked = lp->http ? lp->http->zero_asked : 0;
    *zero_armed = lp->http ? lp->http->zero_armed : 0;
}

static void on_engine_closed(uv_handle_t *timer) { free(timer->data); }

void sonde_http_free(sonde_loop *lp) {
    sonde_http *h = lp->http;
    if (!h) return;
    for (int i = 0; i < h->pooled; i++) transfer_destroy(h->pool[i]);
    curl_multi_cleanup(h->multi);
    /* every poll handle, stopped or not: curl_multi_cleanup does not
     * always report the sockets it closes */
    for (int fd = 0; fd < h->sockets_cap; fd++)
        if (h->sockets[fd]) uv_close((uv_handle_t *)&h->sockets[fd]->poll, on_socket_closed);
    free(h->sockets);
    uv_close((uv_handle_t *)&h->timer, on_engine_closed); /* frees h */
    lp->http = NULL;
}

/* ---------------------------------------------------------- transfers */

/* Options every transfer shares, set once per easy handle. */
static CURL *easy_new(sonde_http *h) {
    CURL *e = curl_easy_init();
    if (!e) return NULL;
    sonde_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    sonde_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    sonde_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    sonde_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (h->verbose) sonde_easy_setopt(e, CURLOPT_VERBOSE, 1L); /* curl's trace on stderr */
    return e;
}

/* Frees a transfer for good: its easy handle, buffers and memory. */
static void transfer_destroy(sonde_transfer *t) {
    if (t->easy) curl_easy_cleanup(t->easy);
    free(t->body.data);
    free(t->headers.data);
    free(t);
}

/* A transfer from the pool (with its easy handle, connection-warm, and its
 * buffers), or a new one. Handles are reused without curl_easy_reset
 * (which costs more than the request itself on loopback): set_options sets
 * every per-request option each time, so nothing leaks between requests. */
static sonde_transfer *transfer_take(sonde_http *h) {
    if (h->pooled) {
        sonde_transfer *t = h->pool[--h->pooled];
        CURL           *easy = t->easy;
        sonde_bytes     body = t->body, headers = t->headers;
        memset(t, 0, sizeof *t);
        t->easy = easy, t->body = body, t->headers = headers;
        t->body.len = t->headers.len = 0;
        return t;
    }
    sonde_transfer *t = calloc(1, sizeof *t);
    if (t && !(t->easy = easy_new(h))) {
        free(t);
        return NULL;
    }
    return t;
}

/* A larger buffer is not kept for reuse: the pool holds up to EASY_POOL_MAX
 * transfers, and after a burst of large responses would keep their buffers
 * for the rest of the run. */
#define POOLED_BUFFER_MAX (64 << 10)

static void transfer_give(sonde_http *h, sonde_transfer *t) {
    if (h->pooled == EASY_POOL_MAX) {
        transfer_destroy(t);
        return;
    }
    if (t->body.cap > POOLED_BUFFER_MAX) free(t->body.data), t->body = (sonde_bytes){0};
    if (t->headers.cap > POOLED_BUFFER_MAX) free(t->headers.data), t->headers = (sonde_bytes){0};
    h->pool[h->pooled++] = t;
}

/* Method and body, from a clean state: no body means HTTPGET (which also
 * undoes a previous POST), a body means POSTFIELDS; CUSTOMREQUEST names any
 * method that those two and NOBODY do not already say. */
static void set_method(sonde_transfer *t, const sonde_request *r) {
    CURL *e = t->easy;
    int   get = strcmp(r->method, "GET") == 0, head = strcmp(r->method, "HEAD") == 0;
    int   post = strcmp(r->method, "POST") == 0;
    if (t->req_body) {
        sonde_easy_setopt(e, CURLOPT_POSTFIELDS, t->req_body);
        sonde_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else {
        sonde_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    sonde_easy_setopt(e, CURLOPT_NOBODY, head ? 1L : 0L);
    int named = head || (get && !t->req_body) || (post && t->req_body);
    sonde_easy_setopt(e, CURLOPT_CUSTOMREQUEST, named ? NULL : r->method);
}

static void set_options(sonde_transfer *t, const sonde_request *r) {
    CURL *e = t->easy;
    sonde_easy_setopt(e, CURLOPT_URL, r->url);
    sonde_easy_setopt(e, CURLOPT_PRIVATE, t);
    sonde_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    sonde_easy_setopt(e, CURLOPT_WRITEDATA, t);
    sonde_easy_setopt(e, CURLOPT_HEADERDATA, t);
    sonde_easy_setopt(e, CURLOPT_HTTPHEADER, t->req_headers);
    sonde_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, r->verify ? 1L : 0L);
    sonde_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, r->verify ? 2L : 0L);
    sonde_easy_setopt(e, CURLOPT_FOLLOWLOCATION, r->follow ? 1L : 0L);
    sonde_easy_setopt(e, CURLOPT_HTTP_VERSION, r->http2 ? CURL_HTTP_VERSION_2_0 : CURL_HTTP_VERSION_1_1);
    sonde_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)sonde_ms_of(r->timeout));
    sonde_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)sonde_ms_of(r->connect_timeout));
    set_method(t, r);
}

sonde_transfer *sonde_transfer_start(sonde_http *h, const sonde_request *r, char *err, size_t errlen) {
    sonde_transfer *t = transfer_take(h);
    if (!t) goto nomem;
    t->http = h;
    t->token = r->token;
    t->max_body = r->max_body;
    t->req_headers = r->headers;
    if (r->body && !(t->req_body = sonde_bytes_dup(r->body, r->body_len))) goto nomem;
    set_options(t, r);
    CURLMcode rc = curl_multi_add_handle(h->multi, t->easy);
    if (rc != CURLM_OK) {
        snprintf(err, errlen, "curl_multi_add_handle: %s", curl_multi_strerror(rc));
        sonde_transfer_free(t);
        return NULL;
    }
    t->active = 1;
    h->started++;
    h->lp->real_pending++;
    return t;
nomem:
    snprintf(err, errlen, "out of memory starting a request");
    if (t)
        sonde_transfer_free(t);
    else
        curl_slist_free_all(r->headers);
    return NULL;
}

void sonde_transfer_cancel(sonde_transfer *t) {
    if (!t->active) return;
    t->active = 0;
    t->http->lp->real_pending--;
    curl_multi_remove_handle(t->http->multi, t->easy);
}

void sonde_transfer_free(sonde_transfer *t) {
    if (!t) return;
    sonde_transfer_cancel(t);
    curl_slist_free_all(t->req_headers);
    free(t->req_body);
    t->req_headers = NULL, t->req_body = NULL;
    transfer_give(t->http, t);
}
