/* lredis.c — sonde.c.redis: the Lua binding of redis.c.
 *
 * connect{...} starts a connection whose token completes on its events;
 * send(args, token, timeout, holds) starts a command whose token completes
 * with its reply, which reply() then converts. Misuse raises; a command that
 * cannot be sent returns nil and the reason. */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "binding.h"
#include "redis.h"

#define CONN_MT "sonde.c.redis.conn"
#define REQ_MT "sonde.c.redis.req"
/* Registry key of the metatable that errors nested in an array get. */
#define ERROR_CLASS_KEY "sonde.c.redis.error_class"

static sonde_redis_conn *check_conn(lua_State *L) { return sonde_box_check(L, CONN_MT, "redis connection closed"); }
static sonde_redis_req  *check_req(lua_State *L) { return sonde_box_check(L, REQ_MT, "redis request released"); }

/* connect{host=, port=, connect_timeout=, token=} -> conn | nil, err */
static int redis_connect(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    sonde_redis_opts o = {0};
    lua_getfield(L, 1, "host");
    o.host = luaL_checkstring(L, -1);
    o.port = (int)sonde_binding_optnumber(L, "port", 6379);
    o.connect_timeout = sonde_binding_optnumber(L, "connect_timeout", 0);
    o.token = (int)sonde_binding_optnumber(L, "token", 0);
    void **box = sonde_box_new(L, CONN_MT);
    char   err[256];
    return sonde_box_fill(L, box, sonde_redis_connect(sonde_binding_loop(L), &o, err, sizeof err), err);
}

/* state() -> "connecting" | "ready" | "down", why it is down */
static int conn_state(lua_State *L) {
    sonde_redis_conn        *c = check_conn(L);
    static const char *const names[] = {"connecting", "ready", "down"};
    lua_pushstring(L, names[sonde_redis_state(c)]);
    lua_pushstring(L, sonde_redis_error(c));
    return 2;
}

/* The command at index 2, an array of strings and numbers, as hiredis'
 * argv; the strings stay on the stack, in the table, while it is used. */
typedef struct command_args {
    int          argc;
    const char **argv;
    size_t      *lens;
} command_args;

static command_args check_args(lua_State *L) {
    luaL_checktype(L, 2, LUA_TTABLE);
    command_args a = {(int)lua_objlen(L, 2), NULL, NULL};
    if (a.argc == 0) luaL_error(L, "a redis command needs at least its name");
    a.argv = lua_newuserdata(L, a.argc * sizeof *a.argv); /* collected with the call */
    a.lens = lua_newuserdata(L, a.argc * sizeof *a.lens);
    for (int i = 0; i < a.argc; i++) {
        lua_rawgeti(L, 2, i + 1);
        int t = lua_type(L, -1);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            luaL_error(L, "argument %d of the redis command must be a string or a number, got %s", i + 1,
                       lua_typename(L, t));
        if (t == LUA_TNUMBER) { /* converted in the table, so the string lives as long as the call */
            lua_tostring(L, -1);
            lua_rawseti(L, 2, i + 1);
            lua_rawgeti(L, 2, i + 1);
        }
        a.argv[i] = lua_tolstring(L, -1, &a.lens[i]);
        lua_pop(L, 1);
    }
    return a;
}

/* send(args, token, timeout, holds) -> req | nil, err */
static int conn_send(lua_State *L) {
    sonde_redis_conn *c = check_conn(L);
    command_args      a = check_args(L);
    int               token = (int)luaL_checkinteger(L, 3);
    double            timeout = luaL_optnumber(L, 4, 0);
    int               holds = lua_toboolean(L, 5);
    void            **box = sonde_box_new(L, REQ_MT);
    char              err[256];
    return sonde_box_fill(L, box, sonde_redis_send(c, a.argc, a.argv, a.lens, token, timeout, holds, err, sizeof err),
                          err);
}

