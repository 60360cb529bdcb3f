/* lprocess.c — sonde.c.process: the Lua binding of process.c.
 *
 * Misuse raises; a child that cannot be started returns nil and the reason,
 * so lua/sonde/process.lua can raise it at the user's line. */
#include <signal.h>
#include <string.h>

#include "binding.h"
#include "heap.h"
#include "process.h"

#define PROC_MT "sonde.c.process"
#define EXIT_WATCH_MT "sonde.c.exit_watch"

static sonde_proc *check_proc(lua_State *L) { return sonde_box_check(L, PROC_MT, "process handle already released"); }

/* Reads the string array field `name` of table 1 into a NULL-ended array
 * that borrows its strings. The array is a userdata and, like the table
 * that holds the strings, stays on the stack: nothing to free, even when a
 * later argument raises. */
static const char **string_list(lua_State *L, const char *name, int required) {
    lua_getfield(L, 1, name);
    if (lua_isnil(L, -1) && !required) return NULL;
    luaL_checktype(L, -1, LUA_TTABLE);
    int          n = (int)lua_objlen(L, -1);
    const char **list = lua_newuserdata(L, ((size_t)n + 1) * sizeof *list);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -2, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s[%d] must be a string", name, i + 1);
        list[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    list[n] = NULL;
    return list;
}

/* spawn{argv=, env_set=, env_unset=, cwd=, tail=, fd3=, token=} -> proc | nil, err */
static int proc_spawn(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    sonde_spawn_opts o = {0};
    o.tail_bytes = (size_t)sonde_binding_optnumber(L, "tail", 1 << 20);
    o.exit_token = (int)sonde_binding_optnumber(L, "token", 0);
    lua_getfield(L, 1, "fd3");
    o.fd3 = lua_toboolean(L, -1);
    lua_getfield(L, 1, "cwd");
    o.cwd = lua_tostring(L, -1); /* the string stays on the stack while used */
    o.argv = string_list(L, "argv", 1);
    o.env_set = string_list(L, "env_set", 0);
    o.env_unset = string_list(L, "env_unset", 0);
    if (!o.argv[0]) return sonde_binding_error(L, "argv must hold at least the command");
    void **box = sonde_box_new(L, PROC_MT);
    char   err[512];
    return sonde_box_fill(L, box, sonde_proc_spawn(sonde_binding_loop(L), &o, err, sizeof err), err);
}

/* fork{tokens=, tail=} -> the copies' handles, one a token | i, fd in copy
 * i (fd: where its results go) | nil, err. process.c's sonde_proc_fork. */
static int proc_fork(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t tail = (size_t)sonde_binding_optnumber(L, "tail", 1 << 20);
    int    tokens[SONDE_FORK_MAX], n = 0;
    lua_getfield(L, 1, "tokens");
    luaL_checktype(L, -1, LUA_TTABLE);
    for (; n < SONDE_FORK_MAX && n < (int)lua_objlen(L, -1); n++) {
        lua_rawgeti(L, -1, n + 1);
        tokens[n] = (int)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
    }
    sonde_proc *procs[SONDE_FORK_MAX];
    char        err[512];
    int results = -1, rc = sonde_proc_fork(sonde_binding_loop(L), n, tokens, tail, procs, &results, err, sizeof err);
    if (rc < 0) return sonde_binding_error(L, err);
    sonde_heap_forked(L); /* both sides */
    if (rc > 0) {
        lua_pushinteger(L, rc);
        lua_pushinteger(L, results);
        return 2;
    }
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        *sonde_box_new(L, PROC_MT) = procs[i];
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int proc_pid(lua_State *L) {
    lua_pushinteger(L, check_proc(L)->pid);
    return 1;
}

/* signal(signum) -> true | nil, err */
static int proc_signal(lua_State *L) {
    int rc = sonde_proc_signal(check_proc(L), (int)luaL_checkinteger(L, 2));
    if (rc != 0) return sonde_binding_error(L, strerror(-rc));
    lua_pushboolean(L, 1);
    return 1;
}

/* write(s) -> true | nil, err */
static int proc_write(lua_State *L) {
    size_t      len;
    const char *s = luaL_checklstring(L, 2, &len);
    return sonde_binding_done(L, sonde_proc_write(check_proc(L), s, len));
}

static int proc_close_stdin(lua_State *L) {
    sonde_proc_close_stdin(check_proc(L));
    return 0;
}

/* The tail is kept in one piece, oldest byte first: Lua copies it as is. */
static int push_tail(lua_State *L, const sonde_tail *t) {
    lua_pushlstring(L, t->data ? t->data : "", t->len);
    lua_pushnumber(L, (lua_Number)t->total);
    return 2;
}

/* stdout() / stderr() -> kept bytes, total bytes ever written */
static int proc_stdout(lua_State *L) { return push_tail(L, &check_proc(L)->streams[SONDE_STDOUT].tail); }
static int proc_stderr(lua_State *L) { return push_tail(L, &check_proc(L)->streams[SONDE_STDERR].tail); }

static const char *const stream_names[] = {"stdout", "stderr", "fd3", NULL};

/* read(stream, pos) -> bytes after pos, the position after them, bytes
 * after pos no longer kept, whether more may come. Positions count the
 * stream's bytes from its first; fd 3 forgets what it hands out. */
static int proc_read(lua_State *L) {
    sonde_proc *p = check_proc(L);
    int         which = luaL_checkoption(L, 2, NULL, stream_names);
    size_t      pos = (size_t)luaL_checknumber(L, 3), len, skipped;
    const char *data;
    size_t      next = sonde_proc_peek(p, which, pos, &data, &len, &skipped);
    lua_pushlstring(L, data, len);
    sonde_proc_consume(p, which, next);
    lua_pushnumber(L, (lua_Number)next);
    lua_pushnumber(L, (lua_Number)skipped);
    lua_pushboolean(L, !sonde_proc_stream_open(p, which));
    return 4;
}

/* notify(stream, token): token completes once, at the stream's next bytes
 * or its end (at once when it has ended) */
static int proc_notify(lua_State *L) {
    sonde_proc *p = check_proc(L);
    int         which = luaL_checkoption(L, 2, NULL, stream_names);
    sonde_proc_notify(p, which, (int)luaL_checkinteger(L, 3));
    return 0;
}

static int proc_gc(lua_State *L) {
    sonde_proc_release(sonde_box_take(L, PROC_MT));
    return 0;
}

/* watch_exit(pid, token) -> watch | false (no such process) | nil, err:
 * token completes once process pid, a child or not, has exited. */
static int proc_watch_exit(lua_State *L) {
    pid_t             pid = (pid_t)luaL_checkinteger(L, 1);
    int               token = (int)luaL_checkinteger(L, 2);
    void            **box = sonde_box_new(L, EXIT_WATCH_MT);
    sonde_exit_watch *w;
    int               rc = pid > 0 ? sonde_exit_watch_start(sonde_binding_loop(L), pid, token, &w) : UV_ESRCH;
    if (rc == UV_ESRCH) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (rc != 0) return sonde_binding_fail(L, rc);
    *box = w;
    return 1;
}

/* close() and __gc: stops watching (a completion already queued stays) */
static int exit_watch_close(lua_State *L) {
    sonde_exit_watch_close(sonde_box_take(L, EXIT_WATCH_MT));
    return 0;
}

static void push_signal_numbers(lua_State *L) {
    static const struct {
        const char *name;
        int         num;
    } sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
                {"TERM", SIGTERM}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"STOP", SIGSTOP},
                {"CONT", SIGCONT}, {"ABRT", SIGABRT}, {"SEGV", SIGSEGV}, {"PIPE", SIGPIPE}};
    lua_newtable(L);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        lua_pushinteger(L, sigs[i].num);
        lua_setfield(L, -2, sigs[i].name);
        lua_pushstring(L, sigs[i].name);
        lua_rawseti(L, -2, sigs[i].num);
    }
}

int luaopen_sonde_c_process(lua_State *L) {
    static const luaL_Reg methods[] = {SONDE_FN(proc, pid),         SONDE_FN(proc, signal), SONDE_FN(proc, write),
                                       SONDE_FN(proc, close_stdin), SONDE_FN(proc, stdout), SONDE_FN(proc, stderr),
                                       SONDE_FN(proc, read),        SONDE_FN(proc, notify), {NULL, NULL}};
    static const luaL_Reg watch_methods[] = {SONDE_FN(exit_watch, close), {NULL, NULL}};
    static const luaL_Reg funcs[] = {
        SONDE_FN(proc, spawn), SONDE_FN(proc, fork), SONDE_FN(proc, watch_exit), {NULL, NULL}};
    sonde_binding_class(L, PROC_MT, methods, proc_gc);
    sonde_binding_class(L, EXIT_WATCH_MT, watch_methods, exit_watch_close);
    sonde_binding_module(L, funcs);
    push_signal_numbers(L);
    lua_setfield(L, -2, "signals");
    return 1;
}
