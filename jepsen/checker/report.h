/*
 * report.h — a check_result as the CLI prints it: the one-line verdict, the
 * nemesis summary and the JSON document. Pure formatting; every function
 * returns a malloc'd string owned by the caller, or NULL when memory runs out.
 */
#ifndef OKV_JEPSEN_REPORT_H
#define OKV_JEPSEN_REPORT_H

#include <stdint.h>

#include "history.h"
#include "result.h"

/* "checker linearizable-register: invalid (812 ops, 3 keys, 41 ms)" (no newline). */
char *report_line(const check_result *r, int64_t ms);

/* "history: 1200 ops, 590 client operations, 20 nemesis ops (kill 10, start 10)" (no newline). */
char *report_history(const history *h);

/* {"workload":..., "checker":..., "valid":"valid|invalid|unknown", "ops":N, "keys":N, "ms":N,
 *  "anomalies":{name:{"count":N,"examples":[...]}}, "counts":{name:N},
 *  "nemesis":{"ops":N,"f":{name:N}}, "explanation":"..."} followed by a newline. */
char *report_json(const char *workload, const check_result *r, int64_t ms, const history *h);

#endif
