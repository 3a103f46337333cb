/*
 * service_admin.c — orderkv.v1.Admin: Status, TransferLeader (recorded in the
 * audit log); AuditTail is in service_audit.c.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fsm.h"
#include "meta.h"
#include "node.h"
#include "orderkv.pb-c.h"

static const char *role_name(enum raft_role r)
{
    switch (r) {
    case RAFT_LEADER: return "leader";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_PRE_CANDIDATE: return "pre-candidate";
    default: return "follower";
    }
}

static void handle_status(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    request r;
    okv_error err;
    okv_error_clear(&err);
    int rc = request_decode(&r, REQ_STATUS, kvstore_catalog(n->kv), buf, len, &err);
    if (rc) {
        service_reply_error(call, rc, err.msg);
        return;
    }
    request_release(&r);

    const catalog *cat = kvstore_catalog(n->kv);
    Orderkv__V1__TableInfo tables[CATALOG_MAX_TABLES];
    Orderkv__V1__TableInfo *tptrs[CATALOG_MAX_TABLES];
    for (size_t i = 0; i < cat->count; i++) {
        orderkv__v1__table_info__init(&tables[i]);
        tables[i].name = (char *)cat->tables[i].name;
        tables[i].id = cat->tables[i].id;
        tables[i].partitions = cat->tables[i].partitions;
        tptrs[i] = &tables[i];
    }
    committer_stats st = { 0, 0 };
    if (n->com)   /* single-node mode; a cluster node has no committer */
        committer_get_stats(n->com, &st);
    struct raftstore_snap_stats ss = { 0, 0, 0, 0 };
    if (n->rs)
        raftstore_snap_stats_get(n->rs, &ss);
    struct raftstore_io_stats io = { 0, 0, 0, 0, 0 };
    if (n->rs)
        raftstore_io_stats_get(n->rs, &io);
    /* A cluster node's "writes" and "syncs" are its raft log's: entries
     * made durable and the synced writes that did it (so writes/syncs is
     * the group-commit factor in both modes). */
    if (n->rs) {
        st.writes = io.entries_synced;
        st.syncs = io.syncs;
    }
    static const char *const names[] = { "writes", "syncs", "reads", "lease_reads",
                                         "snapshots_recorded", "snapshots_offered",
                                         "snapshots_installed", "snapshots_recovered",
                                         "entries_applied", "proposals" };
    uint64_t values[] = { st.writes, st.syncs, atomic_load(&n->reads),
                          atomic_load(&n->lease_reads), ss.recorded, ss.offered, ss.installed,
                          ss.recovered, io.entries_applied, io.proposals };
    enum { NCOUNTERS = sizeof names / sizeof names[0] };
    Orderkv__V1__Counter counters[NCOUNTERS];
    Orderkv__V1__Counter *cptrs[NCOUNTERS];
    for (size_t i = 0; i < NCOUNTERS; i++) {
        orderkv__v1__counter__init(&counters[i]);
        counters[i].name = (char *)names[i];
        counters[i].value = values[i];
        cptrs[i] = &counters[i];
    }

    Orderkv__V1__StatusResponse resp = ORDERKV__V1__STATUS_RESPONSE__INIT;
    resp.node_id = n->node_id;
    resp.server_version = OKV_VERSION_STRING;
    resp.listen_address = n->listen_address;
    resp.uptime_ms = node_now_ms() - n->started_ms;
    resp.n_tables = cat->count;
    resp.tables = tptrs;
    resp.n_counters = NCOUNTERS;
    resp.counters = cptrs;
    resp.data_dir = n->data_dir;

    /* Cluster mode: the map and this node's replicas. */
    Orderkv__V1__NodeInfo nodes[CLUSTER_MAX_NODES], *nptrs[CLUSTER_MAX_NODES];
    raftstore_group_info *groups = NULL;
    Orderkv__V1__ReplicaStatus *reps = NULL, **rptrs = NULL;
    Orderkv__V1__MetaStatus meta_st = ORDERKV__V1__META_STATUS__INIT;
    char meta_detail[1024];
    if (n->rs) {
        enum meta_state ms = meta_status(n->meta, &meta_st.epoch, meta_detail, sizeof meta_detail);
        meta_st.state = (char *)meta_state_name(ms);
        meta_st.detail = meta_detail;
        resp.meta = &meta_st;
        resp.cluster_id = n->map.cluster_id;
        for (size_t i = 0; i < n->map.n; i++) {
            orderkv__v1__node_info__init(&nodes[i]);
            nodes[i].id = n->map.nodes[i].id;
            nodes[i].address = n->map.nodes[i].addr;
            nptrs[i] = &nodes[i];
        }
        resp.n_nodes = n->map.n;
        resp.nodes = nptrs;
        size_t ng = raftstore_groups(n->rs, NULL, 0);
        groups = calloc(ng ? ng : 1, sizeof *groups);
        reps = calloc(ng ? ng : 1, sizeof *reps);
        rptrs = calloc(ng ? ng : 1, sizeof *rptrs);
        if (groups && reps && rptrs) {
            ng = raftstore_groups(n->rs, groups, ng);
            for (size_t i = 0; i < ng; i++) {
                Orderkv__V1__ReplicaStatus *rep = &reps[i];
                orderkv__v1__replica_status__init(rep);
                rep->group = groups[i].group;
                rep->table_id = (uint32_t)(groups[i].group >> 32);
                rep->partition = (uint32_t)groups[i].group;
                rep->role = (char *)role_name(groups[i].st.role);
                rep->term = groups[i].st.term;
                rep->leader = groups[i].st.leader;
                rep->commit = groups[i].st.commit;
                rep->applied = groups[i].st.applied;
                rep->last_index = groups[i].st.last_index;
                rptrs[i] = rep;
            }
            resp.n_replicas = ng;
            resp.replicas = rptrs;
        }
    }

    size_t plen = protobuf_c_message_get_packed_size(&resp.base);
    uint8_t *out = malloc(plen ? plen : 1);
    if (!out) {
        service_reply_error(call, OKV_ENOMEM, "out of memory");
    } else {
        protobuf_c_message_pack(&resp.base, out);
        rpc_call_reply(call, OKV_OK, NULL, out, plen);
        free(out);
    }
    free(groups);
    free(reps);
    free(rptrs);
}

