#include "result.h"

#include <stdlib.h>
#include <string.h>

check_result *check_result_new(const char *checker)
{
    check_result *r = calloc(1, sizeof *r);
    if (r)
        r->checker = checker;
    return r;
}

void check_result_free(check_result *r)
{
    if (!r)
        return;
    free(r->explanation);
    free(r);
}

void check_result_count(check_result *r, const char *name, uint64_t n)
{
    if (r->n_counts == CHECK_MAX_ENTRIES)
        return;
    r->counts[r->n_counts].name = name;
    r->counts[r->n_counts].n = n;
    r->n_counts++;
}

check_anomaly *check_result_anomaly(check_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_anomalies; i++)
        if (strcmp(r->anomalies[i].name, name) == 0)
            return &r->anomalies[i];
    if (r->n_anomalies == CHECK_MAX_ENTRIES)
        return NULL;
    check_anomaly *a = &r->anomalies[r->n_anomalies++];
    memset(a, 0, sizeof *a);
    a->name = name;
    return a;
}

void check_anomaly_add(check_anomaly *a, int64_t example)
{
    if (!a)
        return;
    a->count++;
    size_t i = 0;
    while (i < a->n_examples && a->examples[i] < example)
        i++;
    if (i < a->n_examples && a->examples[i] == example)
        return;
    if (i == CHECK_MAX_EXAMPLES)
        return;
    size_t last = a->n_examples < CHECK_MAX_EXAMPLES ? a->n_examples : CHECK_MAX_EXAMPLES - 1;
    memmove(&a->examples[i + 1], &a->examples[i], (last - i) * sizeof a->examples[0]);
    a->examples[i] = example;
    if (a->n_examples < CHECK_MAX_EXAMPLES)
        a->n_examples++;
}

uint64_t check_result_anomaly_count(const check_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_anomalies; i++)
        if (strcmp(r->anomalies[i].name, name) == 0)
            return r->anomalies[i].count;
    return 0;
}

uint64_t check_result_count_of(const check_result *r, const char *name)
{
    for (size_t i = 0; i < r->n_counts; i++)
        if (strcmp(r->counts[i].name, name) == 0)
            return r->counts[i].n;
    return 0;
}

const char *check_validity_name(check_validity v)
{
    switch (v) {
    case CHECK_VALID: return "valid";
    case CHECK_INVALID: return "invalid";
    case CHECK_UNKNOWN: return "unknown";
    }
    return "?";
}
