/*
 * workload_bank.c — transfers between accounts: are transactions atomic,
 * across partitions (two-phase commit) and within one?
 *
 * N accounts (--accounts, default 8) are counters in table accounts, in one
 * of two layouts (--bank-layout):
 *
 *   spread (default)  keys "acct-0" .. "acct-<N-1>": no '/', so each key is
 *                     its own partition key and the accounts hash over the
 *                     table's partitions (acct-0..acct-7 land in all 8 of
 *                     the default 8; the setup prints where each lies and
 *                     refuses a layout that puts them all in one). A
 *                     transfer between accounts of two partitions is a
 *                     transaction across partitions: two-phase commit
 *                     (docs/transactions.md).
 *   one-partition     keys "bank/0" .. "bank/<N-1>": partition key "bank",
 *                     one partition, every transfer a one-partition
 *                     transaction (one Raft entry). The layout of the
 *                     planted bug txn.partial, which only one-partition
 *                     evaluation has.
 *
 * setup (thread 0, before the main phase): each account is put to
 * BANK_INITIAL under an `absent` condition, one one-key transaction per
 * account (so never two-phase commit: a planted 2PC bug spoils the
 * transfers, not the setup). Recorded as one f "init", value
 * [N, BANK_INITIAL]: the history says what the checker must find (N
 * accounts summing to N * BANK_INITIAL).
 *
 * transfer (value [from, to, amount], from != to, amount 1..BANK_MAX_AMOUNT):
 * ONE transaction of add_floor(from, -amount, 0) and add(to, +amount). The
 * amounts are large next to the balances, so floors stop many transfers.
 * The two writes come in random order: with the credit first, a floor that
 * stops the debit is write 1 of 2, and a server that applies the writes
 * before the failing one (the planted bug txn.partial) creates money. Debit
 * first, the same bug applies nothing, so only the random order exposes it.
 * Across partitions the order also picks the coordinator (the partition of
 * the first write), so either account's partition plays either role.
 *
 * read (invoke null; ok [[account, balance], ...]) — one snapshot of every
 * account, so it must be one transaction:
 *   spread: an interactive optimistic transaction (okv_tx_*) that gets
 *     every account, in a random order (the first get's partition
 *     coordinates the commit), and commits with no writes: the commit
 *     checks that every version it read is still current, across
 *     partitions a two-phase check holding shared locks. Only a committed
 *     read is ok; OKV_ECONFLICT (something changed, or a lock was met),
 *     OKV_ECONDITION or any other error make it a failed read. An account
 *     the gets found absent is left out (the commit checked it absent).
 *   spread, --bank-read scan: one okv_tx_scan of prefix "acct-" and a
 *     read-only commit (its per-partition range checks: no torn page);
 *   one-partition: one scan of prefix "bank/", one page from one replica's
 *     state, served linearizably.
 *   A scanned key that is not one of the N accounts is recorded with the
 *   key as a string.
 * Balances are listed by account (spread) or key order (one-partition); a
 * value that is not an 8-byte counter is recorded as a string (the checker
 * flags it). Reads happen during the run (one op in three) and in the
 * final phase, where each thread reads until one read succeeds.
 *
 * The checker (jepsen/checker/bank_check.h): every ok read has exactly the
 * N accounts, each a counter, none negative, summing to N * BANK_INITIAL.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "runner.h"

#define BANK_TABLE "accounts"
#define BANK_PREFIX "bank/"          /* one-partition layout */
#define BANK_SPREAD_PREFIX "acct-"   /* spread layout: no '/' */
#define BANK_INITIAL 100
#define BANK_MAX_AMOUNT 60
#define BANK_SETUP_ATTEMPTS 20
/* Final reads: spread reads are transactions that conflict with each other
 * (a shared lock has one holder), so every thread gets many tries, apart
 * by a random pause. */
