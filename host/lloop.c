/* lloop.c — sonde.c.loop: the Lua binding of loop.c (timers, clock, poll).
 *
 * Misuse (a wrong argument type) raises; nothing here can fail at run time
 * except memory, which raises too. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binding.h"
#include "embedded.h"
#include "sonde.h"

sonde_loop *sonde_binding_loop(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, SONDE_LOOP_KEY);
    sonde_loop *lp = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!lp) luaL_error(L, "sonde: this Lua state has no sonde loop");
    return lp;
}

/* timer_start(token, delay[, holds[, real]]) -> id: holds marks a sleep (a
 * real operation of its own) rather than a timeout guarding another wait;
 * real keeps the timer on real time under a virtual clock. */
static int loop_timer_start(lua_State *L) {
    int    token = (int)luaL_checkinteger(L, 1);
    double delay = luaL_checknumber(L, 2);
    int    flags = (lua_toboolean(L, 3) ? SONDE_TIMER_HOLDS : 0) | (lua_toboolean(L, 4) ? SONDE_TIMER_REAL : 0);
    int    id = sonde_timer_start(sonde_binding_loop(L), token, delay, flags);
    if (id < 0) return luaL_error(L, "out of memory starting a timer");
    lua_pushinteger(L, id);
    return 1;
}

/* timer_stop(id) */
static int loop_timer_stop(lua_State *L) {
    sonde_timer_stop(sonde_binding_loop(L), (int)luaL_checkinteger(L, 1));
    return 0;
}

/* poll(into, may_block) -> n: stores token, a, b of each completion at
 * into[3i-2], into[3i-1], into[3i]; n is -1 when the loop is idle. */
static int loop_poll(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    sonde_loop *lp = sonde_binding_loop(L);
    int         n = sonde_loop_poll(lp, lua_toboolean(L, 2));
    for (int i = 0; i < lp->done_len; i++) {
        lua_pushinteger(L, lp->done[i].token);
        lua_rawseti(L, 1, 3 * i + 1);
        lua_pushnumber(L, lp->done[i].a);
        lua_rawseti(L, 1, 3 * i + 2);
        lua_pushnumber(L, lp->done[i].b);
        lua_rawseti(L, 1, 3 * i + 3);
    }
    lp->done_len = 0;
    lua_pushinteger(L, n);
    return 1;
}

static int loop_now(lua_State *L) {
    lua_pushnumber(L, sonde_loop_now(sonde_binding_loop(L)));
    return 1;
}

static int loop_time(lua_State *L) {
    lua_pushnumber(L, sonde_loop_time(sonde_binding_loop(L)));
    return 1;
}

static int loop_real_now(lua_State *L) {
    lua_pushnumber(L, sonde_real_now());
    return 1;
}

/* set_virtual(on, start[, epoch]): epoch is what time() reads at start;
 * without it, time() goes on from the real epoch. */
static int loop_set_virtual(lua_State *L) {
    sonde_loop_set_virtual(sonde_binding_loop(L), lua_toboolean(L, 1), luaL_optnumber(L, 2, 0),
                           luaL_optnumber(L, 3, NAN));
    return 0;
}

/* advance(t): moves virtual time forward to t. */
static int loop_advance(lua_State *L) {
    sonde_loop_advance(sonde_binding_loop(L), luaL_checknumber(L, 1));
    return 0;
}

/* next_deadline() -> the active clock's earliest deadline, or nil; and how
 * many timers that clock has. */
static int loop_next_deadline(lua_State *L) {
    sonde_loop *lp = sonde_binding_loop(L);
    double      next = sonde_timer_next(lp);
    if (next < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, next);
    lua_pushinteger(L, sonde_timer_count(lp));
    return 2;
}

/* real_pending([delta]) -> count of real operations in flight, real sleeps
 * included; delta adds to the operations (process.lua counts its waits). */
static int loop_real_pending(lua_State *L) {
    sonde_loop *lp = sonde_binding_loop(L);
    lp->real_pending += (int)luaL_optinteger(L, 1, 0);
    lua_pushinteger(L, sonde_loop_real_pending(lp));
    return 1;
}

