/*
 * shell_cluster_cmds.c — the cluster admin commands: `cluster status`,
 * `partitions TABLE` and `transfer-leader`. Gathering is in shell_gather.c,
 * the per-partition view in shell_cluster.c; this file parses arguments and
 * renders the result as text or one JSON object.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shell_cluster.h"
#include "shell_cmd_int.h"
#include "shell_gather.h"
#include "shell_tables.h"

/* How long transfer-leader watches for the new leader, and how often. */
#define TRANSFER_WAIT_MS 5000
#define TRANSFER_POLL_MS 50

static const char single_note[] =
    "this node runs alone (no --initial-cluster): no replication, it serves every partition";

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* "3d04h", "2h05m", "4m07s", "12.3s": compact, for a column. */
static void format_uptime(char *buf, size_t cap, uint64_t ms)
{
    uint64_t s = ms / 1000;
    if (s >= 86400)
        snprintf(buf, cap, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else
        snprintf(buf, cap, "%" PRIu64 ".%" PRIu64 "s", s, ms % 1000 / 100);
}

/* The table's name, or "#ID" for a table the catalog does not name. */
static const char *table_label(const shell_partition_row *r, char *buf, size_t cap)
{
    if (r->table)
        return r->table;
    snprintf(buf, cap, "#%" PRIu32, r->table_id);
    return buf;
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_row(shell_json *j, const shell_partition_row *r)
{
    shell_json_object_begin(j, NULL);
    shell_json_str(j, "table", r->table);
    shell_json_u64(j, "table_id", r->table_id);
    shell_json_u64(j, "partition", r->partition);
    if (r->has_leader)
        shell_json_u64(j, "leader", r->leader);
    else
        shell_json_str(j, "leader", NULL);
    shell_json_u64(j, "term", r->term);
    shell_json_array_begin(j, "replicas");
    for (size_t i = 0; i < r->replica_count; i++) {
        const shell_replica_row *p = &r->replicas[i];
        shell_json_object_begin(j, NULL);
        shell_json_u64(j, "node", p->node);
        shell_json_str(j, "role", p->role);
        shell_json_u64(j, "term", p->term);
        shell_json_u64(j, "leader_seen", p->leader_seen);
        shell_json_u64(j, "commit", p->commit);
        shell_json_u64(j, "applied", p->applied);
        shell_json_u64(j, "last_index", p->last_index);
        if (p->lag_known)
            shell_json_u64(j, "lag", p->lag);
        else
            shell_json_str(j, "lag", NULL);
        shell_json_object_end(j);
    }
    shell_json_array_end(j);
    shell_json_object_end(j);
}

/* Rows of table_id only, or all rows when all is set. */
static void json_rows(shell_json *j, const shell_cluster_view *v, int all, uint32_t table_id)
{
    shell_json_array_begin(j, "partitions");
    for (size_t i = 0; i < v->count; i++)
        if (all || v->rows[i].table_id == table_id)
            json_row(j, &v->rows[i]);
    shell_json_array_end(j);
}

static void json_nodes(shell_json *j, const shell_gather *g)
{
    shell_json_array_begin(j, "nodes");
    for (size_t i = 0; i < g->node_count; i++) {
        shell_json_object_begin(j, NULL);
        shell_json_u64(j, "id", g->nodes[i].id);
        shell_json_str(j, "address", g->nodes[i].address);
        shell_json_bool(j, "up", g->nodes[i].up);
        if (g->nodes[i].up) {
            uint64_t epoch;
            const char *detail;
            const char *meta = okv_status_meta(g->status[i], &epoch, &detail);
            shell_json_u64(j, "uptime_ms", okv_status_uptime_ms(g->status[i]));
            shell_json_str(j, "server_version", okv_status_server_version(g->status[i]));
            shell_json_str(j, "meta", meta);
            shell_json_u64(j, "meta_epoch", epoch);
            shell_json_str(j, "meta_detail", detail);
            shell_json_str(j, "error", NULL);
        } else {
            shell_json_str(j, "uptime_ms", NULL);
            shell_json_str(j, "server_version", NULL);
            shell_json_str(j, "meta", NULL);
            shell_json_str(j, "error", okv_strerror(g->rc[i]));
            shell_json_int(j, "code", g->rc[i]);
            shell_json_str(j, "message", g->error[i] ? g->error[i] : "");
        }
        shell_json_object_end(j);
    }
    shell_json_array_end(j);
}

/* ---- human -------------------------------------------------------------------- */

static void human_nodes(FILE *o, const shell_gather *g)
{
    int aw = 7;   /* "ADDRESS" */
    for (size_t i = 0; i < g->node_count; i++)
        if ((int)strlen(g->nodes[i].address) > aw)
            aw = (int)strlen(g->nodes[i].address);
    fprintf(o, "%-5s  %-*s  %-5s  %-8s  %s\n", "NODE", aw, "ADDRESS", "STATE", "META",
            "UPTIME");
    for (size_t i = 0; i < g->node_count; i++) {
        char up[32] = "-";
        const char *meta = "-", *detail = "";
        if (g->nodes[i].up) {
            format_uptime(up, sizeof up, okv_status_uptime_ms(g->status[i]));
            meta = okv_status_meta(g->status[i], NULL, &detail);
            if (!*meta)
                meta = "-";
        }
        fprintf(o, "%-5" PRIu64 "  %-*s  %-5s  %-8s  %s", g->nodes[i].id, aw,
                g->nodes[i].address, g->nodes[i].up ? "up" : "down", meta, up);
        if (strcmp(meta, "mismatch") == 0)
            fprintf(o, "  (%s)", detail);
        if (!g->nodes[i].up)
            fprintf(o, "  (%s%s%s)", okv_strerror(g->rc[i]),
                    g->error[i] && *g->error[i] ? ": " : "", g->error[i] ? g->error[i] : "");
        fputc('\n', o);
    }
}

/* One "NODE:ROLE COMMIT/APPLIED lag N" cell per replica. */
static void human_replicas(FILE *o, const shell_partition_row *r)
{
    if (r->replica_count == 0)
        fputs("(no replica answered)", o);
    for (size_t i = 0; i < r->replica_count; i++) {
        const shell_replica_row *p = &r->replicas[i];
        fprintf(o, "%s%" PRIu64 ":%s %" PRIu64 "/%" PRIu64 " lag ", i ? "  " : "", p->node,
                p->role ? p->role : "?", p->commit, p->applied);
        if (p->lag_known)
            fprintf(o, "%" PRIu64, p->lag);
        else
            fputc('?', o);
    }
    fputc('\n', o);
}

/* The partition table: every row with a TABLE column (all, for cluster
 * status), or only table_id's rows without it (partitions). */
static void human_rows(FILE *o, const shell_cluster_view *v, int all, uint32_t table_id)
{
    char buf[24];
    int tw = 5;   /* "TABLE" */
    for (size_t i = 0; i < v->count; i++)
        if ((int)strlen(table_label(&v->rows[i], buf, sizeof buf)) > tw)
            tw = (int)strlen(table_label(&v->rows[i], buf, sizeof buf));
    if (all)
        fprintf(o, "%-*s  ", tw, "TABLE");
    fprintf(o, "%-4s  %-9s  %-5s  %s\n", "PART", "LEADER", "TERM",
            "REPLICAS (node:role commit/applied lag)");
    for (size_t i = 0; i < v->count; i++) {
        const shell_partition_row *r = &v->rows[i];
        if (!all && r->table_id != table_id)
            continue;
        if (all)
            fprintf(o, "%-*s  ", tw, table_label(r, buf, sizeof buf));
        char leader[24] = "NO LEADER";
        if (r->has_leader)
            snprintf(leader, sizeof leader, "%" PRIu64, r->leader);
        fprintf(o, "%-4" PRIu32 "  %-9s  %-5" PRIu64 "  ", r->partition, leader, r->term);
        human_replicas(o, r);
    }
}

/* "N partitions, M without a leader: orders/3, ..." */
static void human_summary(FILE *o, const shell_cluster_view *v, int all, uint32_t table_id)
{
    size_t n = 0, bad = 0;
    for (size_t i = 0; i < v->count; i++) {
        if (!all && v->rows[i].table_id != table_id)
            continue;
        n++;
        bad += !v->rows[i].has_leader;
    }
    fprintf(o, "(%zu partition%s, %zu without a leader", n, n == 1 ? "" : "s", bad);
    char buf[24];
    const char *sep = ": ";
    for (size_t i = 0; i < v->count && bad > 0; i++) {
        const shell_partition_row *r = &v->rows[i];
        if ((all || r->table_id == table_id) && !r->has_leader) {
            fprintf(o, "%s%s/%" PRIu32, sep, table_label(r, buf, sizeof buf), r->partition);
            sep = ", ";
        }
    }
    fputs(")\n", o);
}

/* ---- cluster status -------------------------------------------------------------- */

/* Gathers and aggregates; on failure it has reported and returns -1. */
static int gather_view(shell_ctx *ctx, const shell_cmd_def *def, shell_gather **g,
                       shell_cluster_view **v)
{
    *v = NULL;
    int rc = shell_gather_run(ctx->client, ctx->timeout_ms, g);
    if (rc != OKV_OK)
        return rc == OKV_ENOMEM ? shell_cmd_fail_code(ctx, def, rc, "out of memory")
                                : shell_cmd_fail_okv(ctx, def, rc);
    shell_tables_update(&ctx->tables, (*g)->first);
    if (!(*g)->single && shell_cluster_aggregate(&(*g)->input, v) != 0) {
        shell_gather_free(*g);
        *g = NULL;
        return shell_cmd_fail_code(ctx, def, OKV_ENOMEM, "out of memory");
    }
    return 0;
}

static size_t nodes_up(const shell_gather *g)
{
    size_t up = 0;
    for (size_t i = 0; i < g->node_count; i++)
        up += g->nodes[i].up != 0;
    return up;
}

static void cluster_print(shell_ctx *ctx, const shell_cmd_def *def, const shell_gather *g,
                          const shell_cluster_view *v)
{
    uint64_t cid = okv_status_cluster_id(g->first);
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "subcommand", "status");
        shell_json_bool(&j, "single_node", g->single);
        shell_json_u64(&j, "cluster_id", cid);
        if (g->single) {
            shell_json_str(&j, "note", single_note);
            shell_json_object_begin(&j, "node");
            shell_cmd_status_json(&j, g->first);
            shell_json_object_end(&j);
        } else {
            json_nodes(&j, g);
            json_rows(&j, v, 1, 0);
            shell_json_u64(&j, "leaderless", v->leaderless);
        }
        shell_json_end(&j);
        return;
    }
    FILE *o = ctx->out;
    if (g->single) {
        fprintf(o, "single node: %s\n", single_note);
        shell_cmd_status_human(o, g->first);
        return;
    }
    fprintf(o, "cluster %" PRIu64 ": %zu nodes, %zu up\n", cid, g->node_count, nodes_up(g));
    human_nodes(o, g);
    fputc('\n', o);
    human_rows(o, v, 1, 0);
    human_summary(o, v, 1, 0);
}

