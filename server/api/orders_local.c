/*
 * orders_local.c — an orders request's reads and transaction, served by
 * this node itself when it leads the partition concerned
 * (orders_local.h).
 *
 * liborderkv sends every orders call to the leader of the customer's (or
 * the account's, or the sku's) partition, and a plan's first write is in
 * that partition, which decides the transaction (its only partition, or
 * the 2PC coordinator). Through the internal client, the commit was a
 * KV.Txn call from this node to itself: protobuf both ways, HTTP/2 on
 * loopback and several thread hand-offs, once per order placed and again
 * per payment. Here the plan becomes the same TxnRequest, decoded and
 * checked by the same code as a KV.Txn call (request_txn.c), and goes to
 * the raft loop (one partition) or to the 2PC driver (several) exactly as
 * service_txn.c sends it, and is answered from the applied outcome the
 * same way. Likewise a read of a record in a partition this node leads
 * (the order and its idempotency record, for a payment) is the lease read
 * service_kv_raft.c serves, on this thread.
 */
#include "orders_local.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "keycodec.h"
#include "node_metrics.h"
#include "orderkv.h"
#include "orderkv.pb-c.h"
#include "request_txn.h"
#include "tpc_driver.h"

typedef struct local_commit {
    node *n;
    ox_commit_fn fn;
    void *arg;
} local_commit;

static int count_metrics(int code, int reason)
{
    return code == OKV_OK || reason || code == OKV_ECONFLICT;
}

static void one_partition_done(void *arg, int code, const command_result *r, uint64_t leader)
{
    (void)leader;
    local_commit *lc = arg;
    if (code == OKV_OK) {
        if (count_metrics(r->code, r->reason))
            node_metrics_txn(lc->n->metrics, NODE_TXN_ONE_PARTITION, r->code, r->reason);
        lc->fn(lc->arg, r->code, r->failed, r->reason,
               r->code == OKV_OK ? NULL : "the transaction was refused when applied");
    } else if (code == OKV_ENOTLEADER || code == OKV_EUNAVAILABLE) {
        lc->fn(lc->arg, OKV_ENOTLEADER, 0, 0, NULL);   /* not applied: the client way */
    } else if (code == OKV_EUNKNOWN) {
        lc->fn(lc->arg, code, 0, 0, "the node stopped before the transaction's outcome was "
                                    "known");
    } else {
        lc->fn(lc->arg, code, 0, 0, okv_strerror(code));
    }
    free(lc);
}

static void several_partitions_done(void *arg, const tpc_answer *a)
{
    local_commit *lc = arg;
    if (count_metrics(a->code, a->reason))
        node_metrics_txn(lc->n->metrics, NODE_TXN_TWO_PHASE, a->code, a->reason);
    if (a->code == OKV_OK || a->reason)
        lc->fn(lc->arg, a->code, a->failed, a->reason, NULL);
    else
        lc->fn(lc->arg, a->code, 0, 0, a->msg);
    free(lc);
}

/* The plan as the TxnRequest a client would send: conditions, then writes,
 * each in plan order (the numbering of a failed item). Packed into a
 * malloc'd buffer; NULL when out of memory or an op is unknown. */
