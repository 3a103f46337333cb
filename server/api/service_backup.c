/*
 * service_backup.c — orderkv.v1.Admin/BackupFence, BackupCut, BackupRead:
 * the server's half of an online backup (docs/operations.md "Backup and
 * restore"; the client's half is client/client_backup.c).
 *
 * BackupFence proposes a TPC_FENCE entry (tpc.h "The backup fence") to a
 * partition this node leads and answers from its applied outcome.
 *
 * BackupCut asks the raft loop for a cut (raftstore_cut: a RocksDB
 * snapshot at the leader's applied index) and, on the loop thread, checks
 * in that snapshot that
 *   C1. this backup's fence stands (so the cut is past the fence entry,
 *       hence past every write acknowledged before the backup began, and
 *       no PREPARE applied between the fence and the cut), and
 *   C2. no participant record is PREPARED and no coordinator record is
 *       PENDING (every transaction that prepared before the fence has
 *       settled here).
 * Failing C2 answers CONFLICT (ask again: in-flight transactions settle
 * within their deadline); failing C1 answers UNAVAILABLE (a new leader that
 * has not applied the fence yet) or TIMEOUT (the fence expired). A cut
 * that passes becomes a session that BackupRead walks chunk by chunk with
 * the partition snapshot reader (fsm_snapshot.h) in the stream's chunk
 * format (snap_format.h), minus the fence record itself: a restored
 * cluster must not start fenced.
 *
 * Sessions live in a small table; one idle for SESSION_IDLE_MS is dropped
 * (its RocksDB snapshot released) when the next backup call arrives, so a
 * backup tool that died pins old versions only for a while.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "fsm_snapshot.h"
#include "keycodec.h"
#include "node.h"
#include "orderkv.pb-c.h"
#include "snap_format.h"
#include "tpc.h"
#include "tpc_driver.h"

#define MAX_SESSIONS 8
#define SESSION_IDLE_MS 120000u

typedef struct session {
    uint64_t id;                 /* 0: free slot */
    uint64_t group;
    uint64_t used_ms;
    int busy;                    /* a read is using it (another thread must not) */
    engine_snapshot *snap;
    fsm_snapshot_reader *reader;
    int have_next;               /* the reader's record below is not in a chunk yet */
    int cf;
    const uint8_t *k, *v;
    size_t kl, vl;
    snap_chunk last;             /* the chunk sent last (a resend gets it again) */
    uint32_t next_seq;           /* the seq a new chunk gets */
    struct snap_trailer sums;
} session;

struct service_backup {
    pthread_mutex_t mu;
    session s[MAX_SESSIONS];
    uint64_t next_id;
};

static void session_clear(session *s)
{
    fsm_snapshot_reader_free(s->reader);
    engine_snapshot_free(s->snap);
    snap_chunk_free(&s->last);
    memset(s, 0, sizeof *s);
}

/* Drops idle sessions; under mu. */
static void sweep(struct service_backup *b, uint64_t now)
{
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (b->s[i].id && !b->s[i].busy && now > b->s[i].used_ms + SESSION_IDLE_MS)
            session_clear(&b->s[i]);
}

static const catalog_table *find_partition(rpc_call *call, node *n, const char *name,
                                           uint32_t partition)
{
    const catalog_table *t = name ? catalog_find(kvstore_catalog(n->kv), name, strlen(name))
                                  : NULL;
    if (!t || partition >= t->partitions) {
        char msg[200];
        snprintf(msg, sizeof msg, "no partition %u of table '%.64s'", partition,
                 name ? name : "");
        service_reply_error(call, OKV_ENOTFOUND, msg);
        return NULL;
    }
    if (!cluster_holds(&n->map, n->node_id, t->id, partition)) {
        uint64_t reps[CLUSTER_MAX_NODES];
        cluster_replicas(&n->map, t->id, partition, reps);
        service_reply_not_leader(call, n, reps[0]);
        return NULL;
    }
    return t;
}

/* ---- BackupFence ------------------------------------------------------------ */

