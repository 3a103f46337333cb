/*
 * cli.h — okv-jepsen-check, callable in-process so tests can drive it.
 *
 *   okv-jepsen-check --history PATH [--workload register|set|sequential|bank|auto]
 *                    [--time-limit-s N] [--max-states-per-key N] [--json OUT]
 *
 * Prints "checker <name>: valid|invalid|unknown (<ops> ops, <keys> keys,
 * <ms> ms)", then the explanation when not valid, then a one-line history
 * summary (nemesis ops by f). With --json, also writes the report of
 * report.h to OUT. Exit status: 0 valid, 1 invalid, 2 unknown, 3 usage,
 * read or parse error (the message on err says what is wrong).
 */
#ifndef OKV_JEPSEN_CLI_H
#define OKV_JEPSEN_CLI_H

#include <stdio.h>

enum {
    CLI_EXIT_VALID = 0,
    CLI_EXIT_INVALID = 1,
    CLI_EXIT_UNKNOWN = 2,
    CLI_EXIT_USAGE = 3
};

/* Runs the command with argv[0..argc) (argv[0] is the program name); output
 * goes to out, messages to err. Returns the exit status. */
int cli_run(int argc, char **argv, FILE *out, FILE *err);

#endif
