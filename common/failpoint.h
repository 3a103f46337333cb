/*
 * failpoint.h — named failpoints that tests switch on to reach rare paths
 * (docs/testing.md "Failpoints").
 *
 * Compiled in only with -DORDERKV_FAILPOINTS=ON; otherwise OKV_FAILPOINT is
 * the constant 0 and the code around it vanishes, so production builds carry
 * none of this. A build with failpoints says so in its start-up log line
 * (okv_fp_describe) — a node running one must never be mistaken for a
 * production node.
 *
 * Configuration: the environment variable ORDERKV_FAILPOINTS, read once at
 * start (okv_fp_init), is a ';'-separated list of name=action:
 *
 *   on          fires every time it is evaluated
 *   off         never fires (the default for every name)
 *   P%          fires with probability P (1..100), e.g. 30%
 *   crash       kills the process with SIGKILL at that point (a power cut
 *               for everything not yet synced)
 *   sleep(MS)   sleeps MS milliseconds, then does not fire
 *
 * and an optional suffix @N: the action applies from the N-th evaluation
 * on (1-based), e.g. "raft.persist.after_sync=crash@300" lets 299 rounds pass.
 *
 * Names in use (grep OKV_FAILPOINT for the sites):
 *   raft.persist.before_sync   raftstore, before the loop's synced batch (sleep = slow fsync)
 *   raft.persist.after_sync    raftstore, after the synced batch, before applying (crash)
 *   transport.drop.nodeN       transport, every message to node N is dropped (on / P%)
 *   snap.install.after_mark    raftstore, snapshot install marker synced, nothing ingested (crash)
 *   snap.install.after_ingest  raftstore, snapshot files ingested, install not yet recorded (crash)
 *   snap.send.after_chunk      snap_send, after each chunk of a snapshot stream (sleep = slow stream)
 *   tpc.driver.before_decide   2PC driver: every PREPARE answered, DECIDE not sent (crash)
 *   tpc.driver.before_reply    2PC driver: DECIDE applied, the client not answered (crash)
 *   tpc.driver.before_resolve  2PC driver: the client answered, no RESOLVE sent (crash)
 *   tpc.driver.after_first_resolve  2PC driver: one participant's RESOLVE applied,
 *                              the others' not yet answered (crash)
 *   tpc.driver.before_start    2PC driver: a KV.Txn call is about to start its
 *                              driver (sleep = the call arrives late)
 *   tpc.driver.delay_vote      2PC driver: the coordinator's vote is sent past the
 *                              deadline and the sweepers' grace (on)
 *   tpc.driver.slow_vote       2PC driver: the coordinator's vote is sent a quarter
 *                              of the 2PC timeout late, within the deadline (on / P%)
 *   tpc.driver.delay_resolve   2PC driver: RESOLVEs are sent past the deadline and
 *                              the sweepers' grace, after the commit (on)
 *   tpc.local.after_propose_decision  2PC: the coordinator's leader handed its vote
 *                              or DECIDE to the raft loop, nothing applied (crash)
 *   tpc.apply.before_prepare   state machine: a PREPARE for a participant other than
 *                              the coordinator is about to apply (crash)
 *   tpc.apply.before_decision  state machine: the coordinator's vote or DECIDE is
 *                              about to apply (crash)
 *   tpc.retain.short           2PC records are forgotten 2 s (C) / 1 s (P) after
 *                              settling instead of 10 min / 1 min; set it on every
 *                              node, as FORGET's rule reads it too (on)
 *   orders.reads.idem_first    orders service: a request reads its idempotency
 *                              records at once and its other records 1.5 s later
 *                              (on; cluster.orders_idem_race)
 * Planted bugs for the jepsen suite's self-test (jepsen/tests/planted.sh):
 *   kv.read.local              Get/Scan served from local state, no ReadIndex
 *   kv.ack.before_commit       a write is acknowledged once proposed, before it commits
 *   fsm.dedup.skip             apply ignores the exactly-once table
 *   kv.reply.drop              a write's answer is replaced by a bare UNAVAILABLE
 *   lease.never_ends           a leader's read lease never expires, not even
 *                              when it stops leading
 *   txn.partial                a transaction stopped by write w (a floor) still
 *                              applies the writes before w
 *   tpc.resolve.drop_commit    a participant (not the coordinator) releases its
 *                              locks on COMMIT without applying the writes
 *   tpc.locks.skip_shared      PREPARE takes no shared locks on condition keys
 *   tpc.range.no_lock          PREPARE checks a share's range conditions but takes no
 *                              range lock (an insert before RESOLVE: a phantom;
 *                              caught by cluster.tpc_range_planted)
 *   txn.range.ignore           a range condition (okv_tx_scan) always holds
 *   tpc.locks.shared_admits_writer  PREPARE lets a writer join a key's shared
 *                              lock (its readers' conditions may break: write skew)
 *   txn.check.ignore_locks     a one-partition condition ignores an exclusive lock
 *                              (a read-only check passes over a committed,
 *                              unresolved write)
 *   tpc.prepare.ignore_tombstone  PREPARE ignores an ABORTED record (its own P
 *                              and, at the coordinator, C): a split decision
 *   tpc.driver.answer_early    the 2PC driver answers "committed" once the other
 *                              shares PREPARED, before the coordinator's vote
 *                              applies (which may still refuse: a lost write)
 *   orders.confirm.skip        the orders service answers a refusal without reading
 *                              an absent idempotency record again (a same-key
 *                              duplicate gets "illegal transition", not a replay;
 *                              caught by cluster.orders_idem_race_planted)
 *   kv.read.ignore_intents     Get/Scan read past exclusive locks (a stale read
 *                              of a committed, unresolved write)
 *   orders.idem.skip           an orders plan omits "idempotency record absent"
 *                              (a resent request takes effect twice)
 *   orders.reserve.no_floor    a stock take has no floor (oversell)
 *   orders.transition.any      the order status check is skipped
 *   orders.refund.no_limit     refunds may exceed what was captured
 *   tpc.prepare.ignore_fence   PREPAREs pass a backup's fence (a backup's
 *                              cuts can split a transaction; cluster.backup_fence_planted)
 *   auth.tables.unchecked      a call's tables are not checked against the user's
 *                              role and grants (cluster.auth_planted)
 */
#ifndef OKV_FAILPOINT_H
#define OKV_FAILPOINT_H

#ifdef ORDERKV_FAILPOINTS

/* Parses ORDERKV_FAILPOINTS. Returns 0, or -1 with a message in msg (an
 * unknown action, a bad number): the caller should refuse to start. */
int okv_fp_init(char *msg, unsigned long msg_len);

/* Evaluates the failpoint: 1 if it fires. Thread-safe. */
int okv_fp_eval(const char *name);

/* The same, for a name built with printf-style arguments. */
int okv_fp_evalf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "failpoints: a=on; b=30%" or "failpoints compiled in, none set". */
const char *okv_fp_describe(void);

#define OKV_FAILPOINTS_BUILD 1
#define OKV_FAILPOINT(name) okv_fp_eval(name)
#define OKV_FAILPOINTF(...) okv_fp_evalf(__VA_ARGS__)

#else

/* A function, not a bare 0, so a failpoint may stand as a statement. */
static inline int okv_fp_off(void) { return 0; }

#define OKV_FAILPOINTS_BUILD 0
#define OKV_FAILPOINT(name) okv_fp_off()
#define OKV_FAILPOINTF(...) okv_fp_off()

#endif
#endif
