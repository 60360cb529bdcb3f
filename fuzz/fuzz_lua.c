/* fuzz/fuzz_lua.c — libFuzzer harness for what sonde parses in Lua. Built
 * once per target (FUZZ_TARGET: json, events, signal, jobs, journal): each
 * input goes to that function of fuzz/targets.lua, in a sonde host made
 * once, the way the real code receives it: as a string (json, jobs), as a
 * POST through the server's own request parser (events, signal), or as the
 * records of the serial run's shared journal (journal).
 *
 * A finding is a crash, a sanitizer report, or any error the function
 * raises: it checks the rejections its code path makes and raises only when
 * sonde did something wrong. libFuzzer sees no coverage of LuaJIT's
 * interpreter or of Debian's lua-cjson (neither is instrumented), so a line
 * hook gives it Lua's: each step from one (chunk, line) to the next bumps a
 * counter in libFuzzer's extra-counters section. */
#define _GNU_SOURCE /* memmem */
#include <lauxlib.h>
#include <luajit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "httpreq.h"
#include "journal.h"
#include "sonde.h"

/* ------------------------------------------------------- Lua coverage */

#define LUA_EDGES (1 << 16)
__attribute__((section("__libfuzzer_extra_counters"), used)) static uint8_t lua_edges[LUA_EDGES];

static uintptr_t last_line; /* where the last step ended */

static void on_line(lua_State *L, lua_Debug *ar) {
    if (!lua_getinfo(L, "S", ar)) return;
    /* a chunk's name is one interned string: its address names the chunk */
    uintptr_t here = ((uintptr_t)ar->source * 2654435761u) ^ ((uintptr_t)ar->currentline * 40503u);
    lua_edges[(here ^ (last_line >> 1)) % LUA_EDGES]++;
    last_line = here;
}

/* -------------------------------------------------------------- inputs */

/* Pushes the input as a string; returns the number of values. */
static int push_string(lua_State *L, const uint8_t *data, size_t size) {
    lua_pushlstring(L, (const char *)data, size);
    return 1;
}

/* The input as a POST of its body, after header lines of its own when it
 * has a blank line: framed with the body's Content-Length (mutations keep
 * their framing) and parsed by httpreq as server.c parses a connection's
 * bytes, with the server's default limits. Pushes what take() hands to
 * Lua, or nothing when the parser refused it (the server answers those
 * itself). */
static int push_request(lua_State *L, const uint8_t *data, size_t size, const char *path) {
    const char *in = (const char *)data, *blank = memmem(in, size, "\r\n\r\n", 4);
    size_t      head_len = blank ? (size_t)(blank - in) + 2 : 0, body_len = size - (blank ? head_len + 2 : 0);
    sonde_bytes req = {0};
    char        line[128];
    snprintf(line, sizeof line, "POST %s HTTP/1.1\r\nHost: fuzz\r\n", path);
    sonde_bytes_add(&req, line, strlen(line));
    sonde_bytes_add(&req, in, head_len);
    snprintf(line, sizeof line, "Content-Length: %zu\r\n\r\n", body_len);
    sonde_bytes_add(&req, line, strlen(line));
    sonde_bytes_add(&req, in + size - body_len, body_len);

    sonde_httpreq_limits limits = {.max_header_count = 100, .max_header_bytes = 16384, .max_body = 1 << 20};
    sonde_httpreq        r;
    sonde_httpreq_init(&r, &limits);
    sonde_httpreq_feed(&r, req.data, req.len);
    int n = 0;
    if (r.complete && !r.error_status) {
        sonde_push_request(L, &r);
        n = 5;
    }
    sonde_httpreq_free(&r);
    free(req.data);
    return n;
}

/* The input as a runner that died in a test left the journal: its first
 * byte says which test (1 to 8), the rest are the records it wrote, which a
 * new runner reads from the shared memory (ljournal.c) and replays. Inputs
 * are far smaller (-max_len) than the journal's first 1 MiB. */
static int push_journal(const uint8_t *data, size_t size) {
    sonde_journal_head *h = sonde_journal();
    if (size < 1 || size > (1u << 20) - sizeof *h) return -1;
    h->resume_at = 1 + data[0] % 8;
    snprintf(h->how, sizeof h->how, "its process was killed by SIGSEGV");
    memcpy(h + 1, data + 1, size - 1);
    h->length = size - 1;
    return 0;
}

static int push_input(lua_State *L, const uint8_t *data, size_t size) {
    const char *t = FUZZ_TARGET;
    if (!strcmp(t, "events")) return push_request(L, data, size, "/events");
    if (!strcmp(t, "signal")) return push_request(L, data, size, "/signal");
    if (!strcmp(t, "journal")) return push_journal(data, size);
    return push_string(L, data, size);
}

/* ----------------------------------------------------------- libFuzzer */

static sonde_t   *host; /* made once, freed at exit (for the leak check) */
static lua_State *L;

static void free_host(void) { sonde_free(host); }

static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : lua_pushfstring(L, "(an error that is a %s)", luaL_typename(L, 1)), 1);
    return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (!strcmp(FUZZ_TARGET, "journal") && sonde_journal_create() != 0) abort();
    sonde_opts opts = {.handle_signals = 0};
    if (!(host = sonde_new(&opts))) abort();
    atexit(free_host);
    L = sonde_lua(host);
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF); /* line hooks need the interpreter */
    lua_pushcfunction(L, traceback);
    if (luaL_loadfile(L, FUZZ_TARGETS_LUA) != 0 || lua_pcall(L, 0, 1, -2) != 0) {
        fprintf(stderr, "fuzz_%s: %s\n", FUZZ_TARGET, lua_tostring(L, -1));
        abort();
    }
    lua_getfield(L, -1, FUZZ_TARGET);
    if (!lua_isfunction(L, -1)) {
        fprintf(stderr, "fuzz_%s: %s has no function %s\n", FUZZ_TARGET, FUZZ_TARGETS_LUA, FUZZ_TARGET);
        abort();
    }
    lua_replace(L, -2); /* stack: traceback, target */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lua_pushvalue(L, 2);
    int nargs = push_input(L, data, size);
    if (nargs < 0) {
        lua_settop(L, 2);
        return -1; /* not an input of this target: kept out of the corpus */
    }
    last_line = 0;
    lua_sethook(L, on_line, LUA_MASKLINE, 0);
    int rc = lua_pcall(L, nargs, 0, 1);
    lua_sethook(L, NULL, 0, 0);
    if (rc != 0) {
        fprintf(stderr, "fuzz_%s: %s\n", FUZZ_TARGET, lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, 2);
    return 0;
}
