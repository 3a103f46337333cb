/*
 * sequential_check.h — the sequential workload: a prefix written in order
 * must be seen as a prefix.
 *
 * Workload ("sequential"): one writer at a time writes indices in order:
 * f "write", value i = 0, 1, 2, ..., each invoked only after the previous
 * one was ok (a writer that gets info stops; a new process may continue with
 * later indices). Readers: f "read", invoke value m (the highest index to
 * probe), ok value the array of indices found; the reader probes m, m-1, ...,
 * 0 in that order.
 *
 * Rule (gap): if an ok read contains n, it must contain every i < n whose
 * write completed ok before the write of n was invoked. The writer only
 * invokes n after i was acknowledged, and the reader probes n before i, so
 * by the time it probes i, i has been durable for a while.
 * Also: unexpected (a read contains an index never written, or whose write
 * was invoked only after the read completed) and failed-but-present (a read
 * contains an index whose every write failed).
 * Valid iff no gap, unexpected or failed-but-present; unknown if the history
 * has no ok read.
 */
#ifndef OKV_JEPSEN_SEQUENTIAL_CHECK_H
#define OKV_JEPSEN_SEQUENTIAL_CHECK_H

#include "errors.h"
#include "history.h"
#include "result.h"

/* Checks h as a sequential history; *out is the caller's (check_result_free).
 * Errors: OKV_EINVAL (an op that does not follow the workload's format, e.g.
 * a read returning an index above its probe bound; err names the op),
 * OKV_ENOMEM. */
int sequential_check(check_result **out, const history *h, okv_error *err);

#endif
