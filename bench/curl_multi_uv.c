/* bench/curl_multi_uv.c — a second peer for concurrent requests: the same
 * libcurl multi handle with IN_FLIGHT transfers, but driven the way sonde
 * drives it (curl's docs/examples/multi-uv.c): curl_multi_socket_action,
 * one uv_poll per socket, one uv_timer for curl's timeout. Next to
 * curl_multi.c (curl_multi_perform + curl_multi_poll) it shows what that
 * architecture itself costs, apart from anything sonde adds.
 *
 * usage: bench_curl_multi_uv URL COUNT IN_FLIGHT   prints the seconds taken */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

typedef struct socket_ctx {
    uv_poll_t     poll;
    curl_socket_t fd;
} socket_ctx;

static CURLM     *multi;
static uv_loop_t *loop;
static uv_timer_t timer;
static long       count, started, done, failed;

static size_t discard(char *data, size_t size, size_t n, void *userp) {
    (void)data, (void)userp;
    return size * n;
}

/* Finished transfers: count them and start the next request on the handle. */
static void drain_done(void) {
    CURLMsg *msg;
    int      left;
    while ((msg = curl_multi_info_read(multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *e = msg->easy_handle;
        if (msg->data.result != CURLE_OK) {
            fprintf(stderr, "request failed: %s\n", curl_easy_strerror(msg->data.result));
            failed++;
        }
        done++;
        curl_multi_remove_handle(multi, e);
        if (started < count) {
            started++;
            curl_multi_add_handle(multi, e);
        } else {
            curl_easy_cleanup(e);
        }
    }
}

static void act(curl_socket_t fd, int flags) {
    int running;
    curl_multi_socket_action(multi, fd, flags, &running);
    drain_done();
}

static void on_poll(uv_poll_t *poll, int status, int events) {
    socket_ctx *ctx = poll->data;
    int         flags = status < 0 ? CURL_CSELECT_ERR : 0;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    act(ctx->fd, flags);
}

static void on_timer(uv_timer_t *t) {
    (void)t;
    act(CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp) {
    (void)m, (void)userp;
    if (timeout_ms < 0)
        uv_timer_stop(&timer);
    else
        uv_timer_start(&timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void on_closed(uv_handle_t *handle) { free(handle->data); }

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    (void)easy, (void)userp;
    socket_ctx *ctx = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ctx) {
            uv_poll_stop(&ctx->poll);
            uv_close((uv_handle_t *)&ctx->poll, on_closed);
            curl_multi_assign(multi, fd, NULL);
        }
        return 0;
    }
    if (!ctx) {
        if (!(ctx = calloc(1, sizeof *ctx))) return -1;
        ctx->fd = fd;
        uv_poll_init_socket(loop, &ctx->poll, fd);
        ctx->poll.data = ctx;
        curl_multi_assign(multi, fd, ctx);
    }
    uv_poll_start(&ctx->poll, (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0),
                  on_poll);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s URL COUNT IN_FLIGHT\n", argv[0]);
        return 2;
    }
    count = atol(argv[2]);
    int slots = atoi(argv[3]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    loop = uv_default_loop();
    uv_timer_init(loop, &timer);
    multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    uint64_t start = uv_hrtime();
    for (int i = 0; i < slots && started < count; i++, started++) {
        CURL *e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, argv[1]);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_multi_add_handle(multi, e);
    }
    uv_run(loop, UV_RUN_DEFAULT); /* returns once no socket or timer is left */
    printf("%.6f\n", (double)(uv_hrtime() - start) / 1e9);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return failed || done != count ? 1 : 0;
}
