/* binding.h — internal: what the native Lua modules share.
 *
 * Two error channels, as in luv: misuse raises; a runtime failure returns
 * nil and a message (sonde_binding_error, sonde_binding_fail). A C object
 * handed to Lua lives in a box: a userdata holding one pointer, NULL once
 * closed or collected; the release function a family's close() and __gc
 * hand it to takes NULL as free() does. */
#ifndef SONDE_BINDING_H
#define SONDE_BINDING_H

#include <lauxlib.h>
#include <lua.h>

#include "loop.h"

/* Registry key of the lightuserdata that points at the host's sonde_loop. */
#define SONDE_LOOP_KEY "sonde.loop"

/* sonde.c.loop's functions by concern (lfs.c, lhash.c, lmisc.c), which
 * luaopen_sonde_c_loop (lloop.c) registers beside the timers'. */
extern const luaL_Reg sonde_loop_fs_funcs[];
extern const luaL_Reg sonde_loop_hash_funcs[];
extern const luaL_Reg sonde_loop_misc_funcs[];

/* The loop of the host that owns L; raises when L has none. */
sonde_loop *sonde_binding_loop(lua_State *L);

/* An entry of a luaL_Reg table: Lua's `name` for the C function
 * prefix_name, so that a binding is named after its Lua name (as luv's are
 * after the calls they wrap) and the name is written once. */
#define SONDE_FN(prefix, name)                                                                                         \
    { #name, prefix##_##name }

/* Creates metatable `mt` with `methods` as its __index and `gc` as its
 * __gc, and leaves the stack as it was. */
static inline void sonde_binding_class(lua_State *L, const char *mt, const luaL_Reg *methods, lua_CFunction gc) {
    luaL_newmetatable(L, mt);
    lua_newtable(L);
    luaL_register(L, NULL, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}

/* Pushes a module's table of funcs: what a luaopen_sonde_c_* returns. */
static inline int sonde_binding_module(lua_State *L, const luaL_Reg *funcs) {
    lua_newtable(L);
    luaL_register(L, NULL, funcs);
    return 1;
}

/* Keeps argument 1 in the registry under `key`; raises unless it is of
 * type `type`: how the Lua half hands a module what C uses later (a
 * function to call, a metatable to give). */
static inline void sonde_binding_keep(lua_State *L, int type, const char *key) {
    luaL_checktype(L, 1, type);
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
}

/* What luaopen_sonde_c_* returns for a module of one handle family: the
 * family's metatable (sonde_binding_class), then the module's table. */
static inline int sonde_binding_family(lua_State *L, const char *mt, const luaL_Reg *methods, lua_CFunction gc,
                                       const luaL_Reg *funcs) {
    sonde_binding_class(L, mt, methods, gc);
    return sonde_binding_module(L, funcs);
}

/* Anchors in the registry, under `key`, a userdata whose __gc is `gc`: a
 * module's way to run `gc` when the state closes. */
static inline void sonde_binding_on_close(lua_State *L, const char *key, lua_CFunction gc) {
    lua_newuserdata(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
}

/* Pushes a new box of metatable `mt` holding NULL; the caller stores the
 * pointer once the object exists, so a raise before that leaks nothing. */
static inline void **sonde_box_new(lua_State *L, const char *mt) {
    void **box = lua_newuserdata(L, sizeof *box);
    *box = NULL;
    luaL_getmetatable(L, mt);
    lua_setmetatable(L, -2);
    return box;
}

/* The pointer in the box of metatable `mt` at index 1; raises `closed` (what
 * the user did wrong) when the box is empty. */
static inline void *sonde_box_check(lua_State *L, const char *mt, const char *closed) {
    void *p = *(void **)luaL_checkudata(L, 1, mt);
    if (!p) luaL_error(L, "%s", closed);
    return p;
}

/* Empties the box at index 1 and returns what it held (NULL when it was
 * empty already): the start of every close() and __gc. */
static inline void *sonde_box_take(lua_State *L, const char *mt) {
    void **box = luaL_checkudata(L, 1, mt);
    void  *p = *box;
    *box = NULL;
    return p;
}

/* Field `key` of the options table at index 1 as a number, or def when it
 * is nil; raises naming the field when it is something else. */
static inline double sonde_binding_optnumber(lua_State *L, const char *key, double def) {
    lua_getfield(L, 1, key);
    int    t = lua_type(L, -1);
    double v = t == LUA_TNIL ? def : lua_tonumber(L, -1);
    if (t != LUA_TNIL && !lua_isnumber(L, -1))
        luaL_error(L, "option '%s' must be a number, got %s", key, lua_typename(L, t));
    lua_pop(L, 1);
    return v;
}

/* The runtime-failure return: pushes nil and message. */
static inline int sonde_binding_error(lua_State *L, const char *message) {
    lua_pushnil(L);
    lua_pushstring(L, message);
    return 2;
}

/* The runtime-failure return of a libuv error: nil and its message. */
static inline int sonde_binding_fail(lua_State *L, int uv_error) {
    return sonde_binding_error(L, uv_strerror(uv_error));
}

/* The return of a call that has nothing to hand back but may fail: true
 * when uv_rc is 0, else nil and the libuv error's message. */
static inline int sonde_binding_done(lua_State *L, int uv_rc) {
    if (uv_rc != 0) return sonde_binding_fail(L, uv_rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* The end of a constructor: stores p in the box on top of the stack and
 * returns the box; when p is NULL, returns nil and err (why it is). */
static inline int sonde_box_fill(lua_State *L, void **box, void *p, const char *err) {
    *box = p;
    return p ? 1 : sonde_binding_error(L, err);
}

struct sonde_httpreq;

/* Pushes a parsed request as the server's take() hands it to Lua (5 values):
 * method, target, {lower-case name = value}, body, keep_alive. The fuzz targets
 * push theirs the same way. */
void sonde_push_request(lua_State *L, const struct sonde_httpreq *r);

int luaopen_sonde_c_loop(lua_State *L);
int luaopen_sonde_c_process(lua_State *L);
int luaopen_sonde_c_http(lua_State *L);
int luaopen_sonde_c_server(lua_State *L);
int luaopen_sonde_c_watchdog(lua_State *L);
int luaopen_sonde_c_repl(lua_State *L);
int luaopen_sonde_c_debug(lua_State *L);
int luaopen_sonde_c_journal(lua_State *L);
int luaopen_sonde_c_capture(lua_State *L);
int luaopen_sonde_c_redis(lua_State *L);
int luaopen_sonde_c_histogram(lua_State *L);
int luaopen_sonde_c_coverage(lua_State *L);
int luaopen_sonde_c_fswatch(lua_State *L);
int luaopen_sonde_c_keys(lua_State *L);

#endif
