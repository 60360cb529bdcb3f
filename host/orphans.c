/* orphans.c — process groups and the watchdog process (orphans.h). */
#define _GNU_SOURCE
#include "orphans.h"

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <linux/close_range.h>

/* Process groups ever started, for the async-signal-safe last resort. */
#define MAX_GROUPS 4096
static volatile pid_t groups[MAX_GROUPS];
static volatile int   group_count;

/* ------------------------------------------------------------ watchdog
 * The first spawn forks a watchdog that learns each group over a pipe (pgid
 * to add, -pgid to drop) and, when the pipe closes because the host is gone
 * however it went, stops them all. */

static int watchdog_fd = -1;

static void watchdog_stop_groups(pid_t *list, int n) {
    int any = 0;
    for (int i = 0; i < n; i++)
        if (list[i] > 0) any = 1, kill(-list[i], SIGTERM);
    if (!any) return; /* nothing left: no grace to wait out */
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < n; i++)
        if (list[i] > 0) kill(-list[i], SIGKILL);
}

/* The watchdog's whole life; only async-signal-safe calls after fork. */
static void watchdog_main(int fd) {
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
    watchdog_stop_groups(list, n);
    _exit(0);
}

void sonde_orphans_start_watchdog(void) {
    int fds[2];
    if (watchdog_fd >= 0 || pipe2(fds, O_CLOEXEC) < 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[1]);
        watchdog_main(fds[0]);
    }
    close(fds[0]);
    if (pid < 0)
        close(fds[1]);
    else
        watchdog_fd = fds[1];
}

static void watchdog_tell(pid_t msg) {
    if (watchdog_fd >= 0 && write(watchdog_fd, &msg, sizeof msg) < 0) {
    }
}

void sonde_orphans_add_group(pid_t pgid) {
    watchdog_tell(pgid);
    for (int i = 0; i < group_count; i++)
        if (groups[i] == 0) {
            groups[i] = pgid;
            return;
        }
    if (group_count < MAX_GROUPS) groups[group_count++] = pgid;
}

void sonde_orphans_drop_group(pid_t pgid) {
    watchdog_tell(-pgid);
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
