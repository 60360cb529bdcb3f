/* capture.h — internal: what tests write to fd 1 and 2, kept in a file.
 *
 * While a run captures, fd 1 and 2 are copies of one memfd open for
 * append: print, io.write, io.stderr, C code called through the FFI and
 * child processes that inherit the descriptors all write there, in the
 * order they wrote, and Lua's io.stdout stays the real file on fd 1.
 * sonde's own words go through copies of the two descriptors made when the
 * capture was opened (sonde_capture_real_fd), so nothing but what tests
 * and describe bodies write lands in the file. The descriptors stay on the
 * file for the whole run; what is written outside any test goes on to the
 * real fd 1 when the runner forwards it.
 *
 * Most tests write nothing, and a system call costs microseconds on a VM
 * that isolates page tables, more than a short test: so whether anything
 * was written is read from memory. The file holds one byte when empty;
 * the page mapped over it holds, past that byte, a mark that the first
 * byte appended overwrites. Only a test that wrote costs system calls. */
#ifndef SONDE_CAPTURE_H
#define SONDE_CAPTURE_H

#include <stdio.h>
#include <sys/types.h>

/* Opens the capture file and copies fd 1 and 2, once (later calls return
 * 0). A protected serial run opens it before the Lua state, so that an
 * image that a test kills hands that test's output on to the next one
 * (protect.c). Returns 0 or -1 (errno set). */
int sonde_capture_open(void);
/* In a forked copy of the host: opens its own capture if the original had
 * one. Returns 0 or -1 (errno). */
int sonde_capture_forked(void);

/* Takes over the capture file an earlier image of this process left at fd
 * (-1: it had none), with what it holds, and copies fd 1 and 2. Returns 0
 * or -1. */
int sonde_capture_adopt(int fd);

/* The capture file's descriptor, -1 when none is open. */
int sonde_capture_fd(void);

/* Async-signal-safe, before sonde execs itself: fd 1 and 2 back where they
 * were, and the file open across the exec. */
void sonde_capture_hand_over(void);

/* Points fd 1 and 2 at the capture file, after flushing stdio's buffers.
 * Returns 0 or -1. */
int sonde_capture_begin(void);

/* Forwards what the file holds to the real fd 1 and points fd 1 and 2
 * back where they were. Returns 0 or -1. */
int sonde_capture_end(void);

/* Flushes stdio's buffers into the file and says whether it holds
 * anything, without a system call when stdio had nothing buffered and
 * nothing was written. Never true after a failed open. */
int sonde_capture_written(void);

/* Copies the first `len` bytes the file holds into buf, sets *size to how
 * many it held, and empties it. Returns the bytes copied, or -1. */
ssize_t sonde_capture_take(char *buf, size_t len, off_t *size);

/* Writes what the file holds to the real fd 1 and empties it: output that
 * is no test's. Returns 0 or -1. */
int sonde_capture_forward(void);

/* Where fd 1 or 2 pointed when the capture was opened (fd itself when no
 * capture is): where sonde's own words go. -1 if it was closed. */
int sonde_capture_real_fd(int fd);

/* The stream through which the reporters write to the real fd 1, for the
 * watchdog to flush before it stops the process; NULL clears it. */
void  sonde_capture_set_terminal(FILE *out);
FILE *sonde_capture_terminal(void);

#endif
