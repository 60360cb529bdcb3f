/* supervise.c — a serial `sonde test` runs under a small supervisor.
 *
 * A test that crashes its process (a null write through the FFI, a C
 * module's segfault), calls exit() from C, or cannot be interrupted past its
 * timeout would otherwise take the whole run with it: no summary, empty
 * reports. So `sonde test` forks before it makes a Lua state: the child is
 * the runner, and journals its steps and results into memory it shares
 * with the parent (journal.h). When the runner dies in the middle of a step
 * (a test, a hook, a describe body, loading a file), the parent forks
 * another, which replays the journal, reports that step as an error saying
 * how its process ended, and goes on from the next one. A runner that ends
 * between steps ends the run with its own exit code. --jobs workers need
 * none of this (their parent already handles a death).
 *
 * Signals sent to the supervisor are passed on to the runner, the first
 * one marked (sigqueue with SONDE_FORWARDED): Ctrl-C at a terminal reaches
 * both processes, and the runner must not count the copy as a second
 * interrupt (which exits at once). A SIGINT or SIGTERM is also counted in
 * the journal: a runner that dies after one is replaced by one that stops
 * the run at once (exit 130, reports written). */
#define _GNU_SOURCE
#include "supervise.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sys/prctl.h>
#include <sys/wait.h>

#include "capture.h"
#include "journal.h"

static volatile pid_t runner; /* 0 between runners */
static volatile int   passed; /* signals passed on to this runner */
static const int      passed_on[] = {SIGINT, SIGTERM, SIGHUP};

/* Counted in the journal first: a runner that was not there yet, or not
 * handling signals yet, reads the count when it starts its run. */
static void pass_on(int sig) {
    sonde_journal_note_stop();
    pid_t pid = runner;
    if (pid <= 0) return;
    union sigval v = {.sival_int = passed++ == 0 ? SONDE_FORWARDED : SONDE_FORWARDED_AGAIN};
    sigqueue(pid, sig, v); /* a second one is meant: the runner leaves at once */
}

static void handle_signals(void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof passed_on / sizeof *passed_on; i++) sigaction(passed_on[i], &sa, NULL);
}

/* In the new runner: dies with the supervisor. SIGINT and SIGTERM are
 * ignored until its host handles them (sonde_new): the supervisor counts
 * them meanwhile, so one that comes that early still stops the run. */
static int become_runner(pid_t supervisor) {
    handle_signals(SIG_DFL);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != supervisor) _exit(1); /* the supervisor died before prctl */
    sonde_journal_attach();
    return -1;
}

/* How a runner that died in a step ended, for that step's error: the
 * watchdog's words when it stopped the process. */
static void describe_death(sonde_journal_head *h, int status) {
    if (h->watchdog[0]) {
        memcpy(h->how, h->watchdog, sizeof h->how);
        h->watchdog[0] = 0;
    } else if (WIFSIGNALED(status)) {
        snprintf(h->how, sizeof h->how, "was killed by SIG%s", sigabbrev_np(WTERMSIG(status)));
    } else {
        snprintf(h->how, sizeof h->how, "exited with code %d (exit() called from C?)", WEXITSTATUS(status));
    }
}

/* The run's exit code once a runner ended it between steps: its own. A
 * death there is in sonde's own code, not in a test's. */
static int exit_code_of(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    int sig = WTERMSIG(status);
    if (sig != SIGINT && sig != SIGTERM && sig != SIGHUP)
        fprintf(stderr,
                "sonde test: the runner was killed by SIG%s outside any test, in sonde's own code; the run "
                "stops here\n",
                sigabbrev_np(sig));
    return 128 + sig;
}

/* A runner that SIGINT/SIGTERM/SIGHUP ended, or that left at once on a
 * second one (exit code 128 + the signal), ended the run as asked. */
static int stopped_on_request(int status) {
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status) - 128;
    for (size_t i = 0; i < sizeof passed_on / sizeof *passed_on; i++)
        if (sig == passed_on[i]) return 1;
    return 0;
}

int sonde_supervise(void) {
    if (sonde_journal_create() != 0) return -1; /* no shared memory: run unsupervised */
    sonde_capture_open(); /* shared by the runners: one that dies leaves its test's output to the next */
    sonde_journal_head *h = sonde_journal();
    pid_t               self = getpid();
    handle_signals(pass_on);
    for (;;) {
        fflush(NULL);
        passed = 0;
        pid_t pid = fork();
        if (pid == 0) return become_runner(self);
        if (pid < 0) {
            perror("sonde test: cannot fork the runner");
            return 2;
        }
        runner = pid;
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        runner = 0;
        if (!h->in_step || (h->stops && stopped_on_request(status))) return exit_code_of(status);
        if (h->step <= h->resume_at) { /* cannot happen: a new runner only starts steps past it */
            fprintf(stderr, "sonde test: a new runner died in step %llu again; the run stops here\n",
                    (unsigned long long)h->step);
            return 2;
        }
        describe_death(h, status);
        h->resume_at = h->step;
        h->in_step = 0;
    }
}
