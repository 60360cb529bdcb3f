/* loop.h — internal: the scheduler's loop, clock, timers and completions.
 *
 * Not part of the embedding API (that is sonde.h). Everything here is plain C
 * with no Lua: native modules push completions, the Lua scheduler drains them
 * and resumes the tasks that wait on their tokens. Nothing in C ever calls into
 * Lua from a libuv callback, so a Lua error can never unwind through libuv. */
#ifndef SONDE_LOOP_H
#define SONDE_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* A finished operation: which waiter (token, chosen by Lua) and two numbers
 * whose meaning belongs to the operation (exit code and signal, curl code...). */
typedef struct sonde_completion {
    int    token;
    double a, b;
} sonde_completion;

/* One timer slot. Slots are recycled through a free list; heap_pos is the
 * slot's index in the heap, or -1 when the slot is free. */
typedef struct sonde_timer_slot {
    double   deadline; /* loop-clock seconds */
    uint64_t seq;      /* creation order: ties fire first-created first */
    int      token;
    int      heap_pos;
} sonde_timer_slot;

typedef struct sonde_loop {
    uv_loop_t         uv;
    uv_timer_t        wakeup;    /* armed for the earliest real deadline */
    uv_async_t        interrupt; /* woken from the SIGINT/SIGTERM handler */
    sonde_timer_slot *slots;
    int              *heap; /* slot indices, min-heap on (deadline, seq) */
    int               heap_len, slots_cap, free_head;
    int              *free_next; /* free list through slot indices */
    uint64_t          next_seq;
    sonde_completion *done; /* completions queued for Lua */
    int               done_len, done_cap;
    double            start_mono;  /* real monotonic seconds at creation */
    double            start_epoch; /* wall clock at creation */
    int               is_virtual;  /* timers run on virtual_now, not real time */
    double            virtual_now;
    int               real_pending; /* real operations in flight (autojump) */
    volatile int      interrupts;   /* SIGINT/SIGTERM received so far */
    uv_signal_t       child_watch;  /* SIGCHLD, referenced while children run */
    int               child_watch_on, children_running;
    struct sonde_http *http;        /* http.c's engine, made at first use */
} sonde_loop;

/* Token of the completion queued when SIGINT or SIGTERM arrives; a = signal. */
#define SONDE_TOKEN_INTERRUPT (-1)

/* Initialises lp (caller owns the memory). Returns 0 or a libuv error. */
int sonde_loop_init(sonde_loop *lp);
/* Closes every handle and frees the timer memory. */
void sonde_loop_close(sonde_loop *lp);

/* Seconds on the loop clock: real monotonic, or virtual when active. */
double sonde_loop_now(sonde_loop *lp);
/* Epoch seconds that follow the loop clock. */
double sonde_loop_time(sonde_loop *lp);
/* Real monotonic seconds, whatever clock is active. */
double sonde_real_now(void);

/* Starts a timer that queues `token` after `delay` seconds; returns its id
 * (>= 0) for sonde_timer_stop, or -1 when memory runs out. */
int sonde_timer_start(sonde_loop *lp, int token, double delay);
/* Stops a pending timer; stopping a fired or unknown id does nothing. */
void sonde_timer_stop(sonde_loop *lp, int id);
/* Deadline of the earliest timer, or -1 when none is pending. */
double sonde_timer_next(sonde_loop *lp);
int    sonde_timer_count(sonde_loop *lp);

/* Queues a completion for Lua; returns 0, or -1 when memory runs out. */
int sonde_loop_complete(sonde_loop *lp, int token, double a, double b);

/* Runs one turn: queues due timers and I/O completions. With may_block it
 * waits for the next event. Returns the number of queued completions, or -1
 * when nothing is queued and nothing could ever complete (idle). */
int sonde_loop_poll(sonde_loop *lp, int may_block);

/* Switches the timers to virtual time starting at `start` (or back to real
 * time when on is 0, keeping pending deadlines' distance from now). */
void sonde_loop_set_virtual(sonde_loop *lp, int on, double start);
/* Moves virtual time to `t` (never backwards); due timers fire at next poll. */
void sonde_loop_advance(sonde_loop *lp, double t);

/* The loop that owns a libuv handle (handles' loop field points at lp->uv). */
#define SONDE_LOOP_OF(handle) ((sonde_loop *)((handle)->loop))

#endif
