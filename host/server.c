/* server.c — TCP listener and connections for the embedded HTTP server. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fifo.h"

enum conn_state { READING, HANDLING, WRITING, DRAINING, CLOSING };

struct sonde_conn {
    uv_tcp_t        tcp;
    uv_timer_t      timer;
    sonde_server   *srv;
    uint64_t        id;   /* its slot and that slot's serial: see slot_claim */
    uint32_t        slot; /* in srv->slots while open */
    enum conn_state state;
    sonde_httpreq   req;
    sonde_bytes     pending;     /* bytes after the message being handled */
    int             in_flight;   /* counted in the loop's real_pending */
    int             close_after; /* close once the response is written */
    int             handles;     /* tcp and timer, until their close callbacks */
    int             reading;     /* uv_read_start is in effect */
    int             refused;     /* answered with an error: drain, then close */
    int             eof;         /* the client sent FIN while a request was being handled */
    uv_shutdown_t   shutdown;
    sonde_conn     *prev, *next; /* open connections */
    sonde_fifo_link ready;       /* in the server's queue of complete requests waiting for Lua */
};

struct sonde_server {
    sonde_loop       *lp;
    uv_tcp_t          listener;
    sonde_server_opts opts;
    int               listener_open, released;
    uint64_t          next_serial;
    sonde_conn       *conns;
    sonde_conn      **slots;      /* open connections by slot: respond finds its own at once */
    uint32_t         *free_slots; /* slots that closed connections left */
    uint32_t          slot_count, slot_cap, free_count;
    sonde_fifo        ready;         /* connections whose complete request waits for Lua */
    int               busy;          /* requests being handled or their answers written */
    int               drained_token; /* completed once busy drops to 0 after shutdown */
    int               conn_handles;  /* connection handles not closed yet */
};

static void conn_feed(sonde_conn *c);
static void set_reading(sonde_conn *c, int on);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf);

/* ------------------------------------------------------------ memory */

static void server_maybe_free(sonde_server *s) {
    if (!s->released || s->listener_open || s->conns || s->conn_handles) return;
    free(s->slots);
    free(s->free_slots);
    free(s);
}

/* ------------------------------------------------------------- slots */

/* Lua names a connection by a number (a pointer could outlive it): the low
 * bits are its slot, the high ones count how often slots were handed out,
 * so an answer for a connection that has gone never reaches the one that
 * took its slot since. */
#define SLOT_BITS 24
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define SERIAL_LIMIT (1ull << 28) /* ids stay below 2^52: exact in a Lua number */

static int slot_claim(sonde_server *s, sonde_conn *c) {
    if (s->free_count) {
        c->slot = s->free_slots[--s->free_count];
    } else {
        if (s->slot_count == s->slot_cap) {
            uint32_t cap = s->slot_cap ? 2 * s->slot_cap : 64;
            if (cap > SLOT_MASK) return -1;
            sonde_conn **slots = realloc(s->slots, cap * sizeof *slots);
            if (!slots) return -1;
            s->slots = slots;
            uint32_t *free_slots = realloc(s->free_slots, cap * sizeof *free_slots);
            if (!free_slots) return -1;
            s->free_slots = free_slots, s->slot_cap = cap;
        }
        c->slot = s->slot_count++;
    }
    s->slots[c->slot] = c;
    s->next_serial = s->next_serial % SERIAL_LIMIT + 1; /* never 0: an id of 0 is no connection */
    c->id = (s->next_serial << SLOT_BITS) | c->slot;
    return 0;
}

static void slot_release(sonde_server *s, sonde_conn *c) {
    if (!c->id) return;
    s->slots[c->slot] = NULL;
    s->free_slots[s->free_count++] = c->slot;
    c->id = 0;
}

static sonde_conn *find_conn(sonde_server *s, uint64_t id) {
    uint32_t slot = (uint32_t)(id & SLOT_MASK);
    if (slot >= s->slot_count) return NULL;
    sonde_conn *c = s->slots[slot];
    return c && c->id == id ? c : NULL;
}

static void on_conn_closed(uv_handle_t *h) {
    sonde_conn   *c = h->data;
    sonde_server *s = c->srv;
    s->conn_handles--;
    if (--c->handles > 0) {
        server_maybe_free(s);
        return;
    }
    sonde_httpreq_free(&c->req);
    free(c->pending.data);
    free(c);
    server_maybe_free(s);
}

