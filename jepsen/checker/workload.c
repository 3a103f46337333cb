#include "workload.h"

#include <inttypes.h>
#include <string.h>

#include "append_check.h"
#include "bank_check.h"
#include "orders_check.h"
#include "sequential_check.h"
#include "set_check.h"

static const char *const NAMES[] = { "register", "set", "sequential", "bank", "list-append",
                                     "orders", "auto" };
#define N_NAMES 7
#define N_CHECKERS 6 /* every name but auto */
/* evidence(): a null read, which the set and the bank both make. */
#define SET_OR_BANK (-2)

int workload_from_name(const char *name, workload *out)
{
    for (int i = 0; i < N_NAMES; i++)
        if (strcmp(name, NAMES[i]) == 0) {
            *out = (workload)i;
            return 0;
        }
    return OKV_EINVAL;
}

const char *workload_name(workload w)
{
    return (unsigned)w < N_NAMES ? NAMES[w] : "?";
}

/* The workload op suggests, SET_OR_BANK, or -1 if it says nothing. */
static int evidence(const history *h, const history_op *op)
{
    const history_value *v = &op->value;
    if (op->fn == HISTORY_F_OTHER && orders_op_known(history_f(h, op)))
        return WORKLOAD_ORDERS;
    switch (op->fn) {
    case HISTORY_F_CAS:
        return WORKLOAD_REGISTER;
    case HISTORY_F_ADD:
        return WORKLOAD_SET;
    case HISTORY_F_TRANSFER:
    case HISTORY_F_INIT:
        return WORKLOAD_BANK;
    case HISTORY_F_TXN:
        return WORKLOAD_LIST_APPEND;
    case HISTORY_F_WRITE:
    case HISTORY_F_READ:
        if (v->kind == HV_LIST)
            return WORKLOAD_REGISTER;
        if (v->kind == HV_INT)
            return WORKLOAD_SEQUENTIAL;
        if (v->kind == HV_NULL && op->fn == HISTORY_F_READ)
            return SET_OR_BANK;
        return -1;
    default:
        return -1;
    }
}

int workload_infer(const history *h, workload *out, okv_error *err)
{
    size_t first[N_CHECKERS] = { HISTORY_NONE, HISTORY_NONE, HISTORY_NONE, HISTORY_NONE,
                                 HISTORY_NONE, HISTORY_NONE };
    size_t null_read = HISTORY_NONE;
    for (size_t pos = 0; pos < h->n_ops; pos++) {
        const history_op *op = &h->ops[pos];
        if (op->process == HISTORY_NEMESIS || op->type != HISTORY_INVOKE)
            continue;
        int w = evidence(h, op);
        if (w == SET_OR_BANK && null_read == HISTORY_NONE)
            null_read = pos;
        if (w >= 0 && first[w] == HISTORY_NONE)
            first[w] = pos;
    }
    if (null_read != HISTORY_NONE && first[WORKLOAD_BANK] == HISTORY_NONE &&
        first[WORKLOAD_SET] == HISTORY_NONE)
        first[WORKLOAD_SET] = null_read;
    int found = -1, count = 0;
    for (int w = 0; w < N_CHECKERS; w++)
        if (first[w] != HISTORY_NONE) {
            found = found < 0 ? w : found;
            count++;
        }
    if (count == 1) {
        *out = (workload)found;
        return 0;
    }
    if (count == 0)
        return okv_error_set(err, OKV_EINVAL, "cannot infer the workload: no client op is a register, set, "
                             "sequential, bank, list-append or orders op (use --workload)");
    int a = -1, b = -1;
    for (int w = 0; w < N_CHECKERS; w++)
        if (first[w] != HISTORY_NONE) {
            if (a < 0)
                a = w;
            else if (b < 0)
                b = w;
        }
    const history_op *x = &h->ops[first[a]], *y = &h->ops[first[b]];
    return okv_error_set(err, OKV_EINVAL,
                         "cannot infer the workload: op index %" PRId64 " (f \"%s\") looks like %s but op index %" PRId64
                         " (f \"%s\") looks like %s (use --workload)",
                         x->index, history_f(h, x), NAMES[a], y->index, history_f(h, y), NAMES[b]);
}

int workload_check(check_result **out, workload w, const history *h, const register_options *ropt,
                   okv_error *err)
{
    switch (w) {
    case WORKLOAD_REGISTER:
        return register_check(out, h, ropt, err);
    case WORKLOAD_SET:
        return set_check(out, h, err);
    case WORKLOAD_SEQUENTIAL:
        return sequential_check(out, h, err);
    case WORKLOAD_BANK:
        return bank_check(out, h, err);
    case WORKLOAD_LIST_APPEND:
        return append_check(out, h, err);
    case WORKLOAD_ORDERS:
        return orders_check(out, h, err);
    default:
        *out = NULL;
        return okv_error_set(err, OKV_EINVAL, "no checker for workload \"%s\"", workload_name(w));
    }
}
