/* loop.c — the scheduler's clock, timer heap and completion queue.
 *
 * Timers live in our own min-heap rather than one uv_timer each: one uv_timer
 * is armed for the earliest deadline, so swapping the clock for a virtual one
 * (sonde.clock) changes one function, and ties fire in creation order. */
#include "loop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- clocks */

double sonde_real_now(void) { return (double)uv_hrtime() / 1e9; }

double sonde_loop_now(sonde_loop *lp) { return lp->is_virtual ? lp->virtual_now : sonde_real_now() - lp->start_mono; }

double sonde_loop_time(sonde_loop *lp) {
    if (lp->is_virtual) return lp->start_epoch + lp->virtual_now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ timer heap */

static int timer_less(sonde_loop *lp, int a, int b) {
    sonde_timer_slot *x = &lp->slots[a], *y = &lp->slots[b];
    return x->deadline < y->deadline || (x->deadline == y->deadline && x->seq < y->seq);
}

static void heap_place(sonde_loop *lp, int pos, int slot) {
    lp->heap[pos] = slot;
    lp->slots[slot].heap_pos = pos;
}

static void heap_up(sonde_loop *lp, int pos) {
    int slot = lp->heap[pos];
    while (pos > 0) {
        int parent = (pos - 1) / 2;
        if (!timer_less(lp, slot, lp->heap[parent])) break;
        heap_place(lp, pos, lp->heap[parent]);
        pos = parent;
    }
    heap_place(lp, pos, slot);
}

static void heap_down(sonde_loop *lp, int pos) {
    int slot = lp->heap[pos];
    for (;;) {
        int child = 2 * pos + 1;
        if (child >= lp->heap_len) break;
        if (child + 1 < lp->heap_len && timer_less(lp, lp->heap[child + 1], lp->heap[child])) child++;
        if (!timer_less(lp, lp->heap[child], slot)) break;
        heap_place(lp, pos, lp->heap[child]);
        pos = child;
    }
    heap_place(lp, pos, slot);
}

/* Removes the heap entry at pos and returns its slot to the free list. */
static void heap_remove(sonde_loop *lp, int pos) {
    int slot = lp->heap[pos];
    lp->heap_len--;
    if (pos < lp->heap_len) {
        int moved = lp->heap[lp->heap_len];
        heap_place(lp, pos, moved);
        heap_down(lp, pos);
        heap_up(lp, lp->slots[moved].heap_pos);
    }
    lp->slots[slot].heap_pos = -1;
    lp->free_next[slot] = lp->free_head;
    lp->free_head = slot;
}

static int slots_grow(sonde_loop *lp) {
    int               cap = lp->slots_cap ? lp->slots_cap * 2 : 64;
    sonde_timer_slot *slots = realloc(lp->slots, sizeof *slots * cap);
    if (!slots) return -1;
    lp->slots = slots;
    int *heap = realloc(lp->heap, sizeof *heap * cap);
    if (!heap) return -1;
    lp->heap = heap;
    int *next = realloc(lp->free_next, sizeof *next * cap);
    if (!next) return -1;
    lp->free_next = next;
    for (int i = cap - 1; i >= lp->slots_cap; i--) {
        lp->slots[i].heap_pos = -1;
        lp->free_next[i] = lp->free_head;
        lp->free_head = i;
    }
    lp->slots_cap = cap;
    return 0;
}

int sonde_timer_start(sonde_loop *lp, int token, double delay) {
    if (lp->free_head < 0 && slots_grow(lp) < 0) return -1;
    int slot = lp->free_head;
    lp->free_head = lp->free_next[slot];
    if (!(delay > 0)) delay = 0; /* also turns NaN into 0 */
    lp->slots[slot].deadline = sonde_loop_now(lp) + delay;
    lp->slots[slot].seq = lp->next_seq++;
    lp->slots[slot].token = token;
    lp->heap[lp->heap_len] = slot;
    heap_up(lp, lp->heap_len++);
    return slot;
}

void sonde_timer_stop(sonde_loop *lp, int id) {
    if (id < 0 || id >= lp->slots_cap || lp->slots[id].heap_pos < 0) return;
    heap_remove(lp, lp->slots[id].heap_pos);
}

double sonde_timer_next(sonde_loop *lp) { return lp->heap_len ? lp->slots[lp->heap[0]].deadline : -1; }

int sonde_timer_count(sonde_loop *lp) { return lp->heap_len; }

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

/* Moves every timer due at `now` into the completion queue, in order. */
static void fire_due_timers(sonde_loop *lp, double now) {
    while (lp->heap_len && lp->slots[lp->heap[0]].deadline <= now) {
        int slot = lp->heap[0];
        sonde_loop_complete(lp, lp->slots[slot].token, 0, 0);
        heap_remove(lp, 0);
    }
}

/* ------------------------------------------------------------ the turn */

static void on_wakeup(uv_timer_t *t) { (void)t; }

static void on_interrupt(uv_async_t *a) {
    sonde_loop *lp = a->data;
    sonde_loop_complete(lp, SONDE_TOKEN_INTERRUPT, lp->interrupts, 0);
}

/* Arms the uv timer for the earliest real deadline. Rounds up, never down:
 * a timer armed early would spin, and a due timer was already fired. */
static void arm_wakeup(sonde_loop *lp) {
    double next = sonde_timer_next(lp);
    if (next < 0 || lp->is_virtual) {
        uv_timer_stop(&lp->wakeup);
        return;
    }
    double ms = ceil((next - sonde_loop_now(lp)) * 1000.0);
    uv_timer_start(&lp->wakeup, on_wakeup, ms > 0 ? (uint64_t)ms : 0, 0);
}

int sonde_loop_poll(sonde_loop *lp, int may_block) {
    fire_due_timers(lp, sonde_loop_now(lp));
    if (lp->done_len || !may_block) {
        uv_run(&lp->uv, UV_RUN_NOWAIT);
    } else {
        arm_wakeup(lp);
        int alive = uv_loop_alive(&lp->uv);
        if (!alive && (!lp->heap_len || lp->is_virtual)) return -1;
        uv_run(&lp->uv, UV_RUN_ONCE);
    }
    fire_due_timers(lp, sonde_loop_now(lp));
    return lp->done_len;
}

/* ------------------------------------------------------ virtual time */

void sonde_loop_set_virtual(sonde_loop *lp, int on, double start) {
    double now = sonde_loop_now(lp);
    if (on == lp->is_virtual) return;
    double shift = on ? start - now : (sonde_real_now() - lp->start_mono) - now;
    for (int i = 0; i < lp->heap_len; i++) lp->slots[lp->heap[i]].deadline += shift;
    lp->is_virtual = on;
    lp->virtual_now = on ? start : 0;
}

void sonde_loop_advance(sonde_loop *lp, double t) {
    if (lp->is_virtual && t > lp->virtual_now) lp->virtual_now = t;
}

/* ------------------------------------------------------- life cycle */

int sonde_loop_init(sonde_loop *lp) {
    memset(lp, 0, sizeof *lp);
    lp->free_head = -1;
    int rc = uv_loop_init(&lp->uv);
    if (rc) return rc;
    uv_timer_init(&lp->uv, &lp->wakeup);
    uv_async_init(&lp->uv, &lp->interrupt, on_interrupt);
    lp->interrupt.data = lp;
    uv_unref((uv_handle_t *)&lp->interrupt);
    lp->start_mono = sonde_real_now();
    lp->start_epoch = sonde_loop_time(lp);
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
    free(lp->heap);
    free(lp->free_next);
    free(lp->done);
}
