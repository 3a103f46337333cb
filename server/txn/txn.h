/*
 * txn.h — a transaction is conditions + writes: their encoding (part of the
 * raft log's on-disk format, documented byte by byte in txn.c and
 * docs/storage-format.md) and their evaluation when the entry applies.
 *
 * Pure: no RocksDB, no I/O. The state machine hands txn_eval a reader for
 * the current value of a key and a stager for the effects (txn_store); the
 * unit tests hand it a table in memory. Every replica evaluates the same
 * entry against the same state and so reaches the same outcome.
 *
 * Rules (docs/transactions.md):
 *   - every condition is checked against the state before the transaction;
 *     the first that does not hold fails the transaction (OKV_ECONDITION,
 *     `failed` = its index) and nothing is written;
 *   - then every write's effect is computed; an add whose result would drop
 *     below its floor fails the transaction the same way (`failed` =
 *     n_conds + the write's index, reason TXN_FAIL_FLOOR);
 *   - only then is anything staged: either every write applies or none;
 *   - a key is written at most once per transaction (txn_validate), so
 *     every write gets the entry's index as its version;
 *   - a key another transaction holds a lock on fails it with OKV_ECONFLICT
 *     (retryable), before any condition is read; so does a range condition
 *     with an exclusive lock in its range.
 *
 * Counters: a counter value is exactly 8 bytes, a signed 64-bit integer in
 * big-endian two's complement (txn_counter_encode). An add to an absent key
 * starts from 0. Any other value length is not a counter (OKV_EINVAL,
 * reason TXN_FAIL_NOT_COUNTER); a sum outside int64 is TXN_FAIL_OVERFLOW.
 */
#ifndef OKV_SERVER_TXN_H
#define OKV_SERVER_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define TXN_FORMAT 1
#define TXN_MAX_CONDS 256u
#define TXN_MAX_WRITES 256u
#define TXN_COUNTER_LEN 8u
/* A range condition's bounds may be one byte longer than a key: a scan page
 * that ended at key k covers up to k + "\0", the smallest key after it. */
#define TXN_RANGE_BOUND_MAX (OKV_MAX_KEY_LEN + 1u)

enum txn_cond_kind {
    TXN_COND_EXISTS = 1,
    TXN_COND_ABSENT = 2,
    TXN_COND_VERSION_EQ = 3,   /* version == `version` (0 never matches: use ABSENT) */
    TXN_COND_VALUE_EQ = 4,     /* the key exists and its value == `value` */
    TXN_COND_INT = 5,          /* the key is a counter and counter `cmp` `num` */
    TXN_COND_RANGE = 6         /* the keys of partition k.partition in [k.key, value) are
                                * `num` keys whose digest (range_digest.h) is `version`:
                                * what a scan saw is still there, nothing more. k.key may
                                * be empty (from the first key), value empty (to the last) */
};

enum txn_cmp { TXN_LT = 1, TXN_LE = 2, TXN_EQ = 3, TXN_GE = 4, TXN_GT = 5 };

enum txn_write_kind { TXN_PUT = 1, TXN_DELETE = 2, TXN_ADD = 3 };

/* Why a transaction did not apply (txn_outcome.reason). */
enum txn_fail {
    TXN_FAIL_NONE = 0,
    TXN_FAIL_CONDITION = 1,    /* a condition did not hold */
    TXN_FAIL_FLOOR = 2,        /* an add would go below its floor */
    TXN_FAIL_NOT_COUNTER = 3,  /* an int condition or add met a non-counter value */
    TXN_FAIL_OVERFLOW = 4,     /* an add left int64 */
    TXN_FAIL_LOCKED = 5        /* another transaction holds a lock on a key */
};

/* A key of the transaction: table and partition as the state machine keys
 * them, the user key borrowed from the encoded bytes. */
typedef struct txn_key {
    uint32_t table_id;
    uint32_t partition;
    const uint8_t *key;
    size_t key_len;
} txn_key;

typedef struct txn_cond {
    uint8_t kind;              /* enum txn_cond_kind */
    uint8_t cmp;               /* enum txn_cmp, TXN_COND_INT only */
    txn_key k;
    uint64_t version;          /* TXN_COND_VERSION_EQ; TXN_COND_RANGE: the digest */
    int64_t num;               /* TXN_COND_INT; TXN_COND_RANGE: the key count */
    const uint8_t *value;      /* TXN_COND_VALUE_EQ; TXN_COND_RANGE: the end; borrowed */
    size_t value_len;
} txn_cond;

