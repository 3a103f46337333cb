/*
 * tpc.h — two-phase commit over Raft groups: the messages a partition's log
 * carries for a transaction that spans partitions, the records they leave,
 * and the rules that apply them (docs/transactions.md, "Across partitions").
 *
 * Pure: no RocksDB, no clock, no I/O. The state machine hands tpc_apply a
 * store of records and locks (tpc_store) and the data (txn_store); the unit
 * tests hand it tables in memory. Every replica applies the same entry to
 * the same state and reaches the same outcome; the only time an entry sees
 * is the clock its proposer wrote into it.
 *
 * A transaction spanning partitions has an id (the client id and request id
 * of its KV.Txn call) and a coordinator: the group of its first write. Each
 * group that holds some of its keys is a participant, the coordinator too.
 *
 * Records, per group, all written only when an entry applies:
 *   lock      per data key: its holders' ids; shared on a key the
 *             holders only read (conditions), exclusive on a key its one
 *             holder writes. Several transactions may hold a key shared
 *             (up to TPC_LOCK_MAX_HOLDERS); any other meeting of two
 *             transactions on a key, a write under a shared lock or
 *             anything under an exclusive one, gets OKV_ECONFLICT (a
 *             PREPARE that meets one records nothing: its sender may try
 *             again once the holders are resolved).
 *   P         the participant record: PREPARED with this group's share of
 *             the transaction (its intents: the writes RESOLVE will apply),
 *             then COMMITTED or ABORTED; a P that says ABORTED is also the
 *             refusal tombstone that turns down a late PREPARE.
 *   C         the coordinator record: PENDING with the participants and the
 *             deadline, then COMMITTED or ABORTED (the decision), then
 *             finished once every participant resolved. A C written ABORTED
 *             by CHECK without a PREPARE is the tombstone that turns down
 *             the coordinator's own late PREPARE.
 *   H         per client: the highest request id whose C was forgotten.
 *   R         range locks: the ranges [start, end) of a PREPARED share's
 *             RANGE conditions (okv_tx_scan), held shared by that one
 *             transaction (tpc_rlock_* encoding below) until RESOLVE.
 *   N         per group (id {0, 0}): how many R records the group holds,
 *             so a write checks range locks with one point read while
 *             there are none (absent = 0: a data dir from before range
 *             locks behaves exactly as it did).
 *
 * Invariants (the argument is in docs/transactions.md):
 *  T1 One decision: C leaves PENDING once, by DECIDE or CHECK, and never
 *     changes again; a C that never was PENDING can only be ABORTED.
 *  T2 A transaction commits only if every participant PREPARED: the driver
 *     decides COMMIT, or sends the coordinator's vote-last PREPARE, only
 *     then; the coordinator's PREPARE is the only way C becomes PENDING,
 *     and its vote-last PREPARE the only way C becomes COMMITTED without
 *     DECIDE (its own share checked in that same entry).
 *  T3 A PREPARED participant never leaves PREPARED but through RESOLVE with
 *     the decision; it keeps its locks until then, so nothing else writes
 *     (or, under an exclusive lock, commits a condition on) its keys, and
 *     the writes RESOLVE applies compute the values PREPARE checked. Its
 *     range locks keep every key of a scanned range as PREPARE counted
 *     them: no other transaction's exclusive lock lies in a range when the
 *     lock is taken, and while it is held every write into the range by
 *     another transaction or a plain put is turned away (T6).
 *  T6 A range lock is taken only by a PREPARE whose RANGE conditions held
 *     in that entry with no exclusive lock in the range; N always equals
 *     the number of R records of the group (taken and released in the
 *     same entry as its R record).
 *  T4 Everything is idempotent: a message applied twice answers the same
 *     and changes nothing the second time.
 *  T5 FORGET removes only a C that is finished or a P that is resolved, and
 *     only after its retention period (by the proposer's clock): a C 10
 *     minutes after it finished (resends and status), a P a minute after
 *     both its settling and its deadline (no PREPARE of it can apply any
 *     more), so a record somebody may still ask about is never dropped.
 *     A forgotten C raises its client's horizon (H), and the coordinator's
 *     PREPARE refuses an id at or below it: a driver that starts late (its
 *     call held up) sets its deadline after the C was already forgotten.
 */
