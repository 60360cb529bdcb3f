/* histogram.h — internal: a log-linear histogram of numbers, for the
 * percentiles of `sonde load`'s trends.
 *
 * HdrHistogram's idea on doubles: every power of two is cut into
 * SONDE_HIST_SUB equal buckets, so a bucket is at most 1/128 of the values
 * it holds wide and a percentile read from it (its middle) is within 0.8 %
 * of the exact one. Count, min, max and sum are kept exactly. Memory is
 * constant per histogram: a power of two gets its buckets (512 bytes) when
 * a first value falls in it, and there are SONDE_HIST_EXPS of them per sign.
 * Two histograms merge by adding bucket counts, so a run split across
 * machines gives the same percentiles as one run. Nothing here knows Lua. */
#ifndef SONDE_HISTOGRAM_H
#define SONDE_HISTOGRAM_H

#include <stdint.h>

#define SONDE_HIST_SUB 64      /* buckets per power of two */
#define SONDE_HIST_MIN_EXP -40 /* magnitudes below 2^-40 count as 0 */
#define SONDE_HIST_MAX_EXP 64  /* magnitudes from 2^64 up share the top bucket */
#define SONDE_HIST_EXPS (SONDE_HIST_MAX_EXP - SONDE_HIST_MIN_EXP)
/* Bucket indices: 0 is zero, 1..SONDE_HIST_BUCKETS positive magnitudes in
 * ascending order, their negations the negative values. */
#define SONDE_HIST_BUCKETS (SONDE_HIST_EXPS * SONDE_HIST_SUB)

typedef struct sonde_hist {
    uint64_t  count;                /* values recorded */
    double    min, max, sum;        /* exact; min and max are 0 when empty */
    uint64_t  zeros;                /* values of magnitude below 2^-40 */
    uint64_t *pos[SONDE_HIST_EXPS]; /* per power of two, NULL until used */
    uint64_t *neg[SONDE_HIST_EXPS]; /* the same for negative values */
} sonde_hist;

/* Allocates an empty histogram; NULL when memory runs out. */
sonde_hist *sonde_hist_new(void);

/* Frees h and its buckets; NULL is allowed. */
void sonde_hist_free(sonde_hist *h);

/* Empties h (its buckets stay allocated, zeroed). */
void sonde_hist_reset(sonde_hist *h);

/* Records value v (finite) n times. Returns 0, or -1 when memory runs out
 * (h is unchanged then). */
int sonde_hist_record(sonde_hist *h, double v, uint64_t n);

/* Adds every count of `from` to `into`, as if its values had been
 * recorded there. Returns 0, or -1 when memory runs out. */
int sonde_hist_merge(sonde_hist *into, const sonde_hist *from);

/* The q-quantile (0 <= q <= 1) with k6's interpolation: rank q*(count-1)
 * between the values at the ranks below and above it. Exact at q = 0 and
 * 1 (min, max); 0 for an empty histogram. */
double sonde_hist_quantile(const sonde_hist *h, double q);

/* The bucket index v falls in (see SONDE_HIST_BUCKETS). */
int sonde_hist_index(double v);

/* The value a bucket stands for: the middle of its range (0 for 0). */
double sonde_hist_bucket_value(int index);

/* Iterates non-empty buckets in ascending order of value: pass *index =
 * -SONDE_HIST_BUCKETS - 1 to start; returns 1 with *index and *count set,
 * 0 when there are no more. */
int sonde_hist_next(const sonde_hist *h, int *index, uint64_t *count);

/* Adds n to the count of bucket `index` alone (loading a dumped
 * histogram; count, min, max and sum are the caller's). Returns 0, or -1
 * for an index out of range or when memory runs out. */
int sonde_hist_add_bucket(sonde_hist *h, int index, uint64_t n);

#endif
