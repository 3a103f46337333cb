/*
 * result.h — what every checker returns.
 *
 * A check_result is created by a checker (register_check, set_check,
 * sequential_check, bank_check) and owned by whoever receives it through **out; free it
 * with check_result_free. It holds the verdict, the size of what was checked,
 * named counts (facts about the history), named anomalies (each with a few
 * example elements / keys / indices) and a human explanation.
 */
#ifndef OKV_JEPSEN_RESULT_H
#define OKV_JEPSEN_RESULT_H

#include <stddef.h>
#include <stdint.h>

/* The numeric values are the CLI's exit statuses. */
typedef enum check_validity {
    CHECK_VALID = 0,
    CHECK_INVALID = 1,
    CHECK_UNKNOWN = 2
} check_validity;

#define CHECK_MAX_EXAMPLES 10
#define CHECK_MAX_ENTRIES 24

typedef struct check_count {
    const char *name;   /* static string */
    uint64_t n;
} check_count;

typedef struct check_anomaly {
    const char *name;   /* static string, e.g. "lost" */
    uint64_t count;
    int64_t examples[CHECK_MAX_EXAMPLES]; /* the smallest elements / keys / indices */
    size_t n_examples;
} check_anomaly;

typedef struct check_result {
    const char *checker;      /* static name, e.g. "linearizable-register" */
    check_validity validity;
    uint64_t ops;             /* client operations in the history */
    uint64_t keys;            /* independent keys checked (1 for set, sequential) */
    check_count counts[CHECK_MAX_ENTRIES];
    size_t n_counts;
    check_anomaly anomalies[CHECK_MAX_ENTRIES];
    size_t n_anomalies;
    char *explanation;        /* malloc'd, never NULL once returned; "" if nothing to say */
} check_result;

/* A zeroed result named checker, or NULL when memory is exhausted. */
check_result *check_result_new(const char *checker);

/* Accepts NULL. */
void check_result_free(check_result *r);

/* Appends a count (ignored past CHECK_MAX_ENTRIES). */
void check_result_count(check_result *r, const char *name, uint64_t n);

/* Returns the anomaly named name, adding it with count 0 if absent (NULL past
 * CHECK_MAX_ENTRIES). */
check_anomaly *check_result_anomaly(check_result *r, const char *name);

/* Counts one occurrence and keeps example among the CHECK_MAX_EXAMPLES
 * smallest examples seen (duplicates are kept once), so the examples do not
 * depend on the order in which a checker finds them. */
void check_anomaly_add(check_anomaly *a, int64_t example);

/* The count of the anomaly named name, 0 if absent. */
uint64_t check_result_anomaly_count(const check_result *r, const char *name);

/* The count named name, 0 if absent. */
uint64_t check_result_count_of(const check_result *r, const char *name);

/* "valid", "invalid", "unknown". */
const char *check_validity_name(check_validity v);

#endif
