/*
 * shell_commands.c — the command table and each command (shell_commands.h).
 *
 * A command is one entry in `commands`: its usage line, help text, the flags it
 * accepts and a handler. Arguments are checked here, before any network call,
 * so a typo gets a usage message instead of a server round trip.
 */
#include "shell_commands.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "shell_backup.h"
#include "shell_cmd_int.h"
#include "shell_output.h"
#include "shell_tables.h"

/* ---- reporting ------------------------------------------------------------- */

/* The single place failures are printed (shell_cmd_int.h). */
int shell_cmd_report(shell_ctx *ctx, const char *cmd, const char *kind, int has_code, int code,
                     const char *msg)
{
    if (ctx->json) {
        shell_json j;
        shell_json_begin(&j, ctx->out);
        shell_json_bool(&j, "ok", 0);
        shell_json_str(&j, "cmd", cmd);
        shell_json_str(&j, "error", kind);
        if (has_code)
            shell_json_int(&j, "code", code);
        else
            shell_json_str(&j, "code", NULL);
        shell_json_str(&j, "message", msg);
        shell_json_end(&j);
    } else if (msg && *msg && strncmp(msg, kind, strlen(kind)) == 0) {
        fprintf(ctx->err, "error: %s\n", msg);   /* it already says what kind */
    } else if (msg && *msg) {
        fprintf(ctx->err, "error: %s: %s\n", kind, msg);
    } else {
        fprintf(ctx->err, "error: %s\n", kind);
    }
    return -1;
}

int shell_cmd_fail_okv(shell_ctx *ctx, const shell_cmd_def *def, int rc)
{
    return shell_cmd_report(ctx, def->name, okv_strerror(rc), 1, rc, okv_errmsg(ctx->client));
}

int shell_cmd_fail_reason(shell_ctx *ctx, const shell_cmd_def *def, int rc, const char *reason,
                          const char *hint)
{
    const char *msg = okv_errmsg(ctx->client);
    if (!ctx->json && !hint)
        return shell_cmd_report(ctx, def->name, okv_strerror(rc), 1, rc, msg);
    if (!ctx->json) {
        char line[800];
        snprintf(line, sizeof line, "%s%s(%s)", msg, msg[0] ? " " : "", hint);
        return shell_cmd_report(ctx, def->name, okv_strerror(rc), 1, rc, line);
    }
    shell_json j;
    shell_json_begin(&j, ctx->out);
    shell_json_bool(&j, "ok", 0);
    shell_json_str(&j, "cmd", def->name);
    shell_json_str(&j, "error", okv_strerror(rc));
    shell_json_int(&j, "code", rc);
    shell_json_str(&j, "message", msg);
    shell_json_str(&j, "reason", reason);
    shell_json_str(&j, "hint", hint);
    shell_json_end(&j);
    return -1;
}

int shell_cmd_fail_code(shell_ctx *ctx, const shell_cmd_def *def, int rc, const char *msg)
{
    return shell_cmd_report(ctx, def->name, okv_strerror(rc), 1, rc, msg);
}

int shell_cmd_fail_usage(shell_ctx *ctx, const shell_cmd_def *def, const char *problem)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s%s%s%s", def->usage, problem ? " (" : "",
             problem ? problem : "", problem ? ")" : "");
    return shell_cmd_report(ctx, def->name, "usage", 0, 0, msg);
}

void shell_report_syntax_error(shell_ctx *ctx, const char *msg)
{
    shell_cmd_report(ctx, NULL, "syntax", 0, 0, msg);
}

void shell_cmd_json_ok(shell_ctx *ctx, shell_json *j, const shell_cmd_def *def)
{
    shell_json_begin(j, ctx->out);
    shell_json_bool(j, "ok", 1);
    shell_json_str(j, "cmd", def->name);
}

/* ---- argument helpers -------------------------------------------------------- */

/* An unquoted argument that starts with "--" is a flag; quoting makes it data. */
static int is_flag(const shell_arg *a)
{
    return !a->quoted && a->len > 2 && a->bytes[0] == '-' && a->bytes[1] == '-';
}

