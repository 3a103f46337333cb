/*
 * history.h — the operation history of one Jepsen-style run, and its two
 * on-disk forms (history.json, history.edn; docs/jepsen.md "History format").
 *
 * A history is a list of ops in index order. Client ops come in pairs: an
 * `invoke` when a process starts an op, then exactly one completion of the
 * same f: `ok` (it happened), `fail` (it certainly did not happen) or `info`
 * (unknown: it may have happened, or may still happen later). The nemesis
 * records lone `info` ops when a fault begins and when it ends.
 *
 * Invariants the recorder keeps (the checkers rely on them):
 *  1. index = position; time never decreases with index (both are assigned
 *     under one lock).
 *  2. A process has at most one op in flight: history_invoke() on a process
 *     with a pending op is a bug (asserted).
 *  3. After an `info` completion the process is retired: history_complete()
 *     gives the caller a fresh process id, the next integer never used.
 *
 * Values are small trees (jv): null, integer, string or list. A value given
 * to the history is owned by it from then on.
 */
#ifndef OKV_JEPSEN_HISTORY_H
#define OKV_JEPSEN_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- values -------------------------------------------------------------- */

/* JV_KW, a keyword, is for EDN's sake: Elle's list-append reads micro-ops
 * as [:append k v] / [:r k list]. JSON has no keywords, so it is written
 * there as a string ("append"), which is what Jepsen's JSON form holds too. */
typedef enum jv_kind { JV_NULL, JV_INT, JV_STR, JV_LIST, JV_KW } jv_kind;

typedef struct jv {
    jv_kind kind;
    int64_t i;            /* JV_INT */
    char *s;              /* JV_STR, JV_KW (the name, no ':'), owned */
    struct jv **items;    /* JV_LIST, each owned */
    size_t n, cap;
} jv;

/* Constructors abort the process when memory runs out (a test tool has
 * nothing better to do). */
jv *jv_null(void);
jv *jv_int(int64_t i);
jv *jv_str(const char *s);
/* A keyword: EDN :name, JSON "name". name must be a valid EDN symbol
 * (letters, digits, - _ ? ! . *), which the caller's static names are. */
jv *jv_kw(const char *name);
jv *jv_list(void);
/* Appends item (owned by the list from now on); returns list. */
jv *jv_push(jv *list, jv *item);
/* [a, b]: the usual shape of a register op value. */
jv *jv_pair(jv *a, jv *b);
jv *jv_copy(const jv *v);
void jv_free(jv *v);

/* Writes v in JSON (null, 3, "s", [1,2]) or EDN (nil, 3, "s", [1 2]);
 * a keyword is "append" in JSON, :append in EDN.
 * Strings are escaped for both: \" \\ \n \t \r; other control bytes become '?'. */
void jv_write_json(FILE *out, const jv *v);
void jv_write_edn(FILE *out, const jv *v);

/* ---- ops ----------------------------------------------------------------- */

typedef enum hist_type { HIST_INVOKE, HIST_OK, HIST_FAIL, HIST_INFO } hist_type;

/* The process id of the nemesis ("nemesis" in JSON, :nemesis in EDN). */
#define HIST_NEMESIS (-1)
#define HIST_F_MAX 32

typedef struct hist_op {
    uint64_t index;
    hist_type type;
    char f[HIST_F_MAX];
    jv *value;            /* never NULL: JV_NULL for null */
    int64_t process;      /* >= 0, or HIST_NEMESIS */
    uint64_t time_ns;     /* since the history's origin */
    char *error;          /* NULL, or the error text of a fail / info */
} hist_op;

const char *hist_type_name(hist_type t);

typedef struct history history;

/* A new empty history whose time 0 is origin_ns (CLOCK_MONOTONIC, ns).
 * first_free_process: the lowest process id not handed out by the caller
 * (client threads start as processes 0..C-1, so pass C). */
history *history_new(uint64_t origin_ns, int64_t first_free_process);
void history_free(history *h);

/* CLOCK_MONOTONIC now, in ns. */
uint64_t history_clock_ns(void);
/* ns since the history's origin. */
uint64_t history_now(const history *h);

/* Appends one op, stamping index and time; takes value (NULL = null).
 * Thread-safe. Returns the op's time. Low level: clients use the
 * hist_proc functions below, which keep invariants 2 and 3. */
uint64_t history_append(history *h, hist_type type, int64_t process, const char *f, jv *value,
                        const char *error);

/* A fresh process id, never used before. Thread-safe. */
int64_t history_new_process(history *h);

size_t history_count(const history *h);
/* Borrowed; valid until the next append (which may move the array) or free. */
const hist_op *history_op(const history *h, size_t i);

/* ---- one client process -------------------------------------------------- */

/* What a client thread knows about the process it currently runs as. */
typedef struct hist_proc {
    int64_t id;
    int pending;                  /* an op is invoked and not yet completed */
    char f[HIST_F_MAX];
    uint64_t invoke_ns;
} hist_proc;

/* Records the invoke of f with value (owned by the history). */
void history_invoke(history *h, hist_proc *p, const char *f, jv *value);

/* Records the completion of p's pending op. For HIST_INFO, p->id becomes a
 * fresh process id afterwards and *retired_out (may be NULL) is set to 1, so
 * the caller can reopen its connection. Returns the op's latency in ns. */
uint64_t history_complete(history *h, hist_proc *p, hist_type type, jv *value, const char *error,
                          int *retired_out);

/* ---- output -------------------------------------------------------------- */

/* history.json: one JSON array, one op per line. 0, or -1 on a write error. */
int history_write_json(const history *h, FILE *out);
/* history.edn: one EDN map per line. */
int history_write_edn(const history *h, FILE *out);
/* latency.tsv: per completed client op "time_s latency_ms type f", time_s
 * being the invoke time; with a header line starting with '#'. */
int history_write_latency(const history *h, FILE *out);

/* Counts of client completions by type, and of nemesis ops. */
typedef struct history_counts {
    size_t invoke, ok, fail, info, nemesis;
} history_counts;
void history_count_types(const history *h, const char *f, history_counts *out);

#endif
