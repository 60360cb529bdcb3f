/* protect.c — a serial `sonde test` outlives a test that kills its process.
 *
 * A test that crashes its process (a null write through the FFI, a C
 * module's segfault), calls exit() from C, or cannot be interrupted past its
 * timeout would otherwise take the whole run with it: no summary, empty
 * reports. So a serial run journals its steps and results into a memfd
 * (journal.h), and when a step ends the process, sonde execs itself: the
 * fatal-signal handler below, exit() and _exit() (exit.c) and the watchdog
 * thread (lwatchdog.c) record in the journal how the step ended and execve
 * /proc/self/exe with the same arguments, handing the journal and the output
 * capture on by descriptor (SONDE_RESUME). The new image replays the journal
 * to its reporters, reports that step as an error saying how, and goes on
 * with the next one.
 *
 * One process throughout: the shell or CI waits for one pid, the tests'
 * children stay ours (the subreaper flag survives execve), and a run pays no
 * second process (an earlier design forked the runner under a supervisor,
 * 25% of a one-test run's CPU). Everything the exec needs is made at the
 * start (argv, the environment, the directory to go back to), the
 * environment in memory made read-only; the restart itself makes only
 * async-signal-safe calls, so it runs in a signal handler or on the watchdog
 * thread while the Lua thread is stuck. It first stops every child and
 * undoes what execve would keep and a test may have changed: descriptors
 * opened without O_CLOEXEC, fd 1 and 2 on the capture, the working
 * directory (the spec files' paths are relative to it), interval timers,
 * the signal mask. A signal a test ignored stays ignored, as it would have
 * for the rest of the run had the test not died (checking each signal at
 * the start cost 0.13 ms, 1% of a one-test run).
 *
 * What ends the run still: a SIGKILL (the OOM killer, kill -9), as no code
 * runs then; exit_group or _Exit from C. A death outside any step is sonde's
 * own, and ends the run with that signal. --jobs workers need none of this
 * (their parent already handles a death); SONDE_SUPERVISE=off turns it off
 * (a debugger then sees the crash where it happens). */
#define _GNU_SOURCE
#include "protect.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/time.h>

#include "capture.h"
#include "journal.h"
#include "orphans.h"
#include "process.h"

#define RESUME_VAR "SONDE_RESUME" /* pid,journal fd,capture fd,start mask */

static const int         fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
static const char *const fatal_name[] = {"SEGV", "BUS", "ILL", "FPE", "ABRT", "SYS"};
#define FATALS (sizeof fatal / sizeof *fatal)

static struct {
    volatile int on;         /* a death in a step restarts sonde */
    int          resumed;    /* this image took over from an earlier one */
    int          restarting; /* a thread is on its way to execve */
    pid_t        pid;        /* the protected process, not its children */
    char       **argv;
    char       **envp; /* environ at the start, and RESUME_VAR; read-only */
    int          cwd;  /* the directory sonde started in */
    sigset_t     mask; /* the signal mask the run started with */
} p = {.cwd = -1};

static char alt_stack[64 * 1024]; /* a C stack overflow's handler runs here */

/* ---------------------------------------------- async-signal-safe text */

typedef struct {
    char *at, *end;
} text;

static void put(text *t, const char *s) {
    while (*s && t->at < t->end - 1) *t->at++ = *s++;
    *t->at = 0;
}

static void put_int(text *t, long n) {
    char          digits[24], one[2] = {0, 0};
    int           k = 0;
    unsigned long u = n < 0 ? 0 - (unsigned long)n : (unsigned long)n;
    if (n < 0) put(t, "-");
    do digits[k++] = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    while (k > 0) one[0] = digits[--k], put(t, one);
}

static void say(const char *s) {
    if (write(sonde_capture_real_fd(2), s, strlen(s)) < 0) { /* nowhere left to say it */
    }
}

/* ------------------------------------------------------------ restart */

static int in_protected_step(void) {
    sonde_journal_head *h = sonde_journal();
    return p.on && h && h->in_step && getpid() == p.pid;
}

/* Undoes what execve keeps and a test may have changed; the journal and
 * the capture stay open across it. */
static void reset_process(void) {
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); /* a test's descriptors (sockets, pipes) end with this image */
    sonde_capture_hand_over();
    if (fcntl(sonde_journal_fd(), F_SETFD, 0) < 0 || (p.cwd >= 0 && fchdir(p.cwd) < 0)) {
        /* the new image says what it cannot take over */
    }
    struct itimerval off;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
    setitimer(ITIMER_VIRTUAL, &off, NULL);
    setitimer(ITIMER_PROF, &off, NULL);
    /* a SIGINT or SIGTERM waits, pending, for the new image's handler */
    sigset_t mask = p.mask;
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
}

/* 0: no protected step runs; -1: the exec failed (said). */
static int restart(const char *how) {
    if (!in_protected_step()) return 0;
    if (__atomic_exchange_n(&p.restarting, 1, __ATOMIC_SEQ_CST))
        for (;;) pause(); /* another thread is restarting: its execve ends this one */
    sonde_journal_head *h = sonde_journal();
    if (h->step <= h->resume_at) { /* cannot be (an image runs only steps past it): never restart forever */
        say("sonde test: a step that killed sonde before killed it again; the run stops here\n");
        return -1;
    }
    text t = {h->how, h->how + sizeof h->how};
    put(&t, how);
    h->resume_at = h->step;
    h->in_step = 0;
    sonde_proc_kill_all_now();
    sonde_orphans_signal_children(SIGKILL); /* what io.popen and os.execute left in sonde's own group too */
    reset_process();
    execve("/proc/self/exe", p.argv, p.envp);
    say("sonde test: cannot restart sonde after a test killed its process (execve /proc/self/exe failed); the run "
        "stops here\n");
    return -1;
}