static int parse_args(shell_ctx *ctx, const shell_cmd_def *def, const shell_command *cmd,
                      shell_args *a)
{
    char problem[160];
    memset(a, 0, sizeof *a);
    a->raw = cmd;
    if (def->max_pos == SHELL_VARIADIC)
        return 0;
    for (size_t i = 1; i < cmd->argc; i++) {
        const shell_arg *arg = &cmd->args[i];
        if (!is_flag(arg)) {
            if (a->npos == def->max_pos)
                return shell_cmd_fail_usage(ctx, def, "too many arguments");
            a->pos[a->npos++] = arg;
            continue;
        }
        size_t f = 0;
        while (f < SHELL_MAX_FLAGS && def->flags[f] && strcmp(def->flags[f], arg->bytes) != 0)
            f++;
        if (f == SHELL_MAX_FLAGS || !def->flags[f]) {
            snprintf(problem, sizeof problem, "unknown option %.100s (quote it if it is data)",
                     arg->bytes);
            return shell_cmd_fail_usage(ctx, def, problem);
        }
        if (i + 1 == cmd->argc) {
            snprintf(problem, sizeof problem, "%s needs a value", def->flags[f]);
            return shell_cmd_fail_usage(ctx, def, problem);
        }
        if (a->flag[f]) {
            snprintf(problem, sizeof problem, "%s given twice", def->flags[f]);
            return shell_cmd_fail_usage(ctx, def, problem);
        }
        a->flag[f] = &cmd->args[++i];
    }
    if (a->npos < def->min_pos)
        return shell_cmd_fail_usage(ctx, def, "missing arguments");
    if (def->takes_table && a->npos > 0 && strlen(a->pos[0]->bytes) != a->pos[0]->len)
        return shell_cmd_fail_usage(ctx, def, "a table name cannot contain NUL bytes");
    return 0;
}

int shell_cmd_parse_u64(const shell_arg *a, uint64_t *out)
{
    if (a->len == 0 || a->len != strlen(a->bytes))
        return -1;
    for (size_t i = 0; i < a->len; i++)
        if (a->bytes[i] < '0' || a->bytes[i] > '9')
            return -1;
    errno = 0;
    unsigned long long v = strtoull(a->bytes, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* ---- key-value commands ------------------------------------------------------ */

static int cmd_get(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    const char *table = a->pos[0]->bytes;
    const shell_arg *key = a->pos[1];
    okv_value *v = NULL;
    int as_int = 0;
    if (a->flag[0]) {
        if (!(as_int = strcmp(a->flag[0]->bytes, "yes") == 0) &&
            strcmp(a->flag[0]->bytes, "no") != 0)
            return shell_cmd_fail_usage(ctx, def, "--int takes yes or no");
    }
    int rc = ctx->tx ? okv_tx_get(ctx->tx, table, key->bytes, key->len, &v, ctx->timeout_ms)
                     : okv_get(ctx->client, table, key->bytes, key->len, &v, ctx->timeout_ms);
    if (rc != OKV_OK)
        return shell_cmd_fail_okv(ctx, def, rc);
    int64_t num = 0;
    if (as_int && okv_counter_decode(okv_value_data(v), okv_value_len(v), &num) != OKV_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "the value is %zu bytes, not a counter (8 bytes)",
                 okv_value_len(v));
        okv_value_free(v);
        return shell_cmd_fail_code(ctx, def, OKV_EINVAL, msg);
    }
    if (as_int && ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "table", table);
        shell_json_bytes(&j, "key", key->bytes, key->len);
        shell_json_int(&j, "int", (long long)num);
        shell_json_u64(&j, "version", okv_value_version(v));
        shell_json_end(&j);
    } else if (as_int) {
        fprintf(ctx->out, "%" PRId64 "\n(version %" PRIu64 ")\n", num, okv_value_version(v));
    } else if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "table", table);
        shell_json_bytes(&j, "key", key->bytes, key->len);
        shell_json_bytes(&j, "value", okv_value_data(v), okv_value_len(v));
        shell_json_u64(&j, "version", okv_value_version(v));
        shell_json_end(&j);
    } else {
        shell_out_human_write(ctx->out, okv_value_data(v), okv_value_len(v));
        fprintf(ctx->out, "\n(version %" PRIu64 ")\n", okv_value_version(v));
    }
    okv_value_free(v);
    return 0;
}

static int cmd_put(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    const char *table = a->pos[0]->bytes;
    const shell_arg *key = a->pos[1], *val = a->pos[2];
    uint64_t version = 0, expected = 0;
    int rc;
    if (ctx->tx) {
        if (a->flag[0])
            return shell_cmd_fail_usage(ctx, def, "--if-version has no use inside a transaction "
                                                  "(what it read is its condition)");
        if ((rc = okv_tx_put(ctx->tx, table, key->bytes, key->len, val->bytes, val->len)))
            return shell_cmd_fail_okv(ctx, def, rc);
        shell_cmd_buffered(ctx, def);
        return 0;
    }
    if (a->flag[0]) {
        if (shell_cmd_parse_u64(a->flag[0], &expected) != 0)
            return shell_cmd_fail_usage(ctx, def,
                              "--if-version needs a version number (0: key must be absent)");
        rc = okv_put_if(ctx->client, table, key->bytes, key->len, val->bytes, val->len,
                        expected, &version, ctx->timeout_ms);
    } else {
        rc = okv_put(ctx->client, table, key->bytes, key->len, val->bytes, val->len,
                     &version, ctx->timeout_ms);
    }
    if (rc != OKV_OK)
        return shell_cmd_fail_okv(ctx, def, rc);
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "table", table);
        shell_json_bytes(&j, "key", key->bytes, key->len);
        shell_json_u64(&j, "version", version);
        shell_json_end(&j);
    } else {
        fprintf(ctx->out, "ok (version %" PRIu64 ")\n", version);
    }
    return 0;
}

