/* process.c — vfork/exec with PDEATHSIG, output tails, exit via SIGCHLD. */
#define _GNU_SOURCE
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "journal.h"
#include "orphans.h"
#include "watchdog.h"

extern char **environ;

static sonde_proc *running; /* children not yet reaped, all loops */

/* ------------------------------------------------------------- tails */

static void tail_append(sonde_tail *t, const char *data, size_t len) {
    t->total += len;
    if (!t->data || t->cap == 0) return;
    if (len >= t->cap) {
        memcpy(t->data, data + len - t->cap, t->cap);
        t->len = t->cap;
        return;
    }
    if (t->len + len > t->cap) {
        size_t drop = t->len + len - t->cap;
        memmove(t->data, t->data + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->data + t->len, data, len);
    t->len += len;
}

/* A queue grows rather than drop what its reader has not taken: only what
 * a child left in the pipe at its exit can come past the cap (the pipe's
 * size at most), as reading stops while the queue is full. */
static void stream_append(sonde_stream *st, const char *data, size_t len) {
    sonde_tail *t = &st->tail;
    if (st->queued && t->len + len > t->cap) {
        char *grown = realloc(t->data, t->len + len);
        if (grown) t->data = grown, t->cap = t->len + len;
    }
    tail_append(t, data, len);
}

/* ------------------------------------------------------ handle closing */

static void maybe_free(sonde_proc *p) {
    if (p->owned || p->handles || !p->exited) return;
    for (int i = 0; i < SONDE_STREAMS; i++) free(p->streams[i].tail.data);
    free(p);
}

static void on_closed(uv_handle_t *h) {
    sonde_proc *p = h->data;
    p->handles--;
    maybe_free(p);
}

static void close_pipe(uv_pipe_t *pipe, int *open) {
    if (!*open) return;
    *open = 0;
    uv_close((uv_handle_t *)pipe, on_closed);
}

/* Tells the reader waiting on st, if one is, that bytes came or the end. */
static void stream_wake(sonde_proc *p, sonde_stream *st) {
    int token = st->notify;
    st->notify = 0;
    if (token) sonde_loop_complete(p->lp, token, 0, 0);
}

static void stream_end(sonde_proc *p, sonde_stream *st) {
    close_pipe(&st->pipe, &st->open);
    stream_wake(p, st);
}

/* ------------------------------------------------------------- reading */

static char read_scratch[65536];

/* Room for the next read: a queue takes no more than it can keep. */
static size_t stream_room(const sonde_stream *st) {
    if (!st->queued) return sizeof read_scratch;
    size_t room = st->tail.cap - st->tail.len;
    return room < sizeof read_scratch ? room : sizeof read_scratch;
}

static sonde_stream *stream_of(uv_handle_t *h) {
    sonde_proc *p = h->data;
    for (int i = 0; i < SONDE_STREAMS; i++)
        if (h == (uv_handle_t *)&p->streams[i].pipe) return &p->streams[i];
    return NULL;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)hint;
    *buf = uv_buf_init(read_scratch, (unsigned)stream_room(stream_of(h)));
}

static void set_paused(sonde_stream *st, int paused);

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    sonde_proc   *p = s->data;
    sonde_stream *st = stream_of((uv_handle_t *)s);
    if (n > 0) {
        stream_append(st, buf->base, (size_t)n);
        if (stream_room(st) == 0) set_paused(st, 1);
        stream_wake(p, st);
    }
    if (n < 0 && n != UV_ENOBUFS) stream_end(p, st); /* ENOBUFS: a full queue, which pauses first */
}

static void set_paused(sonde_stream *st, int paused) {
    if (st->paused == paused || !st->open) return;
    st->paused = paused;
    if (paused)
        uv_read_stop((uv_stream_t *)&st->pipe);
    else
        uv_read_start((uv_stream_t *)&st->pipe, on_alloc, on_read);
}

/* Reads what the child left in a pipe before exiting, so that a wait that
 * returns has seen all of the child's own output. */
static void drain_pipe(sonde_stream *st) {
    uv_os_fd_t fd;
    if (!st->open || uv_fileno((uv_handle_t *)&st->pipe, &fd) != 0) return;
    ssize_t n;
    while ((n = read(fd, read_scratch, sizeof read_scratch)) > 0) stream_append(st, read_scratch, (size_t)n);
}

