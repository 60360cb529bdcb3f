/* orphans.c — groups, adoption and the reaper process (orphans.h).
 *
 * Much of this runs where only async-signal-safe calls are allowed (a
 * signal handler's last resort, the reaper after fork), so /proc is read
 * with open, getdents64 and read into fixed buffers, never with stdio or
 * malloc. */
#define _GNU_SOURCE
#include "orphans.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define MARK_NAME "SONDE_HOSTS"

/* Process groups ever started, for the async-signal-safe last resort. */
#define MAX_GROUPS 4096
static volatile pid_t groups[MAX_GROUPS];
static volatile int   group_count;

static int   reaper_fd = -1;
static pid_t reaper_pid;
static int   adopting;   /* this process is a child subreaper */
static char  token[48];  /* this host's mark: pid.nanoseconds, unique */
static char *mark_entry; /* MARK_NAME=<marks of the hosts above> <token> */

/* ------------------------------------------------------------- /proc */

/* out = prefix, the decimal n, suffix (out holds 64 bytes). */
static void proc_path(char *out, const char *prefix, long n, const char *suffix) {
    char digits[24];
    int  k = 0;
    do digits[k++] = (char)('0' + n % 10);
    while ((n /= 10) > 0);
    size_t len = strlen(prefix);
    memcpy(out, prefix, len);
    while (k > 0) out[len++] = digits[--k];
    strcpy(out + len, suffix);
}

/* The number that name spells in decimal digits, or -1. */
static long parse_number(const char *name) {
    long n = 0;
    if (!*name) return -1;
    for (; *name; name++)
        if (*name < '0' || *name > '9' || n > 100000000)
            return -1;
        else
            n = n * 10 + (*name - '0');
    return n;
}

typedef int (*each_pid_fn)(long pid, void *arg);

/* Calls fn for each entry of directory path named by a number (/proc's
 * processes, a process's threads); returns the sum of what fn returned. */
static int each_numbered_entry(const char *path, each_pid_fn fn, void *arg) {
    char    buf[4096];
    ssize_t n;
    int     sum = 0, fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return 0;
    while ((n = getdents64(fd, buf, sizeof buf)) > 0)
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            long             num = parse_number(d->d_name);
            off += d->d_reclen;
            if (num > 0) sum += fn(num, arg);
        }
    close(fd);
    return sum;
}

struct child_walk {
    each_pid_fn fn;
    void       *arg;
};

/* The children of thread tid, listed by the kernel as decimal numbers. */
static int each_child_of_thread(long tid, void *arg) {
    struct child_walk *walk = arg;
    char               path[64], buf[4096];
    long               pid = 0;
    ssize_t            n;
    int                sum = 0;
    proc_path(path, "/proc/self/task/", tid, "/children");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] >= '0' && buf[i] <= '9')
                pid = pid * 10 + (buf[i] - '0');
            else if (pid > 0)
                sum += walk->fn(pid, walk->arg), pid = 0;
        }
    close(fd);
    if (pid > 0) sum += walk->fn(pid, walk->arg);
    return sum;
}

/* Calls fn for each child of this process; returns the sum of its results. */
static int each_child(each_pid_fn fn, void *arg) {
    struct child_walk walk = {fn, arg};
    return each_numbered_entry("/proc/self/task", each_child_of_thread, &walk);
}

/* --------------------------------------------------------------- mark */

/* Whether a "NAME=value" environment entry is MARK_NAME with the token as
 * one of its space-separated words. */
static int entry_has_token(const char *entry) {
    size_t name = strlen(MARK_NAME "="), len = strlen(token);
    if (strncmp(entry, MARK_NAME "=", name) != 0) return 0;
    for (const char *w = entry + name; *w; w += strspn(w, " ")) {
        size_t word = strcspn(w, " ");
        if (word == len && memcmp(w, token, len) == 0) return 1;
        w += word;
    }
    return 0;
}

/* Whether process pid's environment carries this host's mark, read as a
 * stream of NUL-ended entries (a zombie's, or another user's, reads empty). */
