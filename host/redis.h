/* redis.h — internal: hiredis' async connections on the libuv loop.
 *
 * One sonde_redis_conn is one connection to a Redis server. Commands are
 * sent at once (hiredis buffers them, so commands sent in one turn go out
 * in one write: a pipeline) and each completes its own token when its reply
 * arrives or the connection goes away. Connection events (connected,
 * closed, a pub/sub message) complete the connection's token. Replies are
 * copied out of hiredis, which frees its own when the callback returns, so
 * Lua reads them later, outside any libuv or hiredis callback. Nothing here
 * knows about Lua. */
#ifndef SONDE_REDIS_H
#define SONDE_REDIS_H

#include <stddef.h>

#include "fifo.h"
#include "loop.h"

typedef struct sonde_redis_conn sonde_redis_conn;
typedef struct sonde_redis_req  sonde_redis_req;

/* A reply as hiredis typed it (REDIS_REPLY_STRING, _ARRAY, _INTEGER, _NIL,
 * _STATUS, _ERROR), owned by sonde (freed with sonde_redis_reply_free). */
typedef struct sonde_redis_reply {
    int                        type;
    long long                  integer;
    char                      *str; /* string, status or error text */
    size_t                     len;
    size_t                     elements;
    struct sonde_redis_reply **element;
    sonde_fifo_link            link; /* in a connection's queue of pushes */
} sonde_redis_reply;

/* What a connection's token completes with (the completion's a). */
enum { SONDE_REDIS_CONNECTED = 1, SONDE_REDIS_CLOSED = 2, SONDE_REDIS_PUSHED = 3 };

/* A connection's state, as sonde_redis_state returns it. */
enum { SONDE_REDIS_CONNECTING = 0, SONDE_REDIS_READY = 1, SONDE_REDIS_DOWN = 2 };

typedef struct sonde_redis_opts {
    const char *host; /* an IP address or a name, resolved on the loop */
    int         port;
    double      connect_timeout; /* seconds; 0: none */
    int         token;           /* completed with SONDE_REDIS_* events */
} sonde_redis_opts;

/* Starts connecting. Returns the connection (its token completes with
 * SONDE_REDIS_CONNECTED or SONDE_REDIS_CLOSED), or NULL with a reason in
 * err when it cannot even start. */
sonde_redis_conn *sonde_redis_connect(sonde_loop *lp, const sonde_redis_opts *o, char *err, size_t errlen);
/* SONDE_REDIS_CONNECTING, _READY or _DOWN. */
int sonde_redis_state(const sonde_redis_conn *c);
/* Why the connection is down (or "" while it is not). */
const char *sonde_redis_error(const sonde_redis_conn *c);

/* Sends one command of argc arguments. Its reply completes `token`; a
 * reply that has not come `timeout` seconds after the command was sent (0:
 * never) takes the connection down, as a connection that stopped
 * answering. With `holds`, the command counts as a real operation in
 * flight, which holds virtual time still (a reader blocked on a stream
 * does not). Returns the request, or NULL with a reason in err. */
sonde_redis_req *sonde_redis_send(sonde_redis_conn *c, int argc, const char **argv, const size_t *lens, int token,
                                  double timeout, int holds, char *err, size_t errlen);
/* The reply, or NULL while there is none (then sonde_redis_req_error says
 * why once the request is done). */
const sonde_redis_reply *sonde_redis_req_reply(const sonde_redis_req *r);
/* Why a request got no reply ("" while it waits or when it got one). */
const char *sonde_redis_req_error(const sonde_redis_req *r);
/* The Lua side lets go of r; it is freed once its reply is in too. NULL
 * does nothing, as for free(). */
void sonde_redis_req_release(sonde_redis_req *r);

/* Sends (P)SUBSCRIBE or (P)UNSUBSCRIBE: the messages that follow, and the
 * server's confirmations, are queued as pushes and complete the
 * connection's token with SONDE_REDIS_PUSHED. Returns 0, or -1 with a
 * reason in err. */
int sonde_redis_subscribe(sonde_redis_conn *c, int argc, const char **argv, const size_t *lens, char *err,
                          size_t errlen);
/* The oldest push not taken yet (the caller frees it), or NULL. */
sonde_redis_reply *sonde_redis_take_push(sonde_redis_conn *c);

/* Closes the connection now: requests still waiting complete with an
 * error; the memory goes once every handle has closed. NULL does nothing. */
void sonde_redis_close(sonde_redis_conn *c);

void sonde_redis_reply_free(sonde_redis_reply *r);

#endif
