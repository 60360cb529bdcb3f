/* lserver.c — sonde.c.server: the Lua binding of server.c.
 *
 * listen{...} returns a server; when its token completes, take() hands out
 * complete requests one by one and respond() answers them by id. Misuse
 * raises; a port that cannot be bound returns nil and the reason. */
#include <string.h>

#include "binding.h"
#include "server.h"

#define SERVER_MT "sonde.c.server"

static sonde_server *check_server(lua_State *L) { return sonde_box_check(L, SERVER_MT, "server already closed"); }

/* listen{host=, port=, token=, max_body=, max_header_count=,
 *        max_header_bytes=, request_timeout=, idle_timeout=}: the options
 * as sonde.server checked them (sonde.lib.options: a port, counts, seconds). */
static int server_listen(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    sonde_server_opts o = {0};
    lua_getfield(L, 1, "host");
    o.host = luaL_optstring(L, -1, "127.0.0.1");
    o.port = (int)sonde_binding_optnumber(L, "port", 0);
    o.token = (int)sonde_binding_optnumber(L, "token", 0);
    o.limits.max_body = (size_t)sonde_binding_optnumber(L, "max_body", 1 << 20);
    o.limits.max_header_count = (size_t)sonde_binding_optnumber(L, "max_header_count", 100);
    o.limits.max_header_bytes = (size_t)sonde_binding_optnumber(L, "max_header_bytes", 16384);
    o.request_timeout = sonde_binding_optnumber(L, "request_timeout", 30);
    o.idle_timeout = sonde_binding_optnumber(L, "idle_timeout", 60);
    void **box = sonde_box_new(L, SERVER_MT);
    char   err[256] = "out of memory";
    return sonde_box_fill(L, box, sonde_server_listen(sonde_binding_loop(L), &o, err, sizeof err), err);
}

static int server_port(lua_State *L) {
    lua_pushinteger(L, sonde_server_port(check_server(L)));
    return 1;
}

static void push_bytes(lua_State *L, const sonde_bytes *b) { lua_pushlstring(L, b->data ? b->data : "", b->len); }

/* Pushes a header name in lower case (names are ASCII tokens). */
static void push_lower(lua_State *L, const sonde_bytes *b) {
    luaL_Buffer buf;
    luaL_buffinit(L, &buf);
    for (size_t i = 0; i < b->len; i++) {
        char ch = b->data[i];
        luaL_addchar(&buf, ch >= 'A' && ch <= 'Z' ? (char)(ch + ('a' - 'A')) : ch);
    }
    luaL_pushresult(&buf);
}

/* Pushes {lower-case name = value}: a header sent more than once has its
 * values joined with ", " (RFC 9110 5.3). Lua looks names up in any case
 * through a metatable, and never walks a list to build this table. */
static void push_headers(lua_State *L, const sonde_httpreq *r) {
    lua_createtable(L, 0, (int)r->header_count);
    int headers = lua_gettop(L);
    for (size_t i = 0; i < r->header_count; i++) {
        push_lower(L, &r->names[i]);
        lua_pushvalue(L, -1);
        lua_rawget(L, headers);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            push_bytes(L, &r->values[i]);
        } else {
            lua_pushliteral(L, ", ");
            push_bytes(L, &r->values[i]);
            lua_concat(L, 3);
        }
        lua_rawset(L, headers);
    }
}

void sonde_push_request(lua_State *L, const sonde_httpreq *r) {
    lua_pushstring(L, sonde_httpreq_method(r));
    push_bytes(L, &r->url);
    push_headers(L, r);
    push_bytes(L, &r->body);
    lua_pushboolean(L, sonde_httpreq_keep_alive(r));
}

/* take() -> id, method, target, {lower-case name = value}, body, keep_alive | nil */
static int server_take(lua_State *L) {
    sonde_conn *c = sonde_server_take(check_server(L));
    if (!c) return 0;
    lua_pushnumber(L, (lua_Number)sonde_conn_id(c));
    sonde_push_request(L, sonde_conn_request(c));
    return 6;
}

/* respond(id, status, header_lines, body) -> true | false (client gone) */
static int server_respond(lua_State *L) {
    sonde_server *s = check_server(L);
    lua_Number    n = luaL_checknumber(L, 2);
    uint64_t      id = n >= 1 && n < 9007199254740992.0 ? (uint64_t)n : 0; /* 0: no connection */
    int           status = (int)luaL_checkinteger(L, 3);
    size_t        hlen, blen;
    const char   *headers = luaL_optlstring(L, 4, "", &hlen);
    const char   *body = luaL_optlstring(L, 5, "", &blen);
    if (status < 100 || status > 999) return luaL_error(L, "status must be a number from 100 to 999, got %d", status);
    lua_pushboolean(L, sonde_server_respond(s, id, status, headers, hlen, body, blen) == 0);
    return 1;
}

/* shutdown([token]) -> requests still being handled or answered; token
 * completes once none is (at once when none is now) */
static int server_shutdown(lua_State *L) {
    sonde_server *s = check_server(L);
    lua_pushinteger(L, sonde_server_shutdown(s, (int)luaL_optinteger(L, 2, 0)));
    return 1;
}

/* close(), also __gc: closes everything now and lets the memory go */
static int server_close(lua_State *L) {
    sonde_server *s = sonde_box_take(L, SERVER_MT);
    if (s) sonde_server_release(s);
    return 0;
}

int luaopen_sonde_c_server(lua_State *L) {
    static const luaL_Reg methods[] = {
        SONDE_FN(server, port),     SONDE_FN(server, take),  SONDE_FN(server, respond),
        SONDE_FN(server, shutdown), SONDE_FN(server, close), {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {SONDE_FN(server, listen), {NULL, NULL}};
    return sonde_binding_family(L, SERVER_MT, methods, server_close, funcs);
}
