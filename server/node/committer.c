#include "committer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "log.h"
#include "thread_name.h"

/* A batch stops growing at this many writes or bytes so that one sync never
 * holds a huge batch (and its callers) hostage. */
#define BATCH_MAX_OPS 4096
#define BATCH_MAX_BYTES (16u * 1024u * 1024u)

struct committer {
    kvstore *kv;
    fsm *fsm;                 /* committer thread only */
    pthread_t thread;
    /* Answering callers is handed to a second thread, so the committer
     * starts the next sync while the last batch's replies go out. */
    pthread_t completer;
    pthread_mutex_t done_mu;
    pthread_cond_t done_cv;
    commit_op *done_head, *done_tail;   /* guarded by done_mu */
    int done_stopping;                  /* guarded by done_mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    commit_op *head, *tail;   /* queue, guarded by mu */
    int stopping;             /* guarded by mu */
    int poisoned;             /* committer thread only */
    char poison_msg[OKV_ERRMSG_MAX + 128];
    _Atomic uint64_t writes, syncs;
    uint8_t *cmd;             /* the encoded command being applied */
    size_t cmd_cap;
};

static void finish(commit_op *op, int code)
{
    op->code = code;
    op->next = NULL;
    op->done(op);
}

/* Hands a list of ops with final results to the completer thread, which
 * answers them in this order, after every list handed over before. */
static void complete(committer *c, commit_op *list)
{
    if (!list)
        return;
    commit_op *last = list;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&c->done_mu);
    if (c->done_tail)
        c->done_tail->next = list;
    else
        c->done_head = list;
    c->done_tail = last;
    pthread_cond_signal(&c->done_cv);
    pthread_mutex_unlock(&c->done_mu);
}

static void poison(committer *c, const char *what, int rc, const char *msg)
{
    c->poisoned = 1;
    snprintf(c->poison_msg, sizeof c->poison_msg,
             "%s failed earlier (%s); this node accepts no writes until it is restarted", what,
             msg);
    OKV_ERROR("%s failed: %s: %s; refusing further writes", what, okv_strerror(rc), msg);
}

/* Writes the batch the state machine holds with one sync and completes
 * `staged`, the ops applied into it (invariant 1). */
static void flush(committer *c, commit_op *staged)
{
    okv_error err;
    okv_error_clear(&err);
    int rc = fsm_flush_synced(c->fsm, &err);
    size_t n = 0;
    for (commit_op *op = staged; op; op = op->next) {
        op->code = rc ? OKV_EUNKNOWN : OKV_OK;
        if (rc)
            okv_error_set(&op->err, OKV_EUNKNOWN,
                          "storage failed while making the write durable: %.400s", err.msg);
        n++;
    }
    if (rc) {
        poison(c, "a synced batch write", rc, err.msg);
    } else {
        /* Counted before anyone is answered, so a status call that follows
         * an acknowledged write always sees it. */
        atomic_fetch_add(&c->syncs, 1);
        atomic_fetch_add(&c->writes, n);
    }
    complete(c, staged);
}

/* The command's partition must exist: fsm_apply would write any. */
static int in_catalog(const committer *c, const command *cmd)
{
    const catalog *cat = kvstore_catalog(c->kv);
    for (size_t i = 0; i < cat->count; i++)
        if (cat->tables[i].id == cmd->table_id)
            return cmd->partition < cat->tables[i].partitions;
    return 0;
}

/* Encodes op's command and decodes it back as fsm_apply will, so a
 * malformed one is refused (OKV_EINVAL) before the state machine stages
 * anything. */
static int encode(committer *c, commit_op *op, size_t *len)
{
    const command *cmd = &op->cmd;
    if (!in_catalog(c, cmd))
        return okv_error_set(&op->err, OKV_EINVAL, "no partition %u in table %u",
                             cmd->partition, cmd->table_id);
    if (cmd->key_len > OKV_MAX_KEY_LEN || cmd->value_len > OKV_MAX_VALUE_LEN)
        return okv_error_set(&op->err, OKV_EINVAL, "key or value over the limit");
    *len = command_encoded_size(cmd);
    if (*len > c->cmd_cap) {
        uint8_t *nb = realloc(c->cmd, *len);
        if (!nb)
            return okv_error_set(&op->err, OKV_ENOMEM, "out of memory encoding a write");
        c->cmd = nb;
        c->cmd_cap = *len;
    }
    command_encode(cmd, c->cmd);
    command check;
    okv_error derr;
    okv_error_clear(&derr);
    if (command_decode(c->cmd, *len, &check, &derr))
        return okv_error_set(&op->err, OKV_EINVAL, "malformed write: %s", derr.msg);
    return OKV_OK;
}

/* Applies op as the next entry of its partition's group. OKV_OK: applied
 * into the batch, op->result set. Anything else: the batch may hold part
 * of op, and op->err says why. */
static int apply(committer *c, commit_op *op, size_t len)
{
    uint64_t group = fsm_group_id(op->cmd.table_id, op->cmd.partition);
    uint64_t applied = 0;
    int rc = fsm_applied_index(c->fsm, group, &applied, &op->err);
    if (rc == OKV_OK)
        rc = fsm_apply(c->fsm, group, applied + 1, c->cmd, len, &op->result, &op->err);
    return rc;
}

