/* server.h — internal: a small HTTP/1.1 server on the loop (no Lua here).
 *
 * Connections are read and parsed in C (httpreq.c); a complete request is
 * queued and a completion with the server's token tells Lua to take it. Lua
 * answers with sonde_server_respond; a keep-alive connection then goes on
 * with whatever the client already sent (pipelining). Bad input is answered
 * 400/408/413/431 by C itself and never reaches Lua. */
#ifndef SONDE_SERVER_H
#define SONDE_SERVER_H

#include <stdint.h>

#include "httpreq.h"
#include "loop.h"

typedef struct sonde_server sonde_server;
typedef struct sonde_conn   sonde_conn;

typedef struct sonde_server_opts {
    const char          *host;
    int                  port;  /* 0: the kernel picks */
    int                  token; /* completion queued when requests are ready */
    sonde_httpreq_limits limits;
    double               request_timeout; /* seconds from a request's first byte to its end */
    double               idle_timeout;    /* seconds a connection may wait for a request */
} sonde_server_opts;

/* Binds and listens; returns the server or NULL with a reason in err. */
sonde_server *sonde_server_listen(sonde_loop *lp, const sonde_server_opts *o, char *err, size_t errlen);
int           sonde_server_port(sonde_server *s);

/* The next complete request, or NULL. The connection stays the caller's to
 * answer (by id) until sonde_server_respond. */
sonde_conn    *sonde_server_take(sonde_server *s);
uint64_t       sonde_conn_id(const sonde_conn *c);
sonde_httpreq *sonde_conn_request(sonde_conn *c);

/* Answers request `id` with status, "Name: value\r\n" header lines (without
 * Content-Length or Connection, which are added) and body. Returns 0, or -1
 * when that connection is gone (the client left). */
int sonde_server_respond(sonde_server *s, uint64_t id, int status, const char *headers, size_t headers_len,
                         const char *body, size_t body_len);

/* Stops accepting and closes idle connections; busy ones close once they
 * have answered. Queues token's completion (0: none) once no request is
 * left being handled or its answer written: at once when none is. Returns
 * how many are. */
int sonde_server_shutdown(sonde_server *s, int token);
/* The Lua side lets go: every connection closes now, and the memory is
 * freed once every handle has closed. */
void sonde_server_release(sonde_server *s);

#endif
