/*
 * service_tpc.c — orderkv.v1.KV/TxnPart (one step of a transaction across
 * partitions, node to node) and KV/TxnStatus (a client asks what became
 * of one), in cluster mode.
 *
 * A step becomes one TPC command (command.h op 4) proposed to its
 * partition's group; the answer is the applied outcome (tpc.h), never the
 * proposal's. A node that does not lead the group answers NOT_LEADER, so
 * the sender's client follows the leader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "keycodec.h"
#include "node.h"
#include "orderkv.pb-c.h"
#include "tpc.h"
#include "tpc_driver.h"

typedef struct step_call {
    node *n;
    rpc_call *call;
    int status;            /* reply as TxnStatusResponse */
} step_call;

static void reply_step(step_call *sc, const command_result *r)
{
    Orderkv__V1__TxnPartResponse resp = ORDERKV__V1__TXN_PART_RESPONSE__INIT;
    Orderkv__V1__TxnStatusResponse st = ORDERKV__V1__TXN_STATUS_RESPONSE__INIT;
    int refusal = r->code ? service_error_code(r->code) : 0;
    if (sc->status) {
        st.state = r->tpc_state;
        st.refusal = refusal;
        st.failed = r->failed;
        st.reason = r->reason;
        service_reply_message(sc->call, &st.base);
    } else {
        resp.state = r->tpc_state;
        resp.refusal = refusal;
        resp.failed = r->failed;
        resp.reason = r->reason;
        service_reply_message(sc->call, &resp.base);
    }
}

static void step_applied(void *arg, int code, const command_result *r, uint64_t leader)
{
    step_call *sc = arg;
    if (code == OKV_ENOTLEADER)
        service_reply_not_leader(sc->call, sc->n, leader);
    else if (code == OKV_EUNAVAILABLE)
        service_reply_error(sc->call, code, "the step did not commit (leadership changed or the "
                                            "node is stopping); it was not applied, retry");
    else if (code)
        service_reply_error(sc->call, code, okv_strerror(code));
    else
        reply_step(sc, r);
    free(sc);
}

/* Proposes the encoded step msg (taken) to (table, partition), which this
 * node must hold. */
static void propose_step(rpc_call *call, node *n, const catalog_table *t, uint32_t partition,
                         uint8_t *msg, size_t len, int status)
{
    if (!cluster_holds(&n->map, n->node_id, t->id, partition)) {
        uint64_t reps[CLUSTER_MAX_NODES];
        cluster_replicas(&n->map, t->id, partition, reps);
        free(msg);
        service_reply_not_leader(call, n, reps[0]);
        return;
    }
    size_t clen;
    uint8_t *cmd = command_tpc_new(CMD_TPC, t->id, partition, msg, len, &clen);
    step_call *sc = calloc(1, sizeof *sc);
    free(msg);
    if (!cmd || !sc) {
        free(cmd);
        free(sc);
        service_reply_error(call, OKV_ENOMEM, "out of memory");
        return;
    }
    sc->n = n;
    sc->call = call;
    sc->status = status;
    raftstore_propose_owned(n->rs, fsm_group_id(t->id, partition), cmd, clen, step_applied, sc);
}

static const catalog_table *find_table(rpc_call *call, node *n, const char *name)
{
    const catalog_table *t = name ? catalog_find(kvstore_catalog(n->kv), name, strlen(name))
                                  : NULL;
    if (!t) {
        char names[512], msg[700];
        catalog_names(kvstore_catalog(n->kv), names, sizeof names);
        snprintf(msg, sizeof msg, "unknown table '%.64s' (tables: %s)", name ? name : "", names);
        service_reply_error(call, OKV_ENOTFOUND, msg);
    }
    return t;
}

