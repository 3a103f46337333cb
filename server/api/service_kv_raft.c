/*
 * service_kv_raft.c — orderkv.v1.KV in cluster mode.
 *
 * Writes become commands (command.h) proposed to the partition's Raft group
 * on this node; the answer comes from the applied entry (raftstore.h). A node
 * that does not lead the group answers NOT_LEADER with the leader's address.
 * Reads — Get and Scan — are linearizable on any replica: they wait for a
 * read index confirmed by the group's leader (Raft §6.4, followers forward)
 * and for this replica to have applied up to it, then read RocksDB.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failpoint.h"
#include "fsm.h"
#include "log.h"
#include "meta.h"
#include "node.h"
#include "orderkv.pb-c.h"
#include "tpc_driver.h"

void service_reply_not_leader(rpc_call *call, const node *n, uint64_t leader)
{
    const cluster_node *cn = leader ? cluster_node_by_id(&n->map, leader) : NULL;
    char msg[256];
    if (cn)
        snprintf(msg, sizeof msg, "node %llu does not lead this partition; node %llu at %s does",
                 (unsigned long long)n->node_id, (unsigned long long)leader, cn->addr);
    else
        snprintf(msg, sizeof msg, "node %llu does not lead this partition and knows no leader yet",
                 (unsigned long long)n->node_id);
    Orderkv__V1__Error e = ORDERKV__V1__ERROR__INIT;
    e.code = ORDERKV__V1__ERROR_CODE__NOT_LEADER;
    e.message = msg;
    e.leader_hint = cn ? leader : 0;
    e.leader_address = cn ? (char *)cn->addr : "";
    Orderkv__V1__GetResponse r = ORDERKV__V1__GET_RESPONSE__INIT;
    r.error = &e;
    uint8_t buf[768];
    size_t len = protobuf_c_message_get_packed_size(&r.base);
    protobuf_c_message_pack(&r.base, buf);
    rpc_call_reply(call, OKV_ENOTLEADER, msg, buf, len);
}

/* ---- writes ---------------------------------------------------------------- */

typedef struct write_ctx {
    node *n;
    rpc_call *call;
    int is_delete;
} write_ctx;

static void write_done(void *arg, int code, const command_result *r, uint64_t leader)
{
    write_ctx *w = arg;
    if (code == OKV_ENOTLEADER) {
        service_reply_not_leader(w->call, w->n, leader);
    } else if (code) {
        const char *msg = code == OKV_EUNAVAILABLE
                              ? "the write did not commit (leadership changed or the node is "
                                "stopping); it was not applied, retry"
                          : code == OKV_EUNKNOWN
                              ? "the node stopped before the write's outcome was known"
                              : okv_strerror(code);
        service_reply_error(w->call, code, msg);
    } else if (!r->code && OKV_FAILPOINT("kv.reply.drop")) {
        /* Applied, but the client hears only what a lost connection says. */
        rpc_call_reply(w->call, OKV_EUNAVAILABLE, "failpoint kv.reply.drop", NULL, 0);
    } else {
        service_reply_applied(w->call, w->is_delete, r);
    }
    free(w);
}

/* A node whose tables differ from the cluster's record would put keys in
 * other partitions than its peers: it answers nothing but this (meta.h). */
int service_refused_by_meta(rpc_call *call, node *n)
{
    if (!meta_refuses(n->meta))
        return 0;
    char detail[1024];
    meta_status(n->meta, NULL, detail, sizeof detail);
    service_reply_error(call, OKV_EUNAVAILABLE, detail);
    return 1;
}

static void handle_write(rpc_call *call, const uint8_t *buf, size_t len, node *n,
                         enum request_kind kind)
{
    if (service_refused_by_meta(call, n))
        return;
    request r;
    okv_error err;
    okv_error_clear(&err);
    int rc = request_decode(&r, kind, kvstore_catalog(n->kv), buf, len, &err);
    if (rc) {
        service_reply_error(call, rc, err.msg);
        return;
    }
    command c;
    request_to_command(&r, &c);
    size_t clen = command_encoded_size(&c);
    uint8_t *cmd = malloc(clen);
    write_ctx *w = calloc(1, sizeof *w);
    if (!cmd || !w) {
        free(cmd);
        free(w);
        request_release(&r);
        service_reply_error(call, OKV_ENOMEM, "out of memory");
        return;
    }
    command_encode(&c, cmd);
    uint64_t group = fsm_group_id(r.table->id, r.partition);
    if (!cluster_holds(&n->map, n->node_id, r.table->id, r.partition)) {
        /* No replica here: point at the partition's preferred leader. */
        uint64_t reps[CLUSTER_MAX_NODES];
        cluster_replicas(&n->map, r.table->id, r.partition, reps);
        free(cmd);
        free(w);
        request_release(&r);
        service_reply_not_leader(call, n, reps[0]);
        return;
    }
    request_release(&r);
    w->n = n;
    w->call = call;
    w->is_delete = kind == REQ_DELETE;
    raftstore_propose_owned(n->rs, group, cmd, clen, write_done, w);
}

