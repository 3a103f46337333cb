#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int okv_log_level = OKV_LOG_INFO;
unsigned long okv_log_node_id = 0;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

int okv_log_parse_level(const char *name)
{
    static const char *const lower[] = { "error", "warn", "info", "debug" };
    for (int i = 0; i < 4; i++)
        if (strcmp(name, lower[i]) == 0)
            return i;
    return -1;
}

void okv_log_write(int level, const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);

    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    if (level < 0 || level > 3)
        level = OKV_LOG_ERROR;
    /* One fprintf per line keeps lines from different threads whole. */
    fprintf(stderr, "%s.%03ldZ %-5s [node %lu] %s:%d %s\n", when, ts.tv_nsec / 1000000,
            level_names[level], okv_log_node_id, base, line, msg);
}