/* Applies everything in `list` and commits it, cutting batches at the
 * limits. */
static void process(committer *c, commit_op *list)
{
    commit_op *staged = NULL, **staged_tail = &staged;
    size_t ops = 0, bytes = 0;
    while (list) {
        commit_op *op = list;
        list = op->next;
        op->next = NULL;
        okv_error_clear(&op->err);
        if (c->poisoned) {
            okv_error_set(&op->err, OKV_EUNAVAILABLE, "%.*s", OKV_ERRMSG_MAX - 1, c->poison_msg);
            finish(op, OKV_EUNAVAILABLE);
            continue;
        }
        if (ops == BATCH_MAX_OPS || bytes > BATCH_MAX_BYTES) {
            flush(c, staged);
            staged = NULL;
            staged_tail = &staged;
            ops = bytes = 0;
        }
        size_t len = 0;
        int rc = encode(c, op, &len);
        if (rc) {
            finish(op, rc);   /* nothing staged: the batch goes on */
            continue;
        }
        rc = apply(c, op, len);
        *staged_tail = op;
        staged_tail = &op->next;
        ops++;
        bytes += len;
        if (rc) {
            /* The batch is never written, so none of its ops applied. */
            op->code = rc;
            poison(c, "applying a write", rc, op->err.msg);
            for (commit_op *s = staged; s != op; s = s->next) {
                s->code = OKV_EUNAVAILABLE;
                okv_error_set(&s->err, OKV_EUNAVAILABLE, "%.*s", OKV_ERRMSG_MAX - 1,
                              c->poison_msg);
            }
            complete(c, staged);
            staged = NULL;
            staged_tail = &staged;
            ops = bytes = 0;
        }
    }
    if (staged)
        flush(c, staged);
}

/* Answers durable (or failed) writes in the order they were committed. */
static void *completer_main(void *arg)
{
    okv_thread_name("okv-completer");
    committer *c = arg;
    pthread_mutex_lock(&c->done_mu);
    for (;;) {
        while (!c->done_head && !c->done_stopping)
            pthread_cond_wait(&c->done_cv, &c->done_mu);
        if (!c->done_head)
            break;
        commit_op *list = c->done_head;
        c->done_head = c->done_tail = NULL;
        pthread_mutex_unlock(&c->done_mu);
        while (list) {
            commit_op *next = list->next;
            finish(list, list->code);
            list = next;
        }
        pthread_mutex_lock(&c->done_mu);
    }
    pthread_mutex_unlock(&c->done_mu);
    return NULL;
}

static void *committer_main(void *arg)
{
    okv_thread_name("okv-committer");
    committer *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->head && !c->stopping)
            pthread_cond_wait(&c->cv, &c->mu);
        if (!c->head && c->stopping)
            break;
        commit_op *list = c->head;
        c->head = c->tail = NULL;
        pthread_mutex_unlock(&c->mu);
        process(c, list);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void free_parts(committer *c)
{
    fsm_free(c->fsm);   /* drops a poisoned batch that was never written */
    free(c->cmd);
    free(c);
}

int committer_new(committer **out, kvstore *kv, okv_error *err)
{
    *out = NULL;
    int rc = kvstore_migrate_sequences(kv, err);
    if (rc)
        return rc;
    committer *c = calloc(1, sizeof *c);
    if (!c)
        return okv_error_set(err, OKV_ENOMEM, "out of memory starting the committer");
    if ((rc = fsm_new(&c->fsm, kvstore_engine(kv), err))) {
        free_parts(c);
        return rc;
    }
    c->kv = kv;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_mutex_init(&c->done_mu, NULL);
    pthread_cond_init(&c->done_cv, NULL);
    if (pthread_create(&c->completer, NULL, completer_main, c) != 0) {
        free_parts(c);
        return okv_error_set(err, OKV_EINTERNAL, "cannot start the completer thread");
    }
    if (pthread_create(&c->thread, NULL, committer_main, c) != 0) {
        pthread_mutex_lock(&c->done_mu);
        c->done_stopping = 1;
        pthread_cond_signal(&c->done_cv);
        pthread_mutex_unlock(&c->done_mu);
        pthread_join(c->completer, NULL);
        free_parts(c);
        return okv_error_set(err, OKV_EINTERNAL, "cannot start the committer thread");
    }
    *out = c;
    return OKV_OK;
}

void committer_submit(committer *c, commit_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        okv_error_set(&op->err, OKV_EUNAVAILABLE, "node is shutting down");
        finish(op, OKV_EUNAVAILABLE);
        return;
    }
    if (c->tail)
        c->tail->next = op;
    else
        c->head = op;
    c->tail = op;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void committer_get_stats(committer *c, committer_stats *out)
{
    out->writes = atomic_load(&c->writes);
    out->syncs = atomic_load(&c->syncs);
}

void committer_free(committer *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    /* The committer is done: every op it took is in the done queue. */
    pthread_mutex_lock(&c->done_mu);
    c->done_stopping = 1;
    pthread_cond_signal(&c->done_cv);
    pthread_mutex_unlock(&c->done_mu);
    pthread_join(c->completer, NULL);
    pthread_mutex_destroy(&c->done_mu);
    pthread_cond_destroy(&c->done_cv);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free_parts(c);
}
