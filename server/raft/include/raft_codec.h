/*
 * raft_codec.h — compact binary encoding of raft messages, entries, hard
 * state and configurations, for the transport and the RocksDB log.
 *
 * Pure functions over byte buffers. All integers are little-endian and fixed
 * width, so a field's offset never depends on its value (the layout is
 * documented byte by byte in codec.c and docs/raft.md). Every decoder checks
 * bounds and values before use and returns RAFT_ERR_CORRUPT on malformed or
 * truncated input: decoding garbage never crashes and never reads past len.
 */
#ifndef ORDERKV_RAFT_CODEC_H
#define ORDERKV_RAFT_CODEC_H

#include "raft.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Format version written in the first byte of messages and entries. */
#define RAFT_CODEC_VERSION 1

/* Exact number of bytes raft_message_encode writes for m. */
size_t raft_message_encoded_size(const struct raft_message *m);
/* Encodes m into buf[0..cap). Returns RAFT_ERR_INVALID if cap is too small
 * or m has an unknown type. *len_out gets the bytes written. */
int raft_message_encode(const struct raft_message *m, uint8_t *buf,
                        size_t cap, size_t *len_out);
/* Decodes exactly len bytes. On success *out owns its entries and snapshot
 * data (release with raft_message_release); on error *out is zeroed and
 * nothing is allocated. */
int raft_message_decode(const uint8_t *buf, size_t len,
                        struct raft_message *out);

size_t raft_entry_encoded_size(const struct raft_entry *e);
int raft_entry_encode(const struct raft_entry *e, uint8_t *buf, size_t cap,
                      size_t *len_out);
/* On success out->data is allocated with malloc() (NULL if empty). */
int raft_entry_decode(const uint8_t *buf, size_t len, struct raft_entry *out);

#define RAFT_HARD_STATE_SIZE 25
int raft_hard_state_encode(const struct raft_hard_state *hs,
                           uint8_t buf[RAFT_HARD_STATE_SIZE]);
int raft_hard_state_decode(const uint8_t *buf, size_t len,
                           struct raft_hard_state *out);

/* A CONF entry's payload: the change and the full configuration it
 * produces. Carrying the result (not just the delta) makes every CONF entry
 * self-describing: a node that joins with an empty log learns the whole
 * membership from the entry that added it, whatever came before. */
size_t raft_conf_entry_size(const struct raft_conf *after);
int raft_conf_entry_encode(const struct raft_conf_change *cc,
                           const struct raft_conf *after, uint8_t *buf,
                           size_t cap, size_t *len_out);
/* Checks framing and that `after` is a sane configuration (at least one
 * voter, no duplicates, within RAFT_MAX_NODES). */
int raft_conf_entry_decode(const uint8_t *buf, size_t len,
                           struct raft_conf_change *cc,
                           struct raft_conf *after);

size_t raft_conf_encoded_size(const struct raft_conf *c);
int raft_conf_encode(const struct raft_conf *c, uint8_t *buf, size_t cap,
                     size_t *len_out);
int raft_conf_decode(const uint8_t *buf, size_t len, struct raft_conf *out,
                     size_t *used_out);

#ifdef __cplusplus
}
#endif
#endif /* ORDERKV_RAFT_CODEC_H */