typedef struct fence_call {
    node *n;
    rpc_call *call;
    char what[100];
    char act[160];    /* for the audit log: a backup starting or ending here */
} fence_call;

static void fence_applied(void *arg, int code, const command_result *r, uint64_t leader)
{
    fence_call *fc = arg;
    char msg[300];
    if (code == OKV_ENOTLEADER) {
        service_audit_action(fc->n, fc->call, fc->act, code, "not the partition's leader");
        service_reply_not_leader(fc->call, fc->n, leader);
    } else if (code) {
        snprintf(msg, sizeof msg, "the fence entry of %s did not apply (%s); retry", fc->what,
                 okv_strerror(code));
        service_audit_action(fc->n, fc->call, fc->act, code, msg);
        service_reply_error(fc->call, code, msg);
    } else if (r->code == OKV_ECONFLICT) {
        snprintf(msg, sizeof msg, "another backup's fence stands on %s: one backup at a time "
                 "(it is lifted when that backup ends, or expires)", fc->what);
        service_audit_action(fc->n, fc->call, fc->act, OKV_ECONFLICT, msg);
        service_reply_error(fc->call, OKV_ECONFLICT, msg);
    } else {
        service_audit_action(fc->n, fc->call, fc->act, OKV_OK, NULL);
        Orderkv__V1__BackupFenceResponse resp = ORDERKV__V1__BACKUP_FENCE_RESPONSE__INIT;
        service_reply_message(fc->call, &resp.base);
    }
    free(fc);
}

