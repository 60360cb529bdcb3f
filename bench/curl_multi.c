/* bench/curl_multi.c — the peer for concurrent requests: one libcurl multi
 * handle keeping IN_FLIGHT transfers going until COUNT are done, each slot
 * reusing its easy handle (and connection), driven by curl_multi_poll.
 *
 * usage: bench_curl_multi URL COUNT IN_FLIGHT   prints the seconds taken */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static size_t discard(char *data, size_t size, size_t n, void *userp) {
    (void)data, (void)userp;
    return size * n;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static CURL *new_easy(const char *url) {
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    return e;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s URL COUNT IN_FLIGHT\n", argv[0]);
        return 2;
    }
    long count = atol(argv[2]), started = 0, done = 0;
    int  slots = atoi(argv[3]), running = 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    double start = now();
    for (int i = 0; i < slots && started < count; i++, started++) curl_multi_add_handle(m, new_easy(argv[1]));
    while (done < count) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int      left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL *e = msg->easy_handle;
            if (msg->data.result != CURLE_OK) {
                fprintf(stderr, "request failed: %s\n", curl_easy_strerror(msg->data.result));
                return 1;
            }
            done++;
            curl_multi_remove_handle(m, e);
            if (started < count) {
                started++;
                curl_multi_add_handle(m, e);
            } else {
                curl_easy_cleanup(e);
            }
        }
        if (done < count) curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    printf("%.6f\n", now() - start);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return 0;
}
