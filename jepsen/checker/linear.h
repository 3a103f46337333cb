/*
 * linear.h — is one register's history linearizable?
 *
 * The search is Wing & Gong's (1993), with Lowe's memoization ("Testing for
 * linearizability", 2017) as in Porcupine: walk the history's call/return
 * events in real-time order; at each point try to linearize a pending op
 * whose call has been seen; when a return is reached whose op was not
 * linearized, backtrack. A configuration (set of linearized ops, register
 * value) is explored at most once: the memo cache holds every configuration
 * seen, so the search is bounded by the number of distinct configurations.
 *
 * The model is a register with compare-and-set whose initial value is null
 * (absent):
 *   read v        applies iff value == v (null == null)
 *   write v       always applies, value := v
 *   cas old new   applies iff value == old, then value := new
 *
 * Ops that completed ok must be linearized between their call and return.
 * Ops with an unknown outcome (ret == LIN_NEVER) may be linearized at any
 * point after their call, or never. Failed ops and reads without a result
 * are not passed in at all: they did not happen / constrain nothing.
 *
 * Pure: no I/O; time is read only through the injected clock.
 */
#ifndef OKV_JEPSEN_LINEAR_H
#define OKV_JEPSEN_LINEAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIN_NEVER ((size_t)-1)
#define LIN_TAIL 12       /* ops of the longest prefix kept for the report */
#define LIN_CANDIDATES 12 /* pending ops kept for the report */

typedef struct lin_val {
    int64_t v;
    bool null; /* absent; v is then 0 */
} lin_val;

typedef enum lin_kind { LIN_READ, LIN_WRITE, LIN_CAS } lin_kind;

typedef struct lin_op {
    lin_kind kind;
    lin_val a;   /* read: the value returned; write: the value; cas: expected */
    lin_val b;   /* cas: the new value */
    size_t call; /* history position of the invoke */
    size_t ret;  /* history position of the ok completion, or LIN_NEVER */
} lin_op;

typedef struct lin_limits {
    uint64_t max_states;              /* memo entries before giving up; 0 = no limit */
    int64_t deadline_ms;              /* give up once now_ms() >= deadline_ms ... */
    int64_t (*now_ms)(void *ctx);     /* ... unless now_ms is NULL */
    void *clock_ctx;
} lin_limits;

typedef enum lin_outcome {
    LIN_LINEARIZABLE,
    LIN_VIOLATION,
    LIN_STATE_BUDGET, /* max_states reached: unknown */
    LIN_TIME_LIMIT    /* deadline passed: unknown */
} lin_outcome;

/*
 * What the search found. For LIN_VIOLATION, the "best" fields describe the
 * deepest configuration reached (the most ops linearized): its last ops, the
 * register value after them, the ok op whose return the search could not get
 * past from there, and the pending ops it tried at that point.
 */
typedef struct lin_report {
    lin_outcome outcome;
    uint64_t states;                    /* configurations memoized */
    size_t best_depth;                  /* ops in the deepest linearized prefix */
    size_t best_tail[LIN_TAIL];         /* its last ops (indices into ops), in order */
    size_t n_best_tail;
    lin_val best_state;                 /* the register value after that prefix */
    size_t blocking;                    /* op index, or LIN_NEVER */
    size_t candidates[LIN_CANDIDATES];  /* pending ops tried there, by call order */
    size_t n_candidates;
} lin_report;

/* Checks ops[0..n) (any order; call < ret for each op, positions distinct).
 * Fills *rep. Returns 0, or OKV_ENOMEM (rep is then meaningless). */
int lin_check(const lin_op *ops, size_t n, const lin_limits *lim, lin_report *rep);

/* The model's transition: true and *next set iff op can apply to state. */
bool lin_step(lin_val state, const lin_op *op, lin_val *next);

/* Equality of register values. */
bool lin_val_eq(lin_val a, lin_val b);

#endif