#define BANK_FINAL_ATTEMPTS 20
#define BANK_FINAL_PAUSE_MS 100
#define BANK_FINAL_JITTER_MS 400
/* Extra room in the read's one page: keys that are not accounts (none on a
 * correct system) still show up, and the checker names them. */
#define BANK_SCAN_SLACK 64

static int accounts_of(const jclient *cl) { return runner_config(cl->r)->accounts; }
static int spread_of(const jclient *cl) { return !runner_config(cl->r)->bank_one_partition; }

static size_t layout_key(char *buf, size_t size, int spread, int64_t a)
{
    return (size_t)snprintf(buf, size, "%s%" PRId64, spread ? BANK_SPREAD_PREFIX : BANK_PREFIX, a);
}

static size_t account_key(const jclient *cl, char *buf, size_t size, int64_t a)
{
    return layout_key(buf, size, spread_of(cl), a);
}

/* The account number of key, or -1 if key is not "<prefix><a>" with a in
 * [0, n) written without leading zeros (so no two keys name one account). */
static int64_t account_of_key(const char *prefix, const char *key, size_t len, int n)
{
    size_t plen = strlen(prefix);
    if (len <= plen || len > plen + 9 || memcmp(key, prefix, plen) != 0)
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

static jv *balance_value(const void *val, size_t vlen)
{
    int64_t bal;
    return okv_counter_decode(val, vlen, &bal) == OKV_OK ? jv_int(bal)
                                                         : odd_string("not a counter", val, vlen);
}

/* One scan of every account. OKV_OK and *out = [[account, balance], ...],
 * else the code (err says why).
 *   one-partition layout: one okv_scan of prefix "bank/", one page from one
 *     replica's state, served linearizably;
 *   spread layout with --bank-read scan: one okv_tx_scan of prefix "acct-"
 *     (every partition, each read at its own moment) and a read-only
 *     commit, whose per-partition range checks prove the page was one state
 *     (planted txn.range.ignore skips them: torn reads, wrong-total). */
static int scan_accounts(jclient *cl, jv **out, char *err, size_t errsize)
{
    int n = accounts_of(cl), spread = spread_of(cl);
    const char *prefix = spread ? BANK_SPREAD_PREFIX : BANK_PREFIX;
    okv_scan_opts o = OKV_SCAN_OPTS_INIT;
    o.prefix = prefix;
    o.prefix_len = strlen(prefix);
    /* One page: pages are separate reads, and the read must be one state. */
    o.limit = (uint32_t)n + BANK_SCAN_SLACK;
    o.timeout_ms = runner_config(cl->r)->op_timeout_ms;
    okv_scan_result *r = NULL;
    okv_tx *t = NULL;
    int rc = spread ? okv_tx_begin(cl->c, &t) : OKV_OK;
    if (rc == OKV_OK)
        rc = spread ? okv_tx_scan(t, BANK_TABLE, &o, &r) : okv_scan(cl->c, BANK_TABLE, &o, &r);
    if (rc == OKV_OK && spread) {
        okv_txn_outcome oc;
        rc = okv_tx_commit(t, &oc, o.timeout_ms);
    }
    okv_tx_free(t);
    if (rc != OKV_OK) {
        okv_scan_result_free(r);
        client_error(cl, rc, err, errsize);
        return rc;
    }
    jv *list = jv_list();
    for (size_t i = 0; i < okv_scan_result_count(r); i++) {
        size_t klen, vlen;
        const char *key = okv_scan_result_key(r, i, &klen);
        const void *val = okv_scan_result_value(r, i, &vlen);
        int64_t a = account_of_key(prefix, key, klen, n);
        jv *account = a >= 0 ? jv_int(a) : odd_string("not an account", key, klen);
        jv_push(list, jv_pair(account, balance_value(val, vlen)));
    }
    okv_scan_result_free(r);
    *out = list;
    return OKV_OK;
}

/* Spread layout: one read-only interactive transaction that gets every
 * account in a random order and commits (the commit checks every version
 * read is still current: a two-phase check across partitions). OKV_OK and
 * *out = [[account, balance], ...] by account, the accounts found absent
 * left out; else the code (err says why), nothing in *out. */
static int tx_read_accounts(jclient *cl, jv **out, char *err, size_t errsize)
{
    int n = accounts_of(cl);
    int timeout = runner_config(cl->r)->op_timeout_ms;
    int order[BANK_MAX_ACCOUNTS];
    jv *balance[BANK_MAX_ACCOUNTS] = { 0 };
    for (int a = 0; a < n; a++)
        order[a] = a;
    for (int a = n - 1; a > 0; a--) {
        int b = (int)client_rand_below(cl, (uint64_t)a + 1), x = order[a];
        order[a] = order[b];
        order[b] = x;
    }
    okv_tx *t = NULL;
    int rc = okv_tx_begin(cl->c, &t);
    for (int k = 0; rc == OKV_OK && k < n; k++) {
        char key[32];
        size_t klen = account_key(cl, key, sizeof key, order[k]);
        okv_value *v = NULL;
        rc = okv_tx_get(t, BANK_TABLE, key, klen, &v, timeout);
        if (rc == OKV_OK)
            balance[order[k]] = balance_value(okv_value_data(v), okv_value_len(v));
        else if (rc == OKV_ENOTFOUND)
            rc = OKV_OK;   /* absent: left out, and the commit checks it stayed so */
        okv_value_free(v);
    }
    if (rc == OKV_OK) {
        okv_txn_outcome o;
        rc = okv_tx_commit(t, &o, timeout);
    }
    if (rc != OKV_OK)
        client_error(cl, rc, err, errsize);
    okv_tx_free(t);
    jv *list = rc == OKV_OK ? jv_list() : NULL;
    for (int a = 0; a < n; a++) {
        if (!balance[a])
            continue;
        if (list)
            jv_push(list, jv_pair(jv_int(a), balance[a]));
        else
            jv_free(balance[a]);
    }
    if (list)
        *out = list;
    return rc;
}

/* Every account's balance as one snapshot, as the layout reads it. */
static int read_accounts(jclient *cl, jv **out, char *err, size_t errsize)
{
    return spread_of(cl) && !runner_config(cl->r)->bank_read_scan
               ? tx_read_accounts(cl, out, err, errsize)
               : scan_accounts(cl, out, err, errsize);
}

static void do_read(jclient *cl)
{
    char err[512] = "";
    jv *balances = NULL;
    client_invoke(cl, "read", jv_null());
    if (read_accounts(cl, &balances, err, sizeof err) == OKV_OK)
        client_complete(cl, HIST_OK, balances, NULL);
    else
        client_complete(cl, HIST_FAIL, jv_null(), err);   /* a read has no effect */
}

/* ok = committed. fail = certainly not applied: a floor stopped it
 * (ECONDITION; the outcome is the applied one, exactly-once), or the codes
 * that mean nothing was applied (ECONFLICT: a lock was met, or, across
 * partitions, the transaction was aborted past its deadline). NOT_LEADER
 * is final here too: liborderkv turns a NOT_LEADER that follows an
 * ambiguous attempt into EUNKNOWN (client_settles_request). info =
 * everything else (EUNKNOWN, ...). */
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
    size_t kflen = account_key(cl, kf, sizeof kf, from), ktlen = account_key(cl, kt, sizeof kt, to);

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
        if (read_accounts(cl, &balances, err, sizeof err) == OKV_OK) {
            client_complete(cl, HIST_OK, balances, NULL);
            return;
        }
        client_complete(cl, HIST_FAIL, jv_null(), err);
        sleep_ms(BANK_FINAL_PAUSE_MS + (double)client_rand_below(cl, BANK_FINAL_JITTER_MS));
    }
}

