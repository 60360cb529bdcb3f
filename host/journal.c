/* journal.c — the shared record of a serial run (see journal.h). */
#define _GNU_SOURCE
#include "journal.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>
#include <sys/stat.h>

#define JOURNAL_MAGIC 0x736f6e64u /* "sond" */
#define RECORDS_AT sizeof(sonde_journal_head)
#define JOURNAL_START (1u << 20) /* first size; pages are only used as written */

static struct {
    int                 fd;
    sonde_journal_head *head; /* mapping of `size` bytes from offset 0 */
    size_t              size;
} j = {-1, NULL, 0};

int sonde_journal_create(void) {
    int fd = memfd_create("sonde-journal", MFD_CLOEXEC); /* never inherited by what tests exec */
    if (fd >= 0 && fd <= 2) { /* fd 0-2 were closed: the capture would point fd 1 and 2 over it */
        int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        close(fd);
        fd = moved;
    }
    if (fd < 0) return -1;
    if (ftruncate(fd, JOURNAL_START) != 0) goto fail;
    void *p = mmap(NULL, JOURNAL_START, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) goto fail;
    j.fd = fd;
    j.head = p;
    j.size = JOURNAL_START;
    memset(j.head, 0, sizeof *j.head);
    j.head->magic = JOURNAL_MAGIC;
    return 0;
fail:
    close(fd);
    return -1;
}

int sonde_journal_adopt(int fd) {
    struct stat st;
    if (fd < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || fstat(fd, &st) != 0) return -1;
    if ((size_t)st.st_size < JOURNAL_START) return -1;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return -1;
    j.fd = fd;
    j.head = p; /* whatever a test wrote over in it: the records are read with care (ljournal.c) */
    j.size = (size_t)st.st_size;
    return 0;
}

sonde_journal_head *sonde_journal(void) { return j.head; }

int sonde_journal_fd(void) { return j.fd; }

void sonde_journal_note_stop(void) {
    if (j.head) __atomic_fetch_add(&j.head->stops, 1, __ATOMIC_RELAXED);
}

void sonde_journal_forked(void) {
    if (!j.head) return;
    munmap(j.head, j.size);
    close(j.fd);
    j.fd = -1, j.head = NULL, j.size = 0;
}

static int remap(size_t size) {
    void *p = mremap(j.head, j.size, size, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) return -1;
    j.head = p;
    j.size = size;
    return 0;
}

static int reserve(size_t need) {
    size_t used = RECORDS_AT + j.head->length;
    if (used + need <= j.size) return 0;
    size_t size = j.size;
    while (used + need > size) size *= 2;
    if (ftruncate(j.fd, (off_t)size) != 0) return -1;
    return remap(size);
}

int sonde_journal_append(uint32_t kind, uint64_t step, double duration, uint32_t requests, const char *text,
                         uint32_t len) {
    size_t padded = ((size_t)len + 7) & ~(size_t)7;
    if (!j.head || reserve(sizeof(sonde_journal_record) + padded) != 0) return -1;
    char                 *at = (char *)j.head + RECORDS_AT + j.head->length;
    sonde_journal_record *r = (sonde_journal_record *)at;
    *r = (sonde_journal_record){kind, len, step, duration, requests, 0};
    if (len) memcpy(r + 1, text, len);
    __atomic_store_n(&j.head->length, j.head->length + sizeof *r + padded, __ATOMIC_RELEASE);
    j.head->in_step = 0; /* what a step reports comes once its user code has run */
    return 0;
}

const char *sonde_journal_records(uint64_t *len) {
    if (!j.head) {
        *len = 0;
        return NULL;
    }
    uint64_t mapped = j.size - RECORDS_AT; /* a length a test wrote over cannot send a reader past it */
    *len = j.head->length < mapped ? j.head->length : mapped;
    return (const char *)j.head + RECORDS_AT;
}