static int carries_mark(long pid) {
    static char entry[8192];
    char        path[64], buf[4096];
    size_t      len = 0;
    int         found = 0;
    ssize_t     n;
    proc_path(path, "/proc/", pid, "/environ");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    while (!found && (n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n && !found; i++) {
            if (buf[i] != '\0') {
                if (len < sizeof entry - 1) entry[len] = buf[i];
                len++;
                continue;
            }
            if (len < sizeof entry) entry[len] = '\0', found = entry_has_token(entry);
            len = 0;
        }
    close(fd);
    return found;
}

static void make_mark(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(token, sizeof token, "%ld.%lld%09ld", (long)getpid(), (long long)ts.tv_sec, ts.tv_nsec);
    const char *above = getenv(MARK_NAME);
    size_t      len = sizeof MARK_NAME "= " + (above ? strlen(above) : 0) + strlen(token);
    if ((mark_entry = malloc(len)))
        snprintf(mark_entry, len, "%s=%s%s%s", MARK_NAME, above ? above : "", above && *above ? " " : "", token);
}

const char *sonde_orphans_mark(void) { return mark_entry; }

/* ------------------------------------------------------------ reaper
 * The reaper learns each group over a pipe (pgid to add, -pgid to drop)
 * and, when the pipe closes because the host is gone however it went,
 * stops them all, then every process that carries the host's mark. */

static int signal_list(const pid_t *list, int n, int sig) {
    int any = 0;
    for (int i = 0; i < n; i++)
        if (list[i] > 0) any = 1, kill(-list[i], sig);
    return any;
}

static int signal_if_marked(long pid, void *sig) {
    if (pid == getpid() || !carries_mark(pid)) return 0;
    kill((pid_t)pid, *(int *)sig);
    return 1;
}

static int signal_marked(int sig) { return each_numbered_entry("/proc", signal_if_marked, &sig); }

static void reaper_stop(const pid_t *list, int n) {
    int any = signal_list(list, n, SIGTERM);
    if (!(signal_marked(SIGTERM) + any)) return; /* nothing left: no grace to wait out */
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    signal_list(list, n, SIGKILL);
    /* Again while a round finds some: what a marked process forked as the
     * last round went by; one killed but not yet gone is found again (a
     * few rounds at most: a dead process's environment reads empty). */
    for (int round = 0; round < 8 && signal_marked(SIGKILL) > 0; round++) {
    }
}

/* The reaper's whole life; only async-signal-safe calls after fork. */
static void reaper_main(int fd) {
    static pid_t list[MAX_GROUPS];
    int          n = 0;
    pid_t        msg;
    setpgid(0, 0); /* out of the host's group: a Ctrl-C must not kill it first */
    /* It never execs, so CLOEXEC protects nothing: keep only the pipe (as
     * fd 3), give up every other fd (listening sockets, connections, and the
     * host's stdout, whose readers would wait for this process otherwise). */
    if (fd != 3) dup2(fd, 3), fd = 3;
    close_range(4, ~0U, 0);
    int null = open("/dev/null", O_RDWR);
    for (int i = 0; i < 3 && null >= 0; i++) dup2(null, i);
    if (null > 2) close(null);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    while (read(fd, &msg, sizeof msg) == sizeof msg) {
        int slot = -1;
        for (int i = 0; i < n; i++)
            if (list[i] == (msg > 0 ? 0 : -msg)) slot = i;
        if (msg > 0 && slot < 0 && n < MAX_GROUPS)
            list[n++] = msg;
        else if (slot >= 0)
            list[slot] = msg > 0 ? msg : 0;
    }
    reaper_stop(list, n);
    _exit(0);
}

void sonde_orphans_start_reaper(void) {
    int fds[2];
    if (reaper_fd >= 0) return;
    if (!mark_entry) make_mark();
    if (pipe2(fds, O_CLOEXEC) < 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[1]);
        reaper_main(fds[0]);
    }
    close(fds[0]);
    if (pid < 0)
        close(fds[1]);
    else
        reaper_fd = fds[1], reaper_pid = pid;
}

static void reaper_tell(pid_t msg) {
    if (reaper_fd >= 0 && write(reaper_fd, &msg, sizeof msg) < 0) {
    }
}

