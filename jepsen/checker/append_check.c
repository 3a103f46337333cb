/*
 * append_check.c — the list-append checker's steps (append_check.h):
 * load the transactions, infer version orders and the anomalies single
 * reads show, build the graph, find its cycles, then the verdict and the
 * explanation, class by class.
 */
#include "append_check.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "append_int.h"

static const char *const CLASS_NAMES[AP_N_CLASSES] = {
    "G0", "G1a", "G1b", "G1c", "G-single", "G2",
    "G0-realtime", "G1c-realtime", "G-single-realtime", "G2-realtime",
    "lost-append", "incompatible-order", "duplicate-elements", "internal", "garbage-read",
    "bad-value",
};

/* What each class means, for the explanation's header line. */
static const char *const CLASS_WHAT[AP_N_CLASSES] = {
    "a cycle of write dependencies (ww) only",
    "a read saw an append of a transaction that failed (aborted read)",
    "a read saw another transaction's intermediate state (intermediate read)",
    "a cycle of ww and wr edges (circular information flow)",
    "a cycle with exactly one anti-dependency (rw), e.g. read skew or a lost update",
    "a cycle with two or more anti-dependencies (rw), e.g. write skew",
    "a cycle of ww edges that needs real-time order (rt)",
    "a cycle of ww and wr edges that needs real-time order (rt)",
    "a cycle with one rw edge that needs real-time order (rt), e.g. a stale read",
    "a cycle with two or more rw edges that needs real-time order (rt)",
    "an acknowledged append no read saw, though a read of its key began after it completed",
    "a read that is not a prefix of the longest read of its key",
    "a read that lists an element twice",
    "a read that does not end with the transaction's own earlier appends to the key",
    "a read holding a value nobody appended to that key",
    "a read holding something that is not a list of integers",
};

static const int IS_CYCLE[AP_N_CLASSES] = { 1, 0, 0, 1, 1, 1, 1, 1, 1, 1 };

const char *ap_class_name(ap_class c) { return CLASS_NAMES[c]; }

int ap_note(ap *a, ap_class c, int64_t example)
{
    check_anomaly_add(check_result_anomaly(a->r, CLASS_NAMES[c]), example);
    if (a->explained[c] >= AP_EXPLAIN_PER_CLASS)
        return 0;
    a->explained[c]++;
    if (!IS_CYCLE[c])
        sbuf_printf(&a->text[c], "  case %u:\n", a->explained[c]);
    return 1;
}

static char *explanation(ap *a)
{
    sbuf b = SBUF_INIT;
    for (int c = 0; c < AP_N_CLASSES; c++) {
        uint64_t n = check_result_anomaly_count(a->r, CLASS_NAMES[c]);
        if (!n)
            continue;
        sbuf_printf(&b, "%s: %" PRIu64 " %s (%s)", CLASS_NAMES[c], n,
                    IS_CYCLE[c] ? (n == 1 ? "cycle" : "cycles") : (n == 1 ? "case" : "cases"),
                    CLASS_WHAT[c]);
        sbuf_printf(&b, n > a->explained[c] ? "; the first %u:\n" : ":\n", a->explained[c]);
        char *t = sbuf_take(&a->text[c]);
        if (!t) {
            sbuf_free(&b);
            return NULL;
        }
        sbuf_append(&b, t, strlen(t));
        free(t);
    }
    return sbuf_take(&b);
}

static void counts(ap *a)
{
    uint64_t ok = 0, failed = 0, unknown = 0, appends = 0;
    for (uint32_t t = 0; t < a->ntxns; t++) {
        ok += a->txns[t].type == HISTORY_OK;
        failed += a->txns[t].type == HISTORY_FAIL;
        unknown += a->txns[t].type == HISTORY_INFO;
    }
    for (uint32_t m = 0; m < a->nmops; m++)
        appends += a->mops[m].append;
    check_result *r = a->r;
    check_result_count(r, "txns", a->ntxns);
    check_result_count(r, "ok", ok);
    check_result_count(r, "failed", failed);
    check_result_count(r, "unknown", unknown);
    check_result_count(r, "appends", appends);
    check_result_count(r, "ok-reads", a->ok_reads);
    check_result_count(r, "nodes", a->nnodes);
    check_result_count(r, "ww", a->edge_counts[0]);
    check_result_count(r, "wr", a->edge_counts[1]);
    check_result_count(r, "rw", a->edge_counts[2]);
    check_result_count(r, "rt", a->edge_counts[3]);
}

int append_check(check_result **out, const history *h, okv_error *err)
{
    *out = NULL;
    ap a;
    memset(&a, 0, sizeof a);
    a.h = h;
    a.r = check_result_new("list-append");
    if (!a.r)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    for (int c = 0; c < AP_N_CLASSES; c++)
        check_result_anomaly(a.r, CLASS_NAMES[c]);   /* every class present, count 0 */
    int rc = ap_load(&a, err);
    if (!rc && (rc = ap_infer(&a)) == 0 && (rc = ap_build_edges(&a)) == 0)
        rc = ap_find_cycles(&a);
    char *text = rc ? NULL : explanation(&a);
    if (!rc && !text)
        rc = OKV_ENOMEM;
    if (rc) {
        if (rc == OKV_ENOMEM)
            okv_error_set(err, rc, "out of memory");
        ap_free(&a);
        check_result_free(a.r);
        return rc;
    }
    check_result *r = a.r;
    r->explanation = text;
    r->ops = h->n_invokes;
    r->keys = a.nkeys;
    counts(&a);
    int bad = 0;
    for (int c = 0; c < AP_N_CLASSES; c++)
        bad |= check_result_anomaly_count(r, CLASS_NAMES[c]) != 0;
    r->validity = bad ? CHECK_INVALID : a.ok_reads ? CHECK_VALID : CHECK_UNKNOWN;
    ap_free(&a);
    *out = r;
    return 0;
}
