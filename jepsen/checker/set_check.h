/*
 * set_check.h — the set workload: every acknowledged add must stay visible.
 *
 * Workload ("set"): f "add" with value an integer element (each element added
 * at most once); f "read" with invoke value null and ok value the JSON array
 * of elements present. Reads may happen during the run and at the end.
 *
 * Each element has an add outcome: ok (acknowledged), fail, or unknown (info
 * or never completed). Rules, over every ok read R:
 *   - an element becomes *required* once its add was acknowledged or once a
 *     read that contained it completed (whichever is first; elements whose add
 *     failed never become required). A read invoked after that point must
 *     contain it.
 *   - lost: some read R that was required to contain the element lacks it,
 *     and no read invoked after R completed contains it (it is gone for good
 *     as far as the history shows; this includes the final reads);
 *   - stale: some read lacked a required element, but a later read (invoked
 *     after that read completed) contains it again;
 *   - unexpected: a read contains an element that was never added, or whose
 *     add was invoked only after the read completed;
 *   - failed-but-present: a read contains an element whose add failed;
 *   - duplicated: a read lists an element more than once.
 * recovered counts elements of unknown outcome that some read contains (fine).
 * Valid iff none of lost, stale, unexpected, failed-but-present, duplicated;
 * unknown if the history has no ok read.
 */
#ifndef OKV_JEPSEN_SET_CHECK_H
#define OKV_JEPSEN_SET_CHECK_H

#include "errors.h"
#include "history.h"
#include "result.h"

/* Checks h as a set history. *out is the caller's (check_result_free).
 * Errors: OKV_EINVAL (an op that does not follow the workload's format, or
 * an element added twice; err names the op), OKV_ENOMEM. */
int set_check(check_result **out, const history *h, okv_error *err);

#endif
