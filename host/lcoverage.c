/* lcoverage.c — sonde.c.coverage: line counts of the code under test.
 *
 * A line hook (lua_sethook, LUA_MASKLINE) counts, per chunk and line, the
 * lines the interpreter enters. Hooks are global in LuaJIT, so one hook
 * sees every coroutine. The first time a chunk runs, a Lua function (the
 * `decide` given to start) says whether it is under test; the answer is
 * kept by the chunk name's address, whose string is anchored in the
 * registry so that the address stays its own. A chunk under test has the
 * JIT turned off for the function that ran first (its main chunk, when the
 * chunk is loaded while the hook is on) and every function inside it:
 * compiled traces run no hooks, so their lines would go uncounted.
 *
 *   start(decide)   installs the hook (decide(source) -> boolean)
 *   stop()          removes it (when it is still the hook)
 *   take()          -> {[source] = {[line] = count}} of the chunks under
 *                      test counted since the last take; counts restart
 *
 * The watchdog (lwatchdog.c) saves and restores whatever hook is set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <luajit.h>

#include "binding.h"

#define DECIDE_KEY "sonde.runner.coverage.decide"
#define ANCHOR_KEY "sonde.runner.coverage.sources"

typedef struct cov_chunk {
    const char *source;  /* chunk name, anchored at ANCHOR_KEY */
    int         covered; /* decide() said it is under test */
    uint32_t   *hits;    /* by line; NULL until a line is counted */
    int         cap;     /* entries of hits */
} cov_chunk;

static struct {
    cov_chunk  *chunks;
    int         len, cap;
    int        *slots;    /* open addressing: chunk index + 1, 0 when empty */
    int         nslots;   /* a power of two */
    const char *last_src; /* the chunk of the previous line event */
    cov_chunk  *last;
    int         on;
} cov;

/* ---------------------------------------------------------------- chunks */

static unsigned slot_of(const char *p) { return (unsigned)(((uintptr_t)p >> 4) * 2654435761u); }

static int grow_slots(void) {
    int  n = cov.nslots ? cov.nslots * 2 : 64;
    int *slots = calloc((size_t)n, sizeof *slots);
    if (!slots) return -1;
    for (int i = 0; i < cov.len; i++) {
        unsigned h = slot_of(cov.chunks[i].source) & (unsigned)(n - 1);
        while (slots[h]) h = (h + 1) & (unsigned)(n - 1);
        slots[h] = i + 1;
    }
    free(cov.slots);
    cov.slots = slots;
    cov.nslots = n;
    return 0;
}

static cov_chunk *find(const char *source) {
    if (!cov.nslots) return NULL;
    unsigned h = slot_of(source) & (unsigned)(cov.nslots - 1);
    while (cov.slots[h]) {
        cov_chunk *c = &cov.chunks[cov.slots[h] - 1];
        if (c->source == source) return c;
        h = (h + 1) & (unsigned)(cov.nslots - 1);
    }
    return NULL;
}

/* Asks decide() about a chunk seen for the first time and keeps the
 * answer; a chunk under test loses the JIT for the running function and
 * every function inside it. Returns NULL when memory runs out. */
static cov_chunk *meet(lua_State *L, lua_Debug *ar) {
    if ((cov.len + 1) * 2 > cov.nslots && grow_slots() != 0) return NULL;
    if (cov.len == cov.cap) {
        int        cap = cov.cap ? cov.cap * 2 : 32;
        cov_chunk *chunks = realloc(cov.chunks, (size_t)cap * sizeof *chunks);
        if (!chunks) return NULL;
        cov.chunks = chunks;
        cov.cap = cap;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, ANCHOR_KEY);
    lua_pushstring(L, ar->source); /* the same interned string: its address is ar->source */
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    int covered = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, DECIDE_KEY);
    lua_pushstring(L, ar->source);
    if (lua_pcall(L, 1, 1, 0) == 0) covered = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (covered && lua_getinfo(L, "f", ar)) {
        luaJIT_setmode(L, -1, LUAJIT_MODE_ALLFUNC | LUAJIT_MODE_OFF);
        lua_pop(L, 1);
    }
    cov_chunk *c = &cov.chunks[cov.len++];
    *c = (cov_chunk){.source = ar->source, .covered = covered, .hits = NULL, .cap = 0};
    unsigned h = slot_of(c->source) & (unsigned)(cov.nslots - 1);
    while (cov.slots[h]) h = (h + 1) & (unsigned)(cov.nslots - 1);
    cov.slots[h] = cov.len;
    return c;
}

static void count(cov_chunk *c, int line) {
    if (line <= 0) return;
    if (line >= c->cap) {
        int cap = c->cap ? c->cap : 64;
        while (cap <= line) cap *= 2;
        uint32_t *hits = realloc(c->hits, (size_t)cap * sizeof *hits);
        if (!hits) return;
        memset(hits + c->cap, 0, (size_t)(cap - c->cap) * sizeof *hits);
        c->hits = hits;
        c->cap = cap;
    }
    if (c->hits[line] < UINT32_MAX) c->hits[line]++;
}

static void cov_hook(lua_State *L, lua_Debug *ar) {
    if (ar->event != LUA_HOOKLINE || !lua_getinfo(L, "S", ar)) return;
    cov_chunk *c = cov.last;
    if (ar->source != cov.last_src) {
        /* meet() may move the array: the index survives, the pointer not */
        c = find(ar->source);
        if (!c) c = meet(L, ar);
        if (!c) return;
        cov.last_src = ar->source;
        cov.last = c;
    }
    if (c->covered) count(c, ar->currentline);
}

/* ------------------------------------------------------------ bindings */

/* start(decide) */
static int cov_start(lua_State *L) {
    sonde_binding_keep(L, LUA_TFUNCTION, DECIDE_KEY);
    lua_getfield(L, LUA_REGISTRYINDEX, ANCHOR_KEY);
    if (lua_isnil(L, -1)) {
        lua_newtable(L);
        lua_setfield(L, LUA_REGISTRYINDEX, ANCHOR_KEY);
    }
    lua_pop(L, 1);
    cov.on = 1;
    lua_sethook(L, cov_hook, LUA_MASKLINE, 0);
    return 0;
}

/* stop() */
static int cov_stop(lua_State *L) {
    if (lua_gethook(L) == cov_hook) lua_sethook(L, NULL, 0, 0);
    cov.on = 0;
    return 0;
}

/* take() -> {[source] = {[line] = count}}; the counts start again */
static int cov_take(lua_State *L) {
    lua_newtable(L);
    for (int i = 0; i < cov.len; i++) {
        cov_chunk *c = &cov.chunks[i];
        if (!c->covered || !c->hits) continue;
        lua_pushstring(L, c->source);
        lua_newtable(L);
        for (int line = 1; line < c->cap; line++) {
            if (!c->hits[line]) continue;
            lua_pushnumber(L, (lua_Number)c->hits[line]);
            lua_rawseti(L, -2, line);
        }
        lua_rawset(L, -3);
        memset(c->hits, 0, (size_t)c->cap * sizeof *c->hits);
    }
    return 1;
}

int luaopen_sonde_c_coverage(lua_State *L) {
    static const luaL_Reg funcs[] = {SONDE_FN(cov, start), SONDE_FN(cov, stop), SONDE_FN(cov, take), {NULL, NULL}};
    return sonde_binding_module(L, funcs);
}
