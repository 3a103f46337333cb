/*
 * workload_append.c — list-append (Jepsen's Elle workload): transactions of
 * appends and reads over a few keys spread across partitions, so that the
 * checker can infer every key's version order from the lists read and look
 * for cycles in the transactions' dependency graph (G0 .. G2, realtime;
 * jepsen/checker/append_check.h).
 *
 * Keys. --append-keys N slots (default 8); slot s lives in partition
 * s mod P of table accounts (P from a node's status; the setup prints the
 * placement), so a transaction over 2-4 slots spans 2-4 partitions: two-
 * phase commit, with either partition as coordinator. A slot holds one key
 * at a time: after --appends-per-key appends (default 64) it moves on to a
 * fresh key, as Elle's generator does, so lists (and reads) stay short.
 * Key ids are integers: key k belongs to slot k mod N, and its name is
 * "la<k>.<j>" with the smallest j whose partition (the servers' hash,
 * common/hash.h) is the slot's. No '/', so the whole name is the partition
 * key.
 *
 * A list is stored as its integers in decimal separated by ',' ("3,7,12");
 * an absent key is the empty list. Values are unique across the run (one
 * counter), so within a key too, and increase.
 *
 * One op is one transaction, f "txn", value the micro-ops in order:
 * ["append", k, v] and ["r", k, null] (EDN [:append k v], [:r k nil]);
 * the ok completion fills each read with the list it saw. Shapes, by
 * chance:
 *   3 in 10  [r A] [append B], A and B in different partitions: the shape
 *            of write skew (two of these, crossed, both commit if PREPARE
 *            takes no shared lock on what a transaction only read:
 *            planted bug tpc.locks.skip_shared);
 *   1 in 10  [r A] alone: one linearizable okv_get, no transaction (a read
 *            of one key needs no validation); the read that a stale
 *            replica or an ignored intent spoils first (kv.read.ignore_intents);
 *   6 in 10  1-4 micro-ops on random slots, each an append or a read.
 * Everything else goes through okv_tx_*: a read is okv_tx_get, an append
 * okv_tx_get + okv_tx_put of the extended list (a key read twice returns
 * the first answer or the transaction's own writes); the commit applies
 * only if every key read is unchanged.
 *
 * Outcomes (as the bank's transfers, docs/jepsen.md): committed -> ok;
 * ECONDITION, ECONFLICT, ETIMEDOUT, EUNAVAILABLE, ENOTLEADER -> fail
 * (nothing applied); EUNKNOWN -> settled at once with okv_tx_status, whose
 * final answer is recorded (committed -> ok, aborted -> fail; anything
 * else stays info), so a database that says "aborted" and commits anyway
 * shows as an aborted read (G1a: planted tpc.prepare.ignore_tombstone);
 * anything else -> info. A get that
 * fails before the commit, or a commit of a transaction that only read,
 * has no effect: fail. A stored value that is not such a list is recorded
 * as a string in the read (the checker's bad-value); an append to it fails.
 *
 * Final phase: every key ever used is read once more (one okv_get each,
 * retried), split over the threads, so an acknowledged append that never
 * became visible is seen missing (lost-append).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "runner.h"

#define LA_TABLE "accounts"
#define LA_MAX_MOPS 4
#define LA_FINAL_ATTEMPTS 5
#define LA_FINAL_PAUSE_MS 200
/* Bound on a stored list's text: appends-per-key values of up to 20 digits. */
#define LA_MAX_LIST (LA_MAX_APPENDS_PER_KEY + 2 * LA_MAX_MOPS)

typedef struct la_state {
    pthread_mutex_t mu;
    int slots;
    int per_key;
    uint32_t partitions;           /* 0: unknown, keys are not placed */
    int64_t key_of_slot[LA_MAX_SLOTS];
    int appends_in_key[LA_MAX_SLOTS];
    int64_t next_value;
} la_state;

typedef struct la_mop {
    int append;
    int64_t key;
    int64_t value;                 /* append */
    jv *read;                      /* read: what it saw, NULL until then */
} la_mop;

static la_state *state_of(jclient *cl) { return runner_workload_state(cl->r); }

/* Key k's name (see the top): "la<k>.<j>", the first j in the slot's
 * partition. */
static size_t key_name(const la_state *st, int64_t k, char *buf, size_t size)
{
    uint32_t want = st->partitions ? (uint32_t)(k % st->slots) % st->partitions : 0;
    for (int j = 0;; j++) {
        size_t len = (size_t)snprintf(buf, size, "la%" PRId64 ".%d", k, j);
        if (!st->partitions || okv_hash64(buf, len) % st->partitions == want || j > 10000)
            return len;
    }
}

