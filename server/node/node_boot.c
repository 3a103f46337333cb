/*
 * node_boot.c — cluster membership of a data dir, checked at every boot.
 *
 * The first boot in cluster mode stores "<node id>|<cluster map text>" in
 * the meta CF (CLUSTER_KEY). Later boots read it back: the stored map wins
 * over --initial-cluster (a warning names the difference), a different
 * --node-id is refused, and a data dir that already holds single-node data
 * is refused rather than silently mixed into a cluster.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "node.h"

/* Placement version of the cluster record (cluster.h), stored at first boot. */
#define PLACEMENT_KEY "\x00" "placement"

/* 1 in *found if the dir holds anything a single-node orderkvd writes:
 * rows, or (once every row was deleted) applied indexes, exactly-once
 * records, watermarks or the old per-partition sequences ('A', 'D', 'W',
 * 'S' in the meta family). Applied indexes ahead of an empty Raft log
 * would make a cluster replica skip entries. */
static int holds_single_node_state(engine *e, int *found, okv_error *err)
{
    static const struct { enum engine_cf cf; const char *prefix; } what[] = {
        { ENGINE_CF_DATA, NULL }, { ENGINE_CF_META, "A" }, { ENGINE_CF_META, "D" },
        { ENGINE_CF_META, "W" }, { ENGINE_CF_META, "S" },
    };
    *found = 0;
    for (size_t i = 0; i < sizeof what / sizeof what[0] && !*found; i++) {
        engine_iter *it;
        int rc = what[i].prefix ? engine_iter_new_prefix(&it, e, what[i].cf, what[i].prefix, 1, err)
                                : engine_iter_new(&it, e, what[i].cf, NULL, 0, NULL, 0, err);
        if (rc)
            return rc;
        *found = engine_iter_valid(it);
        engine_iter_free(it);
    }
    return OKV_OK;
}

int node_boot_write_record(engine *e, uint64_t node_id, const cluster_map *map, okv_error *err)
{
    char text[5000];
    int tl = snprintf(text, sizeof text, "%llu|", (unsigned long long)node_id);
    size_t ml = cluster_encode(map, text + tl, sizeof text - (size_t)tl);
    /* The placement version goes first: a crash between the two writes
     * leaves a dir that is still fresh (no cluster record). */
    char pv[16];
    int pl = snprintf(pv, sizeof pv, "%u", CLUSTER_PLACEMENT_VERSION);
    int rc = engine_put(e, ENGINE_CF_META, PLACEMENT_KEY, sizeof PLACEMENT_KEY - 1, pv,
                        (size_t)pl, 1, err);
    if (!rc)
        rc = engine_put(e, ENGINE_CF_META, CLUSTER_KEY, sizeof CLUSTER_KEY - 1, text,
                        (size_t)tl + ml, 1, err);
    return rc;
}

int node_boot_cluster(node *n, const char *spec, int *clustered, okv_error *err);

int node_boot_cluster(node *n, const char *spec, int *clustered, okv_error *err)
{
    *clustered = 0;
    engine *e = kvstore_engine(n->kv);
    char *stored = NULL;
    size_t len = 0;
    int rc = engine_get(e, ENGINE_CF_META, CLUSTER_KEY, sizeof CLUSTER_KEY - 1, &stored, &len, err);
    if (rc && rc != OKV_ENOTFOUND)
        return rc;
    if (rc == OKV_ENOTFOUND && !spec[0])
        return OKV_OK;   /* single-node mode */
    *clustered = 1;
    if (rc == OKV_ENOTFOUND) {
        /* First boot as a cluster node: the dir must not hold single-node data. */
        int has_data = 0;
        if ((rc = holds_single_node_state(e, &has_data, err)))
            return rc;
        if (has_data)
            return okv_error_set(err, OKV_EFORMAT,
                                 "data dir %s holds data of a single-node orderkvd; a cluster "
                                 "node needs a fresh data dir",
                                 engine_dir(e));
        if ((rc = cluster_parse(&n->map, spec, err)))
            return rc;
        if (!cluster_node_by_id(&n->map, n->node_id))
            return okv_error_set(err, OKV_EINVAL,
                                 "--node-id %llu is not in --initial-cluster %s",
                                 (unsigned long long)n->node_id, spec);
        if ((rc = node_boot_write_record(e, n->node_id, &n->map, err)))
            return rc;
        return cluster_set_tables(&n->map, kvstore_catalog(n->kv), CLUSTER_PLACEMENT_VERSION,
                                  err);
    }
    char *bar = memchr(stored, '|', len);
    if (!bar) {
        free(stored);
        return okv_error_set(err, OKV_ECORRUPT, "data dir %s: malformed cluster record",
                             engine_dir(e));
    }
    *bar = '\0';
    unsigned long long id = strtoull(stored, NULL, 10);
    char map_text[5000];
    snprintf(map_text, sizeof map_text, "%.*s", (int)(len - (size_t)(bar - stored) - 1), bar + 1);
    free(stored);
    if (id != n->node_id)
        return okv_error_set(err, OKV_EINVAL,
                             "data dir %s belongs to node %llu, not --node-id %llu",
                             engine_dir(e), id, (unsigned long long)n->node_id);
    if ((rc = cluster_parse(&n->map, map_text, err)))
        return okv_error_set(err, OKV_ECORRUPT, "data dir %s: stored cluster map: %s",
                             engine_dir(e), err ? err->msg : "malformed");
    /* Dirs made before placement version 2 have no record of it. */
    uint32_t placement = 1;
    char *pv = NULL;
    size_t pvl = 0;
    rc = engine_get(e, ENGINE_CF_META, PLACEMENT_KEY, sizeof PLACEMENT_KEY - 1, &pv, &pvl, err);
    if (rc && rc != OKV_ENOTFOUND)
        return rc;
    if (pv) {
        char tmp[16];
        snprintf(tmp, sizeof tmp, "%.*s", (int)(pvl < 15 ? pvl : 15), pv);
        placement = (uint32_t)strtoul(tmp, NULL, 10);
        free(pv);
    }
    okv_error perr;
    okv_error_clear(&perr);
    if ((rc = cluster_set_tables(&n->map, kvstore_catalog(n->kv), placement, &perr)))
        return okv_error_set(err, rc, "data dir %s: %s", engine_dir(e), perr.msg);
    if (placement == 1)
        OKV_WARN("data dir %s uses placement version 1 (uneven leaders on 5 nodes); a cluster "
                 "made with fresh data dirs uses version %u",
                 engine_dir(e), CLUSTER_PLACEMENT_VERSION);
    cluster_map given;
    okv_error ignore;
    if (spec[0] && (cluster_parse(&given, spec, &ignore) || given.cluster_id != n->map.cluster_id))
        OKV_WARN("--initial-cluster ignored: data dir %s belongs to cluster %s", engine_dir(e),
                 map_text);
    return OKV_OK;
}
