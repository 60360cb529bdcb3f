/* bytes.h — internal: a growable byte buffer, always NUL-terminated so
 * its text can be handed to C string functions. */
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

#endif
