/* sonde.c — the host: Lua state, loop, preloads, protected calls, signals. */
#define _GNU_SOURCE
#include "sonde.h"

#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/resource.h>

#include "binding.h"
#include "capture.h"
#include "embedded.h"
#include "heap.h"
#include "http.h"
#include "journal.h"
#include "orphans.h"
#include "process.h"
#include "protect.h"
#include "signals.h"

int luaopen_cjson(lua_State *L);

struct sonde {
    lua_State  *L;
    sonde_heap *heap; /* the arena of L's blocks; NULL: LuaJIT's own allocator */
    sonde_loop  loop;
    double      stop_grace;
    int         handles_signals;
};

/* ------------------------------------------------------------- signals */

static sonde_loop *signal_loop; /* the host that handles SIGINT/SIGTERM */

/* First signal: wake the loop so Lua stops scheduling and cleans up.
 * Second: stop every child at once and leave (async-signal-safe calls only). */
static void on_stop_signal(int sig, siginfo_t *info, void *ctx) {
    (void)info;
    (void)ctx;
    sonde_journal_note_stop(); /* in a protected run: an image a test's death restarts stops the run too */
    if (++signal_loop->interrupts >= 2) {
        sonde_proc_kill_all_now();
        sonde_protect_off(); /* this exit is no test's death */
        _exit(128 + sig);
    }
    uv_async_send(&signal_loop->interrupt);
}

