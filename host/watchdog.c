/* watchdog.c — the watchdog thread: deadlines, no Lua (see watchdog.h).
 *
 * One per process: a static struct that is never freed, so a signal or a
 * late wake-up can never touch released memory. */
#define _GNU_SOURCE
#include "watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

static struct {
    pthread_mutex_t     mu;
    pthread_cond_t      cv; /* signalled only to stop or to pull a wake-up earlier */
    pthread_t           thread;
    int                 running, stopping;
    int                 armed;
    double              deadline;  /* CLOCK_MONOTONIC seconds */
    double              refire;    /* seconds between fires while still armed */
    double              next_wake; /* when the thread will look again */
    int                 fires;     /* since the last arm */
    sonde_watchdog_fire fire;
    void               *ud;
} wd = {.mu = PTHREAD_MUTEX_INITIALIZER};

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Past ~30 years a deadline means never; a larger double would overflow
 * time_t, and a wait that returns at once would spin. */
#define FAR_FUTURE 1e9

static struct timespec to_timespec(double t) {
    struct timespec ts;
    if (!(t < FAR_FUTURE)) t = FAR_FUTURE;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    return ts;
}

/* Sleeps until the deadline it sees, fires when one has passed while armed.
 * A deadline armed meanwhile lies further ahead (tests end before their
 * timeouts), unless arm() pulls the wake-up in. Found disarmed, it waits
 * with no deadline at all, and the next arm() wakes it. */
static void *watchdog_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&wd.mu);
    while (!wd.stopping) {
        double now = mono_now();
        if (wd.armed && now >= wd.deadline) {
            wd.fires++;
            wd.deadline = now + wd.refire;
            if (wd.fire) wd.fire(wd.ud, wd.fires);
        }
        wd.next_wake = wd.armed ? wd.deadline : FAR_FUTURE;
        if (!wd.armed) {
            pthread_cond_wait(&wd.cv, &wd.mu);
            continue;
        }
        struct timespec ts = to_timespec(wd.next_wake);
        pthread_cond_timedwait(&wd.cv, &wd.mu, &ts);
    }
    pthread_mutex_unlock(&wd.mu);
    return NULL;
}

int sonde_watchdog_start(sonde_watchdog_fire fire, void *ud) {
    int rc = 0;
    pthread_mutex_lock(&wd.mu);
    wd.fire = fire, wd.ud = ud;
    if (!wd.running) {
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&wd.cv, &attr);
        pthread_condattr_destroy(&attr);
        wd.stopping = 0, wd.armed = 0, wd.refire = 1.0;
        rc = pthread_create(&wd.thread, NULL, watchdog_main, NULL);
        if (rc == 0)
            wd.running = 1;
        else
            pthread_cond_destroy(&wd.cv);
    }
    pthread_mutex_unlock(&wd.mu);
    return rc;
}

/* The thread is not in a forked copy, and the lock may be held by it. */
void sonde_watchdog_forked(void) {
    pthread_mutex_init(&wd.mu, NULL);
    wd.running = 0, wd.armed = 0;
}

void sonde_watchdog_arm(double seconds, double refire) {
    pthread_mutex_lock(&wd.mu);
    wd.armed = 1, wd.fires = 0;
    wd.deadline = mono_now() + seconds;
    wd.refire = refire > 0.01 ? refire : 0.01;
    if (wd.running && wd.deadline < wd.next_wake) pthread_cond_signal(&wd.cv);
    pthread_mutex_unlock(&wd.mu);
}

void sonde_watchdog_disarm(void) {
    pthread_mutex_lock(&wd.mu);
    wd.armed = 0;
    pthread_mutex_unlock(&wd.mu);
}

void sonde_watchdog_stop(void) {
    pthread_mutex_lock(&wd.mu);
    int running = wd.running;
    wd.stopping = 1, wd.armed = 0, wd.fire = NULL;
    if (running) pthread_cond_signal(&wd.cv);
    pthread_mutex_unlock(&wd.mu);
    if (!running) return;
    pthread_join(wd.thread, NULL);
    pthread_mutex_lock(&wd.mu);
    wd.running = 0;
    pthread_cond_destroy(&wd.cv);
    pthread_mutex_unlock(&wd.mu);
}
