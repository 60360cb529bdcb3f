/* heap.c — the Lua heap on transparent huge pages (see heap.h).
 *
 * LuaJIT's own allocator grows in 128 KiB mappings touched 4 KiB at a time:
 * a 5000-test spec run took 2,700 page faults that way, 40 % of its time.
 * Here blocks up to MEDIUM_MAX come from one arena reserved up front (its
 * address space only) and advised onto 2 MiB pages, each made writable as
 * the arena reaches it. LuaJIT gives the size of every block it frees, so
 * blocks carry no header: a freed block goes on the free list of its size
 * class, for the next block of that class. Larger blocks, and every block
 * once the arena is full, are malloc's. */
#define _GNU_SOURCE
#include "heap.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HEAP_RESERVE ((size_t)64 << 30) /* address space, not memory */
#define HEAP_STEP ((size_t)2 << 20)     /* one huge page, made writable at a time */
#define SMALL_MAX 1024                  /* classes 16 bytes apart up to here */
#define MEDIUM_MAX (256 << 10)          /* then 4 classes per power of two */
#define SMALL_CLASSES (SMALL_MAX / 16)
#define NCLASSES (SMALL_CLASSES + 1 + 4 * (18 - 10)) /* 2^10 < medium <= 2^18 */

struct sonde_heap {
    char *base, *end; /* the arena's reserved address space */
    char *next;       /* the first byte never handed out */
    char *writable;   /* the end of what is mapped read-write */
    void *free_blocks[NCLASSES];
};

/* ----------------------------------------------------------- size classes */

/* Sizes up to SMALL_MAX round up to 16 bytes; above, (2^k, 2^(k+1)] has 4
 * classes 2^(k-2) apart, so a block wastes at most a quarter of itself. */
static int class_of(size_t size) {
    if (size <= SMALL_MAX) return (int)((size + 15) >> 4);
    int k = 63 - __builtin_clzl(size - 1);
    return SMALL_CLASSES + 1 + 4 * (k - 10) + (int)((size - 1 - ((size_t)1 << k)) >> (k - 2));
}

static size_t class_size(int c) {
    if (c <= SMALL_CLASSES) return (size_t)c << 4;
    int k = 10 + (c - SMALL_CLASSES - 1) / 4, sub = (c - SMALL_CLASSES - 1) % 4;
    return ((size_t)1 << k) + (size_t)(sub + 1) * ((size_t)1 << (k - 2));
}

/* ------------------------------------------------------------------ arena */

static int in_arena(const sonde_heap *h, const void *p) {
    return (const char *)p >= h->base && (const char *)p < h->end;
}

/* Makes the arena writable up to at least `to`, a huge page at a time. */
static int extend_writable(sonde_heap *h, char *to) {
    if (to > h->end) return -1;
    size_t grow = ((size_t)(to - h->writable) + HEAP_STEP - 1) & ~(HEAP_STEP - 1);
    if (grow > (size_t)(h->end - h->writable)) grow = (size_t)(h->end - h->writable);
    if (mprotect(h->writable, grow, PROT_READ | PROT_WRITE) != 0) return -1;
    h->writable += grow;
    return 0;
}

/* A block of class c: a freed one, else fresh from the arena; NULL when
 * the arena cannot give one. */
static void *take_class(sonde_heap *h, int c) {
    void *b = h->free_blocks[c];
    if (b) {
        h->free_blocks[c] = *(void **)b;
        return b;
    }
    size_t size = class_size(c);
    if (h->next + size > h->writable && extend_writable(h, h->next + size) != 0) return NULL;
    b = h->next;
    h->next += size;
    return b;
}

static void *take(sonde_heap *h, size_t size) {
    void *b = size <= MEDIUM_MAX ? take_class(h, class_of(size)) : NULL;
    return b ? b : malloc(size);
}

static void release(sonde_heap *h, void *p, size_t size) {
    if (!in_arena(h, p)) {
        free(p);
        return;
    }
    int c = class_of(size);
    *(void **)p = h->free_blocks[c];
    h->free_blocks[c] = p;
}

static void *resize(sonde_heap *h, void *p, size_t osize, size_t nsize) {
    if (in_arena(h, p) && nsize <= MEDIUM_MAX && class_of(osize) == class_of(nsize)) return p;
    if (!in_arena(h, p) && nsize > MEDIUM_MAX) return realloc(p, nsize);
    void *q = take(h, nsize);
    if (!q) return NULL;
    memcpy(q, p, osize < nsize ? osize : nsize);
    release(h, p, osize);
    return q;
}

/* lua_Alloc: LuaJIT frees with nsize 0 and allocates with ptr NULL. */
static void *heap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    sonde_heap *h = ud;
    if (nsize == 0) {
        if (ptr) release(h, ptr, osize);
        return NULL;
    }
    return ptr ? resize(h, ptr, osize, nsize) : take(h, nsize);
}

/* The arena, aligned to a huge page; NULL when it cannot be reserved. */
static sonde_heap *heap_reserve(void) {
    sonde_heap *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    char *m = mmap(NULL, HEAP_RESERVE + HEAP_STEP, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        free(h);
        return NULL;
    }
    h->base = (char *)(((uintptr_t)m + HEAP_STEP - 1) & ~(uintptr_t)(HEAP_STEP - 1));
    if (h->base > m) munmap(m, (size_t)(h->base - m));
    munmap(h->base + HEAP_RESERVE, (size_t)(m + HEAP_STEP - h->base));
    h->end = h->base + HEAP_RESERVE;
    h->next = h->writable = h->base;
#ifdef MADV_HUGEPAGE
    madvise(h->base, HEAP_RESERVE, MADV_HUGEPAGE); /* a kernel without THP keeps 4 KiB pages */
#endif
    return h;
}

/* ------------------------------------------------------------ the state */

#if defined(__SANITIZE_ADDRESS__)
#define HEAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_ASAN 1
#endif
#endif

/* As luaL_newstate's: every call into Lua here is protected, so this
 * only says what went wrong before the process aborts. */
static int panic(lua_State *L) {
    const char *s = lua_tostring(L, -1);
    fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n", s ? s : "?");
    fflush(stderr);
    return 0;
}

static int wants_luajit_heap(void) {
#ifdef HEAP_ASAN
    return 1; /* the sanitizer watches malloc's blocks; an arena would hide them */
#else
    const char *how = getenv("SONDE_HEAP");
    return how && strcmp(how, "luajit") == 0;
#endif
}

lua_State *sonde_heap_newstate(sonde_heap **heap) {
    *heap = NULL;
    sonde_heap *h = wants_luajit_heap() ? NULL : heap_reserve();
    if (!h) return luaL_newstate();
    lua_State *L = lua_newstate(heap_alloc, h);
    if (!L) {
        sonde_heap_free(h);
        return luaL_newstate();
    }
    lua_atpanic(L, panic);
    *heap = h;
    return L;
}

/* The blocks freed before the fork sit in pages the copies share: taking
 * one would copy its page: a fault and a TLB flush, for every such page.
 * Forgetting them, and the rest of the huge page being carved, sends every
 * new block to fresh pages, a fault per 2 MiB. */
void sonde_heap_forked(lua_State *L) {
    void *ud;
    if (lua_getallocf(L, &ud) != heap_alloc) return;
    sonde_heap *h = ud;
    memset(h->free_blocks, 0, sizeof h->free_blocks);
    h->next = h->writable;
}

void sonde_heap_free(sonde_heap *heap) {
    if (!heap) return;
    munmap(heap->base, HEAP_RESERVE);
    free(heap);
}
