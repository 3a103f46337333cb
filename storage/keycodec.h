/*
 * keycodec.h — byte formats of keys and values in the data and meta column
 * families. Pure functions: no RocksDB here, so tests and fuzzers use them
 * directly. This is an on-disk format; docs/storage-format.md documents it
 * byte by byte and ENGINE_FORMAT_VERSION changes with it.
 *
 * Data-CF key (order-preserving: byte order of encoded keys is the order of
 * (table id, partition id, user key)):
 *   offset 0  u32 big-endian  table id        (orders = 1, payments = 2, accounts = 3)
 *   offset 4  u32 big-endian  partition id    (0 .. partitions-1)
 *   offset 8  user key bytes, unescaped (it is the last field, so no escaping
 *             is needed to keep the order)
 *
 * Data-CF value:
 *   offset 0  u64 big-endian  version (never 0)
 *   offset 8  user value bytes
 *
 * Meta-CF partition sequence (the last version handed out in a partition):
 *   key   'S' u32-BE table id, u32-BE partition id      (9 bytes)
 *   value u64 big-endian
 */
#ifndef OKV_STORAGE_KEYCODEC_H
#define OKV_STORAGE_KEYCODEC_H

#include <stddef.h>
#include <stdint.h>

#define KEYCODEC_DATA_PREFIX_LEN 8u
#define KEYCODEC_VALUE_HEADER_LEN 8u
#define KEYCODEC_SEQ_KEY_LEN 9u

/* Partition of a user key: okv_hash64(partition key) mod partitions, where the
 * partition key is the key up to its first '/' (or the whole key).
 * partitions > 0. */
uint32_t keycodec_partition_of(const void *key, size_t key_len, uint32_t partitions);

/* Encodes a data key into out (room for 8 + key_len bytes); returns its length. */
size_t keycodec_data_key(uint8_t *out, uint32_t table_id, uint32_t partition,
                         const void *key, size_t key_len);

/* Encodes just the 8-byte (table, partition) prefix. */
void keycodec_data_prefix(uint8_t out[KEYCODEC_DATA_PREFIX_LEN], uint32_t table_id,
                          uint32_t partition);

/* Decodes a data key; the user key points into enc. -1 if enc is too short. */
int keycodec_data_key_decode(const void *enc, size_t len, uint32_t *table_id,
                             uint32_t *partition, const uint8_t **key, size_t *key_len);

/* Writes the 8-byte value header; the user value follows it. */
void keycodec_value_header(uint8_t out[KEYCODEC_VALUE_HEADER_LEN], uint64_t version);

/* Splits a stored value; -1 if shorter than the header or version is 0
 * (both mean corruption). */
int keycodec_value_decode(const void *enc, size_t len, uint64_t *version,
                          const uint8_t **val, size_t *val_len);

/* The shortest byte string greater than every string starting with prefix:
 * the prefix with its last non-0xff byte incremented and the rest dropped.
 * Writes it to out (room for prefix_len bytes) and returns its length, or 0
 * when no such string exists (the prefix is all 0xff). */
size_t keycodec_prefix_successor(const void *prefix, size_t prefix_len, uint8_t *out);

/* The meta key of a partition's version sequence ('S'), written by
 * single-node orderkvd before versions came from the state machine; read
 * only to convert such a dir (kvstore_migrate_sequences). */
void keycodec_seq_key(uint8_t out[KEYCODEC_SEQ_KEY_LEN], uint32_t table_id, uint32_t partition);

void keycodec_put_u32be(uint8_t *p, uint32_t v);
void keycodec_put_u64be(uint8_t *p, uint64_t v);
uint32_t keycodec_get_u32be(const uint8_t *p);
uint64_t keycodec_get_u64be(const uint8_t *p);

#endif