/* A request is busy from when it is queued for Lua until its answer is
 * written (or its connection closes): a shutdown waits for no less. */
static int is_busy(enum conn_state state) { return state == HANDLING || state == WRITING; }

static void set_state(sonde_conn *c, enum conn_state state) {
    sonde_server *s = c->srv;
    s->busy += is_busy(state) - is_busy(c->state);
    c->state = state;
    if (s->busy == 0 && s->drained_token) {
        sonde_loop_complete(s->lp, s->drained_token, 0, 0);
        s->drained_token = 0;
    }
}

static void set_in_flight(sonde_conn *c, int on) {
    if (c->in_flight == on) return;
    c->in_flight = on;
    c->srv->lp->real_pending += on ? 1 : -1;
}

static void conn_close(sonde_conn *c) {
    if (c->state == CLOSING) return;
    sonde_server *s = c->srv;
    set_state(c, CLOSING);
    set_in_flight(c, 0);
    sonde_fifo_remove(&s->ready, &c->ready);
    slot_release(s, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

/* ------------------------------------------------------------ timers */

static void on_timeout(uv_timer_t *t) {
    sonde_conn *c = t->data;
    if (c->state == DRAINING) {
        conn_close(c);
        return;
    }
    if (c->state != READING) return;
    if (!c->req.started) {
        conn_close(c); /* idle keep-alive connection: just go */
        return;
    }
    const char msg[] = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    uv_buf_t   buf = uv_buf_init((char *)msg, sizeof msg - 1);
    uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    conn_close(c);
}

static void arm_timer(sonde_conn *c, double seconds) {
    if (seconds > 0)
        uv_timer_start(&c->timer, on_timeout, sonde_ms_of(seconds), 0);
    else
        uv_timer_stop(&c->timer);
}

/* ------------------------------------------------------------ writing */

typedef struct {
    uv_write_t  req;
    sonde_conn *conn;
    char        data[];
} write_req;

static void on_shutdown(uv_shutdown_t *req, int status) { (void)req, (void)status; }

/* After refusing a request the client may still be sending (a body over
 * the limit): closing now would reset the connection and lose the answer.
 * So send FIN, read and drop what still comes for a moment, then close. */
static void lingering_close(sonde_conn *c) {
    set_state(c, DRAINING);
    c->pending.len = 0;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    set_reading(c, 1);
    arm_timer(c, 2.0);
}

/* An answer is written (status < 0: it could not be): the connection
 * closes, drains, or goes on with the next request. */
static void conn_answered(sonde_conn *c, int status) {
    if (c->state != WRITING) return;
    if (c->refused && status == 0) {
        lingering_close(c);
        return;
    }
    if (status < 0 || c->close_after) {
        conn_close(c);
        return;
    }
    sonde_httpreq_next(&c->req);
    set_in_flight(c, 0);
    set_state(c, READING);
    arm_timer(c, c->srv->opts.idle_timeout);
    conn_feed(c); /* pipelined bytes that arrived meanwhile */
}

static void on_written(uv_write_t *w, int status) {
    write_req  *wr = (write_req *)w;
    sonde_conn *c = wr->conn;
    free(wr);
    conn_answered(c, status);
}

/* Copies the pieces past their first `skip` bytes to `out`. */
static void copy_parts(char *out, const uv_buf_t *parts, int nparts, size_t skip) {
    for (int i = 0; i < nparts; i++) {
        if (parts[i].len <= skip) {
            skip -= parts[i].len;
            continue;
        }
        memcpy(out, parts[i].base + skip, parts[i].len - skip);
        out += parts[i].len - skip;
        skip = 0;
    }
}

/* Sends the pieces and leaves HANDLING (the request is answered) for
 * WRITING. An answer that fits the socket's buffer (most) goes at once in
 * one writev, and the connection goes on without a trip through the loop;
 * what does not fit is copied into a write request. Returns 0, or -1 with
 * the connection closed. */
static int conn_write(sonde_conn *c, const uv_buf_t *parts, int nparts) {
    set_state(c, WRITING);
    size_t len = 0;
    for (int i = 0; i < nparts; i++) len += parts[i].len;
    int sent = uv_try_write((uv_stream_t *)&c->tcp, parts, (unsigned)nparts);
    if (sent >= 0 && (size_t)sent == len) {
        conn_answered(c, 0);
        return 0;
    }
    if (sent < 0 && sent != UV_EAGAIN) {
        conn_close(c);
        return -1;
    }
    size_t     done = sent > 0 ? (size_t)sent : 0;
    write_req *wr = malloc(sizeof *wr + len - done);
    if (!wr) {
        conn_close(c);
        return -1;
    }
    wr->conn = c;
    copy_parts(wr->data, parts, nparts, done);
    uv_buf_t buf = uv_buf_init(wr->data, (unsigned)(len - done));
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0) {
        free(wr);
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Answers input the parser refused and closes the connection after. */
static void refuse(sonde_conn *c) {
    char head[256];
    int  status = c->req.error_status;
    int  n = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, sonde_http_reason(status), strlen(c->req.error_reason) + 1);
    c->close_after = c->refused = 1;
    set_reading(c, 0);
    char     body[160];
    int      blen = snprintf(body, sizeof body, "%s\n", c->req.error_reason);
    uv_buf_t parts[] = {uv_buf_init(head, (unsigned)n),
                        uv_buf_init(body, (size_t)blen < sizeof body ? (unsigned)blen : sizeof body - 1)};
    conn_write(c, parts, 2);
}

/* ------------------------------------------------------------ reading */

static void queue_ready(sonde_conn *c) {
    sonde_server *s = c->srv;
    set_state(c, HANDLING);
    sonde_fifo_push(&s->ready, &c->ready);
    sonde_loop_complete(s->lp, s->opts.token, 0, 0);
}

static void set_reading(sonde_conn *c, int on) {
    if (c->reading == on) return;
    c->reading = on;
    if (on)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    else
        uv_read_stop((uv_stream_t *)&c->tcp);
}

/* Feeds the pending bytes to the parser and acts on what it found. Never
 * feeds zero bytes: http-parser takes that as the end of the stream. */
static void conn_feed(sonde_conn *c) {
    size_t used = c->pending.len ? sonde_httpreq_feed(&c->req, c->pending.data, c->pending.len) : 0;
    memmove(c->pending.data, c->pending.data + used, c->pending.len - used);
    c->pending.len -= used;
    if (c->req.started && !c->in_flight) {
        set_in_flight(c, 1);
        arm_timer(c, c->srv->opts.request_timeout);
    }
    if (c->req.error_status) {
        refuse(c);
    } else if (c->req.complete) {
        uv_timer_stop(&c->timer);
        queue_ready(c);
    } else if (c->eof) {
        conn_close(c); /* the client will send nothing more: no request is coming */
    } else {
        set_reading(c, 1);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    sonde_conn *c = h->data;
    (void)hint;
    size_t want = c->pending.len + 65536;
    if (want > c->pending.cap) {
        char *p = realloc(c->pending.data, want);
        if (!p) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->pending.data = p, c->pending.cap = want;
    }
    *buf = uv_buf_init(c->pending.data + c->pending.len, (unsigned)(c->pending.cap - c->pending.len));
}

/* Reading goes on while a request is handled: stopping and starting it
 * again costs two or three epoll_ctl calls for every request. The bytes of
 * the requests pipelined behind it wait in `pending`; past this many they
 * wait in the socket instead. */
#define PIPELINED_LIMIT 65536

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
    sonde_conn *c = stream->data;
    (void)buf;
    if (n == UV_EOF && is_busy(c->state)) {
        c->eof = 1; /* a client may half-close once its requests are sent: they still get answers */
        set_reading(c, 0);
        return;
    }
    if (n < 0) {
        conn_close(c); /* EOF or error: a half-sent request goes with it */
        return;
    }
    c->pending.len += (size_t)n;
    if (c->state == DRAINING)
        c->pending.len = 0;
    else if (c->state == READING)
        conn_feed(c);
    else if (c->pending.len >= PIPELINED_LIMIT)
        set_reading(c, 0); /* conn_feed starts again once this answer is written */
}

/* ---------------------------------------------------------- accepting */

static void on_connection(uv_stream_t *listener, int status) {
    sonde_server *s = listener->data;
    if (status < 0) return;
    sonde_conn *c = calloc(1, sizeof *c);
    if (!c) return;
    c->srv = s;
    uv_tcp_init(&s->lp->uv, &c->tcp);
    uv_timer_init(&s->lp->uv, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    s->conn_handles += 2;
    sonde_httpreq_init(&c->req, &s->opts.limits);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    if (slot_claim(s, c) != 0 || uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    arm_timer(c, s->opts.idle_timeout);
    set_reading(c, 1);
}

sonde_server *sonde_server_listen(sonde_loop *lp, const sonde_server_opts *o, char *err, size_t errlen) {
    struct sockaddr_storage addr;
    int                     rc = uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&addr);
    if (rc != 0) rc = uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&addr);
    if (rc != 0) {
        snprintf(err, errlen, "'%s' is not an IP address", o->host);
        return NULL;
    }
    sonde_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->lp = lp;
    s->opts = *o;
    uv_tcp_init(&lp->uv, &s->listener);
    s->listener.data = s;
    s->listener_open = 1;
    if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0)) == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", o->host, o->port, uv_strerror(rc));
        s->released = 1;
        sonde_server_shutdown(s, 0);
        return NULL;
    }
    return s;
}

