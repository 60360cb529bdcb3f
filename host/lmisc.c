/* lmisc.c — sonde.c.loop's facts about this process and machine: the
 * executable's path, the pid, whether an fd is a terminal, a free port. */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "binding.h"

/* exe_path() -> the path of the running executable */
static int loop_exe_path(lua_State *L) {
    char   buf[4096];
    size_t len = sizeof buf;
    if (uv_exepath(buf, &len) != 0) return 0;
    lua_pushlstring(L, buf, len);
    return 1;
}

/* pid() -> this process's id */
static int loop_pid(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)uv_os_getpid());
    return 1;
}

/* isatty(fd) -> bool */
static int loop_isatty(lua_State *L) {
    lua_pushboolean(L, uv_guess_handle((uv_file)luaL_checkinteger(L, 1)) == UV_TTY);
    return 1;
}

/* unused_port([host="127.0.0.1"[, port=0]]) -> a TCP port nothing listens
 * on now (the kernel's choice for port 0, else that port if it is free),
 * or nil, err */
static int loop_unused_port(lua_State *L) {
    const char        *host = luaL_optstring(L, 1, "127.0.0.1");
    int                port = (int)luaL_optinteger(L, 2, 0);
    struct sockaddr_in addr;
    socklen_t          len = sizeof addr;
    int                fd = -1, rc = uv_ip4_addr(host, port, &addr);
    if (rc == 0 && (fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) rc = uv_translate_sys_error(errno);
    if (rc == 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) rc = uv_translate_sys_error(errno);
    if (rc == 0 && getsockname(fd, (struct sockaddr *)&addr, &len) < 0) rc = uv_translate_sys_error(errno);
    if (fd >= 0) close(fd);
    if (rc != 0) return sonde_binding_fail(L, rc);
    lua_pushinteger(L, ntohs(addr.sin_port));
    return 1;
}

const luaL_Reg sonde_loop_misc_funcs[] = {
    SONDE_FN(loop, exe_path), SONDE_FN(loop, pid), SONDE_FN(loop, isatty), SONDE_FN(loop, unused_port), {NULL, NULL}};
