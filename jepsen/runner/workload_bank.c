/*
 * workload_bank.c — transfers between accounts: are one-partition
 * transactions atomic?
 *
 * N accounts (--accounts, default 8) are counters "bank/0" .. "bank/N-1" in
 * table accounts. Their partition key is "bank" (the part before the first
 * '/'), so every account lies in one partition and a transfer is a
 * one-partition transaction (docs/transactions.md).
 *
 * setup (thread 0, before the main phase): one transaction puts every
 * account to BANK_INITIAL, each under an `absent` condition. Recorded as
 * f "init", value [N, BANK_INITIAL]: the history says what the checker
 * must find (N accounts summing to N * BANK_INITIAL).
 *
 * transfer (value [from, to, amount], from != to, amount 1..BANK_MAX_AMOUNT):
 * ONE transaction of add_floor(from, -amount, 0) and add(to, +amount). The
 * amounts are large next to the balances, so floors stop many transfers.
 * The two writes come in random order: with the credit first, a floor that
 * stops the debit is write 1 of 2, and a server that applies the writes
 * before the failing one (the planted bug txn.partial) creates money. Debit
 * first, the same bug applies nothing, so only the random order exposes it.
 *
 * read (invoke null; ok [[account, balance], ...] in key order): one scan
 * of prefix "bank/". The prefix names one partition, so the scan is one
 * page from one replica's state, served linearizably: a snapshot of every
 * account. A value that is not an 8-byte counter is recorded as a string
 * (the checker flags it), a key that is not one of the N accounts with the
 * key as a string. Reads happen during the run (one op in three) and in
 * the final phase, where each thread reads until one read succeeds.
 *
 * The checker (jepsen/checker/bank_check.h): every ok read has exactly the
 * N accounts, each a counter, none negative, summing to N * BANK_INITIAL.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"

#define BANK_TABLE "accounts"
#define BANK_PREFIX "bank/"
#define BANK_INITIAL 100
#define BANK_MAX_AMOUNT 60
#define BANK_SETUP_ATTEMPTS 20
#define BANK_FINAL_ATTEMPTS 5
/* Extra room in the read's one page: keys that are not accounts (none on a
 * correct system) still show up, and the checker names them. */
#define BANK_SCAN_SLACK 64

static int accounts_of(const jclient *cl) { return runner_config(cl->r)->accounts; }

static size_t account_key(char *buf, size_t size, int64_t a)
{
    return (size_t)snprintf(buf, size, BANK_PREFIX "%" PRId64, a);
}

/* The account number of key, or -1 if key is not "bank/<a>" with a in
 * [0, n) written without leading zeros (so no two keys name one account). */
static int64_t account_of_key(const char *key, size_t len, int n)
{
    size_t plen = sizeof BANK_PREFIX - 1;
    if (len <= plen || len > plen + 9 || memcmp(key, BANK_PREFIX, plen) != 0)
        return -1;
    if (key[plen] == '0' && len != plen + 1)
        return -1;
    int64_t a = 0;
    for (size_t i = plen; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return -1;
        a = a * 10 + (key[i] - '0');
    }
    return a < n ? a : -1;
}

/* A key or value the checker must flag, as a printable string. */
static jv *odd_string(const char *what, const void *bytes, size_t len)
{
    char buf[160];
    int off = snprintf(buf, sizeof buf, "%s (%zu bytes):", what, len);
    const unsigned char *b = bytes;
    for (size_t i = 0; i < len && i < 32 && off < (int)sizeof buf - 4; i++)
        off += snprintf(buf + off, sizeof buf - (size_t)off, " %02x", b[i]);
    return jv_str(buf);
}

/* One scan of every account. OKV_OK and *out = [[account, balance], ...],
 * else the code (err says why). */
