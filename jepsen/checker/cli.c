#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "history.h"
#include "history_file.h"
#include "register_check.h"
#include "report.h"
#include "workload.h"

#define PROG "okv-jepsen-check"

typedef struct cli_args {
    const char *history;
    const char *json;
    workload workload;
    int64_t time_limit_s;
    uint64_t max_states;
} cli_args;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " --history PATH\n"
            "       [--workload register|set|sequential|bank|list-append|orders|auto]\n"
            "       [--time-limit-s N] [--max-states-per-key N] [--json OUT]\n"
            "\n"
            "Checks a Jepsen history (one JSON array of ops) and prints one line per checker:\n"
            "  checker <name>: valid|invalid|unknown (<ops> ops, <keys> keys, <ms> ms)\n"
            "followed by an explanation when it is not valid.\n"
            "\n"
            "  --workload            which checker; auto (the default) infers it from the ops\n"
            "  --time-limit-s N      give up on the register search after N seconds (default 60, 0 = none)\n"
            "  --max-states-per-key  memoized configurations per register key before giving up\n"
            "                        (default %u)\n"
            "  --json OUT            also write the verdict, anomalies and explanation as JSON\n"
            "\n"
            "exit status: 0 valid, 1 invalid, 2 unknown, 3 usage or parse error\n",
            REGISTER_DEFAULT_MAX_STATES);
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, cli_args *a, FILE *out, FILE *err)
{
    memset(a, 0, sizeof *a);
    a->workload = WORKLOAD_AUTO;
    a->time_limit_s = 60;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(out);
            return CLI_EXIT_VALID;
        }
        const char *name = arg, *val = NULL;
        char flag[64];
        const char *eq = strchr(arg, '=');
        if (strncmp(arg, "--", 2) == 0 && eq && (size_t)(eq - arg) < sizeof flag) {
            memcpy(flag, arg, (size_t)(eq - arg));
            flag[eq - arg] = '\0';
            name = flag;
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[i + 1];
        }
        bool known = strcmp(name, "--history") == 0 || strcmp(name, "--json") == 0 ||
                     strcmp(name, "--workload") == 0 || strcmp(name, "--time-limit-s") == 0 ||
                     strcmp(name, "--max-states-per-key") == 0;
        if (!known) {
            fprintf(err, PROG ": unknown argument \"%s\" (see --help)\n", arg);
            return CLI_EXIT_USAGE;
        }
        if (!val) {
            fprintf(err, PROG ": %s needs a value\n", name);
            return CLI_EXIT_USAGE;
        }
        if (!eq)
            i++;
        uint64_t n;
        if (strcmp(name, "--history") == 0) {
            a->history = val;
        } else if (strcmp(name, "--json") == 0) {
            a->json = val;
        } else if (strcmp(name, "--workload") == 0) {
            if (workload_from_name(val, &a->workload)) {
                fprintf(err, PROG ": --workload must be register, set, sequential, bank, "
                        "list-append, orders or auto, not \"%s\"\n", val);
                return CLI_EXIT_USAGE;
            }
        } else if (strcmp(name, "--time-limit-s") == 0) {
            if (parse_u64(val, &n) || n > INT64_MAX / 1000) {
                fprintf(err, PROG ": --time-limit-s must be a whole number of seconds, not \"%s\"\n", val);
                return CLI_EXIT_USAGE;
            }
            a->time_limit_s = (int64_t)n;
        } else {
            if (parse_u64(val, &n) || n == 0) {
                fprintf(err, PROG ": --max-states-per-key must be a positive integer, not \"%s\"\n", val);
                return CLI_EXIT_USAGE;
            }
            a->max_states = n;
        }
    }
    if (!a->history) {
        fprintf(err, PROG ": missing --history PATH (see --help)\n");
        return CLI_EXIT_USAGE;
    }
    return -1;
}

static int64_t monotonic_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_json(const char *path, const char *text, FILE *err)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(err, PROG ": cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    int bad = fputs(text, f) == EOF;
    bad |= fclose(f) != 0;
    if (bad) {
        fprintf(err, PROG ": cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Prints the verdict and writes the JSON; returns the exit status. */
static int report(const cli_args *a, workload w, const history *h, const check_result *r, int64_t ms,
                  FILE *out, FILE *err)
{
    char *line = report_line(r, ms);
    char *summary = report_history(h);
    char *json = a->json ? report_json(workload_name(w), r, ms, h) : NULL;
    int status = r->validity == CHECK_VALID ? CLI_EXIT_VALID
                 : r->validity == CHECK_INVALID ? CLI_EXIT_INVALID : CLI_EXIT_UNKNOWN;
    if (!line || !summary || (a->json && !json)) {
        fprintf(err, PROG ": out of memory\n");
        status = CLI_EXIT_USAGE;
    } else {
        fprintf(out, "%s\n", line);
        if (r->validity != CHECK_VALID && r->explanation[0])
            fprintf(out, "%s", r->explanation);
        fprintf(out, "%s\n", summary);
        if (a->json && write_json(a->json, json, err))
            status = CLI_EXIT_USAGE;
    }
    free(line);
    free(summary);
    free(json);
    return status;
}

int cli_run(int argc, char **argv, FILE *out, FILE *err)
{
    cli_args a;
    int status = parse_args(argc, argv, &a, out, err);
    if (status >= 0)
        return status;

    okv_error e;
    okv_error_clear(&e);
    char *text = NULL;
    size_t len = 0;
    history *h = NULL;
    check_result *r = NULL;
    workload w = a.workload;
    int rc = history_file_read(a.history, &text, &len, &e);
    if (rc) {
        fprintf(err, PROG ": %s\n", e.msg);
        return CLI_EXIT_USAGE;
    }
    rc = history_parse(&h, text, len, &e);
    free(text);
    if (!rc && w == WORKLOAD_AUTO)
        rc = workload_infer(h, &w, &e);
    int64_t start = monotonic_ms(NULL);
    if (!rc) {
        register_options ro = REGISTER_OPTIONS_INIT;
        ro.time_limit_ms = a.time_limit_s * 1000;
        ro.max_states_per_key = a.max_states;
        ro.now_ms = monotonic_ms;
        rc = workload_check(&r, w, h, &ro, &e);
    }
    if (rc) {
        fprintf(err, PROG ": %s: %s\n", a.history, e.msg[0] ? e.msg : "failed");
        status = CLI_EXIT_USAGE;
    } else {
        status = report(&a, w, h, r, monotonic_ms(NULL) - start, out, err);
    }
    check_result_free(r);
    history_free(h);
    return status;
}
