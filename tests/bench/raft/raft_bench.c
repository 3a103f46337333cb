/*
 * raft_bench.c — raft-bench: committed entries per second through the raft
 * core alone.
 *
 * A 3-node group in one process, one thread: every node's Ready is handled
 * like orderkvd would (persist to an in-memory store without fsync, hand
 * messages to the peers, apply, advance), but messages are passed to
 * raft_step directly (no codec, no network). Clients propose `batch`
 * entries of `size` bytes at the leader per round, so each append and each
 * store write carries a batch. The figure is entries committed at the
 * leader per second of CPU time; all three nodes' work is on one core.
 *
 *   raft-bench [--entries N] [--batch B] [--size S]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memstore.h"
#include "raft.h"

#define NODES 3

struct bnode {
    struct memstore ms;
    struct raft_node *r;
    uint64_t applied;
    uint64_t snap_at;
};

static struct bnode nodes[NODES + 1];

static void die(const char *what, int rc)
{
    fprintf(stderr, "raft-bench: %s: %s\n", what, raft_strerror(rc));
    exit(1);
}

static void deliver(const struct raft_message *v, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        int rc = raft_step(nodes[v[k].to].r, &v[k]);
        if (rc != 0)
            die("step", rc);
    }
}

/* Handles one node's Ready. Messages go straight into the peers, which are
 * not inside a Ready themselves (one node at a time). */
static bool pump_one(raft_id id)
{
    struct bnode *b = &nodes[id];
    struct raft_ready rd;
    if (!raft_has_ready(b->r))
        return false;
    int rc = raft_ready(b->r, &rd);
    if (rc != 0)
        die("ready", rc);
    deliver(rd.msgs, rd.n_msgs);
    if (rd.snapshot != NULL)
        memstore_install_snapshot(&b->ms, rd.snapshot);
    memstore_append(&b->ms, rd.entries, rd.n_entries);
    if (rd.hs_changed)
        memstore_set_hard_state(&b->ms, &rd.hs);
    deliver(rd.msgs_after_persist, rd.n_msgs_after_persist);
    if (rd.n_committed > 0)
        b->applied = rd.committed[rd.n_committed - 1].index;
    raft_advance(b->r);
    /* Keep memory flat: snapshot (empty state) and compact every 64k. */
    if (b->applied >= b->snap_at + 65536) {
        struct raft_status st;
        raft_status(b->r, &st);
        memstore_create_snapshot(&b->ms, b->applied, &st.conf, NULL, 0);
        memstore_compact_to_snapshot(&b->ms);
        b->snap_at = b->applied;
    }
    return true;
}

static void pump(void)
{
    bool any = true;
    while (any) {
        any = false;
        for (raft_id id = 1; id <= NODES; id++)
            any |= pump_one(id);
    }
}

int main(int argc, char **argv)
{
    uint64_t total = 2000000;
    uint32_t batch = 1024, size = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--entries") == 0)
            total = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--batch") == 0)
            batch = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--size") == 0)
            size = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "usage: raft-bench [--entries N] [--batch B] "
                            "[--size S]\n");
            return 2;
        }
    }
    struct raft_conf conf;
    memset(&conf, 0, sizeof(conf));
    conf.n_voters = NODES;
    for (uint32_t k = 0; k < NODES; k++)
        conf.voters[k] = k + 1;
    for (raft_id id = 1; id <= NODES; id++) {
        struct raft_config cfg;
        memstore_init(&nodes[id].ms, &conf);
        raft_config_init(&cfg);
        cfg.id = id;
        cfg.seed = id;
        cfg.storage = &memstore_ops;
        cfg.storage_ctx = &nodes[id].ms;
        cfg.max_msg_bytes = 4u << 20;
        cfg.max_inflight = 64;
        int rc = raft_new(&cfg, &nodes[id].r);
        if (rc != 0)
            die("new", rc);
    }
    raft_campaign(nodes[1].r);
    pump();
    struct raft_status st;
    raft_status(nodes[1].r, &st);
    if (st.role != RAFT_LEADER)
        die("election", RAFT_ERR_NOT_LEADER);

    uint8_t *payload = malloc(size > 0 ? size : 1);
    memset(payload, 0xab, size);
    uint64_t start_commit = st.commit;
    clock_t t0 = clock();
    uint64_t proposed = 0;
    while (proposed < total) {
        for (uint32_t k = 0; k < batch && proposed < total; k++, proposed++) {
            int rc = raft_propose(nodes[1].r, payload, size, NULL, NULL);
            if (rc != 0)
                die("propose", rc);
        }
        pump();
    }
    pump();
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    raft_status(nodes[1].r, &st);
    uint64_t committed = st.commit - start_commit;
    for (raft_id id = 1; id <= NODES; id++) {
        if (nodes[id].applied != st.commit) {
            fprintf(stderr, "raft-bench: node %llu applied %llu of %llu\n",
                    (unsigned long long)id,
                    (unsigned long long)nodes[id].applied,
                    (unsigned long long)st.commit);
            return 1;
        }
    }
    printf("raft-bench: %llu entries of %u bytes, batch %u, 3 nodes on one "
           "core: %.3f s, %.0f committed entries/s (%.1f MB/s of payload)\n",
           (unsigned long long)committed, size, batch, secs,
           committed / secs, committed * (double)size / secs / 1e6);
    for (raft_id id = 1; id <= NODES; id++) {
        raft_free(nodes[id].r);
        memstore_close(&nodes[id].ms);
    }
    free(payload);
    return 0;
}