size_t sonde_proc_peek(sonde_proc *p, int which, size_t pos, const char **data, size_t *len, size_t *skipped) {
    const sonde_tail *t = &p->streams[which].tail;
    size_t            first = t->total - t->len; /* the position of data[0] */
    if (pos > t->total) pos = t->total;
    *skipped = pos < first ? first - pos : 0;
    if (pos < first) pos = first;
    *data = t->data ? t->data + (pos - first) : "";
    *len = t->total - pos;
    return t->total;
}

void sonde_proc_consume(sonde_proc *p, int which, size_t pos) {
    sonde_stream *st = &p->streams[which];
    sonde_tail   *t = &st->tail;
    size_t        first = t->total - t->len;
    if (!st->queued || pos <= first) return;
    size_t drop = pos - first < t->len ? pos - first : t->len;
    memmove(t->data, t->data + drop, t->len - drop);
    t->len -= drop;
    set_paused(st, 0);
}

int sonde_proc_stream_open(const sonde_proc *p, int which) { return p->streams[which].open; }

void sonde_proc_notify(sonde_proc *p, int which, int token) {
    sonde_stream *st = &p->streams[which];
    stream_wake(p, st); /* a reader is never left without its wake */
    st->notify = token;
    if (!st->open) stream_wake(p, st);
}

/* --------------------------------------------------------------- exit */

static void unlink_running(sonde_proc *p) {
    for (sonde_proc **pp = &running; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static void child_watch_update(sonde_loop *lp) {
    if (lp->children_running > 0)
        uv_ref((uv_handle_t *)&lp->child_watch);
    else
        uv_unref((uv_handle_t *)&lp->child_watch);
}

/* Marks the child exited, ends its streams and tells Lua how it ended. */
static void mark_exited(sonde_proc *p, int status) {
    p->exited = 1;
    unlink_running(p);
    if (kill(-p->pid, 0) < 0 && errno == ESRCH) sonde_orphans_drop_group(p->pid);
    p->lp->children_running--;
    child_watch_update(p->lp);
    for (int i = 0; i < SONDE_STREAMS; i++) {
        drain_pipe(&p->streams[i]);
        stream_end(p, &p->streams[i]);
    }
    close_pipe(&p->in, &p->in_open);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1, sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    sonde_loop_complete(p->lp, p->exit_token, code, sig);
    maybe_free(p);
}

/* Reaps the children of lp that have exited; returns how many still run. */
static int reap(sonde_loop *lp) {
    int left = 0;
    for (sonde_proc *p = running, *next; p; p = next) {
        next = p->next;
        int status;
        if (p->lp != lp) continue;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid)
            mark_exited(p, status);
        else
            left++;
    }
    return left;
}

static void on_sigchld(uv_signal_t *h, int signum) {
    (void)signum;
    reap(h->data);
    sonde_orphans_reap_adopted();
}

static int child_watch_start(sonde_loop *lp) {
    if (lp->child_watch_on) return 0;
    uv_signal_init(&lp->uv, &lp->child_watch);
    lp->child_watch.data = lp;
    int rc = uv_signal_start(&lp->child_watch, on_sigchld, SIGCHLD);
    if (rc == 0) lp->child_watch_on = 1;
    return rc;
}

/* ------------------------------------------------------------ spawning */

/* Finds an executable for name in PATH; returns a malloc'd path or NULL. */
static char *find_in_path(const char *name) {
    if (strchr(name, '/')) return access(name, X_OK) == 0 ? strdup(name) : NULL;
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    size_t nlen = strlen(name);
    while (*path) {
        size_t dlen = strcspn(path, ":");
        char  *full = malloc(dlen + nlen + 2);
        if (!full) return NULL;
        snprintf(full, dlen + nlen + 2, "%.*s/%s", (int)dlen, dlen ? path : ".", name);
        if (access(full, X_OK) == 0) return full;
        free(full);
        path += dlen + (path[dlen] == ':');
    }
    return NULL;
}

static int env_name_matches(const char *entry, const char *name) {
    size_t n = strcspn(name, "=");
    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

static int env_listed(const char *entry, const char *const *names) {
    for (; names && *names; names++)
        if (env_name_matches(entry, *names)) return 1;
    return 0;
}

/* The inherited environment with o's changes, and the host's mark in place
 * of any other (orphans.h: the reaper finds descendants by it); a
 * malloc'd array (entries are borrowed) or NULL when memory runs out. */
static char **build_env(const sonde_spawn_opts *o) {
    const char *mark = sonde_orphans_mark();
    size_t      n = 0, add = 0, k = 0;
    while (environ[n]) n++;
    while (o->env_set && o->env_set[add]) add++;
    char **env = malloc(sizeof *env * (n + add + 2));
    if (!env) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!env_listed(environ[i], o->env_set) && !env_listed(environ[i], o->env_unset) &&
            !(mark && env_name_matches(environ[i], mark)))
            env[k++] = environ[i];
    for (size_t i = 0; i < add; i++)
        if (!(mark && env_name_matches(o->env_set[i], mark))) env[k++] = (char *)o->env_set[i];
    if (mark) env[k++] = (char *)mark;
    env[k] = NULL;
    return env;
}

/* What the child was doing when it failed, sent with the errno: a missing
 * cwd must not read as a missing command. */
enum spawn_step { STEP_FDS, STEP_CWD, STEP_EXEC };

/* Puts `from` at descriptor `to`, which the exec keeps: dup2 onto itself
 * would leave the CLOEXEC of pipe2 in place. */
static int move_fd(int from, int to) { return from == to ? fcntl(to, F_SETFD, 0) : dup2(from, to); }

/* The vfork child shares the host's memory: a handler of the host that ran
 * in it would change the host's state, so every caught signal is back to
 * its default (the child has its own table) before any is unblocked. */
static void default_signals(void) {
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)
            signal(sig, SIG_DFL);
    }
    signal(SIGPIPE, SIG_DFL); /* ignored by the host, as SIGINT and SIGTERM may be */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* In the child, between vfork and exec: only async-signal-safe calls, and
 * no return (it runs on the host's stack). fds are its stdin, stdout,
 * stderr and fd 3 (-1: none). */
static void child_exec(const char *path, const sonde_spawn_opts *o, char **env, const int fds[4], int errpipe,
                       pid_t parent) {
    int failure[2] = {STEP_FDS, 0}; /* step, errno */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    default_signals();
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0 && move_fd(fds[i], i) < 0) goto fail;
    /* libcurl's sockets are not CLOEXEC: no descriptor of the host but the
     * ones above may reach the child (the exec-error pipe closes on exec) */
    close_range(fds[3] >= 0 ? 4 : 3, ~0U, CLOSE_RANGE_CLOEXEC);
    failure[0] = STEP_CWD;
    if (o->cwd && chdir(o->cwd) < 0) goto fail;
    failure[0] = STEP_EXEC;
    execve(path, (char *const *)o->argv, env);
fail:
    failure[1] = errno;
    if (write(errpipe, failure, sizeof failure) < 0) {
    }
    _exit(127);
}

