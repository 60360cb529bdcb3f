/* lhttp.c — sonde.c.http: the Lua binding of http.c.
 *
 * request{...} starts a transfer and returns its handle; the Lua side waits
 * for the completion token it passed and then reads the response. Misuse
 * raises; a request that cannot start returns nil and the reason. */
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "http.h"

#define TRANSFER_MT "sonde.c.http.transfer"

static sonde_transfer *check_transfer(lua_State *L) {
    return sonde_box_check(L, TRANSFER_MT, "transfer already released");
}

static int opt_bool(lua_State *L, const char *key, int def) {
    lua_getfield(L, 1, key);
    int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Reads the "Name: value" strings of field `headers` into a curl list. */
static struct curl_slist *header_list(lua_State *L) {
    struct curl_slist *list = NULL;
    lua_getfield(L, 1, "headers");
    int n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        const char        *line = lua_tostring(L, -1);
        struct curl_slist *next = line ? curl_slist_append(list, line) : NULL;
        lua_pop(L, 1);
        if (!next) {
            curl_slist_free_all(list);
            lua_pop(L, 1);
            luaL_error(L, "headers[%d] must be a string of the form 'Name: value'", i);
        }
        list = next;
    }
    lua_pop(L, 1);
    return list;
}

/* request{method=, url=, headers=, body=, timeout=, connect_timeout=,
 *         verify=, follow=, http2=, max_body=, token=} -> transfer | nil, err */
static int http_request(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    char err[256] = "curl_multi_init failed";
    if (sonde_curl_load(err, sizeof err) != 0) return sonde_binding_error(L, err); /* before any curl_* call */
    sonde_request r = {0};
    lua_getfield(L, 1, "method");
    lua_getfield(L, 1, "url");
    lua_getfield(L, 1, "body"); /* the strings stay on the stack while used */
    r.method = luaL_checkstring(L, -3);
    r.url = luaL_checkstring(L, -2);
    r.body = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, &r.body_len);
    r.timeout = sonde_binding_optnumber(L, "timeout", 0);
    r.connect_timeout = sonde_binding_optnumber(L, "connect_timeout", 0);
    r.max_body = (size_t)sonde_binding_optnumber(L, "max_body", 0);
    r.token = (int)sonde_binding_optnumber(L, "token", 0);
    r.verify = opt_bool(L, "verify", 1);
    r.follow = opt_bool(L, "follow", 0);
    r.http2 = opt_bool(L, "http2", 0);
    void **box = sonde_box_new(L, TRANSFER_MT);
    r.headers = header_list(L);
    sonde_http *h = sonde_http_get(sonde_binding_loop(L));
    if (!h) curl_slist_free_all(r.headers);
    return sonde_box_fill(L, box, h ? sonde_transfer_start(h, &r, err, sizeof err) : NULL, err);
}

static int transfer_cancel(lua_State *L) {
    sonde_transfer_cancel(check_transfer(L));
    return 0;
}

/* The kind of transport error a curl result is, as sonde.http reports it. */
static const char *result_kind(CURLcode rc) {
    switch (rc) {
    case CURLE_OK:
        return NULL;
    case CURLE_COULDNT_CONNECT:
        return "connect";
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "dns";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return "tls";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return "closed";
    default:
        return "protocol";
    }
}

/* result() -> nil when it succeeded, or kind, message, curl code */
static int transfer_result(lua_State *L) {
    sonde_transfer *t = check_transfer(L);
    const char     *kind = result_kind(t->result);
    if (!kind) return 0;
    lua_pushstring(L, kind);
    lua_pushstring(L, t->errbuf[0] ? t->errbuf : curl_easy_strerror(t->result));
    lua_pushinteger(L, t->result);
    return 3;
}

static double info_seconds(CURL *e, CURLINFO what) {
    curl_off_t us = 0;
    sonde_easy_getinfo_off(e, what, &us); /* the *_TIME_T infos */
    return (double)us / 1e6;
}

static void push_timings(lua_State *L, CURL *e) {
    static const struct {
        const char *name;
        CURLINFO    info;
    } phases[] = {{"dns", CURLINFO_NAMELOOKUP_TIME_T}, {"connect", CURLINFO_CONNECT_TIME_T},
                  {"tls", CURLINFO_APPCONNECT_TIME_T}, {"first_byte", CURLINFO_STARTTRANSFER_TIME_T},
                  {"total", CURLINFO_TOTAL_TIME_T},    {"redirect", CURLINFO_REDIRECT_TIME_T}};
    lua_createtable(L, 0, 6);
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
        lua_pushnumber(L, info_seconds(e, phases[i].info));
        lua_setfield(L, -2, phases[i].name);
    }
}

