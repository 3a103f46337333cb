/*
 * cluster.h — the static cluster map: which nodes exist, where they listen,
 * and which nodes hold the replicas of each partition.
 *
 * Built from --initial-cluster "1=127.0.0.1:7401,2=127.0.0.1:7402,..." at
 * first boot and stored in the data dir (meta CF, key CLUSTER_KEY); later
 * boots use the stored map. Placement is a pure function of the map, so
 * every node computes the same replica sets without talking to the others:
 * partition p of table t lives on the RF nodes that follow position
 * (t + p) mod N in node-id order, and the first of them is its preferred
 * leader, which spreads leaders evenly over nodes.
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

typedef struct cluster_node {
    uint64_t id;
    char addr[CLUSTER_ADDR_MAX];
} cluster_node;

typedef struct cluster_map {
    uint64_t cluster_id;
    uint32_t replication;        /* replicas per partition: min(3, nodes) */
    size_t n;
    cluster_node nodes[CLUSTER_MAX_NODES];   /* sorted by id */
} cluster_map;

/* Parses "ID=HOST:PORT,..." (ids 1..2^63, distinct; addresses distinct). */
int cluster_parse(cluster_map *m, const char *spec, okv_error *err);

/* Canonical text of the map ("1=a:1,2=b:2"); 0 if cap is too small. */
size_t cluster_encode(const cluster_map *m, char *buf, size_t cap);

const cluster_node *cluster_node_by_id(const cluster_map *m, uint64_t id);

/* Replica node ids of (table, partition), preferred leader first; returns
 * how many (m->replication). out needs room for CLUSTER_MAX_NODES. */
size_t cluster_replicas(const cluster_map *m, uint32_t table_id, uint32_t partition,
                        uint64_t *out);

/* 1 if node holds a replica of (table, partition). */
int cluster_holds(const cluster_map *m, uint64_t node, uint32_t table_id, uint32_t partition);

#endif
