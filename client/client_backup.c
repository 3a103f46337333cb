/*
 * client_backup.c — okv_backup: an online, consistent backup of every
 * partition (docs/operations.md "Backup and restore"; the server's half is
 * server/api/service_backup.c).
 *
 * The steps, and why each is there:
 *   1. Raise this backup's fence on every partition (Admin.BackupFence,
 *      at each leader, answered once applied). From its entry on, a
 *      partition refuses every PREPARE, so no transaction across
 *      partitions can newly start to hold a share there.
 *   2. Cut every partition, one after the other (Admin.BackupCut): the
 *      leader answers only once the fence stands in its applied state and
 *      no transaction across partitions is PREPARED or PENDING there
 *      (CONFLICT otherwise: asked again until the deadline). A cut is
 *      streamed to its file at once (Admin.BackupRead, from the node that
 *      cut it), its SHA-256 taken as it is written.
 *   3. Check that every cut was taken while every fence still stood: the
 *      cuts' order does not matter only because no PREPARE applied
 *      anywhere between the first fence and the last cut.
 *   4. Lift the fences (they expire by themselves anyway), write MANIFEST
 *      (synced, renamed into place): a dir without one is no backup.
 * Every committed transaction across partitions PREPAREd everywhere before
 * the fences (a refused PREPARE aborts it), so at each cut it is settled
 * there, hence applied: it is in every cut or in none.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup_manifest.h"
#include "client_int.h"
#include "orderkv.pb-c.h"

#define CALL_MS 10000
#define SNAP_CHECKSUM_INIT 0xcbf29ce484222325ULL
#define TRAILER_LEN 34   /* snap_format.h SNAP_TRAILER_LEN */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* snap_format.h's checksum (FNV-1a-64), to check the trailer. */
static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

typedef struct bk {
    okv_client *c;
    const char *dir;
    okv_backup_options o;
    uint64_t fence_id;
    int64_t fenced_at;           /* monotonic, before the first fence went up */
    backup_manifest m;
} bk;

static int fence(bk *b, const char *table, uint32_t p, int up)
{
    Orderkv__V1__BackupFenceRequest req = ORDERKV__V1__BACKUP_FENCE_REQUEST__INIT;
    req.table = (char *)table;
    req.partition = p;
    req.fence_id = b->fence_id;
    req.up = up;
    req.lifetime_ms = (uint64_t)b->o.fence_ms;
    client_route_key rk = { table, NULL, 0, (long)p };
    ProtobufCMessage *resp;
    /* Raising or lifting the same fence again is harmless: read rules. */
    int rc = client_unary(b->c, M_BACKUP_FENCE, &req.base,
                          &orderkv__v1__backup_fence_response__descriptor, 0, CALL_MS, &resp,
                          NULL, &rk);
    if (!rc)
        protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
}

/* Writes one frame (u32be length, message) to f and the hash. */
static int put_frame(FILE *f, backup_hash *h, const uint8_t *msg, size_t len, uint64_t *bytes)
{
    uint8_t l[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                     (uint8_t)len };
    if (fwrite(l, 1, 4, f) != 4 || (len && fwrite(msg, 1, len, f) != len))
        return -1;
    backup_hash_update(h, l, 4);
    backup_hash_update(h, msg, len);
    *bytes += 4 + len;
    return 0;
}

/* Streams session `session` from the node at addr into path, checking the
 * trailer; fills part's bytes and sha256. */