int sonde_server_port(sonde_server *s) {
    struct sockaddr_storage addr;
    int                     len = sizeof addr;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&addr, &len) != 0) return -1;
    if (addr.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

/* ------------------------------------------------------ taking, answering */

sonde_conn *sonde_server_take(sonde_server *s) {
    return SONDE_FIFO_ITEM(sonde_fifo_take(&s->ready), sonde_conn, ready);
}

uint64_t       sonde_conn_id(const sonde_conn *c) { return c->id; }
sonde_httpreq *sonde_conn_request(sonde_conn *c) { return &c->req; }

static char *put_text(char *out, const char *text) {
    size_t len = strlen(text);
    memcpy(out, text, len);
    return out + len;
}

/* Writes n in decimal; returns the end. (snprintf's parsing of its format
 * showed in the profile of every answer.) */
static char *put_size(char *out, size_t n) {
    char digits[24];
    int  count = 0;
    do digits[count++] = (char)('0' + n % 10);
    while (n /= 10);
    while (count) *out++ = digits[--count];
    return out;
}

int sonde_server_respond(sonde_server *s, uint64_t id, int status, const char *headers, size_t headers_len,
                         const char *body, size_t body_len) {
    sonde_conn *c = find_conn(s, id);
    if (!c || c->state != HANDLING) return -1;
    if (!sonde_httpreq_keep_alive(&c->req) || !s->listener_open) c->close_after = 1;
    char  line[128], tail[96]; /* a status has 3 digits, a reason phrase < 40 bytes */
    char *end = put_text(put_size(put_text(line, "HTTP/1.1 "), (size_t)status), " ");
    end = put_text(put_text(end, sonde_http_reason(status)), "\r\n");
    char *tail_end = put_text(put_size(put_text(tail, "Content-Length: "), body_len), "\r\n");
    tail_end = put_text(tail_end, c->close_after ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n");
    uv_buf_t parts[] = {uv_buf_init(line, (unsigned)(end - line)), uv_buf_init((char *)headers, (unsigned)headers_len),
                        uv_buf_init(tail, (unsigned)(tail_end - tail)), uv_buf_init((char *)body, (unsigned)body_len)};
    return conn_write(c, parts, 4);
}

/* ------------------------------------------------------------ closing */

static void on_listener_closed(uv_handle_t *h) {
    sonde_server *s = h->data;
    s->listener_open = 0;
    server_maybe_free(s);
}

int sonde_server_shutdown(sonde_server *s, int token) {
    if (s->listener_open && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    for (sonde_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == READING && !c->req.started)
            conn_close(c);
        else
            c->close_after = 1;
    }
    if (token && s->busy == 0) sonde_loop_complete(s->lp, token, 0, 0);
    if (token && s->busy > 0) s->drained_token = token;
    return s->busy;
}

void sonde_server_release(sonde_server *s) {
    s->released = 1;
    sonde_server_shutdown(s, 0);
    s->drained_token = 0; /* nobody waits any more */
    while (s->conns) conn_close(s->conns);
    server_maybe_free(s);
}