#ifndef OKV_SERVER_TPC_H
#define OKV_SERVER_TPC_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "txn.h"

#define TPC_FORMAT 1
#define TPC_MAX_PARTS 64u
/* A finished coordinator record is kept this long after it settles: a
 * client's resend of the transaction, or its TxnStatus, finds the outcome
 * until then. */
#define TPC_RETAIN_MS (10u * 60u * 1000u)
/* A settled participant record is kept this long after the later of its
 * settling and its deadline. Past the deadline every copy of its PREPARE is
 * refused anyway (the proposing leader stamps its clock), so all it still
 * does is answer a late duplicate the same way. */
#define TPC_P_RETAIN_MS (60u * 1000u)
/* Failpoint builds only (tpc.retain.short, set on every node: replicas
 * judge FORGET by it): these much shorter periods, so a cluster test sees
 * records forgotten within seconds. */
#define TPC_RETAIN_SHORT_MS 2000u
#define TPC_P_RETAIN_SHORT_MS 1000u

/* The retention of a settled record of kind 'C' or 'P': TPC_RETAIN_MS or
 * TPC_P_RETAIN_MS, or the short ones above when failpoint tpc.retain.short
 * is on. Both the sweeper (which proposes FORGET) and FORGET's rule ask
 * this. */
uint64_t tpc_retain_ms(char kind);

enum tpc_kind {
    TPC_PREPARE = 1,   /* lock, check, record intents (and at the coordinator, C = PENDING);
                        * flag 1, at the coordinator: it votes last, and a share that
                        * passes its checks commits the transaction in that entry */
    TPC_DECIDE = 2,    /* coordinator: compare-and-swap C from PENDING to the decision */
    TPC_RESOLVE = 3,   /* participant: apply or drop the intents, release the locks */
    TPC_CHECK = 4,     /* coordinator: the state of C; flag 1: ABORT_IF_UNDECIDED (past
                        * the deadline); flag TPC_CHECK_SETTLE: a client's status query
                        * that makes the answer final (below) */
    TPC_FINISH = 5,    /* coordinator: every participant resolved */
    TPC_FORGET = 6,    /* drop a settled record past its retention (GC) */
    TPC_FENCE = 7      /* a backup's fence (below): flag 1 raises it, 0 lifts it */
};

/* The backup fence (docs/operations.md "Backup and restore"). An online
 * backup cuts every partition at its own Raft index; a transaction across
 * partitions that PREPAREd on one partition after that partition's cut and
 * committed before another's would be split by the backup. So the backup
 * first raises a fence on every partition: a record 'F' (id {0, 0}) holding
 * the fence's id (id.client of the FENCE message) and its expiry (the
 * raising entry's clock + deadline_ms, a lifetime). While a fence stands
 * (an entry's clock below its expiry), every PREPARE (the coordinator's
 * vote included) is refused with OKV_ECONFLICT and a tombstone, so its
 * transaction aborts and the client retries it; one-partition transactions
 * and plain writes are not touched. Raising a fence while another id's
 * fence stands is refused (OKV_ECONFLICT: two backups at once); raising the
 * same id again renews it. Lifting removes the record if it is that id's.
 * The expiry bounds what a backup tool that died can hold up. */
#define TPC_FENCE_MAX_MS (10u * 60u * 1000u)

/* 1 if the value of an 'F' record stands at clock now_ms, with its id. */
int tpc_fence_active(const uint8_t *val, size_t len, uint64_t now_ms, uint64_t *id);

struct tpc_store;
struct tpc_msg;
struct tpc_result;
/* tpc_fence.c, for tpc_apply: a FENCE entry; and whether a fence stands
 * against m (a PREPARE) in *fenced. */
int tpc_fence_apply(const struct tpc_msg *m, const struct tpc_store *s, struct tpc_result *out,
                    okv_error *err);
int tpc_fence_check(const struct tpc_msg *m, const struct tpc_store *s, int *fenced,
                    okv_error *err);

/* CHECK with this flag (KV.TxnStatus of a transaction across partitions):
 * no C and an id above the highest forgotten one of its client ('H'
 * record) means it was never decided here, so it is decided ABORTED now (a
 * tombstone: its coordinator's vote will be refused); an id at or below it
 * may have been forgotten: NONE. */
#define TPC_CHECK_SETTLE 2

