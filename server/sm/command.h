/*
 * command.h — the commands a partition's Raft log carries, and their results.
 *
 * A client write becomes one command, proposed to the partition's Raft group
 * and applied by every replica (fsm.h) in log order. The encoding is part of
 * the on-disk format (it lives in the raft log), so it is versioned and
 * documented byte by byte; decoding checks every length and never reads past
 * the input. Pure: no I/O.
 *
 * Command, version 1 (all integers big-endian):
 *   0   u8   format version (1)
 *   1   u8   op: 1 = PUT, 2 = DELETE, 3 = TXN, 4 = TPC (a two-phase commit
 *            message, tpc.h; client id 0: its rules make it idempotent),
 *            5 = TPC_MANY (several 2PC messages for the group, applied in
 *            order by one entry: the driver's batched FINISH steps)
 *   2   u8   flags: bit 0 = check_version
 *   3   u32  table id
 *   7   u32  partition
 *   11  u64  client id     (0: no deduplication)
 *   19  u64  request id
 *   27  u64  watermark     (the client has its answers for every request id
 *                           below this; their dedup records may be dropped)
 *   35  u64  expected version (with check_version; 0 = key must be absent)
 *   43  u32  key length K (1..OKV_MAX_KEY_LEN; 0 for TXN), then K bytes
 *       u32  value length V (0..OKV_MAX_VALUE_LEN; 0 for DELETE), then V bytes;
 *            for TXN, 1..COMMAND_TXN_MAX bytes of a transaction (txn.h);
 *            for TPC, as many of a 2PC message (tpc.h); for TPC_MANY,
 *            u32 count N (1..COMMAND_TPC_MANY_MAX), then N times a u32
 *            length L and L bytes of a 2PC message
 *
 * Result, version 1 (stored in the dedup table, returned to the client):
 *   0   u8   format version (1)
 *   1   i32  code (OKV_OK, OKV_ECONFLICT, ...), two's complement
 *   5   u64  version the write produced (0 if it did not apply)
 *   13  u8   existed (the key existed before the write)
 * Version 2, for a transaction that did not apply (version 1 otherwise):
 *   the 14 bytes of version 1 with byte 0 = 2, then
 *   14  u32  failed: the condition or write that stopped it (txn.h)
 *   18  u8   reason (enum txn_fail)
 */
#ifndef OKV_SERVER_COMMAND_H
#define OKV_SERVER_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define COMMAND_FORMAT 1
#define COMMAND_HEADER_LEN 47
#define COMMAND_RESULT_LEN 19   /* room for either version; see _encode */
#define COMMAND_RESULT_V1_LEN 14
/* A transaction's encoded bytes: 256 writes of the largest values do not
 * fit, which txn_validate's callers refuse with a message. */
#define COMMAND_TXN_MAX (4u * 1024u * 1024u)

enum command_op { CMD_PUT = 1, CMD_DELETE = 2, CMD_TXN = 3, CMD_TPC = 4, CMD_TPC_MANY = 5 };
#define COMMAND_TPC_MANY_MAX 4096

typedef struct command {
    uint8_t op;
    int check_version;
    uint32_t table_id;
    uint32_t partition;
    uint64_t client_id;
    uint64_t request_id;
    uint64_t watermark;
    uint64_t expected_version;
    const uint8_t *key;   size_t key_len;    /* borrowed from the encoded bytes */
    const uint8_t *value; size_t value_len; /* CMD_TXN: the transaction (txn.h) */
} command;

typedef struct command_result {
    int code;
    uint64_t version;
    int existed;
    uint32_t failed;    /* transactions: the item that stopped it (txn.h) */
    uint8_t reason;     /* enum txn_fail */
    uint8_t tpc_state;  /* TPC: the record's state after the entry (tpc.h); never stored */
} command_result;

/* Bytes command_encode writes for c. */
size_t command_encoded_size(const command *c);

/* Encodes c into out (command_encoded_size bytes). */
void command_encode(const command *c, uint8_t *out);

/* A two-phase commit entry for (table_id, partition): op CMD_TPC with one
 * encoded message (tpc.h) or CMD_TPC_MANY with a batch of them, encoded
 * into a malloc'd buffer of *len bytes; NULL when out of memory. */
uint8_t *command_tpc_new(uint8_t op, uint32_t table_id, uint32_t partition,
                         const uint8_t *msgs, size_t msgs_len, size_t *len);

/* Decodes len bytes; key and value point into buf. OKV_ECORRUPT with a
 * message on any malformed input. */
int command_decode(const uint8_t *buf, size_t len, command *out, okv_error *err);

/* Writes version 1 when failed and reason are 0, else version 2; returns
 * the length written (COMMAND_RESULT_V1_LEN or COMMAND_RESULT_LEN). */
size_t command_result_encode(const command_result *r, uint8_t out[COMMAND_RESULT_LEN]);
int command_result_decode(const uint8_t *buf, size_t len, command_result *out);

#endif
