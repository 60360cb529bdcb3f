/* redis.c — hiredis' async connections on the libuv loop (no Lua here). */
#include "redis.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "bytes.h"

/* The poll hiredis drives through its event hooks. It lives apart from the
 * connection: hiredis frees its context (and calls cleanup) on its own
 * schedule, and the poll's memory goes only in its close callback. */
typedef struct conn_events {
    uv_poll_t          poll;
    redisAsyncContext *ac;   /* NULL once hiredis let go (cleanup) */
    sonde_redis_conn  *conn; /* NULL once hiredis let go */
    int                events;
} conn_events;

struct sonde_redis_conn {
    sonde_loop        *lp;
    redisAsyncContext *ac;     /* NULL while resolving and once down */
    conn_events       *events; /* NULL while there is no context */
    uv_timer_t         timer;  /* the connect timeout, then the oldest command's deadline */
    uv_getaddrinfo_t   resolve;
    int                resolving; /* uv_getaddrinfo's callback still to come */
    int                port;
    int                token;
    int                state;            /* SONDE_REDIS_CONNECTING, _READY, _DOWN */
    int                closing;          /* sonde_redis_close was called */
    int                holding;          /* counted in real_pending while connecting */
    int                subscribed;       /* a subscriber waits for messages: keeps the loop alive */
    uint64_t           connect_deadline; /* loop ms; 0: none */
    sonde_fifo         waiting;          /* requests waiting for their reply */
    sonde_fifo         pushes;           /* pub/sub pushes not taken yet */
    char               error[256];
};

struct sonde_redis_req {
    sonde_loop        *lp;
    sonde_redis_conn  *conn; /* NULL once done */
    int                token;
    int                holds;
    int                refs; /* hiredis' callback and the Lua box */
    double             timeout;
    uint64_t           deadline; /* loop ms; 0: none */
    sonde_redis_reply *reply;
    char               error[256];
    sonde_fifo_link    link; /* in the connection's waiting queue */
};

/* The oldest request still waiting for its reply, or NULL. */
static sonde_redis_req *oldest_waiting(sonde_redis_conn *c) {
    return SONDE_FIFO_ITEM(c->waiting.head, sonde_redis_req, link);
}

/* ------------------------------------------------------------ replies */

