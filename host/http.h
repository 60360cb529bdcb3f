/* http.h — internal: libcurl multi transfers driven by the libuv loop.
 *
 * The glue follows curl's multi-uv.c: one CURLM per loop, one uv_timer for
 * CURLMOPT_TIMERFUNCTION, one uv_poll per socket through curl_multi_assign,
 * curl_multi_info_read drained after every socket_action, the transfer found
 * through CURLINFO_PRIVATE. A finished transfer queues a completion with its
 * token; nothing here knows about Lua. */
#ifndef SONDE_HTTP_H
#define SONDE_HTTP_H

#include "curl_dl.h"

#include "bytes.h"
#include "loop.h"

typedef struct sonde_http sonde_http;

typedef struct sonde_transfer {
    sonde_http        *http;
    CURL              *easy;
    int                token;  /* completion queued with (token, CURLcode) */
    int                active; /* added to the multi handle, not finished */
    CURLcode           result;
    char               errbuf[CURL_ERROR_SIZE];
    sonde_bytes        body, headers;
    size_t             max_body; /* 0: unlimited */
    struct curl_slist *req_headers;
    char              *req_body;
} sonde_transfer;

typedef struct sonde_request {
    const char        *method;
    const char        *url;
    struct curl_slist *headers; /* taken over by the transfer */
    const char        *body;    /* copied; NULL: no body */
    size_t             body_len;
    double             timeout;         /* seconds, 0: none */
    double             connect_timeout; /* seconds, 0: curl's default */
    int                verify;          /* TLS peer and host verification */
    int                follow;          /* follow redirects */
    int                http2;           /* negotiate HTTP/2 (h2 or h2c upgrade) */
    size_t             max_body;        /* bytes kept of the response body, 0: all */
    int                token;
} sonde_request;

/* The loop's HTTP engine, created at first use; NULL when curl fails. */
sonde_http *sonde_http_get(sonde_loop *lp);
/* Frees the engine and every transfer still in it (host shutdown). */
void sonde_http_free(sonde_loop *lp);

/* Starts a transfer; returns it, or NULL with a reason in err. */
sonde_transfer *sonde_transfer_start(sonde_http *h, const sonde_request *r, char *err, size_t errlen);
/* Stops a transfer still running; its completion is never queued. */
void sonde_transfer_cancel(sonde_transfer *t);
/* Frees a transfer that is finished or cancelled; its easy handle is kept
 * for the next transfer, so connections and TLS sessions are reused. NULL
 * does nothing, as for free(). */
void sonde_transfer_free(sonde_transfer *t);

/* Transfers started since the engine was created. */
double sonde_http_started(sonde_loop *lp);
/* How often curl asked for a 0 ms timeout, and how often a 0 ms timer was
 * armed for it (equal unless something rounds 0 up, curl#17144's trap). */
void sonde_http_timer_stats(sonde_loop *lp, double *zero_asked, double *zero_armed);

#endif
