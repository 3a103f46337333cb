/*
 * register_int.h — private to register_check.c and register_explain.c.
 */
#ifndef OKV_JEPSEN_REGISTER_INT_H
#define OKV_JEPSEN_REGISTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "orderkv.h"
#include "linear.h"
#include "sbuf.h"

/* One register op of the history (any outcome), with its key. */
typedef struct reg_op {
    int64_t key;
    size_t pos;              /* history position of the invoke */
    size_t ret;              /* history position of the completion, or HISTORY_NONE */
    history_type outcome;    /* HISTORY_OK / FAIL / INFO (INFO also when never completed) */
    lin_op op;               /* kind and values; call = pos, ret = ret if ok else LIN_NEVER */
} reg_op;

/* The rules of register_facts.c: why an ok op is impossible in any order. */
typedef enum reg_rule {
    REG_RULE_NONE,
    REG_RULE_PHANTOM,             /* R1 */
    REG_RULE_ONLY_FAILED_WRITES,  /* R2 */
    REG_RULE_WRITES_AFTER_READ,   /* R3 */
    REG_RULE_STALE_READ,          /* R4 */
    REG_RULE_ABSENT_AFTER_WRITE,  /* R5 */
    REG_RULE_CAS_FROM_UNSET,      /* R6 */
    REG_RULE_CAS_CONSUMED_TWICE   /* R7 */
} reg_rule;

typedef struct reg_facts reg_facts;

/* Indexes one key's ops (kops[0..n), in invoke order; borrowed until
 * reg_facts_free). 0 or OKV_ENOMEM. */
int reg_facts_new(reg_facts **out, const reg_op *kops, size_t n);

/* Which rule, if any, proves x impossible in any order. */
reg_rule reg_facts_rule(const reg_facts *f, const reg_op *x);

/* Accepts NULL. */
void reg_facts_free(reg_facts *f);

/* What register_check learned about a key that is not linearizable. */
typedef struct reg_verdict {
    const reg_facts *facts;
    size_t n_impossible;          /* ops some rule proves impossible */
    const lin_report *rep;        /* the search */
    const size_t *lin_to_kop;     /* maps the search's op indices to kops indices */
} reg_verdict;

/* Explains why key's ops (kops[0..n), in invoke order) are not
 * linearizable: the impossible ops, then what the search found (if it
 * finished with a violation). */
void register_explain_key(sbuf *b, const history *h, int64_t key, const reg_op *kops, size_t n,
                          const reg_verdict *v);

/* Appends "read -> 2", "write 5" or "cas 1->2". */
void register_describe_op(sbuf *b, const lin_op *op);

#endif