static void handle_put(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    handle_write(call, buf, len, arg, REQ_PUT);
}

static void handle_delete(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    handle_write(call, buf, len, arg, REQ_DELETE);
}

/* ---- reads ----------------------------------------------------------------- */

typedef struct read_ctx {
    node *n;
    rpc_call *call;
    request req;
    _Atomic int waiting;       /* read indexes still outstanding */
    _Atomic int failed;        /* first failure code (0 = none) */
    _Atomic uint64_t leader;
    uint32_t first, count;     /* partitions read */
    /* Locks met (reads meet intents, below). */
    int rounds;
    tpc_id holder;             /* the lock being settled */
    tpc_id undecided;          /* a holder its coordinator called undecided */
} read_ctx;

/* Lock rounds per read: each settles one transaction's lock. */
#define READ_LOCK_ROUNDS 8

static void start_read(read_ctx *rc);
static void read_finish(read_ctx *rc);

static void read_free(read_ctx *rc)
{
    request_release(&rc->req);
    free(rc);
}

static void lock_settled(void *arg, int code)
{
    read_ctx *rc = arg;
    if (code == OKV_ECONFLICT) {
        /* Undecided when its coordinator answered, after this read began:
         * the value under the lock is the one to return. */
        rc->undecided = rc->holder;
        read_finish(rc);
    } else if (code == OKV_OK && rc->rounds < READ_LOCK_ROUNDS) {
        /* Resolved at the leader: read again once this replica applied it. */
        atomic_store(&rc->failed, 0);
        start_read(rc);
    } else {
        service_reply_error(rc->call, OKV_EUNAVAILABLE,
                            code == OKV_OK ? "the key stayed locked by transactions in "
                                             "progress; retry"
                                           : "the key is locked by a transaction whose "
                                             "coordinator did not answer; retry");
        read_free(rc);
    }
}

/* Reads meet intents (docs/transactions.md, "Reads"): a key a prepared
 * transaction holds exclusively may already be committed at its
 * coordinator, with the RESOLVE that writes it here still on its way. So
 * before reading, look for such a lock; if one is there, ask the
 * coordinator (tpc_driver_unlock): decided means resolve and read again,
 * undecided means the value under the lock is current. Returns 1 when the
 * read waits for that (the callback finishes it), 0 to read now. The lock
 * is looked at before the value: a lock gone by then was resolved before
 * the value is read. */
static int meets_lock(read_ctx *rc)
{
    node *n = rc->n;
    const request *q = &rc->req;
    /* Planted bug (jepsen list-append): read past intents as if no lock
     * were there, so a read that follows a commit whose RESOLVE has not
     * applied here returns the value from before it: a stale read. */
    if (OKV_FAILPOINT("kv.read.ignore_intents"))
        return 0;
    for (uint32_t p = rc->first; p < rc->first + rc->count; p++) {
        uint8_t mode = 0;
        tpc_id h;
        int code;
        if (q->kind == REQ_GET) {
            code = fsm_lock_get(kvstore_engine(n->kv), q->table->id, p, q->key, q->key_len, &mode,
                                &h.client, &h.req, NULL);
            if (code == OKV_OK && mode != TPC_LOCK_EXCLUSIVE)
                code = OKV_ENOTFOUND;
        } else {
            code = fsm_lock_first(kvstore_engine(n->kv), q->table->id, p, q->lower, q->lower_len,
                                  q->upper, q->upper_len, q->has_upper, &h.client, &h.req, NULL);
        }
        if (code != OKV_OK)
            continue;
        if (h.client == rc->undecided.client && h.req == rc->undecided.req)
            continue;
        if (!n->tpc)
            continue;
        rc->rounds++;
        rc->holder = h;
        tpc_driver_unlock(n->tpc, q->table->id, p, h, lock_settled, rc);
        return 1;
    }
    return 0;
}

static void finish_get(read_ctx *rc)
{
    node *n = rc->n;
    uint8_t *val = NULL;
    size_t vlen = 0;
    uint64_t version = 0;
    okv_error err;
    okv_error_clear(&err);
    int code = kvstore_get(n->kv, rc->req.table, rc->req.partition, rc->req.key, rc->req.key_len,
                           &val, &vlen, &version, &err);
    atomic_fetch_add(&n->reads, 1);
    if (code) {
        service_reply_error(rc->call, code, err.msg);
        return;
    }
    service_reply_value(rc->call, val, vlen, version);
    free(val);
}

static void finish_scan(read_ctx *rc)
{
    node *n = rc->n;
    kv_item *items = NULL;
    size_t count = 0;
    int more = 0;
    okv_error err;
    okv_error_clear(&err);
    int code = kvstore_scan(n->kv, &rc->req, &items, &count, &more, &err);
    atomic_fetch_add(&n->reads, 1);
    if (code) {
        service_reply_error(rc->call, code, err.msg);
        return;
    }
    service_reply_scan(rc->call, items, count, more);
    kvstore_items_free(items, count);
}