static uint8_t *pack_request(const ord_plan *plan, size_t *len)
{
    size_t n = ord_plan_len(plan);
    Orderkv__V1__TxnCondition *cs = calloc(n ? n : 1, sizeof *cs);
    Orderkv__V1__TxnWrite *ws = calloc(n ? n : 1, sizeof *ws);
    Orderkv__V1__TxnCondition **cp = calloc(n ? n : 1, sizeof *cp);
    Orderkv__V1__TxnWrite **wp = calloc(n ? n : 1, sizeof *wp);
    uint8_t *buf = NULL;
    size_t nc = 0, nw = 0;
    int ok = cs && ws && cp && wp;
    for (size_t i = 0; ok && i < n; i++) {
        const ord_op *op = ord_plan_op(plan, i);
        char *table = (char *)ord_table_name(op->table);
        ProtobufCBinaryData key = { op->key.len, (uint8_t *)op->key.buf };
        if (op->kind == ORD_OP_EXISTS || op->kind == ORD_OP_ABSENT ||
            op->kind == ORD_OP_VERSION_IS) {
            Orderkv__V1__TxnCondition *c = &cs[nc];
            orderkv__v1__txn_condition__init(c);
            c->kind = op->kind == ORD_OP_EXISTS ? ORDERKV__V1__TXN_CONDITION__KIND__EXISTS
                      : op->kind == ORD_OP_ABSENT
                          ? ORDERKV__V1__TXN_CONDITION__KIND__ABSENT
                          : ORDERKV__V1__TXN_CONDITION__KIND__VERSION_EQUALS;
            c->table = table;
            c->key = key;
            c->version = op->version;
            cp[nc++] = c;
        } else if (op->kind == ORD_OP_PUT || op->kind == ORD_OP_DELETE ||
                   op->kind == ORD_OP_ADD) {
            Orderkv__V1__TxnWrite *w = &ws[nw];
            orderkv__v1__txn_write__init(w);
            w->kind = op->kind == ORD_OP_PUT      ? ORDERKV__V1__TXN_WRITE__KIND__PUT
                      : op->kind == ORD_OP_DELETE ? ORDERKV__V1__TXN_WRITE__KIND__DELETE
                                                  : ORDERKV__V1__TXN_WRITE__KIND__ADD;
            w->table = table;
            w->key = key;
            if (op->kind == ORD_OP_PUT)
                w->value = (ProtobufCBinaryData){ op->value_len, (uint8_t *)op->value };
            w->delta = op->delta;
            w->has_floor = op->kind == ORD_OP_ADD && op->has_floor;
            w->floor = op->floor;
            wp[nw++] = w;
        } else {
            ok = 0;
        }
    }
    if (ok) {
        Orderkv__V1__TxnRequest req = ORDERKV__V1__TXN_REQUEST__INIT;
        req.n_conditions = nc;
        req.conditions = cp;
        req.n_writes = nw;
        req.writes = wp;
        *len = protobuf_c_message_get_packed_size(&req.base);
        buf = malloc(*len ? *len : 1);
        if (buf)
            protobuf_c_message_pack(&req.base, buf);
    }
    free(cs);
    free(ws);
    free(cp);
    free(wp);
    return buf;
}

int ox_commit_local(node *n, const ord_plan *plan, ox_commit_fn fn, void *arg)
{
    if (!n->rs || !n->tpc)
        return 0;
    size_t len = 0;
    uint8_t *buf = pack_request(plan, &len);
    if (!buf)
        return 0;
    request_txn req;
    okv_error err;
    okv_error_clear(&err);
    int rc = request_txn_decode(&req, kvstore_catalog(n->kv), buf, len, &err);
    free(buf);
    if (rc != OKV_OK)
        return 0;   /* the client way answers it, with the server's message */
    uint64_t gid = fsm_group_id(req.table_id, req.partition);
    local_commit *lc = malloc(sizeof *lc);
    if (!lc || raftstore_leader(n->rs, gid) != n->node_id) {
        free(lc);
        request_txn_release(&req);
        return 0;
    }
    lc->n = n;
    lc->fn = fn;
    lc->arg = arg;
    if (req.multi) {
        /* The driver copies the transaction and answers on another thread. */
        tpc_driver_commit(n->tpc, &req.t, tpc_driver_new_id(n->tpc), several_partitions_done,
                          lc);
        request_txn_release(&req);
        return 1;
    }
    size_t clen = command_encoded_size(&req.cmd);
    uint8_t *cmd = malloc(clen);
    if (!cmd) {
        free(lc);
        request_txn_release(&req);
        return 0;
    }
    command_encode(&req.cmd, cmd);
    request_txn_release(&req);
    raftstore_propose_owned(n->rs, gid, cmd, clen, one_partition_done, lc);
    return 1;
}

int ox_read_local(node *n, ord_table table, const uint8_t *key, size_t klen, int *found,
                  uint8_t **val, size_t *len, uint64_t *version)
{
    if (!n->rs)
        return 0;
    const char *name = ord_table_name(table);
    const catalog_table *t = catalog_find(kvstore_catalog(n->kv), name, strlen(name));
    if (!t || klen == 0 || klen > OKV_MAX_KEY_LEN)
        return 0;
    uint32_t p = keycodec_partition_of(key, klen, t->partitions);
    if (!raftstore_lease_read(n->rs, fsm_group_id(t->id, p)))
        return 0;
    /* As service_kv_raft.c: the lock before the value, so a lock gone by
     * the time the value is read was resolved before it. */
    uint8_t mode = 0;
    uint64_t hc, hr;
    int code = fsm_lock_get(kvstore_engine(n->kv), t->id, p, key, klen, &mode, &hc, &hr, NULL);
    if ((code == OKV_OK && mode == TPC_LOCK_EXCLUSIVE) || (code != OKV_OK && code != OKV_ENOTFOUND))
        return 0;
    okv_error err;
    okv_error_clear(&err);
    *val = NULL;
    *len = 0;
    *version = 0;
    code = kvstore_get(n->kv, t, p, key, klen, val, len, version, &err);
    if (code != OKV_OK && code != OKV_ENOTFOUND)
        return 0;
    *found = code == OKV_OK;
    atomic_fetch_add(&n->reads, 1);
    atomic_fetch_add(&n->lease_reads, 1);
    return 1;
}