static int stream_cut(bk *b, const char *addr, uint64_t session, const uint8_t *hdr,
                      size_t hdr_len, const char *path, backup_part *part)
{
    okv_client *one;
    okv_options o = b->c->opts;
    o.listed_nodes_only = 1;
    o.tls_ca = b->c->tls.ca;
    o.tls_cert = b->c->tls.cert;
    o.tls_key = b->c->tls.key;
    int rc = okv_connect(&one, addr, &o);
    if (rc)
        return client_fail(b->c, rc, "backup: cannot reach %s", addr);
    FILE *f = fopen(path, "wb");
    backup_hash *h = backup_hash_new();
    if (!f || !h) {
        rc = client_fail(b->c, OKV_EIO, "backup: cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    part->bytes = 0;
    if (put_frame(f, h, hdr, hdr_len, &part->bytes)) {
        rc = client_fail(b->c, OKV_EIO, "backup: writing %s: %s", path, strerror(errno));
        goto out;
    }
    uint64_t sum = SNAP_CHECKSUM_INIT, bytes = 0;
    uint32_t chunks = 0;
    for (uint32_t seq = 0;; seq++) {
        Orderkv__V1__BackupReadRequest req = ORDERKV__V1__BACKUP_READ_REQUEST__INIT;
        req.session = session;
        req.seq = seq;
        ProtobufCMessage *m;
        rc = client_unary(one, M_BACKUP_READ, &req.base,
                          &orderkv__v1__backup_read_response__descriptor, 0, CALL_MS, &m, NULL,
                          NULL);
        if (rc) {
            client_fail(b->c, rc, "backup: reading chunk %u from %s: %s", seq, addr,
                        okv_errmsg(one));
            goto out;
        }
        Orderkv__V1__BackupReadResponse *r = (Orderkv__V1__BackupReadResponse *)m;
        int done = r->done;
        int bad = 0;
        if (done) {
            bad = r->trailer.len != TRAILER_LEN || get_u64(r->trailer.data + 26) != sum ||
                  get_u64(r->trailer.data + 18) != bytes ||
                  ((uint32_t)r->trailer.data[6] << 24 | (uint32_t)r->trailer.data[7] << 16 |
                   (uint32_t)r->trailer.data[8] << 8 | r->trailer.data[9]) != chunks;
            if (!bad && put_frame(f, h, r->trailer.data, r->trailer.len, &part->bytes))
                rc = OKV_EIO;
        } else {
            sum = fnv(sum, r->chunk.data, r->chunk.len);
            bytes += r->chunk.len;
            chunks++;
            if (put_frame(f, h, r->chunk.data, r->chunk.len, &part->bytes))
                rc = OKV_EIO;
        }
        protobuf_c_message_free_unpacked(m, NULL);
        if (bad) {
            rc = client_fail(b->c, OKV_ECORRUPT, "backup: the cut from %s does not match its "
                             "trailer (counts or checksum)", addr);
            goto out;
        }
        if (rc) {
            client_fail(b->c, rc, "backup: writing %s: %s", path, strerror(errno));
            goto out;
        }
        if (done)
            break;
    }
    if (fflush(f) || fsync(fileno(f))) {
        rc = client_fail(b->c, OKV_EIO, "backup: syncing %s: %s", path, strerror(errno));
        goto out;
    }
    backup_hash_final(h, part->sha256);
    h = NULL;
out:
    backup_hash_free(h);
    if (f)
        fclose(f);
    okv_close(one);
    return rc;
}

/* Cuts (table, p) once it is quiet, and streams it. */
static int cut_one(bk *b, const backup_table *t, uint32_t p, int64_t deadline)
{
    backup_part part;
    memset(&part, 0, sizeof part);
    part.table_id = t->id;
    part.partition = p;
    backup_part_file(part.file, sizeof part.file, t->name, p);
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", b->dir, part.file);
    for (int attempt = 0;; attempt++) {
        Orderkv__V1__BackupCutRequest req = ORDERKV__V1__BACKUP_CUT_REQUEST__INIT;
        req.table = (char *)t->name;
        req.partition = p;
        req.fence_id = b->fence_id;
        client_route_key rk = { t->name, NULL, 0, (long)p };
        ProtobufCMessage *m;
        size_t idx = 0;
        int rc = client_unary(b->c, M_BACKUP_CUT, &req.base,
                              &orderkv__v1__backup_cut_response__descriptor, 0, CALL_MS, &m, &idx,
                              &rk);
        if (rc == OKV_OK) {
            Orderkv__V1__BackupCutResponse *r = (Orderkv__V1__BackupCutResponse *)m;
            part.index = r->index;
            part.term = r->term;
            char addr[CLIENT_ADDR_MAX];
            snprintf(addr, sizeof addr, "%s", b->c->addrs[idx]);
            rc = stream_cut(b, addr, r->session, r->header.data, r->header.len, path, &part);
            protobuf_c_message_free_unpacked(m, NULL);
            if (rc == OKV_OK)
                break;
            if (rc == OKV_EIO || rc == OKV_ECORRUPT || mono_ms() > deadline)
                return rc;
            continue;   /* the node went away mid-stream: cut it again */
        }
        if (rc != OKV_ECONFLICT && rc != OKV_EUNAVAILABLE && rc != OKV_ENOTLEADER &&
            rc != OKV_ETIMEDOUT)
            return client_fail(b->c, rc, "backup: cutting %s/%u: %s", t->name, p,
                               okv_errmsg(b->c));
        if (mono_ms() > deadline)
            return client_fail(b->c, OKV_ETIMEDOUT, "backup: %s/%u could not be cut within the "
                               "backup's time limit: %s", t->name, p, okv_errmsg(b->c));
        pause_ms(client_backoff_ms(attempt < 6 ? attempt : 6));
    }
    if (backup_manifest_add(&b->m, &part))
        return client_fail(b->c, OKV_ENOMEM, "out of memory");
    if (b->o.on_cut)
        b->o.on_cut(b->o.ctx, t->name, p, part.index, part.term);
    return OKV_OK;
}

static int load_tables(bk *b)
{
    okv_status *st;
    int rc = okv_status_get(b->c, &st, CALL_MS);
    if (rc)
        return rc;
    size_t n = okv_status_table_count(st);
    for (size_t i = 0; i < n && i < BACKUP_MAX_TABLES; i++) {
        backup_table *t = &b->m.tables[b->m.ntables++];
        snprintf(t->name, sizeof t->name, "%s", okv_status_table_name(st, i));
        t->id = okv_status_table_id(st, i);
        t->partitions = okv_status_table_partitions(st, i);
    }
    if (!okv_status_cluster_id(st))
        rc = client_fail(b->c, OKV_EINVAL, "backup: %s is a single-node orderkvd; stop it and "
                         "copy its data dir instead", okv_status_address(st));
    okv_status_free(st);
    return rc;
}

/* MANIFEST.tmp, synced, renamed over MANIFEST, dir synced. */
static int write_manifest(bk *b)
{
    char *text;
    size_t len;
    okv_error err;
    if (backup_manifest_encode(&b->m, &text, &len, &err))
        return client_fail(b->c, err.code, "%s", err.msg);
    char tmp[4400], path[4400];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", b->dir, BACKUP_MANIFEST_NAME);
    snprintf(path, sizeof path, "%s/%s", b->dir, BACKUP_MANIFEST_NAME);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    free(text);
    ok = ok && rename(tmp, path) == 0;
    int dfd = ok ? open(b->dir, O_RDONLY) : -1;
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return ok ? OKV_OK
              : client_fail(b->c, OKV_EIO, "backup: writing %s: %s", path, strerror(errno));
}

/* The target dir: created, or existing and empty. */
static int prepare_dir(bk *b)
{
    if (mkdir(b->dir, 0755) == 0)
        return OKV_OK;
    if (errno != EEXIST)
        return client_fail(b->c, OKV_EIO, "backup: cannot create %s: %s", b->dir,
                           strerror(errno));
    DIR *d = opendir(b->dir);
    if (!d)
        return client_fail(b->c, OKV_EIO, "backup: %s: %s", b->dir, strerror(errno));
    int empty = 1;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = 0;
    closedir(d);
    return empty ? OKV_OK
                 : client_fail(b->c, OKV_EINVAL, "backup: %s is not empty; back up into a new "
                               "dir", b->dir);
}

int okv_backup(okv_client *c, const char *dir, const okv_backup_options *opts)
{
    if (!c || !dir || !dir[0])
        return OKV_EINVAL;
    bk b;
    memset(&b, 0, sizeof b);
    b.c = c;
    b.dir = dir;
    okv_backup_options defaults = OKV_BACKUP_OPTIONS_INIT;
    b.o = opts ? *opts : defaults;
    if (b.o.fence_ms <= 0)
        b.o.fence_ms = defaults.fence_ms;
    if (b.o.timeout_ms <= 0)
        b.o.timeout_ms = defaults.timeout_ms;
    if (b.o.fence_ms > 600000)
        return client_fail(c, OKV_EINVAL, "backup: the fence lifetime is at most 600000 ms");
    if (getrandom(&b.fence_id, sizeof b.fence_id, 0) != (ssize_t)sizeof b.fence_id)
        b.fence_id = (uint64_t)wall_ms() * 2654435761u;
    b.fence_id |= 1;
    b.m.fence_id = b.fence_id;
    int rc = prepare_dir(&b);
    if (!rc)
        rc = load_tables(&b);
    if (rc)
        return rc;
    b.fenced_at = mono_ms();
    b.m.created_ms = (uint64_t)wall_ms();
    /* Cuts end well inside the fence's life: a quarter is left for the
     * clocks of the leaders that judge its expiry and for the last cut's
     * own round trip. */
    int64_t cut_deadline = b.fenced_at + (int64_t)b.o.fence_ms * 3 / 4;
    int64_t deadline = b.fenced_at + b.o.timeout_ms;
    if (cut_deadline > deadline)
        cut_deadline = deadline;
    size_t raised = 0;
    for (size_t t = 0; t < b.m.ntables && !rc; t++)
        for (uint32_t p = 0; p < b.m.tables[t].partitions && !rc; p++, raised++)
            if ((rc = fence(&b, b.m.tables[t].name, p, 1)))
                client_fail(c, rc, "backup: raising the fence on %s/%u: %s", b.m.tables[t].name,
                            p, okv_errmsg(c));
    for (size_t t = 0; t < b.m.ntables && !rc; t++)
        for (uint32_t p = 0; p < b.m.tables[t].partitions && !rc; p++)
            rc = cut_one(&b, &b.m.tables[t], p, cut_deadline);
    if (!rc && mono_ms() > cut_deadline)
        rc = client_fail(c, OKV_ETIMEDOUT, "backup: the cuts took %lld ms, too close to the "
                         "fences' lifetime (%d ms) to be sure every fence still stood; take it "
                         "again with a longer fence",
                         (long long)(mono_ms() - b.fenced_at), b.o.fence_ms);
    /* Lift what was raised, also after a failure (they would expire). */
    char keep[OKV_ERRMSG_MAX];
    snprintf(keep, sizeof keep, "%s", okv_errmsg(c));
    size_t n = 0;
    for (size_t t = 0; t < b.m.ntables; t++)
        for (uint32_t p = 0; p < b.m.tables[t].partitions && n < raised; p++, n++)
            fence(&b, b.m.tables[t].name, p, 0);
    if (rc)
        client_fail(c, rc, "%s", keep);
    else
        rc = write_manifest(&b);
    backup_manifest_clear(&b.m);
    return rc;
}
