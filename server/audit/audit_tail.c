/*
 * audit_tail.c — the last n lines of the audit log, newest last, reading
 * audit.log and then, if it holds fewer, audit.log.1, audit.log.2, ...
 *
 * Appenders are not held up while we read: mu is held only to open a file
 * and take its size. A rotation between two opens shifts every file one
 * name up, so the next older file is found at its index plus the number of
 * rotations since we started (`rotations`), and a file rotated past KEEP
 * is gone. Only bytes below the size taken at open are read, so a record
 * appended meanwhile is never read half.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_int.h"

#define CHUNK 65536

/* One file's part of the answer. */
typedef struct piece {
    char *buf;
    size_t len;
} piece;

/* Opens the file that was audit.log.i when the tail began (rotations0
 * rotations ago) and takes its size. 0; 1 if it does not exist (or was
 * rotated away); -1 with errno. */
static int open_older(audit_log *a, int i, uint64_t rotations0, int *fd, uint64_t *size)
{
    pthread_mutex_lock(&a->mu);
    uint64_t idx = (uint64_t)i + (a->rotations - rotations0);
    int rc = 1;
    if (idx <= (uint64_t)a->keep) {
        char path[AUDIT_PATH_MAX];
        audit_path(a, (int)idx, path, sizeof path);
        struct stat st;
        *fd = open(path, O_RDONLY | O_CLOEXEC);
        if (*fd < 0) {
            rc = errno == ENOENT ? 1 : -1;
        } else if (fstat(*fd, &st) != 0) {
            int e = errno;
            close(*fd);
            errno = e;
            rc = -1;
        } else {
            /* The current file: the size the appenders know, so a write in
             * progress (none, under mu) could not be half-seen anyway. */
            *size = idx == 0 ? a->size : (uint64_t)st.st_size;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* Where the last `need` lines of the first `size` bytes of fd start, in
 * *start; how many lines that is (fewer if the file has fewer) in *found.
 * A last line without its '\n' (a fragment) counts as a line. */
static int scan_back(int fd, uint64_t size, size_t need, uint64_t *start, size_t *found)
{
    char buf[CHUNK];
    *found = 0;
    *start = size;
    if (size == 0 || need == 0)
        return 0;
    uint64_t end = size;
    /* The last line's own terminator does not start a line. */
    char last;
    if (pread(fd, &last, 1, (off_t)(size - 1)) != 1)
        return -1;
    if (last == '\n')
        end--;
    while (end > 0) {
        size_t n = end > CHUNK ? CHUNK : (size_t)end;
        uint64_t off = end - n;
        if (pread(fd, buf, n, (off_t)off) != (ssize_t)n)
            return -1;
        for (size_t i = n; i > 0; i--) {
            if (buf[i - 1] != '\n')
                continue;
            if (++*found == need) {
                *start = off + i;
                return 0;
            }
        }
        end = off;
    }
    ++*found;   /* the file's first line */
    *start = 0;
    return 0;
}

/* Reads [start, size) of fd into p, ending it with '\n' if it lacks one. */
static int read_piece(int fd, uint64_t start, uint64_t size, piece *p)
{
    size_t n = (size_t)(size - start);
    p->buf = malloc(n + 1);
    if (!p->buf)
        return -1;
    if (n && pread(fd, p->buf, n, (off_t)start) != (ssize_t)n) {
        free(p->buf);
        p->buf = NULL;
        return -1;
    }
    if (n && p->buf[n - 1] != '\n')
        p->buf[n++] = '\n';
    p->len = n;
    return 0;
}

int audit_log_tail(audit_log *a, size_t n, char **out, okv_error *err)
{
    *out = NULL;
    pthread_mutex_lock(&a->mu);
    uint64_t rotations0 = a->rotations;
    int nfiles = a->keep + 1;
    pthread_mutex_unlock(&a->mu);
    piece *pieces = calloc((size_t)nfiles, sizeof *pieces);
    if (!pieces)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    int rc = OKV_OK, used = 0;
    size_t need = n, total = 0;
    for (int i = 0; i < nfiles && need > 0; i++) {
        int fd = -1;
        uint64_t size = 0, start = 0;
        size_t found = 0;
        int o = open_older(a, i, rotations0, &fd, &size);
        if (o == 1)
            break;   /* no older file */
        char path[AUDIT_PATH_MAX];
        audit_path(a, i, path, sizeof path);
        if (o < 0) {
            rc = okv_error_set(err, OKV_EIO, "cannot open %s: %s", path, strerror(errno));
            break;
        }
        errno = 0;
        if (scan_back(fd, size, need, &start, &found) != 0 ||
            read_piece(fd, start, size, &pieces[used]) != 0) {
            rc = errno == ENOMEM ? okv_error_set(err, OKV_ENOMEM, "out of memory")
                                 : okv_error_set(err, OKV_EIO, "cannot read %s: %s", path,
                                                 strerror(errno ? errno : EIO));
            close(fd);
            break;
        }
        close(fd);
        total += pieces[used++].len;
        need -= found;
    }
    char *all = rc == OKV_OK ? malloc(total + 1) : NULL;
    if (rc == OKV_OK && !all)
        rc = okv_error_set(err, OKV_ENOMEM, "out of memory");
    size_t len = 0;
    for (int i = used - 1; i >= 0; i--) {   /* oldest file first */
        if (all) {
            memcpy(all + len, pieces[i].buf, pieces[i].len);
            len += pieces[i].len;
        }
        free(pieces[i].buf);
    }
    free(pieces);
    if (all) {
        all[len] = '\0';
        *out = all;
    }
    return rc;
}