typedef struct txn_write {
    uint8_t kind;              /* enum txn_write_kind */
    uint8_t has_floor;         /* TXN_ADD: fail if the result < floor */
    txn_key k;
    const uint8_t *value;      /* TXN_PUT, borrowed */
    size_t value_len;
    int64_t delta;             /* TXN_ADD */
    int64_t floor;             /* TXN_ADD with has_floor */
} txn_write;

/* A decoded transaction; conds and writes are owned (txn_clear frees them),
 * the bytes they point to are the caller's. */
typedef struct txn {
    size_t n_conds;
    txn_cond *conds;
    size_t n_writes;
    txn_write *writes;
} txn;

typedef struct txn_outcome {
    int code;                  /* OKV_OK, OKV_ECONDITION, OKV_ECONFLICT, OKV_EINVAL */
    uint8_t reason;            /* enum txn_fail */
    uint32_t failed;           /* conditions 0..n_conds-1, then writes */
    uint64_t version;          /* OKV_OK: the version every write got */
} txn_outcome;

/* The state a transaction reads and writes, supplied by the caller. */
typedef struct txn_store {
    void *ctx;
    /* Current value and version of k. OKV_ENOTFOUND when absent; any other
     * error stops the evaluation and is returned. *val is malloc'd (the
     * caller frees it). */
    int (*read)(void *ctx, const txn_key *k, uint8_t **val, size_t *val_len,
                uint64_t *version, okv_error *err);
    /* 1 if another transaction's lock on k stops this one: any lock on a
     * key it writes, an exclusive lock on a key it only reads (write = 0).
     * NULL = no locks exist. */
    int (*locked)(void *ctx, const txn_key *k, int write);
    /* Stages a put (val != NULL) or a delete of k at `version`. */
    int (*write)(void *ctx, const txn_key *k, const uint8_t *val, size_t val_len,
                 uint64_t version, okv_error *err);
    /* The keys of c's range (TXN_COND_RANGE) now: how many, their digest,
     * and whether a transaction holds an exclusive lock on one (a prepared
     * write that would change the range; only asked when `locked` is set).
     * NULL: a RANGE condition is an error (OKV_EINVAL): only one-partition
     * entries evaluate them. */
    int (*range)(void *ctx, const txn_cond *c, uint64_t *count, uint64_t *digest,
                 int *locked, okv_error *err);
} txn_store;

/* Bytes txn_encode writes for t. */
size_t txn_encoded_size(const txn *t);

/* Encodes t into out (txn_encoded_size bytes). */
void txn_encode(const txn *t, uint8_t *out);

/* Decodes len bytes into *out (txn_clear it afterwards, also on failure).
 * OKV_ECORRUPT with a message on malformed input; never reads past len. */
int txn_decode(const uint8_t *buf, size_t len, txn *out, okv_error *err);

void txn_clear(txn *t);

/* Checks what a client could get wrong, with a message naming the
 * condition or write: counts (1..TXN_MAX_WRITES writes, at most
 * TXN_MAX_CONDS conditions), key and value lengths, kinds, comparisons, a
 * key written twice. OKV_EINVAL if not. */
int txn_validate(const txn *t, okv_error *err);

/* Evaluates t at log index `index` against s (rules above). Returns OKV_OK
 * with the outcome in *out, or the read/write error that stopped it. */
int txn_eval(const txn *t, uint64_t index, const txn_store *s, txn_outcome *out,
             okv_error *err);

void txn_counter_encode(int64_t v, uint8_t out[TXN_COUNTER_LEN]);
/* 0 if val is a counter (exactly 8 bytes), -1 if not. */
int txn_counter_decode(const uint8_t *val, size_t len, int64_t *out);

/* "condition 2 (version == 17) did not hold on key 'k1'", "write 1 (add -500,
 * floor 0) would leave key 'acct/9' below its floor", etc.: a one-line
 * message for the outcome, for logs and for clients that send no names. Keys
 * are escaped and cut; buf always ends in NUL (cap > 0), never overflows. */
void txn_outcome_describe(const txn *t, const txn_outcome *o, char *buf, size_t cap);

#endif