static int cmd_del(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    const char *table = a->pos[0]->bytes;
    const shell_arg *key = a->pos[1];
    int existed = 0;
    if (ctx->tx) {
        int rc = okv_tx_delete(ctx->tx, table, key->bytes, key->len);
        if (rc != OKV_OK)
            return shell_cmd_fail_okv(ctx, def, rc);
        shell_cmd_buffered(ctx, def);
        return 0;
    }
    int rc = okv_delete(ctx->client, table, key->bytes, key->len, &existed, ctx->timeout_ms);
    if (rc != OKV_OK)
        return shell_cmd_fail_okv(ctx, def, rc);
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "table", table);
        shell_json_bytes(&j, "key", key->bytes, key->len);
        shell_json_bool(&j, "existed", existed);
        shell_json_end(&j);
    } else {
        fputs(existed ? "deleted\n" : "ok (no such key)\n", ctx->out);
    }
    return 0;
}

/* ---- scan ---------------------------------------------------------------------- */

/* The pages one scan command collected; kept until printed so that the human
 * table can size its columns over every row. */
typedef struct scan_pages {
    okv_scan_result **page;
    size_t count, cap;
    size_t rows;
    int more;          /* the server had keys beyond the limit */
} scan_pages;

static void scan_pages_free(scan_pages *p)
{
    for (size_t i = 0; i < p->count; i++)
        okv_scan_result_free(p->page[i]);
    free(p->page);
}

static int scan_pages_push(scan_pages *p, okv_scan_result *r)
{
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        okv_scan_result **n = realloc(p->page, cap * sizeof *n);
        if (!n)
            return -1;
        p->page = n;
        p->cap = cap;
    }
    p->page[p->count++] = r;
    p->rows += okv_scan_result_count(r);
    return 0;
}

/*
 * Asks for pages of at most `page` rows until `limit` rows arrived or the
 * server says the scan is complete (no resume token). A page that brings no
 * rows and hands back the same token would loop forever, so it ends the scan.
 */
static int scan_fetch(shell_ctx *ctx, const char *table, okv_scan_opts opts, uint64_t limit,
                      uint32_t page, scan_pages *p)
{
    for (;;) {
        uint64_t want = limit - p->rows;
        opts.limit = (uint32_t)(want < page ? want : page);
        okv_scan_result *r = NULL;
        /* In a transaction: through it (its writes show; commit checks
         * that nothing in the scanned range changed). */
        int rc = ctx->tx ? okv_tx_scan(ctx->tx, table, &opts, &r)
                         : okv_scan(ctx->client, table, &opts, &r);
        if (rc != OKV_OK)
            return rc;
        if (scan_pages_push(p, r) != 0) {
            okv_scan_result_free(r);
            return OKV_ENOMEM;
        }
        size_t tlen = 0;
        const void *tok = okv_scan_result_resume(r, &tlen);
        if (!tok)
            return OKV_OK;
        if (p->rows >= limit) {
            p->more = 1;
            return OKV_OK;
        }
        if (okv_scan_result_count(r) == 0 && opts.resume && tlen == opts.resume_len &&
            memcmp(tok, opts.resume, tlen) == 0)
            return OKV_OK;
        /* The token is borrowed from r, which stays alive in p. */
        opts.resume = tok;
        opts.resume_len = tlen;
    }
}

static void scan_print_json(shell_ctx *ctx, const shell_cmd_def *def, const char *table,
                            const scan_pages *p)
{
    shell_json j;
    shell_cmd_json_ok(ctx, &j, def);
    shell_json_str(&j, "table", table);
    shell_json_u64(&j, "count", p->rows);
    shell_json_bool(&j, "more", p->more);
    shell_json_array_begin(&j, "items");
    for (size_t pg = 0; pg < p->count; pg++) {
        const okv_scan_result *r = p->page[pg];
        for (size_t i = 0; i < okv_scan_result_count(r); i++) {
            size_t kl = 0, vl = 0;
            const void *k = okv_scan_result_key(r, i, &kl);
            const void *v = okv_scan_result_value(r, i, &vl);
            shell_json_object_begin(&j, NULL);
            shell_json_bytes(&j, "key", k, kl);
            shell_json_u64(&j, "version", okv_scan_result_version(r, i));
            shell_json_bytes(&j, "value", v, vl);
            shell_json_object_end(&j);
        }
    }
    shell_json_array_end(&j);
    shell_json_end(&j);
}

/* Width of the key column: the longest rendered key (rendering twice keeps the
 * code simple; scans are bounded by --limit). */
static size_t scan_key_width(const scan_pages *p)
{
    size_t w = 3;   /* "KEY" */
    for (size_t pg = 0; pg < p->count; pg++) {
        const okv_scan_result *r = p->page[pg];
        for (size_t i = 0; i < okv_scan_result_count(r); i++) {
            size_t kl = 0;
            const void *k = okv_scan_result_key(r, i, &kl);
            char *s = shell_out_human(k, kl);
            if (s && strlen(s) > w)
                w = strlen(s);
            free(s);
        }
    }
    return w;
}

