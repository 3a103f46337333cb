/*
 * backup_restore.c — one node's data dir from a backup (backup_restore.h).
 *
 * The install is the one a follower does for a snapshot from its leader
 * (fsm_snapshot.h I1-I3), minus the crash-safety marker: the dir is not
 * in place until it is complete, so a crash leaves only the ".restoring"
 * dir, which the next attempt removes.
 */
#define _POSIX_C_SOURCE 200809L
#include "backup_restore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup_manifest.h"
#include "fsm.h"
#include "fsm_snapshot.h"
#include "node.h"
#include "raftlog.h"
#include "snap_format.h"

/* ---- reading the backup ------------------------------------------------------- */

static int read_manifest(const char *dir, backup_manifest *m, okv_error *err)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, BACKUP_MANIFEST_NAME);
    FILE *f = fopen(path, "rb");
    if (!f)
        return okv_error_set(err, errno == ENOENT ? OKV_ECORRUPT : OKV_EIO,
                             "%s: %s (a backup dir holds a MANIFEST, written last: without one "
                             "it is not a backup, or one that did not finish)",
                             path, strerror(errno));
    char *text = malloc(1 << 22);
    size_t len = text ? fread(text, 1, (1 << 22) - 1, f) : 0;
    int big = text && !feof(f);
    fclose(f);
    if (!text)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    int rc = big ? okv_error_set(err, OKV_ECORRUPT, "%s is over 4 MiB: not a manifest", path)
                 : backup_manifest_decode(m, text, len, err);
    free(text);
    return rc;
}

/* Size and SHA-256 of one file against its manifest record. */
static int verify_file(const char *dir, const backup_part *p, okv_error *err)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, p->file);
    FILE *f = fopen(path, "rb");
    if (!f)
        return okv_error_set(err, OKV_ECORRUPT, "backup file %s (table %u partition %u) is "
                             "missing: %s", path, p->table_id, p->partition, strerror(errno));
    backup_hash *h = backup_hash_new();
    uint8_t buf[1 << 16];
    uint64_t total = 0;
    size_t n;
    while (h && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        backup_hash_update(h, buf, n);
        total += n;
    }
    int ioerr = ferror(f);
    fclose(f);
    if (!h)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    if (ioerr) {
        backup_hash_free(h);
        return okv_error_set(err, OKV_EIO, "reading %s failed", path);
    }
    char hex[BACKUP_SHA_HEX];
    backup_hash_final(h, hex);
    if (total != p->bytes)
        return okv_error_set(err, OKV_ECORRUPT, "backup file %s is %llu bytes, the manifest "
                             "says %llu: truncated or replaced", path,
                             (unsigned long long)total, (unsigned long long)p->bytes);
    if (strcmp(hex, p->sha256) != 0)
        return okv_error_set(err, OKV_ECORRUPT, "backup file %s is damaged: its SHA-256 is %s, "
                             "the manifest says %s", path, hex, p->sha256);
    return OKV_OK;
}

static int verify_all(const char *dir, backup_manifest *m, okv_error *err)
{
    int rc = read_manifest(dir, m, err);
    for (size_t i = 0; !rc && i < m->nparts; i++)
        rc = verify_file(dir, &m->parts[i], err);
    return rc;
}

int backup_verify(const char *backup_dir, okv_error *err)
{
    backup_manifest m;
    memset(&m, 0, sizeof m);
    int rc = verify_all(backup_dir, &m, err);
    backup_manifest_clear(&m);
    return rc;
}

/* ---- one partition ------------------------------------------------------------ */

/* The next frame of f into *buf (grown as needed): 1, 0 at the end of the
 * file, -1 if malformed. */
static int next_frame(FILE *f, uint8_t **buf, size_t *cap, size_t *len)
{
    uint8_t l[4];
    size_t got = fread(l, 1, 4, f);
    if (got == 0)
        return 0;
    if (got != 4)
        return -1;
    *len = (size_t)l[0] << 24 | (size_t)l[1] << 16 | (size_t)l[2] << 8 | l[3];
    if (*len > SNAP_MAX_MESSAGE)
        return -1;
    if (*len > *cap) {
        uint8_t *nb = realloc(*buf, *len);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = *len;
    }
    return fread(*buf, 1, *len, f) == *len ? 1 : -1;
}

/* Writes the records of p's file into SST files in snapdir (checked
 * against the stream's header and trailer). */
