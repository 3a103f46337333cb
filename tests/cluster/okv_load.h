/*
 * okv_load.h — concurrent writers for the cluster tests, every outcome
 * recorded, and the read-back that judges them.
 *
 * Each write has a key of its own (prefix NAME, unique per load) and a value
 * derived from the key. Its outcome decides what the read-back at the end
 * requires: OK → readable with that value; OKV_EUNKNOWN → present or absent,
 * never with another value; a clean failure (NOT_LEADER, UNAVAILABLE,
 * TIMEDOUT) → absent.
 */
#ifndef OKV_LOAD_H
#define OKV_LOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "orderkv.h"

#define OKV_LOAD_MAX_WRITERS 6
#define OKV_LOAD_WRITE_TIMEOUT_MS 3000

typedef struct okv_load_rec {
    char key[40];
    int rc;              /* okv_put's result */
    int64_t t0, t1;      /* start and end of the call (okv_cluster_now_ms) */
} okv_load_rec;

struct okv_load;

typedef struct okv_load_writer {
    struct okv_load *l;
    int id;
    okv_client *c;
    okv_load_rec *recs;
    size_t n, cap;
} okv_load_writer;

typedef struct okv_load {
    char name[8];        /* key prefix */
    int target;          /* partition of orders to write to, -1: any */
    uint32_t partitions;
    int nw;
    okv_load_writer w[OKV_LOAD_MAX_WRITERS];
    pthread_t th[OKV_LOAD_MAX_WRITERS];
    atomic_int stop;
    atomic_llong mark;       /* see okv_load_mark */
    atomic_llong first_ok;   /* earliest end of an OK write that started at or after mark */
} okv_load;

/* Starts nw writer threads, each with its own client on addrs, writing to
 * table orders (partition `target`, or any when -1). Asserts on failure. */
void okv_load_start(okv_load *l, const char *addrs, uint32_t partitions, const char *name,
                    int target, int nw);

/* Starts timing: the next okv_load_wait_first_ok measures from now. */
int64_t okv_load_mark(okv_load *l);

/* Waits (bounded) until a write that started after the mark succeeded;
 * returns ms from the mark to its acknowledgement, or -1. */
int64_t okv_load_wait_first_ok(okv_load *l, int timeout_ms);

/* Stops and joins the writers, closes their clients (records stay). */
void okv_load_stop(okv_load *l);
void okv_load_free(okv_load *l);

/* OK writes that started after `from` and ended before `to`. */
size_t okv_load_ok_between(const okv_load *l, int64_t from, int64_t to);

/* How many writes ended with code rc. */
size_t okv_load_count(const okv_load *l, int rc);

/* Reads back every write through c, failing the test (cmocka fail_msg) on
 * a lost acknowledged write, a wrong value, or a clean failure that was
 * applied; returns how many acknowledged writes it read. */
size_t okv_load_verify(const okv_load *l, okv_client *c, const char *via);

#endif
