/* lkeys.c — sonde.c.keys: single keys typed at the terminal, from the loop.
 *
 * `sonde test --watch` reads a key at a time (a, f, q) while it waits and
 * while tests run. On a terminal, stdin leaves canonical mode and echo off
 * (Ctrl-C stays SIGINT: the terminal's signals are kept), and gets its
 * settings back at close. A uv_poll on fd 0 queues a completion of `token`
 * when input is there; Lua then takes the bytes. Nothing here calls into
 * Lua from libuv.
 *
 *   open(token)   -> keys | nil, "message" (stdin cannot be polled: a
 *                    regular file, /dev/null)
 *   keys:take()   -> bytes read since the last take, and true once stdin
 *                    has ended
 *   keys:close()  also __gc: the terminal's settings come back
 *
 * Memory lives apart from the userdata and is freed in the close callback. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "binding.h"

#define KEYS_MT "sonde.keys"
#define KEYS_LIMIT 4096 /* bytes kept until taken */

typedef struct keys {
    uv_poll_t      poll;
    sonde_loop    *lp;
    int            token;
    int            signalled; /* a completion is queued and not yet taken */
    int            ended;     /* stdin reached its end (or failed) */
    int            tty;       /* termios below is to be restored */
    int            flags;     /* fd 0's file status flags, restored */
    struct termios saved;
    char           buf[KEYS_LIMIT];
    size_t         len;
} keys;

static void signal_lua(keys *k) {
    if (!k->signalled && sonde_loop_complete(k->lp, k->token, (double)k->len, 0) == 0) k->signalled = 1;
}

static void on_readable(uv_poll_t *p, int status, int events) {
    (void)events;
    keys *k = p->data;
    if (status < 0) {
        k->ended = 1;
    } else {
        ssize_t n;
        do n = read(STDIN_FILENO, k->buf + k->len, sizeof k->buf - k->len);
        while (n < 0 && errno == EINTR);
        if (n > 0) k->len += (size_t)n;
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) k->ended = 1;
    }
    if (k->ended || k->len == sizeof k->buf) uv_poll_stop(p); /* nothing more, or take() first */
    signal_lua(k);
}

static void restore(keys *k) {
    if (k->tty) tcsetattr(STDIN_FILENO, TCSANOW, &k->saved);
    k->tty = 0;
    fcntl(STDIN_FILENO, F_SETFL, k->flags);
}

static void on_closed(uv_handle_t *h) { free(h->data); }

/* open(token) -> keys | nil, err */
static int keys_open(lua_State *L) {
    int    token = (int)luaL_checkinteger(L, 1);
    void **box = sonde_box_new(L, KEYS_MT);
    keys  *k = calloc(1, sizeof *k);
    if (!k) return luaL_error(L, "out of memory reading keys");
    k->lp = sonde_binding_loop(L);
    k->token = token;
    k->flags = fcntl(STDIN_FILENO, F_GETFL);
    int rc = uv_poll_init(&k->lp->uv, &k->poll, STDIN_FILENO);
    if (rc < 0) {
        free(k);
        return sonde_binding_fail(L, rc);
    }
    k->poll.data = k;
    if (k->flags >= 0) fcntl(STDIN_FILENO, F_SETFL, k->flags | O_NONBLOCK);
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &k->saved) == 0) {
        struct termios t = k->saved;
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0) k->tty = 1;
    }
    rc = uv_poll_start(&k->poll, UV_READABLE | UV_DISCONNECT, on_readable);
    if (rc < 0) {
        restore(k);
        uv_close((uv_handle_t *)&k->poll, on_closed);
        return sonde_binding_fail(L, rc);
    }
    *box = k;
    return 1;
}

/* take() -> bytes, ended */
static int keys_take(lua_State *L) {
    keys *k = sonde_box_check(L, KEYS_MT, "sonde.c.keys: closed");
    lua_pushlstring(L, k->buf, k->len);
    lua_pushboolean(L, k->ended);
    int was_full = k->len == sizeof k->buf;
    k->len = 0;
    k->signalled = 0;
    if (was_full && !k->ended) uv_poll_start(&k->poll, UV_READABLE | UV_DISCONNECT, on_readable);
    return 2;
}

/* close(), also __gc */
static int keys_close(lua_State *L) {
    keys *k = sonde_box_take(L, KEYS_MT);
    if (!k) return 0;
    restore(k);
    uv_close((uv_handle_t *)&k->poll, on_closed);
    return 0;
}

int luaopen_sonde_c_keys(lua_State *L) {
    static const luaL_Reg methods[] = {SONDE_FN(keys, take), SONDE_FN(keys, close), {NULL, NULL}};
    static const luaL_Reg funcs[] = {SONDE_FN(keys, open), {NULL, NULL}};
    return sonde_binding_family(L, KEYS_MT, methods, keys_close, funcs);
}
