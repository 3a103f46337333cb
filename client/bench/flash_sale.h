/*
 * flash_sale.h — the flash sale's stock outside the load: set before the
 * run, audited after it, on either target (orderkv-bench --workload
 * flash-sale; the model is in driver.h, the load path's adapters are in
 * bench.c).
 *
 * The sale: one stock key STOCK holding an 8-byte counter (the units
 * left, okv_counter_encode), and one reservation key "STOCK/r/..." per
 * unit sold. Every reservation takes one unit and writes its key
 * atomically, so once the run is over:
 *   available >= 0                                   (no unit sold twice)
 *   initial == available + reservations              (no unit lost)
 * where reservations is the number of keys under "STOCK/r/" the run added.
 * The audit checks both and reports the oversell: reservations beyond the
 * initial stock.
 *
 * Every call here is synchronous (it waits for its answer) and meant for
 * the main thread before or after the run, never for a completion thread.
 * Errors are OKV_* codes with a message in msg (msgsize bytes).
 */
#ifndef OKV_BENCH_FLASH_SALE_H
#define OKV_BENCH_FLASH_SALE_H

#include <stddef.h>
#include <stdint.h>

#include "etcd_kv.h"
#include "orderkv.h"

/* Where the sale lives: exactly one of okv and etcd is set. */
typedef struct flash_sale_target {
    okv_client *okv;
    const char *table;           /* orderkv: the table of the stock and reservations */
    etcd_kv *etcd;
    int timeout_ms;              /* each call's deadline */
} flash_sale_target;

/* Puts stock_key = units (an 8-byte counter), replacing what was there. */
int flash_sale_stock_set(const flash_sale_target *t, const char *stock_key, int64_t units,
                         char *msg, size_t msgsize);

/* The number of keys under "stock_key/r/" (all of them, page by page on
 * orderkv: a scan returns at most OKV_SCAN_MAX_LIMIT keys a call; on etcd
 * one count_only Range). */
int flash_sale_count(const flash_sale_target *t, const char *stock_key, uint64_t *out,
                     char *msg, size_t msgsize);

typedef struct flash_sale_audit {
    int done;                    /* the stock was read and the reservations counted */
    int code;                    /* if not, why */
    char msg[256];
    int64_t initial;             /* --stock */
    int64_t available;           /* the stock key's counter after the run */
    uint64_t before, after;      /* reservation keys before the run and after it */
    uint64_t reservations;       /* after - before: the run's */
    int64_t oversell;            /* max(0, reservations - initial) */
    int64_t unaccounted;         /* initial - available - reservations; 0 if sound */
    int ok;                      /* done, available >= 0, oversell 0, unaccounted 0 */
} flash_sale_audit;

/* The audit after the run: `before` is flash_sale_count's answer from
 * before the run (reservation keys of earlier runs on the same stock key;
 * every run's keys are distinct, driver.h). */
void flash_sale_audit_run(const flash_sale_target *t, const char *stock_key, int64_t initial,
                          uint64_t before, flash_sale_audit *out);

#endif