/* pop_due([limit=virtual now[, at=its deadline]]) -> token, or nil: under
 * virtual time, removes the earliest virtual timer when it is due by limit
 * and moves virtual time up to `at`. */
static int loop_pop_due(lua_State *L) {
    sonde_loop *lp = sonde_binding_loop(L);
    int         token;
    double      limit = luaL_optnumber(L, 1, lp->virtual_now), at = luaL_optnumber(L, 2, NAN);
    if (!sonde_timer_pop_due(lp, limit, at, &token)) return 0;
    lua_pushinteger(L, token);
    return 1;
}

/* timers() -> {{deadline=, token=, seq=, virtual=bool, holds=bool}, ...}:
 * every pending timer, unordered, for debugging views. */
static int loop_timers(lua_State *L) {
    sonde_loop *lp = sonde_binding_loop(L);
    lua_createtable(L, lp->heaps[0].len + lp->heaps[1].len, 0);
    int n = 0;
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < lp->heaps[c].len; i++) {
            sonde_timer_slot *s = &lp->slots[lp->heaps[c].items[i]];
            lua_createtable(L, 0, 5);
            lua_pushnumber(L, s->deadline);
            lua_setfield(L, -2, "deadline");
            lua_pushinteger(L, s->token);
            lua_setfield(L, -2, "token");
            lua_pushnumber(L, (double)s->seq);
            lua_setfield(L, -2, "seq");
            lua_pushboolean(L, c == SONDE_CLOCK_VIRTUAL);
            lua_setfield(L, -2, "virtual");
            lua_pushboolean(L, s->holds);
            lua_setfield(L, -2, "holds");
            lua_rawseti(L, -2, ++n);
        }
    }
    return 1;
}

/* is_virtual() -> true while virtual time is active. */
static int loop_is_virtual(lua_State *L) {
    lua_pushboolean(L, sonde_binding_loop(L)->is_virtual);
    return 1;
}

static int loop_exe_path(lua_State *L) {
    char   buf[4096];
    size_t len = sizeof buf;
    if (uv_exepath(buf, &len) != 0) return 0;
    lua_pushlstring(L, buf, len);
    return 1;
}

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
    if (rc < 0 && rc != UV_EEXIST) return sonde_binding_fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
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
    if (err != 0) return sonde_binding_fail(L, uv_translate_sys_error(err));
    lua_pushboolean(L, 1);
    return 1;
}

/* MurmurHash64A (Austin Appleby, public domain), fed in pieces: whole
 * 8-byte words, then the bytes left over. hash64 and hash_file agree. It
 * reads 8 bytes a step (a 400 KB spec file in 0.05 ms where bytewise FNV-1a
 * took 0.5), and every step is a bijection of the running hash, so an edit
 * confined to one word always changes it. For compiled-chunk cache keys
 * and content checks; not for anything adversarial. */
#define MURMUR_M 0xc6a4a7935bd1e995ULL
#define MURMUR_R 47

static uint64_t murmur_start(uint64_t len) { return 0x5eed ^ (len * MURMUR_M); }

static uint64_t murmur_words(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t k;
        memcpy(&k, p + i, sizeof k);
        k *= MURMUR_M, k ^= k >> MURMUR_R, k *= MURMUR_M;
        h = (h ^ k) * MURMUR_M;
    }
    return h;
}

static uint64_t murmur_end(uint64_t h, const unsigned char *tail, size_t n) {
    if (n > 0) {
        uint64_t k = 0;
        for (size_t j = n; j-- > 0;) k = (k << 8) | tail[j];
        h = (h ^ k) * MURMUR_M;
    }
    h ^= h >> MURMUR_R, h *= MURMUR_M, h ^= h >> MURMUR_R;
    return h;
}

static void push_hex64(lua_State *L, uint64_t h) {
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    lua_pushstring(L, hex);
}

/* hash64(s) -> 16 hex digits */
static int loop_hash64(lua_State *L) {
    size_t               len;
    const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &len);
    size_t               whole = len & ~(size_t)7;
    push_hex64(L, murmur_end(murmur_words(murmur_start(len), p, whole), p + whole, len - whole));
    return 1;
}

/* embedded_hash(module) -> hash64 of that module's bytecode as compiled
 * into this binary (by the build's luajit) | nil when it has none. */
