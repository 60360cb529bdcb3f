/* journal.h — internal: the record of a serial `sonde test` run, kept in a
 * memfd that outlives the process image (protect.c).
 *
 * The runner numbers every step that runs user code (loading a file, a
 * describe body, a setup or teardown hook, a test with its own hooks) and
 * appends every result it reports; a step's start is a few stores into the
 * head. When a step kills the process (a crash, a C loop the watchdog gave
 * up on, exit() from C), sonde records how in the head and execs itself; the
 * new image walks the same steps without running them, replays the journal
 * to its reporters, reports the step that was running as an error and goes
 * on from the next one. Records: a pass is 32 bytes (no text); anything
 * else carries its JSON. A record is written before `length` counts it, so
 * a death mid-write loses nothing that was already counted. (What the step
 * printed is in the output capture, which the new image takes over too,
 * capture.h.) */
#ifndef SONDE_JOURNAL_H
#define SONDE_JOURNAL_H

#include <stdint.h>

#define SONDE_JOURNAL_PASS 1  /* a passing test: step, duration, requests */
#define SONDE_JOURNAL_EVENT 2 /* any other event: its JSON */

typedef struct sonde_journal_head {
    uint32_t          magic;
    volatile uint32_t in_step; /* 1 from a step's start to its end: the next record, or done */
    volatile uint64_t step;    /* the last step started */
    volatile uint64_t length;  /* bytes of records after the head */
    volatile uint32_t stops;   /* SIGINT/SIGTERM/SIGHUP asking the run to stop */
    uint32_t          pad;
    uint64_t          resume_at;  /* the step the last image died in */
    char              how[512];   /* how it died, for that step's error */
    char              spare[512]; /* unused (the layout stays what tests and fuzz inputs know) */
} sonde_journal_head;

typedef struct sonde_journal_record {
    uint32_t kind;
    uint32_t len; /* bytes of text after the record, before padding to 8 */
    uint64_t step;
    double   duration;
    uint32_t requests;
    uint32_t pad;
} sonde_journal_record;

/* Makes the journal (close-on-exec). Returns 0 or -1 (errno set); without
 * one the run goes unprotected. */
int sonde_journal_create(void);

/* Takes over the journal an earlier image of this process left at fd (and
 * makes it close-on-exec again). Returns 0, or -1 when fd holds none. */
int sonde_journal_adopt(int fd);

/* The head; NULL when this process runs no protected serial run. */
sonde_journal_head *sonde_journal(void);

/* The journal's descriptor, -1 without one. */
int sonde_journal_fd(void);

/* A SIGINT or SIGTERM asks the run to stop (async-signal-safe; nothing
 * without a journal): an image that a test's death restarts stops the run
 * at once (exit 130, reports written). */
void sonde_journal_note_stop(void);
/* In a forked copy of the runner (a --jobs worker): the journal is the
 * original's, and the copy lets go of it. */
void sonde_journal_forked(void);

/* Appends one record, which ends the step that was running; grows the shared
 * memory when full. Returns 0 or -1. */
int sonde_journal_append(uint32_t kind, uint64_t step, double duration, uint32_t requests, const char *text,
                         uint32_t len);

/* The records, for an image that replays them: *len bytes from the first
 * (no more than are mapped, whatever the head says). */
const char *sonde_journal_records(uint64_t *len);

#endif