static void scan_print_human(shell_ctx *ctx, const scan_pages *p)
{
    int kw = (int)scan_key_width(p);
    fprintf(ctx->out, "%-*s  %-8s  %s\n", kw, "KEY", "VERSION", "VALUE");
    for (size_t pg = 0; pg < p->count; pg++) {
        const okv_scan_result *r = p->page[pg];
        for (size_t i = 0; i < okv_scan_result_count(r); i++) {
            size_t kl = 0, vl = 0;
            const void *k = okv_scan_result_key(r, i, &kl);
            const void *v = okv_scan_result_value(r, i, &vl);
            char *ks = shell_out_human(k, kl);
            fprintf(ctx->out, "%-*s  %-8" PRIu64 "  ", kw, ks ? ks : "?",
                    okv_scan_result_version(r, i));
            shell_out_human_write(ctx->out, v, vl);
            fputc('\n', ctx->out);
            free(ks);
        }
    }
    fprintf(ctx->out, "(%zu row%s%s)\n", p->rows, p->rows == 1 ? "" : "s",
            p->more ? "; more keys follow, raise --limit to see them" : "");
}

static int cmd_scan(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    const char *table = a->pos[0]->bytes;
    const shell_arg *prefix = a->npos > 1 ? a->pos[1] : NULL;
    const shell_arg *from = a->flag[0], *to = a->flag[1];
    uint64_t limit = OKV_SCAN_DEFAULT_LIMIT;
    uint64_t page = OKV_SCAN_MAX_LIMIT;
    if (a->flag[2] && (shell_cmd_parse_u64(a->flag[2], &limit) != 0 || limit == 0))
        return shell_cmd_fail_usage(ctx, def, "--limit needs a positive number");
    if (a->flag[3] && (shell_cmd_parse_u64(a->flag[3], &page) != 0 || page == 0 ||
                       page > OKV_SCAN_MAX_LIMIT))
        return shell_cmd_fail_usage(ctx, def, "--page-size needs a number from 1 to 10000");
    if (prefix && (from || to))
        return shell_cmd_fail_usage(ctx, def, "give a PREFIX or --from/--to, not both");

    okv_scan_opts opts = OKV_SCAN_OPTS_INIT;
    opts.timeout_ms = ctx->timeout_ms;
    if (prefix) {
        opts.prefix = prefix->bytes;
        opts.prefix_len = prefix->len;
    }
    if (from) {
        opts.start = from->bytes;
        opts.start_len = from->len;
    }
    if (to) {
        opts.end = to->bytes;
        opts.end_len = to->len;
    }
    scan_pages p = { NULL, 0, 0, 0, 0 };
    int rc = scan_fetch(ctx, table, opts, limit, (uint32_t)page, &p);
    if (rc != OKV_OK) {
        scan_pages_free(&p);
        return shell_cmd_fail_okv(ctx, def, rc);
    }
    if (ctx->json)
        scan_print_json(ctx, def, table, &p);
    else
        scan_print_human(ctx, &p);
    scan_pages_free(&p);
    return 0;
}

/* ---- admin commands -------------------------------------------------------------- */

static void json_tables(shell_json *j, const okv_status *s)
{
    shell_json_array_begin(j, "tables");
    for (size_t i = 0; i < okv_status_table_count(s); i++) {
        shell_json_object_begin(j, NULL);
        shell_json_str(j, "name", okv_status_table_name(s, i));
        shell_json_u64(j, "id", okv_status_table_id(s, i));
        shell_json_u64(j, "partitions", okv_status_table_partitions(s, i));
        shell_json_object_end(j);
    }
    shell_json_array_end(j);
}

static int cmd_tables(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    okv_status *s = NULL;
    int rc = okv_status_get(ctx->client, &s, ctx->timeout_ms);
    if (rc != OKV_OK)
        return shell_cmd_fail_okv(ctx, def, rc);
    shell_tables_update(&ctx->tables, s);
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        json_tables(&j, s);
        shell_json_end(&j);
    } else {
        int w = 4;   /* "NAME" */
        for (size_t i = 0; i < okv_status_table_count(s); i++)
            if ((int)strlen(okv_status_table_name(s, i)) > w)
                w = (int)strlen(okv_status_table_name(s, i));
        fprintf(ctx->out, "%-*s  %-4s  %s\n", w, "NAME", "ID", "PARTITIONS");
        for (size_t i = 0; i < okv_status_table_count(s); i++)
            fprintf(ctx->out, "%-*s  %-4" PRIu32 "  %" PRIu32 "\n", w,
                    okv_status_table_name(s, i), okv_status_table_id(s, i),
                    okv_status_table_partitions(s, i));
    }
    okv_status_free(s);
    return 0;
}

