/*
 * histogram.h — latency histogram with bounded relative error.
 *
 * Buckets are log-linear: 64 sub-buckets per power of two of microseconds,
 * so any reported percentile is within ~1.6% of the true value, from 1 us to
 * over an hour, in a fixed 2,560-slot array. Not thread-safe: each load
 * thread keeps its own and they are merged.
 */
#ifndef OKV_BENCH_HISTOGRAM_H
#define OKV_BENCH_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB 64
#define HIST_POW 40
#define HIST_SLOTS (HIST_SUB * HIST_POW)

typedef struct histogram {
    uint64_t counts[HIST_SLOTS];
    uint64_t total;
    uint64_t max_us;
} histogram;

void histogram_record(histogram *h, uint64_t us);
void histogram_merge(histogram *into, const histogram *from);
/* Value (us) at quantile q in [0, 1]; 0 when empty. */
uint64_t histogram_quantile(const histogram *h, double q);

#endif