void sonde_redis_reply_free(sonde_redis_reply *r) {
    if (!r) return;
    for (size_t i = 0; i < r->elements; i++) sonde_redis_reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

/* A deep copy of hiredis' reply, or NULL when memory runs out. */
static sonde_redis_reply *reply_copy(const redisReply *from) {
    sonde_redis_reply *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->type = from->type;
    r->integer = from->integer;
    if (from->str) {
        if (!(r->str = sonde_bytes_dup(from->str, from->len))) goto fail;
        r->len = from->len;
    }
    if (from->elements) {
        if (!(r->element = calloc(from->elements, sizeof *r->element))) goto fail;
        r->elements = from->elements;
        for (size_t i = 0; i < from->elements; i++)
            if (!(r->element[i] = reply_copy(from->element[i]))) goto fail;
    }
    return r;
fail:
    sonde_redis_reply_free(r);
    return NULL;
}

/* ------------------------------------------------- loop bookkeeping */

static uint64_t loop_ms(sonde_loop *lp) {
    uv_update_time(&lp->uv);
    return uv_now(&lp->uv);
}

static uint64_t deadline_after(sonde_loop *lp, double seconds) {
    return seconds > 0 ? loop_ms(lp) + sonde_ms_of(seconds) : 0;
}

static void on_timer(uv_timer_t *timer);

/* The timer follows the one deadline that matters: the connect timeout
 * while connecting, then the oldest command's (replies come in order, so
 * a later command cannot be answered before it). */
static void arm_timer(sonde_redis_conn *c) {
    uint64_t at = c->state == SONDE_REDIS_CONNECTING ? c->connect_deadline
                  : oldest_waiting(c)                ? oldest_waiting(c)->deadline
                                                     : 0;
    if (c->closing || !at) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = loop_ms(c->lp);
    uv_timer_start(&c->timer, on_timer, at > now ? at - now : 0, 0);
}

/* An idle connection does not keep the loop alive (a task waiting on
 * nothing else is a deadlock, not a wait); one with commands in flight,
 * still connecting or subscribed does. */
static void sync_ref(sonde_redis_conn *c) {
    if (!c->events) return;
    uv_handle_t *h = (uv_handle_t *)&c->events->poll;
    if (c->state == SONDE_REDIS_CONNECTING || c->waiting.head || c->subscribed)
        uv_ref(h);
    else
        uv_unref(h);
}

static void stop_holding(sonde_redis_conn *c) {
    if (!c->holding) return;
    c->holding = 0;
    c->lp->real_pending--;
}

/* The connection is down (it failed, the server left or a command timed
 * out): says so once through the token. */
static void mark_down(sonde_redis_conn *c, const char *why) {
    if (c->state == SONDE_REDIS_DOWN) return;
    c->state = SONDE_REDIS_DOWN;
    snprintf(c->error, sizeof c->error, "%s", why && *why ? why : "connection closed");
    stop_holding(c);
    arm_timer(c);
    sync_ref(c);
    if (!c->closing) sonde_loop_complete(c->lp, c->token, SONDE_REDIS_CLOSED, 0);
}

/* --------------------------------------------- hiredis' event hooks
 * Debian's hiredis 0.14 ships adapters/libuv.h, whose poll callback returns
 * on any error status: libuv reports a refused connect or a reset socket
 * that way and stops the poll, so the connection would wait forever. These
 * hooks hand such an event to hiredis as what was asked for; its read or
 * write then meets the socket's error and takes the connection down. */

static void on_poll(uv_poll_t *poll, int status, int events) {
    conn_events *e = poll->data;
    if (status < 0) events = e->events;
    if (e->ac && (events & UV_READABLE)) redisAsyncHandleRead(e->ac);
    if (e->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(e->ac);
}

static void poll_update(conn_events *e) {
    if (e->events)
        uv_poll_start(&e->poll, e->events, on_poll);
    else
        uv_poll_stop(&e->poll);
}

/* Polls for `events` too (on) or no longer (off). */
static void poll_for(conn_events *e, int events, int on) {
    e->events = on ? e->events | events : e->events & ~events;
    poll_update(e);
}

static void ev_add_read(void *p) { poll_for(p, UV_READABLE, 1); }
static void ev_del_read(void *p) { poll_for(p, UV_READABLE, 0); }
static void ev_add_write(void *p) { poll_for(p, UV_WRITABLE, 1); }
static void ev_del_write(void *p) { poll_for(p, UV_WRITABLE, 0); }

static void on_events_closed(uv_handle_t *h) { free(h->data); }

/* hiredis frees its context: the poll goes with it. */
static void ev_cleanup(void *p) {
    conn_events *e = p;
    if (e->conn && e->conn->events == e) e->conn->events = NULL;
    e->ac = NULL, e->conn = NULL;
    uv_close((uv_handle_t *)&e->poll, on_events_closed);
}

static int attach(sonde_redis_conn *c, redisAsyncContext *ac) {
    conn_events *e = calloc(1, sizeof *e);
    if (!e) return -1;
    if (uv_poll_init_socket(&c->lp->uv, &e->poll, ac->c.fd) != 0) {
        free(e);
        return -1;
    }
    e->poll.data = e;
    e->ac = ac, e->conn = c;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read, ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write, ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    c->events = e;
    return 0;
}

/* --------------------------------------------------------- connecting */

/* Connected, or not: hiredis frees the context itself after a failure. */
static void on_connect(const redisAsyncContext *ac, int status) {
    sonde_redis_conn *c = ac->data;
    if (status != REDIS_OK) {
        c->ac = NULL;
        mark_down(c, ac->errstr);
        return;
    }
    c->state = SONDE_REDIS_READY;
    stop_holding(c);
    arm_timer(c);
    sync_ref(c);
    sonde_loop_complete(c->lp, c->token, SONDE_REDIS_CONNECTED, 0);
}

/* The server left or the connection failed (hiredis frees the context
 * after this), or sonde_redis_close freed it. */
static void on_disconnect(const redisAsyncContext *ac, int status) {
    sonde_redis_conn *c = ac->data;
    c->ac = NULL;
    mark_down(c, status == REDIS_OK ? "connection closed" : ac->errstr);
}

static void start_connect(sonde_redis_conn *c, const char *ip) {
    redisAsyncContext *ac = redisAsyncConnect(ip, c->port);
    if (!ac) {
        mark_down(c, "out of memory connecting");
        return;
    }
    if (ac->err) {
        char why[256];
        snprintf(why, sizeof why, "%s", ac->errstr);
        redisAsyncFree(ac);
        mark_down(c, why);
        return;
    }
    ac->data = c;
    if (attach(c, ac) != 0) {
        redisAsyncFree(ac);
        mark_down(c, "cannot watch the connection's socket");
        return;
    }
    c->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect); /* also arms the write that says it connected */
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    sync_ref(c);
}

static void finish_close(sonde_redis_conn *c);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    sonde_redis_conn *c = req->data;
    c->resolving = 0;
    if (c->closing) {
        uv_freeaddrinfo(res);
        finish_close(c);
        return;
    }
    /* hiredis connects to one address: an IPv4 one when the name has any
     * ("localhost" lists ::1 first, where a server bound to 127.0.0.1 is not) */
    char ip[64] = "";
    for (struct addrinfo *a = status == 0 ? res : NULL; a && !ip[0]; a = a->ai_next)
        if (a->ai_family == AF_INET) uv_ip4_name((struct sockaddr_in *)a->ai_addr, ip, sizeof ip);
    for (struct addrinfo *a = status == 0 ? res : NULL; a && !ip[0]; a = a->ai_next)
        if (a->ai_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)a->ai_addr, ip, sizeof ip);
    uv_freeaddrinfo(res);
    if (c->state != SONDE_REDIS_CONNECTING) return; /* timed out meanwhile */
    if (!ip[0]) {
        char why[256];
        snprintf(why, sizeof why, "cannot resolve the host: %s", status ? uv_strerror(status) : "no address");
        mark_down(c, why);
        return;
    }
    start_connect(c, ip);
}