static int open_pipe(sonde_loop *lp, sonde_proc *p, uv_pipe_t *pipe, int fd) {
    uv_pipe_init(&lp->uv, pipe, 0);
    pipe->data = p;
    p->handles++;
    return uv_pipe_open(pipe, fd);
}

/* Waits for the child's exec; returns 0 when it ran, or the errno it hit
 * and sets *step to what it was doing. */
static int exec_result(int errpipe, int *step) {
    int     failure[2] = {0, 0};
    ssize_t n;
    do n = read(errpipe, failure, sizeof failure);
    while (n < 0 && errno == EINTR);
    close(errpipe);
    *step = failure[0];
    return n == sizeof failure ? failure[1] : 0;
}

/* fd 3's queue holds at least one read, so that it is never too full to
 * be read at all. */
static int stream_init(sonde_stream *st, size_t cap, int queued) {
    if (queued && cap < sizeof read_scratch) cap = sizeof read_scratch;
    st->queued = queued;
    st->tail.cap = cap;
    st->tail.data = malloc(cap ? cap : 1);
    return st->tail.data ? 0 : -1;
}

static sonde_proc *proc_new(sonde_loop *lp, const sonde_spawn_opts *o) {
    sonde_proc *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->lp = lp;
    p->owned = 1;
    p->exit_token = o->exit_token;
    int rc = stream_init(&p->streams[SONDE_STDOUT], o->tail_bytes, 0);
    rc |= stream_init(&p->streams[SONDE_STDERR], o->tail_bytes, 0);
    if (o->fd3) rc |= stream_init(&p->streams[SONDE_FD3], o->tail_bytes, 1);
    if (rc == 0) return p;
    p->owned = 0, p->exited = 1;
    maybe_free(p);
    return NULL;
}

