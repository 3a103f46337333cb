#include "cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "hash.h"

static int cmp_node(const void *a, const void *b)
{
    const cluster_node *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int cluster_parse(cluster_map *m, const char *spec, okv_error *err)
{
    memset(m, 0, sizeof *m);
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char entry[CLUSTER_ADDR_MAX + 32];
        if (len == 0 || len >= sizeof entry)
            return okv_error_set(err, OKV_EINVAL,
                                 "--initial-cluster: malformed entry in '%s' (want ID=HOST:PORT,...)",
                                 spec);
        memcpy(entry, p, len);
        entry[len] = '\0';
        char *eq = strchr(entry, '=');
        if (!eq || !strchr(eq + 1, ':'))
            return okv_error_set(err, OKV_EINVAL,
                                 "--initial-cluster: '%s' is not ID=HOST:PORT", entry);
        *eq = '\0';
        char *end;
        errno = 0;
        unsigned long long id = strtoull(entry, &end, 10);
        if (errno || *end || entry[0] == '\0' || entry[0] == '-' || id == 0 ||
            id > (1ULL << 63))
            return okv_error_set(err, OKV_EINVAL, "--initial-cluster: bad node id '%s'", entry);
        if (m->n == CLUSTER_MAX_NODES)
            return okv_error_set(err, OKV_EINVAL, "--initial-cluster: more than %d nodes",
                                 CLUSTER_MAX_NODES);
        if (strlen(eq + 1) >= CLUSTER_ADDR_MAX)
            return okv_error_set(err, OKV_EINVAL, "--initial-cluster: address too long");
        for (size_t i = 0; i < m->n; i++) {
            if (m->nodes[i].id == id)
                return okv_error_set(err, OKV_EINVAL, "--initial-cluster: node id %llu twice", id);
            if (strcmp(m->nodes[i].addr, eq + 1) == 0)
                return okv_error_set(err, OKV_EINVAL, "--initial-cluster: address %s twice",
                                     eq + 1);
        }
        m->nodes[m->n].id = id;
        snprintf(m->nodes[m->n].addr, CLUSTER_ADDR_MAX, "%s", eq + 1);
        m->n++;
        p += len;
        if (*p == ',')
            p++;
    }
    if (m->n == 0)
        return okv_error_set(err, OKV_EINVAL, "--initial-cluster is empty");
    qsort(m->nodes, m->n, sizeof m->nodes[0], cmp_node);
    m->replication = m->n < 3 ? (uint32_t)m->n : 3;
    char text[CLUSTER_MAX_NODES * (CLUSTER_ADDR_MAX + 24)];
    size_t tl = cluster_encode(m, text, sizeof text);
    m->cluster_id = okv_hash64(text, tl) | 1;
    return OKV_OK;
}

size_t cluster_encode(const cluster_map *m, char *buf, size_t cap)
{
    size_t off = 0;
    for (size_t i = 0; i < m->n; i++) {
        int n = snprintf(buf + off, cap - off, "%s%llu=%s", i ? "," : "",
                         (unsigned long long)m->nodes[i].id, m->nodes[i].addr);
        if (n < 0 || (size_t)n >= cap - off)
            return 0;
        off += (size_t)n;
    }
    return off;
}

const cluster_node *cluster_node_by_id(const cluster_map *m, uint64_t id)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->nodes[i].id == id)
            return &m->nodes[i];
    return NULL;
}

size_t cluster_replicas(const cluster_map *m, uint32_t table_id, uint32_t partition,
                        uint64_t *out)
{
    if (table_id == CLUSTER_META_TABLE) {
        /* The first min(N, 5) nodes; the one that follows the last data
         * partition's preferred leader goes first, as it leads one fewer. */
        size_t n = m->n < CLUSTER_META_MAX_REPLICAS ? m->n : CLUSTER_META_MAX_REPLICAS;
        size_t first = m->placement >= 2 ? m->slots % m->n : 0;
        if (first >= n)
            first = 0;
        for (size_t k = 0; k < n; k++)
            out[k] = m->nodes[(first + k) % n].id;
        return n;
    }
    size_t slot = m->placement >= 2 && table_id <= CLUSTER_MAX_TABLE_ID
                      ? (size_t)m->slot_base[table_id] + partition
                      : (size_t)table_id + partition;
    size_t start = slot % m->n;
    for (size_t k = 0; k < m->replication; k++)
        out[k] = m->nodes[(start + k) % m->n].id;
    return m->replication;
}

int cluster_holds(const cluster_map *m, uint64_t node, uint32_t table_id, uint32_t partition)
{
    uint64_t r[CLUSTER_MAX_NODES];
    size_t n = cluster_replicas(m, table_id, partition, r);
    for (size_t i = 0; i < n; i++)
        if (r[i] == node)
            return 1;
    return 0;
}

int cluster_set_tables(cluster_map *m, const catalog *cat, uint32_t placement, okv_error *err)
{
    memset(m->slot_base, 0, sizeof m->slot_base);
    m->slots = 0;
    m->placement = 0;
    if (placement == 1)
        return OKV_OK;
    if (placement != CLUSTER_PLACEMENT_VERSION)
        return okv_error_set(err, OKV_EINVAL,
                             "placement version %u is not known to this orderkvd (it knows 1 "
                             "and %u); was the data dir made by a newer version?",
                             placement, CLUSTER_PLACEMENT_VERSION);
    /* Table order is id order, whatever order the catalog lists them in. */
    for (uint32_t id = 1; id <= CLUSTER_MAX_TABLE_ID; id++) {
        for (size_t i = 0; i < cat->count; i++) {
            if (cat->tables[i].id != id)
                continue;
            m->slot_base[id] = m->slots;
            m->slots += cat->tables[i].partitions;
        }
    }
    for (size_t i = 0; i < cat->count; i++)
        if (cat->tables[i].id == 0 || cat->tables[i].id > CLUSTER_MAX_TABLE_ID)
            return okv_error_set(err, OKV_EINVAL, "table %s has id %u, outside 1..%u",
                                 cat->tables[i].name, cat->tables[i].id, CLUSTER_MAX_TABLE_ID);
    m->placement = placement;
    return OKV_OK;
}
