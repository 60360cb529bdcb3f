/* lcapture.c — sonde.c.capture: the runner's side of capture.h. */
#include <errno.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "binding.h"
#include "capture.h"

static const char *const TERMINAL_KEY[3] = {NULL, "sonde.capture.stdout", "sonde.capture.stderr"};

static int fail_errno(lua_State *L, const char *what) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, strerror(errno));
    return 2;
}

/* true, or nil and `what` failed with errno's message. */
static int push_ok(lua_State *L, int rc, const char *what) {
    if (rc != 0) return fail_errno(L, what);
    lua_pushboolean(L, 1);
    return 1;
}

/* open() -> true | nil, err: the capture file, and copies of fd 1 and 2. */
static int lc_open(lua_State *L) {
    return push_ok(L, sonde_capture_open(), "cannot make the file that captures output");
}

/* begin() -> true | nil, err: fd 1 and 2 point at the capture; stdout is
 * line-buffered meanwhile, so that what a test prints keeps its place
 * among what it writes to stderr (unbuffered) and what its children do. */
static int lc_begin(lua_State *L) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    return push_ok(L, sonde_capture_begin(), "cannot capture output");
}

/* finish() -> true | nil, err: what is left goes to the real fd 1, and fd
 * 1 and 2 point back. */
static int lc_finish(lua_State *L) { return push_ok(L, sonde_capture_end(), "cannot stop capturing output"); }

/* forward() -> true | nil, err: what was written since the last take is
 * no test's; it goes to the real fd 1. */
static int lc_forward(lua_State *L) { return push_ok(L, sonde_capture_forward(), "cannot forward captured output"); }

/* take(limit) -> the first `limit` bytes written since the last take or
 * forward (nil when none), and how many were written. */
static int lc_take(lua_State *L) {
    size_t limit = (size_t)luaL_checknumber(L, 1);
    if (!sonde_capture_written()) {
        lua_pushnil(L);
        lua_pushinteger(L, 0);
        return 2;
    }
    char   *buf = malloc(limit ? limit : 1);
    off_t   size = 0;
    ssize_t n = buf ? sonde_capture_take(buf, limit, &size) : -1;
    if (n > 0)
        lua_pushlstring(L, buf, (size_t)n);
    else
        lua_pushnil(L);
    free(buf);
    lua_pushnumber(L, (lua_Number)size);
    return 2;
}

/* io.stdout or io.stderr, as the io library holds them. */
static void push_std_file(lua_State *L, int fd) {
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    lua_getfield(L, -1, LUA_IOLIBNAME);
    lua_getfield(L, -1, fd == 1 ? "stdout" : "stderr");
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* terminal(fd) -> a Lua file that writes where fd 1 or 2 (`fd`) pointed
 * before any capture: io.stdout or io.stderr while none is open. LuaJIT
 * cannot wrap a descriptor, so it opens /dev/null and that descriptor is
 * made a copy of the saved one. Made once; stderr's is unbuffered. */
static int lc_terminal(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd == 1 || fd == 2, 1, "expected 1 or 2");
    int real = sonde_capture_real_fd(fd);
    if (real == fd || real < 0) {
        push_std_file(L, fd);
        return 1;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, TERMINAL_KEY[fd]);
    if (!lua_isnil(L, -1)) return 1;
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    lua_getfield(L, -1, LUA_IOLIBNAME);
    lua_getfield(L, -1, "open");
    lua_pushliteral(L, "/dev/null");
    lua_pushliteral(L, "w");
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) return luaL_error(L, "cannot open /dev/null: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    FILE **fp = luaL_checkudata(L, -1, LUA_FILEHANDLE); /* LuaJIT's file userdata starts with its FILE * */
    if (dup2(real, fileno(*fp)) < 0) return luaL_error(L, "cannot copy fd %d: %s", fd, strerror(errno));
    if (fd == 2) setvbuf(*fp, NULL, _IONBF, 0);
    if (fd == 1) sonde_capture_set_terminal(*fp);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, TERMINAL_KEY[fd]);
    return 1;
}

/* The state is closing, and the reporters' stream with it. */
static int lc_gc(lua_State *L) {
    (void)L;
    sonde_capture_set_terminal(NULL);
    return 0;
}

int luaopen_sonde_c_capture(lua_State *L) {
    static const luaL_Reg funcs[] = {SONDE_FN(lc, open),    SONDE_FN(lc, begin), SONDE_FN(lc, finish),
                                     SONDE_FN(lc, forward), SONDE_FN(lc, take),  SONDE_FN(lc, terminal),
                                     {NULL, NULL}};
    sonde_binding_on_close(L, "sonde.capture.sentinel", lc_gc); /* forgets the reporters' stream at close */
    return sonde_binding_module(L, funcs);
}
