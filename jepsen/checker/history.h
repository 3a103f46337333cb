/*
 * history.h — a Jepsen history: the ops a test run recorded, in order.
 *
 * Format (the contract with the runner that writes history.json; README.md):
 * one JSON array of op objects in index order,
 *
 *   {"index":N, "type":"invoke"|"ok"|"fail"|"info", "f":"...", "value":...,
 *    "process":P, "time":NS, "error":"text"}
 *
 * index     non-negative integer, strictly increasing through the file;
 * type      invoke, then exactly one completion per invoke of a client process:
 *           ok (took effect), fail (definitely did not), info (unknown);
 * f         the operation ("read", "write", "cas", "add", "transfer", "init",
 *           "txn", or a nemesis action);
 * value     any JSON; the workload checkers give it meaning;
 * process   a non-negative integer (a client, running one op at a time), or the
 *           string "nemesis" (fault ops; checkers only count them);
 * time      non-negative integer, nanoseconds since the start of the run;
 * error     optional string on fail/info.
 * Members not listed here are ignored, so the runner may add fields.
 *
 * history_parse enforces the process discipline, so a runner bug is reported
 * as such instead of as a database anomaly:
 *   1. a completion follows an invoke of the same process, with the same f;
 *   2. a process has at most one op in flight;
 *   3. a process that got info never invokes again;
 * an invoke still open at the end of the history counts as info (pair is
 * HISTORY_NONE). Violations are OKV_EINVAL with the op's index and byte offset.
 *
 * Positions (0..n_ops-1, the order in the file) are what checkers use for
 * real-time order; "index" is what messages show to people.
 */
#ifndef OKV_JEPSEN_HISTORY_H
#define OKV_JEPSEN_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "errors.h"

#define HISTORY_NONE ((size_t)-1)
#define HISTORY_NEMESIS ((int64_t)-1) /* history_op.process of a nemesis op */

typedef enum history_type {
    HISTORY_INVOKE,
    HISTORY_OK,
    HISTORY_FAIL,
    HISTORY_INFO
} history_type;

/* The f values checkers interpret; anything else is HISTORY_F_OTHER. */
typedef enum history_fn {
    HISTORY_F_READ,
    HISTORY_F_WRITE,
    HISTORY_F_CAS,
    HISTORY_F_ADD,
    HISTORY_F_TRANSFER,
    HISTORY_F_INIT,
    HISTORY_F_TXN,
    HISTORY_F_OTHER
} history_fn;

typedef enum history_value_kind {
    HV_NULL,
    HV_INT,
    HV_LIST,
    HV_OTHER /* string (s set), boolean, object, non-integer number (s NULL) */
} history_value_kind;

typedef struct history_value history_value;

struct history_value {
    history_value_kind kind;
    int64_t i;                   /* HV_INT */
    size_t n;                    /* HV_LIST: number of items */
    const history_value *items;  /* HV_LIST */
    const char *s;               /* HV_OTHER from a JSON string: its bytes (NUL-
                                  * terminated; slen excludes the NUL), else NULL */
    size_t slen;
};

typedef struct history_op {
    int64_t index;
    int64_t time;
    int64_t process;       /* >= 0, or HISTORY_NEMESIS */
    history_type type;
    history_fn fn;
    uint32_t f_name;       /* into history.f_names */
    history_value value;
    const char *error;     /* NULL if absent */
    size_t offset;         /* byte offset of the op object in the file */
    size_t pair;           /* position of the matching invoke / completion, or
                            * HISTORY_NONE (nemesis ops, invokes never completed) */
} history_op;

typedef struct history {
    history_op *ops;
    size_t n_ops;
    size_t n_invokes;      /* client operations */
    size_t n_nemesis;      /* nemesis ops */
    char **f_names;        /* distinct f strings, in order of first appearance */
    size_t n_f_names;
    arena mem;             /* values and strings */
} history;

/* Parses and validates text[0..len). On success *out is owned by the caller
 * (history_free). Errors: OKV_EINVAL (malformed JSON, a field of the wrong
 * type, a broken process discipline; err says which op and byte), OKV_ENOMEM. */
int history_parse(history **out, const char *text, size_t len, okv_error *err);

/* Accepts NULL. */
void history_free(history *h);

/* The f string of op; borrowed from h. */
const char *history_f(const history *h, const history_op *op);

/* "invoke", "ok", "fail", "info". */
const char *history_type_name(history_type t);

/* A history that breaks the workload's contract: OKV_EINVAL with
 * "WORKLOAD workload: op index N (byte B): <message>". */
int history_op_error(okv_error *err, const char *workload, const history_op *op,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The completion type of the invoke at pos: its pair's type, or HISTORY_INFO
 * if it never completed. */
history_type history_outcome(const history *h, size_t pos);

/* Writes value as compact JSON into buf (truncated with "..." if it does not
 * fit; HV_OTHER prints as "?"). Returns buf. */
char *history_value_str(const history_value *v, char *buf, size_t n);

#endif
