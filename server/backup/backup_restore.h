/*
 * backup_restore.h — builds one node's data dir of a new cluster from an
 * online backup (docs/operations.md "Backup and restore"), offline.
 *
 * Run once per node of the new cluster, with that node's id, the new
 * cluster's map and a data dir that does not exist yet (or is empty); then
 * start the nodes as usual (orderkvd with the same --node-id,
 * --initial-cluster and --data-dir, or scripts/cluster.sh up). Every
 * partition this node holds in the new map (placement as at any first
 * boot) starts from its cut: its rows, exactly-once records, 2PC records
 * and watermarks as of the cut's Raft index, and a Raft log that begins
 * there (a snapshot at (index, term) with the new replicas as voters), so
 * versions keep growing from where the old cluster was. The meta group
 * starts empty, as at any first boot.
 *
 * All or nothing: every file of the backup is checked (size, SHA-256, and
 * the stream's own counts and checksum) before anything is written, and
 * the dir is built under "<data dir>.restoring" and renamed into place
 * only once complete; on any failure nothing is left at the data dir.
 */
#ifndef OKV_BACKUP_RESTORE_H
#define OKV_BACKUP_RESTORE_H

#include <stdint.h>

#include "errors.h"

typedef struct backup_restore_options {
    const char *backup_dir;
    const char *data_dir;
    const char *initial_cluster;   /* ID=HOST:PORT,... of the new cluster */
    uint64_t node_id;
} backup_restore_options;

/* What a restore did, for its report. */
typedef struct backup_restore_stats {
    uint32_t partitions;           /* restored into this node's dir */
    uint64_t records;
} backup_restore_stats;

/* OKV_OK, or OKV_ECORRUPT (the backup is damaged: which file, what),
 * OKV_EINVAL (options, a data dir in the way), OKV_EIO, with a message. */
int backup_restore(const backup_restore_options *o, backup_restore_stats *stats, okv_error *err);

/* Checks the backup alone (manifest, every file's size and SHA-256). */
int backup_verify(const char *backup_dir, okv_error *err);

#endif
