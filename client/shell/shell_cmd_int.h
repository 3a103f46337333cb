/*
 * shell_cmd_int.h — private to the command files (shell_commands.c, which
 * owns the command table, and shell_cluster_cmds.c): the command definition,
 * parsed arguments, and the shared reporting helpers.
 */
#ifndef OKV_SHELL_CMD_INT_H
#define OKV_SHELL_CMD_INT_H

#include <stdint.h>

#include "shell.h"
#include "shell_lexer.h"
#include "shell_output.h"

#define SHELL_MAX_POS 3
#define SHELL_MAX_FLAGS 4
/* max_pos of a command that parses its own arguments (shell_args.raw). */
#define SHELL_VARIADIC ((size_t)-1)

struct shell_cmd_def;

/* The arguments of one command after flag parsing. */
typedef struct shell_args {
    const shell_arg *pos[SHELL_MAX_POS];
    size_t npos;
    const shell_arg *flag[SHELL_MAX_FLAGS];   /* value of def->flags[i], NULL if absent */
    const shell_command *raw;                 /* the whole command (args[0] is its name) */
} shell_args;

typedef int (*shell_cmd_fn)(shell_ctx *ctx, const struct shell_cmd_def *def,
                            const shell_args *a);

typedef struct shell_cmd_def {
    const char *name;
    const char *usage;
    const char *summary;
    const char *help;
    const char *flags[SHELL_MAX_FLAGS];       /* each takes one value; NULL-terminated */
    size_t min_pos, max_pos;
    int takes_table;                          /* first positional is a table name */
    shell_cmd_fn run;
    const char *const *subcommands;           /* first-argument words, for completion */
} shell_cmd_def;

/*
 * The single place failures are printed. kind is the okv_strerror text for
 * library errors and a shell word ("usage", "syntax", "unknown command")
 * otherwise; has_code says whether code is a library code. Returns -1.
 */
int shell_cmd_report(shell_ctx *ctx, const char *cmd, const char *kind, int has_code, int code,
                     const char *msg);
/* A library failure of def, with okv_errmsg's detail (this thread). */
int shell_cmd_fail_okv(shell_ctx *ctx, const shell_cmd_def *def, int rc);
/* A library code with the shell's own detail. */
int shell_cmd_fail_code(shell_ctx *ctx, const shell_cmd_def *def, int rc, const char *msg);
/* A refusal of an orders call: as shell_cmd_fail_okv, plus the rule's
 * OrdersError name (NULL: none) and what to do about it (NULL: nothing to
 * add), as "reason" and "hint" in JSON and after the message in text. */
int shell_cmd_fail_reason(shell_ctx *ctx, const shell_cmd_def *def, int rc, const char *reason,
                          const char *hint);
/* Wrong arguments: the usage line, and the problem if given. */
int shell_cmd_fail_usage(shell_ctx *ctx, const shell_cmd_def *def, const char *problem);
/* Starts a success object; the caller adds members and calls shell_json_end. */
void shell_cmd_json_ok(shell_ctx *ctx, shell_json *j, const shell_cmd_def *def);
/* Strict unsigned decimal: no sign, no spaces, no trailing junk, no overflow. */
int shell_cmd_parse_u64(const shell_arg *a, uint64_t *out);
/* The `status` command's output of s, as JSON members or human lines. */
void shell_cmd_status_json(shell_json *j, const okv_status *s);
void shell_cmd_status_human(FILE *o, const okv_status *s);

/* shell_txn.c */
int shell_cmd_txn(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);

/* shell_tx.c: interactive transactions */
int shell_cmd_begin(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);
int shell_cmd_commit(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);
int shell_cmd_abort(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);
int shell_cmd_add(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);
/* A write buffered in the open transaction: says so. */
void shell_cmd_buffered(shell_ctx *ctx, const shell_cmd_def *def);

/* shell_cluster_cmds.c */
int shell_cmd_cluster(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);
int shell_cmd_partitions(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);
int shell_cmd_transfer_leader(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);

/* shell_audit.c: a node's audit log */
int shell_cmd_audit(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);
extern const char *const shell_audit_subcommands[];

/* shell_orders.c: the orders service */
int shell_cmd_order(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);
int shell_cmd_account(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);
int shell_cmd_stock(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);
extern const char *const shell_order_subcommands[];
extern const char *const shell_account_subcommands[];
extern const char *const shell_stock_subcommands[];

/* shell_users.c: users and roles */
int shell_cmd_user(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);
int shell_cmd_whoami(shell_ctx *ctx, const shell_cmd_def *def, const shell_args *a);
extern const char *const shell_user_subcommands[];

#endif
