/* httpreq.c — http-parser driven for one request at a time, with limits. */
#include "httpreq.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------- refusing */

static int refuse(sonde_httpreq *r, int status, const char *reason) {
    if (!r->error_status) r->error_status = status, r->error_reason = reason;
    return -1; /* makes http_parser stop with HPE_CB_* */
}

static int count_header_bytes(sonde_httpreq *r, size_t len) {
    r->header_bytes += len;
    if (r->header_bytes > r->limits.max_header_bytes) return refuse(r, 431, "request headers too large");
    return 0;
}

/* --------------------------------------------------------- callbacks */

static sonde_httpreq *req_of(http_parser *p) { return p->data; }

static int on_message_begin(http_parser *p) {
    req_of(p)->started = 1;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
    sonde_httpreq *r = req_of(p);
    if (count_header_bytes(r, len) < 0) return -1;
    return sonde_bytes_add(&r->url, at, len) < 0 ? refuse(r, 431, "out of memory") : 0;
}

static int grow_headers(sonde_httpreq *r) {
    size_t       cap = r->header_cap ? r->header_cap * 2 : 16;
    sonde_bytes *names = realloc(r->names, sizeof *names * cap);
    if (!names) return -1;
    r->names = names;
    sonde_bytes *values = realloc(r->values, sizeof *values * cap);
    if (!values) return -1;
    r->values = values;
    memset(r->names + r->header_cap, 0, sizeof *names * (cap - r->header_cap));
    memset(r->values + r->header_cap, 0, sizeof *values * (cap - r->header_cap));
    r->header_cap = cap;
    return 0;
}

/* A header name arrives in pieces; a piece after a value starts a new header. */
static int on_header_field(http_parser *p, const char *at, size_t len) {
    sonde_httpreq *r = req_of(p);
    if (count_header_bytes(r, len) < 0) return -1;
    if (r->header_count == 0 || r->in_value) {
        if (r->header_count == r->limits.max_header_count) return refuse(r, 431, "too many request headers");
        if (r->header_count == r->header_cap && grow_headers(r) < 0) return refuse(r, 431, "out of memory");
        r->names[r->header_count].len = r->values[r->header_count].len = 0;
        r->header_count++;
        r->in_value = 0;
    }
    return sonde_bytes_add(&r->names[r->header_count - 1], at, len) < 0 ? refuse(r, 431, "out of memory") : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
    sonde_httpreq *r = req_of(p);
    if (count_header_bytes(r, len) < 0) return -1;
    r->in_value = 1;
    if (r->header_count == 0) return refuse(r, 400, "header value without a name");
    return sonde_bytes_add(&r->values[r->header_count - 1], at, len) < 0 ? refuse(r, 431, "out of memory") : 0;
}

static int on_headers_complete(http_parser *p) {
    sonde_httpreq *r = req_of(p);
    /* RFC 9112 2.3: a major version it does not speak gets 505 (HTTP/2's
     * and HTTP/0.9's requests among them); any HTTP/1.x is served as 1.1 */
    if (p->http_major != 1) return refuse(r, 505, "HTTP version not supported: this server speaks HTTP/1.1");
    /* a declared length over the limit is refused before the body arrives */
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > r->limits.max_body)
        return refuse(r, 413, "request body too large");
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
    sonde_httpreq *r = req_of(p);
    if (r->body.len + len > r->limits.max_body) return refuse(r, 413, "request body too large");
    return sonde_bytes_add(&r->body, at, len) < 0 ? refuse(r, 413, "out of memory") : 0;
}

static int on_message_complete(http_parser *p) {
    req_of(p)->complete = 1;
    http_parser_pause(p, 1); /* one message at a time: the rest waits */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------- API */

void sonde_httpreq_init(sonde_httpreq *r, const sonde_httpreq_limits *limits) {
    memset(r, 0, sizeof *r);
    r->limits = *limits;
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
}

void sonde_httpreq_free(sonde_httpreq *r) {
    for (size_t i = 0; i < r->header_cap; i++) free(r->names[i].data), free(r->values[i].data);
    free(r->names);
    free(r->values);
    free(r->url.data);
    free(r->body.data);
}

size_t sonde_httpreq_feed(sonde_httpreq *r, const char *data, size_t len) {
    if (r->complete || r->error_status) return 0;
    size_t          n = http_parser_execute(&r->parser, &settings, data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&r->parser);
    if (err != HPE_OK && err != HPE_PAUSED && !r->error_status) refuse(r, 400, http_errno_description(err));
    return n;
}

void sonde_httpreq_next(sonde_httpreq *r) {
    r->url.len = r->body.len = 0;
    r->header_count = r->header_bytes = 0;
    r->in_value = r->started = r->complete = 0;
    http_parser_pause(&r->parser, 0);
}

int sonde_httpreq_keep_alive(const sonde_httpreq *r) { return !r->error_status && http_should_keep_alive(&r->parser); }

const char *sonde_httpreq_method(const sonde_httpreq *r) { return http_method_str((enum http_method)r->parser.method); }

const char *sonde_http_reason(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