void sonde_protect_restart(const char *how) { restart(how); }

void sonde_protect_exit_called(const char *fn, int code) {
    if (!in_protected_step()) return;
    /* what the test printed, into its captured output; not from _exit,
     * which a signal handler may call */
    if (fn[0] != '_') fflush(NULL);
    char how[96];
    text t = {how, how + sizeof how};
    put(&t, "exited with code ");
    put_int(&t, code);
    put(&t, " (");
    put(&t, fn);
    put(&t, "() called from C)");
    restart(how);
}

void sonde_protect_off(void) { p.on = 0; }

int sonde_protect_armed(void) { return in_protected_step(); }

/* ------------------------------------------------------ fatal signals */

static const char *name_of(int sig) {
    for (size_t i = 0; i < FATALS; i++)
        if (fatal[i] == sig) return fatal_name[i];
    return "?";
}

/* In a step: that step's death. Elsewhere (sonde's own code, a child
 * between fork and exec) the process dies of the signal as it would have:
 * a fault faults again once the handler returns, a raised signal is
 * pending until then. */
static void on_fatal(int sig, siginfo_t *si, void *uc) {
    (void)si, (void)uc;
    char how[48];
    text t = {how, how + sizeof how};
    put(&t, "was killed by SIG");
    put(&t, name_of(sig));
    int rc = restart(how);
    if (rc == 0 && p.on && getpid() == p.pid) {
        char line[160];
        text l = {line, line + sizeof line};
        put(&l, "sonde test: killed by SIG");
        put(&l, name_of(sig));
        put(&l, " outside any test, in sonde's own code; the run stops here\n");
        say(line);
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

/* A handler already there (a sanitizer's) stays: its report says more. */
static void install_fatal_handlers(void) {
    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack}, old_ss;
    if (sigaltstack(NULL, &old_ss) == 0 && (old_ss.ss_flags & SS_DISABLE)) sigaltstack(&ss, NULL);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    for (size_t i = 0; i < FATALS; i++)
        if (sigaction(fatal[i], &sa, &old) == 0 && ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL))
            sigaction(fatal[i], &old, NULL);
}

/* ------------------------------------------------------------- start */

static unsigned long long mask_bits(const sigset_t *set) {
    unsigned long long bits = 0;
    for (int s = 1; s <= 64 && s < NSIG; s++)
        if (sigismember(set, s) == 1) bits |= 1ull << (s - 1);
    return bits;
}

static void mask_of_bits(sigset_t *set, unsigned long long bits) {
    sigemptyset(set);
    for (int s = 1; s <= 64 && s < NSIG; s++)
        if (bits & (1ull << (s - 1))) sigaddset(set, s);
}

/* The environment the exec passes: this one, and where the run is. Made
 * read-only, so that a test writing over the heap cannot spoil it. */
static int prepare_exec(char **argv) {
    char   var[128];
    int    len = snprintf(var, sizeof var, RESUME_VAR "=%ld,%d,%d,%llx", (long)p.pid, sonde_journal_fd(),
                          sonde_capture_fd(), mask_bits(&p.mask));
    size_t n = 0;
    while (environ[n]) n++;
    size_t size = (n + 2) * sizeof(char *) + (size_t)len + 1;
    char **env = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (env == MAP_FAILED) return -1;
    memcpy(env, environ, n * sizeof *env); /* the strings are never freed: setenv leaks the ones it replaces */
    env[n] = memcpy(env + n + 2, var, (size_t)len + 1);
    env[n + 1] = NULL;
    mprotect(env, size, PROT_READ);
    p.envp = env, p.argv = argv;
    return 0;
}

/* SONDE_RESUME as an earlier image of this process left it: 1 and its
 * fields, 0 when there is none for this process (a child of a test may
 * have inherited one). */
static int parse_resume(int *journal, int *capture) {
    const char        *v = getenv(RESUME_VAR);
    long               pid;
    unsigned long long bits;
    int ok = v && sscanf(v, "%ld,%d,%d,%llx", &pid, journal, capture, &bits) == 4 && pid == (long)getpid();
    unsetenv(RESUME_VAR); /* not for the tests' children */
    if (ok) mask_of_bits(&p.mask, bits);
    return ok;
}

static int take_over(int journal, int capture) {
    if (sonde_journal_adopt(journal) != 0 || sonde_capture_adopt(capture) != 0) {
        say("sonde test: cannot take the run over after a test killed sonde (its journal or output capture is "
            "gone); the run stops here\n");
        return 2;
    }
    p.resumed = 1;
    return 0;
}

int sonde_protect_start(char **argv) {
    int journal, capture;
    p.pid = getpid();
    pthread_sigmask(SIG_SETMASK, NULL, &p.mask);
    int resumed = parse_resume(&journal, &capture);
    install_fatal_handlers(); /* first: the capture's SIGBUS handler passes on to it */
    if (resumed) {
        int rc = take_over(journal, capture);
        if (rc != 0) return rc;
    } else if (sonde_journal_create() != 0) {
        return 0; /* no memory to share: the run goes unprotected */
    } else {
        sonde_capture_open(); /* before the Lua state: its descriptor goes into the environment */
    }
    p.cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (prepare_exec(argv) == 0) p.on = 1;
    return 0;
}

void sonde_protect_ready(void) {
    if (p.resumed) pthread_sigmask(SIG_SETMASK, &p.mask, NULL);
}