int shell_cmd_cluster(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    if (strcmp(a->pos[0]->bytes, "status") != 0 || a->pos[0]->len != 6)
        return shell_cmd_fail_usage(ctx, def, "the only subcommand is status");
    shell_gather *g = NULL;
    shell_cluster_view *v = NULL;
    if (gather_view(ctx, def, &g, &v) != 0)
        return -1;
    cluster_print(ctx, def, g, v);
    shell_cluster_view_free(v);
    shell_gather_free(g);
    return 0;
}

/* ---- partitions ---------------------------------------------------------------------- */

/* The catalog index of table `name`, or it reports "not found" and returns -1. */
static int find_table(shell_ctx *ctx, const shell_cmd_def *def, const shell_gather *g,
                      const char *name, size_t *out)
{
    *out = shell_gather_find_table(g, name);
    if (*out != (size_t)-1)
        return 0;
    char msg[160];
    snprintf(msg, sizeof msg, "no table named %.100s (see \"tables\")", name);
    return shell_cmd_fail_code(ctx, def, OKV_ENOTFOUND, msg);
}

static void partitions_single(shell_ctx *ctx, const shell_cmd_def *def, const shell_gather *g,
                              size_t t)
{
    const char *name = okv_status_table_name(g->first, t);
    uint32_t parts = okv_status_table_partitions(g->first, t);
    uint64_t node = okv_status_node_id(g->first);
    if (!ctx->json) {
        fprintf(ctx->out, "single node: %s\ntable %s: %" PRIu32 " partitions, all on node %" PRIu64
                "\n", single_note, name, parts, node);
        return;
    }
    shell_json j;
    shell_cmd_json_ok(ctx, &j, def);
    shell_json_str(&j, "table", name);
    shell_json_u64(&j, "table_id", okv_status_table_id(g->first, t));
    shell_json_bool(&j, "single_node", 1);
    shell_json_u64(&j, "cluster_id", 0);
    shell_json_str(&j, "note", single_note);
    shell_json_array_begin(&j, "partitions");
    for (uint32_t p = 0; p < parts; p++) {
        shell_json_object_begin(&j, NULL);
        shell_json_str(&j, "table", name);
        shell_json_u64(&j, "table_id", okv_status_table_id(g->first, t));
        shell_json_u64(&j, "partition", p);
        shell_json_u64(&j, "leader", node);
        shell_json_str(&j, "term", NULL);
        shell_json_array_begin(&j, "replicas");
        shell_json_array_end(&j);
        shell_json_object_end(&j);
    }
    shell_json_array_end(&j);
    shell_json_end(&j);
}