static void *la_state_new(const run_config *cfg)
{
    la_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    pthread_mutex_init(&st->mu, NULL);
    st->slots = cfg->append_keys;
    st->per_key = cfg->appends_per_key;
    for (int s = 0; s < st->slots; s++)
        st->key_of_slot[s] = s;
    st->next_value = 1;
    return st;
}

static void la_state_free(void *p)
{
    la_state *st = p;
    if (!st)
        return;
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* The current key of slot s; with claim_value, also a fresh value to append
 * to it, moving the slot to a fresh key once it had per_key appends. */
static int64_t slot_key(la_state *st, int s, int64_t *claim_value)
{
    pthread_mutex_lock(&st->mu);
    int64_t k = st->key_of_slot[s];
    if (claim_value) {
        *claim_value = st->next_value++;
        if (++st->appends_in_key[s] >= st->per_key) {
            st->key_of_slot[s] += st->slots;
            st->appends_in_key[s] = 0;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return k;
}

/* ---- the list encoding ---------------------------------------------------- */

/* "3,7,12" -> [3, 7, 12]; "" -> []. NULL if it is not such a list (digits
 * only, one ',' between numbers, at most LA_MAX_LIST numbers). */
static jv *list_decode(const void *data, size_t len)
{
    const char *p = data, *end = p + len;
    jv *l = jv_list();
    while (p < end) {
        int64_t x = 0;
        const char *start = p;
        while (p < end && *p >= '0' && *p <= '9' && p - start < 18)
            x = x * 10 + (*p++ - '0');
        if (p == start || l->n >= LA_MAX_LIST || (p < end && *p != ',') ||
            (p < end && p + 1 == end)) {
            jv_free(l);
            return NULL;
        }
        jv_push(l, jv_int(x));
        if (p < end)
            p++;
    }
    return l;
}

/* l with v appended, encoded into a malloc'd buffer. */
static char *list_encode_append(const jv *l, int64_t v, size_t *len)
{
    size_t cap = (l->n + 1) * 21 + 1, used = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    for (size_t i = 0; i < l->n; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%" PRId64 ",", l->items[i]->i);
    used += (size_t)snprintf(buf + used, cap - used, "%" PRId64, v);
    *len = used;
    return buf;
}

/* A value that is not a list, as the checker's bad-value string. */
static jv *odd_value(const void *data, size_t len)
{
    char buf[96];
    int n = (int)(len < 40 ? len : 40);
    snprintf(buf, sizeof buf, "not a list (%zu bytes): %.*s", len, n, (const char *)data);
    return jv_str(buf);
}

/* ---- one transaction ------------------------------------------------------ */

static jv *mops_value(const la_mop *m, size_t n, int with_reads)
{
    jv *v = jv_list();
    for (size_t i = 0; i < n; i++) {
        jv *x = jv_pair(jv_kw(m[i].append ? "append" : "r"), jv_int(m[i].key));
        if (m[i].append)
            jv_push(x, jv_int(m[i].value));
        else
            jv_push(x, with_reads && m[i].read ? jv_copy(m[i].read) : jv_null());
        jv_push(v, x);
    }
    return v;
}

static hist_type commit_outcome(int rc, int wrote)
{
    switch (rc) {
    case OKV_OK: return HIST_OK;
    case OKV_ECONDITION:
    case OKV_ECONFLICT:
    case OKV_EUNAVAILABLE:
    case OKV_ETIMEDOUT:
    case OKV_ENOTLEADER: return HIST_FAIL;
    default: return wrote ? HIST_INFO : HIST_FAIL;   /* a check has no effect */
    }
}

/* One get through t (or, t NULL, a plain linearizable okv_get): *out the
 * list (or the bad-value string, *bad = 1). OKV_OK or the error. */
static int get_list(jclient *cl, okv_tx *t, int64_t k, jv **out, int *bad)
{
    char name[64];
    size_t len = key_name(state_of(cl), k, name, sizeof name);
    int timeout = runner_config(cl->r)->op_timeout_ms;
    okv_value *v = NULL;
    int rc = t ? okv_tx_get(t, LA_TABLE, name, len, &v, timeout)
               : okv_get(cl->c, LA_TABLE, name, len, &v, timeout);
    *bad = 0;
    if (rc == OKV_ENOTFOUND) {
        *out = jv_list();
        return OKV_OK;
    }
    if (rc != OKV_OK)
        return rc;
    jv *l = list_decode(okv_value_data(v), okv_value_len(v));
    if (!l) {
        l = odd_value(okv_value_data(v), okv_value_len(v));
        *bad = 1;
    }
    okv_value_free(v);
    *out = l;
    return OKV_OK;
}

/* An unknown commit asked about at once. Across partitions the answer is
 * final (the coordinator decides it aborted if it was not decided), so the
 * history records what the database claims and the checker holds it to
 * that. *rc: the status call's code, for the error text. */
static hist_type settle(jclient *cl, okv_tx *t, uint64_t txn_id, int *rc)
{
    okv_txn_outcome so;
    int src = okv_tx_status(t, txn_id, &so, runner_config(cl->r)->op_timeout_ms);
    switch (src) {
    case OKV_OK: *rc = OKV_OK; return HIST_OK;
    case OKV_ECONFLICT:
    case OKV_ECONDITION: *rc = src; return HIST_FAIL;
    default: return HIST_INFO;   /* not decided yet, forgotten, or unreachable */
    }
}

/* Runs the micro-ops as one interactive transaction; returns the history
 * type and fills err for fail / info. */
static hist_type run_tx(jclient *cl, la_mop *m, size_t n, char *err, size_t errsize)
{
    okv_tx *t = NULL;
    int rc = okv_tx_begin(cl->c, &t), wrote = 0;
    for (size_t i = 0; rc == OKV_OK && i < n; i++) {
        jv *l = NULL;
        int bad;
        char name[64];
        size_t len = key_name(state_of(cl), m[i].key, name, sizeof name);
        rc = get_list(cl, t, m[i].key, &l, &bad);
        if (rc != OKV_OK)
            break;
        if (!m[i].append) {
            m[i].read = l;
            continue;
        }
        if (bad) {
            jv_free(l);
            okv_tx_free(t);
            snprintf(err, errsize, "key %" PRId64 " (%s) does not hold a list; append refused",
                     m[i].key, name);
            return HIST_FAIL;
        }
        size_t vlen;
        char *val = list_encode_append(l, m[i].value, &vlen);
        rc = okv_tx_put(t, LA_TABLE, name, len, val, vlen);
        wrote = 1;
        free(val);
        jv_free(l);
    }
    hist_type ty = HIST_FAIL;   /* a get that failed: nothing was sent to commit */
    if (rc == OKV_OK) {
        okv_txn_outcome o;
        rc = okv_tx_commit(t, &o, runner_config(cl->r)->op_timeout_ms);
        ty = commit_outcome(rc, wrote);
        if (rc == OKV_EUNKNOWN && wrote && o.txn_id)
            ty = settle(cl, t, o.txn_id, &rc);
    }
    if (ty != HIST_OK)
        client_error(cl, rc, err, errsize);
    okv_tx_free(t);
    return ty;
}

/* Draws the op's micro-ops (see the top for the shapes). Returns how many;
 * *plain = 1 for a lone read done with okv_get. */
static size_t draw(jclient *cl, la_mop *m, int *plain)
{
    la_state *st = state_of(cl);
    uint64_t shape = client_rand_below(cl, 10);
    memset(m, 0, LA_MAX_MOPS * sizeof *m);
    *plain = 0;
    if (shape < 3 && st->slots > 1) {
        int a = (int)client_rand_below(cl, (uint64_t)st->slots);
        int b = (a + 1 + (int)client_rand_below(cl, (uint64_t)st->slots - 1)) % st->slots;
        m[0].key = slot_key(st, a, NULL);
        m[1].append = 1;
        m[1].key = slot_key(st, b, &m[1].value);
        return 2;
    }
    if (shape < 4) {
        m[0].key = slot_key(st, (int)client_rand_below(cl, (uint64_t)st->slots), NULL);
        *plain = 1;
        return 1;
    }
    size_t n = 1 + (size_t)client_rand_below(cl, LA_MAX_MOPS);
    for (size_t i = 0; i < n; i++) {
        int s = (int)client_rand_below(cl, (uint64_t)st->slots);
        m[i].append = (int)client_rand_below(cl, 2);
        m[i].key = slot_key(st, s, m[i].append ? &m[i].value : NULL);
    }
    return n;
}

static void free_reads(la_mop *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        jv_free(m[i].read);
        m[i].read = NULL;
    }
}

/* One transaction (or lone okv_get read), recorded. Returns its type. */
static hist_type la_txn(jclient *cl, la_mop *m, size_t n, int plain)
{
    char err[512] = "";
    client_invoke(cl, "txn", mops_value(m, n, 0));
    hist_type ty;
    if (plain) {
        int bad;
        int rc = get_list(cl, NULL, m[0].key, &m[0].read, &bad);
        ty = rc == OKV_OK ? HIST_OK : HIST_FAIL;   /* a read has no effect */
        if (rc != OKV_OK)
            client_error(cl, rc, err, sizeof err);
    } else {
        ty = run_tx(cl, m, n, err, sizeof err);
    }
    client_complete(cl, ty, mops_value(m, n, ty == HIST_OK), ty == HIST_OK ? NULL : err);
    free_reads(m, n);
    return ty;
}

static void la_step(jclient *cl)
{
    la_mop m[LA_MAX_MOPS];
    int plain;
    size_t n = draw(cl, m, &plain);
    la_txn(cl, m, n, plain);
}

/* Every key ever used, read once more (keys k with k mod C == thread). */
static void la_final(jclient *cl)
{
    la_state *st = state_of(cl);
    int c = runner_config(cl->r)->concurrency;
    int64_t max = 0;
    pthread_mutex_lock(&st->mu);
    for (int s = 0; s < st->slots; s++)
        if (st->key_of_slot[s] > max)
            max = st->key_of_slot[s];
    pthread_mutex_unlock(&st->mu);
    for (int64_t k = cl->thread_no; k <= max; k += c) {
        pthread_mutex_lock(&st->mu);
        int used = k <= st->key_of_slot[k % st->slots];
        pthread_mutex_unlock(&st->mu);
        if (!used)
            continue;
        for (int attempt = 0; attempt < LA_FINAL_ATTEMPTS; attempt++) {
            la_mop m = { 0, k, 0, NULL };
            if (la_txn(cl, &m, 1, 1) == HIST_OK)
                break;
            sleep_ms(LA_FINAL_PAUSE_MS);
        }
    }
}

/* ---- setup: where the slots lie -------------------------------------------- */

static char focus[LA_MAX_SLOTS * 24];

/* Learns the table's partition count (so each slot gets its partition) and
 * prints the placement. Never fails: unknown, keys are just not placed. */
static int la_setup(jclient *cl)
{
    la_state *st = state_of(cl);
    uint32_t partitions = 0;
    for (int attempt = 0; attempt < 5 && !partitions; attempt++) {
        okv_status *s = NULL;
        if (attempt)
            sleep_ms(200);
        if (okv_status_get(cl->c, &s, runner_config(cl->r)->op_timeout_ms) != OKV_OK)
            continue;
        for (size_t t = 0; t < okv_status_table_count(s); t++)
            if (strcmp(okv_status_table_name(s, t), LA_TABLE) == 0)
                partitions = okv_status_table_partitions(s, t);
        okv_status_free(s);
    }
    st->partitions = partitions;
    size_t used = 0;
    char list[LA_MAX_SLOTS * 32];
    size_t lused = 0;
    for (int s = 0; s < st->slots; s++) {
        char name[64];
        size_t len = key_name(st, s, name, sizeof name);
        used += (size_t)snprintf(focus + used, sizeof focus - used, "%s%s", s ? "," : "", name);
        if (lused < sizeof list)
            lused += (size_t)snprintf(list + lused, sizeof list - lused, "%s%s:%u", s ? " " : "",
                                      name, partitions ? (uint32_t)(okv_hash64(name, len) %
                                                                    partitions) : 0);
    }
    if (partitions)
        printf("okv-jepsen: list-append: %d key slots over the %u partitions of " LA_TABLE
               " (%s), a fresh key every %d appends\n", st->slots, partitions, list, st->per_key);
    else
        printf("okv-jepsen: list-append: warning: cannot learn the partition count of table "
               LA_TABLE "; keys are not placed\n");
    fflush(stdout);
    return 0;
}

/* Leader faults aim at the partition of a random slot (filled by setup,
 * which main.c runs before it asks). */
static const char *la_focus_keys(const run_config *cfg)
{
    (void)cfg;
    return focus[0] ? focus : NULL;
}

const workload workload_append = {
    .name = "list-append",
    .table = LA_TABLE,
    .focus_keys = la_focus_keys,
    .state_new = la_state_new,
    .state_free = la_state_free,
    .setup = la_setup,
    .step = la_step,
    .final = la_final,
};
