/* bench/curl_multi.c — the peer for concurrent requests: one libcurl multi
 * handle keeping IN_FLIGHT transfers going until COUNT are done, each slot
 * reusing its easy handle (and connection), driven by curl_multi_poll.
 *
 * usage: bench_curl_multi URL COUNT IN_FLIGHT   prints the seconds taken */
#include <time.h>

#include "curl_bench.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    curl_bench b = {0};
    if (curl_bench_args(&b, argc, argv) != 0) return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    b.multi = curl_multi_init();
    double start = now();
    curl_bench_start(&b);
    while (b.done < b.count) {
        int running;
        curl_multi_perform(b.multi, &running);
        curl_bench_drain(&b);
        if (b.done < b.count) curl_multi_poll(b.multi, NULL, 0, 1000, NULL);
    }
    printf("%.6f\n", now() - start);
    curl_multi_cleanup(b.multi);
    curl_global_cleanup();
    return b.failed ? 1 : 0;
}