static void handle_fence(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    if (service_refused_by_meta(call, n))
        return;
    Orderkv__V1__BackupFenceRequest *m = orderkv__v1__backup_fence_request__unpack(NULL, len, buf);
    if (!m) {
        service_reply_error(call, OKV_EPROTO, "malformed BackupFenceRequest");
        return;
    }
    const catalog_table *t = find_partition(call, n, m->table, m->partition);
    if (t && !m->fence_id) {
        service_reply_error(call, OKV_EINVAL, "a backup fence needs a non-zero fence_id");
        t = NULL;
    }
    if (t) {
        tpc_msg f;
        memset(&f, 0, sizeof f);
        f.kind = TPC_FENCE;
        f.flag = m->up ? 1 : 0;
        f.id.client = m->fence_id;
        f.clock_ms = tpc_wall_ms();   /* the expiry is judged by leaders' clocks */
        f.deadline_ms = m->lifetime_ms;
        f.self.table_id = f.coord.table_id = t->id;
        f.self.partition = f.coord.partition = m->partition;
        size_t ml = tpc_msg_encoded_size(&f), clen = 0;
        uint8_t *enc = malloc(ml);
        uint8_t *cmd = NULL;
        if (enc) {
            tpc_msg_encode(&f, enc);
            cmd = command_tpc_new(CMD_TPC, t->id, m->partition, enc, ml, &clen);
        }
        free(enc);
        fence_call *fc = calloc(1, sizeof *fc);
        if (!cmd || !fc) {
            free(cmd);
            free(fc);
            service_reply_error(call, OKV_ENOMEM, "out of memory");
        } else {
            fc->n = n;
            fc->call = call;
            snprintf(fc->what, sizeof fc->what, "%s/%u", t->name, m->partition);
            snprintf(fc->act, sizeof fc->act, "backup-fence %s %s/%u fence=%016llx",
                     m->up ? "raise" : "lift", t->name, m->partition,
                     (unsigned long long)m->fence_id);
            raftstore_propose_owned(n->rs, fsm_group_id(t->id, m->partition), cmd, clen,
                                    fence_applied, fc);
        }
    }
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

/* ---- BackupCut -------------------------------------------------------------- */

typedef struct cut_call {
    node *n;
    rpc_call *call;
    uint64_t group;
    uint64_t fence_id;
    char what[100];
} cut_call;

/* C1: 0 if fence_id's fence stands in s; else an error code with msg. */
static int check_fence(engine_snapshot *s, uint64_t group, uint64_t fence_id, char *msg,
                       size_t cap, const char *what)
{
    uint8_t k[FSM_TPC_REC_KEY_LEN];
    fsm_tpc_rec_key(k, group, 'F', 0, 0);
    engine_iter *it;
    okv_error err;
    if (engine_iter_new_prefix_at(&it, s, ENGINE_CF_META, k, sizeof k, &err)) {
        snprintf(msg, cap, "%s: %.200s", what, err.msg);
        return OKV_EINTERNAL;
    }
    int rc = OKV_EUNAVAILABLE;
    snprintf(msg, cap, "%s: this backup's fence has not applied on this leader yet; retry", what);
    if (engine_iter_valid(it)) {
        size_t vl;
        const uint8_t *v = (const uint8_t *)engine_iter_value(it, &vl);
        uint64_t id = 0;
        int stands = tpc_fence_active(v, vl, tpc_wall_ms(), &id);
        if (id == fence_id && stands) {
            rc = OKV_OK;
        } else if (id == fence_id) {
            rc = OKV_ETIMEDOUT;
            snprintf(msg, cap, "%s: this backup's fence expired before the partition was cut; "
                     "take the backup again (a longer fence lifetime, or fewer transactions "
                     "in flight)", what);
        }
    }
    engine_iter_free(it);
    return rc;
}

/* C2: how many records of kind ('P' or 'C') are in flight (PREPARED /
 * PENDING) in s. -1 on a read error. */
static long in_flight(engine_snapshot *s, uint64_t group, char kind)
{
    uint8_t k[FSM_TPC_REC_KEY_LEN];
    fsm_tpc_rec_key(k, group, kind, 0, 0);
    engine_iter *it;
    okv_error err;
    if (engine_iter_new_prefix_at(&it, s, ENGINE_CF_META, k, FSM_TPC_REC_PREFIX_LEN, &err))
        return -1;
    long n = 0;
    for (; engine_iter_valid(it); engine_iter_next(it)) {
        size_t vl;
        const uint8_t *v = (const uint8_t *)engine_iter_value(it, &vl);
        tpc_prec p;
        tpc_crec c;
        if (kind == 'P' && tpc_prec_decode(v, vl, &p) == 0 && p.state == TPC_PREPARED)
            n++;
        if (kind == 'C' && tpc_crec_decode(v, vl, &c) == 0 && c.state == TPC_PENDING)
            n++;
    }
    if (engine_iter_status(it, &err))
        n = -1;
    engine_iter_free(it);
    return n;
}

static void reply_cut(cut_call *cc, session *s, uint64_t index, uint64_t term)
{
    struct snap_header h;
    memset(&h, 0, sizeof h);
    h.cluster_id = cc->n->map.cluster_id;
    h.from = cc->n->node_id;
    h.group = cc->group;
    h.term = term;
    h.meta.index = index;
    h.meta.term = term;
    uint64_t reps[CLUSTER_MAX_NODES];
    size_t nr = cluster_replicas(&cc->n->map, (uint32_t)(cc->group >> 32), (uint32_t)cc->group,
                                 reps);
    h.meta.conf.n_voters = (uint32_t)nr;
    for (size_t i = 0; i < nr; i++)
        h.meta.conf.voters[i] = reps[i];
    uint8_t hdr[SNAP_HEADER_MAX];
    size_t hl = snap_header_encode(&h, hdr, sizeof hdr);
    Orderkv__V1__BackupCutResponse resp = ORDERKV__V1__BACKUP_CUT_RESPONSE__INIT;
    resp.session = s->id;
    resp.index = index;
    resp.term = term;
    resp.header.data = hdr;
    resp.header.len = hl;
    service_reply_message(cc->call, &resp.base);
}

static void cut_taken(void *arg, int code, engine_snapshot *snap, uint64_t index, uint64_t term,
                      uint64_t leader)
{
    cut_call *cc = arg;
    struct service_backup *b = cc->n->backup;
    char msg[400];
    if (code == OKV_ENOTLEADER) {
        service_reply_not_leader(cc->call, cc->n, leader);
        goto out;
    }
    if (code) {
        snprintf(msg, sizeof msg, "%s: no cut now (%s); retry", cc->what, okv_strerror(code));
        service_reply_error(cc->call, code, msg);
        goto out;
    }
    int rc = check_fence(snap, cc->group, cc->fence_id, msg, sizeof msg, cc->what);
    long np = rc ? 0 : in_flight(snap, cc->group, 'P');
    long nc = rc ? 0 : in_flight(snap, cc->group, 'C');
    if (!rc && (np < 0 || nc < 0)) {
        rc = OKV_EINTERNAL;
        snprintf(msg, sizeof msg, "%s: reading its 2PC records failed", cc->what);
    } else if (!rc && np + nc > 0) {
        rc = OKV_ECONFLICT;
        snprintf(msg, sizeof msg, "%s: %ld prepared and %ld pending transactions across "
                 "partitions still settling; retry", cc->what, np, nc);
    }
    session *s = NULL;
    okv_error err;
    if (!rc) {
        pthread_mutex_lock(&b->mu);
        sweep(b, node_now_ms());
        for (int i = 0; i < MAX_SESSIONS && !s; i++)
            if (!b->s[i].id)
                s = &b->s[i];
        if (s && fsm_snapshot_reader_new(&s->reader, snap, cc->group, &err) == OKV_OK) {
            s->id = ++b->next_id;
            s->group = cc->group;
            s->snap = snap;
            s->used_ms = node_now_ms();
            s->sums.checksum = SNAP_CHECKSUM_INIT;
            snap = NULL;
            reply_cut(cc, s, index, term);
        } else {
            rc = s ? OKV_EINTERNAL : OKV_EUNAVAILABLE;
            snprintf(msg, sizeof msg, "%s: %.200s", cc->what,
                     s ? err.msg : "too many backup sessions on this node; retry later");
            s = NULL;
        }
        pthread_mutex_unlock(&b->mu);
    }
    if (rc)
        service_reply_error(cc->call, rc, msg);
out:
    engine_snapshot_free(snap);
    free(cc);
}

static void handle_cut(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    if (service_refused_by_meta(call, n))
        return;
    Orderkv__V1__BackupCutRequest *m = orderkv__v1__backup_cut_request__unpack(NULL, len, buf);
    if (!m) {
        service_reply_error(call, OKV_EPROTO, "malformed BackupCutRequest");
        return;
    }
    const catalog_table *t = find_partition(call, n, m->table, m->partition);
    cut_call *cc = t ? calloc(1, sizeof *cc) : NULL;
    if (t && !cc)
        service_reply_error(call, OKV_ENOMEM, "out of memory");
    if (cc) {
        cc->n = n;
        cc->call = call;
        cc->group = fsm_group_id(t->id, m->partition);
        cc->fence_id = m->fence_id;
        snprintf(cc->what, sizeof cc->what, "%s/%u", t->name, m->partition);
        raftstore_cut(n->rs, cc->group, cut_taken, cc);
    }
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

/* ---- BackupRead ------------------------------------------------------------- */

/* 1 for the fence record of s's group, which a backup leaves out. */
static int is_fence(const session *s, int cf, const uint8_t *k, size_t kl)
{
    uint8_t f[FSM_TPC_REC_KEY_LEN];
    fsm_tpc_rec_key(f, s->group, 'F', 0, 0);
    return cf == SNAP_CF_META && kl == sizeof f && memcmp(k, f, kl) == 0;
}

/* Fills s->last with the next chunk; 0 with nrec 0 at the end; -1 with msg. */
static int next_chunk(session *s, char *msg, size_t cap)
{
    okv_error err;
    if (snap_chunk_begin(&s->last, s->next_seq)) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    for (;;) {
        if (!s->have_next) {
            int more = fsm_snapshot_reader_next(s->reader, &s->cf, &s->k, &s->kl, &s->v, &s->vl,
                                                &err);
            if (more < 0) {
                snprintf(msg, cap, "reading the partition: %.300s", err.msg);
                return -1;
            }
            if (more == 0)
                break;
            if (is_fence(s, s->cf, s->k, s->kl))
                continue;
            s->have_next = 1;
        }
        size_t rl = SNAP_RECORD_HDR + s->kl + s->vl;
        if (s->last.nrec > 0 && s->last.len + rl > SNAP_CHUNK_BYTES)
            break;   /* the record opens the next chunk */
        if (snap_chunk_add(&s->last, s->cf, s->k, s->kl, s->v, s->vl)) {
            snprintf(msg, cap, "out of memory");
            return -1;
        }
        s->have_next = 0;
    }
    if (s->last.nrec == 0)
        return 0;
    snap_chunk_seal(&s->last);
    s->sums.checksum = snap_checksum(s->sums.checksum, s->last.buf, s->last.len);
    s->sums.bytes += s->last.len;
    s->sums.records += s->last.nrec;
    s->sums.chunks++;
    s->next_seq++;
    return 0;
}

static void handle_read(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    struct service_backup *b = n->backup;
    Orderkv__V1__BackupReadRequest *m = orderkv__v1__backup_read_request__unpack(NULL, len, buf);
    if (!m) {
        service_reply_error(call, OKV_EPROTO, "malformed BackupReadRequest");
        return;
    }
    session *s = NULL;
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < MAX_SESSIONS && !s; i++)
        if (b->s[i].id && b->s[i].id == m->session && !b->s[i].busy)
            s = &b->s[i];
    if (s)
        s->busy = 1;
    pthread_mutex_unlock(&b->mu);
    if (!s) {
        service_reply_error(call, OKV_ENOTFOUND, "no such backup session on this node (it ended, "
                            "expired or the node restarted): cut the partition again");
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return;
    }
    char msg[400];
    int rc = OKV_OK, done = 0;
    if (m->seq + 1 == s->next_seq && s->last.nrec) {
        /* a resend: the same chunk again */
    } else if (m->seq != s->next_seq) {
        rc = OKV_EINVAL;
        snprintf(msg, sizeof msg, "chunk %u asked, %u expected", m->seq, s->next_seq);
    } else if (next_chunk(s, msg, sizeof msg)) {
        rc = OKV_EINTERNAL;
    } else {
        done = s->last.nrec == 0;
    }
    Orderkv__V1__BackupReadResponse resp = ORDERKV__V1__BACKUP_READ_RESPONSE__INIT;
    uint8_t tb[SNAP_TRAILER_LEN];
    if (!rc && done) {
        snap_trailer_encode(&s->sums, tb);
        resp.trailer.data = tb;
        resp.trailer.len = sizeof tb;
        resp.done = 1;
    } else if (!rc) {
        resp.chunk.data = s->last.buf;
        resp.chunk.len = s->last.len;
    }
    if (rc)
        service_reply_error(call, rc, msg);
    else
        service_reply_message(call, &resp.base);
    pthread_mutex_lock(&b->mu);
    s->busy = 0;
    s->used_ms = node_now_ms();
    if (done || rc)
        session_clear(s);
    pthread_mutex_unlock(&b->mu);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

int service_backup_register(node *n, okv_error *err)
{
    struct service_backup *b = calloc(1, sizeof *b);
    if (!b)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    pthread_mutex_init(&b->mu, NULL);
    n->backup = b;
    int rc = rpc_server_add_method(n->rpc, "/orderkv.v1.Admin/BackupFence", handle_fence, n, err);
    if (!rc)
        rc = rpc_server_add_method(n->rpc, "/orderkv.v1.Admin/BackupCut", handle_cut, n, err);
    if (!rc)
        rc = rpc_server_add_method(n->rpc, "/orderkv.v1.Admin/BackupRead", handle_read, n, err);
    return rc;
}

void service_backup_free(node *n)
{
    struct service_backup *b = n->backup;
    if (!b)
        return;
    for (int i = 0; i < MAX_SESSIONS; i++)
        session_clear(&b->s[i]);
    pthread_mutex_destroy(&b->mu);
    free(b);
    n->backup = NULL;
}
