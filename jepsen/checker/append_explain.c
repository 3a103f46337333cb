/*
 * append_explain.c — the list-append checker's text: transactions with
 * their micro-ops, the edges between them with the key and values that
 * justify each, and cycles step by step, so a reader can check every claim
 * against history.json without the checker.
 */
#include <inttypes.h>

#include "append_int.h"

/* Lists longer than this are shown as their first and last few elements. */
#define LIST_SHOW 12
#define LIST_ENDS 4

void ap_list_str(sbuf *b, const history_value *v)
{
    if (!v) {
        sbuf_printf(b, "nil");
        return;
    }
    if (v->kind != HV_LIST) {
        char buf[96];
        sbuf_printf(b, "%s", history_value_str(v, buf, sizeof buf));
        return;
    }
    sbuf_printf(b, "[");
    for (size_t i = 0; i < v->n; i++) {
        if (v->n > LIST_SHOW && i == LIST_ENDS) {
            sbuf_printf(b, " ...");
            i = v->n - LIST_ENDS;
        }
        const history_value *x = &v->items[i];
        if (x->kind == HV_INT)
            sbuf_printf(b, "%s%" PRId64, i ? " " : "", x->i);
        else
            sbuf_printf(b, "%s?", i ? " " : "");
    }
    sbuf_printf(b, "]");
    if (v->n > LIST_SHOW)
        sbuf_printf(b, " (%zu elements)", v->n);
}

static double secs(int64_t ns) { return (double)ns / 1e9; }

void ap_explain_txn(const ap *a, sbuf *b, uint32_t txn, int label)
{
    const ap_txn *t = &a->txns[txn];
    const history_op *inv = &a->h->ops[t->inv];
    sbuf_printf(b, "    T%d = index %" PRId64 " (process %" PRId64 ", invoked t=%.6fs, ", label,
                inv->index, inv->process, secs(inv->time));
    if (t->done == HISTORY_NONE) {
        sbuf_printf(b, "never completed: unknown outcome)");
    } else {
        const history_op *d = &a->h->ops[t->done];
        sbuf_printf(b, "%s t=%.6fs%s)", history_type_name(d->type), secs(d->time),
                    d->type == HISTORY_INFO ? ", unknown outcome" : "");
    }
    sbuf_printf(b, ": [");
    for (uint32_t i = 0; i < t->nmops; i++) {
        const ap_mop *m = &a->mops[t->mop0 + i];
        sbuf_printf(b, "%s[%s %" PRId64 " ", i ? " " : "", m->append ? "append" : "r", m->key);
        if (m->append)
            sbuf_printf(b, "%" PRId64 "]", m->value);
        else {
            ap_list_str(b, m->read);
            sbuf_printf(b, "]");
        }
    }
    sbuf_printf(b, "]\n");
    if (t->type != HISTORY_OK && t->done != HISTORY_NONE && a->h->ops[t->done].error)
        sbuf_printf(b, "         error: %.200s\n", a->h->ops[t->done].error);
}

void ap_explain_edge(const ap *a, sbuf *b, const ap_edge *e, int fl, int tl)
{
    static const char *const kind[] = { "?", "ww", "wr", "?", "rw", "?", "?", "?", "rt" };
    sbuf_printf(b, "    T%d -%s-> T%d: ", fl, kind[e->kind & 15], tl);
    const ap_mop *mf = e->mop_from != AP_NONE ? &a->mops[e->mop_from] : NULL;
    const ap_mop *mt = e->mop_to != AP_NONE ? &a->mops[e->mop_to] : NULL;
    switch (e->kind) {
    case AP_WW:
        sbuf_printf(b, "T%d appended %" PRId64 " to key %" PRId64 ", and T%d appended %" PRId64
                    ", the next element of key %" PRId64 "'s order\n",
                    fl, mf->value, mf->key, tl, mt->value, mf->key);
        break;
    case AP_WR:
        sbuf_printf(b, "T%d read key %" PRId64 " as ", tl, mt->key);
        ap_list_str(b, mt->read);
        sbuf_printf(b, ", whose last element from others, %" PRId64 ", T%d appended\n",
                    mf->value, fl);
        break;
    case AP_RW:
        sbuf_printf(b, "T%d read key %" PRId64 " as ", fl, mf->key);
        ap_list_str(b, mf->read);
        if (mf->ext_len)
            sbuf_printf(b, "; T%d appended %" PRId64 ", the element after %" PRId64
                        " in key %" PRId64 "'s order, which T%d did not see\n", tl, mt->value,
                        mf->read->items[mf->ext_len - 1].i, mf->key, fl);
        else
            sbuf_printf(b, " (nothing from others); T%d appended %" PRId64 ", the first "
                        "element of key %" PRId64 "'s order\n", tl, mt->value, mf->key);
        break;
    default: {
        const history_op *d = &a->h->ops[a->txns[a->node_txn[e->from]].done];
        const history_op *i = &a->h->ops[a->txns[a->node_txn[e->to]].inv];
        sbuf_printf(b, "T%d completed (index %" PRId64 ", t=%.6fs) before T%d was invoked "
                    "(index %" PRId64 ", t=%.6fs)\n", fl, d->index, secs(d->time), tl, i->index,
                    secs(i->time));
        break;
    }
    }
}

void ap_explain_cycle(ap *a, ap_class c, const uint32_t *edges, uint32_t n)
{
    int64_t example = INT64_MAX;
    for (uint32_t i = 0; i < n; i++) {
        int64_t idx = a->h->ops[a->txns[a->node_txn[a->edges[edges[i]].from]].inv].index;
        if (idx < example)
            example = idx;
    }
    if (!ap_note(a, c, example))
        return;
    sbuf *b = &a->text[c];
    sbuf_printf(b, "  a cycle of %u transactions:\n", n);
    for (uint32_t i = 0; i < n; i++)
        ap_explain_txn(a, b, a->node_txn[a->edges[edges[i]].from], (int)i + 1);
    for (uint32_t i = 0; i < n; i++)
        ap_explain_edge(a, b, &a->edges[edges[i]], (int)i + 1, i + 1 == n ? 1 : (int)i + 2);
}
