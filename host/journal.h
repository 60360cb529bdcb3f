/* journal.h — internal: the record of a serial `sonde test` run, kept in
 * memory shared with the supervisor that forked it (supervise.c).
 *
 * The runner appends every result it reports; a test's start is one store
 * into the head. When the process dies in the middle of a test (a crash, a
 * C loop the watchdog gave up on, exit() from C), the supervisor forks a
 * fresh runner that replays the journal to its reporters, reports the test
 * that was running as an error, and goes on from the next one. Records:
 * a pass is 24 bytes (no text); anything else carries its JSON. A record is
 * written before `length` counts it, so a death mid-write loses nothing
 * that was already counted. */
#ifndef SONDE_JOURNAL_H
#define SONDE_JOURNAL_H

#include <stdint.h>

#define SONDE_JOURNAL_PASS 1  /* a passing test: ordinal, duration, requests */
#define SONDE_JOURNAL_EVENT 2 /* any other event: its JSON */

typedef struct sonde_journal_head {
    uint32_t          magic;
    volatile uint32_t in_test;   /* 1 from a test's start to its result */
    volatile uint64_t started;   /* ordinal of the last test started */
    volatile uint64_t length;    /* bytes of records after the head */
    uint64_t          resume_at; /* supervisor: the test running when a runner died */
    uint64_t          resumes;   /* supervisor: how many runners died in tests */
    char              how[512];  /* supervisor: how it died; or the watchdog's last words */
} sonde_journal_head;

typedef struct sonde_journal_record {
    uint32_t kind;
    uint32_t len; /* bytes of text after the record, before padding to 8 */
    uint64_t ordinal;
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

/* Appends one record; grows the shared memory when full. Returns 0 or -1. */
int sonde_journal_append(uint32_t kind, uint64_t ordinal, double duration, uint32_t requests, const char *text,
                         uint32_t len);

/* The records, for a runner that replays them: *len bytes from the first. */
const char *sonde_journal_records(uint64_t *len);

#endif
