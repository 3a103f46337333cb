/*
 * trace.h — timestamps along a write's path through the raft loops of the
 * leader and its followers, to see where a one-client put's time goes
 * (scripts/trace-put.sh, docs/performance.md "Where a one-client put's
 * time goes").
 *
 * Compiled in only with -DORDERKV_TRACE=ON; otherwise the macros are empty
 * and production builds carry none of it. A traced node prints nothing
 * unless ORDERKV_TRACE=1 is in its environment (read once); then one line
 * per event goes to stderr:
 *
 *   TR <node> <event> <group>:<index> <queued_ns> <now_ns>
 *
 * queued_ns is when the item that caused the event entered the raft loop's
 * inbox (0 if none). Times are CLOCK_MONOTONIC, one clock for every process
 * on the machine, so the lines of the nodes of a local cluster compare
 * directly. Events (raftstore.c):
 *   propose      leader: a proposal left the inbox; index = its entry
 *   append       a Ready's entries go to the log; index = the last one
 *   synced       the loop's synced write returned; index as append
 *   recv_append  follower: an APPEND with entries left the inbox
 *   answered     follower: its answers for synced entries were handed to
 *                the transport
 *   recv_ack     leader: an APPEND_RESP left the inbox; index = match
 *   applied      entries applied and visible; index = the last one
 */
#ifndef OKV_TRACE_H
#define OKV_TRACE_H

#include <stdint.h>

#ifdef ORDERKV_TRACE
uint64_t okv_trace_now(void);
void okv_trace(uint64_t node, const char *event, uint64_t group, uint64_t index,
               uint64_t queued_ns);
#define OKV_TRACE_NOW() okv_trace_now()
#define OKV_TRACE(node, event, group, index, queued_ns) \
    okv_trace((node), (event), (group), (index), (queued_ns))
#define OKV_TRACING 1
#else
#define OKV_TRACE_NOW() ((uint64_t)0)
#define OKV_TRACE(node, event, group, index, queued_ns) ((void)0)
#define OKV_TRACING 0
#endif

#endif
