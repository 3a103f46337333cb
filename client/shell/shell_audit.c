/*
 * shell_audit.c — `audit tail [N] [--node ADDR]`: the last N lines of one
 * node's audit log (docs/operations.md "Audit log"), as the node wrote
 * them (one JSON object per line), or in --json mode as an array of those
 * lines, each a string.
 */
#include <string.h>

#include "shell_cmd_int.h"

#define AUDIT_DEFAULT_LINES 20
#define AUDIT_MAX_LINES 1000   /* what a node answers at most */

const char *const shell_audit_subcommands[] = { "tail", NULL };

int shell_cmd_audit(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a)
{
    if (a->pos[0]->len != 4 || strcmp(a->pos[0]->bytes, "tail") != 0)
        return shell_cmd_fail_usage(ctx, def, "the only subcommand is tail");
    uint64_t n = AUDIT_DEFAULT_LINES;
    if (a->npos == 2 && (shell_cmd_parse_u64(a->pos[1], &n) != 0 || n == 0 ||
                         n > AUDIT_MAX_LINES))
        return shell_cmd_fail_usage(ctx, def, "N must be a number of lines, 1..1000");
    const shell_arg *node = a->flag[0];
    if (node && (node->len == 0 || memchr(node->bytes, '\0', node->len)))
        return shell_cmd_fail_usage(ctx, def, "--node needs an address HOST:PORT");
    okv_audit_lines *l = NULL;
    int rc = okv_audit_tail(ctx->client, node ? node->bytes : NULL, (uint32_t)n, &l,
                            ctx->timeout_ms);
    if (rc != OKV_OK)
        return shell_cmd_fail_okv(ctx, def, rc);
    size_t count = okv_audit_lines_count(l);
    if (ctx->json) {
        shell_json j;
        shell_cmd_json_ok(ctx, &j, def);
        shell_json_str(&j, "subcommand", "tail");
        shell_json_str(&j, "node", okv_audit_lines_address(l));
        shell_json_array_begin(&j, "lines");
        for (size_t i = 0; i < count; i++)
            shell_json_str(&j, NULL, okv_audit_lines_at(l, i));
        shell_json_array_end(&j);
        shell_json_end(&j);
    } else if (count == 0) {
        fprintf(ctx->out, "the audit log of %s is empty\n", okv_audit_lines_address(l));
    } else {
        /* The node escaped every control byte (audit.h), so a line is safe
         * to print to a terminal as it is. */
        for (size_t i = 0; i < count; i++)
            fprintf(ctx->out, "%s\n", okv_audit_lines_at(l, i));
    }
    okv_audit_lines_free(l);
    return 0;
}
