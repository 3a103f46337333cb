/*
 * service_admin.c — orderkv.v1.Admin: Status.
 */
#include <stdio.h>
#include <stdlib.h>

#include "node.h"
#include "orderkv.pb-c.h"

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
    committer_stats st;
    committer_get_stats(n->com, &st);
    static const char *const names[] = { "writes", "syncs", "reads" };
    uint64_t values[] = { st.writes, st.syncs, atomic_load(&n->reads) };
    Orderkv__V1__Counter counters[3];
    Orderkv__V1__Counter *cptrs[3];
    for (size_t i = 0; i < 3; i++) {
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
    resp.n_counters = 3;
    resp.counters = cptrs;
    resp.data_dir = n->data_dir;

    size_t plen = protobuf_c_message_get_packed_size(&resp.base);
    uint8_t *out = malloc(plen ? plen : 1);
    if (!out) {
        service_reply_error(call, OKV_ENOMEM, "out of memory");
        return;
    }
    protobuf_c_message_pack(&resp.base, out);
    rpc_call_reply(call, OKV_OK, NULL, out, plen);
    free(out);
}

int service_admin_register(node *n, okv_error *err)
{
    return rpc_server_add_method(n->rpc, request_method_path(REQ_STATUS), handle_status, n, err);
}
