#include "committer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "keycodec.h"
#include "log.h"

/* A batch stops growing at this many writes or bytes so that one sync never
 * holds a huge batch (and its callers) hostage. */
#define BATCH_MAX_OPS 4096
#define BATCH_MAX_BYTES (16u * 1024u * 1024u)

/* Open-addressing set of the keys staged in the current batch, to cut the
 * batch before a second write to the same key (invariant 2). */
#define KEYSET_SLOTS 8192   /* power of two, > 2 * BATCH_MAX_OPS */

struct committer {
    kvstore *kv;
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
    engine_batch *batch;
    const commit_op *keyset[KEYSET_SLOTS];
    uint64_t keyhash[KEYSET_SLOTS];
};

static uint64_t op_key_hash(const commit_op *op)
{
    /* Table and partition are functions of (table, key), so key + table id suffice. */
    return okv_hash64(op->w.key, op->w.key_len) ^ ((uint64_t)op->w.table->id * 0x9e3779b97f4a7c15ULL);
}

static int same_key(const commit_op *a, const commit_op *b)
{
    return a->w.table == b->w.table && a->w.key_len == b->w.key_len &&
           memcmp(a->w.key, b->w.key, a->w.key_len) == 0;
}

/* Returns 1 if op's key is already in the set, else adds it and returns 0. */
static int keyset_add(committer *c, const commit_op *op)
{
    uint64_t h = op_key_hash(op);
    size_t i = (size_t)h & (KEYSET_SLOTS - 1);
    while (c->keyset[i]) {
        if (c->keyhash[i] == h && same_key(c->keyset[i], op))
            return 1;
        i = (i + 1) & (KEYSET_SLOTS - 1);
    }
    c->keyset[i] = op;
    c->keyhash[i] = h;
    return 0;
}

static void finish(commit_op *op, int code)
{
    op->code = code;
    op->next = NULL;
    op->done(op);
}

/* Writes the staged batch and completes its ops: `staged` is the list of ops
 * that were staged successfully (ops that failed staging were completed at
 * once — they changed nothing, so they need no sync). */
static void flush(committer *c, commit_op *staged)
{
    okv_error err;
    okv_error_clear(&err);
    int rc = kvstore_commit(c->kv, c->batch, &err);
    if (rc) {
        c->poisoned = 1;
        snprintf(c->poison_msg, sizeof c->poison_msg,
                 "a synced write failed earlier (%s); this node accepts no writes until "
                 "it is restarted",
                 err.msg);
        OKV_ERROR("synced batch write failed: %s: %s; refusing further writes",
                  okv_strerror(rc), err.msg);
    } else if (engine_batch_count(c->batch)) {
        atomic_fetch_add(&c->syncs, 1);
    }
    if (!rc) {
        /* Counted before anyone is answered, so a status call that follows
         * an acknowledged write always sees it. */
        size_t n = 0;
        for (commit_op *op = staged; op; op = op->next)
            n++;
        atomic_fetch_add(&c->writes, n);
    }
    commit_op *last = NULL;
    for (commit_op *op = staged; op; op = op->next) {
        op->code = rc ? OKV_EUNKNOWN : OKV_OK;
        if (rc)
            okv_error_set(&op->err, OKV_EUNKNOWN,
                          "storage failed while making the write durable: %.400s", err.msg);
        last = op;
    }
    if (staged) {
        pthread_mutex_lock(&c->done_mu);
        if (c->done_tail)
            c->done_tail->next = staged;
        else
            c->done_head = staged;
        c->done_tail = last;
        pthread_cond_signal(&c->done_cv);
        pthread_mutex_unlock(&c->done_mu);
    }
    engine_batch_clear(c->batch);
    memset(c->keyset, 0, sizeof c->keyset);
}

/* Stages and commits everything in `list`, cutting batches at the limits and
 * before repeated keys. */
static void process(committer *c, commit_op *list)
{
    commit_op *staged = NULL, **staged_tail = &staged;
    size_t ops = 0, bytes = 0;
    while (list) {
        commit_op *op = list;
        if (c->poisoned) {
            list = op->next;
            okv_error_set(&op->err, OKV_EUNAVAILABLE, "%.*s", OKV_ERRMSG_MAX - 1, c->poison_msg);
            finish(op, OKV_EUNAVAILABLE);
            continue;
        }
        if (ops == BATCH_MAX_OPS || bytes > BATCH_MAX_BYTES || keyset_add(c, op)) {
            flush(c, staged);
            staged = NULL;
            staged_tail = &staged;
            ops = bytes = 0;
            continue;   /* retry op against the fresh batch */
        }
        list = op->next;
        okv_error_clear(&op->err);
        int rc = kvstore_stage(c->kv, c->batch, &op->w, &op->err);
        if (rc) {
            finish(op, rc);
            continue;
        }
        op->next = NULL;
        *staged_tail = op;
        staged_tail = &op->next;
        ops++;
        bytes += op->w.key_len + op->w.value_len + 32;
    }
    if (staged)
        flush(c, staged);
    else
        memset(c->keyset, 0, sizeof c->keyset);
}

/* Answers durable (or failed) writes in the order they were committed. */
static void *completer_main(void *arg)
{
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

int committer_new(committer **out, kvstore *kv, okv_error *err)
{
    *out = NULL;
    committer *c = calloc(1, sizeof *c);
    if (!c || !(c->batch = engine_batch_new())) {
        free(c);
        return okv_error_set(err, OKV_ENOMEM, "out of memory starting the committer");
    }
    c->kv = kv;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_mutex_init(&c->done_mu, NULL);
    pthread_cond_init(&c->done_cv, NULL);
    if (pthread_create(&c->completer, NULL, completer_main, c) != 0) {
        engine_batch_free(c->batch);
        free(c);
        return okv_error_set(err, OKV_EINTERNAL, "cannot start the completer thread");
    }
    if (pthread_create(&c->thread, NULL, committer_main, c) != 0) {
        pthread_mutex_lock(&c->done_mu);
        c->done_stopping = 1;
        pthread_cond_signal(&c->done_cv);
        pthread_mutex_unlock(&c->done_mu);
        pthread_join(c->completer, NULL);
        engine_batch_free(c->batch);
        free(c);
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
    engine_batch_free(c->batch);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}
