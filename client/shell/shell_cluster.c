/*
 * shell_cluster.c — per-node replica lists to per-partition rows
 * (shell_cluster.h; the numbered rules are there).
 *
 * Method: list every (table, partition) key from the catalog and the reports,
 * sort and deduplicate them into rows; list every reported replica as a
 * reference sorted by (table, partition, node); then one merge walk hands each
 * row its run of replicas. The sizes are small (tables x partitions x nodes),
 * but sorting keeps it simple and obviously linear after the sort.
 */
#include "shell_cluster.h"

#include <stdlib.h>
#include <string.h>

/* A reported replica and the node that reported it. */
typedef struct replica_ref {
    uint64_t node;
    size_t order;                  /* report order, so rule 2 keeps the first */
    const okv_replica_info *info;
} replica_ref;

typedef struct part_key {
    uint32_t table_id, partition;
} part_key;

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

static int cmp_key(const void *pa, const void *pb)
{
    const part_key *a = pa, *b = pb;
    int c = cmp_u64(a->table_id, b->table_id);
    return c ? c : cmp_u64(a->partition, b->partition);
}

static int cmp_ref(const void *pa, const void *pb)
{
    const replica_ref *a = pa, *b = pb;
    int c = cmp_u64(a->info->table_id, b->info->table_id);
    if (!c)
        c = cmp_u64(a->info->partition, b->info->partition);
    if (!c)
        c = cmp_u64(a->node, b->node);
    return c ? c : cmp_u64(a->order, b->order);
}

const char *shell_cluster_table_name(const shell_cluster_input *in, uint32_t table_id)
{
    if (table_id == 0)
        return "meta";   /* the meta group's rows live under table id 0 */
    for (size_t i = 0; i < in->table_count; i++)
        if (in->tables[i].id == table_id)
            return in->tables[i].name;
    return NULL;
}

void shell_cluster_view_free(shell_cluster_view *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->count; i++)
        free(v->rows[i].replicas);
    free(v->rows);
    free(v);
}

/* Rule 1: every catalog partition and every reported one, sorted, unique. */
static part_key *collect_keys(const shell_cluster_input *in, const replica_ref *refs,
                              size_t nrefs, size_t *count)
{
    size_t n = nrefs;
    for (size_t t = 0; t < in->table_count; t++)
        n += in->tables[t].partitions;
    part_key *k = malloc((n ? n : 1) * sizeof *k);
    if (!k)
        return NULL;
    size_t m = 0;
    for (size_t t = 0; t < in->table_count; t++)
        for (uint32_t p = 0; p < in->tables[t].partitions; p++)
            k[m++] = (part_key){ in->tables[t].id, p };
    for (size_t r = 0; r < nrefs; r++)
        k[m++] = (part_key){ refs[r].info->table_id, refs[r].info->partition };
    qsort(k, m, sizeof *k, cmp_key);
    size_t u = 0;
    for (size_t i = 0; i < m; i++)
        if (u == 0 || cmp_key(&k[u - 1], &k[i]) != 0)
            k[u++] = k[i];
    *count = u;
    return k;
}

/* Rule 2: the replicas of the nodes that answered, sorted by key and node. */
static replica_ref *collect_refs(const shell_cluster_input *in, size_t *count)
{
    size_t n = 0;
    for (size_t i = 0; i < in->node_count; i++)
        if (in->nodes[i].up)
            n += in->nodes[i].replica_count;
    replica_ref *r = malloc((n ? n : 1) * sizeof *r);
    if (!r)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < in->node_count; i++) {
        const shell_cluster_node *nd = &in->nodes[i];
        if (!nd->up || !nd->replicas)
            continue;
        for (size_t j = 0; j < nd->replica_count; j++, m++)
            r[m] = (replica_ref){ nd->id, m, &nd->replicas[j] };
    }
    qsort(r, m, sizeof *r, cmp_ref);
    *count = m;
    return r;
}

/* Rules 3-5 for one row whose replicas are filled in. */
static void elect(shell_partition_row *row)
{
    const shell_replica_row *best = NULL;
    uint64_t max_term = 0;
    for (size_t i = 0; i < row->replica_count; i++) {
        const shell_replica_row *r = &row->replicas[i];
        if (r->term > max_term)
            max_term = r->term;
        if (r->role && strcmp(r->role, "leader") == 0 && (!best || r->term > best->term))
            best = r;
    }
    row->has_leader = best != NULL;
    row->leader = best ? best->node : 0;
    row->term = best ? best->term : max_term;
    row->leader_commit = best ? best->commit : 0;
    for (size_t i = 0; i < row->replica_count; i++) {
        shell_replica_row *r = &row->replicas[i];
        r->lag_known = best != NULL;
        r->lag = best && best->commit > r->applied ? best->commit - r->applied : 0;
    }
}

/* Fills row from the run refs[*pos..] of its key; advances *pos past it. */
static int fill_row(shell_partition_row *row, const replica_ref *refs, size_t nrefs, size_t *pos)
{
    size_t end = *pos;
    while (end < nrefs && refs[end].info->table_id == row->table_id &&
           refs[end].info->partition == row->partition)
        end++;
    if (end > *pos) {
        row->replicas = calloc(end - *pos, sizeof *row->replicas);
        if (!row->replicas)
            return -1;
    }
    for (size_t i = *pos; i < end; i++) {
        /* Sorted by node, then report order: a repeat follows its first. */
        if (row->replica_count > 0 && row->replicas[row->replica_count - 1].node == refs[i].node)
            continue;
        const okv_replica_info *info = refs[i].info;
        row->replicas[row->replica_count++] = (shell_replica_row){
            .node = refs[i].node,
            .role = info->role,
            .term = info->term,
            .leader_seen = info->leader,
            .commit = info->commit,
            .applied = info->applied,
            .last_index = info->last_index,
        };
    }
    *pos = end;
    elect(row);
    return 0;
}

int shell_cluster_aggregate(const shell_cluster_input *in, shell_cluster_view **out)
{
    *out = NULL;
    size_t nrefs = 0, nkeys = 0;
    replica_ref *refs = collect_refs(in, &nrefs);
    part_key *keys = refs ? collect_keys(in, refs, nrefs, &nkeys) : NULL;
    shell_cluster_view *v = keys ? calloc(1, sizeof *v) : NULL;
    if (v)
        v->rows = calloc(nkeys ? nkeys : 1, sizeof *v->rows);
    if (!v || !v->rows) {
        free(v);
        free(keys);
        free(refs);
        return -1;
    }
    size_t pos = 0;
    int rc = 0;
    for (size_t k = 0; k < nkeys && rc == 0; k++) {
        shell_partition_row *row = &v->rows[v->count++];
        row->table_id = keys[k].table_id;
        row->partition = keys[k].partition;
        row->table = shell_cluster_table_name(in, row->table_id);
        rc = fill_row(row, refs, nrefs, &pos);
        if (!row->has_leader)
            v->leaderless++;
    }
    free(keys);
    free(refs);
    if (rc != 0) {
        shell_cluster_view_free(v);
        return -1;
    }
    *out = v;
    return 0;
}
