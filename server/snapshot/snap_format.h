/*
 * snap_format.h — the wire format of a streamed partition snapshot: the
 * messages a leader sends on one "/orderkv.v1.Raft/Snapshot" call to a
 * follower behind its compacted log (docs/storage-format.md "Partition
 * snapshots"). Pure: byte buffers in, byte buffers out; no I/O.
 *
 * A stream is one HEADER message, CHUNK messages numbered 0, 1, 2, ... and
 * one TRAILER message, then the sender half-closes. Every message starts with
 * the magic "OKVS", the version (1) and its kind. Integers are big-endian,
 * except the configuration inside the header, which is the Raft codec's
 * little-endian encoding (raft_conf_encode), as in the raft column family.
 *
 * Chunks carry whole records (cf, key, value) and are cut at about
 * SNAP_CHUNK_BYTES, so memory on both sides is one chunk, whatever the
 * partition's size. The trailer counts chunks, records and bytes and carries
 * an FNV-1a-64 checksum of every chunk message, whole, in order: a stream
 * cut short, reordered or damaged is refused before anything is installed.
 */
#ifndef OKV_SERVER_SNAP_FORMAT_H
#define OKV_SERVER_SNAP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* The gRPC method (client streaming; the answer is the call's status). */
#define SNAP_METHOD "/orderkv.v1.Raft/Snapshot"

#define SNAP_VERSION 1
#define SNAP_PREFIX_LEN 6            /* magic 4, version 1, kind 1 */
#define SNAP_CHUNK_HDR 14            /* prefix, seq u32, record count u32 */
#define SNAP_RECORD_HDR 9            /* cf u8, key length u32, value length u32 */
#define SNAP_TRAILER_LEN 34          /* prefix, chunks u32, records u64, bytes u64, sum u64 */
#define SNAP_HEADER_FIXED 62         /* prefix + 7 u64 before the configuration */
#define SNAP_HEADER_MAX (SNAP_HEADER_FIXED + 8 + 8 * 2 * RAFT_MAX_NODES)

/* A chunk is closed once it holds this much (senders); one record may push
 * it past, since a record is never split. */
#define SNAP_CHUNK_BYTES ((size_t)1 << 20)
/* Receivers refuse larger messages: a chunk is at most SNAP_CHUNK_BYTES plus
 * one record (key <= 1 KiB, value <= 1 MiB in orderkv), far below this. */
#define SNAP_MAX_MESSAGE ((size_t)4 << 20)

enum snap_kind { SNAP_HEADER = 1, SNAP_CHUNK = 2, SNAP_TRAILER = 3 };

/* Column family of a record. */
enum snap_cf { SNAP_CF_DATA = 1, SNAP_CF_META = 2 };

#define SNAP_CHECKSUM_INIT 0xcbf29ce484222325ULL

struct snap_header {
    uint64_t cluster_id;
    uint64_t from, to;        /* node ids */
    uint64_t group;
    uint64_t term;            /* the leader's term when it sent the snapshot */
    struct raft_snapshot_meta meta;
};

struct snap_trailer {
    uint32_t chunks;
    uint64_t records;
    uint64_t bytes;           /* sum of the chunk messages' lengths */
    uint64_t checksum;        /* FNV-1a-64 over the chunk messages, in order */
};

struct snap_record {
    int cf;                   /* enum snap_cf */
    const uint8_t *key, *val; /* borrowed from the chunk */
    size_t key_len, val_len;
};

/* FNV-1a-64 continued over n more bytes (start from SNAP_CHECKSUM_INIT). */
uint64_t snap_checksum(uint64_t h, const void *p, size_t n);

/* The kind of a message, or -1 if it is shorter than the prefix or has
 * another magic or version. */
int snap_kind_of(const uint8_t *b, size_t len);

/* Encodes h into buf (SNAP_HEADER_MAX bytes suffice); returns the length, 0
 * if the configuration is malformed. */
size_t snap_header_encode(const struct snap_header *h, uint8_t *buf, size_t cap);
/* 0, or -1 if b is not exactly one well-formed header. */
int snap_header_decode(const uint8_t *b, size_t len, struct snap_header *h);

size_t snap_trailer_encode(const struct snap_trailer *t, uint8_t buf[SNAP_TRAILER_LEN]);
int snap_trailer_decode(const uint8_t *b, size_t len, struct snap_trailer *t);

/* ---- building a chunk (sender) ---- */

typedef struct snap_chunk {
    uint8_t *buf;             /* malloc'd; grows */
    size_t len, cap;
    uint32_t nrec;
} snap_chunk;

/* Starts chunk number seq in c (reusing c->buf). -1 on out of memory. */
int snap_chunk_begin(snap_chunk *c, uint32_t seq);
/* Appends one record. -1 on out of memory or a key/value over 4 GiB. */
int snap_chunk_add(snap_chunk *c, int cf, const void *key, size_t key_len, const void *val,
                   size_t val_len);
/* Writes the record count; c->buf[0..len) is then the message. */
void snap_chunk_seal(snap_chunk *c);
void snap_chunk_free(snap_chunk *c);

/* ---- reading a chunk (receiver) ---- */

typedef struct snap_chunk_reader {
    const uint8_t *b;
    size_t len, off;
    uint32_t seq, nrec, seen;
} snap_chunk_reader;

/* Checks the chunk's header: 0, or -1 if it is not a chunk. */
int snap_chunk_open(snap_chunk_reader *r, const uint8_t *b, size_t len);
/* 1 with the next record, 0 at the end (exactly nrec records, no byte left
 * over), -1 if the chunk is malformed (a record past its end, an unknown
 * column family, a wrong count). */
int snap_chunk_next(snap_chunk_reader *r, struct snap_record *rec);

#endif