static int loop_embedded_hash(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    for (const sonde_chunk *c = sonde_embedded; c->module; c++) {
        if (strcmp(c->module, name) != 0) continue;
        size_t whole = c->size & ~(size_t)7;
        push_hex64(L,
                   murmur_end(murmur_words(murmur_start(c->size), c->data, whole), c->data + whole, c->size - whole));
        return 1;
    }
    return 0;
}

/* Reads up to n bytes, fewer only at the end of the file; -1 on error. */
static ssize_t read_full(int fd, unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* hash_file(path) -> hash64 of the file's content, its size | nil, err:
 * streamed through a fixed buffer, so checking a large spec file against
 * the cache builds no Lua string of it. Regular files only (a pipe read
 * here would be gone for its reader; opening a FIFO does not wait for its
 * writer). A file that changes size while it is read is an error. */
static int loop_hash_file(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int         fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        return sonde_binding_fail(L, uv_translate_sys_error(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        lua_pushnil(L);
        lua_pushstring(L, "not a regular file");
        return 2;
    }
    unsigned char buf[32 * 1024]; /* a multiple of 8: only the last read leaves a tail */
    uint64_t      h = murmur_start((uint64_t)st.st_size), total = 0;
    ssize_t       n;
    while ((n = read_full(fd, buf, sizeof buf)) == (ssize_t)sizeof buf) {
        h = murmur_words(h, buf, sizeof buf);
        total += sizeof buf;
    }
    int err = errno;
    close(fd);
    if (n < 0) return sonde_binding_fail(L, uv_translate_sys_error(err));
    size_t whole = (size_t)n & ~(size_t)7;
    h = murmur_end(murmur_words(h, buf, whole), buf + whole, (size_t)n - whole);
    total += (uint64_t)n;
    if (total != (uint64_t)st.st_size) {
        lua_pushnil(L);
        lua_pushstring(L, "the file changed while it was read");
        return 2;
    }
    push_hex64(L, h);
    lua_pushnumber(L, (lua_Number)total);
    return 2;
}

/* pid() -> this process's id */
static int loop_pid(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)uv_os_getpid());
    return 1;
}

/* chdir(dir) -> true | nil, err: the process's working directory, as
 * busted's -C changes it before a run. */
static int loop_chdir(lua_State *L) {
    int rc = uv_chdir(luaL_checkstring(L, 1));
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushstring(L, uv_strerror(rc));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* cwd() -> the process's working directory | nil, err */
static int loop_cwd(lua_State *L) {
    char   buf[4096];
    size_t len = sizeof buf;
    int    rc = uv_cwd(buf, &len);
    if (rc < 0) return sonde_binding_fail(L, rc);
    lua_pushlstring(L, buf, len);
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

int luaopen_sonde_c_loop(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"timer_start", loop_timer_start},
        {"timer_stop", loop_timer_stop},
        {"poll", loop_poll},
        {"now", loop_now},
        {"time", loop_time},
        {"real_now", loop_real_now},
        {"set_virtual", loop_set_virtual},
        {"advance", loop_advance},
        {"next_deadline", loop_next_deadline},
        {"real_pending", loop_real_pending},
        {"pop_due", loop_pop_due},
        {"timers", loop_timers},
        {"is_virtual", loop_is_virtual},
        {"exe_path", loop_exe_path},
        {"scandir", loop_scandir},
        {"stat", loop_stat},
        {"euid", loop_euid},
        {"mkdir", loop_mkdir},
        {"write_private", loop_write_private},
        {"hash64", loop_hash64},
        {"hash_file", loop_hash_file},
        {"embedded_hash", loop_embedded_hash},
        {"pid", loop_pid},
        {"isatty", loop_isatty},
        {"unused_port", loop_unused_port},
        {"chdir", loop_chdir},
        {"cwd", loop_cwd},
        {NULL, NULL},
    };
    lua_newtable(L);
    luaL_register(L, NULL, funcs);
    lua_pushinteger(L, SONDE_TOKEN_INTERRUPT);
    lua_setfield(L, -2, "TOKEN_INTERRUPT");
    lua_pushliteral(L, SONDE_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
