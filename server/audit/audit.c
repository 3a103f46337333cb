/*
 * audit.c — appending, rotating and syncing DATA/audit.log (the rules are
 * in audit.h; reading its tail is in audit_tail.c).
 *
 * Threads: any number of appenders (gRPC completion-queue threads) and one
 * sync thread per log. mu guards everything below it in struct audit_log.
 * The sync thread calls fdatasync without mu, on the fd it read under mu;
 * rotation, which closes that fd, first waits until no sync is running.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit_format.h"
#include "audit_int.h"
#include "log.h"
#include "thread_name.h"

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void audit_path(const audit_log *a, int i, char *buf, size_t cap)
{
    if (i == 0)
        snprintf(buf, cap, "%s/audit.log", a->dir);
    else
        snprintf(buf, cap, "%s/audit.log.%d", a->dir, i);
}

/* Opens the current file; with mu held (or before the log is shared).
 * Learns its size and whether it ends mid-line (invariant 2). */
static int open_current(audit_log *a, int *err_no)
{
    char path[AUDIT_PATH_MAX];
    audit_path(a, 0, path, sizeof path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        *err_no = errno;
        if (fd >= 0)
            close(fd);
        return -1;
    }
    a->fd = fd;
    a->size = (uint64_t)st.st_size;
    a->torn = 0;
    if (st.st_size > 0) {
        /* O_WRONLY cannot read the last byte: a second, read-only open can. */
        int rfd = open(path, O_RDONLY | O_CLOEXEC);
        char last = '\n';
        if (rfd < 0 || pread(rfd, &last, 1, st.st_size - 1) != 1)
            last = 0;   /* unknown: assume a fragment; a blank line costs nothing */
        if (rfd >= 0)
            close(rfd);
        a->torn = last != '\n';
    }
    return 0;
}

/* Counts a lost record and reports it, at most once per
 * AUDIT_REPORT_EVERY_MS. With mu held. */
static void failed(audit_log *a, const char *doing, int err_no)
{
    a->failures++;
    a->unreported++;
    int64_t now = clock_ms(CLOCK_MONOTONIC);
    if (a->reported_ms && now - a->reported_ms < AUDIT_REPORT_EVERY_MS)
        return;
    OKV_ERROR("audit log %s/audit.log: %s: %s; %llu audit record(s) lost since the last report, "
              "%llu in all (the node keeps serving; check the disk)",
              a->dir, doing, strerror(err_no), (unsigned long long)a->unreported,
              (unsigned long long)a->failures);
    a->reported_ms = now;
    a->unreported = 0;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);   /* best effort: a lost rename loses no record */
        close(fd);
    }
}

/* Invariant 3. With mu held. On failure the current file stays open if
 * possible, so records keep being written, past the bound. */
static void rotate(audit_log *a)
{
    while (a->syncing)
        pthread_cond_wait(&a->cv, &a->mu);
    if (a->fd >= 0) {
        (void)fdatasync(a->fd);
        close(a->fd);
        a->fd = -1;
    }
    char from[AUDIT_PATH_MAX], to[AUDIT_PATH_MAX];
    int bad = 0;
    if (a->keep == 0) {
        audit_path(a, 0, from, sizeof from);
        if (unlink(from) != 0 && errno != ENOENT)
            bad = errno;
    }
    for (int i = a->keep; i >= 1 && !bad; i--) {
        /* audit.log.(i-1) -> audit.log.i; rename replaces, so the oldest
         * is dropped by the first step. */
        audit_path(a, i - 1, from, sizeof from);
        audit_path(a, i, to, sizeof to);
        if (rename(from, to) != 0 && errno != ENOENT)
            bad = errno;
    }
    if (bad)
        failed(a, "cannot rotate", bad);
    else
        a->rotations++;
    sync_dir(a->dir);
    int err_no = 0;
    if (open_current(a, &err_no) != 0)
        failed(a, "cannot reopen after rotating", err_no);
    a->dirty = 0;
}

/* Writes buf whole, or counts a failure and cuts back what a short write
 * left (invariant 1). With mu held. */
