/* fuzz/fuzz_request.c — libFuzzer target for the server's request path:
 * arbitrary bytes, cut at a point the input chooses (as reads arrive in
 * pieces), go through httpreq exactly as server.c feeds it: message after
 * message, stopping at the first refusal. */
#include <stdint.h>
#include <string.h>

#include "httpreq.h"

static void check_request(const sonde_httpreq *r) {
    /* touch what Lua would read, so ASan sees any bad length */
    volatile size_t sum = r->url.len + r->body.len;
    for (size_t i = 0; i < r->header_count; i++) sum += r->names[i].len + r->values[i].len;
    (void)sonde_httpreq_method(r);
    (void)sonde_httpreq_keep_alive(r);
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sonde_httpreq_limits limits = {.max_header_count = 20, .max_header_bytes = 2048, .max_body = 4096};
    sonde_httpreq        r;
    sonde_httpreq_init(&r, &limits);
    size_t      cut = size ? data[0] % (size + 1) : 0; /* first read's length */
    const char *p = (const char *)data;
    size_t      left = size, chunk = cut ? cut : size;
    while (left > 0 && !r.error_status) {
        size_t take = chunk < left ? chunk : left;
        size_t used = sonde_httpreq_feed(&r, p, take);
        if (r.complete) {
            check_request(&r);
            sonde_httpreq_next(&r);
        } else if (used < take && !r.error_status) {
            break; /* the parser will not take more of this input */
        }
        p += used ? used : take, left -= used ? used : take;
        chunk = size - cut ? size - cut : 1;
    }
    (void)sonde_http_reason(r.error_status ? r.error_status : 200);
    sonde_httpreq_free(&r);
    return 0;
}
