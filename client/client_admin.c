/*
 * client_admin.c — node status, leader transfer, the audit log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "orderkv.pb-c.h"

struct okv_status {
    Orderkv__V1__StatusResponse *resp;
    char address[CLIENT_ADDR_MAX];
};

/* A client of c's settings that talks to address alone: that node's own
 * view (its status, its audit log), nobody else's. */
static int connect_one(const okv_client *c, const char *address, okv_client **one)
{
    okv_options o = c->opts;
    o.listed_nodes_only = 1;
    o.tls_ca = c->tls.ca;      /* the same TLS settings, as PEM text */
    o.tls_cert = c->tls.cert;
    o.tls_key = c->tls.key;
    o.user = c->auth_user;     /* and the same identity */
    o.password = c->auth_password;
    return okv_connect(one, address, &o);
}

int okv_status_get(okv_client *c, okv_status **out, int timeout_ms)
{
    if (!c || !out)
        return OKV_EINVAL;
    *out = NULL;
    Orderkv__V1__StatusRequest req = ORDERKV__V1__STATUS_REQUEST__INIT;
    ProtobufCMessage *m;
    size_t idx = 0;
    int rc = client_unary(c, M_STATUS, &req.base, &orderkv__v1__status_response__descriptor, 0,
                          timeout_ms, &m, &idx, NULL);
    if (rc)
        return rc;
    okv_status *s = calloc(1, sizeof *s);
    if (!s) {
        protobuf_c_message_free_unpacked(m, NULL);
        return client_fail(c, OKV_ENOMEM, "out of memory");
    }
    s->resp = (Orderkv__V1__StatusResponse *)m;
    memcpy(s->address, c->addrs[idx], sizeof s->address);
    *out = s;
    return OKV_OK;
}

uint64_t okv_status_node_id(const okv_status *s) { return s->resp->node_id; }
const char *okv_status_server_version(const okv_status *s) { return s->resp->server_version; }
const char *okv_status_address(const okv_status *s) { return s->address; }
uint64_t okv_status_uptime_ms(const okv_status *s) { return s->resp->uptime_ms; }
size_t okv_status_table_count(const okv_status *s) { return s->resp->n_tables; }

const char *okv_status_table_name(const okv_status *s, size_t i)
{
    return i < s->resp->n_tables ? s->resp->tables[i]->name : NULL;
}

uint32_t okv_status_table_id(const okv_status *s, size_t i)
{
    return i < s->resp->n_tables ? s->resp->tables[i]->id : 0;
}

uint32_t okv_status_table_partitions(const okv_status *s, size_t i)
{
    return i < s->resp->n_tables ? s->resp->tables[i]->partitions : 0;
}

uint64_t okv_status_counter(const okv_status *s, const char *name)
{
    for (size_t i = 0; i < s->resp->n_counters; i++)
        if (strcmp(s->resp->counters[i]->name, name) == 0)
            return s->resp->counters[i]->value;
    return 0;
}

void okv_status_free(okv_status *s)
{
    if (!s)
        return;
    protobuf_c_message_free_unpacked(&s->resp->base, NULL);
    free(s);
}

int okv_status_get_at(okv_client *c, const char *address, okv_status **out, int timeout_ms)
{
    if (!c || !out || !address)
        return OKV_EINVAL;
    *out = NULL;
    okv_client *one;
    int rc = connect_one(c, address, &one);
    if (rc)
        return client_fail(c, rc, "bad address '%s'", address);
    rc = okv_status_get(one, out, timeout_ms);
    if (rc)
        client_fail(c, rc, "%s", okv_errmsg(one));
    okv_close(one);
    return rc;
}

uint64_t okv_status_cluster_id(const okv_status *s) { return s->resp->cluster_id; }
size_t okv_status_node_count(const okv_status *s) { return s->resp->n_nodes; }

uint64_t okv_status_node_id_at(const okv_status *s, size_t i)
{
    return i < s->resp->n_nodes ? s->resp->nodes[i]->id : 0;
}

const char *okv_status_node_address_at(const okv_status *s, size_t i)
{
    return i < s->resp->n_nodes ? s->resp->nodes[i]->address : NULL;
}