static void write_line(audit_log *a, const char *buf, size_t len)
{
    ssize_t w = write(a->fd, buf, len);
    if (w == (ssize_t)len) {
        a->size += len;
        a->torn = 0;
        a->dirty = 1;
        pthread_cond_broadcast(&a->cv);   /* the sync thread */
        return;
    }
    int err_no = w < 0 ? errno : ENOSPC;
    if (w > 0 && ftruncate(a->fd, (off_t)a->size) != 0)
        a->torn = 1;   /* the fragment stays: end it before the next record */
    failed(a, "cannot write", err_no);
}

void audit_log_append(audit_log *a, const char *who, const char *from, const char *what,
                      const char *result)
{
    if (!a)
        return;
    size_t len;
    char *line = audit_format_line(clock_ms(CLOCK_REALTIME), who, from, what, result, &len);
    pthread_mutex_lock(&a->mu);
    if (!line) {
        failed(a, "cannot format a record", ENOMEM);
        pthread_mutex_unlock(&a->mu);
        return;
    }
    if (a->fd < 0) {
        int err_no = 0;
        if (open_current(a, &err_no) != 0) {
            failed(a, "cannot open", err_no);
            pthread_mutex_unlock(&a->mu);
            free(line);
            return;
        }
    }
    if (a->size > 0 && a->size + len + (size_t)a->torn > a->max_bytes)
        rotate(a);
    if (a->fd >= 0) {
        char *out = line;
        if (a->torn && (out = malloc(len + 1))) {
            /* Invariant 2: the newline goes in the same write as the record. */
            out[0] = '\n';
            memcpy(out + 1, line, len);
            len++;
        }
        if (out)
            write_line(a, out, len);
        else
            failed(a, "cannot format a record", ENOMEM);
        if (out != line)
            free(out);
    }
    pthread_mutex_unlock(&a->mu);
    free(line);
}

/* Group commit: one fdatasync covers every record written before it. */
static void *sync_main(void *arg)
{
    audit_log *a = arg;
    okv_thread_name("okv-audit-sync");
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->dirty && !a->stopping)
            pthread_cond_wait(&a->cv, &a->mu);
        if (!a->dirty && a->stopping)
            break;
        a->dirty = 0;
        a->syncing = 1;
        int fd = a->fd;
        pthread_mutex_unlock(&a->mu);
        int rc = fd >= 0 ? fdatasync(fd) : 0;
        int err_no = errno;
        pthread_mutex_lock(&a->mu);
        a->syncing = 0;
        pthread_cond_broadcast(&a->cv);   /* a rotation waiting to close fd */
        if (rc != 0)
            failed(a, "cannot sync", err_no);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

int audit_log_open(audit_log **out, const char *dir, uint64_t max_bytes, int keep,
                   okv_error *err)
{
    *out = NULL;
    if (!dir || !dir[0] || max_bytes == 0 || keep < 0 || keep > AUDIT_KEEP_MAX)
        return okv_error_set(err, OKV_EINVAL,
                             "audit log: need a directory, max_bytes >= 1 and keep in 0..%d",
                             AUDIT_KEEP_MAX);
    if (strlen(dir) + sizeof "/audit.log.1000" > AUDIT_PATH_MAX)
        return okv_error_set(err, OKV_EINVAL, "audit log: directory name too long: %s", dir);
    audit_log *a = calloc(1, sizeof *a);
    if (!a)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    snprintf(a->dir, sizeof a->dir, "%s", dir);
    a->max_bytes = max_bytes;
    a->keep = keep;
    a->fd = -1;
    int err_no = 0;
    if (open_current(a, &err_no) != 0) {
        free(a);
        return okv_error_set(err, OKV_EIO, "cannot open the audit log %s/audit.log: %s", dir,
                             strerror(err_no));
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (pthread_create(&a->syncer, NULL, sync_main, a) != 0) {
        close(a->fd);
        pthread_cond_destroy(&a->cv);
        pthread_mutex_destroy(&a->mu);
        free(a);
        return okv_error_set(err, OKV_ENOMEM, "audit log: cannot start its sync thread");
    }
    *out = a;
    return OKV_OK;
}

uint64_t audit_log_failures(audit_log *a)
{
    pthread_mutex_lock(&a->mu);
    uint64_t n = a->failures;
    pthread_mutex_unlock(&a->mu);
    return n;
}

void audit_log_free(audit_log *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->syncer, NULL);   /* it syncs what is dirty before it stops */
    if (a->fd >= 0)
        close(a->fd);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
