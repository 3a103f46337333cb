/*
 * audit_int.h — the audit log's state, shared by audit.c (appending,
 * rotating, syncing) and audit_tail.c (reading). Not for other modules.
 */
#ifndef OKV_SERVER_AUDIT_INT_H
#define OKV_SERVER_AUDIT_INT_H

#include <pthread.h>
#include <stdint.h>

#include "audit.h"

#define AUDIT_PATH_MAX 4200

struct audit_log {
    char dir[AUDIT_PATH_MAX];
    uint64_t max_bytes;
    int keep;
    pthread_t syncer;
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* dirty set or stopping (the syncer); syncing cleared (rotation) */
    /* Guarded by mu. */
    int fd;                    /* audit.log, O_APPEND; -1 after a failed reopen */
    uint64_t size;             /* bytes in it */
    int torn;                  /* it ends mid-line: next record starts with '\n' */
    int dirty;                 /* written since the syncer last looked */
    int syncing;               /* the syncer is in fdatasync(fd) */
    int stopping;
    uint64_t rotations;        /* since open: how far the names moved (audit_tail.c) */
    uint64_t failures;         /* records lost, in all */
    uint64_t unreported;       /* ... since the last report on stderr */
    int64_t reported_ms;       /* CLOCK_MONOTONIC of the last report; 0: none yet */
};

/* DIR/audit.log (i = 0) or DIR/audit.log.i. */
void audit_path(const audit_log *a, int i, char *buf, size_t cap);

#endif