static int is_ip(const char *host) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

sonde_redis_conn *sonde_redis_connect(sonde_loop *lp, const sonde_redis_opts *o, char *err, size_t errlen) {
    sonde_redis_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->lp = lp, c->port = o->port, c->token = o->token;
    c->state = SONDE_REDIS_CONNECTING;
    uv_timer_init(&lp->uv, &c->timer);
    c->timer.data = c;
    c->holding = 1;
    lp->real_pending++;
    c->connect_deadline = deadline_after(lp, o->connect_timeout);
    arm_timer(c);
    if (is_ip(o->host)) {
        start_connect(c, o->host);
        return c;
    }
    /* a name is resolved on the loop: hiredis' own lookup would block it */
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC, hints.ai_socktype = SOCK_STREAM;
    c->resolve.data = c;
    int rc = uv_getaddrinfo(&lp->uv, &c->resolve, on_resolved, o->host, NULL, &hints);
    if (rc == 0)
        c->resolving = 1;
    else
        mark_down(c, uv_strerror(rc));
    return c;
}

int         sonde_redis_state(const sonde_redis_conn *c) { return c->state; }
const char *sonde_redis_error(const sonde_redis_conn *c) { return c->state == SONDE_REDIS_DOWN ? c->error : ""; }

/* ----------------------------------------------------------- commands */

static void req_unref(sonde_redis_req *r) {
    if (--r->refs > 0) return;
    sonde_redis_reply_free(r->reply);
    free(r);
}

/* A reply, or NULL when the connection went away first. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    sonde_redis_req  *r = privdata;
    sonde_redis_conn *c = r->conn;
    if (reply && !(r->reply = reply_copy(reply))) snprintf(r->error, sizeof r->error, "out of memory copying a reply");
    if (!reply && !r->error[0]) {
        const char *why = ac->err ? ac->errstr : c && c->error[0] ? c->error : "";
        snprintf(r->error, sizeof r->error, "%s", *why ? why : "connection closed before the reply came");
    }
    if (r->holds) r->lp->real_pending--;
    r->conn = NULL;
    sonde_loop_complete(r->lp, r->token, r->reply ? 1 : 0, 0);
    if (c) {
        sonde_fifo_remove(&c->waiting, &r->link);
        arm_timer(c);
        sync_ref(c);
    }
    req_unref(r);
}

/* The oldest command got no reply in time: a connection that stopped
 * answering is given up, and every command on it fails. */