static void install_signals(sonde_t *S) {
    signal_loop = &S->loop;
    sonde_signal_catch(SIGINT, on_stop_signal, NULL);
    sonde_signal_catch(SIGTERM, on_stop_signal, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed socket is an error result, not a death */
    sonde_orphans_adopt(1);   /* the process is ours: its descendants' orphans too */
    S->handles_signals = 1;
}

static void restore_signals(sonde_t *S) {
    if (!S->handles_signals) return;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sonde_orphans_adopt(0);
    signal_loop = NULL;
}

/* ------------------------------------------------------------- modules */

/* Loads an embedded chunk; its upvalue is the index into sonde_embedded. */
static int load_embedded(lua_State *L) {
    const sonde_chunk *c = &sonde_embedded[lua_tointeger(L, lua_upvalueindex(1))];
    if (luaL_loadbuffer(L, (const char *)c->data, c->size, c->name) != 0) return lua_error(L);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

static void preload_embedded(lua_State *L) {
    lua_getfield(L, LUA_GLOBALSINDEX, "package");
    lua_getfield(L, -1, "preload");
    for (int i = 0; sonde_embedded[i].module; i++) {
        lua_pushinteger(L, i);
        lua_pushcclosure(L, load_embedded, 1);
        lua_setfield(L, -2, sonde_embedded[i].module);
    }
    lua_pop(L, 2);
}

/* Development mode: modules come from dir/sonde/NAME.lua on package.path. */
static void prepend_lua_path(lua_State *L, const char *dir) {
    lua_getfield(L, LUA_GLOBALSINDEX, "package");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}

void sonde_preload(sonde_t *S, const char *name, lua_CFunction open) {
    lua_getfield(S->L, LUA_GLOBALSINDEX, "package");
    lua_getfield(S->L, -1, "preload");
    lua_pushcfunction(S->L, open);
    lua_setfield(S->L, -2, name);
    lua_pop(S->L, 2);
}

/* ------------------------------------------------------ protected calls */

/* Message handler: adds a traceback to string errors (as luajit.c does) and
 * leaves other values to the Lua side, which knows how to describe them. */
static int traceback(lua_State *L) {
    if (!lua_isstring(L, 1)) return 1;
    lua_getfield(L, LUA_GLOBALSINDEX, "debug");
    lua_getfield(L, -1, "traceback");
    lua_pushvalue(L, 1);
    lua_pushinteger(L, 2);
    lua_call(L, 2, 1);
    return 1;
}

/* Calls require(module)[fn] with the nargs values on the stack under a
 * traceback handler and returns its integer result as the exit code. A host
 * failure (which is a bug in sonde, not user code) is printed and returns 2. */
static int call_module(sonde_t *S, const char *module, const char *fn, int nargs) {
    lua_State *L = S->L;
    int        base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_getfield(L, LUA_GLOBALSINDEX, "require");
    lua_pushstring(L, module);
    int rc = lua_pcall(L, 1, 1, base + nargs + 1);
    if (rc == 0) {
        lua_getfield(L, -1, fn);
        lua_remove(L, -2);
        lua_insert(L, base + 1);
        lua_insert(L, base + 1); /* stack: handler, fn, args... */
        rc = lua_pcall(L, nargs, 1, base + 1);
    }
    int code = 2;
    if (rc != 0)
        dprintf(sonde_capture_real_fd(2), "sonde: internal error: %s\n", /* even from inside a captured run */
                lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
    else
        code = (int)lua_tointeger(L, -1);
    lua_settop(L, base);
    return code;
}

static int call_host(sonde_t *S, const char *fn, int nargs) { return call_module(S, "sonde.boot.host", fn, nargs); }

static void push_strings(lua_State *L, const char *const *list, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, list[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* Calls the host's fn with the nargs values pushed already and, after
 * them, the command line's arguments as an array. */
static int call_host_with_argv(sonde_t *S, const char *fn, int nargs, int argc, char **argv) {
    push_strings(S->L, (const char *const *)argv, argc);
    return call_host(S, fn, nargs + 1);
}

int sonde_run_file(sonde_t *S, const char *path, int argc, char **argv) {
    lua_pushstring(S->L, path);
    return call_host_with_argv(S, "run_file", 1, argc, argv);
}

int sonde_run_lua(sonde_t *S, int argc, char **argv) { return call_host_with_argv(S, "run_lua", 0, argc, argv); }

int sonde_run_specs(sonde_t *S, const char *const *paths, int npaths, const sonde_spec_opts *o) {
    push_strings(S->L, paths, npaths);
    push_strings(S->L, o ? o->args : NULL, o ? o->nargs : 0);
    int rc = call_host(S, "run_specs", 2);
    if (sonde_proc_is_copy()) sonde_exit(S, rc); /* a --jobs worker forked in there: its run ends here */
    return rc;
}

int sonde_run_repl(sonde_t *S) { return call_module(S, "sonde.repl", "main", 0); }

int sonde_run_live(sonde_t *S, const char *path, int argc, char **argv) {
    lua_pushstring(S->L, path);
    return call_host_with_argv(S, "run_live", 1, argc, argv);
}

int sonde_run_load(sonde_t *S, int argc, char **argv) { return call_host_with_argv(S, "run_load", 0, argc, argv); }

/* ------------------------------------------------------------ life cycle */

static int open_libs(lua_State *L) {
    sonde_t *S = lua_touserdata(L, 1);
    luaL_openlibs(L);
    lua_pushlightuserdata(L, &S->loop);
    lua_setfield(L, LUA_REGISTRYINDEX, SONDE_LOOP_KEY);
    const char *dir = lua_tostring(L, 2);
    if (dir && *dir)
        prepend_lua_path(L, dir);
    else
        preload_embedded(L);
    sonde_preload(S, "sonde.c.loop", luaopen_sonde_c_loop);
    sonde_preload(S, "sonde.c.process", luaopen_sonde_c_process);
    sonde_preload(S, "sonde.c.http", luaopen_sonde_c_http);
    sonde_preload(S, "sonde.c.server", luaopen_sonde_c_server);
    sonde_preload(S, "sonde.c.watchdog", luaopen_sonde_c_watchdog);
    sonde_preload(S, "sonde.c.repl", luaopen_sonde_c_repl);
    sonde_preload(S, "sonde.c.debug", luaopen_sonde_c_debug);
    sonde_preload(S, "sonde.c.journal", luaopen_sonde_c_journal);
    sonde_preload(S, "sonde.c.capture", luaopen_sonde_c_capture);
    sonde_preload(S, "sonde.c.redis", luaopen_sonde_c_redis);
    sonde_preload(S, "sonde.c.histogram", luaopen_sonde_c_histogram);
    sonde_preload(S, "sonde.c.coverage", luaopen_sonde_c_coverage);
    sonde_preload(S, "sonde.c.fswatch", luaopen_sonde_c_fswatch);
    sonde_preload(S, "sonde.c.keys", luaopen_sonde_c_keys);
    sonde_preload(S, "cjson", luaopen_cjson);
    return 0;
}

/* Process-wide set-up, once: the soft limit on open files raised to the
 * hard one, since thousands of requests in flight need thousands of
 * sockets. (libcurl is loaded, and its globals set up, at first use.) */
static void init_process_once(void) {
    static int done;
    if (done++) return;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

sonde_t *sonde_new(const sonde_opts *opts) {
    init_process_once();
    sonde_t *S = calloc(1, sizeof *S);
    if (!S) return NULL;
    if (sonde_loop_init(&S->loop) != 0 || !(S->L = sonde_heap_newstate(&S->heap))) {
        free(S);
        return NULL;
    }
    S->stop_grace = opts && opts->stop_grace > 0 ? opts->stop_grace : 2.0;
    const char *dir = opts && opts->lua_path ? opts->lua_path : getenv("SONDE_LUA_PATH");
    lua_pushcfunction(S->L, open_libs);
    lua_pushlightuserdata(S->L, S);
    lua_pushstring(S->L, dir);
    if (lua_pcall(S->L, 2, 0, 0) != 0) {
        fprintf(stderr, "sonde: cannot start: %s\n", lua_tostring(S->L, -1));
        sonde_free(S);
        return NULL;
    }
    if (!opts || opts->handle_signals) install_signals(S);
    return S;
}

lua_State *sonde_lua(sonde_t *S) { return S->L; }

#if defined(__SANITIZE_ADDRESS__)
#define SONDE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SONDE_ASAN 1
#endif
#endif

void sonde_exit(sonde_t *S, int rc) {
#ifdef SONDE_ASAN
    sonde_free(S);
#else
    if (S) {
        sonde_proc_stop_all(&S->loop, S->stop_grace);
        restore_signals(S);
    }
#endif
    exit(rc); /* flushes stdio, as lua_close would have through the files' __gc */
}

void sonde_free(sonde_t *S) {
    if (!S) return;
    sonde_proc_stop_all(&S->loop, S->stop_grace);
    if (S->L) lua_close(S->L); /* releases transfers Lua still holds */
    sonde_heap_free(S->heap);
    sonde_http_free(&S->loop);
    restore_signals(S);
    sonde_loop_close(&S->loop);
    free(S);
}