const char *okv_status_meta(const okv_status *s, uint64_t *epoch, const char **detail)
{
    const Orderkv__V1__MetaStatus *m = s->resp->meta;
    if (epoch)
        *epoch = m ? m->epoch : 0;
    if (detail)
        *detail = m && m->detail ? m->detail : "";
    return m && m->state ? m->state : "";
}

size_t okv_status_replica_count(const okv_status *s) { return s->resp->n_replicas; }

int okv_status_replica(const okv_status *s, size_t i, okv_replica_info *out)
{
    if (i >= s->resp->n_replicas || !out)
        return OKV_EINVAL;
    const Orderkv__V1__ReplicaStatus *r = s->resp->replicas[i];
    out->table_id = r->table_id;
    out->partition = r->partition;
    out->role = r->role;
    out->term = r->term;
    out->leader = r->leader;
    out->commit = r->commit;
    out->applied = r->applied;
    out->last_index = r->last_index;
    return OKV_OK;
}

int okv_transfer_leader(okv_client *c, const char *table, uint32_t partition, uint64_t to_node,
                        int timeout_ms)
{
    if (!c)
        return OKV_EINVAL;
    if (!table || !table[0])
        return client_fail(c, OKV_EINVAL, "table name is empty");
    Orderkv__V1__TransferLeaderRequest req = ORDERKV__V1__TRANSFER_LEADER_REQUEST__INIT;
    req.table = (char *)table;
    req.partition = partition;
    req.to_node = to_node;
    ProtobufCMessage *m;
    /* Not a data write: repeating it is harmless, so it retries like a read. */
    int rc = client_unary(c, M_TRANSFER, &req.base,
                          &orderkv__v1__transfer_leader_response__descriptor, 0, timeout_ms, &m,
                          NULL, NULL);
    if (rc)
        return rc;
    protobuf_c_message_free_unpacked(m, NULL);
    return OKV_OK;
}

/* ---- the audit log ----------------------------------------------------------- */

struct okv_audit_lines {
    Orderkv__V1__AuditTailResponse *resp;
    char address[CLIENT_ADDR_MAX];
};

int okv_audit_tail(okv_client *c, const char *address, uint32_t lines, okv_audit_lines **out,
                   int timeout_ms)
{
    if (!c || !out)
        return OKV_EINVAL;
    *out = NULL;
    char addr[CLIENT_ADDR_MAX];
    snprintf(addr, sizeof addr, "%s", address ? address : c->addrs[0]);
    /* Each node keeps its own log: ask that node alone, never another. */
    okv_client *one;
    int rc = connect_one(c, addr, &one);
    if (rc)
        return client_fail(c, rc, "bad address '%s'", addr);
    Orderkv__V1__AuditTailRequest req = ORDERKV__V1__AUDIT_TAIL_REQUEST__INIT;
    req.lines = lines;
    ProtobufCMessage *m = NULL;
    rc = client_unary(one, M_AUDIT_TAIL, &req.base, &orderkv__v1__audit_tail_response__descriptor,
                      0, timeout_ms, &m, NULL, NULL);
    if (rc) {
        client_fail(c, rc, "%s", okv_errmsg(one));
        okv_close(one);
        return rc;
    }
    okv_close(one);
    okv_audit_lines *l = calloc(1, sizeof *l);
    if (!l) {
        protobuf_c_message_free_unpacked(m, NULL);
        return client_fail(c, OKV_ENOMEM, "out of memory");
    }
    l->resp = (Orderkv__V1__AuditTailResponse *)m;
    memcpy(l->address, addr, sizeof l->address);
    *out = l;
    return OKV_OK;
}

size_t okv_audit_lines_count(const okv_audit_lines *l) { return l ? l->resp->n_lines : 0; }

const char *okv_audit_lines_at(const okv_audit_lines *l, size_t i)
{
    return l && i < l->resp->n_lines ? l->resp->lines[i] : NULL;
}

const char *okv_audit_lines_address(const okv_audit_lines *l) { return l ? l->address : NULL; }

void okv_audit_lines_free(okv_audit_lines *l)
{
    if (!l)
        return;
    protobuf_c_message_free_unpacked(&l->resp->base, NULL);
    free(l);
}
