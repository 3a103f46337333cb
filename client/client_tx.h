/*
 * client_tx.h — the insides of an interactive transaction (okv_tx), shared
 * by its reads and writes (client_tx.c) and its scans (client_tx_scan.c).
 */
#ifndef OKV_CLIENT_TX_H
#define OKV_CLIENT_TX_H

#include <stddef.h>
#include <stdint.h>

#include "client_int.h"

typedef struct tx_key {
    char *table;
    uint8_t *key;
    size_t key_len;
} tx_key;

typedef struct tx_read {
    tx_key k;
    int exists;
    uint64_t version;
    uint8_t *value;
    size_t value_len;
} tx_read;

enum tx_wkind { TXW_PUT, TXW_DELETE, TXW_ADD };

typedef struct tx_write {
    tx_key k;
    enum tx_wkind kind;
    uint8_t *value;          /* TXW_PUT */
    size_t value_len;
    int64_t delta;           /* TXW_ADD */
    int has_floor;
    int64_t floor;
} tx_write;

/* What a scan saw of one partition's part of a range (okv_tx_scan): at
 * commit, a RANGE condition (client_txn_req_range). */
typedef struct tx_range {
    char *table;
    uint32_t partition;
    uint8_t *lo, *hi;        /* [lo, hi); empty: open */
    size_t lo_len, hi_len;
    uint64_t count, digest;
} tx_range;

struct okv_tx {
    okv_client *c;
    tx_read *reads;
    size_t n_reads, cap_reads;
    tx_write *writes;
    size_t n_writes, cap_writes;
    tx_range *ranges;
    size_t n_ranges, cap_ranges;
};

int client_tx_key_eq(const tx_key *k, const char *table, const void *key, size_t key_len);
int client_tx_key_set(tx_key *k, const char *table, const void *key, size_t key_len);
void client_tx_key_free(tx_key *k);
/* The buffered write of a key, or NULL. */
tx_write *client_tx_find_write(okv_tx *t, const char *table, const void *key, size_t key_len);
void client_tx_range_free(tx_range *r);
/* Adds t's scans to q as RANGE conditions. */
int client_tx_add_ranges(const okv_tx *t, okv_txn_req *q);

#endif
