/* version.c — what this sonde is made of, for `sonde --version` and bug
 * reports: sonde's version and commit, and the libraries it runs with, as
 * they answer at run time (a distribution may update them under sonde). */
#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <uv.h>

#include <curl/curl.h>
#include <editline/readline.h>

#include "curl_dl.h"
#include "edit_dl.h"
#include "sonde.h"
#include "sonde_commit.h"

/* pushes jit.version */
static int push_jit_version(lua_State *L) {
    luaL_openlibs(L);
    lua_getglobal(L, "jit");
    lua_getfield(L, -1, "version");
    return 1;
}

/* the LuaJIT linked in: jit.version from a throwaway state */
static void luajit_version(char *buf, size_t len) {
    lua_State *L = luaL_newstate();
    snprintf(buf, len, "LuaJIT (unknown version)");
    if (!L) return;
    lua_pushcfunction(L, push_jit_version);
    if (lua_pcall(L, 0, 1, 0) == 0 && lua_isstring(L, -1)) snprintf(buf, len, "%s", lua_tostring(L, -1));
    lua_close(L);
}

/* appends to text[*n] what fits */
static void add(char *text, size_t len, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void add(char *text, size_t len, size_t *n, const char *fmt, ...) {
    if (*n >= len - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(text + *n, len - *n, fmt, ap);
    va_end(ap);
    if (k > 0) *n = *n + (size_t)k < len ? *n + (size_t)k : len - 1;
}

const char *sonde_versions(void) {
    static char text[1024];
    char        luajit[64], err[256];
    size_t      n = 0;
    luajit_version(luajit, sizeof luajit);
    add(text, sizeof text, &n, "sonde %s (commit %s)\n%s\nlibuv %s\n", SONDE_VERSION, SONDE_COMMIT, luajit,
        uv_version_string());
    if (sonde_curl_load(err, sizeof err) == 0) {
        const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
        add(text, sizeof text, &n, "libcurl %s (%s, %s)\n", v->version, sonde_curl_soname(),
            v->ssl_version ? v->ssl_version : "no TLS");
    } else {
        add(text, sizeof text, &n, "libcurl not available: %s\n", err);
    }
    if (sonde_edit_load(err, sizeof err) == 0)
        add(text, sizeof text, &n, "libedit %s (the REPL's line editing)\n", sonde_edit_soname());
    else
        add(text, sizeof text, &n, "libedit not available: %s\n", err);
    return text;
}