static int scan_accounts(jclient *cl, jv **out, char *err, size_t errsize)
{
    int n = accounts_of(cl);
    okv_scan_opts o = OKV_SCAN_OPTS_INIT;
    o.prefix = BANK_PREFIX;
    o.prefix_len = sizeof BANK_PREFIX - 1;
    /* One page: pages are separate reads, and the read must be one state. */
    o.limit = (uint32_t)n + BANK_SCAN_SLACK;
    o.timeout_ms = runner_config(cl->r)->op_timeout_ms;
    okv_scan_result *r = NULL;
    int rc = okv_scan(cl->c, BANK_TABLE, &o, &r);
    if (rc != OKV_OK) {
        client_error(cl, rc, err, errsize);
        return rc;
    }
    jv *list = jv_list();
    for (size_t i = 0; i < okv_scan_result_count(r); i++) {
        size_t klen, vlen;
        const char *key = okv_scan_result_key(r, i, &klen);
        const void *val = okv_scan_result_value(r, i, &vlen);
        int64_t a = account_of_key(key, klen, n), bal;
        jv *account = a >= 0 ? jv_int(a) : odd_string("not an account", key, klen);
        jv *balance = okv_counter_decode(val, vlen, &bal) == OKV_OK
                          ? jv_int(bal)
                          : odd_string("not a counter", val, vlen);
        jv_push(list, jv_pair(account, balance));
    }
    okv_scan_result_free(r);
    *out = list;
    return OKV_OK;
}

static void do_read(jclient *cl)
{
    char err[512] = "";
    jv *balances = NULL;
    client_invoke(cl, "read", jv_null());
    if (scan_accounts(cl, &balances, err, sizeof err) == OKV_OK)
        client_complete(cl, HIST_OK, balances, NULL);
    else
        client_complete(cl, HIST_FAIL, jv_null(), err);   /* a read has no effect */
}

/* ok = committed. fail = certainly not applied: a floor stopped it
 * (ECONDITION; the outcome is the applied one, exactly-once), or the codes
 * that mean nothing was applied. NOT_LEADER is final here too: liborderkv
 * turns a NOT_LEADER that follows an ambiguous attempt into EUNKNOWN
 * (client_settles_request). info = everything else (EUNKNOWN, ...). */
static hist_type transfer_outcome(int rc)
{
    switch (rc) {
    case OKV_OK: return HIST_OK;
    case OKV_ECONDITION:
    case OKV_ECONFLICT:
    case OKV_EUNAVAILABLE:
    case OKV_ETIMEDOUT:
    case OKV_ENOTLEADER: return HIST_FAIL;
    default: return HIST_INFO;
    }
}

static jv *transfer_value(int64_t from, int64_t to, int64_t amount)
{
    return jv_push(jv_pair(jv_int(from), jv_int(to)), jv_int(amount));
}

static void do_transfer(jclient *cl)
{
    int n = accounts_of(cl);
    int64_t from = (int64_t)client_rand_below(cl, (uint64_t)n);
    int64_t to = (from + 1 + (int64_t)client_rand_below(cl, (uint64_t)n - 1)) % n;
    int64_t amount = 1 + (int64_t)client_rand_below(cl, BANK_MAX_AMOUNT);
    int credit_first = (int)client_rand_below(cl, 2);
    char kf[32], kt[32], err[512];
    size_t kflen = account_key(kf, sizeof kf, from), ktlen = account_key(kt, sizeof kt, to);

    okv_txn_req *t = NULL;
    if (okv_txn_req_new(&t) != OKV_OK)
        abort();
    int rc = OKV_OK;
    if (credit_first)
        rc = okv_txn_req_add(t, BANK_TABLE, kt, ktlen, amount);
    if (rc == OKV_OK)
        rc = okv_txn_req_add_floor(t, BANK_TABLE, kf, kflen, -amount, 0);
    if (rc == OKV_OK && !credit_first)
        rc = okv_txn_req_add(t, BANK_TABLE, kt, ktlen, amount);
    if (rc != OKV_OK) {
        fprintf(stderr, "okv-jepsen: bank: building a transfer failed: %s\n", okv_strerror(rc));
        abort();
    }
    client_invoke(cl, "transfer", transfer_value(from, to, amount));
    okv_txn_outcome o;
    rc = okv_txn_commit(cl->c, t, &o, runner_config(cl->r)->op_timeout_ms);
    okv_txn_req_free(t);
    hist_type ty = transfer_outcome(rc);
    client_complete(cl, ty, transfer_value(from, to, amount),
                    ty == HIST_OK ? NULL : client_error(cl, rc, err, sizeof err));
}

static void bank_step(jclient *cl)
{
    if (client_rand_below(cl, 3) == 0)
        do_read(cl);
    else
        do_transfer(cl);
}

static void bank_final(jclient *cl)
{
    for (int attempt = 0; attempt < BANK_FINAL_ATTEMPTS; attempt++) {
        char err[512] = "";
        jv *balances = NULL;
        client_invoke(cl, "read", jv_null());
        if (scan_accounts(cl, &balances, err, sizeof err) == OKV_OK) {
            client_complete(cl, HIST_OK, balances, NULL);
            return;
        }
        client_complete(cl, HIST_FAIL, jv_null(), err);
        sleep_ms(500);
    }
}