static void close_fds(int *fds, int n) {
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
}

/* The pipes of a spawn; of each, [0] reads and [1] writes. OUT, ERR and
 * FD3 come in the order of the streams (SONDE_STDOUT...). */
enum { PIPE_IN, PIPE_OUT, PIPE_ERR, PIPE_FD3, PIPE_EXEC, PIPES };

static int make_pipes(int pipes[PIPES][2], int fd3) {
    for (int i = 0; i < PIPES; i++)
        if ((i != PIPE_FD3 || fd3) && pipe2(pipes[i], O_CLOEXEC) < 0) return -1;
    return 0;
}

/* The host's ends of the pipes, read from now on. */
static void open_streams(sonde_proc *p, int pipes[PIPES][2]) {
    open_pipe(p->lp, p, &p->in, pipes[PIPE_IN][1]);
    p->in_open = 1;
    for (int i = 0; i < SONDE_STREAMS; i++) {
        sonde_stream *st = &p->streams[i];
        int           fd = pipes[PIPE_OUT + i][0];
        if (fd < 0) continue;
        open_pipe(p->lp, p, &st->pipe, fd);
        st->open = 1;
        uv_read_start((uv_stream_t *)&st->pipe, on_alloc, on_read);
    }
}

/* A child just started with `pipes` becomes p, one of the running: its
 * group is stopped with the others, its streams read, its exit watched. */
static sonde_proc *start_tracking(sonde_loop *lp, sonde_proc *p, pid_t pid, int pipes[PIPES][2]) {
    p->pid = pid;
    sonde_orphans_add_group(pid);
    open_streams(p, pipes);
    p->next = running;
    running = p;
    lp->children_running++;
    child_watch_update(lp);
    return p;
}

/* vfork rather than fork: the host's pages are neither copied nor made
 * copy-on-write (a fork made every page the host wrote afterwards a fault,
 * a --jobs parent's largest cost), and the host resumes once the child has
 * exec'd or failed. Signals stay blocked until the child has its own
 * defaults. Returns the pid or -1 (errno). */
static pid_t vfork_exec(const char *path, const sonde_spawn_opts *o, char **env, const int fds[4], int errpipe) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid(), pid = vfork();
    if (pid == 0) child_exec(path, o, env, fds, errpipe, parent);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return pid;
}

sonde_proc *sonde_proc_spawn(sonde_loop *lp, const sonde_spawn_opts *o, char *err, size_t errlen) {
    int   pipes[PIPES][2];
    char *path = find_in_path(o->argv[0]);
    memset(pipes, -1, sizeof pipes);
    if (!path) {
        snprintf(err, errlen, "cannot run '%s': no such executable%s", o->argv[0],
                 strchr(o->argv[0], '/') ? "" : " in PATH");
        return NULL;
    }
    sonde_orphans_start_reaper();
    char      **env = build_env(o);
    sonde_proc *p = proc_new(lp, o);
    if (!env || !p || child_watch_start(lp) != 0 || make_pipes(pipes, o->fd3) < 0) goto fail_errno;
    int   child_fds[4] = {pipes[PIPE_IN][0], pipes[PIPE_OUT][1], pipes[PIPE_ERR][1], pipes[PIPE_FD3][1]};
    pid_t pid = vfork_exec(path, o, env, child_fds, pipes[PIPE_EXEC][1]);
    if (pid < 0) goto fail_errno;
    setpgid(pid, pid);
    close_fds(child_fds, 4);
    close(pipes[PIPE_EXEC][1]);
    int step, e = exec_result(pipes[PIPE_EXEC][0], &step);
    free(path), free(env);
    if (e) {
        waitpid(pid, NULL, 0);
        close_fds((int[]){pipes[PIPE_IN][1], pipes[PIPE_OUT][0], pipes[PIPE_ERR][0], pipes[PIPE_FD3][0]}, 4);
        if (step == STEP_CWD)
            snprintf(err, errlen, "cannot run '%s' in '%s' (cwd): %s", o->argv[0], o->cwd, strerror(e));
        else
            snprintf(err, errlen, "cannot run '%s': %s", o->argv[0], strerror(e));
        p->owned = 0, p->exited = 1;
        maybe_free(p);
        return NULL;
    }
    return start_tracking(lp, p, pid, pipes);
fail_errno:
    snprintf(err, errlen, "cannot run '%s': %s", o->argv[0], strerror(errno));
    close_fds(&pipes[0][0], 2 * PIPES);
    free(path), free(env);
    if (p) p->owned = 0, p->exited = 1, maybe_free(p);
    return NULL;
}

