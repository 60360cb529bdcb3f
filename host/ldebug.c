/* ldebug.c — sonde.c.debug: what the spec DSL asks of the call stack.
 *
 * Every describe/it/hook call records its file and line. debug.getinfo
 * builds a table for that, one per call: in C the same answer costs no
 * allocation (the path is an interned string that already exists). */
#include <string.h>

#include "binding.h"

/* where(level) -> path, line of the function `level` calls up from the
 * caller of where (1: whoever called the function calling where), as
 * debug.getinfo(level + 1, "Sl") would give them: the whole path of a file
 * chunk (short_src cuts long ones), short_src otherwise; "?", 0 past the
 * bottom of the stack. */
static int debug_where(lua_State *L) {
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

int luaopen_sonde_c_debug(lua_State *L) {
    static const luaL_Reg funcs[] = {SONDE_FN(debug, where), {NULL, NULL}};
    return sonde_binding_module(L, funcs);
}