static void read_finish(read_ctx *rc)
{
    if (meets_lock(rc))
        return;
    if (rc->req.kind == REQ_GET)
        finish_get(rc);
    else
        finish_scan(rc);
    read_free(rc);
}

/* One read index answered; the last one reads and replies. */
static void read_done(void *arg, int code, uint64_t leader)
{
    read_ctx *rc = arg;
    if (code) {
        int expected = 0;
        atomic_compare_exchange_strong(&rc->failed, &expected, code);
        if (leader)
            atomic_store(&rc->leader, leader);
    }
    if (atomic_fetch_sub(&rc->waiting, 1) != 1)
        return;
    int failed = atomic_load(&rc->failed);
    if (failed == OKV_ENOTLEADER || failed == OKV_ENOTFOUND)
        service_reply_error(rc->call, OKV_EUNAVAILABLE,
                            "no leader could confirm a read point; retry");
    else if (failed)
        service_reply_error(rc->call, failed, "no read point within the time limit; retry");
    else {
        read_finish(rc);
        return;
    }
    read_free(rc);
}

/* Waits for a read point of every partition read, then reads. */
static void start_read(read_ctx *rc)
{
    const catalog_table *t = rc->req.table;
    node *n = rc->n;
    atomic_store(&rc->waiting, (int)rc->count);
    if (OKV_FAILPOINT("kv.read.local")) {
        /* Planted bug: whatever this replica has applied, however stale. */
        atomic_store(&rc->waiting, 1);
        read_done(rc, OKV_OK, 0);
        return;
    }
    /* A leader within its lease (raftstore.h) reads at once, on this
     * thread: no heartbeat round, no hand-off to the raft loop. */
    int leased = 1;
    for (uint32_t p = rc->first; p < rc->first + rc->count && leased; p++)
        leased = raftstore_lease_read(n->rs, fsm_group_id(t->id, p));
    if (leased) {
        atomic_fetch_add(&n->lease_reads, 1);
        atomic_store(&rc->waiting, 1);
        read_done(rc, OKV_OK, 0);
        return;
    }
    /* The last read point may answer (and free rc) before this loop looks
     * at rc again: bounds and table are copied first. */
    uint32_t first = rc->first, end = rc->first + rc->count, table = t->id;
    for (uint32_t p = first; p < end; p++)
        raftstore_read(n->rs, fsm_group_id(table, p), read_done, rc);
}

static void handle_read(rpc_call *call, const uint8_t *buf, size_t len, node *n,
                        enum request_kind kind)
{
    if (service_refused_by_meta(call, n))
        return;
    read_ctx *rc = calloc(1, sizeof *rc);
    if (!rc) {
        service_reply_error(call, OKV_ENOMEM, "out of memory");
        return;
    }
    okv_error err;
    okv_error_clear(&err);
    int code = request_decode(&rc->req, kind, kvstore_catalog(n->kv), buf, len, &err);
    if (code) {
        free(rc);
        service_reply_error(call, code, err.msg);
        return;
    }
    rc->n = n;
    rc->call = call;
    const catalog_table *t = rc->req.table;
    int single = kind == REQ_GET || rc->req.single_partition;
    uint32_t first = single ? rc->req.partition : 0;
    uint32_t count = single ? 1 : t->partitions;
    /* Every partition involved must hold a replica here. A single-partition
     * read is sent on to a node that has one; a scan over every partition
     * needs a node that holds them all (always true with 3 nodes), because
     * scatter-gather across nodes is not built yet. */
    if (!single) {
        for (uint32_t p = 0; p < count; p++) {
            if (!cluster_holds(&n->map, n->node_id, t->id, p)) {
                request_release(&rc->req);
                free(rc);
                service_reply_error(call, OKV_EINVAL,
                                    "this node holds only some partitions of the table; a scan "
                                    "across partitions needs a prefix with '/' (one partition) "
                                    "on clusters of more than 3 nodes");
                return;
            }
        }
    }
    for (uint32_t p = first; p < first + count; p++) {
        if (!cluster_holds(&n->map, n->node_id, t->id, p)) {
            uint64_t r[CLUSTER_MAX_NODES];
            cluster_replicas(&n->map, t->id, p, r);
            request_release(&rc->req);
            free(rc);
            service_reply_not_leader(call, n, r[0]);
            return;
        }
    }
    rc->first = first;
    rc->count = count;
    start_read(rc);
}

static void handle_get(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    handle_read(call, buf, len, arg, REQ_GET);
}

static void handle_scan(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    handle_read(call, buf, len, arg, REQ_SCAN);
}

int service_kv_raft_register(node *n, okv_error *err)
{
    static const rpc_handler fns[4] = { handle_get, handle_put, handle_delete, handle_scan };
    return service_kv_methods_register(n, fns, err);
}