enum tpc_state {
    TPC_NONE = 0,       /* no record */
    TPC_PENDING = 1,    /* C: prepared at the coordinator, undecided */
    TPC_PREPARED = 2,   /* P: locks held, intents recorded */
    TPC_COMMITTED = 3,
    TPC_ABORTED = 4
};

enum tpc_lock_mode { TPC_LOCK_NONE = 0, TPC_LOCK_SHARED = 1, TPC_LOCK_EXCLUSIVE = 2 };

typedef struct tpc_id {
    uint64_t client;
    uint64_t req;
} tpc_id;

typedef struct tpc_group {
    uint32_t table_id;
    uint32_t partition;
} tpc_group;

/* Why a transaction aborted, as the client is told: the code (OKV_ECONDITION,
 * OKV_ECONFLICT, OKV_EINVAL) and, for a condition or write, which one. */
typedef struct tpc_fail {
    int32_t code;
    uint32_t failed;    /* index in this group's share (txn.h numbering) */
    uint8_t reason;     /* enum txn_fail */
} tpc_fail;

/* A message; pointers are borrowed from the encoded bytes. */
typedef struct tpc_msg {
    uint8_t kind;             /* enum tpc_kind */
    uint8_t flag;             /* DECIDE/RESOLVE: 1 commit, 0 abort; CHECK: 1 abort if undecided;
                               * FORGET: 'C' or 'P'; PREPARE at the coordinator: 1 vote last */
    tpc_id id;
    uint64_t clock_ms;        /* the proposer's wall clock */
    uint64_t deadline_ms;     /* PREPARE */
    tpc_group self;           /* the group the entry is for */
    tpc_group coord;          /* PREPARE: the coordinator */
    tpc_fail fail;            /* DECIDE abort: why, kept in C for resends */
    uint32_t nparts;          /* PREPARE at the coordinator: every participant */
    tpc_group parts[TPC_MAX_PARTS];
    const uint8_t *share;     /* PREPARE: this group's share (txn.h encoding) */
    size_t share_len;
} tpc_msg;

/* Participant record. */
typedef struct tpc_prec {
    uint8_t state;            /* PREPARED, COMMITTED, ABORTED */
    uint64_t deadline_ms;
    uint64_t settled_ms;      /* clock of the entry that resolved it */
    tpc_group coord;
    tpc_fail fail;            /* ABORTED at PREPARE: why */
    const uint8_t *share;     /* PREPARED only; borrowed */
    size_t share_len;
} tpc_prec;

/* Coordinator record. */
typedef struct tpc_crec {
    uint8_t state;            /* PENDING, COMMITTED, ABORTED */
    uint8_t finished;
    uint64_t deadline_ms;
    uint64_t settled_ms;      /* decided, then finished */
    tpc_fail fail;
    uint32_t nparts;
    tpc_group parts[TPC_MAX_PARTS];
} tpc_crec;

/* Records and locks of one group, supplied by the caller. Getters return
 * OKV_ENOTFOUND when absent; *val is malloc'd (the caller frees). */
typedef struct tpc_store {
    void *ctx;
    int (*rec_get)(void *ctx, char kind, const tpc_id *id, uint8_t **val, size_t *len,
                   okv_error *err);
    /* val NULL: delete */
    int (*rec_put)(void *ctx, char kind, const tpc_id *id, const uint8_t *val, size_t len,
                   okv_error *err);
    /* A key's lock record (the tpc_lock_* encoding below), malloc'd. */
    int (*lock_get)(void *ctx, const txn_key *k, uint8_t **val, size_t *len, okv_error *err);
    /* val NULL: no lock any more */
    int (*lock_put)(void *ctx, const txn_key *k, const uint8_t *val, size_t len,
                    okv_error *err);
    const txn_store *data;    /* read, write and range (locked unused) */
    /* Calls fn for every 'R' record of the group, in any order, until fn
     * returns non-zero. Only called while N says the group holds some;
     * NULL: the store keeps no range locks (a share with a RANGE
     * condition is then refused). */
    int (*rlock_each)(void *ctx,
                      int (*fn)(void *arg, const tpc_id *holder, const uint8_t *val,
                                size_t len),
                      void *arg, okv_error *err);
} tpc_store;

