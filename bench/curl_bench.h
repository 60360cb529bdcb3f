/* bench/curl_bench.h — what the two C multi-handle peers share: the
 * arguments, the easy handles, and the loop over finished transfers that
 * reuses each handle for the next request. They differ only in what drives
 * the multi handle (curl_multi.c, curl_multi_uv.c). */
#ifndef SONDE_CURL_BENCH_H
#define SONDE_CURL_BENCH_H

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct curl_bench {
    CURLM      *multi;
    const char *url;
    long        count, started, done, failed;
    int         slots;
} curl_bench;

static size_t discard(char *data, size_t size, size_t n, void *userp) {
    (void)data, (void)userp;
    return size * n;
}

/* URL COUNT IN_FLIGHT; 0, or 2 after printing the usage. */
static int curl_bench_args(curl_bench *b, int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s URL COUNT IN_FLIGHT   prints the seconds taken\n", argv[0]);
        return 2;
    }
    b->url = argv[1], b->count = atol(argv[2]), b->slots = atoi(argv[3]);
    return 0;
}

/* The first IN_FLIGHT transfers, one easy handle each. */
static void curl_bench_start(curl_bench *b) {
    for (int i = 0; i < b->slots && b->started < b->count; i++, b->started++) {
        CURL *e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, b->url);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_multi_add_handle(b->multi, e);
    }
}

/* Finished transfers: counted (a failed one named), and each handle starts
 * the next request while any is left. */
static void curl_bench_drain(curl_bench *b) {
    CURLMsg *msg;
    int      left;
    while ((msg = curl_multi_info_read(b->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *e = msg->easy_handle;
        if (msg->data.result != CURLE_OK) {
            fprintf(stderr, "request failed: %s\n", curl_easy_strerror(msg->data.result));
            b->failed++;
        }
        b->done++;
        curl_multi_remove_handle(b->multi, e);
        if (b->started < b->count) {
            b->started++;
            curl_multi_add_handle(b->multi, e);
        } else {
            curl_easy_cleanup(e);
        }
    }
}

#endif
