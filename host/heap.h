/* heap.h — the Lua heap: blocks carved from an arena on transparent huge
 * pages, where a fresh 4 KiB page costs a page fault (about 10 us on a
 * virtual machine) and a fresh 2 MiB page costs about as much. */
#ifndef SONDE_HEAP_H
#define SONDE_HEAP_H

#include <lua.h>

typedef struct sonde_heap sonde_heap;

/* Creates a Lua state whose heap is a new sonde_heap, stored in *heap (to
 * free with sonde_heap_free after lua_close). SONDE_HEAP=luajit, or an
 * arena that cannot be reserved, gives LuaJIT's own allocator instead and
 * *heap NULL. NULL when no state could be made. */
lua_State *sonde_heap_newstate(sonde_heap **heap);

/* After a fork, in the host and in its copy: new blocks come from pages
 * never handed out before it (the free blocks of then are left unused), so
 * that allocating copies no shared page. No-op without a sonde_heap. */
void sonde_heap_forked(lua_State *L);

/* Releases the arena of a state already closed; NULL is ignored. */
void sonde_heap_free(sonde_heap *heap);

#endif
