/*
 * workload.h — which checker a history needs, and running it.
 *
 * Inference (--workload auto) looks at the client invokes only:
 *   register    any "cas"; a "write" or "read" whose value is [key, v]
 *   set         any "add"; a "read" whose invoke value is null
 *   sequential  a "write" or "read" whose value is an integer
 *   bank        any "transfer" or "init"
 *   list-append any "txn"
 *   orders      any op of the orders workload ("create", "pay", "set-stock",
 *               ...: the f names of orders_check.h)
 * A null read is also what a bank's read looks like: it counts for the set
 * only when nothing points to the bank. Exactly one workload must be
 * evidenced; otherwise OKV_EINVAL says which ops point where.
 */
#ifndef OKV_JEPSEN_WORKLOAD_H
#define OKV_JEPSEN_WORKLOAD_H

#include "errors.h"
#include "history.h"
#include "register_check.h"
#include "result.h"

typedef enum workload {
    WORKLOAD_REGISTER,
    WORKLOAD_SET,
    WORKLOAD_SEQUENTIAL,
    WORKLOAD_BANK,
    WORKLOAD_LIST_APPEND,
    WORKLOAD_ORDERS,
    WORKLOAD_AUTO
} workload;

/* "register", "set", "sequential", "bank", "list-append", "orders", "auto" -> *out;
 * OKV_EINVAL otherwise. */
int workload_from_name(const char *name, workload *out);

const char *workload_name(workload w);

/* Infers the workload of h (see above). */
int workload_infer(const history *h, workload *out, okv_error *err);

/* Runs w's checker on h (w must not be WORKLOAD_AUTO); ropt is used by the
 * register checker only and may be NULL. Ownership and errors as the
 * checker's. */
int workload_check(check_result **out, workload w, const history *h, const register_options *ropt,
                   okv_error *err);

#endif
