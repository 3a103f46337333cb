/*
 * shell_commands.h — the shell's commands: parse arguments, call liborderkv,
 * print the result (human text or one JSON line, see shell_output.h).
 *
 * Every command reports its own outcome: on failure it has already printed the
 * error (stderr in human mode, a {"ok":false,...} line on ctx->out in JSON
 * mode), so callers only count failures.
 */
#ifndef OKV_SHELL_COMMANDS_H
#define OKV_SHELL_COMMANDS_H

#include <stddef.h>

#include "shell.h"
#include "shell_lexer.h"

/* Runs one command. Returns 0 on success, -1 if it failed (including unknown
 * commands and wrong arguments). May set ctx->quit. */
int shell_execute(shell_ctx *ctx, const shell_command *cmd);

/* Reports a syntax error from the lexer the same way a failed command is
 * reported, so JSON readers see one object for it too. */
void shell_report_syntax_error(shell_ctx *ctx, const char *msg);

/* Name of the i-th command (for completion), or NULL past the last. */
const char *shell_command_name(size_t i);

/* Whether the command's first argument is a table name (for completion). */
int shell_command_takes_table(const char *name);

/* The i-th word that may follow command `name` as its first argument (e.g.
 * "status" after "cluster"), or NULL past the last or if it has none. */
const char *shell_command_subcommand(const char *name, size_t i);

#endif
