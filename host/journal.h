/* journal.h — internal: the record of a serial `sonde test` run, kept in
 * memory shared with the supervisor that forked it (supervise.c).
 *
 * The runner numbers every step that runs user code (loading a file, a
 * describe body, a setup or teardown hook, a test with its own hooks) and
 * appends every result it reports; a step's start is a few stores into the
 * head. When the process dies in the middle of a step (a crash, a C loop
 * the watchdog gave up on, exit() from C), the supervisor forks a fresh
 * runner that walks the same steps without running them, replays the
 * journal to its reporters, reports the step that was running as an error
 * and goes on from the next one. Records: a pass is 32 bytes (no text);
 * anything else carries its JSON. A record is written before `length`
 * counts it, so a death mid-write loses nothing that was already counted.
 * (What the step printed is in the output capture the runners share,
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
    uint64_t          resume_at;     /* supervisor: the step a runner died in */
    char              how[512];      /* supervisor: how it died, for that step's error */
    char              watchdog[512]; /* the watchdog's words, when it is what stopped the runner */
} sonde_journal_head;

typedef struct sonde_journal_record {
    uint32_t kind;
    uint32_t len; /* bytes of text after the record, before padding to 8 */
    uint64_t step;
    double   duration;
    uint32_t requests;
    uint32_t pad;
} sonde_journal_record;

/* The supervisor, before its first fork: makes the shared journal. Returns 0
 * or -1 (errno set); without one the run goes unsupervised. */
int sonde_journal_create(void);

/* The head, in the supervisor and in each runner it forks; NULL when this
 * process is not a supervised runner. */
sonde_journal_head *sonde_journal(void);

/* A runner: maps the whole journal as it now is (a runner forked after an
 * earlier one grew it). Returns 0 or -1. */
int sonde_journal_attach(void);

/* A SIGINT or SIGTERM asks the run to stop (async-signal-safe; nothing
 * without a journal): the supervisor then starts no new runner after a
 * runner that the signal ended. */
void sonde_journal_note_stop(void);

/* Appends one record, which ends the step that was running; grows the shared
 * memory when full. Returns 0 or -1. */
int sonde_journal_append(uint32_t kind, uint64_t step, double duration, uint32_t requests, const char *text,
                         uint32_t len);

/* The records, for a runner that replays them: *len bytes from the first
 * (no more than are mapped, whatever the head says). */
const char *sonde_journal_records(uint64_t *len);

#endif
