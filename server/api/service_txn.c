/*
 * service_txn.c — orderkv.v1.KV/Txn: conditions + writes in one partition.
 *
 * A request whose keys lie in one partition becomes one TXN command
 * (request_txn.h), proposed to the partition's Raft group in cluster mode
 * or handed to the committer on a single node; one whose keys span
 * partitions goes to two-phase commit (tpc_driver.h, cluster mode); the state machine evaluates it when the entry applies
 * (fsm.c, txn.h) and the answer is the applied outcome, never the
 * proposal's. The same exactly-once record as for puts makes a resend
 * with the same (client id, request id) return the first outcome.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "log.h"
#include "node.h"
#include "node_metrics.h"
#include "orderkv.pb-c.h"
#include "request_txn.h"
#include "tpc_driver.h"

/* A transaction on its way; freed when answered. */
typedef struct txn_call {
    commit_op op;          /* single node: first, the committer hands back &op */
    node *n;
    rpc_call *call;
    request_txn req;       /* the outcome's message names its items */
} txn_call;

static void reply_outcome(txn_call *tc, const command_result *r)
{
    node_metrics_txn(tc->n->metrics, tc->req.multi ? NODE_TXN_TWO_PHASE : NODE_TXN_ONE_PARTITION,
                     r->code, r->reason);
    Orderkv__V1__TxnResponse resp = ORDERKV__V1__TXN_RESPONSE__INIT;
    Orderkv__V1__Error e = ORDERKV__V1__ERROR__INIT;
    char msg[OKV_ERRMSG_MAX];
    if (r->code == OKV_OK) {
        resp.committed = 1;
        resp.version = r->version;
        service_reply_message(tc->call, &resp.base);
        return;
    }
    if (r->reason) {
        txn_outcome o = { r->code, r->reason, r->failed, 0 };
        txn_outcome_describe(&tc->req.t, &o, msg, sizeof msg);
    } else {
        snprintf(msg, sizeof msg, "the transaction was refused when applied: %s",
                 r->code == OKV_EINVAL ? "its request id is below the client's watermark, or it "
                                         "broke a rule; nothing applied"
                                       : okv_strerror(r->code));
    }
    e.code = service_error_code(r->code);
    e.message = msg;
    resp.error = &e;
    resp.failed = r->failed;
    resp.reason = r->reason;
    uint8_t buf[OKV_ERRMSG_MAX + 64];
    size_t len = protobuf_c_message_get_packed_size(&resp.base);
    if (len > sizeof buf) {
        rpc_call_reply(tc->call, r->code, msg, NULL, 0);
        return;
    }
    protobuf_c_message_pack(&resp.base, buf);
    rpc_call_reply(tc->call, r->code, msg, buf, len);
}

static void txn_call_free(txn_call *tc)
{
    request_txn_release(&tc->req);
    free(tc);
}

/* Decodes the call into a txn_call, or answers it and returns NULL. */
static txn_call *txn_call_new(rpc_call *call, const uint8_t *buf, size_t len, node *n)
{
    txn_call *tc = calloc(1, sizeof *tc);
    if (!tc) {
        service_reply_error(call, OKV_ENOMEM, "out of memory");
        return NULL;
    }
    okv_error err;
    okv_error_clear(&err);
    int rc = request_txn_decode(&tc->req, kvstore_catalog(n->kv), buf, len, &err);
    if (rc) {
        free(tc);
        service_reply_error(call, rc, err.msg);
        return NULL;
    }
    tc->n = n;
    tc->call = call;
    return tc;
}

/* ---- single node ------------------------------------------------------------ */

static void committed_single(commit_op *op)
{
    txn_call *tc = (txn_call *)op;
    if (op->code)
        service_reply_error(tc->call, op->code, op->err.msg);
    else
        reply_outcome(tc, &op->result);
    txn_call_free(tc);
}

static void handle_txn_single(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    txn_call *tc = txn_call_new(call, buf, len, arg);
    if (!tc)
        return;
    if (tc->req.multi) {
        service_reply_error(call, OKV_EUNIMPLEMENTED,
                            "a single node (no --initial-cluster) commits transactions within one "
                            "partition (one table, keys sharing the part before their first "
                            "'/'); transactions across partitions run on a cluster");
        txn_call_free(tc);
        return;
    }
    tc->op.cmd = tc->req.cmd;
    tc->op.done = committed_single;
    committer_submit(tc->n->com, &tc->op);
}

/* ---- cluster ------------------------------------------------------------------ */

static void committed_raft(void *arg, int code, const command_result *r, uint64_t leader)
{
    txn_call *tc = arg;
    if (code == OKV_ENOTLEADER)
        service_reply_not_leader(tc->call, tc->n, leader);
    else if (code == OKV_EUNAVAILABLE)
        service_reply_error(tc->call, code, "the transaction did not commit (leadership changed "
                                            "or the node is stopping); it was not applied, retry");
    else if (code == OKV_EUNKNOWN)
        service_reply_error(tc->call, code, "the node stopped before the transaction's outcome "
                                            "was known; resend it with the same request id");
    else if (code)
        service_reply_error(tc->call, code, okv_strerror(code));
    else
        reply_outcome(tc, r);
    txn_call_free(tc);
}

/* ---- across partitions ---------------------------------------------------- */

static void tpc_answered(void *arg, const tpc_answer *a)
{
    txn_call *tc = arg;
    if (a->code == OKV_OK || a->reason) {
        command_result r = { a->code, 0, 0, a->failed, a->reason, 0 };
        reply_outcome(tc, &r);
    } else if (a->code == OKV_ECONFLICT) {
        node_metrics_txn(tc->n->metrics, NODE_TXN_TWO_PHASE, a->code, 0);
        service_reply_error(tc->call, a->code, "the transaction was aborted (it met another "
                                               "transaction or ran past its deadline); nothing "
                                               "applied, retry");
    } else {
        service_reply_error(tc->call, a->code, a->msg);
    }
    txn_call_free(tc);
}

/* The transaction's id: the call's (client id, request id), so a resend of
 * the call finds the same records. A call without a client id gets a
 * fresh one: this node's, never reused (tpc_driver_new_id). */
static tpc_id txn_id_of(const txn_call *tc)
{
    if (tc->req.client_id)
        return (tpc_id){ tc->req.client_id, tc->req.request_id };
    return tpc_driver_new_id(tc->n->tpc);
}

static void handle_txn_raft(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    if (service_refused_by_meta(call, n))
        return;
    txn_call *tc = txn_call_new(call, buf, len, n);
    if (!tc)
        return;
    if (tc->req.multi) {
        tpc_driver_commit(n->tpc, &tc->req.t, txn_id_of(tc), tpc_answered, tc);
        return;
    }
    uint32_t table = tc->req.table_id, part = tc->req.partition;
    if (!cluster_holds(&n->map, n->node_id, table, part)) {
        uint64_t reps[CLUSTER_MAX_NODES];
        cluster_replicas(&n->map, table, part, reps);
        service_reply_not_leader(call, n, reps[0]);
        txn_call_free(tc);
        return;
    }
    size_t clen = command_encoded_size(&tc->req.cmd);
    uint8_t *cmd = malloc(clen);
    if (!cmd) {
        service_reply_error(call, OKV_ENOMEM, "out of memory");
        txn_call_free(tc);
        return;
    }
    command_encode(&tc->req.cmd, cmd);
    raftstore_propose_owned(n->rs, fsm_group_id(table, part), cmd, clen, committed_raft, tc);
}

rpc_handler service_txn_handler(const node *n)
{
    return n->rs ? handle_txn_raft : handle_txn_single;
}
