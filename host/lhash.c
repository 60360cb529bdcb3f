/* lhash.c — sonde.c.loop's hashing: the one hash of the project
 * (MurmurHash64A) over strings, files and embedded modules. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "binding.h"
#include "embedded.h"

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
        return sonde_binding_error(L, "not a regular file");
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
    if (total != (uint64_t)st.st_size) return sonde_binding_error(L, "the file changed while it was read");
    push_hex64(L, h);
    lua_pushnumber(L, (lua_Number)total);
    return 2;
}

const luaL_Reg sonde_loop_hash_funcs[] = {
    SONDE_FN(loop, hash64), SONDE_FN(loop, hash_file), SONDE_FN(loop, embedded_hash), {NULL, NULL}};
