/* process.h — internal: child processes on the loop, never orphaned.
 *
 * Children are forked by hand rather than with uv_spawn, because only a hand
 * fork can set PR_SET_PDEATHSIG between fork and exec: a child then dies with
 * the host even when the host is SIGKILLed. Each child leads its own process
 * group so that stopping it stops whatever it started; what leaves the group
 * is orphans.c's to find. */
#ifndef SONDE_PROCESS_H
#define SONDE_PROCESS_H

#include <sys/types.h>

#include "loop.h"

/* Keeps the last `cap` bytes written to a stream, in one piece: data[0]
 * is the oldest byte kept. */
typedef struct sonde_tail {
    char  *data;
    size_t cap, len;
    size_t total; /* bytes ever written, kept or not */
} sonde_tail;

typedef struct sonde_proc {
    sonde_loop        *lp;
    pid_t              pid;
    int                exit_token; /* completion queued when the child exits */
    int                exited;
    uv_pipe_t          in, out, err;
    int                in_open, out_open, err_open;
    int                handles; /* handles whose close callback is pending */
    int                owned;   /* a Lua userdata still points here */
    sonde_tail         out_tail, err_tail;
    struct sonde_proc *next; /* in the list of children still running */
} sonde_proc;

typedef struct sonde_spawn_opts {
    const char *const *argv;       /* argv[0] is looked up in PATH unless it has a '/' */
    const char *const *env_set;    /* "NAME=value" entries added to the inherited env */
    const char *const *env_unset;  /* names removed from it */
    const char        *cwd;        /* NULL: the host's */
    size_t             tail_bytes; /* how much of stdout/stderr to keep */
    int                exit_token;
} sonde_spawn_opts;

/* Starts a child. Returns it, or NULL with a one-line reason in err. */
sonde_proc *sonde_proc_spawn(sonde_loop *lp, const sonde_spawn_opts *o, char *err, size_t errlen);
/* Sends sig to the child's process group; returns 0 or -errno. */
int sonde_proc_signal(sonde_proc *p, int sig);
/* Queues bytes for the child's stdin; returns 0 or a libuv error. */
int  sonde_proc_write(sonde_proc *p, const char *data, size_t len);
void sonde_proc_close_stdin(sonde_proc *p);
/* The Lua side lets go of p; memory is freed once p has exited and closed. */
void sonde_proc_release(sonde_proc *p);
/* Watches for the exit of any process, child or not (a pidfd on the loop). */
typedef struct sonde_exit_watch sonde_exit_watch;
/* Queues token's completion (a = 0, or a libuv error) once process pid has
 * exited; *out is closed with sonde_exit_watch_close, which frees it, fired
 * or not. Returns 0, UV_ESRCH when no such process exists, or a libuv error. */
int  sonde_exit_watch_start(sonde_loop *lp, pid_t pid, int token, sonde_exit_watch **out);
void sonde_exit_watch_close(sonde_exit_watch *w);
/* Stops every child of lp: SIGTERM to each group, then SIGKILL after grace. */
void sonde_proc_stop_all(sonde_loop *lp, double grace);
/* Async-signal-safe: SIGKILLs every process group sonde started. */
void sonde_proc_kill_all_now(void);

#endif
