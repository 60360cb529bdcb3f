/* examples/embed: a C program that links libsonde, adds its own native
 * module ("greeter") and runs a Lua scenario that uses it as a task.
 *
 * usage: embed_example scenario.lua */
#include <lauxlib.h>
#include <stdio.h>

#include "sonde.h"

/* greeter.greet(name) -> "hello, NAME" */
static int greet(lua_State *L) {
    lua_pushfstring(L, "hello, %s", luaL_checkstring(L, 1));
    return 1;
}

static int luaopen_greeter(lua_State *L) {
    static const luaL_Reg funcs[] = {{"greet", greet}, {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, funcs);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s scenario.lua\n", argv[0]);
        return 2;
    }
    sonde_t *S = sonde_new(NULL);
    if (!S) return 2;
    sonde_preload(S, "greeter", luaopen_greeter);
    int rc = sonde_run_file(S, argv[1], argc - 2, argv + 2);
    sonde_free(S);
    return rc;
}
