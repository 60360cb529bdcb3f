/* lfs.c — sonde.c.loop's files and directories: scandir, stat, mkdir,
 * write_private, chdir, cwd, euid (synchronous: discovery, the chunk
 * cache and busted's -C run before anything waits). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binding.h"

/* scandir(path) -> {{name=, dir=bool}, ...} | nil, err (synchronous: used
 * for discovery before anything runs) */
static int loop_scandir(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    uv_fs_t     req;
    int         n = uv_fs_scandir(NULL, &req, path, 0, NULL);
    if (n < 0) {
        uv_fs_req_cleanup(&req);
        return sonde_binding_fail(L, n);
    }
    lua_createtable(L, n, 0);
    uv_dirent_t ent;
    for (int i = 1; uv_fs_scandir_next(&req, &ent) != UV_EOF; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, ent.name);
        lua_setfield(L, -2, "name");
        lua_pushboolean(L, ent.type == UV_DIRENT_DIR);
        lua_setfield(L, -2, "dir");
        lua_rawseti(L, -2, i);
    }
    uv_fs_req_cleanup(&req);
    return 1;
}

/* stat(path) -> "file" | "dir" | "other", size in bytes, permission bits
 * (st_mode & 07777), owner's uid | nil, err */
static int loop_stat(lua_State *L) {
    uv_fs_t req;
    int     rc = uv_fs_stat(NULL, &req, luaL_checkstring(L, 1), NULL);
    if (rc < 0) {
        uv_fs_req_cleanup(&req);
        return sonde_binding_fail(L, rc);
    }
    uint64_t mode = req.statbuf.st_mode & S_IFMT;
    uint64_t size = req.statbuf.st_size;
    uint64_t perm = req.statbuf.st_mode & 07777;
    uint64_t uid = req.statbuf.st_uid;
    uv_fs_req_cleanup(&req);
    lua_pushstring(L, mode == S_IFDIR ? "dir" : mode == S_IFREG ? "file" : "other");
    lua_pushnumber(L, (lua_Number)size);
    lua_pushinteger(L, (lua_Integer)perm);
    lua_pushnumber(L, (lua_Number)uid);
    return 4;
}

/* euid() -> the effective user id: whose files this process may trust */
static int loop_euid(lua_State *L) {
    lua_pushnumber(L, (lua_Number)geteuid());
    return 1;
}

/* mkdir(path[, mode=0755]) -> true | nil, err: one directory; one that
 * exists already is fine. */
static int loop_mkdir(lua_State *L) {
    uv_fs_t req;
    int     mode = (int)luaL_optinteger(L, 2, 0755);
    int     rc = uv_fs_mkdir(NULL, &req, luaL_checkstring(L, 1), mode, NULL);
    uv_fs_req_cleanup(&req);
    return sonde_binding_done(L, rc == UV_EEXIST ? 0 : rc);
}

/* write_private(path, data) -> true | nil, err: a new file (one that exists
 * is an error, a symbolic link is not followed) readable and writable by
 * its owner alone, holding data. A failed write leaves the file behind
 * for the caller to remove. */
static int loop_write_private(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t      len;
    const char *data = luaL_checklstring(L, 2, &len);
    int         fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return sonde_binding_fail(L, uv_translate_sys_error(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        done += (size_t)n;
    }
    int err = done < len ? errno : 0;
    if (close(fd) != 0 && err == 0) err = errno;
    return sonde_binding_done(L, uv_translate_sys_error(err)); /* 0 stays 0 */
}

/* chdir(dir) -> true | nil, err: the process's working directory, as
 * busted's -C changes it before a run. */
static int loop_chdir(lua_State *L) { return sonde_binding_done(L, uv_chdir(luaL_checkstring(L, 1))); }

/* cwd() -> the process's working directory | nil, err */
static int loop_cwd(lua_State *L) {
    char   buf[4096];
    size_t len = sizeof buf;
    int    rc = uv_cwd(buf, &len);
    if (rc < 0) return sonde_binding_fail(L, rc);
    lua_pushlstring(L, buf, len);
    return 1;
}

const luaL_Reg sonde_loop_fs_funcs[] = {
    SONDE_FN(loop, scandir),       SONDE_FN(loop, stat),  SONDE_FN(loop, euid), SONDE_FN(loop, mkdir),
    SONDE_FN(loop, write_private), SONDE_FN(loop, chdir), SONDE_FN(loop, cwd),  {NULL, NULL}};
