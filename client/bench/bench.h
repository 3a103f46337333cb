/*
 * bench.h — what orderkv-bench's main (bench.c) hands its output
 * (report.c): the options of the run and the outcomes of its checks.
 */
#ifndef OKV_BENCH_BENCH_H
#define OKV_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "etcd_kv.h"
#include "flash_sale.h"
#include "pay_order.h"

enum target { T_ORDERKV, T_ETCD };

/* A transfer moves this much. */
#define TRANSFER_AMOUNT 1

typedef struct bench_opts {
    enum target target;
    char addr[1024];
    int addr_given;
    /* orderkv over TLS (okv_options v3): the CA, and a client certificate
     * and key for nodes that require one; "" = plaintext */
    char tls_ca[1024], tls_cert[1024], tls_key[1024];
    char table[65];
    int clients;                 /* requests in flight */
    double duration_s;
    double warmup_s;
    enum driver_workload workload;
    int read_pct;          /* mixed: share of gets */
    size_t key_size;
    char key_prefix[64];
    size_t value_size;
    uint64_t keys;
    int keys_given;
    int table_given;
    int64_t balance;       /* transfer, pay-order: every account's starting balance */
    int balance_given;
    int verify;            /* transfer: sum every balance; flash-sale: audit the stock;
                              pay-order: balances + payments == deposits */
    int64_t stock;         /* flash-sale: units of the SKU at the start */
    char sku[64];          /* flash-sale: the stock key */
    int unsafe_reserve;    /* flash-sale: a test aid that oversells (docs/bench.md) */
    int zipf;              /* 0 uniform, 1 zipfian */
    double zipf_theta;
    int json;
    int preload;
    int progress;
    int etcd_serializable;       /* etcd gets: serializable instead of linearizable */
    enum etcd_kv_policy etcd_policy;
    int etcd_cq_threads;         /* etcd_kv completion threads */
    int etcd_flags_given;        /* an --etcd-* flag was used (rejected for orderkv) */
} bench_opts;

/* --verify: the sum of every balance, read back once the run is over. */
typedef struct verify_result {
    int done;                    /* the pass ran to the end */
    int code;                    /* its failure, if not */
    char msg[256];
    driver_sum s;
    int64_t expected;            /* keys x balance */
    int ok;                      /* every account found, the sum as expected */
} verify_result;

/* What the run found beyond driver_result, for the output. */
typedef struct bench_outcome {
    uint32_t partitions;             /* orderkv transfer: the table's partitions */
    uint64_t one_partition_commits;  /* orderkv transfer: should be 0 (bench.c) */
    uint32_t run_id;                 /* flash sale: in every reservation key */
    const verify_result *verify;     /* transfer --verify, else NULL */
    const flash_sale_audit *audit;   /* flash-sale --verify, else NULL */
    const pay_tally *tally;          /* pay-order, else NULL */
    const pay_check *pay;            /* pay-order --verify, else NULL */
} bench_outcome;

/* Static names: "orderkv" / "etcd"; "put", ..., "flash-sale". */
const char *target_name(enum target t);
const char *workload_name(enum driver_workload w);

/* Prints the run's results on stdout: text, or one JSON object with
 * --json (docs/bench.md lists its fields). */
void report(const bench_opts *o, const driver_result *r, const bench_outcome *x);

#endif
