/*
 * metrics_process.c — process_* metrics as the Prometheus client libraries
 * export them, read from /proc/self at scrape time (Linux). Where /proc is
 * missing the values read 0 (or NaN for the start time's clock).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

/* Fields 14 (utime), 15 (stime), 22 (starttime), 23 (vsize), 24 (rss) of
 * /proc/self/stat; the second field (comm) may hold spaces, so parsing
 * starts after its closing parenthesis. */
static int read_stat(double *cpu_s, double *start_ticks, double *vsize, double *rss_pages)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long utime, stime, start, vs;
    long long rss;
    /* After ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime(14) stime cutime cstime priority nice threads
     * itrealvalue starttime(22) vsize rss(24). */
    if (sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%llu %llu %lld",
               &utime, &stime, &start, &vs, &rss) != 5)
        return -1;
    double hz = (double)sysconf(_SC_CLK_TCK);
    if (cpu_s)
        *cpu_s = (double)(utime + stime) / hz;
    if (start_ticks)
        *start_ticks = (double)start / hz;
    if (vsize)
        *vsize = (double)vs;
    if (rss_pages)
        *rss_pages = (double)rss;
    return 0;
}

static double cpu_seconds(void *ctx)
{
    (void)ctx;
    double v = 0;
    read_stat(&v, NULL, NULL, NULL);
    return v;
}

static double resident_bytes(void *ctx)
{
    (void)ctx;
    double v = 0;
    read_stat(NULL, NULL, NULL, &v);
    return v * (double)sysconf(_SC_PAGESIZE);
}

static double virtual_bytes(void *ctx)
{
    (void)ctx;
    double v = 0;
    read_stat(NULL, NULL, &v, NULL);
    return v;
}

static double open_fds(void *ctx)
{
    (void)ctx;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;   /* the descriptor opendir itself holds */
}

static double max_fds(void *ctx)
{
    (void)ctx;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    return (double)rl.rlim_cur;
}

/* Seconds since the epoch: the boot time (btime of /proc/stat) plus the
 * process's start in ticks after boot, as client_golang computes it. */
static double start_time(void *ctx)
{
    (void)ctx;
    double start = 0;
    if (read_stat(NULL, &start, NULL, NULL) != 0)
        return NAN;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return NAN;
    char line[256];
    double btime = NAN;
    while (fgets(line, sizeof line, f)) {
        unsigned long long b;
        if (sscanf(line, "btime %llu", &b) == 1) {
            btime = (double)b;
            break;
        }
    }
    fclose(f);
    return btime + start;
}

int metrics_register_process(metrics_registry *r)
{
    struct {
        enum metrics_type t;
        const char *name, *help;
        metrics_read_fn fn;
    } m[] = {
        { METRICS_COUNTER, "process_cpu_seconds_total",
          "Total user and system CPU time spent in seconds.", cpu_seconds },
        { METRICS_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.",
          resident_bytes },
        { METRICS_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
          virtual_bytes },
        { METRICS_GAUGE, "process_open_fds", "Number of open file descriptors.", open_fds },
        { METRICS_GAUGE, "process_max_fds", "Maximum number of open file descriptors.",
          max_fds },
        { METRICS_GAUGE, "process_start_time_seconds",
          "Start time of the process since unix epoch in seconds.", start_time },
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (metrics_callback_add(r, m[i].t, m[i].name, m[i].help, NULL, 0, m[i].fn, NULL) != 0)
            return -1;
    return 0;
}
