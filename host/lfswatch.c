/* lfswatch.c — sonde.c.fswatch: changes in a folder, from the loop.
 *
 * One uv_fs_event per folder (inotify on Linux: not recursive, so the
 * caller watches each folder it cares about). The names of the entries that
 * changed are queued in C, and a completion of `token` tells Lua that the
 * queue is no longer empty; Lua takes the queue when it wakes. Nothing here
 * calls into Lua from libuv.
 *
 *   open(dir, token)   -> watcher | nil, "message"
 *   watcher:take()     -> {name, ...} queued since the last take, in order,
 *                         repeats dropped; "" when libuv could not say which
 *                         entry changed (the caller looks again)
 *   watcher:close()    also __gc
 *
 * Memory lives apart from the userdata and is freed in the close
 * callback, as luv does. */
#include <stdlib.h>
#include <string.h>

#include "binding.h"

#define FSWATCH_MT "sonde.fswatch"
#define QUEUE_LIMIT (256 * 1024) /* bytes of names kept; past it, "" (look again) */

typedef struct fswatch {
    uv_fs_event_t ev;
    sonde_loop   *lp;
    int           token;
    int           signalled; /* a completion is queued and not yet taken */
    char         *names;     /* NUL-separated */
    size_t        len, cap;
} fswatch;

static void queue_name(fswatch *w, const char *name) {
    size_t n = strlen(name) + 1;
    if (w->len + n > QUEUE_LIMIT) { /* too much to keep: the caller looks again */
        name = "";
        n = 1;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        while (cap < w->len + n) cap *= 2;
        char *names = realloc(w->names, cap);
        if (!names) return;
        w->names = names;
        w->cap = cap;
    }
    memcpy(w->names + w->len, name, n);
    w->len += n;
}

static void on_change(uv_fs_event_t *ev, const char *filename, int events, int status) {
    (void)events;
    fswatch *w = ev->data;
    queue_name(w, status < 0 || !filename ? "" : filename);
    if (!w->signalled && sonde_loop_complete(w->lp, w->token, 1, 0) == 0) w->signalled = 1;
}

static void on_closed(uv_handle_t *h) {
    fswatch *w = h->data;
    free(w->names);
    free(w);
}

/* open(dir, token) -> watcher | nil, err */
static int fswatch_open(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    int         token = (int)luaL_checkinteger(L, 2);
    void      **box = sonde_box_new(L, FSWATCH_MT);
    fswatch    *w = calloc(1, sizeof *w);
    if (!w) return luaL_error(L, "out of memory watching %s", dir);
    w->lp = sonde_binding_loop(L);
    w->token = token;
    int rc = uv_fs_event_init(&w->lp->uv, &w->ev);
    if (rc == 0) {
        w->ev.data = w;
        rc = uv_fs_event_start(&w->ev, on_change, dir, 0);
        if (rc < 0) uv_close((uv_handle_t *)&w->ev, on_closed);
    } else {
        free(w);
    }
    if (rc < 0) return sonde_binding_fail(L, rc);
    *box = w;
    return 1;
}

/* take() -> {name, ...} */
static int fswatch_take(lua_State *L) {
    fswatch *w = sonde_box_check(L, FSWATCH_MT, "sonde.c.fswatch: the watcher is closed");
    lua_newtable(L);
    lua_newtable(L); /* seen names, to drop repeats */
    int n = 0;
    for (size_t at = 0; at < w->len; at += strlen(w->names + at) + 1) {
        lua_pushstring(L, w->names + at);
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        int seen = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (seen) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -1);
        lua_pushboolean(L, 1);
        lua_rawset(L, -4);
        lua_rawseti(L, -3, ++n);
    }
    lua_pop(L, 1);
    w->len = 0;
    w->signalled = 0;
    return 1;
}

/* close(), also __gc */
static int fswatch_close(lua_State *L) {
    fswatch *w = sonde_box_take(L, FSWATCH_MT);
    if (w) uv_close((uv_handle_t *)&w->ev, on_closed);
    return 0;
}

int luaopen_sonde_c_fswatch(lua_State *L) {
    static const luaL_Reg methods[] = {SONDE_FN(fswatch, take), SONDE_FN(fswatch, close), {NULL, NULL}};
    static const luaL_Reg funcs[] = {SONDE_FN(fswatch, open), {NULL, NULL}};
    return sonde_binding_family(L, FSWATCH_MT, methods, fswatch_close, funcs);
}
