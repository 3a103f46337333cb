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
 *   1   u8   op: 1 = PUT, 2 = DELETE
 *   2   u8   flags: bit 0 = check_version
 *   3   u32  table id
 *   7   u32  partition
 *   11  u64  client id     (0: no deduplication)
 *   19  u64  request id
 *   27  u64  watermark     (the client has its answers for every request id
 *                           below this; their dedup records may be dropped)
 *   35  u64  expected version (with check_version; 0 = key must be absent)
 *   43  u32  key length K (1..OKV_MAX_KEY_LEN), then K bytes
 *       u32  value length V (0..OKV_MAX_VALUE_LEN; 0 for DELETE), then V bytes
 *
 * Result, version 1 (stored in the dedup table, returned to the client):
 *   0   u8   format version (1)
 *   1   i32  code (OKV_OK, OKV_ECONFLICT, ...), two's complement
 *   5   u64  version the write produced (0 if it did not apply)
 *   13  u8   existed (the key existed before the write)
 */
#ifndef OKV_SERVER_COMMAND_H
#define OKV_SERVER_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define COMMAND_FORMAT 1
#define COMMAND_HEADER_LEN 47
#define COMMAND_RESULT_LEN 14

enum command_op { CMD_PUT = 1, CMD_DELETE = 2 };

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
    const uint8_t *value; size_t value_len;
} command;

typedef struct command_result {
    int code;
    uint64_t version;
    int existed;
} command_result;

/* Bytes command_encode writes for c. */
size_t command_encoded_size(const command *c);

/* Encodes c into out (command_encoded_size bytes). */
void command_encode(const command *c, uint8_t *out);

/* Decodes len bytes; key and value point into buf. OKV_ECORRUPT with a
 * message on any malformed input. */
int command_decode(const uint8_t *buf, size_t len, command *out, okv_error *err);

void command_result_encode(const command_result *r, uint8_t out[COMMAND_RESULT_LEN]);
int command_result_decode(const uint8_t *buf, size_t len, command_result *out);

#endif
