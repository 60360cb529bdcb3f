/* lspec.c — sonde.c.spec: what the spec runner asks of C, per test.
 *
 * where(): every describe/it/hook call records its file and line;
 * debug.getinfo builds a table for that, one per call, where C answers
 * without allocating (the path is an interned string that exists already).
 * plain_same(): the deep comparison behind a passing assert.are.same; in
 * Lua its loops kept LuaJIT from compiling the assertion's call path. */
#include <string.h>

#include "binding.h"

/* where(level) -> path, line of the function `level` calls up from the
 * caller of where (1: whoever called the function calling where), as
 * debug.getinfo(level + 1, "Sl") would give them: the whole path of a file
 * chunk (short_src cuts long ones), short_src otherwise; "?", 0 past the
 * bottom of the stack. */
static int spec_where(lua_State *L) {
    int       level = (int)luaL_checkinteger(L, 1);
    lua_Debug ar;
    if (level < 0 || !lua_getstack(L, level + 1, &ar) || !lua_getinfo(L, "Sl", &ar)) {
        lua_pushliteral(L, "?");
        lua_pushinteger(L, 0);
        return 2;
    }
    lua_pushstring(L, ar.source[0] == '@' ? ar.source + 1 : ar.short_src);
    lua_pushinteger(L, ar.currentline > 0 ? ar.currentline : 0);
    return 2;
}

/* Past this depth a comparison cannot tell (a cycle, or a table too deep
 * to be worth it): luassert decides. */
#define MAX_DEPTH 64

/* 1: equal, 0: different, -1: cannot tell (a metatable, too deep). a and b
 * are absolute stack indexes. */
static int same_values(lua_State *L, int a, int b, int depth) {
    if (lua_type(L, a) != LUA_TTABLE || lua_type(L, b) != LUA_TTABLE) return lua_equal(L, a, b);
    if (lua_getmetatable(L, a) || lua_getmetatable(L, b)) {
        lua_pop(L, 1);
        return -1;
    }
    if (lua_rawequal(L, a, b)) return 1;
    if (depth > MAX_DEPTH) return -1;
    luaL_checkstack(L, 4, "comparing tables");
    int verdict = 1;
    lua_pushnil(L);
    while (verdict == 1 && lua_next(L, a)) { /* key at -2, value at -1 */
        int v = lua_gettop(L);
        lua_pushvalue(L, v - 1);
        lua_rawget(L, b); /* b[key] at v + 1 */
        if (lua_isnil(L, v + 1))
            verdict = 0;
        else if (lua_type(L, v) == LUA_TTABLE || !lua_equal(L, v, v + 1))
            verdict = same_values(L, v, v + 1, depth + 1);
        lua_settop(L, v - 1); /* keep the key for lua_next */
    }
    if (verdict != 1) {
        lua_pop(L, 1); /* the key of the iteration left early */
        return verdict;
    }
    lua_pushnil(L);
    while (lua_next(L, b)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawget(L, a);
        int missing = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (missing) {
            lua_pop(L, 1);
            return 0;
        }
    }
    return 1;
}

/* plain_same(a, b) -> true when luassert's deepcompare surely calls them
 * equal: tables without metatables, compared key by key; false when they
 * surely differ; nil when it cannot tell (a metatable, a deep or cyclic
 * table), for luassert to decide. Other values compare as == does. */
static int spec_plain_same(lua_State *L) {
    lua_settop(L, 2);
    int verdict = same_values(L, 1, 2, 1);
    if (verdict < 0)
        lua_pushnil(L);
    else
        lua_pushboolean(L, verdict);
    return 1;
}

int luaopen_sonde_c_spec(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"where", spec_where},
        {"plain_same", spec_plain_same},
        {NULL, NULL},
    };
    lua_newtable(L);
    luaL_register(L, NULL, funcs);
    return 1;
}
