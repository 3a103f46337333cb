/*
 * append_int.h — what the list-append checker's files share
 * (append_check.h is the contract):
 *
 *   append_txns.c    the history as transactions and micro-ops, each
 *                    value's writer, each key's version order, and the
 *                    anomalies one read shows on its own (G1a, G1b,
 *                    incompatible-order, ...);
 *   append_graph.c   the dependency graph (ww, wr, rw, rt), Tarjan's
 *                    strongly connected components, and the search for a
 *                    short cycle in each, classified by its edges;
 *   append_explain.c the text: a transaction, an edge and why, a cycle;
 *   append_check.c   the order of the steps and the check_result.
 *
 * Positions are indices into the history's ops (real-time order); every
 * pointer into the history is borrowed from it.
 */
#ifndef OKV_JEPSEN_APPEND_INT_H
#define OKV_JEPSEN_APPEND_INT_H

#include <stddef.h>
#include <stdint.h>

#include "append_check.h"
#include "imap.h"
#include "sbuf.h"

#define AP_NONE UINT32_MAX

typedef struct ap_mop {
    uint8_t append;               /* 1 append, 0 read */
    uint8_t observed;             /* append: some ok read holds the value */
    uint8_t internal_ok;          /* read: its own appends end it as they should */
    int64_t key;
    int64_t value;                /* append */
    const history_value *read;    /* read of an ok txn: what it saw; else NULL */
    size_t ext_len;               /* read: length of the external part */
    uint32_t txn;
    uint32_t key_slot;            /* into ap.keys */
} ap_mop;

typedef struct ap_txn {
    size_t inv;                   /* position of the invoke */
    size_t done;                  /* position of the completion, or HISTORY_NONE */
    history_type type;            /* ok, fail or info (no completion: info) */
    uint32_t mop0, nmops;         /* into ap.mops */
    uint32_t node;                /* graph node, or AP_NONE */
} ap_txn;

typedef struct ap_key {
    int64_t key;
    imap writer;                  /* value -> mop index + 1 of its append */
    imap pos;                     /* value -> 1 + its position in order */
    const history_value *order;   /* the longest ok read (HV_LIST), or NULL */
    size_t last_read_inv;         /* the latest-invoked ok read: its invoke position */
    uint32_t last_read_mop;       /* ... and its mop, or AP_NONE */
} ap_key;

typedef enum ap_kind { AP_WW = 1, AP_WR = 2, AP_RW = 4, AP_RT = 8 } ap_kind;
#define AP_ALL (AP_WW | AP_WR | AP_RW | AP_RT)

/* A dependency edge and the micro-ops that justify it: ww (T1's append,
 * T2's append), wr (T1's append, T2's read), rw (T1's read, T2's append);
 * rt has none (AP_NONE). */
typedef struct ap_edge {
    uint32_t from, to;            /* nodes */
    uint32_t next;                /* next edge out of `from`, or AP_NONE */
    uint8_t kind;
    uint32_t mop_from, mop_to;
} ap_edge;

/* The anomaly classes, in report order. */
typedef enum ap_class {
    AP_G0, AP_G1A, AP_G1B, AP_G1C, AP_GSINGLE, AP_G2,
    AP_G0_RT, AP_G1C_RT, AP_GSINGLE_RT, AP_G2_RT,
    AP_LOST, AP_INCOMPATIBLE, AP_DUPLICATE, AP_INTERNAL, AP_GARBAGE, AP_BAD_VALUE,
    AP_N_CLASSES
} ap_class;

typedef struct ap {
    const history *h;
    ap_txn *txns;
    uint32_t ntxns;
    ap_mop *mops;
    uint32_t nmops;
    ap_key *keys;
    uint32_t nkeys;
    imap key_slot;                /* key -> index into keys */
    /* graph */
    uint32_t *node_txn;           /* node -> txn */
    uint32_t nnodes;
    uint32_t *head;               /* node -> first edge out, or AP_NONE */
    ap_edge *edges;
    uint32_t nedges, edges_cap;
    uint64_t edge_counts[4];      /* ww, wr, rw, rt */
    uint64_t ok_reads;
    /* per class: the count (in r's anomalies), up to AP_EXPLAIN_PER_CLASS
     * explanations, and how many were explained */
    sbuf text[AP_N_CLASSES];
    uint32_t explained[AP_N_CLASSES];
    check_result *r;
    int oom;
} ap;

/* Name of a class ("G-single-realtime", "lost-append", ...). */
const char *ap_class_name(ap_class c);

/* Records one occurrence of class c with example (an invoke index); 1 if
 * it should be explained (fewer than AP_EXPLAIN_PER_CLASS so far). */
int ap_note(ap *a, ap_class c, int64_t example);

/* ---- append_txns.c ---- */

/* Reads the history into a->txns / mops / keys (OKV_EINVAL on a format
 * error, err naming the op). */
int ap_load(ap *a, okv_error *err);
/* Version orders, per-read anomalies, observed appends, lost appends and
 * the graph's nodes. 0 or OKV_ENOMEM. */
int ap_infer(ap *a);
void ap_free(ap *a);
/* The writer's mop of (key slot, value), or AP_NONE. */
uint32_t ap_writer(const ap *a, uint32_t key_slot, int64_t value);
/* The element count of a read's list (0 if it is not a list). */
size_t ap_list_len(const history_value *v);

/* ---- append_graph.c ---- */

/* Adds every ww, wr, rw and rt edge. 0 or OKV_ENOMEM. */
int ap_build_edges(ap *a);
/* Finds, classifies and reports the cycles. 0 or OKV_ENOMEM. */
int ap_find_cycles(ap *a);

/* ---- append_explain.c ---- */

/* "T<n> = index I (process P, ok, invoked t=..s, ok t=..s): [[append 3 7] ...]" */
void ap_explain_txn(const ap *a, sbuf *b, uint32_t txn, int label);
/* "T1 -rw-> T2: T1 read key 0 as [1 2]; T2 appended 5, the next ..." */
void ap_explain_edge(const ap *a, sbuf *b, const ap_edge *e, int from_label, int to_label);
/* A cycle of n edges (e[i].to == e[i+1].from, the last back to the first). */
void ap_explain_cycle(ap *a, ap_class c, const uint32_t *edges, uint32_t n);
/* A short form of a list value: "[1 2 3]", long lists elided in the middle. */
void ap_list_str(sbuf *b, const history_value *v);

#endif