/* -------------------------------------------------------------- groups */

void sonde_orphans_add_group(pid_t pgid) {
    reaper_tell(pgid);
    for (int i = 0; i < group_count; i++)
        if (groups[i] == 0) {
            groups[i] = pgid;
            return;
        }
    if (group_count < MAX_GROUPS) groups[group_count++] = pgid;
}

void sonde_orphans_drop_group(pid_t pgid) {
    reaper_tell(-pgid);
    for (int i = 0; i < group_count; i++)
        if (groups[i] == pgid) groups[i] = 0;
}

void sonde_orphans_signal_groups(int sig) {
    for (int i = 0; i < group_count; i++)
        if (groups[i] > 0) kill(-groups[i], sig);
}

void sonde_orphans_kill_groups(void) {
    for (int i = 0; i < group_count; i++)
        if (groups[i] > 0) kill(-groups[i], SIGKILL), sonde_orphans_drop_group(groups[i]);
}

/* In a copy of the host made by fork (sonde_proc_fork): a host of its own.
 * The reaper and the groups are the original's; the copy's children carry
 * the original's mark above the copy's own, as a spawned child's do. */
void sonde_orphans_forked(void) {
    if (reaper_fd >= 0) close(reaper_fd);
    reaper_fd = -1, reaper_pid = 0, group_count = 0;
    if (mark_entry) putenv(mark_entry); /* kept for good, as putenv keeps it */
    mark_entry = NULL;
    make_mark();
    if (adopting) adopting = 0, sonde_orphans_adopt(1); /* fork does not pass it on */
}

/* ------------------------------------------------------------ adoption */

void sonde_orphans_adopt(int on) {
    if (on != adopting && prctl(PR_SET_CHILD_SUBREAPER, on) == 0) adopting = on;
}

static int is_known_group(pid_t pid) {
    for (int i = 0; i < group_count; i++)
        if (groups[i] == pid) return 1;
    return 0;
}

/* A child of ours that process.c did not start (each of its children leads
 * a known group) and that is not the reaper was adopted, unless it is in
 * our own group: io.popen's and os.execute's shells are, and their callers
 * reap them. */
static int is_adopted(long pid) {
    return pid != reaper_pid && !is_known_group((pid_t)pid) && getpgid((pid_t)pid) != getpgrp();
}

/* Sends sig to an adopted child, and to the group it leads if it leads one
 * (setsid makes it lead one, and what it starts is in it). */
static int signal_if_adopted(long pid, void *sig) {
    if (!is_adopted(pid)) return 0;
    kill(getpgid((pid_t)pid) == pid ? -(pid_t)pid : (pid_t)pid, *(int *)sig);
    return 1;
}

int sonde_orphans_signal_adopted(int sig) { return adopting ? each_child(signal_if_adopted, &sig) : 0; }

/* Sends sig to a child that is not the reaper, and to the group it leads
 * if it leads one. */
static int signal_if_not_reaper(long pid, void *sig) {
    if (pid == reaper_pid) return 0;
    kill(getpgid((pid_t)pid) == pid ? -(pid_t)pid : (pid_t)pid, *(int *)sig);
    return 1;
}

int sonde_orphans_signal_children(int sig) { return each_child(signal_if_not_reaper, &sig); }

static int reap_if_adopted(long pid, void *unused) {
    (void)unused;
    return is_adopted(pid) && waitpid((pid_t)pid, NULL, WNOHANG) == 0;
}

int sonde_orphans_reap_adopted(void) { return adopting ? each_child(reap_if_adopted, NULL) : 0; }

static int kill_if_adopted(long pid, void *unused) {
    (void)unused;
    int sig = SIGKILL, rc;
    if (!signal_if_adopted(pid, &sig)) return 0;
    while ((rc = waitpid((pid_t)pid, NULL, 0)) < 0 && errno == EINTR) {
    }
    return rc == pid;
}

/* Rounds until none is left: each death hands its own orphans over to us. */
void sonde_orphans_kill_adopted(void) {
    while (adopting && each_child(kill_if_adopted, NULL) > 0) {
    }
}