int shell_cmd_partitions(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    const char *name = a->pos[0]->bytes;
    shell_gather *g = NULL;
    shell_cluster_view *v = NULL;
    size_t t;
    if (gather_view(ctx, def, &g, &v) != 0)
        return -1;
    int rc = find_table(ctx, def, g, name, &t);
    if (rc == 0 && g->single) {
        partitions_single(ctx, def, g, t);
    } else if (rc == 0) {
        uint32_t id = okv_status_table_id(g->first, t);
        if (ctx->json) {
            shell_json j;
            shell_cmd_json_ok(ctx, &j, def);
            shell_json_str(&j, "table", name);
            shell_json_u64(&j, "table_id", id);
            shell_json_bool(&j, "single_node", 0);
            shell_json_u64(&j, "cluster_id", okv_status_cluster_id(g->first));
            json_nodes(&j, g);
            json_rows(&j, v, 0, id);
            shell_json_end(&j);
        } else {
            fprintf(ctx->out, "table %s (id %" PRIu32 "), %zu of %zu nodes up\n", name, id,
                    nodes_up(g), g->node_count);
            human_rows(ctx->out, v, 0, id);
            human_summary(ctx->out, v, 0, id);
        }
    }
    shell_cluster_view_free(v);
    shell_gather_free(g);
    return rc;
}