/* subscribe(args) -> true | nil, err: (P)SUBSCRIBE or (P)UNSUBSCRIBE */
static int conn_subscribe(lua_State *L) {
    sonde_redis_conn *c = check_conn(L);
    command_args      a = check_args(L);
    char              err[256];
    if (sonde_redis_subscribe(c, a.argc, a.argv, a.lens, err, sizeof err) != 0) return sonde_binding_error(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* Pushes a reply as a Lua value: strings and statuses as strings, integers
 * as numbers, arrays as tables. A nil inside an array is the lightuserdata
 * NULL (json.null), so the array keeps its length; an error inside one (a
 * transaction's) is a table {message=} of the error class. */
static void push_reply(lua_State *L, const sonde_redis_reply *r, int nested) {
    luaL_checkstack(L, 4, "redis reply nested too deep");
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, r->str ? r->str : "", r->len);
        return;
    case REDIS_REPLY_INTEGER:
        lua_pushnumber(L, (lua_Number)r->integer);
        return;
    case REDIS_REPLY_ARRAY:
        lua_createtable(L, (int)r->elements, 0);
        for (size_t i = 0; i < r->elements; i++) {
            push_reply(L, r->element[i], 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        return;
    case REDIS_REPLY_ERROR:
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, r->str ? r->str : "", r->len);
        lua_setfield(L, -2, "message");
        lua_getfield(L, LUA_REGISTRYINDEX, ERROR_CLASS_KEY);
        lua_setmetatable(L, -2);
        return;
    default: /* REDIS_REPLY_NIL */
        if (nested)
            lua_pushlightuserdata(L, NULL);
        else
            lua_pushnil(L);
    }
}

/* reply() -> value | nil, message, kind: kind is "redis" for the server's
 * error reply, "timeout" or "closed" when no reply came. */
static int req_reply(lua_State *L) {
    sonde_redis_req         *r = check_req(L);
    const sonde_redis_reply *reply = sonde_redis_req_reply(r);
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        lua_pushnil(L);
        lua_pushlstring(L, reply->str ? reply->str : "", reply->len);
        lua_pushliteral(L, "redis");
        return 3;
    }
    if (reply) {
        push_reply(L, reply, 0);
        return 1;
    }
    const char *why = sonde_redis_req_error(r);
    lua_pushnil(L);
    lua_pushstring(L, *why ? why : "no reply yet");
    lua_pushstring(L, strncmp(why, "timeout", 7) == 0 ? "timeout" : "closed");
    return 3;
}

/* release(), also __gc: lets go of the request (a reply still to come is
 * dropped when it arrives) */
static int req_release(lua_State *L) {
    sonde_redis_req_release(sonde_box_take(L, REQ_MT));
    return 0;
}

/* take() -> the oldest pub/sub push not taken yet, or nothing */
static int conn_take(lua_State *L) {
    sonde_redis_reply *r = sonde_redis_take_push(check_conn(L));
    if (!r) return 0;
    push_reply(L, r, 0);
    sonde_redis_reply_free(r);
    return 1;
}

/* close(), also __gc: commands still waiting fail with "closed" */
static int conn_close(lua_State *L) {
    sonde_redis_close(sonde_box_take(L, CONN_MT));
    return 0;
}

/* set_error_class(mt): the metatable of errors nested in arrays */
static int redis_set_error_class(lua_State *L) {
    sonde_binding_keep(L, LUA_TTABLE, ERROR_CLASS_KEY);
    return 0;
}

int luaopen_sonde_c_redis(lua_State *L) {
    static const luaL_Reg conn_methods[] = {SONDE_FN(conn, state), SONDE_FN(conn, send),  SONDE_FN(conn, subscribe),
                                            SONDE_FN(conn, take),  SONDE_FN(conn, close), {NULL, NULL}};
    static const luaL_Reg req_methods[] = {SONDE_FN(req, reply), SONDE_FN(req, release), {NULL, NULL}};
    static const luaL_Reg funcs[] = {SONDE_FN(redis, connect), SONDE_FN(redis, set_error_class), {NULL, NULL}};
    sonde_binding_class(L, CONN_MT, conn_methods, conn_close);
    sonde_binding_class(L, REQ_MT, req_methods, req_release);
    return sonde_binding_module(L, funcs);
}
