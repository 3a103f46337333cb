/*
 * shell_tx.c — interactive transactions in the shell: begin, then get /
 * put / del / add go through the transaction (okv_tx_*: reads record what
 * they saw, writes are buffered), then commit or abort.
 *
 * While a transaction is open, `get` and `scan` read through it (its own
 * buffered writes first), `put`, `del` and `add` buffer, and nothing is written
 * until `commit`, which applies everything only if nothing the transaction
 * read has changed (else "conflict": run it again). `add` outside a
 * transaction commits one add on its own.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell_cmd_int.h"

static int parse_i64(const shell_arg *a, int64_t *out)
{
    char buf[32];
    if (a->len == 0 || a->len >= sizeof buf || memchr(a->bytes, '\0', a->len))
        return -1;
    memcpy(buf, a->bytes, a->len);
    buf[a->len] = '\0';
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (*end || end == buf)
        return -1;
    *out = v;
    return 0;
}

static void say(shell_ctx *ctx, const shell_cmd_def *def, const char *text)
{
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "state", text);
        shell_json_end(&j);
    } else {
        fprintf(ctx->out, "%s\n", text);
    }
}

void shell_cmd_buffered(shell_ctx *ctx, const shell_cmd_def *def)
{
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_bool(&j, "buffered", 1);
        shell_json_end(&j);
    } else {
        fputs("buffered (commit applies it)\n", ctx->out);
    }
}

int shell_cmd_begin(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    (void)a;
    if (ctx->tx)
        return shell_cmd_fail_usage(ctx, def, "a transaction is already open: commit or abort "
                                              "it first");
    int rc = okv_tx_begin(ctx->client, &ctx->tx);
    if (rc != OKV_OK)
        return shell_cmd_fail_okv(ctx, def, rc);
    say(ctx, def, "transaction open: get, put, del and add go through it until commit or abort");
    return 0;
}

int shell_cmd_abort(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    (void)a;
    if (!ctx->tx)
        return shell_cmd_fail_usage(ctx, def, "no transaction is open (begin starts one)");
    okv_tx_free(ctx->tx);
    ctx->tx = NULL;
    say(ctx, def, "aborted: nothing was written");
    return 0;
}

int shell_cmd_commit(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    (void)a;
    if (!ctx->tx)
        return shell_cmd_fail_usage(ctx, def, "no transaction is open (begin starts one)");
    okv_txn_outcome o;
    int rc = okv_tx_commit(ctx->tx, &o, ctx->timeout_ms);
    okv_tx_free(ctx->tx);   /* spent either way */
    ctx->tx = NULL;
    if (rc == OKV_ECONFLICT)
        return shell_cmd_fail_code(ctx, def, rc, "something the transaction read changed "
                                                 "(or a key was locked): nothing was written; "
                                                 "run it again");
    if (rc != OKV_OK)
        return shell_cmd_fail_okv(ctx, def, rc);
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_bool(&j, "committed", 1);
        shell_json_u64(&j, "version", o.version);
        shell_json_end(&j);
    } else if (o.version) {
        fprintf(ctx->out, "committed (version %" PRIu64 ")\n", o.version);
    } else {
        fprintf(ctx->out, "committed\n");
    }
    return 0;
}

int shell_cmd_add(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    const char *table = a->pos[0]->bytes;
    const shell_arg *key = a->pos[1];
    int64_t delta, floor = 0;
    if (parse_i64(a->pos[2], &delta) != 0)
        return shell_cmd_fail_usage(ctx, def, "N must be an integer");
    int has_floor = a->flag[0] != NULL;
    if (has_floor && parse_i64(a->flag[0], &floor) != 0)
        return shell_cmd_fail_usage(ctx, def, "--floor takes an integer");
    int rc;
    if (ctx->tx) {
        rc = has_floor ? okv_tx_add_floor(ctx->tx, table, key->bytes, key->len, delta, floor)
                       : okv_tx_add(ctx->tx, table, key->bytes, key->len, delta);
        if (rc != OKV_OK)
            return shell_cmd_fail_okv(ctx, def, rc);
        shell_cmd_buffered(ctx, def);
        return 0;
    }
    okv_txn_req *t;
    if ((rc = okv_txn_req_new(&t)) != OKV_OK)
        return shell_cmd_fail_code(ctx, def, rc, "out of memory");
    rc = has_floor ? okv_txn_req_add_floor(t, table, key->bytes, key->len, delta, floor)
                   : okv_txn_req_add(t, table, key->bytes, key->len, delta);
    okv_txn_outcome o;
    if (rc == OKV_OK)
        rc = okv_txn_commit(ctx->client, t, &o, ctx->timeout_ms);
    okv_txn_req_free(t);
    if (rc != OKV_OK)
        return shell_cmd_fail_okv(ctx, def, rc);
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "table", table);
        shell_json_bytes(&j, "key", key->bytes, key->len);
        shell_json_u64(&j, "version", o.version);
        shell_json_end(&j);
    } else {
        fprintf(ctx->out, "ok (version %" PRIu64 ")\n", o.version);
    }
    return 0;
}