/* ---- transfer-leader ------------------------------------------------------------------- */

/* What transfer-leader was asked: table (owned), partition, node. */
typedef struct transfer_req {
    char *table;
    uint32_t partition;
    uint64_t to;
} transfer_req;

/* Accepts TABLE PARTITION NODE and TABLE/PARTITION NODE (the last '/' splits,
 * so a table name could hold one). */
static int transfer_parse(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a,
                          transfer_req *r)
{
    uint64_t part = 0;
    const shell_arg *parg = NULL, *narg;
    shell_arg split;
    char *name = a->pos[0]->bytes;
    size_t name_len = a->pos[0]->len;
    if (a->npos == 3) {
        parg = a->pos[1];
        narg = a->pos[2];
    } else {
        char *slash = strrchr(name, '/');
        if (!slash)
            return shell_cmd_fail_usage(ctx, def,
                                        "give TABLE PARTITION NODE or TABLE/PARTITION NODE");
        split.bytes = slash + 1;
        split.len = strlen(slash + 1);
        split.quoted = 0;
        parg = &split;
        name_len = (size_t)(slash - name);
        narg = a->pos[1];
    }
    if (shell_cmd_parse_u64(parg, &part) != 0 || part > UINT32_MAX)
        return shell_cmd_fail_usage(ctx, def, "PARTITION must be a partition number");
    if (shell_cmd_parse_u64(narg, &r->to) != 0 || r->to == 0)
        return shell_cmd_fail_usage(ctx, def, "NODE must be a node id (see \"cluster status\")");
    if (name_len == 0)
        return shell_cmd_fail_usage(ctx, def, "the table name is empty");
    r->partition = (uint32_t)part;
    r->table = malloc(name_len + 1);
    if (!r->table)
        return shell_cmd_fail_code(ctx, def, OKV_ENOMEM, "out of memory");
    memcpy(r->table, name, name_len);
    r->table[name_len] = '\0';
    return 0;
}

