/* protect.h — internal: a serial `sonde test` outlives a test that kills its
 * process (protect.c). */
#ifndef SONDE_PROTECT_H
#define SONDE_PROTECT_H

/* In main, before the Lua state: makes the run's journal, or takes over the
 * one an earlier image of this process left (SONDE_RESUME), opens the output
 * capture, installs the fatal-signal handlers and prepares the exec that
 * restarts sonde. argv is kept (it must live to the end). Returns 0 (also
 * when the run goes unprotected: no memory to share), or an exit code when
 * an earlier image's run cannot be taken over. */
int sonde_protect_start(char **argv);

/* Once the host handles SIGINT and SIGTERM: the signal mask the run started
 * with (a restarted image starts with them blocked, so that one sent while
 * it restarted waits for its handler). */
void sonde_protect_ready(void);

/* Async-signal-safe, from any thread: the step that is running ended its
 * process `how` ("was killed by SIGSEGV"). Records that in the journal,
 * stops the step's children and execs sonde again, which replays the
 * journal and goes on with the next step. Returns only when this is no
 * protected run in a step (nor a child of one), or when the exec failed. */
void sonde_protect_restart(const char *how);

/* Async-signal-safe: whether a death now would restart sonde (a protected
 * step runs in this process). */
int sonde_protect_armed(void);

/* exit() or _exit() (`fn`) was called with `code`: in a protected step,
 * that step's death (sonde_protect_restart); otherwise returns. */
void sonde_protect_exit_called(const char *fn, int code);

/* Async-signal-safe: sonde itself leaves now (a second Ctrl-C), which is
 * no step's death. */
void sonde_protect_off(void);

#endif
