/* bytes.h — internal: a growable byte buffer, always NUL-terminated so
 * its text can be handed to C string functions, and copies made so. */
#ifndef SONDE_BYTES_H
#define SONDE_BYTES_H

#include <stdlib.h>
#include <string.h>

typedef struct sonde_bytes {
    char  *data;
    size_t len, cap;
} sonde_bytes;

/* Appends len bytes; returns 0, or -1 (and changes nothing) without memory. */
static inline int sonde_bytes_add(sonde_bytes *b, const char *data, size_t len) {
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + len + 1) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return -1;
        b->data = p, b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

/* A copy of len bytes with a NUL after them, which the caller frees; NULL
 * without memory. */
static inline char *sonde_bytes_dup(const char *data, size_t len) {
    char *copy = malloc(len + 1);
    if (!copy) return NULL;
    memcpy(copy, data, len);
    copy[len] = '\0';
    return copy;
}

#endif
