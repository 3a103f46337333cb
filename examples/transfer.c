/*
 * transfer.c — a complete liborderkv program: move money between two
 * accounts that live in different partitions, atomically, and settle an
 * ambiguous outcome without paying twice (docs/transactions.md).
 *
 *   transfer ADDRS FROM TO AMOUNT
 *   e.g. transfer 127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403 alice bob 300
 *
 * Exit status: 0 moved, 1 refused (insufficient funds, or a conflict that
 * outlasted the retries), 2 usage or connection error, 3 outcome unknown.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orderkv.h"

static int64_t balance(okv_client *c, const char *who)
{
    okv_value *v = NULL;
    int64_t n = 0;
    if (okv_get(c, "accounts", who, strlen(who), &v, 5000) == OKV_OK) {
        okv_counter_decode(okv_value_data(v), okv_value_len(v), &n);
        okv_value_free(v);
    }
    return n;
}

/* One attempt: the debit may not take the payer below 0. The first write
 * decides which partition coordinates the transaction. */
static int commit_transfer(okv_client *c, const char *from, const char *to, int64_t amount,
                           okv_txn_req **t_out, okv_txn_outcome *o)
{
    okv_txn_req *t;
    int rc = okv_txn_req_new(&t);
    if (rc == OKV_OK)
        rc = okv_txn_req_add_floor(t, "accounts", from, strlen(from), -amount, 0);
    if (rc == OKV_OK)
        rc = okv_txn_req_add(t, "accounts", to, strlen(to), amount);
    if (rc == OKV_OK)
        rc = okv_txn_commit(c, t, o, 10000);
    *t_out = t;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 5 || atoll(argv[4]) <= 0) {
        fprintf(stderr, "usage: transfer ADDRS FROM TO AMOUNT (AMOUNT > 0)\n");
        return 2;
    }
    const char *from = argv[2], *to = argv[3];
    int64_t amount = atoll(argv[4]);
    okv_client *c;
    if (okv_connect(&c, argv[1], NULL) != OKV_OK) {
        fprintf(stderr, "transfer: %s\n", okv_errmsg(NULL));
        return 2;
    }
    int status = 1;
    for (int attempt = 0; attempt < 5; attempt++) {
        okv_txn_req *t = NULL;
        okv_txn_outcome o;
        int rc = commit_transfer(c, from, to, amount, &t, &o);
        if (rc == OKV_EUNKNOWN) {
            /* The library resent it with the same id and still heard
             * nothing final. Never send it again blindly: ask. */
            do
                rc = okv_txn_status(c, t, o.txn_id, &o, 5000);
            while (rc == OKV_EUNKNOWN || rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT);
            if (rc == OKV_ENOTFOUND) {
                fprintf(stderr, "transfer: outcome unknown (transaction %" PRIu64 ")\n",
                        o.txn_id);
                okv_txn_req_free(t);
                status = 3;
                break;
            }
        }
        okv_txn_req_free(t);
        if (rc == OKV_OK) {
            status = 0;
            break;
        }
        if (rc == OKV_ECONDITION) {
            fprintf(stderr, "transfer: %s has less than %" PRId64 " (%s)\n", from, amount,
                    okv_errmsg(c));
            break;
        }
        if (rc != OKV_ECONFLICT) {   /* a lock or the deadline: try again */
            fprintf(stderr, "transfer: %s: %s\n", okv_strerror(rc), okv_errmsg(c));
            status = 2;
            break;
        }
    }
    printf("%s: %" PRId64 ", %s: %" PRId64 "\n", from, balance(c, from), to, balance(c, to));
    okv_close(c);
    return status;
}
