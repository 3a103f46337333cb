#include "histogram.h"

static unsigned slot_of(uint64_t us)
{
    if (us < HIST_SUB)
        return (unsigned)us;
    unsigned p = 63u - (unsigned)__builtin_clzll(us);   /* us in [2^p, 2^(p+1)) */
    unsigned shift = p - 6;                              /* 64 sub-buckets = 2^6 */
    unsigned s = (p - 5) * HIST_SUB + (unsigned)((us >> shift) - HIST_SUB);
    return s < HIST_SLOTS ? s : HIST_SLOTS - 1;
}

/* Upper edge of a slot, the value reported for it. */
static uint64_t slot_value(unsigned s)
{
    if (s < HIST_SUB)
        return s;
    unsigned p = s / HIST_SUB + 5;
    uint64_t sub = s % HIST_SUB + HIST_SUB;
    return ((sub + 1) << (p - 6)) - 1;
}

void histogram_record(histogram *h, uint64_t us)
{
    h->counts[slot_of(us)]++;
    h->total++;
    if (us > h->max_us)
        h->max_us = us;
}

void histogram_merge(histogram *into, const histogram *from)
{
    for (unsigned i = 0; i < HIST_SLOTS; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    if (from->max_us > into->max_us)
        into->max_us = from->max_us;
}

uint64_t histogram_quantile(const histogram *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->total);
    if (rank >= h->total)
        rank = h->total - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_SLOTS; i++) {
        seen += h->counts[i];
        if (seen > rank) {
            uint64_t v = slot_value(i);
            return v < h->max_us ? v : h->max_us;
        }
    }
    return h->max_us;
}