/* Answers a transfer with an error and records it (service_audit.c). */
static void transfer_refused(node *n, rpc_call *call, const char *what, int code, const char *msg)
{
    service_audit_action(n, call, what, code, msg);
    service_reply_error(call, code, msg);
}

static void handle_transfer(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    request r;
    okv_error err;
    okv_error_clear(&err);
    int rc = request_decode(&r, REQ_TRANSFER, kvstore_catalog(n->kv), buf, len, &err);
    if (rc) {
        transfer_refused(n, call, "transfer-leader", rc, err.msg);
        return;
    }
    uint64_t group = fsm_group_id(r.table->id, r.partition);
    uint64_t to = r.to_node;
    uint32_t table_id = r.table->id, part = r.partition;
    char what[160];
    snprintf(what, sizeof what, "transfer-leader table=%s partition=%u to=%llu", r.table->name,
             part, (unsigned long long)to);
    request_release(&r);
    if (!n->rs) {
        transfer_refused(n, call, what, OKV_EINVAL, "this node runs alone (no --initial-cluster)");
        return;
    }
    if (!cluster_holds(&n->map, to, table_id, part)) {
        transfer_refused(n, call, what, OKV_EINVAL, "that node holds no replica of the partition");
        return;
    }
    uint64_t leader = raftstore_leader(n->rs, group);
    if (leader != n->node_id) {
        char msg[128];
        snprintf(msg, sizeof msg, "node %llu does not lead the partition (leader: node %llu)",
                 (unsigned long long)n->node_id, (unsigned long long)leader);
        service_audit_action(n, call, what, OKV_ENOTLEADER, msg);
        service_reply_not_leader(call, n, leader);
        return;
    }
    rc = raftstore_transfer_leader(n->rs, group, to);
    if (rc) {
        transfer_refused(n, call, what, rc, "could not queue the transfer");
        return;
    }
    service_audit_action(n, call, what, OKV_OK, NULL);
    Orderkv__V1__TransferLeaderResponse resp = ORDERKV__V1__TRANSFER_LEADER_RESPONSE__INIT;
    uint8_t outb[64];
    size_t plen = protobuf_c_message_get_packed_size(&resp.base);
    protobuf_c_message_pack(&resp.base, outb);
    rpc_call_reply(call, OKV_OK, NULL, outb, plen);
}

int service_admin_register(node *n, okv_error *err)
{
    int rc = rpc_server_add_method(n->rpc, request_method_path(REQ_STATUS), handle_status, n, err);
    if (!rc)
        rc = rpc_server_add_method(n->rpc, request_method_path(REQ_TRANSFER), handle_transfer, n,
                                   err);
    return rc ? rc : service_audit_register(n, err);
}
