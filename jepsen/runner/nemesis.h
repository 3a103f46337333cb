/*
 * nemesis.h — the fault schedule of a run.
 *
 * The nemesis thread alternates quiet and fault windows of
 * --nemesis-interval seconds each, starting with a quiet one. Each fault is
 * applied through hosts.sh (kill/start, pause/resume, cut/heal, clock) or,
 * for transfer-storm, through liborderkv's okv_transfer_leader. Every fault
 * and every heal is recorded as a nemesis op in the history (type info,
 * process "nemesis") and as a line in nemesis.log; each fault window is a
 * row of nemesis.tsv (start_s end_s name detail) for the latency plot.
 *
 * At the end nemesis_heal_all() undoes whatever is still in effect and,
 * unconditionally, heals every cut: cuts heal, paused nodes resume, killed
 * nodes start, skewed clocks reset.
 */
#ifndef OKV_JEPSEN_NEMESIS_H
#define OKV_JEPSEN_NEMESIS_H

#include <stdio.h>

#include "history.h"
#include "orderkv.h"
#include "runner.h"

typedef struct nemesis nemesis;

/* Whether name is a nemesis this runner knows. */
int nemesis_known(const char *name);
/* The known names, comma-separated, for usage text. */
const char *nemesis_names(void);

/* log: nemesis.log (borrowed; written with its own lock); table: the
 * workload's table, where "leader" faults and transfer-storm pick their
 * partition: the partition of a key of focus_key, a comma-separated list
 * (borrowed for the nemesis's life), chosen at random each time; a random
 * partition when it is NULL or empty. */
nemesis *nemesis_new(const run_config *cfg, history *h, FILE *log, FILE *tsv, const char *table,
                     const char *focus_key);
void nemesis_free(nemesis *n);

/* Starts / stops the thread. Stop ends the current fault window early
 * (healing it) and joins. */
int nemesis_start(nemesis *n);
void nemesis_stop(nemesis *n);

/* Heals everything (see above). Returns the number of failed commands. */
int nemesis_heal_all(nemesis *n);

/* Faults begun so far (each fault window counts once). */
int nemesis_fault_count(const nemesis *n);

/* Runs `hosts.sh SUBCOMMAND [--run DIR] ARGS...` as given by cfg->hosts;
 * its output is appended to OUT_DIR/hosts.log. Returns the exit status
 * (0 ok), or -1 if it could not run. argv is NULL-terminated. */
int hosts_run(const run_config *cfg, const char *const *argv);

#endif
