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

/* Which clock a timer runs on. A timer takes the clock active when it starts:
 * virtual timers fire only when sonde.clock moves virtual time (never by
 * themselves), real ones when real time passes, whatever clock is active. */
enum { SONDE_CLOCK_REAL = 0, SONDE_CLOCK_VIRTUAL = 1 };

/* Flag of sonde_timer_start: the timer is a real operation of its own (a
 * sleep), not a guard on some other wait (a timeout). A real timer with it
 * holds virtual time still while it runs, as an HTTP transfer does. */
#define SONDE_TIMER_HOLDS 1
/* Flag of sonde_timer_start: the timer runs on real time even while virtual
 * time is active (the runner's per-test timeout, which a test that mocks
 * the clock must not move). */
#define SONDE_TIMER_REAL 2

/* The completion token of the timer with id `id`: below
 * SONDE_TOKEN_INTERRUPT, so apart from the tokens Lua chooses (>= 1). A
 * timer needs no token of Lua's: its id names it both ways. */
#define SONDE_TIMER_TOKEN(id) (-2 - (id))

/* One timer slot, 24 bytes (a sleeping task pays one). Slots are recycled
 * through a free list. A fired slot is freed only at the next poll or pop,
 * once Lua has dispatched its completion: until then its id, which Lua
 * holds, cannot name a newer timer. */
typedef struct sonde_timer_slot {
    double   deadline;  /* seconds on its clock */
    uint64_t seq : 62;  /* creation order: ties fire first-created first */
    uint64_t clock : 1; /* SONDE_CLOCK_REAL or SONDE_CLOCK_VIRTUAL */
    uint64_t holds : 1; /* started with SONDE_TIMER_HOLDS */
    int      heap_pos;  /* index in its clock's heap, or -1 */
    int      next;      /* free or fired: the next in its list, or -1 */
} sonde_timer_slot;

/* A min-heap of slot indices on (deadline, seq). */
typedef struct sonde_timer_heap {
    int *items;
    int  len, cap;
} sonde_timer_heap;

typedef struct sonde_loop {
    uv_loop_t          uv;
    uv_timer_t         wakeup;    /* armed for the earliest real deadline */
    uv_async_t         interrupt; /* woken from the SIGINT/SIGTERM handler */
    sonde_timer_slot  *slots;
    sonde_timer_heap   heaps[2]; /* indexed by SONDE_CLOCK_* */
    int                slots_cap;
    int                free_head;  /* slots free to reuse, through next */
    int                fired_head; /* slots fired since the last poll or pop */
    uint64_t           next_seq;
    sonde_completion  *done; /* completions queued for Lua */
    int                done_len, done_cap;
    double             start_mono;    /* real monotonic seconds at creation */
    int                is_virtual;    /* new timers and now() use virtual time */
    double             virtual_now;   /* seconds on the virtual clock */
    double             virtual_epoch; /* epoch seconds at virtual time 0 */
    int                real_pending;  /* real operations in flight (autojump) */
    int                real_holding;  /* real timers with SONDE_TIMER_HOLDS */
    volatile int       interrupts;    /* SIGINT/SIGTERM received so far */
    uv_signal_t        child_watch;   /* SIGCHLD, referenced while children run */
    int                child_watch_on, children_running;
    struct sonde_http *http; /* http.c's engine, made at first use */
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
/* A span of seconds as whole milliseconds for a timer, rounded up: 0 for
 * none or less, and at most 1e15 (30,000 years) for math.huge, which a cast
 * would turn into anything. */
uint64_t sonde_ms_of(double seconds);

/* Starts a timer on the active clock that queues SONDE_TIMER_TOKEN(id)
 * after `delay` seconds; flags are SONDE_TIMER_HOLDS and SONDE_TIMER_REAL.
 * Returns its id (>= 0), or -1 when memory runs out. */
int sonde_timer_start(sonde_loop *lp, double delay, int flags);
/* Stops a pending timer; stopping a fired or unknown id does nothing. */
void sonde_timer_stop(sonde_loop *lp, int id);
/* Deadline of the active clock's earliest timer, or -1 when it has none. */
double sonde_timer_next(sonde_loop *lp);
/* Number of pending timers on the active clock. */
int sonde_timer_count(sonde_loop *lp);
/* Under virtual time: when the earliest virtual timer is due by `limit`,
 * removes it, stores its token (SONDE_TIMER_TOKEN of its id), moves virtual time up to `at` (never back;
 * NAN means the timer's deadline) and returns 1; otherwise returns 0. One
 * timer at a time, so the scheduler can let the task it wakes run before the
 * next one fires; `at` lets a clock with steps fire on its step. */
int sonde_timer_pop_due(sonde_loop *lp, double limit, double at, int *token);

/* Real operations in flight: transfers, process waits and connections
 * (real_pending) plus real timers that hold (sleeps started in real time). */
int sonde_loop_real_pending(sonde_loop *lp);

/* Queues a completion for Lua; returns 0, or -1 when memory runs out. */
int sonde_loop_complete(sonde_loop *lp, int token, double a, double b);

/* A wait on a descriptor: once the events it waits for come, the poll
 * stops and queues token's completion (a = 0, or the libuv error). The
 * owner initialises and closes `poll`, whose data field stays its own. */
typedef struct sonde_fd_wait {
    uv_poll_t poll; /* first: the callback finds the wait from it */
    int       token;
} sonde_fd_wait;

/* (Re)starts w for `events` (UV_READABLE...) on behalf of token; returns 0
 * or a libuv error. */
int sonde_fd_wait_start(sonde_fd_wait *w, int events, int token);

/* Most due timers one poll queues; more wait for the next poll. */
#define SONDE_POLL_BATCH 1024

/* Runs one turn: queues due real timers (up to SONDE_POLL_BATCH completions)
 * and I/O completions (virtual timers fire only through
 * sonde_timer_pop_due). With may_block it waits for the next real event,
 * unless a due timer is left. Returns the number of queued completions, or
 * -1 when nothing is queued and nothing real could ever complete (idle). */
int sonde_loop_poll(sonde_loop *lp, int may_block);

/* Switches to virtual time starting at `start`: timers started from now on
 * run on it, and now()/time() follow it; time() reads `epoch` at `start`
 * (machinery's mocked clock sets time.time() to its start) or, when epoch
 * is NaN, continues from the real epoch at the switch. Real timers already
 * pending stay real. With on = 0, goes back to real time and moves pending
 * virtual timers onto the real clock, each keeping its distance from now. */
void sonde_loop_set_virtual(sonde_loop *lp, int on, double start, double epoch);
/* Moves virtual time to `t` (never backwards); nothing fires by itself. */
void sonde_loop_advance(sonde_loop *lp, double t);

/* The loop that owns a libuv handle (handles' loop field points at lp->uv). */
#define SONDE_LOOP_OF(handle) ((sonde_loop *)((handle)->loop))

#endif
