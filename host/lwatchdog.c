/* lwatchdog.c — sonde.c.watchdog: stops Lua code that never yields.
 *
 * When an armed deadline passes, the watchdog thread (watchdog.c) sends a
 * signal to the Lua thread, whose handler installs a count hook, as luajit.c
 * does for Ctrl-C. The hook calls the Lua handler registered with
 * set_handler, which raises a timeout inside the test that is running (or
 * returns, when the code interrupted is not the test's). Compiled LuaJIT
 * traces do not run hooks, so the runner turns the JIT off for spec files;
 * code that still cannot be interrupted (C, or a compiled loop elsewhere) is
 * given `give_up` fires, then the process reports it and exits: a run that
 * stops with a clear line beats a CI job that hangs. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "binding.h"
#include "signals.h"
#include "capture.h"
#include "process.h"
#include "protect.h"
#include "watchdog.h"

#define HANDLER_KEY "sonde.watchdog.handler"
#define THREAD_KEY "sonde.watchdog.thread"
#define HOOK_COUNT 1000

static struct {
    lua_State *volatile L; /* hook target, anchored in the registry; NULL when closed */
    pthread_t    lua_thread;
    int          signum;
    int          give_up; /* fires before the process stops itself */
    volatile int hooked;
    lua_Hook     saved_hook; /* a user's hook (coverage...) to put back */
    int          saved_mask, saved_count;
    const char  *what, *name, *file; /* of the armed code, for the last words; */
    int          line;               /* the strings are anchored at refs[] */
    int          refs[3];
    double       timeout;
} lw;

/* ---------------------------------------------------------------- hooks */

/* Runs every HOOK_COUNT instructions once the deadline has passed; the Lua
 * handler decides whether the running code is the test's and raises there. */
static void watchdog_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_getfield(L, LUA_REGISTRYINDEX, HANDLER_KEY);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_call(L, 0, 0); /* a raised timeout unwinds into the interrupted code */
}

/* Puts back the hook that was there before. The signal is blocked meanwhile,
 * so a late fire cannot save our own hook as the user's. */
static void unhook(void) {
    lua_State *L = lw.L;
    if (!lw.hooked || !L) return;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, lw.signum);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    lw.hooked = 0;
    lua_sethook(L, lw.saved_hook, lw.saved_mask, lw.saved_count);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Signal handler on the Lua thread: only lua_sethook, which is safe here. */
static void on_signal(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)si, (void)uc;
    lua_State *L = lw.L;
    if (!L || lw.hooked) return;
    lw.saved_hook = lua_gethook(L);
    lw.saved_mask = lua_gethookmask(L);
    lw.saved_count = lua_gethookcount(L);
    lw.hooked = 1;
    lua_sethook(L, watchdog_hook, LUA_MASKCOUNT, HOOK_COUNT);
}

/* Flushes a stream unless someone holds it (the Lua thread, stuck). */
static void flush_if_free(FILE *f) {
    if (f && ftrylockfile(f) == 0) {
        fflush_unlocked(f);
        funlockfile(f);
    }
}

/* Last resort, on the watchdog thread: say what is stuck, stop the children
 * and leave. stdout goes to the test's captured output, the reporters' stream
 * and the words to the terminal. In a protected serial run (protect.c) the
 * step becomes an error saying so, and sonde restarts to go on with the run;
 * the execve from this thread ends the stuck one. */
