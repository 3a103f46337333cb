/*
 * catalog.h — the tables a node serves and how each is partitioned.
 *
 * Built-in tables: orders (id 1), payments (id 2), accounts (id 3), each with
 * the partition count chosen when the data dir was created (default 8). The
 * catalog is stored in the data dir (meta CF, key CATALOG_KEY) at first boot
 * and read back on every later boot, because changing a table's partition
 * count would move keys to other partitions: the count is fixed at creation.
 *
 * Pure: no I/O. The text form is "name=id:partitions,..." (see catalog_encode).
 */
#ifndef OKV_SERVER_CATALOG_H
#define OKV_SERVER_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define CATALOG_MAX_TABLES 16
#define CATALOG_DEFAULT_PARTITIONS 8u
#define CATALOG_MAX_PARTITIONS 1024u
#define CATALOG_KEY "\x00" "catalog"

typedef struct catalog_table {
    char name[OKV_MAX_TABLE_NAME_LEN + 1];
    uint32_t id;
    uint32_t partitions;
    size_t index;             /* position in catalog.tables */
} catalog_table;

typedef struct catalog {
    size_t count;
    catalog_table tables[CATALOG_MAX_TABLES];
} catalog;

/* The built-in tables with `partitions` partitions each (1..CATALOG_MAX_PARTITIONS). */
void catalog_init_default(catalog *c, uint32_t partitions);

/* The table named by the len bytes at name, or NULL. */
const catalog_table *catalog_find(const catalog *c, const char *name, size_t len);

/* Comma-separated table names, for error messages ("orders, payments, accounts"). */
void catalog_names(const catalog *c, char *buf, size_t cap);

/* Text form; returns the length written (truncated output is never produced:
 * returns 0 if cap is too small). */
size_t catalog_encode(const catalog *c, char *buf, size_t cap);

/* Parses the text form; OKV_ECORRUPT with a message if it is malformed. */
int catalog_decode(catalog *c, const char *text, size_t len, okv_error *err);

#endif