/* After a failed `absent` condition: does the table already hold a bank of
 * n accounts with the expected total (our own earlier attempt applied, its
 * answer lost; or a rerun on the same cluster)? 1 yes, 0 no (why in msg),
 * -1 the read failed (try again; why in msg). */
static int bank_exists(jclient *cl, char *msg, size_t size)
{
    int n = accounts_of(cl);
    jv *list = NULL;
    if (read_accounts(cl, &list, msg, size) != OKV_OK)
        return -1;
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
                 "table " BANK_TABLE " already holds keys under \"%s\" that are not "
                 "%d accounts totalling %" PRId64 " (%zu found; another --accounts, or a "
                 "broken bank); the bank needs a fresh cluster (jepsen/run makes one per run)",
                 spread_of(cl) ? BANK_SPREAD_PREFIX : BANK_PREFIX, n,
                 BANK_INITIAL * (int64_t)n, list->n);
    jv_free(list);
    return good;
}

static jv *init_value(int n) { return jv_pair(jv_int(n), jv_int(BANK_INITIAL)); }

/* The partition of key, as the servers compute it (common/hash.h): FNV-1a
 * of the part before the first '/', modulo the table's partitions. */
static uint32_t partition_of(const char *key, size_t len, uint32_t partitions)
{
    const char *slash = memchr(key, '/', len);
    return (uint32_t)(okv_hash64(key, slash ? (size_t)(slash - key) : len) % partitions);
}