static int write_ssts(engine *e, const char *path, const backup_part *p, uint64_t group,
                      const char *snapdir, uint64_t *records, okv_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return okv_error_set(err, OKV_EIO, "%s: %s", path, strerror(errno));
    fsm_snapshot_writer *w = NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    int rc = OKV_OK, fr;
    struct snap_header h;
    struct snap_trailer t;
    uint64_t sum = SNAP_CHECKSUM_INIT, bytes = 0, nrec = 0;
    uint32_t chunks = 0;
    int trailer = 0;
    if (next_frame(f, &buf, &cap, &len) != 1 || snap_header_decode(buf, len, &h) ||
        h.group != group || h.meta.index != p->index || h.meta.term != p->term) {
        rc = okv_error_set(err, OKV_ECORRUPT, "%s: its header does not describe table %u "
                           "partition %u at index %llu", path, p->table_id, p->partition,
                           (unsigned long long)p->index);
        goto out;
    }
    if ((rc = fsm_snapshot_writer_new(&w, e, group, snapdir, err)))
        goto out;
    while (!rc && (fr = next_frame(f, &buf, &cap, &len)) == 1) {
        int kind = snap_kind_of(buf, len);
        snap_chunk_reader cr;
        if (trailer || (kind == SNAP_TRAILER ? snap_trailer_decode(buf, len, &t) != 0
                                             : snap_chunk_open(&cr, buf, len) != 0 ||
                                                   cr.seq != chunks)) {
            rc = okv_error_set(err, OKV_ECORRUPT, "%s: message %u is out of place or "
                               "malformed", path, chunks + 1);
            break;
        }
        if (kind == SNAP_TRAILER) {
            trailer = 1;
            continue;
        }
        sum = snap_checksum(sum, buf, len);
        bytes += len;
        chunks++;
        struct snap_record r;
        int more;
        while (!rc && (more = snap_chunk_next(&cr, &r)) == 1) {
            rc = fsm_snapshot_writer_add(w, r.cf, r.key, r.key_len, r.val, r.val_len, err);
            nrec++;
        }
        if (!rc && more < 0)
            rc = okv_error_set(err, OKV_ECORRUPT, "%s: chunk %u is malformed", path, chunks - 1);
    }
    if (!rc && (!trailer || fr < 0 || t.chunks != chunks || t.records != nrec ||
                t.bytes != bytes || t.checksum != sum))
        rc = okv_error_set(err, OKV_ECORRUPT, "%s: the stream does not match its trailer "
                           "(chunks, records, bytes or checksum): damaged", path);
    if (!rc)
        rc = fsm_snapshot_writer_finish(w, err);
    *records = nrec;
out:
    fsm_snapshot_writer_free(w);
    free(buf);
    fclose(f);
    return rc;
}

/* Installs p into e: SST files ingested, then the group's Raft log created
 * at the cut (snapshot record, hard state) and its applied index, in one
 * synced batch. */
static int restore_part(engine *e, const char *backup_dir, const cluster_map *map,
                        const backup_part *p, uint64_t *records, okv_error *err)
{
    uint64_t group = fsm_group_id(p->table_id, p->partition);
    char path[4400], root[4200], name[FSM_SNAPSHOT_NAME_MAX + 1], snapdir[4400];
    snprintf(path, sizeof path, "%s/%s", backup_dir, p->file);
    if (fsm_snapshot_root(e, root, sizeof root))
        return okv_error_set(err, OKV_EINVAL, "data dir path too long");
    mkdir(root, 0755);
    fsm_snapshot_dir_name(name, sizeof name, group, p->index, 0, 0);
    snprintf(snapdir, sizeof snapdir, "%s/%s", root, name);
    int rc = write_ssts(e, path, p, group, snapdir, records, err);
    if (!rc)
        rc = fsm_snapshot_ingest(e, snapdir, err);
    okv_error ignore;
    fsm_snapshot_remove_dir(snapdir, &ignore);
    if (rc)
        return rc;
    struct raft_conf conf;
    memset(&conf, 0, sizeof conf);
    uint64_t reps[CLUSTER_MAX_NODES];
    conf.n_voters = (uint32_t)cluster_replicas(map, p->table_id, p->partition, reps);
    for (uint32_t i = 0; i < conf.n_voters; i++)
        conf.voters[i] = reps[i];
    engine_batch *b = engine_batch_new();
    struct raftlog *rl = NULL;
    if (!b)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    okv_error lerr;
    if (raftlog_create(&rl, e, group, &conf, b, &lerr) != 0) {
        engine_batch_free(b);
        return okv_error_set(err, OKV_ECORRUPT, "group %u/%u: %s", p->table_id, p->partition,
                             lerr.msg);
    }
    uint8_t desc[FSM_SNAPSHOT_DESC_MAX];
    struct raft_snapshot snap;
    memset(&snap, 0, sizeof snap);
    snap.meta.index = p->index;
    snap.meta.term = p->term;
    snap.meta.conf = conf;
    snap.data = desc;
    snap.len = fsm_snapshot_desc_encode(desc, FSM_SNAPSHOT_LOCAL, NULL);
    struct raft_hard_state hs;
    memset(&hs, 0, sizeof hs);
    hs.term = p->term;
    hs.commit = p->index;
    if (raftlog_stage_snapshot(rl, b, &snap) != 0 || raftlog_stage_hard_state(rl, b, &hs) != 0)
        rc = okv_error_set(err, OKV_EINTERNAL, "group %u/%u: %s", p->table_id, p->partition,
                           raftlog_errmsg(rl));
    fsm_snapshot_stage_installed(b, group, p->index);
    if (!rc)
        rc = engine_write(e, b, 1, err);
    raftlog_free(rl);
    engine_batch_free(b);
    return rc;
}

