/*
 * append_txns.c — a list-append history as transactions, and what the
 * reads say on their own (append_int.h): each value's writer, each key's
 * version order, and the anomalies a single read shows.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "append_int.h"

#define WL "list-append"

static int is_name(const history_value *v, const char *name)
{
    return v->kind == HV_OTHER && v->s && v->slen == strlen(name) && memcmp(v->s, name, v->slen) == 0;
}

size_t ap_list_len(const history_value *v) { return v && v->kind == HV_LIST ? v->n : 0; }

uint32_t ap_writer(const ap *a, uint32_t key_slot, int64_t value)
{
    uint64_t *w = imap_get(&a->keys[key_slot].writer, value);
    return w ? (uint32_t)(*w - 1) : AP_NONE;
}

static int key_slot_of(ap *a, int64_t key, uint32_t *out)
{
    uint64_t *s = imap_get(&a->key_slot, key);
    if (s) {
        *out = (uint32_t)*s;
        return 0;
    }
    if (a->nkeys % 64 == 0) {
        ap_key *k = realloc(a->keys, (a->nkeys + 64) * sizeof *k);
        if (!k)
            return OKV_ENOMEM;
        a->keys = k;
    }
    ap_key *k = &a->keys[a->nkeys];
    memset(k, 0, sizeof *k);
    k->key = key;
    imap_init(&k->writer);
    imap_init(&k->pos);
    k->last_read_mop = AP_NONE;
    if (imap_put(&a->key_slot, key, a->nkeys))
        return OKV_ENOMEM;
    *out = a->nkeys++;
    return 0;
}

/* One micro-op of the invoke at op; appended to a->mops. */
static int load_mop(ap *a, const history_op *op, const history_value *m, uint32_t txn,
                    okv_error *err)
{
    if (m->kind != HV_LIST || m->n != 3 || m->items[1].kind != HV_INT)
        return history_op_error(err, WL, op, "a micro-op must be [\"append\", key, value] or "
                                "[\"r\", key, null] with an integer key");
    int append = is_name(&m->items[0], "append");
    if (!append && !is_name(&m->items[0], "r"))
        return history_op_error(err, WL, op, "a micro-op's name must be \"append\" or \"r\"");
    if (append && m->items[2].kind != HV_INT)
        return history_op_error(err, WL, op, "an append's value must be an integer");
    if (!append && m->items[2].kind != HV_NULL)
        return history_op_error(err, WL, op, "an invoked read's value must be null");
    if (a->nmops % 1024 == 0) {
        ap_mop *mm = realloc(a->mops, ((size_t)a->nmops + 1024) * sizeof *mm);
        if (!mm)
            return OKV_ENOMEM;
        a->mops = mm;
    }
    ap_mop *x = &a->mops[a->nmops];
    memset(x, 0, sizeof *x);
    x->append = (uint8_t)append;
    x->key = m->items[1].i;
    x->value = append ? m->items[2].i : 0;
    x->txn = txn;
    int rc = key_slot_of(a, x->key, &x->key_slot);
    if (rc)
        return rc;
    if (append) {
        ap_key *k = &a->keys[x->key_slot];
        uint64_t *w = imap_get(&k->writer, x->value);
        if (w)
            return history_op_error(err, WL, op, "value %" PRId64 " is appended to key %" PRId64
                                    " twice (also by the op at index %" PRId64 "); values must "
                                    "be unique per key", x->value, x->key,
                                    a->h->ops[a->txns[a->mops[*w - 1].txn].inv].index);
        if (imap_put(&k->writer, x->value, (uint64_t)a->nmops + 1))
            return OKV_ENOMEM;
    }
    a->nmops++;
    return 0;
}

/* The ok completion repeats the invoke's micro-ops with the reads filled. */
static int load_reads(ap *a, const ap_txn *t, const history_op *done, okv_error *err)
{
    const history_value *v = &done->value;
    if (v->kind != HV_LIST || v->n != t->nmops)
        return history_op_error(err, WL, done, "an ok txn must list the invoke's %u micro-ops",
                                t->nmops);
    for (uint32_t i = 0; i < t->nmops; i++) {
        ap_mop *m = &a->mops[t->mop0 + i];
        const history_value *x = &v->items[i];
        if (x->kind != HV_LIST || x->n != 3 || x->items[1].kind != HV_INT ||
            x->items[1].i != m->key || !is_name(&x->items[0], m->append ? "append" : "r") ||
            (m->append && (x->items[2].kind != HV_INT || x->items[2].i != m->value)))
            return history_op_error(err, WL, done, "micro-op %u differs from the invoke's", i);
        if (!m->append && x->items[2].kind == HV_NULL)
            return history_op_error(err, WL, done, "micro-op %u: an ok read must hold the "
                                    "list it read", i);
        if (!m->append)
            m->read = &x->items[2];
    }
    return 0;
}

