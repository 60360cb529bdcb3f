/* bench/curl_multi_uv.c — a second peer for concurrent requests: the same
 * libcurl multi handle with IN_FLIGHT transfers, but driven the way sonde
 * drives it (curl's docs/examples/multi-uv.c): curl_multi_socket_action,
 * one uv_poll per socket, one uv_timer for curl's timeout. Next to
 * curl_multi.c (curl_multi_perform + curl_multi_poll) it shows what that
 * architecture itself costs, apart from anything sonde adds.
 *
 * usage: bench_curl_multi_uv URL COUNT IN_FLIGHT   prints the seconds taken */
#include <uv.h>

#include "curl_bench.h"

typedef struct socket_ctx {
    uv_poll_t     poll;
    curl_socket_t fd;
} socket_ctx;

static curl_bench b;
static uv_loop_t *loop;
static uv_timer_t timer;

static void act(curl_socket_t fd, int flags) {
    int running;
    curl_multi_socket_action(b.multi, fd, flags, &running);
    curl_bench_drain(&b);
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
            curl_multi_assign(b.multi, fd, NULL);
        }
        return 0;
    }
    if (!ctx) {
        if (!(ctx = calloc(1, sizeof *ctx))) return -1;
        ctx->fd = fd;
        uv_poll_init_socket(loop, &ctx->poll, fd);
        ctx->poll.data = ctx;
        curl_multi_assign(b.multi, fd, ctx);
    }
    uv_poll_start(&ctx->poll, (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0),
                  on_poll);
    return 0;
}

int main(int argc, char **argv) {
    if (curl_bench_args(&b, argc, argv) != 0) return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    loop = uv_default_loop();
    uv_timer_init(loop, &timer);
    b.multi = curl_multi_init();
    curl_multi_setopt(b.multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(b.multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    uint64_t start = uv_hrtime();
    curl_bench_start(&b);
    uv_run(loop, UV_RUN_DEFAULT); /* returns once no socket or timer is left */
    printf("%.6f\n", (double)(uv_hrtime() - start) / 1e9);
    curl_multi_cleanup(b.multi);
    curl_global_cleanup();
    return b.failed || b.done != b.count ? 1 : 0;
}