/* What an entry did. code: OKV_OK, or for a PREPARE turned down the reason
 * (OKV_ECONDITION / OKV_ECONFLICT / OKV_EINVAL, with fail); state: the
 * record's state after the entry (the decision, for DECIDE and CHECK). */
typedef struct tpc_result {
    int code;
    uint8_t state;
    tpc_fail fail;
    uint64_t version;         /* RESOLVE commit: the version its writes got */
} tpc_result;

size_t tpc_msg_encoded_size(const tpc_msg *m);
void tpc_msg_encode(const tpc_msg *m, uint8_t *out);
/* OKV_ECORRUPT with a message on malformed input; never reads past len.
 * Also refuses a DECIDE, CHECK or FINISH for a group that does not
 * coordinate (self != coord): no group could apply it. */
int tpc_msg_decode(const uint8_t *buf, size_t len, tpc_msg *out, okv_error *err);
/* What decoding alone cannot see, checked before a step from another node
 * is proposed: a PREPARE's share must decode as a transaction whose keys
 * all lie in m->self. OKV_EINVAL with a message otherwise. (tpc_apply
 * refuses such a PREPARE too, alike on every replica: a step is input,
 * and input never stops a replica.) */
int tpc_msg_check(const tpc_msg *m, okv_error *err);

/* Records: malloc'd encodings (NULL when out of memory). */
uint8_t *tpc_prec_encode(const tpc_prec *r, size_t *len);
int tpc_prec_decode(const uint8_t *buf, size_t len, tpc_prec *out);
uint8_t *tpc_crec_encode(const tpc_crec *r, size_t *len);
int tpc_crec_decode(const uint8_t *buf, size_t len, tpc_crec *out);
/* A lock record: the mode byte, then each holder's id (16 bytes: client,
 * request, big-endian); at least one holder, exactly one when exclusive.
 * TPC_LOCK_LEN is the length with one holder. */
#define TPC_LOCK_LEN 17u
#define TPC_LOCK_MAX_HOLDERS 32u
#define TPC_LOCK_MAX_LEN (1u + 16u * TPC_LOCK_MAX_HOLDERS)
void tpc_lock_encode(uint8_t mode, const tpc_id *holder, uint8_t out[TPC_LOCK_LEN]);
/* 0 with the mode and first holder, -1 if malformed. */
int tpc_lock_decode(const uint8_t *buf, size_t len, uint8_t *mode, tpc_id *holder);
/* Of a well-formed record: how many hold it, and the i-th. */
size_t tpc_lock_holders(size_t len);
tpc_id tpc_lock_holder(const uint8_t *buf, size_t i);

/* A range-lock record ('R'): u8 format (1), u16 number of ranges n
 * (1..TXN_MAX_CONDS), then n times: u16 start length S, S bytes, u16 end
 * length E, E bytes (E = 0: to the partition's last key; S = 0: from its
 * first). Bounds are user keys of the group, as in the RANGE condition.
 * tpc_rlock_covers: 1 if a well-formed record holds a range with
 * start <= key < end, 0 if not, -1 if malformed. */
#define TPC_RLOCK_FORMAT 1
int tpc_rlock_covers(const uint8_t *val, size_t len, const uint8_t *key, size_t key_len);

/* Whether a write of k (a key of s's group) meets a range lock of a
 * transaction other than `self` (NULL: a plain write or a one-partition
 * transaction, which hold none): *locked 1 or 0. One point read ('N')
 * while the group holds no range lock. The state machine asks it for
 * every write of a put, a delete or a one-partition transaction; PREPARE
 * asks it for its share's writes. */
/* How many range locks s's group holds (its 'N' record; 0 when absent). */
int tpc_range_lock_count(const tpc_store *s, uint64_t *n, okv_error *err);

int tpc_range_locked(const tpc_store *s, const txn_key *k, const tpc_id *self, int *locked,
                     okv_error *err);

/* Applies m at log index `index` of group m->self (rules in tpc.c;
 * TPC_FENCE's in tpc_fence.c). Returns
 * OKV_OK with the result in *out, or the store's error (the caller drops
 * its batch), or OKV_ECORRUPT when a record breaks an invariant. */
int tpc_apply(const tpc_msg *m, uint64_t index, const tpc_store *s, tpc_result *out,
              okv_error *err);

const char *tpc_state_name(uint8_t state);

#endif
