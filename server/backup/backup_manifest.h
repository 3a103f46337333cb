/*
 * backup_manifest.h — the manifest of an online backup and the SHA-256 of
 * its files (docs/operations.md "Backup and restore", format below).
 *
 * Written by the backup tool (client/client_backup.c, which compiles this
 * file in, as it does server/orders' money rules, so both sides read one
 * format) and read by the restore (backup_restore.c).
 *
 * A backup dir holds one file per partition, "<table>-<partition>.snap":
 * frames of a u32 big-endian length and one message of the partition
 * snapshot stream (snap_format.h): the HEADER, the CHUNKs in order, the
 * TRAILER. And MANIFEST, text, one record per line, fields separated by
 * one space, written last (a dir without it is an unfinished backup):
 *
 *   orderkv-backup 1
 *   fence <fence id>
 *   created-ms <unix ms when the fences went up>
 *   table <name> <id> <partitions>                      (each table)
 *   part <table id> <partition> <index> <term> <file> <bytes> <sha256 hex>
 *   manifest-sha256 <sha256 hex of every byte before this line>
 *
 * Every table's partitions appear, each once. Names are [A-Za-z0-9_-]
 * only, so no field holds a space and no file name leaves the dir.
 */
#ifndef OKV_BACKUP_MANIFEST_H
#define OKV_BACKUP_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define BACKUP_MANIFEST_NAME "MANIFEST"
#define BACKUP_MAX_TABLES 16
#define BACKUP_NAME_MAX 64
#define BACKUP_SHA_HEX 65          /* 64 hex digits and a NUL */

typedef struct backup_table {
    char name[BACKUP_NAME_MAX + 1];
    uint32_t id, partitions;
} backup_table;

typedef struct backup_part {
    uint32_t table_id, partition;
    uint64_t index, term;          /* the cut */
    char file[BACKUP_NAME_MAX + 24];
    uint64_t bytes;
    char sha256[BACKUP_SHA_HEX];
} backup_part;

typedef struct backup_manifest {
    uint64_t fence_id;
    uint64_t created_ms;
    size_t ntables;
    backup_table tables[BACKUP_MAX_TABLES];
    size_t nparts, cap;
    backup_part *parts;            /* malloc'd */
} backup_manifest;

/* Appends p. OKV_ENOMEM. */
int backup_manifest_add(backup_manifest *m, const backup_part *p);

/* The manifest's text (malloc'd, *text; the caller frees). */
int backup_manifest_encode(const backup_manifest *m, char **text, size_t *len, okv_error *err);

/* Parses and checks text: its own checksum, every field, every table's
 * partitions present once. OKV_ECORRUPT with what is wrong and on which
 * line. m must be zeroed; clear it either way. */
int backup_manifest_decode(backup_manifest *m, const char *text, size_t len, okv_error *err);

void backup_manifest_clear(backup_manifest *m);

/* The file name of a partition's cut ("accounts-3.snap"). */
void backup_part_file(char *buf, size_t cap, const char *table, uint32_t partition);

/* SHA-256, incrementally (OpenSSL's libcrypto). */
typedef struct backup_hash backup_hash;
backup_hash *backup_hash_new(void);            /* NULL when out of memory */
void backup_hash_update(backup_hash *h, const void *p, size_t n);
void backup_hash_final(backup_hash *h, char hex[BACKUP_SHA_HEX]);   /* and frees h */
void backup_hash_free(backup_hash *h);         /* without a result; accepts NULL */

#endif
