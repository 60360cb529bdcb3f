/* histogram.c — the log-linear histogram of histogram.h. */
#include "histogram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

sonde_hist *sonde_hist_new(void) { return calloc(1, sizeof(sonde_hist)); }

void sonde_hist_free(sonde_hist *h) {
    if (!h) return;
    for (int i = 0; i < SONDE_HIST_EXPS; i++) {
        free(h->pos[i]);
        free(h->neg[i]);
    }
    free(h);
}

void sonde_hist_reset(sonde_hist *h) {
    for (int i = 0; i < SONDE_HIST_EXPS; i++) {
        if (h->pos[i]) memset(h->pos[i], 0, SONDE_HIST_SUB * sizeof(uint64_t));
        if (h->neg[i]) memset(h->neg[i], 0, SONDE_HIST_SUB * sizeof(uint64_t));
    }
    h->count = h->zeros = 0;
    h->min = h->max = h->sum = 0;
}

/* ------------------------------------------------------------- buckets */

int sonde_hist_index(double v) {
    int    e;
    double m = frexp(fabs(v), &e); /* |v| = m * 2^e, 0.5 <= m < 1 */
    if (m == 0 || e <= SONDE_HIST_MIN_EXP) return 0;
    int slot = e - SONDE_HIST_MIN_EXP - 1, sub = (int)((m - 0.5) * 2 * SONDE_HIST_SUB);
    if (slot >= SONDE_HIST_EXPS) slot = SONDE_HIST_EXPS - 1, sub = SONDE_HIST_SUB - 1;
    int index = slot * SONDE_HIST_SUB + sub + 1;
    return v < 0 ? -index : index;
}

double sonde_hist_bucket_value(int index) {
    if (index == 0) return 0;
    int    k = abs(index) - 1, e = k / SONDE_HIST_SUB + SONDE_HIST_MIN_EXP + 1;
    double sub = k % SONDE_HIST_SUB;
    double mid = ldexp(0.5 + (sub + 0.5) / (2.0 * SONDE_HIST_SUB), e);
    return index < 0 ? -mid : mid;
}

/* The counter of bucket index (not 0), allocating its power of two when
 * `grow` is set; NULL when it has none (or memory ran out). */
static uint64_t *counter(sonde_hist *h, int index, int grow) {
    int        k = abs(index) - 1;
    uint64_t **chunk = &(index > 0 ? h->pos : h->neg)[k / SONDE_HIST_SUB];
    if (!*chunk && grow) *chunk = calloc(SONDE_HIST_SUB, sizeof(uint64_t));
    return *chunk ? *chunk + k % SONDE_HIST_SUB : NULL;
}

int sonde_hist_add_bucket(sonde_hist *h, int index, uint64_t n) {
    if (index < -SONDE_HIST_BUCKETS || index > SONDE_HIST_BUCKETS) return -1;
    if (index == 0) {
        h->zeros += n;
        return 0;
    }
    uint64_t *c = counter(h, index, 1);
    if (!c) return -1;
    *c += n;
    return 0;
}

int sonde_hist_record(sonde_hist *h, double v, uint64_t n) {
    if (n == 0) return 0;
    if (sonde_hist_add_bucket(h, sonde_hist_index(v), n) != 0) return -1;
    if (h->count == 0 || v < h->min) h->min = v;
    if (h->count == 0 || v > h->max) h->max = v;
    h->count += n;
    h->sum += v * (double)n;
    return 0;
}

static int merge_chunks(uint64_t **into, uint64_t *const *from) {
    for (int i = 0; i < SONDE_HIST_EXPS; i++) {
        if (!from[i]) continue;
        if (!into[i] && !(into[i] = calloc(SONDE_HIST_SUB, sizeof(uint64_t)))) return -1;
        for (int s = 0; s < SONDE_HIST_SUB; s++) into[i][s] += from[i][s];
    }
    return 0;
}

int sonde_hist_merge(sonde_hist *into, const sonde_hist *from) {
    if (from->count == 0) return 0;
    if (merge_chunks(into->pos, from->pos) != 0 || merge_chunks(into->neg, from->neg) != 0) return -1;
    if (into->count == 0 || from->min < into->min) into->min = from->min;
    if (into->count == 0 || from->max > into->max) into->max = from->max;
    into->count += from->count;
    into->zeros += from->zeros;
    into->sum += from->sum;
    return 0;
}

/* ------------------------------------------------------------ reading */

int sonde_hist_next(const sonde_hist *h, int *index, uint64_t *count) {
    for (int i = *index + 1; i <= SONDE_HIST_BUCKETS; i++) {
        if (i == 0) {
            if (!h->zeros) continue;
            *index = 0, *count = h->zeros;
            return 1;
        }
        int             k = abs(i) - 1, slot = k / SONDE_HIST_SUB;
        const uint64_t *chunk = (i > 0 ? h->pos : h->neg)[slot];
        if (!chunk) { /* skip the power of two: to its last index in this direction */
            i = i > 0 ? (slot + 1) * SONDE_HIST_SUB : -(slot * SONDE_HIST_SUB + 1);
            continue;
        }
        if (chunk[k % SONDE_HIST_SUB]) {
            *index = i, *count = chunk[k % SONDE_HIST_SUB];
            return 1;
        }
    }
    return 0;
}

/* The value at 0-based rank r: min and max exactly at the ends, else its
 * bucket's middle, kept within [min, max]. */
static double value_at(const sonde_hist *h, uint64_t r, double bucket) {
    if (r == 0) return h->min;
    if (r == h->count - 1) return h->max;
    return bucket < h->min ? h->min : bucket > h->max ? h->max : bucket;
}

double sonde_hist_quantile(const sonde_hist *h, double q) {
    if (h->count == 0) return 0;
    if (!(q > 0)) return h->min;
    if (q >= 1) return h->max;
    double   rank = q * (double)(h->count - 1);
    uint64_t lo = (uint64_t)floor(rank), hi = (uint64_t)ceil(rank), seen = 0, n;
    double   vlo = 0, vhi = 0;
    int      index = -SONDE_HIST_BUCKETS - 1, found_lo = 0;
    while (sonde_hist_next(h, &index, &n)) {
        seen += n;
        if (!found_lo && lo < seen) vlo = value_at(h, lo, sonde_hist_bucket_value(index)), found_lo = 1;
        if (hi < seen) {
            vhi = value_at(h, hi, sonde_hist_bucket_value(index));
            break;
        }
    }
    return vlo + (vhi - vlo) * (rank - floor(rank));
}
