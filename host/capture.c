/* capture.c — what tests write to fd 1 and 2 (see capture.h). */
#define _GNU_SOURCE
#include "capture.h"
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>

/* The empty file is one zero byte: the page over it is then inside the
 * file, so reading the mark after it never faults. Output starts at 1. */
#define HEADER 1
#define MAPPED 16
/* Past the end of the file, in its last page, until a write covers it. A
 * test whose whole output is a prefix of it goes unseen until the next
 * write, which then takes it along. */
static const char MARK[8] = {'\xff', '\xfe', 0, 's', 'o', 'n', 'd', 'e'};

static struct {
    int              file;     /* the memfd tests write into; -1 until opened */
    char            *map;      /* its first MAPPED bytes, shared */
    int              real[3];  /* copies of fd 1 and 2 as they were ([0] unused), -1 if closed */
    FILE            *terminal; /* the reporters' stream on real[1], once made */
    struct sigaction old_bus;  /* SIGBUS's handling before ours */
} c = {.file = -1, .real = {-1, -1, -1}};

/* ---------------------------------------------------------------- file */

/* Empty again: the header alone (zero, as a child may have written over
 * it), and the mark after it (the shrink zeroes the rest of the page). */
static int empty(void) {
    if (ftruncate(c.file, HEADER) < 0) return -1;
    c.map[0] = 0;
    memcpy(c.map + HEADER, MARK, sizeof MARK);
    return 0;
}

/* A child that opens /dev/stdout with O_TRUNC and writes nothing leaves the
 * file shorter than the header, and the mapped page past its end: reading
 * the mark faults. The header back, the read goes on and finds the mark
 * gone. A fault anywhere else goes to the handling there was before. */
static void on_sigbus(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)uc;
    char *at = si->si_addr;
    if (at >= c.map && at < c.map + MAPPED && ftruncate(c.file, HEADER) == 0) return;
    sigaction(SIGBUS, &c.old_bus, NULL); /* the access faults again, under it */
}

static void catch_sigbus(void) { sonde_signal_catch(SIGBUS, on_sigbus, &c.old_bus); }

/* A descriptor at 3 or above, close-on-exec: fd 0-2 may be closed when
 * sonde starts, and a test must not read its own output as its stdin. */
static int above_stdio(int fd) {
    if (fd < 0 || fd > 2) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return moved;
}

static int point(int fd, int to);

/* Maps the file at fd and copies fd 1 and 2 as they are now. */
static int use_file(int fd) {
    void *map = mmap(NULL, MAPPED, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return -1;
    c.file = fd, c.map = map;
    c.real[1] = fcntl(1, F_DUPFD_CLOEXEC, 3);
    c.real[2] = fcntl(2, F_DUPFD_CLOEXEC, 3);
    catch_sigbus();
    return 0;
}

int sonde_capture_open(void) {
    if (c.file >= 0) return 0;
    int fd = above_stdio(memfd_create("sonde-capture", MFD_CLOEXEC));
    /* append: every write lands at the end, over the mark, whatever a child
     * does with its offset */
    if (fd < 0 || fcntl(fd, F_SETFL, O_APPEND) < 0 || ftruncate(fd, HEADER) < 0 || use_file(fd) < 0) goto fail;
    memcpy(c.map + HEADER, MARK, sizeof MARK);
    return 0;
fail:
    if (fd >= 0) close(fd);
    return -1;
}

int sonde_capture_adopt(int fd) {
    if (fd < 0) return 0; /* the earlier image had none */
    return fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ? -1 : use_file(fd);
}

int sonde_capture_fd(void) { return c.file; }

void sonde_capture_hand_over(void) {
    if (c.file < 0) return;
    point(1, c.real[1]);
    point(2, c.real[2]);
    fcntl(c.file, F_SETFD, 0);
}

/* In a forked copy of the host: a capture of its own, over the fd 1 and 2
 * it has now, as the file and the copies it inherited are the original's. */
int sonde_capture_forked(void) {
    if (c.file < 0) return 0;
    munmap(c.map, MAPPED);
    close(c.file);
    for (int fd = 1; fd <= 2; fd++)
        if (c.real[fd] >= 0) close(c.real[fd]), c.real[fd] = -1;
    c.file = -1, c.map = NULL, c.terminal = NULL;
    sigaction(SIGBUS, &c.old_bus, NULL);
    return sonde_capture_open();
}

/* ---------------------------------------------------------- descriptors */

/* fd 1 or 2 pointed at `to`, or closed when `to` is. */
static int point(int fd, int to) { return to >= 0 ? dup2(to, fd) : close(fd); }

int sonde_capture_begin(void) {
    if (c.file < 0) return errno = EBADF, -1;
    fflush(stdout);
    fflush(stderr);
    return point(1, c.file) < 0 || point(2, c.file) < 0 ? -1 : 0;
}

int sonde_capture_end(void) {
    if (sonde_capture_forward() != 0) return -1;
    return point(1, c.real[1]) < 0 || point(2, c.real[2]) < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------- output */

int sonde_capture_written(void) {
    if (c.file < 0) return 0;
    fflush(stdout); /* no system call when nothing is buffered */
    fflush(stderr);
    return memcmp(c.map + HEADER, MARK, sizeof MARK) != 0;
}

/* Up to len bytes of the file from `at`: fewer only at its end. */
static size_t read_at(char *buf, size_t len, off_t at) {
    size_t n = 0;
    while (n < len) {
        ssize_t got = pread(c.file, buf + n, len - n, at + (off_t)n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        n += (size_t)got;
    }
    return n;
}

/* Where the output starts: after the header, unless a child that opened
 * /dev/stdout with O_TRUNC wrote over it. */
static off_t output_start(void) { return c.map[0] == 0 ? HEADER : 0; }

ssize_t sonde_capture_take(char *buf, size_t len, off_t *size) {
    *size = 0;
    if (c.file < 0) return errno = EBADF, -1;
    off_t from = output_start(), end = lseek(c.file, 0, SEEK_END);
    if (end < 0) return -1;
    *size = end > from ? end - from : 0;
    size_t n = read_at(buf, (size_t)*size < len ? (size_t)*size : len, from);
    return empty() < 0 ? -1 : (ssize_t)n;
}

/* Writes all of buf to fd, whatever the signals. */
static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        buf += n, len -= (size_t)n;
    }
    return 0;
}

int sonde_capture_forward(void) {
    if (!sonde_capture_written()) return 0;
    off_t  end = lseek(c.file, 0, SEEK_END);
    char   buf[16384];
    size_t n;
    for (off_t at = output_start(); at < end && (n = read_at(buf, sizeof buf, at)) > 0; at += (off_t)n)
        if (c.real[1] < 0 || write_all(c.real[1], buf, n) != 0) break; /* closed, or its reader gone */
    return empty();
}

int sonde_capture_real_fd(int fd) { return c.file >= 0 && (fd == 1 || fd == 2) ? c.real[fd] : fd; }

void sonde_capture_set_terminal(FILE *out) { c.terminal = out; }

FILE *sonde_capture_terminal(void) { return c.terminal; }
