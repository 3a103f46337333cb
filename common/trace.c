/*
 * trace.c — see trace.h. Built only with -DORDERKV_TRACE=ON.
 */
#include "trace.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t okv_trace_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int enabled(void)
{
    static atomic_int state;   /* 0 unknown, 1 off, 2 on */
    int s = atomic_load_explicit(&state, memory_order_relaxed);
    if (!s) {
        const char *e = getenv("ORDERKV_TRACE");
        s = e && strcmp(e, "1") == 0 ? 2 : 1;
        atomic_store_explicit(&state, s, memory_order_relaxed);
    }
    return s == 2;
}

void okv_trace(uint64_t node, const char *event, uint64_t group, uint64_t index,
               uint64_t queued_ns)
{
    if (!enabled())
        return;
    char line[160];
    int n = snprintf(line, sizeof line, "TR %llu %s %llu:%llu %llu %llu\n",
                     (unsigned long long)node, event, (unsigned long long)group,
                     (unsigned long long)index, (unsigned long long)queued_ns,
                     (unsigned long long)okv_trace_now());
    /* One write per line: lines of several threads never interleave. A
     * line that cannot be written is lost; tracing never stops the node. */
    if (n > 0 && (size_t)n < sizeof line) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n);
        (void)w;
    }
}