static const char *const counter_names[] = { "writes", "syncs", "reads", "lease_reads",
                                              "proposals", "entries_applied" };
#define N_COUNTERS (sizeof counter_names / sizeof counter_names[0])

void shell_cmd_status_human(FILE *o, const okv_status *s)
{
    fprintf(o, "node id:        %" PRIu64 "\n", okv_status_node_id(s));
    fprintf(o, "server version: %s\n", okv_status_server_version(s));
    fprintf(o, "address:        %s\n", okv_status_address(s));
    fprintf(o, "uptime:         %" PRIu64 " ms\n", okv_status_uptime_ms(s));
    fputs("tables:        ", o);
    for (size_t i = 0; i < okv_status_table_count(s); i++)
        fprintf(o, "%s %s (%" PRIu32 " partitions)", i ? "," : "",
                okv_status_table_name(s, i), okv_status_table_partitions(s, i));
    fputc('\n', o);
    for (size_t i = 0; i < N_COUNTERS; i++)
        fprintf(o, "%-15s %" PRIu64 "\n", counter_names[i],
                okv_status_counter(s, counter_names[i]));
}

void shell_cmd_status_json(shell_json *j, const okv_status *s)
{
    shell_json_u64(j, "node_id", okv_status_node_id(s));
    shell_json_str(j, "server_version", okv_status_server_version(s));
    shell_json_str(j, "address", okv_status_address(s));
    shell_json_u64(j, "uptime_ms", okv_status_uptime_ms(s));
    json_tables(j, s);
    shell_json_object_begin(j, "counters");
    for (size_t i = 0; i < N_COUNTERS; i++)
        shell_json_u64(j, counter_names[i], okv_status_counter(s, counter_names[i]));
    shell_json_object_end(j);
}

static int cmd_status(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    okv_status *s = NULL;
    int rc = okv_status_get(ctx->client, &s, ctx->timeout_ms);
    if (rc != OKV_OK)
        return shell_cmd_fail_okv(ctx, def, rc);
    shell_tables_update(&ctx->tables, s);
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_cmd_status_json(&j, s);
        shell_json_end(&j);
    } else {
        shell_cmd_status_human(ctx->out, s);
    }
    okv_status_free(s);
    return 0;
}

static int cmd_quit(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    ctx->quit = 1;
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_end(&j);
    }
    return 0;
}

static int cmd_help(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);

/* ---- the table ------------------------------------------------------------------- */

static const char *const cluster_subcommands[] = { "status", NULL };

