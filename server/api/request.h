/*
 * request.h — decoding and validating client requests.
 *
 * Every request a node serves passes through request_decode before anything
 * touches storage: it unpacks the protobuf bytes, checks every field against
 * the documented limits (orderkv.h / proto/orderkv.proto) and resolves the
 * table and partition. Anything malformed comes back as OKV_EINVAL /
 * OKV_ENOTFOUND / OKV_EPROTO with a message meant for the client.
 *
 * Pure apart from protobuf-c: no RocksDB, no gRPC, no threads. The fuzzer
 * (tests/fuzz) drives it with arbitrary bytes.
 */
#ifndef OKV_SERVER_REQUEST_H
#define OKV_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "errors.h"

enum request_kind { REQ_GET, REQ_PUT, REQ_DELETE, REQ_SCAN, REQ_STATUS, REQ_TRANSFER, REQ_KIND_COUNT };

/* Resume tokens: one format byte, then the last user key returned. */
#define REQUEST_RESUME_TOKEN_V1 0x01

typedef struct request {
    enum request_kind kind;
    void *msg;                       /* the unpacked protobuf message (owned) */
    const catalog_table *table;      /* borrowed from the catalog */
    uint32_t partition;              /* get/put/delete; scan if single_partition */

    const uint8_t *key;   size_t key_len;     /* borrowed from msg */
    const uint8_t *value; size_t value_len;
    int check_version;    uint64_t expected_version;
    uint64_t client_id;   uint64_t request_id;
    uint64_t watermark;   /* client's promise: no request id below it again */

    /* Scan: visit user keys k with lower <= k and (no upper or k < upper).
     * lower may point into scan_buf when a resume token moved it. */
    const uint8_t *lower; size_t lower_len;
    const uint8_t *upper; size_t upper_len;
    int has_upper;
    int single_partition;   /* every key in range shares one partition key */
    uint64_t to_node;       /* transfer-leader target */
    uint32_t limit;
    uint8_t *scan_buf;      /* owned: successor bounds derived from the request */
    const uint8_t *wire;    /* the raw request, during request_decode only */
    size_t wire_len;
} request;

/* Decodes and validates `len` bytes of request `kind` into *out. On failure
 * *out holds nothing to release. */
int request_decode(request *out, enum request_kind kind, const catalog *cat,
                   const uint8_t *buf, size_t len, okv_error *err);

/* Calls fn for every length-delimited field of the protobuf message in
 * buf, in wire order; stops when fn returns non-zero. 0 after the last
 * field, 1 if fn stopped it, -1 if the bytes do not parse. For checks
 * protobuf-c's unpacked form cannot make, such as a string holding a NUL. */
typedef int (*request_wire_fn)(void *ctx, uint32_t field, const uint8_t *data, size_t len);
int request_wire_each(const uint8_t *buf, size_t len, request_wire_fn fn, void *ctx);

/* Frees what request_decode allocated. Accepts a zeroed request. */
void request_release(request *r);

/* The command a decoded put or delete becomes (command.h), in single-node
 * and cluster mode alike; key and value stay borrowed from r. */
struct command;
void request_to_command(const request *r, struct command *out);

/* Builds a resume token for a scan that stopped after user key `key`.
 * out needs key_len + 1 bytes; returns the token length. */
size_t request_resume_token(uint8_t *out, const uint8_t *key, size_t key_len);

/* Method path of each kind, e.g. "/orderkv.v1.KV/Get". */
const char *request_method_path(enum request_kind kind);

#endif
