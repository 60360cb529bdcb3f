/* binding.h — internal: what the native Lua modules share. */
#ifndef SONDE_BINDING_H
#define SONDE_BINDING_H

#include <lauxlib.h>
#include <lua.h>

#include "loop.h"

/* Registry key of the lightuserdata that points at the host's sonde_loop. */
#define SONDE_LOOP_KEY "sonde.loop"

/* The loop of the host that owns L; raises when L has none. */
sonde_loop *sonde_binding_loop(lua_State *L);

int luaopen_sonde_c_loop(lua_State *L);
int luaopen_sonde_c_process(lua_State *L);
int luaopen_sonde_c_http(lua_State *L);
int luaopen_sonde_c_server(lua_State *L);

#endif