/* ------------------------------------------------------------ forking
 * A copy of the host made without exec starts at once, with everything the
 * host had loaded: a --jobs worker forked from its parent skips the exec,
 * the linking and the loading that cost a spawned one most of its start. */

static int is_copy; /* this process is a copy sonde_proc_fork made */

int sonde_proc_is_copy(void) { return is_copy; }

/* Closes every pipe end of the copies but `keep`. */
static void close_all_but(int pipes[][PIPES][2], int n, int keep) {
    for (int i = 0; i < n; i++)
        for (int k = 0; k < PIPES; k++)
            for (int e = 0; e < 2; e++)
                if (pipes[i][k][e] >= 0 && pipes[i][k][e] != keep) close(pipes[i][k][e]);
}

/* In copy `me`: its own group, death with the host, its pipes at fd 0-2,
 * and a loop, capture, journal and reaper of its own. Returns its results
 * fd, or -1 when the host is gone already. */
static int become_copy(sonde_loop *lp, int pipes[][PIPES][2], int n, int me, pid_t parent) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int results = pipes[me][PIPE_FD3][1];
    is_copy = 1;
    if (move_fd(pipes[me][PIPE_IN][0], 0) < 0 || move_fd(pipes[me][PIPE_OUT][1], 1) < 0 ||
        move_fd(pipes[me][PIPE_ERR][1], 2) < 0)
        _exit(127);
    close_all_but(pipes, n, results);
    uv_loop_fork(&lp->uv);
    sonde_orphans_forked();
    sonde_capture_forked();
    sonde_journal_forked();
    sonde_watchdog_forked();
    return results;
}

/* The host's side of copy i, read from now on as a spawned child's is. */
static sonde_proc *adopt_copy(sonde_loop *lp, pid_t pid, int pipes[PIPES][2], int token, size_t tail) {
    sonde_spawn_opts o = {.tail_bytes = tail, .fd3 = 1, .exit_token = token};
    sonde_proc      *p = proc_new(lp, &o);
    close_fds((int[]){pipes[PIPE_IN][0], pipes[PIPE_OUT][1], pipes[PIPE_ERR][1], pipes[PIPE_FD3][1]}, 4);
    close_fds(pipes[PIPE_EXEC], 2);
    if (!p) { /* no memory to read it: it gets EOF and ends */
        close_fds((int[]){pipes[PIPE_IN][1], pipes[PIPE_OUT][0], pipes[PIPE_ERR][0], pipes[PIPE_FD3][0]}, 4);
        return NULL;
    }
    return start_tracking(lp, p, pid, pipes);
}

int sonde_proc_fork(sonde_loop *lp, int n, const int *tokens, size_t tail, sonde_proc **procs, int *results, char *err,
                    size_t errlen) {
    int pipes[SONDE_FORK_MAX][PIPES][2];
    memset(pipes, -1, sizeof pipes);
    if (n < 1 || n > SONDE_FORK_MAX || running) {
        snprintf(err, errlen, "cannot fork %d copies of a host with %s", n, running ? "children" : "that count");
        return -1;
    }
    sonde_orphans_start_reaper();
    for (int i = 0; i < n; i++)
        if (make_pipes(pipes[i], 1) < 0) goto fail_errno;
    if (child_watch_start(lp) != 0) goto fail_errno;
    fflush(NULL); /* what stdio holds would be written by each copy too */
    pid_t parent = getpid(), pids[SONDE_FORK_MAX];
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            *results = become_copy(lp, pipes, n, i, parent);
            return i + 1;
        }
        if (pids[i] < 0) {
            for (int k = 0; k < i; k++) kill(pids[k], SIGKILL), waitpid(pids[k], NULL, 0);
            goto fail_errno;
        }
        setpgid(pids[i], pids[i]);
    }
    for (int i = 0; i < n; i++) procs[i] = adopt_copy(lp, pids[i], pipes[i], tokens[i], tail);
    return 0;
fail_errno:
    snprintf(err, errlen, "cannot fork the host: %s", strerror(errno));
    close_all_but(pipes, n, -1);
    return -1;
}

/* ------------------------------------------------------------ control */

