/*
 * orders_local.h — an orders request's reads and commit served by this
 * node itself, without the internal client's calls to itself, when it
 * leads the partition concerned (orders_local.c).
 */
#ifndef OKV_SERVER_ORDERS_LOCAL_H
#define OKV_SERVER_ORDERS_LOCAL_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"
#include "order_plan.h"

/* The applied outcome: rc OKV_OK committed; OKV_ECONDITION and the like
 * with the failed item (conditions first, then writes, in plan order) and
 * its reason (txn.h); OKV_ECONFLICT; OKV_EUNKNOWN; another error with msg.
 * OKV_ENOTLEADER: certainly not applied (leadership moved before the entry
 * applied): send the plan the client way. */
typedef void (*ox_commit_fn)(void *arg, int rc, uint32_t failed, int reason, const char *msg);

/* Commits plan here if this node leads the partition that decides it:
 * returns 1 and fn runs exactly once, later, on the raft loop thread or a
 * 2PC driver thread (or at once if the node is stopping). Returns 0,
 * having done nothing, otherwise: commit it through the internal client. */
int ox_commit_local(node *n, const ord_plan *plan, ox_commit_fn fn, void *arg);

/* Reads key of table here, as a KV.Get at this node would, if this node
 * leads the key's partition within its lease and no transaction holds the
 * key exclusively (a read that meets one asks its coordinator: the client
 * way does that). Returns 1 with *found and, when found, *val (malloc'd),
 * *len and *version; 0, having done nothing, otherwise: read it the client
 * way. */
int ox_read_local(node *n, ord_table table, const uint8_t *key, size_t klen, int *found,
                  uint8_t **val, size_t *len, uint64_t *version);

#endif