/* Checks the request against the gathered state; reports and returns -1 if it
 * cannot work. */
static int transfer_check(shell_ctx *ctx, const shell_cmd_def *def, const shell_gather *g,
                          const transfer_req *r, size_t *node_idx)
{
    char msg[200];
    size_t t;
    if (g->single)
        return shell_cmd_fail_code(ctx, def, OKV_EINVAL,
                                   "this node runs alone (no --initial-cluster): "
                                   "there is no leadership to move");
    if (find_table(ctx, def, g, r->table, &t) != 0)
        return -1;
    uint32_t parts = okv_status_table_partitions(g->first, t);
    if (r->partition >= parts) {
        snprintf(msg, sizeof msg, "table %.64s has partitions 0 to %" PRIu32, r->table,
                 parts ? parts - 1 : 0);
        return shell_cmd_fail_code(ctx, def, OKV_EINVAL, msg);
    }
    *node_idx = shell_gather_find_node(g, r->to);
    if (*node_idx == (size_t)-1) {
        snprintf(msg, sizeof msg, "no node %" PRIu64 " in the cluster map (see \"cluster status\")",
                 r->to);
        return shell_cmd_fail_code(ctx, def, OKV_EINVAL, msg);
    }
    return 0;
}

/* The row of (table_id, partition) in v, or NULL. */
static const shell_partition_row *find_row(const shell_cluster_view *v, uint32_t table_id,
                                           uint32_t partition)
{
    for (size_t i = 0; i < v->count; i++)
        if (v->rows[i].table_id == table_id && v->rows[i].partition == partition)
            return &v->rows[i];
    return NULL;
}

/*
 * Asks node `address` until it reports itself leader of the partition or
 * TRANSFER_WAIT_MS pass. Returns 1 with *term set when it leads, else 0.
 */
static int wait_for_leader(shell_ctx *ctx, const char *address, uint32_t table_id,
                           uint32_t partition, uint64_t *term)
{
    int64_t deadline = now_ms() + TRANSFER_WAIT_MS;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        okv_status *s = NULL;
        int per_call = ctx->timeout_ms > 0 && ctx->timeout_ms < left ? ctx->timeout_ms : (int)left;
        if (okv_status_get_at(ctx->client, address, &s, per_call) == OKV_OK) {
            for (size_t i = 0; i < okv_status_replica_count(s); i++) {
                okv_replica_info ri;
                if (okv_status_replica(s, i, &ri) == OKV_OK && ri.table_id == table_id &&
                    ri.partition == partition && ri.role && strcmp(ri.role, "leader") == 0) {
                    *term = ri.term;
                    okv_status_free(s);
                    return 1;
                }
            }
        }
        okv_status_free(s);
        sleep_ms(TRANSFER_POLL_MS);
    }
}

static void transfer_print(shell_ctx *ctx, const shell_cmd_def *def, const transfer_req *r,
                           const shell_partition_row *before, uint64_t term, int changed,
                           int64_t waited)
{
    int had = before && before->has_leader;
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "table", r->table);
        shell_json_u64(&j, "partition", r->partition);
        if (had)
            shell_json_u64(&j, "from", before->leader);
        else
            shell_json_str(&j, "from", NULL);
        shell_json_u64(&j, "to", r->to);
        shell_json_u64(&j, "leader", r->to);
        shell_json_u64(&j, "term", term);
        shell_json_bool(&j, "changed", changed);
        shell_json_int(&j, "waited_ms", waited);
        shell_json_end(&j);
    } else if (!changed) {
        fprintf(ctx->out, "node %" PRIu64 " already leads %s/%" PRIu32 " (term %" PRIu64 ")\n",
                r->to, r->table, r->partition, term);
    } else {
        char from[32] = "no leader";
        if (had)
            snprintf(from, sizeof from, "node %" PRIu64, before->leader);
        fprintf(ctx->out,
                "leader of %s/%" PRIu32 ": %s -> node %" PRIu64 " (term %" PRIu64
                " -> %" PRIu64 ", %" PRId64 " ms)\n",
                r->table, r->partition, from, r->to, before ? before->term : 0, term, waited);
    }
}

