/*
 * shell_complete.h — Tab completion for the interactive shell (libedit).
 *
 * The first word of a command completes to command names; the word after
 * get/put/del/scan/partitions/transfer-leader completes to table names (from
 * shell_tables.h's cache); the word after cluster to its subcommand (status);
 * the word after help completes to command names. Nothing else completes —
 * in particular never file names, which are never arguments here.
 */
#ifndef OKV_SHELL_COMPLETE_H
#define OKV_SHELL_COMPLETE_H

#include "shell.h"

/* Hooks completion into libedit's readline for this session. ctx must
 * outlive every later readline() call. */
void shell_complete_install(shell_ctx *ctx);

#endif
