/*
 * cluster.h — the static cluster map: which nodes exist, where they listen,
 * and which nodes hold the replicas of each partition.
 *
 * Built from --initial-cluster "1=127.0.0.1:7401,2=127.0.0.1:7402,..." at
 * first boot and stored in the data dir (meta CF, key CLUSTER_KEY); later
 * boots use the stored map. Placement is a pure function of the map, so
 * every node computes the same replica sets without talking to the others:
 * the partitions of all tables are numbered in one sequence (table by
 * table, in id order: slot = partitions of the tables before + p), and
 * partition p of table t lives on the RF nodes that follow position
 * slot mod N in node-id order. The first of them is its preferred leader,
 * so preferred leaders differ by at most one between nodes. (Data dirs
 * made before placement version 2 used (t + p) mod N, which is uneven on
 * five nodes; they keep it — see cluster_set_tables.)
 *
 * The meta group (Raft group 0, table id CLUSTER_META_TABLE) is placed
 * differently: on the first min(N, CLUSTER_META_MAX_REPLICAS) nodes in id
 * order, so that on clusters of up to five nodes every node holds the
 * cluster's own record of its map and tables (server/control/meta.h); its
 * preferred leader is the one that leads fewest partitions.
 *
 * The cluster id is a hash of the canonical map text: a node refuses Raft
 * traffic from another cluster id, and a data dir of another cluster
 * refuses to start.
 *
 * Pure: no I/O.
 */
#ifndef OKV_SERVER_CLUSTER_H
#define OKV_SERVER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define CLUSTER_MAX_NODES 16
#define CLUSTER_ADDR_MAX 128
#define CLUSTER_KEY "\x00" "cluster"
#define CLUSTER_META_TABLE 0u           /* table id of the meta group's rows */
#define CLUSTER_META_MAX_REPLICAS 5

typedef struct cluster_node {
    uint64_t id;
    char addr[CLUSTER_ADDR_MAX];
} cluster_node;

#define CLUSTER_PLACEMENT_VERSION 2u
#define CLUSTER_MAX_TABLE_ID 64u

typedef struct cluster_map {
    uint64_t cluster_id;
    uint32_t replication;        /* replicas per partition: min(3, nodes) */
    size_t n;
    cluster_node nodes[CLUSTER_MAX_NODES];   /* sorted by id */
    /* Set by cluster_set_tables (placement 2); all zero means placement 1. */
    uint32_t placement;
    uint32_t slot_base[CLUSTER_MAX_TABLE_ID + 1];   /* by table id */
    uint32_t slots;                                  /* partitions of all tables */
} cluster_map;

/* Parses "ID=HOST:PORT,..." (ids 1..2^63, distinct; addresses distinct). */
int cluster_parse(cluster_map *m, const char *spec, okv_error *err);

/* Canonical text of the map ("1=a:1,2=b:2"); 0 if cap is too small. */
size_t cluster_encode(const cluster_map *m, char *buf, size_t cap);

const cluster_node *cluster_node_by_id(const cluster_map *m, uint64_t id);

struct catalog;
/* Numbers the partitions of cat's tables for placement version `placement`
 * (1: the old (t + p) mod N rule, kept for data dirs made with it; 2: one
 * sequence over all tables). OKV_EINVAL for an unknown version or a table id
 * above CLUSTER_MAX_TABLE_ID. */
int cluster_set_tables(cluster_map *m, const struct catalog *cat, uint32_t placement,
                       okv_error *err);

/* Replica node ids of (table, partition), preferred leader first; returns
 * how many (m->replication; for CLUSTER_META_TABLE, the meta group's
 * count). out needs room for CLUSTER_MAX_NODES. */
size_t cluster_replicas(const cluster_map *m, uint32_t table_id, uint32_t partition,
                        uint64_t *out);

/* 1 if node holds a replica of (table, partition). */
int cluster_holds(const cluster_map *m, uint64_t node, uint32_t table_id, uint32_t partition);

#endif