void sonde_proc_kill_all_now(void) {
    sonde_orphans_signal_groups(SIGKILL);
    sonde_orphans_signal_adopted(SIGKILL);
}

int sonde_proc_signal(sonde_proc *p, int sig) {
    if (p->exited) return -ESRCH;
    if (kill(-p->pid, sig) == 0 || kill(p->pid, sig) == 0) return 0;
    return -errno;
}

static void on_written(uv_write_t *req, int status) {
    (void)status;
    free(req);
}

int sonde_proc_write(sonde_proc *p, const char *data, size_t len) {
    if (!p->in_open) return UV_EPIPE;
    uv_write_t *req = malloc(sizeof *req + len);
    if (!req) return UV_ENOMEM;
    char *copy = (char *)(req + 1);
    memcpy(copy, data, len);
    uv_buf_t buf = uv_buf_init(copy, (unsigned)len);
    int      rc = uv_write(req, (uv_stream_t *)&p->in, &buf, 1, on_written);
    if (rc) free(req);
    return rc;
}

void sonde_proc_close_stdin(sonde_proc *p) { close_pipe(&p->in, &p->in_open); }

void sonde_proc_release(sonde_proc *p) {
    if (!p) return;
    p->owned = 0;
    maybe_free(p);
}

/* ------------------------------------------------- any process's exit
 * A process that is not our child (one a child left behind, a daemon) sends
 * us no SIGCHLD; its pidfd turns readable when it exits. */

struct sonde_exit_watch {
    sonde_fd_wait pidfd; /* readable once the process has exited */
    int           fd;
};

static void on_exit_watch_closed(uv_handle_t *h) {
    sonde_exit_watch *w = h->data;
    close(w->fd);
    free(w);
}

int sonde_exit_watch_start(sonde_loop *lp, pid_t pid, int token, sonde_exit_watch **out) {
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return uv_translate_sys_error(errno);
    sonde_exit_watch *w = calloc(1, sizeof *w);
    int               rc = w ? uv_poll_init(&lp->uv, &w->pidfd.poll, fd) : UV_ENOMEM;
    if (rc != 0) {
        close(fd);
        free(w);
        return rc;
    }
    w->pidfd.poll.data = w;
    w->fd = fd;
    sonde_fd_wait_start(&w->pidfd, UV_READABLE, token);
    *out = w;
    return 0;
}

void sonde_exit_watch_close(sonde_exit_watch *w) {
    if (w) uv_close((uv_handle_t *)&w->pidfd.poll, on_exit_watch_closed);
}

/* ------------------------------------------------------------ stopping */

static void on_grace_over(uv_timer_t *t) { *(int *)t->data = 1; }
static void free_handle(uv_handle_t *h) { free(h); }

/* How many of what await_exits waits for still run, reaping those gone. */
static int still_running(sonde_loop *lp, int adopted) {
    return reap(lp) + (adopted ? sonde_orphans_reap_adopted() : 0);
}

/* Runs the loop until no child of lp is left running (nor, with `adopted`,
 * any adopted orphan) or `grace` seconds have passed (< 0: no limit). Each
 * exit is a SIGCHLD that wakes the loop, and its handler reaps. The timer
 * is freed by its close callback, whenever the loop runs it. */
static void await_exits(sonde_loop *lp, int adopted, double grace) {
    if (grace == 0 || still_running(lp, adopted) == 0 || child_watch_start(lp) != 0) return;
    int         over = 0;
    uv_timer_t *timer = grace > 0 ? malloc(sizeof *timer) : NULL;
    if (grace > 0 && !timer) return; /* no memory to time the grace: no grace */
    if (timer) {
        uv_timer_init(&lp->uv, timer);
        timer->data = &over;
        uv_timer_start(timer, on_grace_over, sonde_ms_of(grace), 0);
    }
    while (!over && still_running(lp, adopted) > 0) uv_run(&lp->uv, UV_RUN_ONCE);
    if (timer) uv_close((uv_handle_t *)timer, free_handle);
}

/* Adopted orphans get the children's grace, then are killed once every
 * child is reaped: a killed child's own orphans come to us too. */
void sonde_proc_stop_all(sonde_loop *lp, double grace) {
    sonde_orphans_signal_groups(SIGTERM);
    sonde_orphans_signal_adopted(SIGTERM);
    await_exits(lp, 1, grace);
    sonde_orphans_kill_groups();
    await_exits(lp, 0, -1);
    sonde_orphans_kill_adopted();
}
