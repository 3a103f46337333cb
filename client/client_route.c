/*
 * client_route.c — which node leads each partition, as far as this client
 * knows.
 *
 * Writes must reach a partition's leader. The client computes a key's
 * partition exactly as the servers do (FNV-1a of the partition key mod the
 * table's partition count, common/hash.h) and sends the write to the node it
 * believes leads that partition. The table list comes from one Status call
 * the first time it is needed; leaders come from the Status replica lists
 * and, above all, from NOT_LEADER answers, which name the leader. A wrong
 * guess costs one redirect, never correctness: the server decides.
 */
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "hash.h"
#include "orderkv.pb-c.h"

static route_table *find_table(okv_client *c, const char *name)
{
    for (size_t i = 0; i < c->nroutes; i++)
        if (strcmp(c->routes[i].name, name) == 0)
            return &c->routes[i];
    return NULL;
}

/* Loads the table list (and leaders seen by that node) with one Status call.
 * Called without route_mu held. */
static void load_tables(okv_client *c, int timeout_ms)
{
    Orderkv__V1__StatusRequest req = ORDERKV__V1__STATUS_REQUEST__INIT;
    ProtobufCMessage *m;
    if (client_unary(c, M_STATUS, &req.base, &orderkv__v1__status_response__descriptor, 0,
                     timeout_ms, &m, NULL, NULL) != OKV_OK)
        return;
    Orderkv__V1__StatusResponse *s = (Orderkv__V1__StatusResponse *)m;
    if (s->cluster_id)
        atomic_store(&c->servers_dedup, 1);
    /* Learn every node of the cluster, so that a client given one address
     * still sends each write straight to its partition's leader. */
    long node_idx[CLIENT_MAX_ADDRS];
    size_t nn = s->n_nodes < CLIENT_MAX_ADDRS ? s->n_nodes : CLIENT_MAX_ADDRS;
    for (size_t n = 0; n < nn; n++)
        node_idx[n] = s->nodes[n]->address ? client_node_add(c, s->nodes[n]->address) : -1;
    pthread_mutex_lock(&c->route_mu);
    for (size_t i = 0; i < s->n_tables && c->nroutes < CLIENT_MAX_TABLES; i++) {
        if (find_table(c, s->tables[i]->name) || s->tables[i]->partitions == 0 ||
            strlen(s->tables[i]->name) >= sizeof c->routes[0].name)
            continue;
        route_table *t = &c->routes[c->nroutes];
        t->leader = calloc(s->tables[i]->partitions, sizeof *t->leader);
        if (!t->leader)
            break;
        memcpy(t->name, s->tables[i]->name, strlen(s->tables[i]->name) + 1);
        t->id = s->tables[i]->id;
        t->partitions = s->tables[i]->partitions;
        for (uint32_t p = 0; p < t->partitions; p++)
            t->leader[p] = -1;
        c->nroutes++;
    }
    /* Leaders as the answering node sees them. */
    for (size_t i = 0; i < s->n_replicas; i++) {
        const Orderkv__V1__ReplicaStatus *r = s->replicas[i];
        route_table *t = NULL;
        for (size_t k = 0; k < c->nroutes; k++)
            if (c->routes[k].id == r->table_id)
                t = &c->routes[k];
        if (!t || r->partition >= t->partitions || !r->leader)
            continue;
        for (size_t n = 0; n < nn; n++)
            if (s->nodes[n]->id == r->leader)
                t->leader[r->partition] = node_idx[n];
    }
    c->routes_loaded = 1;
    pthread_mutex_unlock(&c->route_mu);
    protobuf_c_message_free_unpacked(m, NULL);
}

static uint32_t partition_of(const route_table *t, const client_route_key *rk)
{
    if (rk->partition >= 0)
        return (uint32_t)rk->partition % t->partitions;
    const void *key = rk->key;
    size_t len = rk->key_len;
    const void *slash = len ? memchr(key, '/', len) : NULL;
    size_t pk = slash ? (size_t)((const char *)slash - (const char *)key) : len;
    return (uint32_t)(okv_hash64(key, pk) % t->partitions);
}

long client_route_pick(okv_client *c, const client_route_key *rk, int timeout_ms)
{
    if (!rk)
        return -1;
    /* One thread loads; a failed load (cluster briefly unreachable) is
     * retried by a later write rather than leaving routing off for good. */
    int expected = 0;
    if (atomic_compare_exchange_strong(&c->routes_tried, &expected, 1)) {
        load_tables(c, timeout_ms);
        if (!c->routes_loaded)
            atomic_store(&c->routes_tried, 0);
    }
    return client_route_peek(c, rk);
}

long client_route_peek(okv_client *c, const client_route_key *rk)
{
    long idx = -1;
    pthread_mutex_lock(&c->route_mu);
    route_table *t = find_table(c, rk->table);
    if (t)
        idx = t->leader[partition_of(t, rk)];
    pthread_mutex_unlock(&c->route_mu);
    return idx;
}

void client_route_learn(okv_client *c, const client_route_key *rk, long idx)
{
    if (!rk)
        return;
    pthread_mutex_lock(&c->route_mu);
    route_table *t = find_table(c, rk->table);
    if (t)
        t->leader[partition_of(t, rk)] = idx;
    pthread_mutex_unlock(&c->route_mu);
}

long client_route_partition(okv_client *c, const char *table, const void *key, size_t key_len)
{
    client_route_key rk = { table, key, key_len, -1 };
    long p = -1;
    pthread_mutex_lock(&c->route_mu);
    route_table *t = find_table(c, table);
    if (t)
        p = (long)partition_of(t, &rk);
    pthread_mutex_unlock(&c->route_mu);
    return p;
}

long client_route_partitions(okv_client *c, const char *table, int timeout_ms)
{
    client_route_key rk = { table, "", 0, 0 };
    (void)client_route_pick(c, &rk, timeout_ms);   /* loads the table list once */
    long n = -1;
    pthread_mutex_lock(&c->route_mu);
    route_table *t = find_table(c, table);
    if (t)
        n = (long)t->partitions;
    pthread_mutex_unlock(&c->route_mu);
    return n;
}

void client_route_free(okv_client *c)
{
    for (size_t i = 0; i < c->nroutes; i++)
        free(c->routes[i].leader);
    c->nroutes = 0;
}