/* After a failed `absent` condition: does the table already hold a bank of
 * n accounts with the expected total (our own earlier attempt applied, its
 * answer lost; or a rerun on the same cluster)? 1 yes, 0 no (why in msg). */
static int bank_exists(jclient *cl, char *msg, size_t size)
{
    int n = accounts_of(cl);
    jv *list = NULL;
    if (scan_accounts(cl, &list, msg, size) != OKV_OK)
        return 0;
    /* n distinct accounts (keys come in byte order: bank/10 before bank/2),
     * no balance negative or above the total, so the sum cannot overflow. */
    char seen[BANK_MAX_ACCOUNTS] = { 0 };
    int64_t sum = 0;
    int good = list->n == (size_t)n;
    for (size_t i = 0; good && i < list->n; i++) {
        const jv *a = list->items[i]->items[0], *b = list->items[i]->items[1];
        good = a->kind == JV_INT && !seen[a->i] && b->kind == JV_INT && b->i >= 0 &&
               b->i <= BANK_INITIAL * (int64_t)n;
        if (good) {
            seen[a->i] = 1;
            sum += b->i;
        }
    }
    good = good && sum == BANK_INITIAL * (int64_t)n;
    if (!good)
        snprintf(msg, size,
                 "table " BANK_TABLE " already holds keys under \"" BANK_PREFIX "\" that are not "
                 "%d accounts totalling %" PRId64 " (%zu keys found; another --accounts, or a "
                 "broken bank); the bank needs a fresh cluster (jepsen/run makes one per run)",
                 n, BANK_INITIAL * (int64_t)n, list->n);
    jv_free(list);
    return good;
}

static jv *init_value(int n) { return jv_pair(jv_int(n), jv_int(BANK_INITIAL)); }

/* Every account at BANK_INITIAL, in one transaction; retried while the
 * cluster settles (a resend of an ambiguous attempt is deduplicated, and a
 * retry after one that applied fails its `absent` conditions and finds the
 * bank in place). */
static int bank_setup(jclient *cl)
{
    int n = accounts_of(cl);
    const run_config *cfg = runner_config(cl->r);
    okv_txn_req *t = NULL;
    if (okv_txn_req_new(&t) != OKV_OK)
        abort();
    uint8_t initial[8];
    okv_counter_encode(BANK_INITIAL, initial);
    int rc = OKV_OK;
    for (int a = 0; a < n && rc == OKV_OK; a++) {
        char k[32];
        size_t klen = account_key(k, sizeof k, a);
        rc = okv_txn_req_absent(t, BANK_TABLE, k, klen);
        if (rc == OKV_OK)
            rc = okv_txn_req_put(t, BANK_TABLE, k, klen, initial, sizeof initial);
    }
    if (rc != OKV_OK) {
        fprintf(stderr, "okv-jepsen: bank: building the setup transaction failed: %s\n",
                okv_strerror(rc));
        okv_txn_req_free(t);
        return -1;
    }
    char err[512] = "";
    client_invoke(cl, "init", init_value(n));
    int done = 0;
    for (int attempt = 0; attempt < BANK_SETUP_ATTEMPTS && !done; attempt++) {
        if (attempt)
            sleep_ms(500);
        rc = okv_txn_commit(cl->c, t, NULL, cfg->op_timeout_ms * 5);
        if (rc == OKV_OK) {
            done = 1;
        } else if (rc == OKV_ECONDITION) {
            done = bank_exists(cl, err, sizeof err);
            if (!done)
                break;
            printf("okv-jepsen: bank: the %d accounts already existed with the right total\n", n);
        } else {
            client_error(cl, rc, err, sizeof err);
        }
    }
    okv_txn_req_free(t);
    if (done) {
        client_complete(cl, HIST_OK, init_value(n), NULL);
        return 0;
    }
    client_complete(cl, HIST_INFO, init_value(n), err);
    fprintf(stderr, "okv-jepsen: bank: cannot create the %d accounts: %s\n", n, err);
    return -1;
}

const workload workload_bank = {
    .name = "bank",
    .table = BANK_TABLE,
    .focus_key = BANK_PREFIX "0",
    .setup = bank_setup,
    .step = bank_step,
    .final = bank_final,
};
