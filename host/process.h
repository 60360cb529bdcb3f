/* process.h — internal: child processes on the loop, never orphaned.
 *
 * Children are vforked by hand rather than with uv_spawn, because only a hand
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

/* A child's output streams. fd 3 is a channel apart from stdout, which
 * anything the child runs may write to; it exists only when asked for. */
enum { SONDE_STDOUT, SONDE_STDERR, SONDE_FD3, SONDE_STREAMS };

/* One output pipe of a child, read as bytes arrive. stdout and stderr keep
 * their last bytes in the tail, where readers look (one that falls behind
 * loses what slides out). fd 3 holds its bytes until its one reader takes
 * them and loses none: while the tail is full of untaken bytes the host
 * stops reading the pipe, and the child's writes wait. */
typedef struct sonde_stream {
    uv_pipe_t  pipe;
    int        open;   /* being read: more bytes may come */
    int        notify; /* token completed once, at the next bytes or the end; 0: none */
    int        queued; /* fd 3: the tail is a queue for one reader */
    int        paused; /* queued and full: not read until the reader takes */
    sonde_tail tail;
} sonde_stream;

typedef struct sonde_proc {
    sonde_loop        *lp;
    pid_t              pid;
    int                exit_token; /* completion queued when the child exits */
    int                exited;
    uv_pipe_t          in;
    int                in_open;
    int                handles; /* handles whose close callback is pending */
    int                owned;   /* a Lua userdata still points here */
    sonde_stream       streams[SONDE_STREAMS];
    struct sonde_proc *next; /* in the list of children still running */
} sonde_proc;

typedef struct sonde_spawn_opts {
    const char *const *argv;       /* argv[0] is looked up in PATH unless it has a '/' */
    const char *const *env_set;    /* "NAME=value" entries added to the inherited env */
    const char *const *env_unset;  /* names removed from it */
    const char        *cwd;        /* NULL: the host's */
    size_t             tail_bytes; /* how much of each stream to keep */
    int                fd3;        /* the child's fd 3 is a pipe, read as SONDE_FD3 */
    int                exit_token;
} sonde_spawn_opts;

/* Starts a child. Returns it, or NULL with a one-line reason in err. */
sonde_proc *sonde_proc_spawn(sonde_loop *lp, const sonde_spawn_opts *o, char *err, size_t errlen);
/* The most copies sonde_proc_fork makes at once. */
#define SONDE_FORK_MAX 64

/* Makes n copies of the host with fork and no exec, each a child as a
 * spawned one is (its own group, dying with the host, stdin, stdout and
 * stderr pipes, and fd 3's stream, whose write end it keeps at *results).
 * Only a host without children may: a copy would read their pipes too.
 * Returns 0 in the host, with procs[i] the copy that completes tokens[i]
 * at its exit (NULL: no memory to follow it; it ends); i + 1 in copy i;
 * -1 with a one-line reason in err. */
int sonde_proc_fork(sonde_loop *lp, int n, const int *tokens, size_t tail, sonde_proc **procs, int *results, char *err,
                    size_t errlen);
/* Whether this process is a copy sonde_proc_fork made (it must end where
 * its work ends, never return into the program that embeds the host). */
int sonde_proc_is_copy(void);
/* Sends sig to the child's process group; returns 0 or -errno. */
int sonde_proc_signal(sonde_proc *p, int sig);
/* Queues bytes for the child's stdin; returns 0 or a libuv error. */
int  sonde_proc_write(sonde_proc *p, const char *data, size_t len);
void sonde_proc_close_stdin(sonde_proc *p);
/* What a reader at byte `pos` of stream `which` (counted from its first
 * byte) may have: *data and *len are the bytes after pos still kept (they
 * point into the stream until the loop runs again), *skipped those after
 * pos that are not kept any more. Returns the position after *data. */
size_t sonde_proc_peek(sonde_proc *p, int which, size_t pos, const char **data, size_t *len, size_t *skipped);
/* The reader has what it peeked, up to `pos`: fd 3 drops it and reads on. */
void sonde_proc_consume(sonde_proc *p, int which, size_t pos);
/* Whether more bytes may come on stream `which`. */
int sonde_proc_stream_open(const sonde_proc *p, int which);
/* Queues token's completion once, at the stream's next bytes or its end;
 * at once when it has ended. A token armed before is completed now. */
void sonde_proc_notify(sonde_proc *p, int which, int token);
/* The Lua side lets go of p; memory is freed once p has exited and closed.
 * NULL does nothing, as for free(). */
void sonde_proc_release(sonde_proc *p);
/* Watches for the exit of any process, child or not (a pidfd on the loop). */
typedef struct sonde_exit_watch sonde_exit_watch;
/* Queues token's completion (a = 0, or a libuv error) once process pid has
 * exited; *out is closed with sonde_exit_watch_close, which frees it, fired
 * or not (NULL does nothing). Returns 0, UV_ESRCH when no such process
 * exists, or a libuv error. */
int  sonde_exit_watch_start(sonde_loop *lp, pid_t pid, int token, sonde_exit_watch **out);
void sonde_exit_watch_close(sonde_exit_watch *w);
/* Stops every child of lp: SIGTERM to each group, then SIGKILL after grace. */
void sonde_proc_stop_all(sonde_loop *lp, double grace);
/* Async-signal-safe: SIGKILLs every process group sonde started. */
void sonde_proc_kill_all_now(void);

#endif