static void on_timer(uv_timer_t *timer) {
    sonde_redis_conn *c = timer->data;
    if (c->state == SONDE_REDIS_CONNECTING) {
        if (c->resolving) uv_cancel((uv_req_t *)&c->resolve);
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        mark_down(c, "timeout: no connection within the connect timeout");
        if (ac) redisAsyncFree(ac);
        return;
    }
    sonde_redis_req *r = oldest_waiting(c);
    if (!r || !c->ac) return;
    snprintf(r->error, sizeof r->error, "timeout: no reply within %gs", r->timeout);
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    mark_down(c, "the connection was dropped after a command got no reply in time");
    redisAsyncFree(ac);
}

sonde_redis_req *sonde_redis_send(sonde_redis_conn *c, int argc, const char **argv, const size_t *lens, int token,
                                  double timeout, int holds, char *err, size_t errlen) {
    if (!c->ac || c->state == SONDE_REDIS_DOWN) {
        snprintf(err, errlen, "%s", c->state == SONDE_REDIS_DOWN ? c->error : "not connected yet");
        return NULL;
    }
    sonde_redis_req *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->lp = c->lp, r->conn = c, r->token = token, r->holds = holds, r->refs = 2;
    r->timeout = timeout;
    r->deadline = deadline_after(c->lp, timeout);
    if (redisAsyncCommandArgv(c->ac, on_reply, r, argc, argv, lens) != REDIS_OK) {
        snprintf(err, errlen, "the connection is closing");
        free(r);
        return NULL;
    }
    if (holds) c->lp->real_pending++;
    sonde_fifo_push(&c->waiting, &r->link);
    if (oldest_waiting(c) == r) arm_timer(c);
    sync_ref(c);
    return r;
}

const sonde_redis_reply *sonde_redis_req_reply(const sonde_redis_req *r) { return r->reply; }
const char              *sonde_redis_req_error(const sonde_redis_req *r) { return r->error; }

void sonde_redis_req_release(sonde_redis_req *r) {
    if (r) req_unref(r);
}

/* ------------------------------------------------------------ pub/sub */

static void on_push(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    sonde_redis_conn *c = privdata;
    if (!reply || c->closing) return; /* the connection is going away */
    sonde_redis_reply *r = reply_copy(reply);
    if (!r) return;
    sonde_fifo_push(&c->pushes, &r->link);
    sonde_loop_complete(c->lp, c->token, SONDE_REDIS_PUSHED, 0);
}

int sonde_redis_subscribe(sonde_redis_conn *c, int argc, const char **argv, const size_t *lens, char *err,
                          size_t errlen) {
    if (!c->ac || c->state == SONDE_REDIS_DOWN) {
        snprintf(err, errlen, "%s", c->state == SONDE_REDIS_DOWN ? c->error : "not connected yet");
        return -1;
    }
    if (redisAsyncCommandArgv(c->ac, on_push, c, argc, argv, lens) != REDIS_OK) {
        snprintf(err, errlen, "the connection is closing");
        return -1;
    }
    c->subscribed = 1;
    sync_ref(c);
    return 0;
}

sonde_redis_reply *sonde_redis_take_push(sonde_redis_conn *c) {
    return SONDE_FIFO_ITEM(sonde_fifo_take(&c->pushes), sonde_redis_reply, link);
}

/* ------------------------------------------------------------ closing */

static void on_conn_closed(uv_handle_t *timer) { free(timer->data); }

static void finish_close(sonde_redis_conn *c) { uv_close((uv_handle_t *)&c->timer, on_conn_closed); }

void sonde_redis_close(sonde_redis_conn *c) {
    if (!c) return;
    c->closing = 1;
    stop_holding(c);
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    snprintf(c->error, sizeof c->error, "the connection was closed");
    c->state = SONDE_REDIS_DOWN;
    if (ac) redisAsyncFree(ac); /* waiting commands fail now */
    while (c->pushes.head) sonde_redis_reply_free(sonde_redis_take_push(c));
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->resolve); /* on_resolved finishes the close */
    else
        finish_close(c);
}
