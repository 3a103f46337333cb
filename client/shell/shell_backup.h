/*
 * shell_backup.h — the shell's backup command and restore subcommand
 * (shell_backup.c).
 */
#ifndef OKV_SHELL_BACKUP_H
#define OKV_SHELL_BACKUP_H

#include "shell.h"

struct shell_cmd_def;
struct shell_args;

/* `backup DIR [--fence-ms MS]`. */
int shell_cmd_backup(shell_ctx *ctx, const struct shell_cmd_def *def, const struct shell_args *a);

/* `orderkv restore ...` (argv[0] is "restore"): the process's exit status. */
int shell_restore_main(int argc, char **argv);

#endif
