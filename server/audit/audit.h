/*
 * audit.h — the node's audit log: DATA/audit.log, one JSON object per line.
 *
 * Every admin action (user and grant changes, leader transfers, backups)
 * and every refused request is recorded as
 *
 *   {"time":"2026-12-05T14:55:35.123Z","who":"alice","from":"ipv4:10.0.0.7:51234",
 *    "what":"transfer-leader table=orders partition=3 to=2","result":"ok"}
 *
 * (on one line; docs/operations.md "Audit log"). time is UTC with
 * milliseconds, taken when the record is appended; the other four are the
 * caller's strings, or null.
 *
 * Escaping. Any string may hold any bytes. Inside the quotes: '"' and '\'
 * are escaped with a backslash; \b \f \n \r \t as such; every other byte
 * below 0x20, and 0x7F, as \u00XX (so no raw control character, terminal
 * escape included, ever reaches a file or a terminal); well-formed UTF-8
 * is kept as it is; each byte that is not part of a well-formed UTF-8
 * sequence (a stray continuation byte, a truncated sequence, an overlong
 * form, a surrogate, above U+10FFFF) becomes \uFFFD. We chose U+FFFD over
 * \u00XX because \u00XX would be indistinguishable from the well-formed
 * character U+00XX: a reader must never mistake a forged byte for real
 * text. A field longer than AUDIT_FIELD_MAX bytes is cut there and ends
 * with "...[+N bytes]". So every line is valid JSON in valid UTF-8.
 *
 * Invariants:
 *  1. A record is formatted completely, then written with one write(2)
 *     under the log's mutex: records never interleave, and a crash of the
 *     process never leaves half a record (the kernel has the whole write or
 *     none of it). A short write (disk full) is cut back with ftruncate.
 *  2. A line never continues another: if the file does not end in '\n'
 *     (power lost mid-write, or a short write that could not be cut back),
 *     the next record starts with '\n', so the fragment stays a line of its
 *     own, which readers skip as unparseable.
 *  3. Rotation happens before a record that would take the file past
 *     max_bytes (never splitting a record): audit.log.(KEEP-1) ->
 *     audit.log.KEEP (the old KEEP dropped) ... audit.log -> audit.log.1,
 *     then a new audit.log. A single record larger than max_bytes is still
 *     written, alone in its file. KEEP = 0 keeps no old files.
 *
 * Durability. audit_log_append returns once write(2) did: the record then
 * survives a crash of orderkvd, and an action's record is written before
 * its reply is sent. It is made durable against power loss by the log's
 * sync thread, which fdatasyncs whatever was written since its last sync
 * (group commit: one fdatasync for however many records came meanwhile,
 * about 0.1-1 ms on our disks). So a power loss can lose the records of
 * the last millisecond or so, but appending never waits for the disk: the
 * callers are gRPC completion-queue threads, and a flood of refused
 * requests must not turn into one fdatasync each on them
 * (GRPC-CORE-NOTES). Admin actions and refusals are treated alike; the
 * actions themselves are durable in Raft regardless. Rotation and close
 * sync the file (and the directory after a rotation).
 *
 * Failures to write never stop the node: they are counted
 * (audit_log_failures) and logged at ERROR level at most once per
 * AUDIT_REPORT_EVERY_MS, with the number of records lost since the last
 * report.
 */
#ifndef OKV_SERVER_AUDIT_H
#define OKV_SERVER_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/* Longest field kept, in input bytes (see "Escaping"). */
#define AUDIT_FIELD_MAX 4096
/* Write failures are reported on stderr at most this often. */
#define AUDIT_REPORT_EVERY_MS 10000

typedef struct audit_log audit_log;

/* Opens (creates, mode 0640) DIR/audit.log for appending, and starts its
 * sync thread. max_bytes: rotate when the file would exceed it (audit.log
 * -> audit.log.1 -> ... audit.log.KEEP; the oldest dropped); >= 1.
 * keep: old files kept, 0..AUDIT_KEEP_MAX. DIR must exist. OKV_EINVAL for
 * bad arguments, OKV_EIO (naming the file and errno) if it cannot be
 * opened. */
#define AUDIT_KEEP_MAX 1000
int audit_log_open(audit_log **out, const char *dir, uint64_t max_bytes, int keep,
                   okv_error *err);

/* Appends one JSON line {"time":...,"who":...,"from":...,"what":...,
 * "result":...}. Thread-safe. Any string may be NULL (written as null) and
 * may hold any bytes (escaped as above). One write(2) per line. Failures
 * are counted and reported (rate-limited), never fatal. a NULL: nothing
 * happens (a node without an audit log, e.g. in unit tests). */
void audit_log_append(audit_log *a, const char *who, const char *from, const char *what,
                      const char *result);

/* The last n lines (newest last), across rotation boundaries if needed
 * (audit.log, then audit.log.1, ...); *out is a malloc'd NUL-terminated
 * buffer of lines, each ending in '\n', which the caller frees ("" for
 * n = 0 or an empty log). Safe while others append; records appended
 * during the call may or may not be included. OKV_EIO or OKV_ENOMEM with
 * a message on failure. */
int audit_log_tail(audit_log *a, size_t n, char **out, okv_error *err);

/* Records that could not be written since the log was opened. */
uint64_t audit_log_failures(audit_log *a);

/* Stops the sync thread, syncs and closes the file. Accepts NULL. */
void audit_log_free(audit_log *a);

#endif
