/*
 * failpoint.c — see failpoint.h. Compiled only with ORDERKV_FAILPOINTS.
 */
#include "failpoint.h"

#ifdef ORDERKV_FAILPOINTS

#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FP_MAX 32
#define FP_NAME_MAX 64

enum fp_kind { FP_OFF, FP_ON, FP_PERCENT, FP_CRASH, FP_SLEEP };

typedef struct fp {
    char name[FP_NAME_MAX];
    enum fp_kind kind;
    unsigned arg;            /* percent or milliseconds */
    uint64_t from;           /* first evaluation (1-based) the action applies to */
    atomic_uint_fast64_t hits;
} fp;

/* Written once by okv_fp_init before any thread evaluates. */
static fp fps[FP_MAX];
static int nfps;
static char described[1024] = "failpoints compiled in, none set";

static int parse_one(fp *f, const char *name, size_t name_len, const char *action, char *msg,
                     unsigned long msg_len)
{
    if (name_len == 0 || name_len >= FP_NAME_MAX) {
        snprintf(msg, msg_len, "ORDERKV_FAILPOINTS: failpoint name must be 1..%d bytes",
                 FP_NAME_MAX - 1);
        return -1;
    }
    memcpy(f->name, name, name_len);
    f->name[name_len] = '\0';
    char act[64];
    snprintf(act, sizeof act, "%s", action);
    f->from = 1;
    char *at = strchr(act, '@');
    if (at) {
        char *end;
        unsigned long long n = strtoull(at + 1, &end, 10);
        if (*end || n == 0) {
            snprintf(msg, msg_len, "ORDERKV_FAILPOINTS: %s: '@' needs a count >= 1", f->name);
            return -1;
        }
        f->from = n;
        *at = '\0';
    }
    char *end;
    if (strcmp(act, "on") == 0) {
        f->kind = FP_ON;
    } else if (strcmp(act, "off") == 0) {
        f->kind = FP_OFF;
    } else if (strcmp(act, "crash") == 0) {
        f->kind = FP_CRASH;
    } else if (strncmp(act, "sleep(", 6) == 0) {
        unsigned long ms = strtoul(act + 6, &end, 10);
        if (end == act + 6 || strcmp(end, ")") != 0 || ms > 600000) {
            snprintf(msg, msg_len, "ORDERKV_FAILPOINTS: %s: sleep(MS) needs 0..600000", f->name);
            return -1;
        }
        f->kind = FP_SLEEP;
        f->arg = (unsigned)ms;
    } else {
        unsigned long p = strtoul(act, &end, 10);
        if (end == act || strcmp(end, "%") != 0 || p < 1 || p > 100) {
            snprintf(msg, msg_len,
                     "ORDERKV_FAILPOINTS: %s: unknown action '%s' (on, off, P%%, crash, "
                     "sleep(MS), each optionally @N)",
                     f->name, action);
            return -1;
        }
        f->kind = FP_PERCENT;
        f->arg = (unsigned)p;
    }
    return 0;
}

int okv_fp_init(char *msg, unsigned long msg_len)
{
    const char *env = getenv("ORDERKV_FAILPOINTS");
    nfps = 0;
    if (!env || !*env)
        return 0;
    char *copy = strdup(env);
    if (!copy) {
        snprintf(msg, msg_len, "out of memory");
        return -1;
    }
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(msg, msg_len, "ORDERKV_FAILPOINTS: '%s' is not name=action", tok);
            rc = -1;
            break;
        }
        if (nfps == FP_MAX) {
            snprintf(msg, msg_len, "ORDERKV_FAILPOINTS: at most %d failpoints", FP_MAX);
            rc = -1;
            break;
        }
        if (parse_one(&fps[nfps], tok, (size_t)(eq - tok), eq + 1, msg, msg_len)) {
            rc = -1;
            break;
        }
        nfps++;
    }
    free(copy);
    if (rc) {
        nfps = 0;
        return rc;
    }
    snprintf(described, sizeof described, "failpoints: %s", env);
    return 0;
}

static unsigned rand_percent(void)
{
    static _Thread_local uint64_t s;
    if (!s) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = (((uint64_t)ts.tv_nsec << 16) ^ (uint64_t)(uintptr_t)&s ^ (uint64_t)getpid()) | 1u;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (unsigned)(s % 100u);
}

int okv_fp_eval(const char *name)
{
    for (int i = 0; i < nfps; i++) {
        fp *f = &fps[i];
        if (strcmp(f->name, name) != 0)
            continue;
        uint64_t hit = atomic_fetch_add(&f->hits, 1) + 1;
        if (hit < f->from)
            return 0;
        switch (f->kind) {
        case FP_OFF: return 0;
        case FP_ON: return 1;
        case FP_PERCENT: return rand_percent() < f->arg;
        case FP_SLEEP: {
            struct timespec ts = { (time_t)(f->arg / 1000), (long)(f->arg % 1000) * 1000000L };
            nanosleep(&ts, NULL);
            return 0;
        }
        case FP_CRASH:
            fprintf(stderr, "orderkvd: failpoint %s: crashing (SIGKILL)\n", name);
            raise(SIGKILL);
            return 1;
        }
    }
    return 0;
}

int okv_fp_evalf(const char *fmt, ...)
{
    if (nfps == 0)
        return 0;
    char name[FP_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return okv_fp_eval(name);
}

const char *okv_fp_describe(void) { return described; }

#endif
