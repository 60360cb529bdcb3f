/* bench/curl_easy.c — the peer for sequential requests: a plain libcurl
 * easy loop that reuses one handle (and so one connection).
 *
 * usage: bench_curl_easy URL COUNT   prints the seconds taken */
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

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s URL COUNT\n", argv[0]);
        return 2;
    }
    long count = atol(argv[2]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, argv[1]);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    double start = now();
    for (long i = 0; i < count; i++) {
        long     status = 0;
        CURLcode rc = curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || status != 200) {
            fprintf(stderr, "request %ld failed: %s (%ld)\n", i, curl_easy_strerror(rc), status);
            return 1;
        }
    }
    printf("%.6f\n", now() - start);
    curl_easy_cleanup(e);
    curl_global_cleanup();
    return 0;
}