static void handle_txn_part(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    if (service_refused_by_meta(call, n))
        return;
    Orderkv__V1__TxnPartRequest *m = orderkv__v1__txn_part_request__unpack(NULL, len, buf);
    if (!m) {
        service_reply_error(call, OKV_EPROTO, "malformed TxnPartRequest");
        return;
    }
    const catalog_table *t = find_table(call, n, m->table);
    tpc_msg msg;
    okv_error err;
    okv_error_clear(&err);
    if (t && m->partition >= t->partitions) {
        service_reply_error(call, OKV_EINVAL, "no such partition");
        t = NULL;
    } else if (t && tpc_msg_decode(m->message.data, m->message.len, &msg, &err) != OKV_OK) {
        service_reply_error(call, OKV_EINVAL, err.msg);
        t = NULL;
    } else if (t && tpc_msg_check(&msg, &err) != OKV_OK) {
        service_reply_error(call, OKV_EINVAL, err.msg);
        t = NULL;
    } else if (t && msg.kind == TPC_FENCE) {
        /* Raised and lifted only by Admin.BackupFence, which needs role admin. */
        service_reply_error(call, OKV_EINVAL, "a backup fence is not a 2PC step (use "
                                              "Admin.BackupFence)");
        t = NULL;
    } else if (t && (msg.self.table_id != t->id || msg.self.partition != m->partition)) {
        service_reply_error(call, OKV_EINVAL, "the step names another partition than the call");
        t = NULL;
    }
    /* The clock a step's deadline is judged by is this leader's, now: a
     * copy of a PREPARE that arrives late (a retry long after, a message
     * stuck in the network) is refused by the time it reaches the log, not
     * by the time its sender wrote it. */
    if (t && (msg.kind == TPC_PREPARE || msg.kind == TPC_CHECK))
        msg.clock_ms = tpc_wall_ms();
    size_t ml = t ? tpc_msg_encoded_size(&msg) : 0;
    uint8_t *copy = t ? malloc(ml) : NULL;
    if (t && !copy)
        service_reply_error(call, OKV_ENOMEM, "out of memory");
    if (copy) {
        tpc_msg_encode(&msg, copy);
        propose_step(call, n, t, m->partition, copy, ml, 0);
    }
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void handle_txn_status(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    if (service_refused_by_meta(call, n))
        return;
    Orderkv__V1__TxnStatusRequest *m = orderkv__v1__txn_status_request__unpack(NULL, len, buf);
    if (!m) {
        service_reply_error(call, OKV_EPROTO, "malformed TxnStatusRequest");
        return;
    }
    const catalog_table *t = find_table(call, n, m->table);
    if (t && (m->key.len == 0 || m->key.len > OKV_MAX_KEY_LEN || !m->client_id)) {
        service_reply_error(call, OKV_EINVAL, "TxnStatus needs a key of the coordinator's "
                            "partition (1..1024 bytes) and the transaction's client id");
        t = NULL;
    }
    if (t) {
        tpc_msg q;
        memset(&q, 0, sizeof q);
        q.kind = TPC_CHECK;
        q.flag = m->settle ? TPC_CHECK_SETTLE : 0;
        /* The records a settle writes are timed by it (their retention):
         * without a clock they would be forgotten at once (found by the
         * node simulator's bank workload). */
        q.clock_ms = tpc_wall_ms();
        q.id.client = m->client_id;
        q.id.req = m->request_id;
        q.self.table_id = t->id;
        q.self.partition = keycodec_partition_of(m->key.data, m->key.len, t->partitions);
        q.coord = q.self;
        size_t ml = tpc_msg_encoded_size(&q);
        uint8_t *enc = malloc(ml);
        if (!enc) {
            service_reply_error(call, OKV_ENOMEM, "out of memory");
        } else {
            tpc_msg_encode(&q, enc);
            propose_step(call, n, t, q.self.partition, enc, ml, 1);
        }
    }
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

int service_tpc_register(node *n, okv_error *err)
{
    int rc = rpc_server_add_method(n->rpc, "/orderkv.v1.KV/TxnPart", handle_txn_part, n, err);
    if (rc)
        return rc;
    return rpc_server_add_method(n->rpc, "/orderkv.v1.KV/TxnStatus", handle_txn_status, n, err);
}