/* ---- the data dir ------------------------------------------------------------- */

static int remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : unlink(path);
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char sub[4400];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            rc |= remove_tree(sub);
        else
            rc |= unlink(sub);
    }
    closedir(d);
    return rc | rmdir(path);
}

/* 1 if path is absent or an empty dir. */
static int absent_or_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT;
    int empty = 1;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = 0;
    closedir(d);
    return empty;
}

/* The backup's tables against the catalog a fresh dir gets: the same
 * names, ids and partition counts (a partition's keys are where the hash
 * put them, so counts cannot change on the way). */
static int check_tables(const backup_manifest *m, const catalog *cat, okv_error *err)
{
    if (cat->count != m->ntables)
        return okv_error_set(err, OKV_EINVAL, "the backup has %zu tables, a new data dir %zu",
                             m->ntables, cat->count);
    for (size_t i = 0; i < m->ntables; i++) {
        const catalog_table *t = catalog_find(cat, m->tables[i].name, strlen(m->tables[i].name));
        if (!t || t->id != m->tables[i].id || t->partitions != m->tables[i].partitions)
            return okv_error_set(err, OKV_EINVAL, "table %s of the backup (id %u, %u "
                                 "partitions) does not match a new data dir's",
                                 m->tables[i].name, m->tables[i].id, m->tables[i].partitions);
    }
    return OKV_OK;
}

static int build(const backup_restore_options *o, const backup_manifest *m, cluster_map *map,
                 const char *tmp, backup_restore_stats *stats, okv_error *err)
{
    kvstore *kv;
    int ignored;
    int rc = kvstore_open(&kv, tmp, m->tables[0].partitions, &ignored, err);
    if (rc)
        return rc;
    engine *e = kvstore_engine(kv);
    okv_error perr;
    if (!(rc = check_tables(m, kvstore_catalog(kv), err)) &&
        (rc = cluster_set_tables(map, kvstore_catalog(kv), CLUSTER_PLACEMENT_VERSION, &perr)))
        okv_error_set(err, rc, "%s", perr.msg);
    for (size_t i = 0; !rc && i < m->nparts; i++) {
        const backup_part *p = &m->parts[i];
        if (!cluster_holds(map, o->node_id, p->table_id, p->partition))
            continue;
        uint64_t nrec = 0;
        rc = restore_part(e, o->backup_dir, map, p, &nrec, err);
        stats->partitions++;
        stats->records += nrec;
    }
    /* Last: a dir with the record is a cluster node's that booted once. */
    if (!rc)
        rc = node_boot_write_record(e, o->node_id, map, err);
    kvstore_close(kv);
    return rc;
}

int backup_restore(const backup_restore_options *o, backup_restore_stats *stats, okv_error *err)
{
    memset(stats, 0, sizeof *stats);
    if (!o->backup_dir || !o->data_dir || !o->data_dir[0] || !o->initial_cluster || !o->node_id)
        return okv_error_set(err, OKV_EINVAL, "restore needs the backup dir, --data-dir, "
                             "--node-id and --initial-cluster");
    cluster_map map;
    int rc = cluster_parse(&map, o->initial_cluster, err);
    if (rc)
        return rc;
    if (!cluster_node_by_id(&map, o->node_id))
        return okv_error_set(err, OKV_EINVAL, "--node-id %llu is not in --initial-cluster %s",
                             (unsigned long long)o->node_id, o->initial_cluster);
    if (!absent_or_empty(o->data_dir))
        return okv_error_set(err, OKV_EINVAL, "data dir %s exists and is not empty: a restore "
                             "makes a new node's dir", o->data_dir);
    backup_manifest m;
    memset(&m, 0, sizeof m);
    rc = verify_all(o->backup_dir, &m, err);
    for (size_t i = 1; !rc && i < m.ntables; i++)
        if (m.tables[i].partitions != m.tables[0].partitions)
            rc = okv_error_set(err, OKV_EINVAL, "the backup's tables have different partition "
                               "counts; this orderkvd makes every table with one count");
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.restoring", o->data_dir);
    if (!rc && remove_tree(tmp) != 0 && errno != ENOENT)
        rc = okv_error_set(err, OKV_EIO, "cannot remove %s (left by an earlier restore): %s", tmp,
                           strerror(errno));
    if (!rc)
        rc = build(o, &m, &map, tmp, stats, err);
    if (!rc) {
        rmdir(o->data_dir);   /* empty, or absent */
        if (rename(tmp, o->data_dir) != 0)
            rc = okv_error_set(err, OKV_EIO, "cannot rename %s to %s: %s", tmp, o->data_dir,
                               strerror(errno));
    }
    if (rc)
        remove_tree(tmp);
    backup_manifest_clear(&m);
    return rc;
}