/*
 * Sends the transfer through a client on every address of the map, not
 * ctx->client: the client follows a NOT_LEADER hint only to addresses in its
 * own list, and the shell is often pointed at one node that does not lead the
 * partition. Reports a failure itself.
 */
static int transfer_call(shell_ctx *ctx, const shell_cmd_def *def, const shell_gather *g,
                         const transfer_req *r)
{
    size_t len = 1;
    for (size_t i = 0; i < g->node_count; i++)
        len += strlen(g->nodes[i].address) + 1;
    char *list = malloc(len);
    if (!list)
        return shell_cmd_fail_code(ctx, def, OKV_ENOMEM, "out of memory");
    list[0] = '\0';
    for (size_t i = 0; i < g->node_count; i++) {
        if (i)
            strcat(list, ",");
        strcat(list, g->nodes[i].address);
    }
    okv_client *all = NULL;
    okv_options opts = OKV_OPTIONS_INIT;
    if (ctx->timeout_ms > 0)
        opts.default_timeout_ms = ctx->timeout_ms;
    opts.tls_ca = ctx->tls_ca;
    opts.tls_cert = ctx->tls_cert;
    opts.tls_key = ctx->tls_key;
    opts.user = ctx->user;
    opts.password = ctx->password;
    int rc = okv_connect(&all, list, &opts);
    free(list);
    if (rc != OKV_OK)
        return shell_cmd_fail_code(ctx, def, rc, okv_errmsg(NULL));
    rc = okv_transfer_leader(all, r->table, r->partition, r->to, ctx->timeout_ms);
    if (rc != OKV_OK)
        shell_cmd_fail_code(ctx, def, rc, okv_errmsg(all));
    okv_close(all);
    return rc;
}

/* The transfer itself, once the request is known to make sense. */
static int transfer_run(shell_ctx *ctx, const shell_cmd_def *def, const shell_gather *g,
                        const shell_cluster_view *v, const transfer_req *r, size_t node_idx)
{
    size_t t = shell_gather_find_table(g, r->table);
    uint32_t table_id = okv_status_table_id(g->first, t);
    const shell_partition_row *before = find_row(v, table_id, r->partition);
    if (before && before->has_leader && before->leader == r->to) {
        transfer_print(ctx, def, r, before, before->term, 0, 0);
        return 0;
    }
    int64_t start = now_ms();
    int rc = transfer_call(ctx, def, g, r);
    if (rc != OKV_OK)
        return -1;
    uint64_t term = 0;
    if (!wait_for_leader(ctx, g->nodes[node_idx].address, table_id, r->partition, &term)) {
        char msg[240];
        snprintf(msg, sizeof msg,
                 "the transfer of %.64s/%" PRIu32 " was accepted, but node %" PRIu64
                 " did not lead it within %d ms (see \"partitions %.64s\")",
                 r->table, r->partition, r->to, TRANSFER_WAIT_MS, r->table);
        return shell_cmd_fail_code(ctx, def, OKV_ETIMEDOUT, msg);
    }
    transfer_print(ctx, def, r, before, term, 1, now_ms() - start);
    return 0;
}

int shell_cmd_transfer_leader(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    transfer_req r = { NULL, 0, 0 };
    if (transfer_parse(ctx, def, a, &r) != 0)
        return -1;
    shell_gather *g = NULL;
    shell_cluster_view *v = NULL;
    size_t node_idx = 0;
    int rc = gather_view(ctx, def, &g, &v);
    if (rc == 0)
        rc = transfer_check(ctx, def, g, &r, &node_idx);
    if (rc == 0)
        rc = transfer_run(ctx, def, g, v, &r, node_idx);
    shell_cluster_view_free(v);
    shell_gather_free(g);
    free(r.table);
    return rc;
}
