/*
 * request_txn.h — decoding a TxnRequest into the command a partition
 * proposes (command.h, op TXN, carrying txn.h's encoding).
 *
 * Resolves every table name, computes every key's partition, checks the
 * limits and the rules txn_validate checks. A transaction whose keys lie in
 * one partition becomes one command; one whose keys span partitions is
 * left decoded (multi) for two-phase commit (tpc.h, tpc_driver.h). Pure
 * apart from protobuf-c.
 */
#ifndef OKV_SERVER_REQUEST_TXN_H
#define OKV_SERVER_REQUEST_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "command.h"
#include "errors.h"
#include "txn.h"

typedef struct request_txn {
    void *msg;            /* the unpacked TxnRequest (owned) */
    txn t;                /* owned arrays; keys and values borrowed from msg */
    uint32_t table_id;    /* the partition of the first write (first condition */
    uint32_t partition;   /* of a check): every key's, unless multi */
    int multi;            /* keys in several partitions: no command below */
    uint64_t client_id;   /* the call's ids: the transaction's id */
    uint64_t request_id;
    uint8_t *enc;         /* owned: txn_encode(t) */
    size_t enc_len;
    command cmd;          /* CMD_TXN; value borrows enc */
} request_txn;

/* Decodes and validates len bytes of a TxnRequest. On failure *out holds
 * nothing to release. OKV_EPROTO (undecodable), OKV_EINVAL (a limit or a
 * rule, the message names the item), OKV_ENOTFOUND (unknown table). */
int request_txn_decode(request_txn *out, const catalog *cat, const uint8_t *buf, size_t len,
                       okv_error *err);

void request_txn_release(request_txn *r);

#endif