static double info_bytes(CURL *e, CURLINFO what) {
    curl_off_t n = 0;
    sonde_easy_getinfo_off(e, what, &n); /* the *_T infos */
    return (double)n;
}

static double info_long(CURL *e, CURLINFO what) {
    long n = 0;
    sonde_easy_getinfo_long(e, what, &n);
    return (double)n;
}

/* response() -> status, raw headers, body, effective url, http version,
 *               timings {dns, connect, tls, first_byte, total, redirect}
 *               (seconds from the start, as libcurl counts them),
 *               connections opened for it (0 when one was reused),
 *               bytes sent (request headers and body), bytes received
 *               (response headers and body, as they came over the wire) */
static int transfer_response(lua_State *L) {
    sonde_transfer *t = check_transfer(L);
    long            status = 0, version = 0;
    char           *url = NULL;
    sonde_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    sonde_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &version);
    sonde_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url);
    lua_pushinteger(L, status);
    lua_pushlstring(L, t->headers.data ? t->headers.data : "", t->headers.len);
    lua_pushlstring(L, t->body.data ? t->body.data : "", t->body.len);
    lua_pushstring(L, url ? url : "");
    lua_pushstring(L, version == CURL_HTTP_VERSION_2_0   ? "HTTP/2"
                      : version == CURL_HTTP_VERSION_1_0 ? "HTTP/1.0"
                                                         : "HTTP/1.1");
    push_timings(L, t->easy);
    long connects = 0;
    sonde_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
    lua_pushinteger(L, connects);
    lua_pushnumber(L, info_long(t->easy, CURLINFO_REQUEST_SIZE) + info_bytes(t->easy, CURLINFO_SIZE_UPLOAD_T));
    lua_pushnumber(L, info_long(t->easy, CURLINFO_HEADER_SIZE) + info_bytes(t->easy, CURLINFO_SIZE_DOWNLOAD_T));
    return 9;
}

/* finish() -> what response() returns, or nil, kind, message, curl code
 * when it failed; either way the transfer is then released, as by close():
 * one call for what a finished request needs, instead of three. */
static int transfer_finish(lua_State *L) {
    int n = transfer_result(L); /* raises when already released */
    if (n) {
        lua_pushnil(L);
        lua_insert(L, -n - 1);
        n++;
    } else {
        n = transfer_response(L);
    }
    sonde_transfer_free(sonde_box_take(L, TRANSFER_MT));
    return n;
}

/* close(), also __gc: frees the transfer now (its easy handle goes back to
 * the pool for the next request) instead of waiting for the collector. */
static int transfer_close(lua_State *L) {
    sonde_transfer_free(sonde_box_take(L, TRANSFER_MT));
    return 0;
}

/* started() -> transfers started by this host so far */
static int http_started(lua_State *L) {
    lua_pushnumber(L, sonde_http_started(sonde_binding_loop(L)));
    return 1;
}

/* timer_stats() -> zero-timeouts curl asked for, zero-timeouts armed */
static int http_timer_stats(lua_State *L) {
    double asked, armed;
    sonde_http_timer_stats(sonde_binding_loop(L), &asked, &armed);
    lua_pushnumber(L, asked);
    lua_pushnumber(L, armed);
    return 2;
}

/* curl_version() -> libcurl's version line (loads libcurl) */
static int http_curl_version(lua_State *L) {
    char err[256];
    if (sonde_curl_load(err, sizeof err) != 0) return luaL_error(L, "%s", err);
    lua_pushstring(L, curl_version());
    return 1;
}

int luaopen_sonde_c_http(lua_State *L) {
    static const luaL_Reg methods[] = {SONDE_FN(transfer, cancel),   SONDE_FN(transfer, result),
                                       SONDE_FN(transfer, response), SONDE_FN(transfer, close),
                                       SONDE_FN(transfer, finish),   {NULL, NULL}};
    static const luaL_Reg funcs[] = {SONDE_FN(http, request),
                                     SONDE_FN(http, started),
                                     SONDE_FN(http, timer_stats),
                                     SONDE_FN(http, curl_version),
                                     {NULL, NULL}};
    return sonde_binding_family(L, TRANSFER_MT, methods, transfer_close, funcs);
}
