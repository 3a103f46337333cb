/*
 * shell_backup.c — `backup DIR` (a shell command: an online backup of the
 * cluster the shell is connected to) and `orderkv restore ...` (a
 * subcommand run before any connection: restore is offline, it writes a
 * new node's data dir). docs/operations.md "Backup and restore".
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup_restore.h"
#include "shell_backup.h"
#include "shell_cmd_int.h"

typedef struct progress {
    shell_ctx *ctx;
    unsigned cuts;
} progress;

static void on_cut(void *arg, const char *table, uint32_t partition, uint64_t index,
                   uint64_t term)
{
    progress *p = arg;
    p->cuts++;
    if (!p->ctx->json)
        fprintf(p->ctx->out, "  cut %s/%u at index %llu (term %llu)\n", table, partition,
                (unsigned long long)index, (unsigned long long)term);
}

int shell_cmd_backup(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)a->pos[0]->len, a->pos[0]->bytes);
    okv_backup_options o = OKV_BACKUP_OPTIONS_INIT;
    if (a->flag[0]) {
        uint64_t ms;
        if (shell_cmd_parse_u64(a->flag[0], &ms) || ms < 1000 || ms > 600000)
            return shell_cmd_fail_usage(ctx, def, "--fence-ms must be 1000..600000");
        o.fence_ms = (int)ms;
    }
    progress p = { ctx, 0 };
    o.on_cut = on_cut;
    o.ctx = &p;
    int rc = okv_backup(ctx->client, dir, &o);
    if (rc)
        return shell_cmd_fail_okv(ctx, def, rc);
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "dir", dir);
        shell_json_u64(&j, "partitions", p.cuts);
        shell_json_end(&j);
    } else {
        fprintf(ctx->out, "backup of %u partitions written to %s\n", p.cuts, dir);
    }
    return 0;
}

static int restore_usage(const char *problem)
{
    if (problem)
        fprintf(stderr, "orderkv restore: %s\n", problem);
    fputs("usage: orderkv restore BACKUP_DIR --node-id N --initial-cluster ID=HOST:PORT,... "
          "--data-dir DIR\n"
          "       orderkv restore --verify BACKUP_DIR\n"
          "Writes node N's data dir of a new cluster from an online backup (run it for every\n"
          "node, then start them with the same flags); --verify only checks the backup.\n",
          problem ? stderr : stdout);
    return problem ? 2 : 0;
}

int shell_restore_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "node-id", required_argument, NULL, 'n' },
        { "initial-cluster", required_argument, NULL, 'c' },
        { "data-dir", required_argument, NULL, 'd' },
        { "verify", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    backup_restore_options o;
    memset(&o, 0, sizeof o);
    int verify = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n': {
            char *end;
            o.node_id = strtoull(optarg, &end, 10);
            if (*end || !o.node_id)
                return restore_usage("--node-id must be a node id (1, 2, ...)");
            break;
        }
        case 'c': o.initial_cluster = optarg; break;
        case 'd': o.data_dir = optarg; break;
        case 'v': verify = 1; break;
        case 'h': return restore_usage(NULL);
        default: return restore_usage("unknown option or missing value");
        }
    }
    if (optind != argc - 1)
        return restore_usage("one BACKUP_DIR expected");
    o.backup_dir = argv[optind];
    okv_error err;
    okv_error_clear(&err);
    if (verify) {
        if (backup_verify(o.backup_dir, &err)) {
            fprintf(stderr, "orderkv restore: %s\n", err.msg);
            return 1;
        }
        printf("backup %s is complete and intact\n", o.backup_dir);
        return 0;
    }
    if (!o.node_id || !o.initial_cluster || !o.data_dir)
        return restore_usage("--node-id, --initial-cluster and --data-dir are required");
    backup_restore_stats st;
    if (backup_restore(&o, &st, &err)) {
        fprintf(stderr, "orderkv restore: %s; nothing was written to %s\n", err.msg, o.data_dir);
        return 1;
    }
    printf("restored %u partitions (%llu records) into %s for node %llu\n", st.partitions,
           (unsigned long long)st.records, o.data_dir, (unsigned long long)o.node_id);
    return 0;
}
