/* fifo.h — internal: a queue of structs, oldest first, linked through a
 * sonde_fifo_link field of their own (what BSD's STAILQ does; musl has no
 * <sys/queue.h>). A zeroed queue and a zeroed link are ready to use. */
#ifndef SONDE_FIFO_H
#define SONDE_FIFO_H

#include <stddef.h>

typedef struct sonde_fifo_link {
    struct sonde_fifo_link *next;
} sonde_fifo_link;

typedef struct sonde_fifo {
    sonde_fifo_link *head, *tail; /* NULL, NULL: empty */
} sonde_fifo;

/* The struct of type `type` whose field `field` is the link l; NULL for
 * NULL (as sonde_fifo_take returns when the queue is empty). */
#define SONDE_FIFO_ITEM(l, type, field) ((type *)sonde_fifo_item((l), offsetof(type, field)))

static inline void *sonde_fifo_item(sonde_fifo_link *l, size_t offset) { return l ? (char *)l - offset : NULL; }

static inline void sonde_fifo_push(sonde_fifo *q, sonde_fifo_link *l) {
    l->next = NULL;
    if (q->tail)
        q->tail->next = l;
    else
        q->head = l;
    q->tail = l;
}

/* Takes the oldest link off the queue; NULL when it is empty. */
static inline sonde_fifo_link *sonde_fifo_take(sonde_fifo *q) {
    sonde_fifo_link *l = q->head;
    if (!l) return NULL;
    q->head = l->next;
    if (!q->head) q->tail = NULL;
    l->next = NULL;
    return l;
}

/* Takes l off the queue wherever it stands; nothing when it is not in it. */
static inline void sonde_fifo_remove(sonde_fifo *q, sonde_fifo_link *l) {
    sonde_fifo_link **at = &q->head, *prev = NULL;
    while (*at && *at != l) prev = *at, at = &(*at)->next;
    if (!*at) return;
    *at = l->next;
    if (q->tail == l) q->tail = prev;
    l->next = NULL;
}

#endif
