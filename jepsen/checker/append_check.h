/*
 * append_check.h — the list-append workload, checked as Elle does: infer
 * every key's version order from the lists read, build the transactions'
 * dependency graph, and look for cycles (Adya's G0 .. G2, and their
 * realtime variants for strict serializability).
 *
 * Workload ("list-append", jepsen/runner/workload_append.c): every client
 * op is f "txn" whose value is a list of micro-ops
 *   ["append", k, v]   append integer v to the list at integer key k
 *   ["r", k, null]     read the list at k; the ok completion holds the list
 *                      read, [v1, v2, ...] ([] for an absent key)
 * Values are unique per key (the runner makes them unique across the run).
 * ok = committed, fail = nothing applied, info (or no completion) = may or
 * may not have applied. The ok completion must repeat the invoke's
 * micro-ops, reads filled in.
 *
 * Inference:
 *   - version order of key k: the longest list any ok transaction read of
 *     k; every other ok read of k must be a prefix of it, else
 *     incompatible-order. A value's writer is the transaction that appended
 *     it (unique, else a format error).
 *   - a read that follows the transaction's own appends to the key is split
 *     into the external part (what it read from others) and its own
 *     appends, which must end the list (else internal).
 *   - graph nodes: ok transactions, and info transactions some ok read saw
 *     an append of (they committed, at an unknown time).
 *   - edges, T1 -> T2 (T1 != T2, both nodes):
 *       ww  T1 appended v1 to k, T2 the next value in k's order;
 *       wr  T2 read k as a list ending in v, which T1 appended;
 *       rw  T1 read k as a list of length n (possibly empty) and T2 appended
 *           element n+1 of k's order (the one after the last it saw);
 *       rt  T1 completed ok before T2 was invoked (transitively reduced: a
 *           sweep keeps only the completions no later one supersedes).
 *
 * Anomalies (all make the history invalid):
 *   G0 / G1c / G-single / G2   a cycle of ww only / ww+wr with a wr edge /
 *              exactly one rw edge / two or more rw edges, without rt
 *              edges. One cycle is counted per strongly connected
 *              component (Tarjan) of the graph of the edge kinds allowed,
 *              found by BFS as the shortest through an edge of the kind
 *              that defines the class; G-single is tried before G2.
 *   G0-realtime .. G2-realtime the same, in a component of the graph with
 *              rt edges that holds no cycle without them: a cycle that
 *              needs real time (a stale read is G-single-realtime).
 *   G1a        an ok read saw a value whose writer failed (aborted read);
 *   G1b        an ok read's last external element is not its writer's last
 *              append to that key (intermediate read);
 *   lost-append    an ok append no ok read ever saw, though an ok read of
 *              that key was invoked after the append completed;
 *   incompatible-order, duplicate-elements, internal (see above),
 *   garbage-read   a read holds a value nobody appended,
 *   bad-value  a read holds something that is not a list of integers.
 * Unknown when no ok transaction read anything. Examples are invoke
 * indices (of the first transaction of a cycle, of the reader, of the lost
 * append). The explanation shows up to AP_EXPLAIN_PER_CLASS cycles per
 * class step by step: each transaction with its micro-ops, then each edge
 * with the key and values that justify it.
 */
#ifndef OKV_JEPSEN_APPEND_CHECK_H
#define OKV_JEPSEN_APPEND_CHECK_H

#include "errors.h"
#include "history.h"
#include "result.h"

/* Cycles explained per anomaly class; the rest are counted. */
#define AP_EXPLAIN_PER_CLASS 3

/* Checks h as a list-append history; *out is the caller's
 * (check_result_free). Errors: OKV_EINVAL (an op that does not follow the
 * workload's format, or a value appended twice to a key; err names the
 * op), OKV_ENOMEM. */
int append_check(check_result **out, const history *h, okv_error *err);

#endif
