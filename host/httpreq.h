/* httpreq.h — internal: one HTTP/1.x request parsed from arbitrary bytes.
 *
 * A thin layer over nodejs' http-parser (Debian's libhttp-parser): it
 * collects the URL, headers and body of one message at a time, enforces the
 * server's limits and HTTP/1.x, and says which status refuses bad input. No
 * sockets and no Lua, so the fuzzer drives exactly the code the server runs. */
#ifndef SONDE_HTTPREQ_H
#define SONDE_HTTPREQ_H

#include <http_parser.h>
#include <stddef.h>

#include "bytes.h"

typedef struct sonde_httpreq_limits {
    size_t max_header_count; /* 431 past it */
    size_t max_header_bytes; /* request line and headers; 431 past it */
    size_t max_body;         /* 413 past it */
} sonde_httpreq_limits;

typedef struct sonde_httpreq {
    http_parser          parser;
    sonde_httpreq_limits limits;
    sonde_bytes          url, body;
    sonde_bytes         *names, *values; /* header i is names[i]: values[i] */
    size_t               header_count, header_cap;
    size_t               header_bytes;
    int                  in_value;     /* the last header callback was a value */
    int                  started;      /* bytes of this message have arrived */
    int                  complete;     /* a whole message is here; feeding paused */
    int                  error_status; /* 400, 413, 431 or 505 once input is refused */
    const char          *error_reason; /* a short text for the error response */
} sonde_httpreq;

void sonde_httpreq_init(sonde_httpreq *r, const sonde_httpreq_limits *limits);
void sonde_httpreq_free(sonde_httpreq *r);

/* Parses up to len bytes; returns how many it consumed. It stops early when
 * a message completes (r->complete) or the input is refused
 * (r->error_status); the rest belongs to the next message. */
size_t sonde_httpreq_feed(sonde_httpreq *r, const char *data, size_t len);

/* Forgets the completed message and gets ready for the next one. */
void sonde_httpreq_next(sonde_httpreq *r);

/* Whether the connection may stay open after answering this message. */
int sonde_httpreq_keep_alive(const sonde_httpreq *r);

const char *sonde_httpreq_method(const sonde_httpreq *r);

/* The reason phrase of a status code ("Not Found"), or "Unknown". */
const char *sonde_http_reason(int status);

#endif