/* Says where the accounts lie (the table's partition count from a node's
 * status). -1 when the spread layout put every account in one partition:
 * no transfer would cross partitions. Not knowing the count is only a
 * warning. */
static int bank_placement(jclient *cl)
{
    int n = accounts_of(cl), spread = spread_of(cl);
    uint32_t partitions = 0;
    for (int attempt = 0; attempt < 5 && !partitions; attempt++) {
        okv_status *st = NULL;
        if (attempt)
            sleep_ms(200);
        if (okv_status_get(cl->c, &st, runner_config(cl->r)->op_timeout_ms) != OKV_OK)
            continue;
        for (size_t t = 0; t < okv_status_table_count(st); t++)
            if (strcmp(okv_status_table_name(st, t), BANK_TABLE) == 0)
                partitions = okv_status_table_partitions(st, t);
        okv_status_free(st);
    }
    if (!partitions) {
        printf("okv-jepsen: bank: warning: cannot learn the partition count of table " BANK_TABLE
               " (no node status); the accounts' placement is not checked\n");
        return 0;
    }
    char list[600];
    size_t used = 0;
    uint32_t distinct = 0, seen[BANK_MAX_ACCOUNTS];   /* the distinct partitions */
    for (int a = 0; a < n; a++) {
        char k[32];
        size_t klen = layout_key(k, sizeof k, spread, a);
        uint32_t p = partition_of(k, klen, partitions), i = 0;
        while (i < distinct && seen[i] != p)
            i++;
        if (i == distinct)
            seen[distinct++] = p;
        if (a < 16 && used < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s:%u", a ? " " : "", k, p);
    }
    printf("okv-jepsen: bank: %s layout, %d accounts in %u of the %u partitions of " BANK_TABLE
           " (%s%s)\n", spread ? "spread" : "one-partition", n, distinct, partitions, list,
           n > 16 ? " ..." : "");
    fflush(stdout);
    if (spread && distinct < 2 && partitions > 1) {
        fprintf(stderr, "okv-jepsen: bank: the spread layout put all %d accounts in one partition: "
                "no transfer would cross partitions (use more --accounts)\n", n);
        return -1;
    }
    return 0;
}

/* Account a at BANK_INITIAL: one transaction of absent(a) and put(a), in
 * a's partition alone (one Raft entry, never two-phase commit, so a
 * planted 2PC bug cannot spoil the setup), retried while the cluster
 * settles (a resend of an ambiguous attempt is deduplicated). OKV_OK
 * created, OKV_ECONDITION it existed (an earlier attempt of ours applied,
 * its answer lost; or a rerun on the same cluster), else the last error
 * (err says it). */
static int create_account(jclient *cl, int64_t a, char *err, size_t errsize)
{
    okv_txn_req *t = NULL;
    if (okv_txn_req_new(&t) != OKV_OK)
        abort();
    uint8_t initial[8];
    okv_counter_encode(BANK_INITIAL, initial);
    char k[32];
    size_t klen = account_key(cl, k, sizeof k, a);
    int rc = okv_txn_req_absent(t, BANK_TABLE, k, klen);
    if (rc == OKV_OK)
        rc = okv_txn_req_put(t, BANK_TABLE, k, klen, initial, sizeof initial);
    if (rc != OKV_OK) {
        snprintf(err, errsize, "building the setup transaction of %s failed: %s", k,
                 okv_strerror(rc));
        okv_txn_req_free(t);
        return rc;
    }
    for (int attempt = 0; attempt < BANK_SETUP_ATTEMPTS; attempt++) {
        if (attempt)
            sleep_ms(500);
        rc = okv_txn_commit(cl->c, t, NULL, runner_config(cl->r)->op_timeout_ms * 5);
        if (rc == OKV_OK || rc == OKV_ECONDITION)
            break;
        client_error(cl, rc, err, errsize);
    }
    okv_txn_req_free(t);
    return rc;
}

/* Every account at BANK_INITIAL, one transaction per account (see
 * create_account); recorded as one init op. If some already existed, the
 * bank is accepted only if all N accounts are there with the right total
 * (a rerun on the same cluster, or our own attempts that applied). */
static int bank_setup(jclient *cl)
{
    int n = accounts_of(cl);
    if (bank_placement(cl) != 0)
        return -1;
    char err[512] = "";
    client_invoke(cl, "init", init_value(n));
    int existed = 0, rc = OKV_OK;
    for (int a = 0; a < n && (rc == OKV_OK || rc == OKV_ECONDITION); a++) {
        rc = create_account(cl, a, err, sizeof err);
        existed += rc == OKV_ECONDITION;
    }
    int done = rc == OKV_OK || rc == OKV_ECONDITION;
    if (done && existed) {
        int exists = -1;
        for (int attempt = 0; attempt < BANK_SETUP_ATTEMPTS && exists < 0; attempt++) {
            if (attempt)
                sleep_ms(500);
            exists = bank_exists(cl, err, sizeof err);
        }
        done = exists == 1;
        if (done)
            printf("okv-jepsen: bank: %d of the %d accounts already existed; all %d have the "
                   "right total\n", existed, n, n);
    }
    if (done) {
        client_complete(cl, HIST_OK, init_value(n), NULL);
        return 0;
    }
    client_complete(cl, HIST_INFO, init_value(n), err);
    fprintf(stderr, "okv-jepsen: bank: cannot create the %d accounts: %s\n", n, err);
    return -1;
}

/* Where leader faults aim: the one-partition bank's partition, or the
 * partition of a random account of the spread bank (main.c calls this once,
 * before the nemesis starts). */
static const char *bank_focus_keys(const run_config *cfg)
{
    static char keys[BANK_MAX_ACCOUNTS * 12];
    if (cfg->bank_one_partition)
        return BANK_PREFIX "0";
    size_t used = 0;
    for (int a = 0; a < cfg->accounts && used < sizeof keys; a++)
        used += (size_t)snprintf(keys + used, sizeof keys - used, "%s" BANK_SPREAD_PREFIX "%d",
                                 a ? "," : "", a);
    return keys;
}

const workload workload_bank = {
    .name = "bank",
    .table = BANK_TABLE,
    .focus_key = BANK_PREFIX "0",
    .focus_keys = bank_focus_keys,
    .setup = bank_setup,
    .step = bank_step,
    .final = bank_final,
};
