/* loop.c — the scheduler's clocks, timer heaps and completion queue.
 *
 * Timers live in our own min-heaps rather than one uv_timer each: one
 * uv_timer is armed for the earliest real deadline, ties fire in creation
 * order, and a second heap holds the timers of the virtual clock
 * (sonde.clock), which fire only when Lua moves virtual time. */
#include "loop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- clocks */

double sonde_real_now(void) { return (double)uv_hrtime() / 1e9; }

/* Seconds since the loop started, on the real clock. */
static double real_loop_now(sonde_loop *lp) { return sonde_real_now() - lp->start_mono; }

double sonde_loop_now(sonde_loop *lp) { return lp->is_virtual ? lp->virtual_now : real_loop_now(lp); }

double sonde_loop_time(sonde_loop *lp) {
    if (lp->is_virtual) return lp->virtual_epoch + lp->virtual_now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ timer heap */

static int timer_less(sonde_loop *lp, int a, int b) {
    sonde_timer_slot *x = &lp->slots[a], *y = &lp->slots[b];
    return x->deadline < y->deadline || (x->deadline == y->deadline && x->seq < y->seq);
}

static void heap_place(sonde_loop *lp, sonde_timer_heap *h, int pos, int slot) {
    h->items[pos] = slot;
    lp->slots[slot].heap_pos = pos;
}

static void heap_up(sonde_loop *lp, sonde_timer_heap *h, int pos) {
    int slot = h->items[pos];
    while (pos > 0) {
        int parent = (pos - 1) / 2;
        if (!timer_less(lp, slot, h->items[parent])) break;
        heap_place(lp, h, pos, h->items[parent]);
        pos = parent;
    }
    heap_place(lp, h, pos, slot);
}

static void heap_down(sonde_loop *lp, sonde_timer_heap *h, int pos) {
    int slot = h->items[pos];
    for (;;) {
        int child = 2 * pos + 1;
        if (child >= h->len) break;
        if (child + 1 < h->len && timer_less(lp, h->items[child + 1], h->items[child])) child++;
        if (!timer_less(lp, h->items[child], slot)) break;
        heap_place(lp, h, pos, h->items[child]);
        pos = child;
    }
    heap_place(lp, h, pos, slot);
}

static int grow(void **p, size_t size) {
    void *q = realloc(*p, size);
    if (!q) return -1;
    *p = q;
    return 0;
}

/* Makes room in h for one more item: the real heap is as big as the slots,
 * the virtual one (rarely used) grows apart. */
static int heap_reserve(sonde_timer_heap *h) {
    if (h->len < h->cap) return 0;
    int cap = h->cap ? h->cap * 2 : 64;
    if (grow((void **)&h->items, sizeof(int) * cap)) return -1;
    h->cap = cap;
    return 0;
}

static int heap_push(sonde_loop *lp, int slot) {
    sonde_timer_slot *s = &lp->slots[slot];
    sonde_timer_heap *h = &lp->heaps[s->clock];
    if (heap_reserve(h)) return -1;
    if (s->clock == SONDE_CLOCK_REAL && s->holds) lp->real_holding++;
    h->items[h->len] = slot;
    heap_up(lp, h, h->len++);
    return 0;
}

/* Takes a slot out of its heap (its memory stays allocated). */
static void heap_take(sonde_loop *lp, int slot) {
    sonde_timer_slot *s = &lp->slots[slot];
    sonde_timer_heap *h = &lp->heaps[s->clock];
    int               pos = s->heap_pos;
    if (s->clock == SONDE_CLOCK_REAL && s->holds) lp->real_holding--;
    h->len--;
    if (pos < h->len) {
        int moved = h->items[h->len];
        heap_place(lp, h, pos, moved);
        heap_down(lp, h, pos);
        heap_up(lp, h, lp->slots[moved].heap_pos);
    }
    s->heap_pos = -1;
}

static void slot_free(sonde_loop *lp, int slot) {
    lp->slots[slot].next = lp->free_head;
    lp->free_head = slot;
}

/* A fired slot waits in the fired list until the next poll or pop. */
static void slot_fired(sonde_loop *lp, int slot) {
    heap_take(lp, slot);
    lp->slots[slot].next = lp->fired_head;
    lp->fired_head = slot;
}

/* Frees the slots fired since the last poll or pop: Lua has dispatched
 * their completions by now. */
static void free_fired(sonde_loop *lp) {
    while (lp->fired_head >= 0) {
        int slot = lp->fired_head;
        lp->fired_head = lp->slots[slot].next;
        slot_free(lp, slot);
    }
}

static int slots_grow(sonde_loop *lp) {
    int cap = lp->slots_cap ? lp->slots_cap * 2 : 64;
    if (grow((void **)&lp->slots, sizeof *lp->slots * cap)) return -1;
    sonde_timer_heap *real = &lp->heaps[SONDE_CLOCK_REAL];
    if (grow((void **)&real->items, sizeof(int) * cap)) return -1;
    real->cap = cap;
    for (int i = cap - 1; i >= lp->slots_cap; i--) {
        lp->slots[i].heap_pos = -1;
        slot_free(lp, i);
    }
    lp->slots_cap = cap;
    return 0;
}

int sonde_timer_start(sonde_loop *lp, double delay, int flags) {
    if (lp->free_head < 0 && slots_grow(lp) < 0) return -1;
    int slot = lp->free_head;
    if (!(delay > 0)) delay = 0; /* also turns NaN into 0 */
    sonde_timer_slot *s = &lp->slots[slot];
    int               virtual_clock = lp->is_virtual && !(flags & SONDE_TIMER_REAL);
    s->clock = virtual_clock ? SONDE_CLOCK_VIRTUAL : SONDE_CLOCK_REAL;
    s->deadline = (virtual_clock ? lp->virtual_now : real_loop_now(lp)) + delay;
    s->seq = lp->next_seq++;
    s->holds = (flags & SONDE_TIMER_HOLDS) != 0;
    if (heap_push(lp, slot)) return -1;
    lp->free_head = s->next;
    return slot;
}

void sonde_timer_stop(sonde_loop *lp, int id) {
    if (id < 0 || id >= lp->slots_cap || lp->slots[id].heap_pos < 0) return;
    heap_take(lp, id);
    slot_free(lp, id);
}

static sonde_timer_heap *active_heap(sonde_loop *lp) { return &lp->heaps[lp->is_virtual ? 1 : 0]; }

double sonde_timer_next(sonde_loop *lp) {
    sonde_timer_heap *h = active_heap(lp);
    return h->len ? lp->slots[h->items[0]].deadline : -1;
}

int sonde_timer_count(sonde_loop *lp) { return active_heap(lp)->len; }

int sonde_timer_pop_due(sonde_loop *lp, double limit, double at, int *token) {
    free_fired(lp);
    sonde_timer_heap *h = &lp->heaps[SONDE_CLOCK_VIRTUAL];
    if (!lp->is_virtual || !h->len) return 0;
    int    slot = h->items[0];
    double deadline = lp->slots[slot].deadline;
    if (!(deadline <= limit)) return 0;
    if (isnan(at)) at = deadline;
    if (at > lp->virtual_now) lp->virtual_now = at;
    *token = SONDE_TIMER_TOKEN(slot);
    slot_fired(lp, slot);
    return 1;
}

int sonde_loop_real_pending(sonde_loop *lp) { return lp->real_pending + lp->real_holding; }

/* -------------------------------------------------------- completions */

int sonde_loop_complete(sonde_loop *lp, int token, double a, double b) {
    if (lp->done_len == lp->done_cap) {
        int               cap = lp->done_cap ? lp->done_cap * 2 : 256;
        sonde_completion *done = realloc(lp->done, sizeof *done * cap);
        if (!done) return -1;
        lp->done = done;
        lp->done_cap = cap;
    }
    lp->done[lp->done_len++] = (sonde_completion){token, a, b};
    /* A completion queued from a callback inside uv_run (say curl's timer,
     * which runs before the poll phase) must not let that uv_run go on to
     * block in epoll: a stopped loop polls with a zero timeout. */
    uv_stop(&lp->uv);
    return 0;
}

static void on_fd_ready(uv_poll_t *p, int status, int events) {
    (void)events;
    uv_poll_stop(p);
    sonde_loop_complete(SONDE_LOOP_OF(p), ((sonde_fd_wait *)p)->token, status, 0);
}

int sonde_fd_wait_start(sonde_fd_wait *w, int events, int token) {
    w->token = token;
    return uv_poll_start(&w->poll, events, on_fd_ready);
}

/* Moves the real timers due now into the completion queue, in order, until
 * it holds SONDE_POLL_BATCH completions: the rest fire at the next poll,
 * which then does not block. 100k sleeps ending together thus cost Lua a
 * few hundred small turns instead of one buffer of 300k values (and C one of
 * 100k completions), and the tasks they wake run while still in cache. */
static void fire_due_timers(sonde_loop *lp) {
    sonde_timer_heap *h = &lp->heaps[SONDE_CLOCK_REAL];
    double            now = real_loop_now(lp);
    while (h->len && lp->done_len < SONDE_POLL_BATCH && lp->slots[h->items[0]].deadline <= now) {
        int slot = h->items[0];
        sonde_loop_complete(lp, SONDE_TIMER_TOKEN(slot), 0, 0);
        slot_fired(lp, slot);
    }
}

/* ------------------------------------------------------------ the turn */

/* The wakeup only has to end uv_run. Stopping the loop matters when it is
 * already due as UV_RUN_ONCE starts: libuv runs due timers first and would
 * then poll with no timer left, blocking until unrelated I/O arrives. */
static void on_wakeup(uv_timer_t *t) { uv_stop(t->loop); }

static void on_interrupt(uv_async_t *a) {
    sonde_loop *lp = a->data;
    sonde_loop_complete(lp, SONDE_TOKEN_INTERRUPT, lp->interrupts, 0);
}

/* Arms the uv timer for the earliest real deadline. Rounds up, never down:
 * a timer armed early would spin, and a due timer was already fired. */
uint64_t sonde_ms_of(double seconds) {
    double ms = ceil(seconds * 1000.0);
    if (!(ms < 1e15)) ms = 1e15;
    return ms > 0 ? (uint64_t)ms : 0;
}

static void arm_wakeup(sonde_loop *lp) {
    sonde_timer_heap *h = &lp->heaps[SONDE_CLOCK_REAL];
    if (!h->len) {
        uv_timer_stop(&lp->wakeup);
        return;
    }
    uv_update_time(&lp->uv); /* libuv counts from its cached time, which may be old */
    uv_timer_start(&lp->wakeup, on_wakeup, sonde_ms_of(lp->slots[h->items[0]].deadline - real_loop_now(lp)), 0);
}

int sonde_loop_poll(sonde_loop *lp, int may_block) {
    free_fired(lp);
    fire_due_timers(lp);
    if (lp->done_len || !may_block) {
        uv_run(&lp->uv, UV_RUN_NOWAIT);
    } else {
        arm_wakeup(lp);
        if (!uv_loop_alive(&lp->uv)) return -1; /* the wakeup keeps it alive while real timers wait */
        uv_run(&lp->uv, UV_RUN_ONCE);
    }
    fire_due_timers(lp);
    return lp->done_len;
}

/* ------------------------------------------------------ virtual time */

void sonde_loop_set_virtual(sonde_loop *lp, int on, double start, double epoch) {
    if (!on == !lp->is_virtual) return;
    if (on) {
        lp->virtual_epoch = (isnan(epoch) ? sonde_loop_time(lp) : epoch) - start;
        lp->virtual_now = start;
        lp->is_virtual = 1;
        return;
    }
    sonde_timer_heap *v = &lp->heaps[SONDE_CLOCK_VIRTUAL];
    double            shift = real_loop_now(lp) - lp->virtual_now;
    while (v->len) {
        int slot = v->items[v->len - 1]; /* the last item: no sifting needed */
        heap_take(lp, slot);
        lp->slots[slot].clock = SONDE_CLOCK_REAL;
        lp->slots[slot].deadline += shift;
        heap_push(lp, slot);
    }
    lp->is_virtual = 0;
    lp->virtual_now = 0;
}

void sonde_loop_advance(sonde_loop *lp, double t) {
    if (lp->is_virtual && t > lp->virtual_now) lp->virtual_now = t;
}

/* ------------------------------------------------------- life cycle */

int sonde_loop_init(sonde_loop *lp) {
    memset(lp, 0, sizeof *lp);
    lp->free_head = lp->fired_head = -1;
    int rc = uv_loop_init(&lp->uv);
    if (rc) return rc;
    uv_timer_init(&lp->uv, &lp->wakeup);
    uv_async_init(&lp->uv, &lp->interrupt, on_interrupt);
    lp->interrupt.data = lp;
    uv_unref((uv_handle_t *)&lp->interrupt);
    lp->start_mono = sonde_real_now();
    return 0;
}

static void close_any(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

void sonde_loop_close(sonde_loop *lp) {
    uv_walk(&lp->uv, close_any, NULL);
    while (uv_run(&lp->uv, UV_RUN_NOWAIT)) {
    }
    uv_loop_close(&lp->uv);
    free(lp->slots);
    free(lp->heaps[0].items);
    free(lp->heaps[1].items);
    free(lp->done);
}