static const shell_cmd_def commands[] = {
    { "get", "get TABLE KEY [--int yes]", "read a key's value and version",
      "Prints the value, then its version on a line of its own.\n"
      "Fails (exit status 1) if the key or the table does not exist.\n"
      "--int yes prints a counter (8-byte big-endian integer, see txn) as a\n"
      "number, and fails if the value is not one.\n"
      "  get orders cust1/o1\n"
      "  get orders \"bin\\x00key\"\n"
      "  get accounts shop1/alice --int yes",
      { "--int", NULL }, 2, 2, 1, cmd_get, NULL },
    { "txn", "txn TABLE ITEM...", "conditions + writes, all applied or none",
      "Commits a transaction on keys of TABLE: in one partition (keys sharing\n"
      "the part before their first '/') as one entry, across partitions with\n"
      "two-phase commit. Every condition is checked first; if all hold, every\n"
      "write applies (one version per partition), else nothing does and the error\n"
      "names the item (conditions numbered first, then writes). Items:\n"
      "  exists KEY | absent KEY | version KEY N | value KEY VALUE\n"
      "  int KEY lt|le|eq|ge|gt N          (KEY holds a counter)\n"
      "  put KEY VALUE | del KEY | add KEY N [floor F]\n"
      "Counters are 8-byte big-endian integers; add to an absent key starts at 0;\n"
      "with floor F the transaction fails if the sum would be below F.\n"
      "  txn accounts add shop1/alice 1000\n"
      "  txn accounts int shop1/alice ge 300 add shop1/alice -300 floor 0 add shop1/bob 300\n"
      "  txn orders absent c1/o9 put c1/o9 created put c1/index o9",
      { NULL }, 0, SHELL_VARIADIC, 1, shell_cmd_txn, NULL },
    { "begin", "begin", "open a transaction: get/put/del/add go through it",
      "Opens an interactive transaction. Until commit or abort, get reads\n"
      "through it (its own writes first; the first read of a key records its\n"
      "version), and put, del and add are buffered: nothing is written yet.\n"
      "Keys may lie in any tables and partitions.\n"
      "  begin\n"
      "  get accounts alice --int yes\n"
      "  add accounts alice -300 --floor 0\n"
      "  add accounts bob 300\n"
      "  commit",
      { NULL }, 0, 0, 0, shell_cmd_begin, NULL },
    { "commit", "commit", "commit the open transaction",
      "Applies every buffered write if nothing the transaction read has changed\n"
      "(and every floor holds); otherwise fails with \"conflict\" (or \"condition\n"
      "failed\") and writes nothing. The transaction ends either way.",
      { NULL }, 0, 0, 0, shell_cmd_commit, NULL },
    { "abort", "abort", "drop the open transaction",
      "Ends the open transaction; nothing it buffered is written.",
      { NULL }, 0, 0, 0, shell_cmd_abort, NULL },
    { "add", "add TABLE KEY N [--floor F]", "add N to a counter",
      "Adds N (may be negative) to the counter at KEY (8-byte big-endian integer;\n"
      "an absent key starts at 0). With --floor F it fails (\"condition failed\")\n"
      "if the result would be below F. Inside a transaction it is buffered;\n"
      "otherwise it commits on its own.\n"
      "  add accounts alice 1000\n"
      "  add accounts alice -300 --floor 0",
      { "--floor", NULL }, 3, 3, 1, shell_cmd_add, NULL },
    { "put", "put TABLE KEY VALUE [--if-version N]", "write a key",
      "Writes VALUE and prints the version the write produced.\n"
      "With --if-version N the write happens only if the key's current version\n"
      "is N (0: only if the key does not exist); otherwise it fails with\n"
      "\"conflict\" and nothing is written.\n"
      "  put orders cust1/o1 hello\n"
      "  put orders cust1/o1 \"two words\\n\" --if-version 7",
      { "--if-version", NULL }, 3, 3, 1, cmd_put, NULL },
    { "del", "del TABLE KEY", "delete a key",
      "Deletes the key. Deleting a key that does not exist succeeds and says so.\n"
      "  del orders cust1/o1",
      { NULL }, 2, 2, 1, cmd_del, NULL },
    { "scan", "scan TABLE [PREFIX] [--from START] [--to END] [--limit N] [--page-size P]",
      "list keys in key order",
      "Lists keys with their versions and values, in key order: every key that\n"
      "starts with PREFIX, or the keys in [START, END) (either bound may be left\n"
      "out), or the whole table. Stops after N rows (default 100), fetching as\n"
      "many pages from the server as that takes, and says when more keys follow.\n"
      "--page-size P caps the rows asked for per request (default and most: 10000).\n"
      "  scan orders cust1/\n"
      "  scan orders --from cust1/o100 --to cust1/o200 --limit 1000",
      { "--from", "--to", "--limit", "--page-size" }, 1, 2, 1, cmd_scan, NULL },
    { "order", "order create|show|list|pay|cancel|ship|complete|refund ...",
      "orders: place, read, pay, cancel, ship, complete, refund",
      "The orders service (docs/orders.md; needs a cluster). Amounts are in major\n"
      "units of the order's currency (12.34), exact; output shows them with the\n"
      "currency (30.00 CNY). --key K makes create, pay and refund idempotent:\n"
      "resending the same command with the same key returns the first answer and\n"
      "never charges twice; the same key with another request is refused.\n"
      "  order create CUSTOMER CURRENCY SKU:QTY:PRICE... [--merchant M] [--reserve] [--key K]\n"
      "      places an order (CREATED); --reserve takes each item's stock with it\n"
      "  order show CUSTOMER ORDER\n"
      "  order list CUSTOMER [--limit N] [--after ORDER]   one page, by order id\n"
      "  order pay CUSTOMER ORDER [AMOUNT] [--account A] [--method M] [--key K]\n"
      "      CREATED -> PAID; AMOUNT defaults to the order's total; --account\n"
      "      debits that account (else --method names how it was paid)\n"
      "  order cancel CUSTOMER ORDER [--reason R]   before shipping; refunds a paid order\n"
      "  order ship CUSTOMER ORDER                  PAID -> SHIPPED\n"
      "  order complete CUSTOMER ORDER              SHIPPED -> COMPLETED\n"
      "  order refund CUSTOMER ORDER AMOUNT [--reason R] [--key K]\n"
      "      back to the paying account; never more than was captured\n"
      "Errors: illegal transition, insufficient funds, sold out, idempotency key\n"
      "reused with another request, in progress (resend with the same --key),\n"
      "not found; each line says what to do.\n"
      "  order create c1 CNY tea:2:15.00 --reserve --key c1-cart-7\n"
      "  order pay c1 ORDER --account acct1 --key c1-pay-7",
      { NULL }, 0, SHELL_VARIADIC, 0, shell_cmd_order, shell_order_subcommands },
    { "account", "account create|show|deposit ...", "accounts: create, show balance, deposit",
      "Accounts that orders are paid from (docs/orders.md; needs a cluster).\n"
      "  account create ACCOUNT CURRENCY [--owner O]   balance 0; again: no change\n"
      "  account show ACCOUNT                          currency, owner, balance\n"
      "  account deposit ACCOUNT AMOUNT [--key K]      AMOUNT in major units (12.34)\n"
      "  account create acct1 CNY --owner c1\n"
      "  account deposit acct1 100.00 --key topup-1",
      { NULL }, 0, SHELL_VARIADIC, 0, shell_cmd_account, shell_account_subcommands },
    { "stock", "stock set|show|reserve ...", "stock: set, show, reserve units of a sku",
      "Units available per sku (docs/orders.md; needs a cluster).\n"
      "  stock set SKU N                  N units available from now on\n"
      "  stock show SKU\n"
      "  stock reserve SKU N [--customer C] [--key K]\n"
      "      takes N units if at least N are left, else \"sold out\" (nothing taken)\n"
      "  stock set tea 100\n"
      "  stock reserve tea 1 --customer c1 --key c1-flash-1",
      { NULL }, 0, SHELL_VARIADIC, 0, shell_cmd_stock, shell_stock_subcommands },
    { "user", "user add|list|delete|role|grant|revoke|passwd ...",
      "users and roles (clusters run with --auth on)",
      "Manages who may do what (docs/operations.md \"Users and roles\"); needs\n"
      "role admin. Roles: admin (everything), writer (read and write every\n"
      "table), reader (read every table), none (only its grants). A grant gives\n"
      "reader or writer on one table on top of the role. New passwords come from\n"
      "--password-file FILE (its first line) or are typed twice on the terminal,\n"
      "never from the command line.\n"
      "  user add NAME ROLE [--password-file F | --no-password]\n"
      "      --no-password: only a client certificate whose CN is NAME logs in\n"
      "  user list\n"
      "  user delete NAME\n"
      "  user role NAME admin|writer|reader|none\n"
      "  user grant NAME TABLE reader|writer\n"
      "  user revoke NAME TABLE\n"
      "  user passwd NAME [--password-file F | --no-password]\n"
      "  user add ops reader --password-file ops.pw\n"
      "  user grant ops payments writer",
      { NULL }, 0, SHELL_VARIADIC, 0, shell_cmd_user, shell_user_subcommands },
    { "whoami", "whoami", "the user this shell is logged in as",
      "Shows the user and role the node takes this shell for (--user, or the\n"
      "client certificate's common name), or that the cluster runs with\n"
      "--auth off.",
      { NULL }, 0, 0, 0, shell_cmd_whoami, NULL },
    { "tables", "tables", "list the tables",
      "Lists every table with its id and number of partitions.",
      { NULL }, 0, 0, 0, cmd_tables, NULL },
    { "status", "status", "show the status of the node that answered",
      "Shows the node id, server version, address, uptime, tables and counters\n"
      "(writes, syncs, reads, keys) of the node the client reached.",
      { NULL }, 0, 0, 0, cmd_status, NULL },
    { "cluster", "cluster status", "show every node and every partition's replicas",
      "Asks every node of the cluster map for its status (at the same time; a\n"
      "node that does not answer within --timeout is shown as down) and prints\n"
      "the nodes (id, address, up/down, uptime), then one row per partition:\n"
      "table, partition, leader node, term, and per replica its node, role,\n"
      "commit index, applied index and lag (the leader's commit minus the\n"
      "replica's applied). Partitions without a leader are marked NO LEADER.\n"
      "A node running alone (no --initial-cluster) says so and shows its status.\n"
      "  cluster status",
      { NULL }, 1, 1, 0, shell_cmd_cluster, cluster_subcommands },
    { "partitions", "partitions TABLE", "show one table's partitions, leaders and replicas",
      "The rows of \"cluster status\" for one table: each partition's leader,\n"
      "term, and replicas with their role, commit, applied and lag.\n"
      "  partitions orders",
      { NULL }, 1, 1, 1, shell_cmd_partitions, NULL },
    { "transfer-leader", "transfer-leader TABLE PARTITION NODE",
      "move a partition's leadership to another node",
      "Asks the partition's leader to hand leadership to node NODE (which must\n"
      "hold a replica), then watches NODE's status for up to 5 seconds until it\n"
      "leads, and prints the old and new leader and term. The partition may\n"
      "also be written TABLE/PARTITION. Fails with \"timed out\" if NODE does\n"
      "not take over in time (the transfer may still complete later).\n"
      "  transfer-leader orders 0 2\n"
      "  transfer-leader orders/0 2",
      { NULL }, 2, 3, 1, shell_cmd_transfer_leader, NULL },
    { "audit", "audit tail [N] [--node ADDR]", "show a node's audit log (admin actions, refusals)",
      "Prints the last N lines (default 20, at most 1000) of one node's audit\n"
      "log, oldest first: one JSON object per line with time (UTC), who, from\n"
      "(the client's address), what and result, for every admin action (such\n"
      "as transfer-leader) and every refused request that node handled. Each\n"
      "node keeps its own log; --node ADDR picks the node (default: the first\n"
      "address the shell was given). With --json, \"lines\" holds the lines as\n"
      "strings. See docs/operations.md \"Audit log\".\n"
      "  audit tail\n"
      "  audit tail 100 --node 127.0.0.1:7401",
      { "--node", NULL }, 1, 2, 0, shell_cmd_audit, shell_audit_subcommands },
    { "backup", "backup DIR [--fence-ms MS]", "online backup of every partition into DIR",
      "Cuts every partition at a Raft index of its own while the cluster serves\n"
      "and writes one file per partition and a MANIFEST (SHA-256 of each) into\n"
      "DIR (new or empty). Every write acknowledged before the command is in\n"
      "it; no transaction across partitions is in it in part: while the backup\n"
      "runs (and at most --fence-ms, default 60000, if the shell dies) such\n"
      "transactions are refused with CONFLICT (retry them); other writes go on.\n"
      "Restore with: orderkv restore DIR --node-id N --initial-cluster ... --data-dir D\n"
      "  backup /backups/2024-05-01",
      { "--fence-ms", NULL }, 1, 1, 0, shell_cmd_backup, NULL },
    { "help", "help [COMMAND]", "list the commands, or explain one",
      "Without an argument, lists every command and the argument syntax;\n"
      "with one, shows that command's usage and help.",
      { NULL }, 0, 1, 0, cmd_help, NULL },
    { "quit", "quit", "leave the shell",
      "Stops reading commands. End of input (Ctrl-D) does the same.",
      { NULL }, 0, 0, 0, cmd_quit, NULL },
    { "exit", "exit", "leave the shell (same as quit)",
      "Same as quit.",
      { NULL }, 0, 0, 0, cmd_quit, NULL },
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char syntax_help[] =
    "Arguments are separated by spaces. Use double quotes for spaces and binary\n"
    "bytes: inside quotes \\\" \\\\ \\n \\t \\r \\0 and \\xNN are escapes. Quote data\n"
    "that starts with --. Separate several commands on one line with ';'.\n"
    "A '#' at the start of an argument begins a comment.\n";

static const shell_cmd_def *find_command(const char *name, size_t len)
{
    if (strlen(name) != len)
        return NULL;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int cmd_help(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    const shell_cmd_def *which = NULL;
    if (a->npos == 1) {
        which = find_command(a->pos[0]->bytes, a->pos[0]->len);
        if (!which) {
            char msg[160];
            snprintf(msg, sizeof msg, "no command named %.100s (try help)", a->pos[0]->bytes);
            return shell_cmd_report(ctx, def->name, "unknown command", 0, 0, msg);
        }
    }
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        if (which) {
            shell_json_str(&j, "name", which->name);
            shell_json_str(&j, "usage", which->usage);
            shell_json_str(&j, "summary", which->summary);
            shell_json_str(&j, "help", which->help);
        } else {
            shell_json_array_begin(&j, "commands");
            for (size_t i = 0; i < N_COMMANDS; i++) {
                shell_json_object_begin(&j, NULL);
                shell_json_str(&j, "name", commands[i].name);
                shell_json_str(&j, "usage", commands[i].usage);
                shell_json_str(&j, "summary", commands[i].summary);
                shell_json_object_end(&j);
            }
            shell_json_array_end(&j);
            shell_json_str(&j, "syntax", syntax_help);
        }
        shell_json_end(&j);
    } else if (which) {
        fprintf(ctx->out, "usage: %s\n%s\n", which->usage, which->help);
    } else {
        fputs("Commands:\n", ctx->out);
        for (size_t i = 0; i < N_COMMANDS; i++) {
            /* A usage too long for the column gets the summary on its own line. */
            if (strlen(commands[i].usage) > 38)
                fprintf(ctx->out, "  %s\n  %-38s %s\n", commands[i].usage, "",
                        commands[i].summary);
            else
                fprintf(ctx->out, "  %-38s %s\n", commands[i].usage, commands[i].summary);
        }
        fprintf(ctx->out, "\n%s\"help COMMAND\" explains one command.\n", syntax_help);
    }
    return 0;
}

/* ---- entry points ------------------------------------------------------------------- */

int shell_execute(shell_ctx *ctx, const shell_command *cmd)
{
    const shell_arg *name = &cmd->args[0];
    const shell_cmd_def *def = find_command(name->bytes, name->len);
    if (!def) {
        char msg[160];
        snprintf(msg, sizeof msg, "no command named %.100s (try help)", name->bytes);
        return shell_cmd_report(ctx, NULL, "unknown command", 0, 0, msg);
    }
    shell_args a;
    if (parse_args(ctx, def, cmd, &a) != 0)
        return -1;
    return def->run(ctx, def, &a);
}

const char *shell_command_name(size_t i)
{
    return i < N_COMMANDS ? commands[i].name : NULL;
}

int shell_command_takes_table(const char *name)
{
    const shell_cmd_def *def = find_command(name, strlen(name));
    return def ? def->takes_table : 0;
}

const char *shell_command_subcommand(const char *name, size_t i)
{
    const shell_cmd_def *def = find_command(name, strlen(name));
    if (!def || !def->subcommands)
        return NULL;
    for (size_t k = 0; k <= i; k++)
        if (!def->subcommands[k])
            return NULL;
    return def->subcommands[i];
}
