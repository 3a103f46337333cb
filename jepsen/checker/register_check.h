/*
 * register_check.h — linearizability of independent registers with CAS.
 *
 * Workload ("register"): f is "read", "write" or "cas"; value is [key, v]
 * with key an integer:
 *   read   invoke [k, null]; ok [k, v] with v an integer or null (absent)
 *   write  [k, v], v an integer
 *   cas    [k, [old, new]]: applies only if the value is old (old may be null)
 * Every key starts absent (null). Keys are independent, so each key's ops
 * are checked on their own (linear.h) and the history is linearizable iff
 * every key is.
 *
 * Outcomes: ok ops happened between invoke and completion; fail ops did not
 * happen and are left out; write/cas with info (or no completion) may have
 * happened at any time after the invoke, or never; reads that did not return
 * ok constrain nothing and are dropped.
 *
 * Before searching, a key's ops are checked against simple rules that prove
 * an op impossible in any order (register_facts.c: a phantom value, a value
 * whose only writes failed, a stale read, null after a write, a cas from a
 * value never set, two cas consuming one write); such a key is invalid
 * however long its history.
 *
 * Verdict: invalid if any key is not linearizable; else unknown if any key
 * ran out of its state budget or of the time limit; else valid. The
 * explanation names each bad key (up to REGISTER_EXPLAINED_KEYS), its
 * impossible ops with their cause, the op the search could not place, the
 * deepest linearizable prefix and the register value after it.
 */
#ifndef OKV_JEPSEN_REGISTER_CHECK_H
#define OKV_JEPSEN_REGISTER_CHECK_H

#include <stdint.h>

#include "errors.h"
#include "history.h"
#include "result.h"

/* The default state budget of a key: this many configurations, but no more
 * than fit in REGISTER_MEMO_BYTES of memo (long keys have larger entries). */
#define REGISTER_DEFAULT_MAX_STATES 2000000u
#define REGISTER_MEMO_BYTES ((uint64_t)256 << 20)
/* A key with an op that is impossible in any order is invalid without a
 * search; the search then only looks for the longest prefix to show, with
 * this budget. */
#define REGISTER_EXPLAIN_STATES 100000u
#define REGISTER_EXPLAINED_KEYS 5

typedef struct register_options {
    int64_t time_limit_ms;          /* for the whole check; <= 0: none */
    uint64_t max_states_per_key;    /* memo entries per key; 0: REGISTER_DEFAULT_MAX_STATES */
    int64_t (*now_ms)(void *ctx);   /* monotonic clock; NULL: no time limit */
    void *clock_ctx;
} register_options;

#define REGISTER_OPTIONS_INIT { 60000, 0, NULL, NULL }

/* Checks h as a register history. On success *out is the caller's
 * (check_result_free). Errors: OKV_EINVAL when an op does not follow the
 * workload's format (err names the op), OKV_ENOMEM. */
int register_check(check_result **out, const history *h, const register_options *opt, okv_error *err);

#endif