static void stop_process(void) {
    char        msg[512], how[256];
    int         restarts = sonde_protect_armed();
    const char *next = restarts ? "it is an error, and sonde restarts itself to go on with the run"
                                : "stopping the run (with --jobs N only its worker would stop)";
    int         n = snprintf(msg, sizeof msg,
                             "sonde: %s '%s' (%s:%d) is still running after its %gs timeout and cannot be interrupted "
                                     "(it is in C code or JIT-compiled Lua, or it catches the timeout error); %s\n",
                             lw.what, lw.name, lw.file, lw.line, lw.timeout, next);
    /* snprintf is not async-signal-safe, but this is a thread, not a handler */
    snprintf(how, sizeof how,
             "was stopped after its %gs timeout: it could not be interrupted (it was in C code or JIT-compiled Lua, "
             "or it caught the timeout error)",
             lw.timeout);
    flush_if_free(stdout);
    flush_if_free(sonde_capture_terminal());
    if (n > 0) (void)!write(sonde_capture_real_fd(2), msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    if (restarts) sonde_protect_restart(how);
    sonde_proc_kill_all_now();
    sonde_protect_off();
    _exit(1);
}

static void on_fire(void *ud, int fires) {
    (void)ud;
    if (fires > lw.give_up) stop_process();
    union sigval v = {.sival_ptr = NULL};
    pthread_sigqueue(lw.lua_thread, lw.signum, v);
}

/* ------------------------------------------------------------ bindings */

/* Keeps the string at index idx alive (at refs[slot]) and returns it. */
static const char *anchored(lua_State *L, int idx, int slot) {
    const char *s = luaL_checkstring(L, idx);
    lua_pushvalue(L, idx);
    lua_rawseti(L, LUA_REGISTRYINDEX, lw.refs[slot]);
    return s;
}

/* arm(seconds, refire, give_up, what, name, file, line, timeout): the hook
 * comes `seconds` from now, again every `refire` seconds; after `give_up`
 * fires the process stops, naming the `what` called `name` at file:line
 * and its `timeout`. */
static int wd_arm(lua_State *L) {
    double seconds = luaL_checknumber(L, 1);
    double refire = luaL_checknumber(L, 2);
    int    give_up = (int)luaL_checkinteger(L, 3);
    sonde_watchdog_disarm();
    unhook();
    if (!lw.L) {
        lua_pushthread(L); /* anchored: hooks are global, any live thread will do */
        lua_setfield(L, LUA_REGISTRYINDEX, THREAD_KEY);
        lw.L = L;
        lw.lua_thread = pthread_self();
    }
    lw.what = anchored(L, 4, 0), lw.name = anchored(L, 5, 1), lw.file = anchored(L, 6, 2);
    lw.line = (int)luaL_checkinteger(L, 7);
    lw.timeout = luaL_optnumber(L, 8, seconds), lw.give_up = give_up;
    int rc = sonde_watchdog_start(on_fire, NULL);
    if (rc != 0) return luaL_error(L, "cannot start the watchdog thread: %s", strerror(rc));
    sonde_watchdog_arm(seconds, refire);
    return 0;
}

/* disarm(): also takes the hook away, putting back a user's own. */
static int wd_disarm(lua_State *L) {
    (void)L;
    sonde_watchdog_disarm();
    unhook();
    return 0;
}

/* unhook(): the handler calls it before raising, so the test's cleanup runs
 * without the hook; the next fire installs it again if the test goes on. */
static int wd_unhook(lua_State *L) {
    (void)L;
    unhook();
    return 0;
}

/* set_handler(fn) */
static int wd_set_handler(lua_State *L) {
    sonde_binding_keep(L, LUA_TFUNCTION, HANDLER_KEY);
    return 0;
}

/* The state is closing: no hook target any more, and no thread. */
static int wd_gc(lua_State *L) {
    (void)L;
    sonde_watchdog_stop();
    lw.hooked = 0;
    lw.L = NULL;
    return 0;
}

static void install_signal(void) {
    lw.signum = SIGRTMIN + 4;
    sonde_signal_catch(lw.signum, on_signal, NULL); /* no SA_RESTART: a blocked call returns, and the hook can run */
}

int luaopen_sonde_c_watchdog(lua_State *L) {
    static const luaL_Reg funcs[] = {
        SONDE_FN(wd, arm), SONDE_FN(wd, disarm), SONDE_FN(wd, unhook), SONDE_FN(wd, set_handler), {NULL, NULL},
    };
    install_signal();
    for (int i = 0; i < 3; i++) {
        lua_pushliteral(L, "");
        lw.refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    sonde_binding_module(L, funcs);
    sonde_binding_on_close(L, "sonde.watchdog.sentinel", wd_gc); /* stops the thread when the state closes */
    return 1;
}
