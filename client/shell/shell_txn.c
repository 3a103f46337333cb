/*
 * shell_txn.c — the `txn` command: conditions + writes in one partition,
 * committed together or not at all (okv_txn_commit).
 *
 *   txn TABLE ITEM...
 *     conditions: exists KEY | absent KEY | version KEY N | value KEY VALUE
 *                 | int KEY lt|le|eq|ge|gt N
 *     writes:     put KEY VALUE | del KEY | add KEY N [floor F]
 *
 * Counters are 8-byte big-endian integers (orderkv.h); `get --int` shows
 * one as a number.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "shell_cmd_int.h"

static int parse_i64(const shell_arg *a, int64_t *out)
{
    if (a->len == 0 || a->len != strlen(a->bytes))
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(a->bytes, &end, 10);
    if (errno == ERANGE || !end || *end != '\0' || end == a->bytes)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int word_is(const shell_arg *a, const char *w)
{
    return !a->quoted && strcmp(a->bytes, w) == 0;
}

static const char *const reason_names[] = { "ok", "condition", "floor", "not_counter",
                                            "overflow", "locked" };

/* Adds the items of args[2..] to t; on a problem fills why and returns -1. */
static int build(okv_txn_req *t, const char *table, const shell_command *cmd, char *why,
                 size_t cap)
{
    size_t i = 2;
    while (i < cmd->argc) {
        const shell_arg *w = &cmd->args[i];
        size_t left = cmd->argc - i - 1;
        const shell_arg *k = left >= 1 ? &cmd->args[i + 1] : NULL;
        int rc = OKV_OK, need = 1;
        int64_t n = 0, fl = 0;
        uint64_t u = 0;
        if (word_is(w, "exists") || word_is(w, "absent") || word_is(w, "del")) {
            need = 1;
        } else if (word_is(w, "version") || word_is(w, "value") || word_is(w, "put") ||
                   word_is(w, "add")) {
            need = 2;
        } else if (word_is(w, "int")) {
            need = 3;
        } else {
            snprintf(why, cap, "unknown item '%.40s' (exists, absent, version, value, int, put, "
                               "del, add)", w->bytes);
            return -1;
        }
        if (left < (size_t)need) {
            snprintf(why, cap, "'%s' needs %d argument%s", w->bytes, need, need > 1 ? "s" : "");
            return -1;
        }
        if (word_is(w, "exists")) {
            rc = okv_txn_req_exists(t, table, k->bytes, k->len);
        } else if (word_is(w, "absent")) {
            rc = okv_txn_req_absent(t, table, k->bytes, k->len);
        } else if (word_is(w, "del")) {
            rc = okv_txn_req_delete(t, table, k->bytes, k->len);
        } else if (word_is(w, "version")) {
            if (shell_cmd_parse_u64(&cmd->args[i + 2], &u) || u == 0) {
                snprintf(why, cap, "version needs a version number above 0 (use absent for 0)");
                return -1;
            }
            rc = okv_txn_req_version_is(t, table, k->bytes, k->len, u);
        } else if (word_is(w, "value")) {
            rc = okv_txn_req_value_is(t, table, k->bytes, k->len, cmd->args[i + 2].bytes,
                                      cmd->args[i + 2].len);
        } else if (word_is(w, "put")) {
            rc = okv_txn_req_put(t, table, k->bytes, k->len, cmd->args[i + 2].bytes,
                                 cmd->args[i + 2].len);
        } else if (word_is(w, "int")) {
            static const char *const ops[] = { "lt", "le", "eq", "ge", "gt" };
            int op = 0;
            for (int o = 0; o < 5; o++)
                if (word_is(&cmd->args[i + 2], ops[o]))
                    op = o + 1;
            if (!op || parse_i64(&cmd->args[i + 3], &n)) {
                snprintf(why, cap, "int needs KEY lt|le|eq|ge|gt NUMBER");
                return -1;
            }
            rc = okv_txn_req_compare(t, table, k->bytes, k->len, (okv_cmp)op, n);
        } else {   /* add KEY N [floor F] */
            if (parse_i64(&cmd->args[i + 2], &n)) {
                snprintf(why, cap, "add needs KEY and a signed 64-bit NUMBER");
                return -1;
            }
            if (left >= 4 && word_is(&cmd->args[i + 3], "floor")) {
                if (parse_i64(&cmd->args[i + 4], &fl)) {
                    snprintf(why, cap, "floor needs a signed 64-bit NUMBER");
                    return -1;
                }
                rc = okv_txn_req_add_floor(t, table, k->bytes, k->len, n, fl);
                need += 2;
            } else {
                rc = okv_txn_req_add(t, table, k->bytes, k->len, n);
            }
        }
        if (rc != OKV_OK) {
            snprintf(why, cap, "'%s %.40s': %s (keys 1..%u bytes, at most %u conditions and %u "
                               "writes)", w->bytes, k->bytes, okv_strerror(rc), OKV_MAX_KEY_LEN,
                     OKV_TXN_MAX_ITEMS, OKV_TXN_MAX_ITEMS);
            return -1;
        }
        i += 1 + (size_t)need;
    }
    return 0;
}

int shell_cmd_txn(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    const shell_command *cmd = a->raw;
    if (cmd->argc < 4)
        return shell_cmd_fail_usage(ctx, def, "a table and at least one write");
    const char *table = cmd->args[1].bytes;
    if (strlen(table) != cmd->args[1].len)
        return shell_cmd_fail_usage(ctx, def, "a table name cannot contain NUL bytes");
    okv_txn_req *t = NULL;
    if (okv_txn_req_new(&t) != OKV_OK)
        return shell_cmd_fail_code(ctx, def, OKV_ENOMEM, "out of memory");
    char why[200];
    if (build(t, table, cmd, why, sizeof why) != 0) {
        okv_txn_req_free(t);
        return shell_cmd_fail_usage(ctx, def, why);
    }
    okv_txn_outcome o;
    int rc = okv_txn_commit(ctx->client, t, &o, ctx->timeout_ms);
    okv_txn_req_free(t);
    int has_item = rc == OKV_ECONDITION || rc == OKV_ECONFLICT;
    if (rc != OKV_OK && !(has_item && ctx->json))
        return shell_cmd_fail_okv(ctx, def, rc);
    shell_json j;
    if (rc != OKV_OK) {   /* JSON: the failure with the item that stopped it */
        shell_json_begin(&j, ctx->out);
        shell_json_bool(&j, "ok", 0);
        shell_json_str(&j, "cmd", def->name);
        shell_json_str(&j, "error", okv_strerror(rc));
        shell_json_int(&j, "code", rc);
        shell_json_str(&j, "message", okv_errmsg(ctx->client));
        shell_json_u64(&j, "failed", o.failed);
        shell_json_str(&j, "reason", o.reason >= 0 && o.reason <= 5 ? reason_names[o.reason]
                                                                     : "unknown");
        shell_json_end(&j);
        return -1;
    }
    if (ctx->json) {
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "table", table);
        shell_json_bool(&j, "committed", 1);
        shell_json_u64(&j, "version", o.version);
        shell_json_end(&j);
    } else {
        if (o.version)
            fprintf(ctx->out, "committed (version %" PRIu64 ")\n", o.version);
        else   /* across partitions: a version per partition */
            fprintf(ctx->out, "committed (across partitions)\n");
    }
    return 0;
}