int ap_load(ap *a, okv_error *err)
{
    const history *h = a->h;
    imap_init(&a->key_slot);
    for (size_t pos = 0; pos < h->n_ops; pos++) {
        const history_op *op = &h->ops[pos];
        if (op->process == HISTORY_NEMESIS || op->type != HISTORY_INVOKE)
            continue;
        if (op->fn != HISTORY_F_TXN)
            return history_op_error(err, WL, op, "every client op must be \"txn\", not \"%s\"",
                                    history_f(h, op));
        if (op->value.kind != HV_LIST)
            return history_op_error(err, WL, op, "a txn's value must be a list of micro-ops");
        if (a->ntxns == UINT32_MAX - 1 || (uint64_t)a->nmops + op->value.n >= UINT32_MAX)
            return history_op_error(err, WL, op, "too many transactions or micro-ops");
        if (a->ntxns % 1024 == 0) {
            ap_txn *t = realloc(a->txns, ((size_t)a->ntxns + 1024) * sizeof *t);
            if (!t)
                return okv_error_set(err, OKV_ENOMEM, "out of memory");
            a->txns = t;
        }
        ap_txn *t = &a->txns[a->ntxns];
        t->inv = pos;
        t->done = op->pair;
        t->type = history_outcome(h, pos);
        t->mop0 = a->nmops;
        t->nmops = (uint32_t)op->value.n;
        t->node = AP_NONE;
        a->ntxns++;
        for (size_t i = 0; i < op->value.n; i++) {
            int rc = load_mop(a, op, &op->value.items[i], a->ntxns - 1, err);
            if (rc)
                return rc == OKV_ENOMEM ? okv_error_set(err, rc, "out of memory") : rc;
        }
        if (t->type == HISTORY_OK) {
            int rc = load_reads(a, t, &h->ops[t->done], err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- what the reads say -------------------------------------------------- */

/* A read whose list is not a list of integers: bad-value, and not used. */
static int bad_value(ap *a, ap_mop *m)
{
    const history_value *v = m->read;
    int bad = v->kind != HV_LIST;
    for (size_t i = 0; !bad && i < v->n; i++)
        bad = v->items[i].kind != HV_INT;
    if (bad && ap_note(a, AP_BAD_VALUE, a->h->ops[a->txns[m->txn].inv].index)) {
        sbuf *b = &a->text[AP_BAD_VALUE];
        char buf[160];
        ap_explain_txn(a, b, m->txn, 1);
        sbuf_printf(b, "    T1 read key %" PRId64 " as %s: not a list of integers\n", m->key,
                    history_value_str(v, buf, sizeof buf));
    }
    return bad;
}

/* Own appends to the key before this read must end its list; sets ext_len. */
static int internal_ok(ap *a, ap_mop *m)
{
    const ap_txn *t = &a->txns[m->txn];
    size_t own = 0, n = m->read->n;
    for (const ap_mop *o = &a->mops[t->mop0]; o < m; o++)
        own += o->append && o->key == m->key;
    int ok = own <= n;
    size_t j = n - (ok ? own : 0);
    for (const ap_mop *o = &a->mops[t->mop0]; ok && o < m; o++)
        if (o->append && o->key == m->key)
            ok = m->read->items[j++].i == o->value;
    m->ext_len = ok ? n - own : n;
    if (!ok && ap_note(a, AP_INTERNAL, a->h->ops[t->inv].index)) {
        ap_explain_txn(a, &a->text[AP_INTERNAL], m->txn, 1);
        sbuf_printf(&a->text[AP_INTERNAL], "    T1 read key %" PRId64 " after appending to it "
                    "itself, but the list does not end with its own %zu append(s)\n", m->key, own);
    }
    return ok;
}

static int has_duplicates(const history_value *v, int *oom)
{
    imap seen;
    imap_init(&seen);
    int dup = 0;
    for (size_t i = 0; i < v->n && !dup && !*oom; i++) {
        if (imap_get(&seen, v->items[i].i))
            dup = 1;
        else if (imap_put(&seen, v->items[i].i, 1))
            *oom = 1;
    }
    imap_free(&seen);
    return dup;
}

/* Pass 1: usable reads, duplicates, internal consistency; the longest read
 * of each key becomes its order. */
static void first_pass(ap *a)
{
    for (uint32_t i = 0; i < a->nmops; i++) {
        ap_mop *m = &a->mops[i];
        if (m->append || !m->read)
            continue;
        a->ok_reads++;
        if (bad_value(a, m)) {
            m->read = NULL;
            continue;
        }
        int64_t inv_index = a->h->ops[a->txns[m->txn].inv].index;
        if (has_duplicates(m->read, &a->oom) && ap_note(a, AP_DUPLICATE, inv_index)) {
            sbuf *b = &a->text[AP_DUPLICATE];
            ap_explain_txn(a, b, m->txn, 1);
            sbuf_printf(b, "    T1 read key %" PRId64 " as ", m->key);
            ap_list_str(b, m->read);
            sbuf_printf(b, ": an element appears twice\n");
        }
        m->internal_ok = (uint8_t)internal_ok(a, m);
        ap_key *k = &a->keys[m->key_slot];
        if (!k->order || m->read->n > k->order->n)
            k->order = m->read;
        size_t inv = a->txns[m->txn].inv;
        if (k->last_read_mop == AP_NONE || inv > k->last_read_inv) {
            k->last_read_inv = inv;
            k->last_read_mop = i;
        }
    }
}

/* Whether w's txn appends to the same key after w (so a read that ends at
 * w's value saw an intermediate state of w's txn). */
static int later_own_append(const ap *a, uint32_t w)
{
    const ap_txn *t = &a->txns[a->mops[w].txn];
    for (uint32_t j = w + 1; j < t->mop0 + t->nmops; j++)
        if (a->mops[j].append && a->mops[j].key == a->mops[w].key)
            return 1;
    return 0;
}

/* Pass 2, for one read: prefix of the order, every element's writer
 * (garbage, aborted, observed), intermediate read. */
static void check_read(ap *a, uint32_t i)
{
    ap_mop *m = &a->mops[i];
    const ap_key *k = &a->keys[m->key_slot];
    const history_value *r = m->read;
    int64_t inv_index = a->h->ops[a->txns[m->txn].inv].index;
    int prefix = 1;
    for (size_t j = 0; j < r->n && prefix; j++)
        prefix = r->items[j].i == k->order->items[j].i;
    if (!prefix) {
        if (ap_note(a, AP_INCOMPATIBLE, inv_index)) {
            sbuf *b = &a->text[AP_INCOMPATIBLE];
            ap_explain_txn(a, b, m->txn, 1);
            sbuf_printf(b, "    T1 read key %" PRId64 " as ", m->key);
            ap_list_str(b, r);
            sbuf_printf(b, ", which is not a prefix of the longest read of it, ");
            ap_list_str(b, k->order);
            sbuf_printf(b, "\n");
        }
        m->internal_ok = 0;   /* no order to place it in: no edges from it */
    }
    uint32_t garbage = AP_NONE, aborted = AP_NONE;
    for (size_t j = 0; j < r->n; j++) {
        uint32_t w = ap_writer(a, m->key_slot, r->items[j].i);
        if (w == AP_NONE) {
            if (garbage == AP_NONE)
                garbage = (uint32_t)j;
            continue;
        }
        a->mops[w].observed = 1;
        if (a->txns[a->mops[w].txn].type == HISTORY_FAIL && aborted == AP_NONE)
            aborted = w;
    }
    if (garbage != AP_NONE && ap_note(a, AP_GARBAGE, inv_index)) {
        sbuf *b = &a->text[AP_GARBAGE];
        ap_explain_txn(a, b, m->txn, 1);
        sbuf_printf(b, "    T1 read key %" PRId64 " as ", m->key);
        ap_list_str(b, r);
        sbuf_printf(b, ": nobody appended %" PRId64 " to it\n", r->items[garbage].i);
    }
    if (aborted != AP_NONE && ap_note(a, AP_G1A, inv_index)) {
        sbuf *b = &a->text[AP_G1A];
        ap_explain_txn(a, b, m->txn, 1);
        ap_explain_txn(a, b, a->mops[aborted].txn, 2);
        sbuf_printf(b, "    T1 read key %" PRId64 " as ", m->key);
        ap_list_str(b, r);
        sbuf_printf(b, ", which holds %" PRId64 ", appended by T2, which failed (aborted read)\n",
                    a->mops[aborted].value);
    }
    if (m->ext_len == 0)
        return;
    uint32_t w = ap_writer(a, m->key_slot, r->items[m->ext_len - 1].i);
    if (w != AP_NONE && a->mops[w].txn != m->txn && later_own_append(a, w) &&
        ap_note(a, AP_G1B, inv_index)) {
        sbuf *b = &a->text[AP_G1B];
        ap_explain_txn(a, b, m->txn, 1);
        ap_explain_txn(a, b, a->mops[w].txn, 2);
        sbuf_printf(b, "    T1 read key %" PRId64 " as ", m->key);
        ap_list_str(b, r);
        sbuf_printf(b, ", ending in %" PRId64 ", but T2 appended more to key %" PRId64
                    " after it (intermediate read)\n", a->mops[w].value, m->key);
    }
}

/* An ok append no read saw, though a read of its key began after it
 * completed. */
static void check_lost(ap *a, uint32_t i)
{
    const ap_mop *m = &a->mops[i];
    const ap_txn *t = &a->txns[m->txn];
    const ap_key *k = &a->keys[m->key_slot];
    if (!m->append || m->observed || t->type != HISTORY_OK || k->last_read_mop == AP_NONE ||
        k->last_read_inv < t->done)
        return;
    if (!ap_note(a, AP_LOST, a->h->ops[t->inv].index))
        return;
    const ap_mop *r = &a->mops[k->last_read_mop];
    sbuf *b = &a->text[AP_LOST];
    ap_explain_txn(a, b, m->txn, 1);
    ap_explain_txn(a, b, r->txn, 2);
    sbuf_printf(b, "    T1 appended %" PRId64 " to key %" PRId64 " and committed; no read ever "
                "saw it, though T2, invoked after T1 completed, read key %" PRId64 " as ",
                m->value, m->key, m->key);
    ap_list_str(b, r->read);
    sbuf_printf(b, "\n");
}

int ap_infer(ap *a)
{
    first_pass(a);
    for (uint32_t s = 0; s < a->nkeys && !a->oom; s++) {
        ap_key *k = &a->keys[s];
        for (size_t j = 0; k->order && j < k->order->n && !a->oom; j++)
            if (!imap_get(&k->pos, k->order->items[j].i) &&
                imap_put(&k->pos, k->order->items[j].i, j + 1))
                a->oom = 1;
    }
    for (uint32_t i = 0; i < a->nmops && !a->oom; i++)
        if (!a->mops[i].append && a->mops[i].read)
            check_read(a, i);
    for (uint32_t i = 0; i < a->nmops; i++)
        check_lost(a, i);
    /* Nodes: committed, and unknown-outcome transactions seen to commit. */
    a->node_txn = malloc(((size_t)a->ntxns + 1) * sizeof *a->node_txn);
    if (!a->node_txn)
        return OKV_ENOMEM;
    for (uint32_t t = 0; t < a->ntxns; t++) {
        ap_txn *x = &a->txns[t];
        int seen = x->type == HISTORY_OK;
        for (uint32_t j = 0; !seen && x->type == HISTORY_INFO && j < x->nmops; j++)
            seen = a->mops[x->mop0 + j].observed;
        if (seen) {
            x->node = a->nnodes;
            a->node_txn[a->nnodes++] = t;
        }
    }
    return a->oom ? OKV_ENOMEM : 0;
}

void ap_free(ap *a)
{
    for (uint32_t s = 0; s < a->nkeys; s++) {
        imap_free(&a->keys[s].writer);
        imap_free(&a->keys[s].pos);
    }
    imap_free(&a->key_slot);
    free(a->keys);
    free(a->mops);
    free(a->txns);
    free(a->node_txn);
    free(a->head);
    free(a->edges);
    for (int c = 0; c < AP_N_CLASSES; c++)
        sbuf_free(&a->text[c]);
}
