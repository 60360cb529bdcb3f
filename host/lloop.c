/* lloop.c — sonde.c.loop: the Lua binding of loop.c (timers, clock, poll).
 * The module also holds what lfs.c (files), lhash.c (hashing) and lmisc.c
 * (process facts) register into it, one file per concern as luv splits.
 *
 * Misuse (a wrong argument type) raises; nothing here can fail at run time
 * except memory, which raises too. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <errno.h>
#include <math.h>
#include <unistd.h>

#include "binding.h"
#include "sonde.h"

sonde_loop *sonde_binding_loop(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, SONDE_LOOP_KEY);
    sonde_loop *lp = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!lp) luaL_error(L, "sonde: this Lua state has no sonde loop");
    return lp;
}

/* timer_start(delay[, holds[, real]]) -> id: the timer's completion comes
 * with the token -2 - id. holds marks a sleep (a real operation of its own)
 * rather than a timeout guarding another wait; real keeps the timer on real
 * time under a virtual clock. */
static int loop_timer_start(lua_State *L) {
    double delay = luaL_checknumber(L, 1);
    int    flags = (lua_toboolean(L, 2) ? SONDE_TIMER_HOLDS : 0) | (lua_toboolean(L, 3) ? SONDE_TIMER_REAL : 0);
    int    id = sonde_timer_start(sonde_binding_loop(L), delay, flags);
    if (id < 0) return luaL_error(L, "out of memory starting a timer");
    lua_pushinteger(L, id);
    return 1;
}

/* timer_stop(id) */
static int loop_timer_stop(lua_State *L) {
    sonde_timer_stop(sonde_binding_loop(L), (int)luaL_checkinteger(L, 1));
    return 0;
}

/* poll(into, may_block) -> n: stores token, a, b of each completion at
 * into[3i-2], into[3i-1], into[3i]; n is -1 when the loop is idle. */
static int loop_poll(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    sonde_loop *lp = sonde_binding_loop(L);
    int         n = sonde_loop_poll(lp, lua_toboolean(L, 2));
    for (int i = 0; i < lp->done_len; i++) {
        lua_pushinteger(L, lp->done[i].token);
        lua_rawseti(L, 1, 3 * i + 1);
        lua_pushnumber(L, lp->done[i].a);
        lua_rawseti(L, 1, 3 * i + 2);
        lua_pushnumber(L, lp->done[i].b);
        lua_rawseti(L, 1, 3 * i + 3);
    }
    lp->done_len = 0;
    lua_pushinteger(L, n);
    return 1;
}

static int loop_now(lua_State *L) {
    lua_pushnumber(L, sonde_loop_now(sonde_binding_loop(L)));
    return 1;
}

static int loop_time(lua_State *L) {
    lua_pushnumber(L, sonde_loop_time(sonde_binding_loop(L)));
    return 1;
}

static int loop_real_now(lua_State *L) {
    lua_pushnumber(L, sonde_real_now());
    return 1;
}

/* set_virtual(on, start[, epoch]): epoch is what time() reads at start;
 * without it, time() goes on from the real epoch. */
static int loop_set_virtual(lua_State *L) {
    sonde_loop_set_virtual(sonde_binding_loop(L), lua_toboolean(L, 1), luaL_optnumber(L, 2, 0),
                           luaL_optnumber(L, 3, NAN));
    return 0;
}

/* advance(t): moves virtual time forward to t. */
static int loop_advance(lua_State *L) {
    sonde_loop_advance(sonde_binding_loop(L), luaL_checknumber(L, 1));
    return 0;
}

/* next_deadline() -> the active clock's earliest deadline, or nil; and how
 * many timers that clock has. */
static int loop_next_deadline(lua_State *L) {
    sonde_loop *lp = sonde_binding_loop(L);
    double      next = sonde_timer_next(lp);
    if (next < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, next);
    lua_pushinteger(L, sonde_timer_count(lp));
    return 2;
}

/* real_pending([delta]) -> count of real operations in flight, real sleeps
 * included; delta adds to the operations (process.lua counts its waits). */
static int loop_real_pending(lua_State *L) {
    sonde_loop *lp = sonde_binding_loop(L);
    lp->real_pending += (int)luaL_optinteger(L, 1, 0);
    lua_pushinteger(L, sonde_loop_real_pending(lp));
    return 1;
}

/* pop_due([limit=virtual now[, at=its deadline]]) -> token, or nil: under
 * virtual time, removes the earliest virtual timer when it is due by limit
 * and moves virtual time up to `at`. */
static int loop_pop_due(lua_State *L) {
    sonde_loop *lp = sonde_binding_loop(L);
    int         token;
    double      limit = luaL_optnumber(L, 1, lp->virtual_now), at = luaL_optnumber(L, 2, NAN);
    if (!sonde_timer_pop_due(lp, limit, at, &token)) return 0;
    lua_pushinteger(L, token);
    return 1;
}

/* timers() -> {{deadline=, token=, seq=, virtual=bool, holds=bool}, ...}:
 * every pending timer, unordered, for debugging views. */
static int loop_timers(lua_State *L) {
    sonde_loop *lp = sonde_binding_loop(L);
    lua_createtable(L, lp->heaps[0].len + lp->heaps[1].len, 0);
    int n = 0;
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < lp->heaps[c].len; i++) {
            int               id = lp->heaps[c].items[i];
            sonde_timer_slot *s = &lp->slots[id];
            lua_createtable(L, 0, 5);
            lua_pushnumber(L, s->deadline);
            lua_setfield(L, -2, "deadline");
            lua_pushinteger(L, SONDE_TIMER_TOKEN(id));
            lua_setfield(L, -2, "token");
            lua_pushnumber(L, (double)s->seq);
            lua_setfield(L, -2, "seq");
            lua_pushboolean(L, c == SONDE_CLOCK_VIRTUAL);
            lua_setfield(L, -2, "virtual");
            lua_pushboolean(L, s->holds);
            lua_setfield(L, -2, "holds");
            lua_rawseti(L, -2, ++n);
        }
    }
    return 1;
}

/* is_virtual() -> true while virtual time is active. */
static int loop_is_virtual(lua_State *L) {
    lua_pushboolean(L, sonde_binding_loop(L)->is_virtual);
    return 1;
}

int luaopen_sonde_c_loop(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"timer_start", loop_timer_start},
        {"timer_stop", loop_timer_stop},
        {"poll", loop_poll},
        {"now", loop_now},
        {"time", loop_time},
        {"real_now", loop_real_now},
        {"set_virtual", loop_set_virtual},
        {"advance", loop_advance},
        {"next_deadline", loop_next_deadline},
        {"real_pending", loop_real_pending},
        {"pop_due", loop_pop_due},
        {"timers", loop_timers},
        {"is_virtual", loop_is_virtual},
        {NULL, NULL},
    };
    sonde_binding_module(L, funcs);
    luaL_register(L, NULL, sonde_loop_fs_funcs);
    luaL_register(L, NULL, sonde_loop_hash_funcs);
    luaL_register(L, NULL, sonde_loop_misc_funcs);
    lua_pushinteger(L, SONDE_TOKEN_INTERRUPT);
    lua_setfield(L, -2, "TOKEN_INTERRUPT");
    lua_pushliteral(L, SONDE_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
